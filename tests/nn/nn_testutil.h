/*
 * nn_testutil.h - helpers shared by the engine's tests: building small nets from
 * JSON written inline, random data, and the numerical gradient check.
 *
 * The gradient check uses the scalar L = sum_ij r_ij * logits_ij for a fixed random
 * r, so dL/dlogits = r goes into basira_net_backward(), and compares every checked
 * parameter gradient with a central difference (L(w + h) - L(w - h)) / 2h computed
 * with training-mode forwards. The dropout RNG is rewound before each forward so
 * the same units are dropped in every evaluation.
 */
#ifndef BASIRA_TESTS_NN_TESTUTIL_H
#define BASIRA_TESTS_NN_TESTUTIL_H

#include <stdint.h>

#include "basira/nn.h"
#include "nn/engine.h"
#include "nn/internal.h"
#include "test.h"

static inline double tu_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

static inline void tu_fill(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)tu_uniform(&s);
}

static inline basira_net *tu_net(const char *json, uint64_t seed)
{
    basira_net *net = NULL;
    basira_error err;
    basira_code rc = basira_net_new(json, seed, &net, &err);
    CHECK_MSG(rc == BASIRA_OK, "basira_net_new: %s", rc ? err.message : "");
    return net;
}

static inline double tu_loss(basira_net *net, const float *x, int n, const float *r, float *logits,
                             uint64_t rng)
{
    basira_error err;
    net->rng = rng;
    if (basira_net_forward(net, x, n, 1, logits, &err)) {
        fprintf(stderr, "forward: %s\n", err.message);
        return NAN;
    }
    double l = 0;
    int k = basira_net_num_classes(net);
    for (int i = 0; i < n * k; i++)
        l += (double)r[i] * (double)logits[i];
    return l;
}

/*
 * Check up to per_param entries of every trainable parameter. Returns the worst
 * error relative to max(0.05, |numerical|), and prints the details of failures.
 *
 * piecewise = 1 for nets that are piecewise linear in each weight (conv, relu, max
 * pool, fc without batch norm): there the second difference L(w+h) - 2L(w) + L(w-h)
 * is zero up to rounding unless the step crossed a kink (a ReLU input or a max-pool
 * winner changing), where the central difference means nothing; such samples are
 * skipped, and at most a quarter of them may be.
 */
static inline double tu_gradcheck_ex(basira_net *net, int n, uint64_t seed, int per_param, double h,
                                     int piecewise)
{
    int c, hh, w;
    basira_net_input_shape(net, &c, &hh, &w);
    int k = basira_net_num_classes(net);
    size_t nx = (size_t)n * c * hh * w;
    float *x = malloc(nx * sizeof *x), *r = malloc((size_t)n * k * sizeof *r);
    float *logits = malloc((size_t)n * k * sizeof *logits);
    tu_fill(x, nx, seed, -1.0f, 1.0f);
    tu_fill(r, (size_t)n * k, seed + 1, -1.0f, 1.0f);
    uint64_t rng = net->rng;
    basira_error err;
    basira_net_zero_grad(net);
    tu_loss(net, x, n, r, logits, rng);
    basira_code rc = basira_net_backward(net, r, &err);
    CHECK_MSG(rc == BASIRA_OK, "backward: %s", rc ? err.message : "");
    size_t numel = nn_net_numel(net);
    float *g = malloc(numel * sizeof *g);
    memcpy(g, nn_net_grads(net), numel * sizeof *g);
    float *v = nn_net_params(net);
    /* Running statistics move at every training forward: save them and restore. */
    float *saved = malloc(numel * sizeof *saved);
    memcpy(saved, v, numel * sizeof *saved);
    double worst = 0, l0 = tu_loss(net, x, n, r, logits, rng);
    int checked = 0, skipped = 0;
    uint64_t pick = seed * 7 + 3;
    for (size_t pi = 0; pi < nn_net_param_count(net); pi++) {
        const nn_param *p = nn_net_param(net, pi);
        if (!p->trainable)
            continue;
        int m = (int)p->numel < per_param ? (int)p->numel : per_param;
        for (int t = 0; t < m; t++) {
            size_t j = (int)p->numel <= per_param ? (size_t)t
                                                  : (size_t)(tu_uniform(&pick) * (double)p->numel);
            size_t at = p->offset + j;
            float orig = saved[at];
            memcpy(v, saved, numel * sizeof *v);
            v[at] = orig + (float)h;
            double lp = tu_loss(net, x, n, r, logits, rng);
            memcpy(v, saved, numel * sizeof *v);
            v[at] = orig - (float)h;
            double lm = tu_loss(net, x, n, r, logits, rng);
            double num = (lp - lm) / (2 * h);
            if (piecewise && fabs(lp - 2 * l0 + lm) > 2e-6 * (1 + fabs(l0))) {
                skipped++;
                continue;
            }
            checked++;
            double e = fabs(num - (double)g[at]) / fmax(0.05, fabs(num));
            if (e > worst)
                worst = e;
            if (e > 2e-2)
                fprintf(stderr, "  %s[%zu]: analytic %.6g numerical %.6g\n", p->name, j, g[at],
                        num);
        }
    }
    memcpy(v, saved, numel * sizeof *v);
    CHECK_MSG(skipped * 3 <= checked, "%d samples crossed a kink, %d checked", skipped, checked);
    free(saved);
    free(g);
    free(x);
    free(r);
    free(logits);
    return worst;
}

static inline double tu_gradcheck(basira_net *net, int n, uint64_t seed, int per_param, double h)
{
    return tu_gradcheck_ex(net, n, seed, per_param, h, 0);
}

#endif
