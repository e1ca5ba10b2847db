/*
 * test_int8.c - int8 post-training quantisation of prepared inference (quant.c): the
 * ResNet-style and MobileNetV2 families at 32 px, calibrated on one batch and run on
 * another, against the same net in fp32:
 *   - logits within 10% of the largest |logit|, mean error under 3%  (measured: see stderr)
 *   - the fp32 plan made again after int8 gives the fp32 logits bit for bit
 *   - int8 refused before calibration, calibration refused on a net not prepared
 *   - calibration with the net set to int8 still measures fp32 ranges (same scales)
 *   - the ranges saved in the model file give the same int8 logits after a load, without
 *     calibrating again; a calibration that does not fit is refused, a stale one not saved
 * The batch norms get running statistics from training forwards and random biases, so
 * that the folded bias (added in the accumulator's units) matters.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn_testutil.h"

#define NB 8
#define SIDE 32
#define K 7

static char *arch(const char *family)
{
    int resnet = !strcmp(family, "resnet");
    basira_arch_params ap = {family, SIDE, 0, K, resnet ? 16 : 32, resnet ? 2 : 10, 0.2};
    basira_error err;
    char *a = basira_arch_build(&ap, &err);
    CHECK_MSG(a != NULL, "arch: %s", a ? "" : err.message);
    return a;
}

/* The whole file, malloc'd (NULL on failure). */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (fp && !fseek(fp, 0, SEEK_END) && (n = ftell(fp)) > 0 && !fseek(fp, 0, SEEK_SET) &&
        (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (fp)
        fclose(fp);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

/* A loaded copy of the file in buf prepared for batch NB, or NULL (rc in *rc); int8: set to
 * int8 before it is prepared, as basira_classifier_load_precision() does. */
static basira_net *load_prepared(const char *buf, size_t len, int int8, basira_code *rc,
                                 basira_error *err)
{
    basira_net *net = NULL;
    *rc = basira_net_load_buffer(buf, len, &net, err);
    if (!*rc && int8)
        *rc = basira_net_set_inference_precision(net, BASIRA_PRECISION_INT8, err);
    if (!*rc && (*rc = basira_net_prepare_inference(net, NB, err))) {
        basira_net_free(net);
        net = NULL;
    }
    return net;
}

/*
 * The calibration travels with the model file: a calibrated net saved and loaded runs in
 * int8 without calibrating again and gives the int8 logits q of the original bit for bit;
 * a calibration that does not fit the architecture is refused at load; ranges of weights
 * changed since calibration are not saved.
 */
static void saved_calibration(const char *name, basira_net *net, const float *xt, const float *q)
{
    char dir[] = "/tmp/basira_int8_XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    basira_error err;
    basira_code rc;
    size_t len = 0;
    char *buf = NULL;
    CHECK_MSG(!basira_net_save(net, path, &err), "%s: save: %s", name, err.message);
    if ((buf = slurp(path, &len)) != NULL) {
        CHECK_MSG(memmem(buf, len, "int8_calibration", 16) != NULL, "%s: no calibration saved",
                  name);
        float again[NB * K];
        basira_net *back = load_prepared(buf, len, 1, &rc, &err);
        CHECK_MSG(back != NULL, "%s: load in int8: %s", name, err.message);
        if (back) {
            CHECK_EQ_INT(basira_net_inference_precision(back), BASIRA_PRECISION_INT8);
            CHECK(!basira_net_forward(back, xt, NB, 0, again, &err));
            CHECK_MSG(!memcmp(q, again, sizeof again), "%s: int8 logits changed by the file", name);
            basira_net_free(back);
        }
        back = load_prepared(buf, len, 0, &rc, &err);
        CHECK_MSG(back != NULL, "%s: load: %s", name, err.message);
        if (back) {
            CHECK_MSG(!json_object_get(basira_net_metadata(back), "int8_calibration"),
                      "%s: the calibration leaked into the metadata map", name);
            CHECK_MSG(!basira_net_set_inference_precision(back, BASIRA_PRECISION_INT8, &err),
                      "%s: int8 after load: %s", name, err.message);
            CHECK(!basira_net_forward(back, xt, NB, 0, again, &err));
            CHECK_MSG(!memcmp(q, again, sizeof again), "%s: int8 logits changed by the file", name);
            basira_net_free(back);
        }
        /* The same file with a calibration of another version, or for other tensors. */
        static const char *const from[] = {"version\\\":1", "tensors\\\":"};
        for (int k = 0; k < 2; k++) {
            char *at = memmem(buf, len, from[k], strlen(from[k]));
            CHECK_MSG(at != NULL, "%s: %s not in the file", name, from[k]);
            if (!at)
                continue;
            char *bad = malloc(len);
            if (!bad)
                continue;
            memcpy(bad, buf, len);
            char *digit = bad + (at - buf) + strlen(from[k]) - (k == 0); /* 1, first of N */
            *digit = *digit == '9' ? '8' : (char)(*digit + 1);
            basira_net *b = load_prepared(bad, len, 0, &rc, &err);
            CHECK_EQ_INT(rc, BASIRA_E_MODEL);
            CHECK_MSG(b == NULL && strstr(err.message, "int8 calibration") != NULL,
                      "%s: message: %s", name, err.message);
            basira_net_free(b);
            free(bad);
        }
        free(buf);
    }
    /* Weights changed after calibration (an EMA swap, a reload): the ranges are stale. */
    nn_net_params_changed(net);
    CHECK(!basira_net_save(net, path, &err));
    if ((buf = slurp(path, &len)) != NULL) {
        CHECK_MSG(memmem(buf, len, "int8_calibration", 16) == NULL,
                  "%s: a stale calibration was saved", name);
        basira_net *back = load_prepared(buf, len, 0, &rc, &err);
        CHECK_MSG(back != NULL, "%s: load: %s", name, err.message);
        if (back)
            CHECK_EQ_INT(basira_net_set_inference_precision(back, BASIRA_PRECISION_INT8, &err),
                         BASIRA_E_INVALID_ARGUMENT);
        basira_net_free(back);
        free(buf);
    }
    remove(path);
    rmdir(dir);
}

static void family(const char *name, char *json)
{
    if (!json)
        return;
    basira_error err;
    basira_net *net = tu_net(json, 5);
    free(json);
    if (!net)
        return;
    static float xc[NB * 3 * SIDE * SIDE], xt[NB * 3 * SIDE * SIDE];
    float ref[NB * K], q[NB * K], again[NB * K];
    tu_fill(xc, sizeof xc / sizeof *xc, 1, -2, 2);
    tu_fill(xt, sizeof xt / sizeof *xt, 2, -2, 2);
    /* Training forwards give the batch norms running statistics of real activations (a
     * fresh net's identity statistics would let MobileNetV2's activations vanish), and
     * beta a non-zero bias after folding. */
    for (int r = 0; r < 30; r++)
        CHECK(!basira_net_forward(net, xc, NB, 1, ref, &err));
    for (size_t i = 0; i < nn_net_param_count(net); i++) {
        const nn_param *pp = nn_net_param(net, i);
        size_t len = strlen(pp->name);
        if (len > 5 && !strcmp(pp->name + len - 5, ".bias"))
            tu_fill(nn_net_params(net) + pp->offset, pp->numel, 40 + i, -0.3f, 0.3f);
    }
    CHECK_EQ_INT(basira_net_calibrate(net, xc, NB, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(!basira_net_prepare_inference(net, NB, &err));
    CHECK_EQ_INT(basira_net_set_inference_precision(net, BASIRA_PRECISION_INT8, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, "calibration") != NULL, "message: %s", err.message);
    CHECK(!basira_net_forward(net, xt, NB, 0, ref, &err));
    CHECK_MSG(!basira_net_calibrate(net, xc, NB, &err), "calibrate: %s", err.message);
    CHECK_MSG(!basira_net_set_inference_precision(net, BASIRA_PRECISION_INT8, &err), "%s",
              err.message);
    CHECK_EQ_INT(basira_net_inference_precision(net), BASIRA_PRECISION_INT8);
    CHECK_MSG(!basira_net_forward(net, xt, NB, 0, q, &err), "int8 forward: %s", err.message);
    double m = 0, d = 0, sum = 0;
    int agree = 0;
    for (int i = 0; i < NB * K; i++) {
        m = fmax(m, fabs((double)ref[i]));
        d = fmax(d, fabs((double)ref[i] - q[i]));
        sum += fabs((double)ref[i] - q[i]);
    }
    for (int b = 0; b < NB; b++) {
        int ar = 0, aq = 0;
        for (int k = 1; k < K; k++) {
            if (ref[b * K + k] > ref[b * K + ar])
                ar = k;
            if (q[b * K + k] > q[b * K + aq])
                aq = k;
        }
        agree += ar == aq;
    }
    fprintf(stderr,
            "  %-12s int8 logits: max |diff| %.3g, mean %.3g (max |logit| %.3g), top class %d/%d\n",
            name, d, sum / (NB * K), m, agree, NB);
    CHECK_MSG(d <= 0.10 * m, "%s: int8 logits differ by %g (max %g)", name, d, m);
    CHECK_MSG(sum / (NB * K) <= 0.03 * m, "%s: mean int8 error %g", name, sum / (NB * K));
    CHECK_MSG(d > 0, "%s: int8 gave the fp32 logits bit for bit: not quantised", name);
    saved_calibration(name, net, xt, q);
    /* Calibrating again while in int8 measures the fp32 plan: the same ranges, same logits. */
    CHECK(!basira_net_calibrate(net, xc, NB, &err));
    CHECK_EQ_INT(basira_net_inference_precision(net), BASIRA_PRECISION_INT8);
    CHECK(!basira_net_forward(net, xt, NB, 0, again, &err));
    CHECK(!memcmp(q, again, sizeof q));
    CHECK(!basira_net_set_inference_precision(net, BASIRA_PRECISION_FP32, &err));
    CHECK(!basira_net_forward(net, xt, NB, 0, again, &err));
    CHECK(!memcmp(ref, again, sizeof ref));
    basira_net_free(net);
}

/* Pools, concat, a residual add and SiLU around int8 convolutions (not in the families). */
static char *mixed(void)
{
    static const char j[] =
        "{\"input\":[3,32,32],\"num_classes\":7,\"layers\":["
        "{\"type\":\"conv\",\"name\":\"c\",\"out_channels\":16,\"kernel\":3,\"padding\":1},"
        "{\"type\":\"batchnorm\",\"name\":\"b\"},{\"type\":\"relu\",\"name\":\"r\"},"
        "{\"type\":\"maxpool\",\"name\":\"mp\",\"kernel\":2},"
        "{\"type\":\"avgpool\",\"name\":\"ap\",\"kernel\":3,\"stride\":1,\"padding\":1},"
        "{\"type\":\"concat\",\"name\":\"cat\",\"inputs\":[\"mp\",\"ap\"]},"
        "{\"type\":\"conv\",\"name\":\"c2\",\"out_channels\":32,\"kernel\":1,\"padding\":0},"
        "{\"type\":\"silu\",\"name\":\"s\"},"
        "{\"type\":\"conv\",\"name\":\"c3\",\"out_channels\":32,\"kernel\":3,\"padding\":1},"
        "{\"type\":\"add\",\"name\":\"a\",\"inputs\":[\"c3\",\"s\"]},"
        "{\"type\":\"gap\",\"name\":\"g\"},{\"type\":\"fc\",\"name\":\"fc\",\"out_features\":7}],"
        "\"output\":\"fc\"}";
    return strdup(j);
}

static void test_families(void)
{
    family("resnet", arch("resnet"));
    family("mobilenetv2", arch("mobilenetv2"));
    family("pools+concat", mixed());
}

int main(void)
{
    basira_nn_set_threads(1);
    RUN(test_families);
    return test_summary();
}
