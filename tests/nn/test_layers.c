/*
 * test_layers.c - every layer of the engine, forward and backward:
 *   - numerical gradient checks (central differences) of each layer type placed
 *     between a convolution and the classifier, so both the parameter gradients
 *     and the gradient passed back to the input are checked;
 *   - forward values against naive double-precision references (convolution with
 *     stride/padding/dilation/groups, pooling, batch norm in training and eval,
 *     fc on a channel-blocked input);
 *   - the loss against PyTorch's formulas, and its gradient numerically;
 *   - hostile architectures: each yields BASIRA_E_MODEL, never a crash.
 */
#include "nn_testutil.h"

#include <stdint.h>

#define HEAD(c, h, w)                                                                              \
    "{\"input\":[" #c "," #h "," #w "],\"num_classes\":3,\"layers\":["                             \
    "{\"name\":\"c0\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3,\"padding\":1},"
#define TAIL                                                                                       \
    "{\"name\":\"g\",\"type\":\"gap\"},{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":3}],"     \
    "\"output\":\"fc\"}"

static void gradcheck_ex(const char *what, const char *json, int n, int piecewise)
{
    basira_net *net = tu_net(json, 42);
    if (!net)
        return;
    double worst = tu_gradcheck_ex(net, n, 7, 10, 5e-3, piecewise);
    CHECK_MSG(worst < 1e-2, "%s: worst relative gradient error %g", what, worst);
    basira_net_free(net);
}

static void gradcheck(const char *what, const char *json, int n)
{
    gradcheck_ex(what, json, n, 0);
}

static void test_grad_conv(void)
{
    gradcheck("conv 3x3 pad 1", HEAD(3, 9, 9) TAIL, 3);
    gradcheck("conv stride 2 + bias",
              HEAD(3, 9, 9) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":6,\"kernel\":3,"
                            "\"stride\":2,\"padding\":1,\"bias\":true}," TAIL,
              2);
    gradcheck("conv dilation 2",
              HEAD(3, 9, 9) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":5,\"kernel\":3,"
                            "\"dilation\":2,\"padding\":2,\"bias\":false}," TAIL,
              2);
    gradcheck("conv groups 2",
              HEAD(3, 8, 8) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":6,\"kernel\":3,"
                            "\"groups\":2,\"padding\":1}," TAIL,
              2);
    gradcheck("conv depthwise stride 2",
              HEAD(3, 8, 8) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3,"
                            "\"groups\":4,\"stride\":2,\"padding\":1}," TAIL,
              2);
    gradcheck(
        "conv 1x3 kernel, asymmetric stride",
        HEAD(3, 7, 9) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":[1,3],"
                      "\"stride\":[1,2],\"padding\":[0,1]}," TAIL,
        2);
    gradcheck("conv 1x1 wide (16-channel blocks)",
              HEAD(3, 6, 6) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":32,\"kernel\":1},"
                            "{\"name\":\"c2\",\"type\":\"conv\",\"out_channels\":17,\"kernel\":3,"
                            "\"padding\":1}," TAIL,
              2);
}

static void test_grad_batchnorm(void)
{
    gradcheck(
        "batchnorm (training statistics)",
        HEAD(3, 6, 6) "{\"name\":\"bn\",\"type\":\"batchnorm\"},"
                      "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3}," TAIL,
        4);
    /* Training runs batch norm + ReLU as one fused oneDNN primitive. */
    gradcheck(
        "batchnorm + relu (fused)",
        HEAD(3, 6, 6) "{\"name\":\"bn\",\"type\":\"batchnorm\"},"
                      "{\"name\":\"r\",\"type\":\"relu\"},"
                      "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3}," TAIL,
        4);
    gradcheck("batchnorm on the image",
              "{\"input\":[3,5,5],\"num_classes\":3,\"layers\":["
              "{\"name\":\"bn\",\"type\":\"batchnorm\"}," TAIL,
              3);
}

static void test_grad_activations(void)
{
    gradcheck_ex("relu", HEAD(3, 6, 6) "{\"name\":\"a\",\"type\":\"relu\"}," TAIL, 2, 1);
    gradcheck_ex("relu6", HEAD(3, 6, 6) "{\"name\":\"a\",\"type\":\"relu6\"}," TAIL, 2, 1);
    gradcheck("silu", HEAD(3, 6, 6) "{\"name\":\"a\",\"type\":\"silu\"}," TAIL, 2);
}

