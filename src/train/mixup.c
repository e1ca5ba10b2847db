/*
 * mixup.c - mixup of a training step's images and labels (mixup.h).
 *
 * Beta(a, a) is drawn as G1 / (G1 + G2) with G ~ Gamma(a, 1) (Marsaglia & Tsang 2000;
 * for a < 1, Gamma(a) = Gamma(a + 1) * U^(1/a)). The loss is linear in the target, so
 * the mixed loss and its gradient are the two labels' losses and gradients combined with
 * lambda: the gradient stays exactly that of basira_softmax_xent(), which is checked
 * against PyTorch (tests/nn).
 */
#include "train/mixup.h"

#include "basira/nn.h"
#include "train/rng.h"

#include <math.h>

/* A standard normal draw (Box-Muller; the second value is dropped to keep the stream simple). */
static double normal(uint64_t *rng)
{
    double u1 = 1.0 - basira_rng_uniform(rng); /* (0, 1]: log(u1) is finite */
    double u2 = basira_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Gamma(a, 1), a > 0. */
static double gamma_draw(double a, uint64_t *rng)
{
    double boost = 1.0;
    if (a < 1.0) {
        double u = 1.0 - basira_rng_uniform(rng);
        boost = pow(u, 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = normal(rng), v = 1.0 + c * z;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = 1.0 - basira_rng_uniform(rng);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

double basira_mixup_lambda(double alpha, uint64_t *rng)
{
    if (!(alpha > 0.0) || !rng)
        return 1.0;
    double g1 = gamma_draw(alpha, rng), g2 = gamma_draw(alpha, rng);
    /* Both underflow to 0 only for a tiny alpha: then the draw is 0 or 1 anyway. */
    if (!(g1 + g2 > 0.0))
        return basira_rng_below(rng, 2) ? 1.0 : 0.0;
    return g1 / (g1 + g2);
}

void basira_mixup_perm(int n, uint64_t *rng, int *perm)
{
    if (!perm || n < 1 || !rng)
        return;
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)basira_rng_below(rng, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void basira_mixup_inputs(const float *x, int n, size_t per, const int *perm, double lambda,
                         float *out)
{
    if (!x || !perm || !out || n < 1)
        return;
    float a = (float)lambda, b = (float)(1.0 - lambda);
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * per, *xj = x + (size_t)perm[i] * per;
        float *o = out + (size_t)i * per;
        for (size_t e = 0; e < per; e++)
            o[e] = a * xi[e] + b * xj[e];
    }
}

float basira_mixup_xent(const float *logits, const int *labels, const int *perm, double lambda,
                        int n, int k, const float *class_weights, float label_smoothing,
                        float *dlogits, float *scratch, int *perm_labels)
{
    if (!logits || !labels || !perm || !perm_labels || n < 1 || k < 1 || (dlogits && !scratch))
        return NAN;
    for (int i = 0; i < n; i++)
        perm_labels[i] = labels[perm[i]];
    float la =
        basira_softmax_xent(logits, labels, n, k, class_weights, label_smoothing, dlogits, NULL);
    float lb = basira_softmax_xent(logits, perm_labels, n, k, class_weights, label_smoothing,
                                   dlogits ? scratch : NULL, NULL);
    if (dlogits)
        for (size_t e = 0; e < (size_t)n * (size_t)k; e++)
            dlogits[e] = (float)(lambda * dlogits[e] + (1.0 - lambda) * scratch[e]);
    return (float)(lambda * la + (1.0 - lambda) * lb);
}
