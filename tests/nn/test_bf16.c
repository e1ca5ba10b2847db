/*
 * test_bf16.c - bf16 mixed-precision training, layer kind by layer kind, against the
 * engine's own float32 (which torch_agreement ties to PyTorch within 1e-4).
 *
 * Each small net (one or two layer kinds before a global pool and an fc) is built
 * twice from the same seed, trained one step in fp32 and in bf16 on the same batch:
 *   - train logits within 2% of the largest |logit| (+1e-3)      measured <= 0.5%
 *   - the gradient vector within 4% in relative L2 norm            measured <= 1.8%
 *   - master weights stay float32: the SGD step changes them by less than a bf16 ulp
 *     in places (a pure-bf16 copy could not), checked as "some change < 2^-9 |w|"
 * bf16 training must also learn: 30 steps on a fixed batch divide the loss by two.
 * Prepared inference in bf16 (basira_net_set_inference_precision), set before or after
 * the plan was made: logits within 2% of the fp32 prepared ones, and not equal to them.
 * Run with "fallback" (a second CTest entry) it limits oneDNN to AVX-512 without
 * BF16 first and checks the fp32 fallback: bf16 refused with a message, auto = fp32,
 * and training then bit-identical to an fp32 net.
 */
#include <dnnl.h>

#include "nn_testutil.h"

#define HEAD                                                                                       \
    "{\"type\":\"gap\",\"name\":\"g\"},{\"type\":\"fc\",\"name\":\"fc\",\"out_features\":5}"
/* A conv of kernel k (1 or 3, padded to keep the size) and extra JSON fields. */
#define CONV(n, c, k, extra)                                                                       \
    "{\"type\":\"conv\",\"name\":\"" n "\",\"out_channels\":" #c ",\"kernel\":" #k                 \
    ",\"padding\":" PAD##k extra "}"
#define PAD1 "0"
#define PAD3 "1"

static char *arch(const char *layers)
{
    static const char fmt[] =
        "{\"input\":[3,16,16],\"num_classes\":5,\"layers\":[%s," HEAD "],\"output\":\"fc\"}";
    size_t n = strlen(fmt) + strlen(layers) + 1;
    char *s = malloc(n);
    snprintf(s, n, fmt, layers);
    return s;
}

typedef struct run_out {
    float logits[8 * 5];
    float *grads;
    float *params; /* after one SGD step */
    float *before;
    size_t numel;
} run_out;

static int one_step(const char *json, basira_precision pr, run_out *o)
{
    basira_error err;
    basira_net *net = tu_net(json, 11);
    if (!net)
        return -1;
    CHECK_MSG(!basira_net_set_precision(net, pr, &err), "%s", err.message);
    float x[8 * 3 * 16 * 16], dl[8 * 5];
    int labels[8];
    tu_fill(x, sizeof x / sizeof *x, 3, -1, 1);
    for (int i = 0; i < 8; i++)
        labels[i] = i % 5;
    int rc = basira_net_forward(net, x, 8, 1, o->logits, &err);
    CHECK_MSG(!rc, "forward: %s", rc ? err.message : "");
    if (rc) {
        basira_net_free(net);
        return -1;
    }
    int bf16 =
        pr == BASIRA_PRECISION_BF16 || (pr == BASIRA_PRECISION_AUTO && basira_nn_bf16_supported());
    CHECK_EQ_INT(basira_net_precision(net), bf16 ? BASIRA_PRECISION_BF16 : BASIRA_PRECISION_FP32);
    basira_softmax_xent(o->logits, labels, 8, 5, NULL, 0.0f, dl, NULL);
    CHECK(!basira_net_backward(net, dl, &err));
    o->numel = nn_net_numel(net);
    o->grads = malloc(o->numel * sizeof(float));
    o->params = malloc(o->numel * sizeof(float));
    o->before = malloc(o->numel * sizeof(float));
    memcpy(o->grads, nn_net_grads(net), o->numel * sizeof(float));
    memcpy(o->before, nn_net_params(net), o->numel * sizeof(float));
    basira_optim_config oc = {.kind = BASIRA_OPTIM_SGD, .momentum = 0.0};
    basira_optim *opt = NULL;
    CHECK(!basira_optim_new(net, &oc, &opt, &err));
    CHECK(opt && !basira_optim_step(opt, 1e-4, &err));
    memcpy(o->params, nn_net_params(net), o->numel * sizeof(float));
    basira_optim_free(opt);
    basira_net_free(net);
    return 0;
}

