/*
 * test_net.c - whole networks: the architecture builders (parameter counts equal to
 * torchvision's, PyTorch names), prepared inference equal to eval mode, training that
 * learns, determinism, batch-size changes, API misuse, gradient clipping.
 */
#include "nn_testutil.h"

#include <stdint.h>

static char *build(const char *family, int size, int classes, int width, int depth, double drop)
{
    basira_arch_params p = {family, size, 0, classes, width, depth, drop};
    basira_error err;
    char *json = basira_arch_build(&p, &err);
    CHECK_MSG(json != NULL, "basira_arch_build(%s): %s", family, json ? "" : err.message);
    return json;
}

static void check_param(basira_net *net, const char *name, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3)
{
    const nn_param *p = nn_net_param_find(net, name);
    CHECK_MSG(p != NULL, "no parameter %s", name);
    if (!p)
        return;
    int64_t d[4] = {d0, d1, d2, d3};
    CHECK_EQ_INT(p->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        CHECK_EQ_INT(p->shape[i], d[i]);
}

/* torchvision's resnet18 has 11,689,512 parameters with a 7x7 stem; ours has a 3x3 stem
 * and no max pool: 11,689,512 - 64*3*49 + 64*3*9 = 11,681,832. */
static void test_resnet_builder(void)
{
    char *json = build("resnet", 224, 1000, 64, 2, 0.0);
    basira_net *net = json ? tu_net(json, 1) : NULL;
    free(json);
    if (!net)
        return;
    CHECK_EQ_INT(basira_net_num_params(net), 11681832);
    CHECK_EQ_INT(basira_net_num_classes(net), 1000);
    int c, h, w;
    basira_net_input_shape(net, &c, &h, &w);
    CHECK(c == 3 && h == 224 && w == 224);
    check_param(net, "conv1.weight", 4, 64, 3, 3, 3);
    check_param(net, "bn1.running_var", 1, 64, 0, 0, 0);
    check_param(net, "layer1.0.conv1.weight", 4, 64, 64, 3, 3);
    check_param(net, "layer2.0.downsample.0.weight", 4, 128, 64, 1, 1);
    check_param(net, "layer4.1.bn2.bias", 1, 512, 0, 0, 0);
    check_param(net, "fc.weight", 2, 1000, 512, 0, 0);
    CHECK(nn_net_param_find(net, "layer1.0.downsample.0.weight") == NULL);
    CHECK(nn_net_param_find(net, "conv1.bias") == NULL);
    const nn_param *rv = nn_net_param_find(net, "bn1.running_var");
    const nn_param *cw = nn_net_param_find(net, "conv1.weight");
    CHECK(rv && !rv->trainable && !rv->decay);
    CHECK(cw && cw->trainable && cw->decay);
    basira_net_free(net);
}

/* torchvision's mobilenet_v2() has 3,504,872 parameters. */
static void test_mobilenet_builder(void)
{
    char *json = build("mobilenetv2", 224, 1000, 32, 10, 0.2);
    basira_net *net = json ? tu_net(json, 1) : NULL;
    free(json);
    if (!net)
        return;
    CHECK_EQ_INT(basira_net_num_params(net), 3504872);
    check_param(net, "features.0.0.weight", 4, 32, 3, 3, 3);
    check_param(net, "features.1.conv.0.0.weight", 4, 32, 1, 3, 3);
    check_param(net, "features.1.conv.1.weight", 4, 16, 32, 1, 1);
    check_param(net, "features.2.conv.0.0.weight", 4, 96, 16, 1, 1);
    check_param(net, "features.2.conv.1.0.weight", 4, 96, 1, 3, 3);
    check_param(net, "features.2.conv.3.running_mean", 1, 24, 0, 0, 0);
    check_param(net, "features.18.0.weight", 4, 1280, 320, 1, 1);
    check_param(net, "classifier.1.weight", 2, 1000, 1280, 0, 0);
    basira_net_free(net);
    /* Width 16 = multiplier 0.5: torchvision mobilenet_v2(width_mult=0.5) has 1,968,680. */
    json = build("mobilenetv2", 224, 1000, 16, 10, 0.2);
    net = json ? tu_net(json, 1) : NULL;
    free(json);
    if (net)
        CHECK_EQ_INT(basira_net_num_params(net), 1968680);
    basira_net_free(net);
}

/* The stride of the first conv in an architecture JSON: the stem's. */
static int stem_stride(const char *json)
{
    const char *s = json ? strstr(json, "\"stride\":") : NULL;
    return s ? atoi(s + strlen("\"stride\":")) : -1;
}

/* A 4:3 input (160 x 120) is [3, 120, 160]; the stem's stride follows the shorter side,
 * and a height out of range is refused like a width. */
static void test_non_square_builder(void)
{
    for (int f = 0; f < 2; f++) {
        basira_arch_params p = {f ? "mobilenetv2" : "resnet", 160, 120, 7, 8, f ? 10 : 1, 0.0};
        basira_error err;
        char *json = basira_arch_build(&p, &err);
        CHECK_MSG(json != NULL, "non-square %s: %s", p.family, json ? "" : err.message);
        CHECK_EQ_INT(stem_stride(json), 2);
        basira_net *net = json ? tu_net(json, 1) : NULL;
        free(json);
        if (!net)
            continue;
        int c, h, w;
        basira_net_input_shape(net, &c, &h, &w);
        CHECK(c == 3 && h == 120 && w == 160);
        float *x = calloc(2 * 3 * 120 * 160, sizeof *x);
        float logits[2 * 7];
        CHECK(x != NULL);
        for (size_t i = 0; x && i < 2 * 3 * 120 * 160; i++)
            x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        CHECK(x && basira_net_forward(net, x, 2, 0, logits, &err) == BASIRA_OK);
        for (int i = 0; x && i < 14; i++)
            CHECK(isfinite(logits[i]));
        free(x);
        basira_net_free(net);
    }
    /* 200 x 80: the shorter side is under 96, so the ResNet stem keeps stride 1. */
    basira_arch_params q = {"resnet", 200, 80, 2, 8, 1, 0.0};
    basira_error err;
    char *json = basira_arch_build(&q, &err);
    CHECK_EQ_INT(stem_stride(json), 1);
    free(json);
    q.input_height = 100;
    json = basira_arch_build(&q, &err);
    CHECK_EQ_INT(stem_stride(json), 2);
    free(json);
    q.input_height = 4;
    CHECK(basira_arch_build(&q, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
    q.input_height = 2000;
    CHECK(basira_arch_build(&q, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
}

static void test_builder_errors(void)
{
    basira_error err;
    basira_arch_params p = {"vgg", 128, 0, 2, 32, 2, 0.0};
    CHECK(basira_arch_build(&p, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
    basira_arch_params q = {"resnet", 128, 0, 2, -4, 2, 0.0};
    CHECK(basira_arch_build(&q, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
    basira_arch_params r = {"mobilenetv2", 16, 0, 2, 32, 10, 0.0};
    CHECK(basira_arch_build(&r, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
    basira_arch_params s = {"resnet", 128, 0, 2, 8, 2, 1.5};
    CHECK(basira_arch_build(&s, &err) == NULL && err.code == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_arch_build(NULL, &err) == NULL);
}

/* A few SGD steps so that batch-norm statistics and weights are no longer the initial ones. */
static void train_steps(basira_net *net, int n, int steps, uint64_t seed)
{
    int c, h, w, k = basira_net_num_classes(net);
    basira_net_input_shape(net, &c, &h, &w);
    size_t nx = (size_t)n * c * h * w;
    float *x = malloc(nx * sizeof *x), *logits = malloc((size_t)n * k * sizeof *logits);
    float *d = malloc((size_t)n * k * sizeof *d);
    int *y = malloc((size_t)n * sizeof *y);
    basira_error err;
    for (int s = 0; s < steps; s++) {
        tu_fill(x, nx, seed + (uint64_t)s, -1, 1);
        for (int i = 0; i < n; i++)
            y[i] = (i + s) % k;
        CHECK(basira_net_forward(net, x, n, 1, logits, &err) == BASIRA_OK);
        basira_softmax_xent(logits, y, n, k, NULL, 0.0f, d, NULL);
        basira_net_zero_grad(net);
        CHECK(basira_net_backward(net, d, &err) == BASIRA_OK);
        float *v = nn_net_params(net), *g = nn_net_grads(net);
        for (size_t i = 0; i < nn_net_numel(net); i++)
            v[i] -= 0.05f * g[i];
    }
    free(x);
    free(logits);
    free(d);
    free(y);
}

/* A net of json trained a few steps, n inputs for it (seeded) and room for two sets of
 * n logits; NULL when the net cannot be made. */
static basira_net *trained_with_inputs(const char *json, uint64_t seed, int n, uint64_t xseed,
                                       float **x, float **a, float **b, int *k)
{
    basira_net *net = tu_net(json, seed);
    if (!net)
        return NULL;
    train_steps(net, 4, 3, 100);
    int c, h, w;
    *k = basira_net_num_classes(net);
    basira_net_input_shape(net, &c, &h, &w);
    size_t nx = (size_t)n * c * h * w;
    *x = malloc(nx * sizeof **x);
    *a = malloc((size_t)n * *k * sizeof **a);
    *b = malloc((size_t)n * *k * sizeof **b);
    tu_fill(*x, nx, xseed, -1, 1);
    return net;
}

static void check_prepared_matches_eval(const char *what, const char *json)
{
    int n = 3, k;
    float *x, *ref, *out;
    basira_net *net = trained_with_inputs(json, 3, n, 555, &x, &ref, &out, &k);
    if (!net)
        return;
    basira_error err;
    CHECK(basira_net_forward(net, x, n, 0, ref, &err) == BASIRA_OK);
    CHECK(basira_net_prepare_inference(net, 4, &err) == BASIRA_OK);
    CHECK(nn_net_is_prepared(net));
    for (int rep = 0; rep < 2; rep++) {
        basira_code frc = basira_net_forward(net, x, n, 0, out, &err);
        CHECK_MSG(frc == BASIRA_OK, "%s", err.message);
        double worst = 0, mag = 0;
        for (int i = 0; i < n * k; i++) {
            worst = fmax(worst, fabs(out[i] - ref[i]));
            mag = fmax(mag, fabs(ref[i]));
        }
        CHECK_MSG(worst <= 1e-4, "%s: prepared vs eval max abs diff %g (logits up to %g)", what,
                  worst, mag);
    }
    /* Batch 1 through the prepared net: the same as row 0. */
    CHECK(basira_net_forward(net, x, 1, 0, out, &err) == BASIRA_OK);
    for (int i = 0; i < k; i++)
        CHECK_NEAR(out[i], ref[i], 1e-4);
    /* Changed parameters are folded again. */
    float *v = nn_net_params(net);
    for (size_t i = 0; i < nn_net_numel(net); i++)
        v[i] *= 1.01f;
    nn_net_params_changed(net);
    CHECK(basira_net_forward(net, x, n, 0, out, &err) == BASIRA_OK);
    double moved = 0;
    for (int i = 0; i < n * k; i++)
        moved = fmax(moved, fabs(out[i] - ref[i]));
    CHECK_MSG(moved > 1e-4, "%s: parameter change not seen after nn_net_params_changed", what);
    /* No training once prepared. */
    CHECK(basira_net_forward(net, x, n, 1, out, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_backward(net, out, &err) == BASIRA_E_INVALID_ARGUMENT);
    free(x);
    free(ref);
    free(out);
    basira_net_free(net);
}

/* Layers that are not fused: max pool, SiLU after batch norm without conv, concat,
 * an add whose inputs are both computed after the conv, fc-relu-fc. */
static const char MIXED_NET[] =
    "{\"input\":[3,12,12],\"num_classes\":3,\"layers\":["
    "{\"name\":\"c0\",\"type\":\"conv\",\"out_channels\":8,\"kernel\":3,\"padding\":1},"
    "{\"name\":\"b0\",\"type\":\"batchnorm\"},{\"name\":\"a0\",\"type\":\"silu\"},"
    "{\"name\":\"p\",\"type\":\"maxpool\",\"kernel\":2},"
    "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":8,\"kernel\":3,\"padding\":1,"
    "\"dilation\":1,\"groups\":2},"
    "{\"name\":\"b1\",\"type\":\"batchnorm\"},"
    "{\"name\":\"c2\",\"type\":\"conv\",\"out_channels\":8,\"kernel\":1,\"inputs\":[\"p\"]},"
    "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"b1\",\"c2\"]},"
    "{\"name\":\"b2\",\"type\":\"batchnorm\"},{\"name\":\"a2\",\"type\":\"relu6\"},"
    "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"a2\",\"p\"]},"
    "{\"name\":\"q\",\"type\":\"avgpool\",\"kernel\":2},"
    "{\"name\":\"f1\",\"type\":\"fc\",\"out_features\":6},{\"name\":\"r\",\"type\":\"relu\"},"
    "{\"name\":\"d\",\"type\":\"dropout\",\"p\":0.1},"
    "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":3}],\"output\":\"fc\"}";

static void test_prepare_inference(void)
{
    char *json = build("resnet", 32, 5, 8, 1, 0.2);
    if (json)
        check_prepared_matches_eval("resnet", json);
    free(json);
    json = build("mobilenetv2", 32, 4, 8, 5, 0.2);
    if (json)
        check_prepared_matches_eval("mobilenetv2", json);
    free(json);
    check_prepared_matches_eval("mixed", MIXED_NET);
}

/*
 * basira_net_release_values(): refused before a plan exists; afterwards the prepared
 * forwards give the same bits (the mixed net's batch norm after an add and its fc layers
 * read their own copies), fp32 calibration still runs, and whatever needs the values is
 * refused while the plan stays usable: another batch size, another precision, preparing
 * again, saving.
 */
static void check_release(const char *what, const char *json, int int8)
{
    int n = 2, k;
    float *x, *before, *after;
    basira_net *net = trained_with_inputs(json, 5, n, 99, &x, &before, &after, &k);
    if (!net)
        return;
    basira_error err;
    CHECK_EQ_INT(basira_net_release_values(net, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_prepare_inference(net, n, &err) == BASIRA_OK);
    if (int8) {
        CHECK(basira_net_calibrate(net, x, n, &err) == BASIRA_OK);
        CHECK(basira_net_set_inference_precision(net, BASIRA_PRECISION_INT8, &err) == BASIRA_OK);
        /* the int8 plan is built by the next forward: nothing to keep yet */
        CHECK_EQ_INT(basira_net_release_values(net, &err), BASIRA_E_INVALID_ARGUMENT);
    }
    CHECK_MSG(basira_net_forward(net, x, n, 0, before, &err) == BASIRA_OK, "%s", err.message);
    /* What release relies on: the prepared plan reads nothing of the values. Spoilt
     * behind its back (no nn_net_params_changed), they change no output bit. (oneDNN's
     * own reads of freed memory are invisible to the sanitizers, hence this check.) */
    float *v = nn_net_params(net);
    for (size_t i = 0; i < nn_net_numel(net); i++)
        v[i] = NAN;
    CHECK(basira_net_forward(net, x, n, 0, after, &err) == BASIRA_OK);
    CHECK_MSG(!memcmp(before, after, (size_t)n * k * sizeof *after),
              "%s: the prepared plan reads the net's values", what);
    CHECK_MSG(basira_net_release_values(net, &err) == BASIRA_OK, "%s: %s", what, err.message);
    CHECK(basira_net_values_released(net));
    CHECK(nn_net_params(net) == NULL);
    CHECK_EQ_INT(basira_net_release_values(net, &err), BASIRA_OK); /* twice: nothing more */
    CHECK(basira_net_forward(net, x, n, 0, after, &err) == BASIRA_OK);
    CHECK_MSG(!memcmp(before, after, (size_t)n * k * sizeof *after), "%s: released net differs",
              what);
    /* Refused, each leaving the plan as it was. */
    CHECK_EQ_INT(basira_net_forward(net, x, 1, 0, after, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "load the model again") != NULL);
    CHECK_EQ_INT(basira_net_set_inference_precision(
                     net, int8 ? BASIRA_PRECISION_FP32 : BASIRA_PRECISION_INT8, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_net_set_inference_precision(
                     net, int8 ? BASIRA_PRECISION_INT8 : BASIRA_PRECISION_FP32, &err),
                 BASIRA_OK); /* no change */
    CHECK_EQ_INT(basira_net_prepare_inference(net, n, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_net_save(net, "/nonexistent/released.safetensors", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_net_forward(net, x, n, 1, after, &err), BASIRA_E_INVALID_ARGUMENT);
    /* fp32 calibration runs on the fp32 plan; in int8 it would need a new one. */
    CHECK_EQ_INT(basira_net_calibrate(net, x, n, &err),
                 int8 ? BASIRA_E_INVALID_ARGUMENT : BASIRA_OK);
    memset(after, 0, (size_t)n * k * sizeof *after);
    CHECK(basira_net_forward(net, x, n, 0, after, &err) == BASIRA_OK);
    CHECK(!memcmp(before, after, (size_t)n * k * sizeof *after));
    free(x);
    free(before);
    free(after);
    basira_net_free(net);
}

/*
 * basira_net_prepare_inference_lean(): the values go while the plan is built (in fp32
 * layer after layer: a layer built after its values were given back would read zeros),
 * and the forwards give the same bits as a plain prepare's; the net is then released,
 * with the same refusals. In int8 the values stay until the plan is whole.
 */
static void check_lean(const char *what, const char *json, int int8)
{
    int n = 2, k;
    float *x, *ref, *out;
    basira_net *plain = trained_with_inputs(json, 5, n, 99, &x, &ref, &out, &k);
    basira_net *lean = plain ? tu_net(json, 5) : NULL;
    if (!lean) {
        basira_net_free(plain);
        return;
    }
    train_steps(lean, 4, 3, 100); /* as trained_with_inputs trains: the same net */
    basira_error err;
    CHECK(basira_net_prepare_inference(plain, n, &err) == BASIRA_OK);
    if (int8) {
        CHECK(basira_net_calibrate(plain, x, n, &err) == BASIRA_OK);
        CHECK(basira_net_set_inference_precision(plain, BASIRA_PRECISION_INT8, &err) == BASIRA_OK);
        /* the lean net is calibrated on a plain prepare, then prepared lean in int8 */
        CHECK(basira_net_prepare_inference(lean, n, &err) == BASIRA_OK);
        CHECK(basira_net_calibrate(lean, x, n, &err) == BASIRA_OK);
        CHECK(basira_net_set_inference_precision(lean, BASIRA_PRECISION_INT8, &err) == BASIRA_OK);
    }
    CHECK(basira_net_forward(plain, x, n, 0, ref, &err) == BASIRA_OK);
    CHECK_MSG(basira_net_prepare_inference_lean(lean, n, &err) == BASIRA_OK, "%s: %s", what,
              err.message);
    CHECK(basira_net_values_released(lean));
    CHECK(nn_net_params(lean) == NULL);
    CHECK_EQ_INT(basira_net_inference_precision(lean),
                 int8 ? BASIRA_PRECISION_INT8 : BASIRA_PRECISION_FP32);
    for (int rep = 0; rep < 2; rep++) {
        memset(out, 0, (size_t)n * k * sizeof *out);
        CHECK(basira_net_forward(lean, x, n, 0, out, &err) == BASIRA_OK);
        CHECK_MSG(!memcmp(ref, out, (size_t)n * k * sizeof *out),
                  "%s: the lean prepare gives other outputs", what);
    }
    CHECK_EQ_INT(basira_net_prepare_inference_lean(lean, n, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "load the model again") != NULL);
    CHECK_EQ_INT(basira_net_prepare_inference(lean, n, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_net_forward(lean, x, 1, 0, out, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_net_save(lean, "/nonexistent/lean.safetensors", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(lean, x, n, 0, out, &err) == BASIRA_OK);
    CHECK(!memcmp(ref, out, (size_t)n * k * sizeof *out));
    CHECK_EQ_INT(basira_net_prepare_inference_lean(NULL, 1, &err), BASIRA_E_INVALID_ARGUMENT);
    free(x);
    free(ref);
    free(out);
    basira_net_free(plain);
    basira_net_free(lean);
}

/* Both ways of giving the values up, on the nets of every layer kind and int8. */
static void test_release_values(void)
{
    void (*check[2])(const char *, const char *, int) = {check_release, check_lean};
    for (int c = 0; c < 2; c++) {
        char *json = build("resnet", 32, 5, 8, 1, 0.2);
        if (json) {
            check[c]("resnet", json, 0);
            check[c]("resnet int8", json, 1);
        }
        free(json);
        json = build("mobilenetv2", 32, 4, 8, 5, 0.2);
        if (json)
            check[c]("mobilenetv2", json, 0);
        free(json);
        check[c]("mixed", MIXED_NET, 0);
    }
    basira_error err;
    CHECK_EQ_INT(basira_net_release_values(NULL, &err), BASIRA_E_INVALID_ARGUMENT);
}

/* Two classes a small ResNet must separate: bright left half vs bright right half. */
static void test_training_learns(void)
{
    char *json = build("resnet", 16, 2, 4, 1, 0.0);
    basira_net *net = json ? tu_net(json, 9) : NULL;
    free(json);
    if (!net)
        return;
    int n = 16, side = 16, k = 2;
    size_t per = 3 * (size_t)side * side;
    float *x = malloc(n * per * sizeof *x), logits[32], d[32];
    int y[16];
    uint64_t s = 77;
    basira_error err;
    float first = 0, last = 0;
    for (int step = 0; step < 40; step++) {
        for (int i = 0; i < n; i++) {
            y[i] = (int)(tu_uniform(&s) * 2);
            for (size_t j = 0; j < per; j++) {
                int col = (int)(j % side);
                float bright = (col < side / 2) == (y[i] == 0) ? 0.8f : -0.8f;
                x[i * per + j] = bright + 0.5f * (float)(tu_uniform(&s) - 0.5);
            }
        }
        CHECK(basira_net_forward(net, x, n, 1, logits, &err) == BASIRA_OK);
        float loss = basira_softmax_xent(logits, y, n, k, NULL, 0.0f, d, NULL);
        if (step == 0)
            first = loss;
        last = loss;
        basira_net_zero_grad(net);
        CHECK(basira_net_backward(net, d, &err) == BASIRA_OK);
        basira_net_clip_grad(net, 5.0);
        float *v = nn_net_params(net), *g = nn_net_grads(net);
        for (size_t i = 0; i < nn_net_numel(net); i++)
            v[i] -= 0.1f * g[i];
    }
    CHECK_MSG(last < 0.3f * first && last < 0.25f, "loss %g -> %g", first, last);
    /* And in eval mode it classifies fresh samples. */
    int right = 0;
    CHECK(basira_net_forward(net, x, n, 0, logits, &err) == BASIRA_OK);
    for (int i = 0; i < n; i++)
        right += (logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1);
    CHECK_MSG(right >= 14, "%d of 16 right", right);
    free(x);
    basira_net_free(net);
}

static void test_determinism_and_batches(void)
{
    char *json = build("resnet", 16, 3, 8, 1, 0.3);
    if (!json)
        return;
    basira_net *a = tu_net(json, 123), *b = tu_net(json, 123), *c = tu_net(json, 124);
    free(json);
    if (!a || !b || !c)
        return;
    CHECK(memcmp(nn_net_params(a), nn_net_params(b), nn_net_numel(a) * sizeof(float)) == 0);
    CHECK(memcmp(nn_net_params(a), nn_net_params(c), nn_net_numel(a) * sizeof(float)) != 0);
    float x[5 * 3 * 256], la[15], lb[15], l2[6];
    tu_fill(x, sizeof x / sizeof x[0], 8, -1, 1);
    basira_error err;
    /* Training forwards (dropout included) are reproducible from the seed. */
    CHECK(basira_net_forward(a, x, 5, 1, la, &err) == BASIRA_OK);
    CHECK(basira_net_forward(b, x, 5, 1, lb, &err) == BASIRA_OK);
    CHECK(memcmp(la, lb, sizeof la) == 0);
    /* Eval: each sample's logits do not depend on the batch it is in. */
    CHECK(basira_net_forward(a, x, 5, 0, la, &err) == BASIRA_OK);
    CHECK(basira_net_forward(a, x, 2, 0, l2, &err) == BASIRA_OK);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(l2[i], la[i], 1e-5);
    CHECK(basira_net_forward(a, x, 5, 0, lb, &err) == BASIRA_OK);
    CHECK(memcmp(la, lb, sizeof la) == 0);
    /* One thread or two: the same numbers up to rounding. */
    basira_nn_set_threads(2);
    CHECK(basira_net_forward(a, x, 5, 0, lb, &err) == BASIRA_OK);
    basira_nn_set_threads(1);
    for (int i = 0; i < 15; i++)
        CHECK_NEAR(lb[i], la[i], 1e-5);
    basira_net_free(a);
    basira_net_free(b);
    basira_net_free(c);
}

static void test_misuse(void)
{
    char *json = build("resnet", 16, 3, 4, 1, 0.0);
    basira_net *net = json ? tu_net(json, 1) : NULL;
    free(json);
    if (!net)
        return;
    float x[3 * 256] = {0}, l[3], d[3] = {1, 0, 0};
    basira_error err;
    CHECK(basira_net_backward(net, d, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(net, x, 0, 0, l, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(net, NULL, 1, 0, l, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(NULL, x, 1, 0, l, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(net, x, 1, 0, l, &err) == BASIRA_OK);
    /* An eval forward does not make a backward possible. */
    CHECK(basira_net_backward(net, d, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_forward(net, x, 1, 1, l, &err) == BASIRA_OK);
    CHECK(basira_net_backward(net, d, &err) == BASIRA_OK);
    /* Only once per forward: a second backward would double-count. */
    CHECK(basira_net_backward(net, d, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_prepare_inference(net, 0, &err) == BASIRA_E_INVALID_ARGUMENT);
    basira_net_free(net);
    basira_net_free(NULL);
}

static void test_clip_grad(void)
{
    basira_net *net = tu_net("{\"input\":[1,1,1],\"num_classes\":2,\"layers\":[{\"name\":\"f\","
                             "\"type\":\"fc\",\"out_features\":2}],\"output\":\"f\"}",
                             1);
    if (!net)
        return;
    CHECK_EQ_INT(nn_net_numel(net), 4);
    float *g = nn_net_grads(net);
    g[0] = 3;
    g[1] = 0;
    g[2] = 0;
    g[3] = 4;
    CHECK_NEAR(basira_net_clip_grad(net, 0), 5.0, 1e-9);
    CHECK_NEAR(g[3], 4.0, 0);
    CHECK_NEAR(basira_net_clip_grad(net, 1.0), 5.0, 1e-9);
    CHECK_NEAR(g[0], 3.0 / 5.0, 1e-5);
    CHECK_NEAR(g[3], 4.0 / 5.0, 1e-5);
    basira_net_zero_grad(net);
    CHECK(g[0] == 0 && g[3] == 0);
    basira_net_free(net);
}

static void test_metadata(void)
{
    basira_net *net = tu_net("{\"input\":[1,1,1],\"num_classes\":2,\"layers\":[{\"name\":\"f\","
                             "\"type\":\"fc\",\"out_features\":2}],\"output\":\"f\"}",
                             1);
    if (!net)
        return;
    json_t *m = basira_net_metadata(net);
    CHECK(json_is_object(m));
    json_object_set_new(m, "labels", json_string("[\"a\",\"b\"]"));
    CHECK(nn_net_metadata_ref(net) == m);
    const json_t *arch = basira_net_arch(net);
    CHECK_STR(json_string_value(json_object_get(arch, "output")), "f");
    char *s = nn_net_arch_string(net);
    CHECK(s && strstr(s, "\"fc\""));
    basira_net *again = s ? tu_net(s, 1) : NULL;
    CHECK(again && nn_net_numel(again) == 4);
    free(s);
    basira_net_free(again);
    basira_net_free(net);
}

int main(void)
{
    /* One thread: CI runs several tests at once on few cores (oversubscribed OpenMP crawls). */
    basira_nn_set_threads(1);
    RUN(test_resnet_builder);
    RUN(test_mobilenet_builder);
    RUN(test_non_square_builder);
    RUN(test_builder_errors);
    RUN(test_prepare_inference);
    RUN(test_release_values);
    RUN(test_training_learns);
    RUN(test_determinism_and_batches);
    RUN(test_misuse);
    RUN(test_clip_grad);
    RUN(test_metadata);
    return test_summary();
}
