# Tests of the engine core (layers, nets, architectures); owned by engineer "engine".
basira_add_test(NAME nn_layers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_layers.c LIBS basira_nn
                TIMEOUT 300)
basira_add_test(NAME nn_net SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_net.c LIBS basira_nn
                TIMEOUT 300)
# Timing of the engine for bench/nn_vs_torch (a program, not a test).
add_executable(nn_engine_bench ${CMAKE_CURRENT_SOURCE_DIR}/engine_bench.c)
target_link_libraries(nn_engine_bench PRIVATE basira_nn)
# bf16 training against fp32, layer kind by layer kind; and the fp32 fallback when
# oneDNN may not use bf16 instructions.
basira_add_test(NAME nn_bf16 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_bf16.c LIBS basira_nn
                TIMEOUT 120)
basira_add_test(NAME nn_bf16_fallback SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_bf16.c
                LIBS basira_nn ARGS fallback TIMEOUT 120)
# The per-layer profile (FLOP counts, pause/reset, roofline table).
basira_add_test(NAME nn_profile SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_profile.c LIBS basira_nn
                TIMEOUT 60)
# int8 post-training quantisation of prepared inference against fp32 (both families).
basira_add_test(NAME nn_int8 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_int8.c LIBS basira_nn
                TIMEOUT 120)
