/*
 * fuzz_safetensors.c - libFuzzer target for model files: the safetensors parser,
 * the dtype conversions, and loading a network (or an ensemble of them) from a buffer.
 *
 * Loading a network builds it from the file's architecture first, and an
 * architecture can legitimately ask for up to the engine's parameter limit (1 GiB):
 * so that the fuzzer explores parsing rather than spending its memory budget on
 * huge but valid nets, nets are only built when every number in the architecture
 * is at most 32 (the seeds' architecture is like that).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/nn.h"
#include "nn/safetensors.h"

static int small_architecture(const char *arch)
{
    if (strlen(arch) > 4096)
        return 0;
    for (const char *p = arch; *p;) {
        if (isdigit((unsigned char)*p)) {
            long v = 0;
            while (isdigit((unsigned char)*p)) {
                v = v * 10 + (*p - '0');
                if (v > 32)
                    return 0;
                p++;
            }
        } else {
            p++;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_st_file *f = NULL;
    basira_error err;
    if (nn_st_parse(data, size, &f, &err))
        return 0;
    /* Convert every tensor of a sane size, checking the conversions read only their bytes. */
    for (size_t i = 0; i < nn_st_count(f); i++) {
        const nn_st_tensor *t = nn_st_at(f, i);
        if (t->numel > (1u << 20))
            continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out) {
            nn_st_to_f32(t, out, &err);
            free(out);
        }
        (void)nn_st_find(f, t->name);
    }
    const char *arch = nn_st_meta_get(f, "architecture");
    int try_net = arch && small_architecture(arch);
    /* An ensemble's other members ("member<i>.architecture") must be small too. */
    int try_ensemble = try_net;
    for (int i = 1; try_ensemble && i < BASIRA_NET_MAX_MEMBERS; i++) {
        char key[32];
        snprintf(key, sizeof key, "member%d.architecture", i);
        const char *m = nn_st_meta_get(f, key);
        try_ensemble = !m || small_architecture(m);
    }
    nn_st_free(f);
    if (try_net) {
        basira_net *net = NULL;
        if (!basira_net_load_buffer(data, size, &net, &err))
            basira_net_free(net);
    }
    if (try_ensemble) {
        basira_net *nets[BASIRA_NET_MAX_MEMBERS];
        int n = 0;
        if (!basira_net_load_ensemble_buffer(data, size, nets, &n, &err))
            basira_net_free_ensemble(nets, n);
    }
    return 0;
}
