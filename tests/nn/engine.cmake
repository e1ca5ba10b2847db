# Tests of the engine core (layers, nets, architectures); owned by engineer "engine".
basira_add_test(NAME nn_layers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_layers.c LIBS basira_nn
                TIMEOUT 300)
basira_add_test(NAME nn_net SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_net.c LIBS basira_nn
                TIMEOUT 300)
# Timing of the engine for bench/nn_vs_torch (a program, not a test).
add_executable(nn_engine_bench ${CMAKE_CURRENT_SOURCE_DIR}/engine_bench.c)
target_link_libraries(nn_engine_bench PRIVATE basira_nn)
