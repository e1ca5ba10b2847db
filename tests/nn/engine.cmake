# Tests of the engine core (layers, nets, architectures); owned by engineer "engine".
basira_add_test(NAME nn_layers SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_layers.c LIBS basira_nn
                TIMEOUT 120)
basira_add_test(NAME nn_net SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_net.c LIBS basira_nn
                TIMEOUT 120)
