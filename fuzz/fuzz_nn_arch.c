/*
 * fuzz_nn_arch.c - architecture JSON (it arrives inside model files, from outside).
 *
 * Every input goes through basira_net_new(): parsing, checking, the parameter table
 * and initialisation. Small accepted nets also run one eval forward and one training
 * forward + backward, so the oneDNN plans built from hostile graphs are exercised too;
 * big ones are skipped to keep the run fast, not because they are unsafe.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basira/nn.h"
#include "nn/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    basira_net *net = NULL;
    basira_error err;
    if (basira_net_new(s, 1, &net, &err) == BASIRA_OK) {
        int c, h, w, k = basira_net_num_classes(net);
        basira_net_input_shape(net, &c, &h, &w);
        size_t nx = (size_t)c * (size_t)h * (size_t)w;
        if (nx <= 4096 && nn_net_numel(net) <= 100000 && k <= 1000) {
            float *x = calloc(2 * nx, sizeof *x), *y = calloc(2 * (size_t)k, sizeof *y);
            if (x && y) {
                for (size_t i = 0; i < 2 * nx; i++)
                    x[i] = (float)(i % 7) - 3.0f;
                basira_net_forward(net, x, 2, 0, y, &err);
                if (basira_net_forward(net, x, 2, 1, y, &err) == BASIRA_OK)
                    basira_net_backward(net, y, &err);
                basira_net_prepare_inference(net, 2, &err);
                basira_net_forward(net, x, 1, 0, y, &err);
            }
            free(x);
            free(y);
        }
        basira_net_free(net);
    }
    free(s);
    return 0;
}
