# Tests of the model files, optimisers and PyTorch agreement (engineer "formats").
basira_add_test(NAME test_safetensors SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_safetensors.c
                LIBS basira_nn TIMEOUT 120)