static void test_grad_pooling(void)
{
    gradcheck_ex("maxpool 2",
                 HEAD(3, 8, 8) "{\"name\":\"p\",\"type\":\"maxpool\",\"kernel\":2}," TAIL, 2, 1);
    gradcheck_ex("maxpool 3 stride 2 pad 1",
                 HEAD(3, 9, 9) "{\"name\":\"p\",\"type\":\"maxpool\",\"kernel\":3,\"stride\":2,"
                               "\"padding\":1}," TAIL,
                 2, 1);
    gradcheck("avgpool 3 stride 2 pad 1",
              HEAD(3, 9, 9) "{\"name\":\"p\",\"type\":\"avgpool\",\"kernel\":3,\"stride\":2,"
                            "\"padding\":1}," TAIL,
              2);
    gradcheck("gap then fc", HEAD(3, 5, 5) TAIL, 2);
}

static void test_grad_fc_dropout(void)
{
    gradcheck("fc on a 4-D blocked input, fc-relu-fc",
              HEAD(3, 4, 4) "{\"name\":\"f1\",\"type\":\"fc\",\"out_features\":7},"
                            "{\"name\":\"r\",\"type\":\"relu\"},"
                            "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":3}],"
                            "\"output\":\"fc\"}",
              3);
    gradcheck("dropout p=0.3",
              HEAD(3, 6, 6) "{\"name\":\"d\",\"type\":\"dropout\",\"p\":0.3}," TAIL, 3);
    gradcheck("dropout after fc",
              HEAD(3, 4, 4) "{\"name\":\"g\",\"type\":\"gap\"},"
                            "{\"name\":\"f1\",\"type\":\"fc\",\"out_features\":8},"
                            "{\"name\":\"d\",\"type\":\"dropout\",\"p\":0.5},"
                            "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":3}],"
                            "\"output\":\"fc\"}",
              3);
}

static void test_grad_add_concat(void)
{
    gradcheck("residual add",
              HEAD(3, 6, 6) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3,"
                            "\"padding\":1},"
                            "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"c1\",\"c0\"]}," TAIL,
              2);
    gradcheck(
        "add of three, one used twice",
        HEAD(3, 6, 6) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":1},"
                      "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"c1\",\"c0\",\"c0\"]}," TAIL,
        2);
    gradcheck(
        "concat",
        HEAD(3, 6, 6) "{\"name\":\"c1\",\"type\":\"conv\",\"out_channels\":5,\"kernel\":3,"
                      "\"padding\":1},"
                      "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"c0\",\"c1\"]},"
                      "{\"name\":\"c2\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":1}," TAIL,
        2);
    gradcheck(
        "concat with the image",
        HEAD(3, 6, 6) "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"input\",\"c0\"]},"
                      "{\"name\":\"c2\",\"type\":\"conv\",\"out_channels\":4,\"kernel\":3}," TAIL,
        2);
}

/* ---- forward against naive references ---------------------------------------------------- */

/* Naive grouped, dilated, strided, padded convolution in double, NCHW / OIHW. */
static void ref_conv(const float *x, int n, int ic, int ih, int iw, const float *w, const float *b,
                     int oc, int k, int s, int p, int d, int g, int oh, int ow, double *y)
{
    int icg = ic / g, ocg = oc / g;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < oc; o++)
            for (int yy = 0; yy < oh; yy++)
                for (int xx = 0; xx < ow; xx++) {
                    double acc = b ? b[o] : 0.0;
                    int gi = o / ocg;
                    for (int c = 0; c < icg; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int sy = yy * s - p + ky * d, sx = xx * s - p + kx * d;
                                if (sy < 0 || sy >= ih || sx < 0 || sx >= iw)
                                    continue;
                                acc +=
                                    (double)
                                        x[(((size_t)i * ic + gi * icg + c) * ih + sy) * iw + sx] *
                                    w[(((size_t)o * icg + c) * k + ky) * k + kx];
                            }
                    y[(((size_t)i * oc + o) * oh + yy) * ow + xx] = acc;
                }
}

static void ref_fc(const double *x, int n, int in, const float *w, const float *b, int out,
                   double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int j = 0; j < in; j++)
                acc += x[(size_t)i * in + j] * w[(size_t)o * in + j];
            y[i * out + o] = acc;
        }
}

