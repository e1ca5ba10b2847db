/*
 * test_profile.c - the per-layer profile: what it counts, pausing and resetting, the
 * roofline limits, and the printed table.
 */
#include "nn_testutil.h"

static const char *arch =
    "{\"input\":[3,12,12],\"num_classes\":4,\"layers\":["
    "{\"type\":\"conv\",\"name\":\"c1\",\"out_channels\":8,\"kernel\":3,\"padding\":1,"
    "\"bias\":false},"
    "{\"type\":\"batchnorm\",\"name\":\"bn\"},{\"type\":\"relu\",\"name\":\"r\"},"
    "{\"type\":\"conv\",\"name\":\"c2\",\"out_channels\":8,\"kernel\":3,\"stride\":2},"
    "{\"type\":\"gap\",\"name\":\"g\"},{\"type\":\"fc\",\"name\":\"fc\",\"out_features\":4}],"
    "\"output\":\"fc\"}";

static const basira_layer_profile *find(const basira_layer_profile *r, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].name, name))
            return &r[i];
    return NULL;
}

static void step(basira_net *net, const float *x, int n)
{
    basira_error err;
    float logits[3 * 4], dl[3 * 4];
    int labels[3] = {0, 1, 2};
    CHECK(!basira_net_forward(net, x, n, 1, logits, &err));
    basira_softmax_xent(logits, labels, n, 4, NULL, 0.0f, dl, NULL);
    CHECK(!basira_net_backward(net, dl, &err));
}

static void test_counts(void)
{
    basira_net *net = tu_net(arch, 1);
    if (!net)
        return;
    basira_error err;
    float x[3 * 3 * 12 * 12];
    tu_fill(x, sizeof x / sizeof *x, 2, -1, 1);
    CHECK_EQ_INT(basira_net_profile(net, NULL, 0), 0); /* never enabled: nothing */
    step(net, x, 3);                                   /* not profiled */
    CHECK(!basira_net_profile_enable(net, 1, &err));
    step(net, x, 3);
    step(net, x, 3);
    basira_layer_profile r[8];
    size_t n = basira_net_profile(net, r, 8);
    /* relu runs inside the batch norm in training: 5 ops for 6 layers. */
    CHECK_EQ_INT(n, 5);
    const basira_layer_profile *c1 = find(r, n, "c1"), *c2 = find(r, n, "c2");
    const basira_layer_profile *bn = find(r, n, "bn");
    CHECK(c1 && c2 && bn && !find(r, n, "r"));
    if (!c1 || !c2 || !bn)
        goto out;
    CHECK_STR(c1->type, "conv");
    CHECK_EQ_INT(c1->fwd_calls, 2);
    CHECK_EQ_INT(c1->bwd_calls, 2);
    CHECK_EQ_INT(bn->fused, 1);
    /* c1: 2 x (3 x 8 x 12 x 12 outputs) x (3 x 3 x 3) MACs per step; its input is the image,
     * so backward computes only the weight gradient (the same count). */
    double c1_flop = 2.0 * 3 * 8 * 12 * 12 * 3 * 3 * 3;
    CHECK_NEAR(c1->fwd_flop, 2 * c1_flop, 1e-6);
    CHECK_NEAR(c1->bwd_flop, 2 * c1_flop, 1e-6);
    /* c2 (stride 2, no padding: 5 x 5 out) has data and weight gradients: twice the forward. */
    double c2_flop = 2.0 * 3 * 8 * 5 * 5 * 8 * 3 * 3;
    CHECK_NEAR(c2->fwd_flop, 2 * c2_flop, 1e-6);
    CHECK_NEAR(c2->bwd_flop, 4 * c2_flop, 1e-6);
    CHECK(c1->fwd_s > 0 && c1->bwd_s > 0 && c1->fwd_bytes > 0 && c1->bwd_bytes > 0);
    /* Paused: nothing more is counted; reset: all zero. */
    CHECK(!basira_net_profile_enable(net, 0, &err));
    step(net, x, 3);
    basira_net_profile(net, r, 8);
    CHECK_EQ_INT(find(r, n, "c1")->fwd_calls, 2);
    basira_net_profile_reset(net);
    CHECK_EQ_INT(basira_net_profile(net, NULL, 0), 0);
    /* Eval forwards are profiled too (no backward). */
    CHECK(!basira_net_profile_enable(net, 1, &err));
    float logits[3 * 4];
    CHECK(!basira_net_forward(net, x, 3, 0, logits, &err));
    n = basira_net_profile(net, r, 8);
    CHECK(n >= 5);
    CHECK_EQ_INT(find(r, n, "c1") ? find(r, n, "c1")->bwd_calls : -1, 0);
out:
    basira_net_free(net);
}

static void test_peak_and_table(void)
{
    basira_error err;
    basira_nn_peak peak;
    CHECK_EQ_INT(basira_nn_peak_measure(0, &peak, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(!basira_nn_peak_measure(1, &peak, &err));
    CHECK(peak.fp32_flops >= 16e9 * 0.5 && peak.bf16_flops >= peak.fp32_flops);
    CHECK(peak.bytes_per_s > 1e8 && peak.ghz > 0 && peak.isa && *peak.isa);
    basira_net *net = tu_net(arch, 1);
    if (!net)
        return;
    float x[3 * 3 * 12 * 12];
    tu_fill(x, sizeof x / sizeof *x, 2, -1, 1);
    CHECK(!basira_net_profile_enable(net, 1, &err));
    step(net, x, 3);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        basira_net_profile_print(net, &peak, 0, f);
        long len = ftell(f);
        rewind(f);
        char buf[8192] = {0};
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        CHECK(len > 0 && got > 0);
        CHECK(strstr(buf, "GFLOP/s") != NULL);
        CHECK(strstr(buf, "all layers") != NULL);
    }
    basira_net_free(net);
}

int main(void)
{
    basira_nn_set_threads(1);
    RUN(test_counts);
    RUN(test_peak_and_table);
    return test_summary();
}