static void run_free(run_out *o)
{
    free(o->grads);
    free(o->params);
    free(o->before);
}

static void compare(const char *name, const char *layers)
{
    char *json = arch(layers);
    run_out a = {0}, b = {0};
    if (!one_step(json, BASIRA_PRECISION_FP32, &a) && !one_step(json, BASIRA_PRECISION_BF16, &b)) {
        double d = 0, m = 0, e2 = 0, r2 = 0;
        for (int i = 0; i < 8 * 5; i++) {
            d = fmax(d, fabs((double)a.logits[i] - b.logits[i]));
            m = fmax(m, fabs((double)a.logits[i]));
        }
        for (size_t i = 0; i < a.numel; i++) {
            e2 += ((double)a.grads[i] - b.grads[i]) * ((double)a.grads[i] - b.grads[i]);
            r2 += (double)a.grads[i] * a.grads[i];
        }
        double l2 = sqrt(e2 / fmax(r2, 1e-30));
        /* A master weight moved by less than half a bf16 ulp of itself. */
        int tiny_step = 0;
        for (size_t i = 0; i < b.numel && !tiny_step; i++) {
            double s = fabs((double)b.params[i] - b.before[i]);
            tiny_step = s > 0 && s < fabs(b.before[i]) / 512.0;
        }
        fprintf(stderr, "  %-14s logits max |diff| %.3g (max %.3g), gradient L2 error %.3g\n", name,
                d, m, l2);
        CHECK_MSG(d <= 0.02 * m + 1e-3, "%s: bf16 logits differ by %g", name, d);
        CHECK_MSG(l2 <= 0.04, "%s: bf16 gradients: relative L2 error %g", name, l2);
        CHECK_MSG(tiny_step, "%s: no master weight kept a sub-bf16 update", name);
    }
    run_free(&a);
    run_free(&b);
    free(json);
}