static void check_conv_ref(int ic, int hw, int oc, int k, int s, int p, int d, int g, int bias)
{
    char json[1024];
    int oh = (hw + 2 * p - d * (k - 1) - 1) / s + 1;
    int K = 5, n = 2;
    snprintf(json, sizeof json,
             "{\"input\":[%d,%d,%d],\"num_classes\":%d,\"layers\":["
             "{\"name\":\"c\",\"type\":\"conv\",\"out_channels\":%d,\"kernel\":%d,\"stride\":%d,"
             "\"padding\":%d,\"dilation\":%d,\"groups\":%d,\"bias\":%s},"
             "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":%d}],\"output\":\"fc\"}",
             ic, hw, hw, K, oc, k, s, p, d, g, bias ? "true" : "false", K);
    basira_net *net = tu_net(json, 5);
    if (!net)
        return;
    size_t nx = (size_t)n * ic * hw * hw, ny = (size_t)n * oc * oh * oh;
    float *x = malloc(nx * sizeof *x);
    double *y = malloc(ny * sizeof *y), ref[10];
    float logits[10];
    tu_fill(x, nx, 99, -1, 1);
    const float *w = nn_net_params(net) + nn_net_param_find(net, "c.weight")->offset;
    const nn_param *pb = nn_net_param_find(net, "c.bias");
    ref_conv(x, n, ic, hw, hw, w, pb ? nn_net_params(net) + pb->offset : NULL, oc, k, s, p, d, g,
             oh, oh, y);
    ref_fc(y, n, oc * oh * oh, nn_net_params(net) + nn_net_param_find(net, "fc.weight")->offset,
           nn_net_params(net) + nn_net_param_find(net, "fc.bias")->offset, K, ref);
    basira_error err;
    for (int train = 0; train <= 1; train++) {
        CHECK(basira_net_forward(net, x, n, train, logits, &err) == BASIRA_OK);
        double worst = 0;
        for (int i = 0; i < n * K; i++)
            worst = fmax(worst, fabs(logits[i] - ref[i]));
        CHECK_MSG(worst < 1e-4, "conv ic%d k%d s%d p%d d%d g%d: max diff %g", ic, k, s, p, d, g,
                  worst);
    }
    free(x);
    free(y);
    basira_net_free(net);
}

static void test_conv_forward_reference(void)
{
    check_conv_ref(3, 9, 8, 3, 1, 1, 1, 1, 0);
    check_conv_ref(3, 9, 16, 3, 2, 1, 1, 1, 1);
    check_conv_ref(4, 10, 6, 3, 1, 2, 2, 2, 1);
    check_conv_ref(16, 8, 16, 3, 2, 1, 1, 16, 0); /* depthwise */
    check_conv_ref(8, 7, 24, 1, 1, 0, 1, 1, 0);
    check_conv_ref(32, 5, 32, 3, 1, 1, 1, 32, 1);
}

static void check_pool_ref(int maxp, int k, int s, int p)
{
    char json[512];
    int c = 4, hw = 9, n = 2, K = 3;
    int oh = (hw + 2 * p - k) / s + 1;
    snprintf(json, sizeof json,
             "{\"input\":[%d,%d,%d],\"num_classes\":%d,\"layers\":["
             "{\"name\":\"p\",\"type\":\"%s\",\"kernel\":%d,\"stride\":%d,\"padding\":%d},"
             "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":%d}],\"output\":\"fc\"}",
             c, hw, hw, K, maxp ? "maxpool" : "avgpool", k, s, p, K);
    basira_net *net = tu_net(json, 3);
    if (!net)
        return;
    size_t nx = (size_t)n * c * hw * hw;
    float *x = malloc(nx * sizeof *x), logits[6];
    double *y = malloc((size_t)n * c * oh * oh * sizeof *y), ref[6];
    tu_fill(x, nx, 17, -1, 1);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int yy = 0; yy < oh; yy++)
                for (int xx = 0; xx < oh; xx++) {
                    double acc = maxp ? -INFINITY : 0.0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int sy = yy * s - p + ky, sx = xx * s - p + kx;
                            if (sy < 0 || sy >= hw || sx < 0 || sx >= hw)
                                continue; /* zero padding: adds 0 to the average */
                            double v = x[(((size_t)i * c + ch) * hw + sy) * hw + sx];
                            acc = maxp ? fmax(acc, v) : acc + v;
                        }
                    /* count_include_pad=True: PyTorch divides by the whole window. */
                    y[(((size_t)i * c + ch) * oh + yy) * oh + xx] = maxp ? acc : acc / (k * k);
                }
    ref_fc(y, n, c * oh * oh, nn_net_params(net) + nn_net_param_find(net, "fc.weight")->offset,
           nn_net_params(net) + nn_net_param_find(net, "fc.bias")->offset, K, ref);
    basira_error err;
    CHECK(basira_net_forward(net, x, n, 0, logits, &err) == BASIRA_OK);
    double worst = 0;
    for (int i = 0; i < n * K; i++)
        worst = fmax(worst, fabs(logits[i] - ref[i]));
    CHECK_MSG(worst < 1e-4, "%s k%d s%d p%d: max diff %g", maxp ? "maxpool" : "avgpool", k, s, p,
              worst);
    free(x);
    free(y);
    basira_net_free(net);
}

