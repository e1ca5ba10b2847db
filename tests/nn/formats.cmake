# Tests of the model files, optimisers and PyTorch agreement (engineer "formats").
basira_add_test(NAME test_safetensors SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_safetensors.c
                LIBS basira_nn TIMEOUT 120)
basira_add_test(NAME test_optim SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_optim.c LIBS basira_nn
                TIMEOUT 120)
# The same program replaying torch.optim trajectories (skipped without torch).
basira_add_test(NAME test_optim_torch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_optim.c
                LIBS basira_nn ARGS torch TIMEOUT 120)
basira_add_test(NAME test_nn_io SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_nn_io.c LIBS basira_nn
                TIMEOUT 120)
# The C engine against PyTorch on both model families (skipped without torch).
basira_add_test(NAME torch_agreement SOURCES ${CMAKE_CURRENT_LIST_DIR}/torch_agreement.c
                LIBS basira_nn TIMEOUT 300)
# Basira's side of bench/nn_vs_torch (a program, not a test).
add_executable(nn_bench ${PROJECT_SOURCE_DIR}/bench/nn_vs_torch/nn_bench.c)
target_link_libraries(nn_bench PRIVATE basira_nn)