static void test_layer_kinds(void)
{
    compare("conv", CONV("c", 16, 3, ""));
    compare("conv+bn+relu",
            CONV("c", 16, 3, ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":\"b\"},"
                                                "{\"type\":\"relu\",\"name\":\"r\"}");
    /* 24 channels: the batch norm runs on a channel-blocked copy (layer_bn.c) */
    compare("bn, 24 channels",
            CONV("c", 24, 1,
                 ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":\"b\"},"
                                    "{\"type\":\"relu6\",\"name\":\"r\"}," CONV("c2", 24, 1, ""));
    compare("relu6, silu", CONV("c", 16, 3, "") ",{\"type\":\"relu6\",\"name\":\"r\"}," CONV(
                               "c2", 16, 1, "") ",{\"type\":\"silu\",\"name\":\"s\"}");
    compare("depthwise",
            CONV("c", 16, 1, "") ",{\"type\":\"relu\",\"name\":\"r\"}," CONV(
                "dw", 16, 3, ",\"groups\":16,\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":"
                                                              "\"b\"}");
    compare("strided, dilated",
            CONV("c", 16, 3, ",\"stride\":2") "," CONV("c2", 16, 3, ",\"dilation\":2"));
    compare("residual add",
            CONV("c", 16, 3, "") ",{\"type\":\"relu\",\"name\":\"r\"}," CONV(
                "c2", 16, 3, ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":\"b\"},"
                                                "{\"type\":\"add\",\"name\":\"a\",\"inputs\":["
                                                "\"b\",\"r\",\"c\"]}");
    compare("pools, concat",
            CONV("c", 16, 3, "") ",{\"type\":\"maxpool\",\"name\":\"mp\",\"kernel\":2},"
                                 "{\"type\":\"avgpool\",\"name\":\"ap\",\"kernel\":3,"
                                 "\"stride\":1,\"padding\":1},"
                                 "{\"type\":\"concat\",\"name\":\"cat\",\"inputs\":[\"mp\","
                                 "\"ap\"]}," CONV("c3", 16, 1, ""));
    compare("dropout",
            CONV("c", 16, 3, "") ",{\"type\":\"dropout\",\"name\":\"d\",\"p\":0.3}," CONV("c2", 16,
                                                                                          1, ""));
}

/* Logits of a prepared net (batch 8) in precision pr; returns 0 when it ran. */
static int infer(const char *json, basira_precision pr, int set_after, float *logits)
{
    basira_error err;
    basira_net *net = tu_net(json, 11);
    if (!net)
        return -1;
    float x[8 * 3 * 16 * 16];
    tu_fill(x, sizeof x / sizeof *x, 3, -1, 1);
    int rc = 0;
    if (!set_after)
        CHECK_MSG(!(rc = basira_net_set_inference_precision(net, pr, &err)), "%s", err.message);
    if (!rc)
        CHECK_MSG(!(rc = basira_net_prepare_inference(net, 8, &err)), "%s", err.message);
    if (!rc && set_after) {
        /* A plan already made in fp32 is rebuilt in the new precision. */
        CHECK(!basira_net_forward(net, x, 8, 0, logits, &err));
        CHECK_MSG(!(rc = basira_net_set_inference_precision(net, pr, &err)), "%s", err.message);
    }
    if (!rc)
        CHECK_MSG(!(rc = basira_net_forward(net, x, 8, 0, logits, &err)), "forward: %s",
                  err.message);
    int bf16 =
        pr == BASIRA_PRECISION_BF16 || (pr == BASIRA_PRECISION_AUTO && basira_nn_bf16_supported());
    if (!rc)
        CHECK_EQ_INT(basira_net_inference_precision(net),
                     bf16 ? BASIRA_PRECISION_BF16 : BASIRA_PRECISION_FP32);
    basira_net_free(net);
    return rc ? -1 : 0;
}

/* Prepared inference in bf16 against fp32: logits within 2% of the largest (+1e-3). */
static void compare_infer(const char *name, const char *layers, int set_after)
{
    char *json = arch(layers);
    float a[8 * 5], b[8 * 5];
    if (!infer(json, BASIRA_PRECISION_FP32, 0, a) &&
        !infer(json, BASIRA_PRECISION_BF16, set_after, b)) {
        double d = 0, m = 0;
        for (int i = 0; i < 8 * 5; i++) {
            d = fmax(d, fabs((double)a[i] - b[i]));
            m = fmax(m, fabs((double)a[i]));
        }
        fprintf(stderr, "  inference %-14s logits max |diff| %.3g (max %.3g)\n", name, d, m);
        CHECK_MSG(d <= 0.02 * m + 1e-3, "%s: bf16 inference logits differ by %g", name, d);
        CHECK_MSG(d > 0, "%s: bf16 inference gave the fp32 logits bit for bit", name);
    }
    free(json);
}

static void test_inference(void)
{
    compare_infer("conv+bn+relu",
                  CONV("c", 16, 3, ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":\"b\"},"
                                                      "{\"type\":\"relu\",\"name\":\"r\"}",
                  0);
    compare_infer("depthwise",
                  CONV("c", 16, 1, "") ",{\"type\":\"relu6\",\"name\":\"r\"}," CONV(
                      "dw", 16, 3, ",\"groups\":16,\"bias\":false") ",{\"type\":\"batchnorm\","
                                                                    "\"name\":\"b\"}",
                  0);
    compare_infer(
        "residual add",
        CONV("c", 16, 3, "") ",{\"type\":\"relu\",\"name\":\"r\"}," CONV(
            "c2", 16, 3, ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":\"b\"},"
                                            "{\"type\":\"add\",\"name\":\"a\",\"inputs\":["
                                            "\"b\",\"r\",\"c\"]}",
        1);
    compare_infer("pools, concat",
                  CONV("c", 16, 3, "") ",{\"type\":\"maxpool\",\"name\":\"mp\",\"kernel\":2},"
                                       "{\"type\":\"avgpool\",\"name\":\"ap\",\"kernel\":3,"
                                       "\"stride\":1,\"padding\":1},"
                                       "{\"type\":\"concat\",\"name\":\"cat\",\"inputs\":[\"mp\","
                                       "\"ap\"]}," CONV("c3", 16, 1, ""),
                  0);
    compare_infer("dropout, silu",
                  CONV("c", 16, 3, "") ",{\"type\":\"dropout\",\"name\":\"d\",\"p\":0.3}," CONV(
                      "c2", 16, 1, "") ",{\"type\":\"silu\",\"name\":\"s\"}",
                  1);
}

/* bf16 training learns: 30 SGD steps on one fixed batch halve the loss. */
static void test_bf16_learns(void)
{
    char *json = arch(CONV("c", 16, 3, ",\"bias\":false") ",{\"type\":\"batchnorm\",\"name\":"
                                                          "\"b\"},{\"type\":\"relu\",\"name\":"
                                                          "\"r\"}," CONV("c2", 16, 3, ""));
    basira_net *net = tu_net(json, 5);
    free(json);
    if (!net)
        return;
    basira_error err;
    CHECK(!basira_net_set_precision(net, BASIRA_PRECISION_BF16, &err));
    basira_optim_config oc = {.kind = BASIRA_OPTIM_ADAMW};
    basira_optim *opt = NULL;
    CHECK(!basira_optim_new(net, &oc, &opt, &err));
    float x[8 * 3 * 16 * 16], logits[8 * 5], dl[8 * 5];
    int labels[8];
    tu_fill(x, sizeof x / sizeof *x, 9, -1, 1);
    for (int i = 0; i < 8; i++)
        labels[i] = (i * 3) % 5;
    double first = 0, last = 0;
    for (int s = 0; s < 30 && opt; s++) {
        CHECK(!basira_net_forward(net, x, 8, 1, logits, &err));
        last = basira_softmax_xent(logits, labels, 8, 5, NULL, 0.0f, dl, NULL);
        if (s == 0)
            first = last;
        CHECK(!basira_net_backward(net, dl, &err));
        CHECK(!basira_optim_step(opt, 1e-2, &err));
    }
    fprintf(stderr, "  bf16 training: loss %.4f -> %.4f in 30 steps\n", first, last);
    CHECK_MSG(last < 0.5 * first, "loss %g -> %g", first, last);
    CHECK_EQ_INT(basira_net_precision(net), BASIRA_PRECISION_BF16);
    basira_optim_free(opt);
    basira_net_free(net);
}

/* Without bf16 instructions: bf16 refused with a message, auto trains (and infers) in fp32, bit
 * for bit. */
static void test_fallback(void)
{
    CHECK_EQ_INT(basira_nn_bf16_supported(), 0);
    char *json = arch(CONV("c", 16, 3, "") ",{\"type\":\"relu\",\"name\":\"r\"}");
    basira_net *net = tu_net(json, 11);
    basira_error err = {0};
    if (net) {
        CHECK_EQ_INT(basira_net_set_precision(net, BASIRA_PRECISION_BF16, &err),
                     BASIRA_E_UNSUPPORTED);
        CHECK_MSG(strstr(err.message, "bfloat16") != NULL, "message: %s", err.message);
        CHECK_EQ_INT(basira_net_precision(net), BASIRA_PRECISION_FP32);
        CHECK_EQ_INT(basira_net_set_precision(net, (basira_precision)7, &err),
                     BASIRA_E_INVALID_ARGUMENT);
        basira_net_free(net);
    }
    net = tu_net(json, 11);
    if (net) {
        /* Inference likewise: bf16 refused, auto runs fp32, bit for bit. */
        CHECK_EQ_INT(basira_net_set_inference_precision(net, BASIRA_PRECISION_BF16, &err),
                     BASIRA_E_UNSUPPORTED);
        CHECK_MSG(strstr(err.message, "bfloat16") != NULL, "message: %s", err.message);
        CHECK_EQ_INT(basira_net_set_inference_precision(net, (basira_precision)7, &err),
                     BASIRA_E_INVALID_ARGUMENT);
        CHECK_EQ_INT(basira_net_inference_precision(net), BASIRA_PRECISION_FP32);
        basira_net_free(net);
    }
    float la[8 * 5], lb[8 * 5];
    if (!infer(json, BASIRA_PRECISION_FP32, 0, la) && !infer(json, BASIRA_PRECISION_AUTO, 0, lb))
        CHECK(!memcmp(la, lb, sizeof la));
    run_out a = {0}, b = {0};
    if (!one_step(json, BASIRA_PRECISION_FP32, &a) && !one_step(json, BASIRA_PRECISION_AUTO, &b)) {
        CHECK(!memcmp(a.logits, b.logits, sizeof a.logits));
        CHECK(!memcmp(a.grads, b.grads, a.numel * sizeof(float)));
    }
    run_free(&a);
    run_free(&b);
    free(json);
}

int main(int argc, char **argv)
{
    basira_nn_set_threads(2);
    if (argc > 1 && !strcmp(argv[1], "fallback")) {
        /* Before any primitive exists: oneDNN then never uses bf16 instructions. */
        if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core) != dnnl_success)
            TEST_SKIP("oneDNN refused to limit its instruction set");
        RUN(test_fallback);
        return test_summary();
    }
    if (!basira_nn_bf16_supported())
        TEST_SKIP("this processor has no bf16 instructions (the fallback test still runs)");
    RUN(test_layer_kinds);
    RUN(test_inference);
    RUN(test_bf16_learns);
    return test_summary();
}