static void test_pool_forward_reference(void)
{
    check_pool_ref(1, 2, 2, 0);
    check_pool_ref(1, 3, 2, 1);
    check_pool_ref(0, 3, 2, 1);
    check_pool_ref(0, 2, 1, 0);
}

/* Batch norm on the image itself so the reference needs no convolution. */
static void test_batchnorm_reference(void)
{
    const char *json = "{\"input\":[3,4,5],\"num_classes\":2,\"layers\":["
                       "{\"name\":\"bn\",\"type\":\"batchnorm\"},"
                       "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":2}],\"output\":\"fc\"}";
    basira_net *net = tu_net(json, 1);
    if (!net)
        return;
    int n = 4, c = 3, hw = 20;
    float x[240], logits[8];
    tu_fill(x, 240, 5, -2, 3);
    float *v = nn_net_params(net);
    float *gamma = v + nn_net_param_find(net, "bn.weight")->offset;
    float *beta = v + nn_net_param_find(net, "bn.bias")->offset;
    float *rm = v + nn_net_param_find(net, "bn.running_mean")->offset;
    float *rv = v + nn_net_param_find(net, "bn.running_var")->offset;
    for (int i = 0; i < c; i++) {
        gamma[i] = 0.5f + (float)i;
        beta[i] = -0.25f * (float)i;
    }
    double mean[3] = {0}, var[3] = {0};
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++)
                mean[ch] += x[(i * c + ch) * hw + j] / (double)(n * hw);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                double dlt = x[(i * c + ch) * hw + j] - mean[ch];
                var[ch] += dlt * dlt / (double)(n * hw);
            }
    const float *fw = v + nn_net_param_find(net, "fc.weight")->offset;
    const float *fb = v + nn_net_param_find(net, "fc.bias")->offset;
    double y[240], ref[8];
    basira_error err;

    /* Training: batch statistics (biased variance in the normalisation). */
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++)
                y[(i * c + ch) * hw + j] =
                    (x[(i * c + ch) * hw + j] - mean[ch]) / sqrt(var[ch] + 1e-5) * gamma[ch] +
                    beta[ch];
    ref_fc(y, n, c * hw, fw, fb, 2, ref);
    CHECK(basira_net_forward(net, x, n, 1, logits, &err) == BASIRA_OK);
    for (int i = 0; i < n * 2; i++)
        CHECK_NEAR(logits[i], ref[i], 1e-4);
    /* Running statistics: momentum 0.1, unbiased variance, as PyTorch. */
    double cnt = n * hw;
    for (int ch = 0; ch < c; ch++) {
        CHECK_NEAR(rm[ch], 0.1 * mean[ch], 1e-5);
        CHECK_NEAR(rv[ch], 0.9 + 0.1 * var[ch] * cnt / (cnt - 1), 1e-5);
    }

    /* Eval: running statistics. */
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++)
                y[(i * c + ch) * hw + j] =
                    (x[(i * c + ch) * hw + j] - rm[ch]) / sqrt(rv[ch] + 1e-5) * gamma[ch] +
                    beta[ch];
    ref_fc(y, n, c * hw, fw, fb, 2, ref);
    CHECK(basira_net_forward(net, x, n, 0, logits, &err) == BASIRA_OK);
    for (int i = 0; i < n * 2; i++)
        CHECK_NEAR(logits[i], ref[i], 1e-4);
    basira_net_free(net);
}

/* Dropout: in training about p of the units are zeroed and the rest scaled by 1/(1-p). */
static void test_dropout_statistics(void)
{
    const char *json = "{\"input\":[1,1,1],\"num_classes\":4000,\"layers\":["
                       "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":4000,\"bias\":false},"
                       "{\"name\":\"d\",\"type\":\"dropout\",\"p\":0.25}],\"output\":\"d\"}";
    basira_net *net = tu_net(json, 1);
    if (!net)
        return;
    float *w = nn_net_params(net);
    for (int i = 0; i < 4000; i++)
        w[i] = 1.0f;
    float x = 1.0f, *y = malloc(4000 * sizeof *y);
    basira_error err;
    CHECK(basira_net_forward(net, &x, 1, 1, y, &err) == BASIRA_OK);
    int zeros = 0, scaled = 0;
    for (int i = 0; i < 4000; i++) {
        zeros += y[i] == 0.0f;
        scaled += fabsf(y[i] - 1.0f / 0.75f) < 1e-6f;
    }
    CHECK_EQ_INT(zeros + scaled, 4000);
    CHECK_MSG(zeros > 850 && zeros < 1150, "%d of 4000 dropped, expected about 1000", zeros);
    /* A second forward draws another mask. */
    float *y2 = malloc(4000 * sizeof *y2);
    CHECK(basira_net_forward(net, &x, 1, 1, y2, &err) == BASIRA_OK);
    CHECK(memcmp(y, y2, 4000 * sizeof *y) != 0);
    /* Eval: identity. */
    CHECK(basira_net_forward(net, &x, 1, 0, y2, &err) == BASIRA_OK);
    int ones = 0;
    for (int i = 0; i < 4000; i++)
        ones += y2[i] == 1.0f;
    CHECK_EQ_INT(ones, 4000);
    free(y);
    free(y2);
    basira_net_free(net);
}

/* ---- loss --------------------------------------------------------------------------------------
 */

static void test_loss_values(void)
{
    /* Uniform logits: loss = log K whatever the weights and smoothing. */
    float z[8] = {0}, d[8], pr[8];
    int y[2] = {1, 3};
    float w[4] = {1, 2, 3, 4};
    CHECK_NEAR(basira_softmax_xent(z, y, 2, 4, NULL, 0.0f, d, pr), log(4.0), 1e-6);
    CHECK_NEAR(basira_softmax_xent(z, y, 2, 4, w, 0.0f, d, pr), log(4.0), 1e-6);
    CHECK_NEAR(basira_softmax_xent(z, y, 2, 4, NULL, 0.1f, d, pr), log(4.0), 1e-6);
    CHECK_NEAR(pr[5], 0.25, 1e-7);

    /* A worked example, PyTorch's definition written out:
     * loss = sum_i sum_j -w_j q_ij log p_ij / sum_i w_{y_i}, q = (1-e) onehot + e/K. */
    float logits[6] = {2.0f, -1.0f, 0.5f, 0.1f, 0.2f, -0.3f};
    int lab[2] = {0, 2};
    float cw[3] = {0.5f, 1.0f, 2.0f};
    double e = 0.2, num = 0, den = 0;
    for (int i = 0; i < 2; i++) {
        double m = 0, lse;
        for (int j = 0; j < 3; j++)
            m += exp(logits[i * 3 + j]);
        lse = log(m);
        for (int j = 0; j < 3; j++) {
            double q = (j == lab[i] ? 1 - e : 0) + e / 3;
            num -= cw[j] * q * (logits[i * 3 + j] - lse);
        }
        den += cw[lab[i]];
    }
    CHECK_NEAR(basira_softmax_xent(logits, lab, 2, 3, cw, 0.2f, NULL, NULL), num / den, 1e-6);
    /* Without smoothing or weights: mean of -log p_y. */
    double plain = 0;
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 3; j++)
            s += exp(logits[i * 3 + j]);
        plain += -(logits[i * 3 + lab[i]] - log(s)) / 2;
    }
    CHECK_NEAR(basira_softmax_xent(logits, lab, 2, 3, NULL, 0.0f, NULL, NULL), plain, 1e-6);
    /* Large logits stay finite. */
    float big[3] = {1000.0f, -1000.0f, 0.0f};
    int l0 = 1;
    float bl = basira_softmax_xent(big, &l0, 1, 3, NULL, 0.0f, d, pr);
    CHECK(isfinite(bl));
    CHECK_NEAR(bl, 2000.0, 1e-2);
    /* A label out of range contributes nothing and gets no gradient. */
    int bad[2] = {0, 7};
    float dd[6];
    float lb = basira_softmax_xent(logits, bad, 2, 3, NULL, 0.0f, dd, NULL);
    CHECK(isfinite(lb));
    CHECK(dd[3] == 0.0f && dd[4] == 0.0f && dd[5] == 0.0f);
}

static void test_loss_gradient(void)
{
    float z[12], dz[12];
    int y[3] = {3, 0, 2};
    float cw[4] = {1.0f, 0.3f, 2.5f, 0.7f};
    tu_fill(z, 12, 11, -3, 3);
    for (int variant = 0; variant < 4; variant++) {
        const float *w = variant & 1 ? cw : NULL;
        float eps = variant & 2 ? 0.15f : 0.0f;
        basira_softmax_xent(z, y, 3, 4, w, eps, dz, NULL);
        double worst = 0, sum = 0;
        for (int j = 0; j < 12; j++) {
            float keep = z[j];
            z[j] = keep + 1e-2f;
            double lp = basira_softmax_xent(z, y, 3, 4, w, eps, NULL, NULL);
            z[j] = keep - 1e-2f;
            double lm = basira_softmax_xent(z, y, 3, 4, w, eps, NULL, NULL);
            z[j] = keep;
            worst = fmax(worst, fabs((lp - lm) / 2e-2 - dz[j]));
            sum += dz[j];
        }
        CHECK_MSG(worst < 2e-3, "loss variant %d: gradient error %g", variant, worst);
        CHECK_NEAR(sum, 0.0, 1e-5); /* softmax gradients sum to zero per row, so overall */
    }
}

static void test_softmax_temperature(void)
{
    float z[4] = {1, 2, 3, 4}, p1[4], p2[4];
    basira_softmax(z, 1, 4, 1.0f, p1);
    basira_softmax(z, 1, 4, 2.0f, p2);
    double s = 0;
    for (int j = 0; j < 4; j++)
        s += p1[j];
    CHECK_NEAR(s, 1.0, 1e-6);
    CHECK_NEAR(p1[3] / p1[2], exp(1.0), 1e-4);
    CHECK_NEAR(p2[3] / p2[2], exp(0.5), 1e-4);
}

/* ---- hostile architectures ------------------------------------------------------------------- */

static void test_hostile_architectures(void)
{
    static const char *bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[],\"output\":\"x\"}",
        /* unknown type */
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"a\",\"type\":\"lstm\"}],"
        "\"output\":\"a\"}",
        /* undefined input, forward reference (a cycle) and self reference */
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"a\",\"type\":\"relu\","
        "\"inputs\":[\"nowhere\"]}],\"output\":\"a\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"a\",\"type\":\"add\","
        "\"inputs\":[\"input\",\"b\"]},{\"name\":\"b\",\"type\":\"relu\",\"inputs\":[\"a\"]}],"
        "\"output\":\"b\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"a\",\"type\":\"relu\","
        "\"inputs\":[\"a\"]}],\"output\":\"a\"}",
        /* duplicate names, reserved name */
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"a\",\"type\":\"gap\"},"
        "{\"name\":\"a\",\"type\":\"relu\"}],\"output\":\"a\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"input\",\"type\":\"gap\"}],"
        "\"output\":\"input\"}",
        /* negative / zero / absurd sizes */
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":-4,\"kernel\":3}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":0,\"kernel\":3}],\"output\":\"c\"}",
        "{\"input\":[-3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"g\",\"type\":\"gap\"}],"
        "\"output\":\"g\"}",
        "{\"input\":[3,100000,100000],\"num_classes\":3,\"layers\":[{\"name\":\"g\","
        "\"type\":\"gap\"}],\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":2,\"kernel\":99}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":2,\"kernel\":3.5}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":\"2\",\"kernel\":3}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":2,\"kernel\":9}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":4,\"kernel\":3,\"groups\":2}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":4,\"kernel\":3,\"stride\":0}],\"output\":\"c\"}",
        /* huge allocations: a 16384x16384x9 conv, an fc of 2^40 weights */
        "{\"input\":[16384,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":16384,\"kernel\":3,\"padding\":1},{\"name\":\"g\",\"type\":\"gap\"},"
        "{\"name\":\"f\",\"type\":\"fc\",\"out_features\":2}],\"output\":\"f\"}",
        "{\"input\":[3,4096,4096],\"num_classes\":16384,\"layers\":[{\"name\":\"f\","
        "\"type\":\"fc\",\"out_features\":16384}],\"output\":\"f\"}",
        "{\"input\":[64,4096,4096],\"num_classes\":2,\"layers\":[{\"name\":\"g\","
        "\"type\":\"gap\"},{\"name\":\"f\",\"type\":\"fc\",\"out_features\":2}],\"output\":\"f\"}",
        /* output that is not one score per class */
        "{\"input\":[3,8,8],\"num_classes\":2,\"layers\":[{\"name\":\"c\",\"type\":\"conv\","
        "\"out_channels\":2,\"kernel\":3}],\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":5,\"layers\":[{\"name\":\"g\",\"type\":\"gap\"}],"
        "\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"g\",\"type\":\"gap\"}],"
        "\"output\":\"input\"}",
        /* mismatched add / concat, bad dropout, conv after fc */
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"p\",\"type\":\"maxpool\","
        "\"kernel\":2},{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"p\",\"input\"]},"
        "{\"name\":\"g\",\"type\":\"gap\"}],\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"s\",\"type\":\"add\","
        "\"inputs\":[\"input\"]},{\"name\":\"g\",\"type\":\"gap\"}],\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"d\",\"type\":\"dropout\","
        "\"p\":1.0},{\"name\":\"g\",\"type\":\"gap\"}],\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"f\",\"type\":\"fc\","
        "\"out_features\":3},{\"name\":\"c\",\"type\":\"conv\",\"out_channels\":3,\"kernel\":1}],"
        "\"output\":\"c\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[{\"name\":\"r\",\"type\":\"relu\","
        "\"inputs\":[]}],\"output\":\"r\"}",
        "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[7],\"output\":\"r\"}",
        "{\"input\":[3,8],\"num_classes\":3,\"layers\":[{\"name\":\"g\",\"type\":\"gap\"}],"
        "\"output\":\"g\"}",
        "{\"input\":[3,8,8],\"num_classes\":0,\"layers\":[{\"name\":\"g\",\"type\":\"gap\"}],"
        "\"output\":\"g\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        basira_net *net = (basira_net *)1;
        basira_error err;
        basira_code rc = basira_net_new(bad[i], 1, &net, &err);
        CHECK_MSG(rc == BASIRA_E_MODEL, "case %zu: got %s", i, basira_code_name(rc));
        CHECK(net == NULL);
        CHECK(err.message[0] != '\0');
    }
    /* A valid but absurdly long list of layers is refused before allocating. */
    size_t cap = 64 + 5000 * 48;
    char *big = malloc(cap), *q = big;
    q += sprintf(q, "{\"input\":[3,8,8],\"num_classes\":3,\"layers\":[");
    for (int i = 0; i < 5000; i++)
        q += sprintf(q, "%s{\"name\":\"r%d\",\"type\":\"relu\"}", i ? "," : "", i);
    sprintf(q, "],\"output\":\"r0\"}");
    basira_net *net = NULL;
    basira_error err;
    CHECK(basira_net_new(big, 1, &net, &err) == BASIRA_E_MODEL);
    free(big);
    /* Null arguments. */
    CHECK(basira_net_new(NULL, 1, &net, &err) == BASIRA_E_INVALID_ARGUMENT);
}

int main(void)
{
    /* One thread: CI runs several tests at once on few cores (oversubscribed OpenMP crawls). */
    basira_nn_set_threads(1);
    RUN(test_grad_conv);
    RUN(test_grad_batchnorm);
    RUN(test_grad_activations);
    RUN(test_grad_pooling);
    RUN(test_grad_fc_dropout);
    RUN(test_grad_add_concat);
    RUN(test_conv_forward_reference);
    RUN(test_pool_forward_reference);
    RUN(test_batchnorm_reference);
    RUN(test_dropout_statistics);
    RUN(test_loss_values);
    RUN(test_loss_gradient);
    RUN(test_softmax_temperature);
    RUN(test_hostile_architectures);
    return test_summary();
}
