/* Tests of mixup (src/train/mixup.c): the Beta draw's moments, the pairing, the blend, and
 * the mixed loss against its definition, the soft-target gradient and finite differences. */
#include "basira/nn.h"
#include "test.h"
#include "train/mixup.h"

#include <math.h>
#include <string.h>

/* Mean and variance of n draws of Beta(alpha, alpha) from seed; all must lie in [0, 1]. */
static int beta_moments(double alpha, uint64_t seed, int n, double *mean, double *var)
{
    uint64_t rng = seed;
    double s = 0, s2 = 0;
    int outside = 0;
    for (int i = 0; i < n; i++) {
        double l = basira_mixup_lambda(alpha, &rng);
        outside += !(l >= 0.0 && l <= 1.0);
        s += l;
        s2 += l * l;
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
    return outside;
}

static void test_lambda(void)
{
    uint64_t rng = 7;
    /* alpha 0 (or below, or NaN): no mixing. */
    CHECK(basira_mixup_lambda(0.0, &rng) == 1.0);
    CHECK(basira_mixup_lambda(-1.0, &rng) == 1.0);
    CHECK(basira_mixup_lambda(NAN, &rng) == 1.0);
    CHECK(basira_mixup_lambda(0.4, NULL) == 1.0);
    /* Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); 40,000 draws put the sample variance
     * within about 1% of it (its standard error is under 0.002 for these a). */
    const double alphas[] = {0.2, 0.4, 1.0, 4.0};
    for (size_t i = 0; i < sizeof alphas / sizeof alphas[0]; i++) {
        double a = alphas[i], mean, var;
        CHECK_EQ_INT(beta_moments(a, 1000 + i, 40000, &mean, &var), 0);
        CHECK_MSG(fabs(mean - 0.5) < 0.01, "alpha %g: mean %g", a, mean);
        double want = 1.0 / (4.0 * (2.0 * a + 1.0));
        CHECK_MSG(fabs(var - want) < 0.006, "alpha %g: variance %g, want %g", a, var, want);
    }
    /* Small alpha puts the mass near 0 and 1 (the images are mostly one of the pair). */
    rng = 3;
    int near_ends = 0;
    for (int i = 0; i < 1000; i++) {
        double l = basira_mixup_lambda(0.2, &rng);
        near_ends += l < 0.1 || l > 0.9;
    }
    CHECK_MSG(near_ends > 500, "%d of 1000 draws near 0 or 1", near_ends);
    /* The same seed, the same draws. */
    uint64_t r1 = 42, r2 = 42;
    for (int i = 0; i < 10; i++)
        CHECK(basira_mixup_lambda(0.3, &r1) == basira_mixup_lambda(0.3, &r2));
}

static void test_perm(void)
{
    enum { N = 64 };
    int p[N], q[N], seen[N] = {0};
    uint64_t r1 = 9, r2 = 9, r3 = 10;
    basira_mixup_perm(N, &r1, p);
    basira_mixup_perm(N, &r2, q);
    CHECK(!memcmp(p, q, sizeof p));
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(p[i] >= 0 && p[i] < N);
        if (p[i] >= 0 && p[i] < N)
            seen[p[i]]++;
        fixed += p[i] == i;
    }
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK_MSG(fixed < N / 4, "%d fixed points", fixed);
    basira_mixup_perm(N, &r3, q);
    CHECK(memcmp(p, q, sizeof p) != 0);
    int one[1] = {5};
    basira_mixup_perm(1, &r3, one);
    CHECK_EQ_INT(one[0], 0);
}

static void test_inputs(void)
{
    const float x[3 * 2] = {1, 2, 10, 20, 100, 200};
    const int perm[3] = {2, 0, 1};
    float out[6];
    basira_mixup_inputs(x, 3, 2, perm, 0.75, out);
    const float want[6] = {0.75f * 1 + 0.25f * 100,  0.75f * 2 + 0.25f * 200,
                           0.75f * 10 + 0.25f * 1,   0.75f * 20 + 0.25f * 2,
                           0.75f * 100 + 0.25f * 10, 0.75f * 200 + 0.25f * 20};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(out[i], want[i], 1e-4);
    basira_mixup_inputs(x, 3, 2, perm, 1.0, out);
    CHECK(!memcmp(out, x, sizeof out));
}

enum { N = 4, K = 3 };
static const float logits0[N * K] = {0.5f,  -1.0f, 2.0f, 1.5f, 0.2f, -0.3f,
                                     -2.0f, 0.7f,  0.1f, 0.0f, 0.0f, 1.0f};
static const int labels[N] = {2, 0, 1, 1};
static const int perm[N] = {1, 3, 0, 2};

static float mixed(const float *z, double lambda, const float *w, float eps, float *dz)
{
    float scratch[N * K];
    int pl[N];
    return basira_mixup_xent(z, labels, perm, lambda, N, K, w, eps, dz, scratch, pl);
}

static void test_xent(void)
{
    float dz[N * K], dref[N * K], dsoft[N * K];
    const float w[K] = {1.0f, 2.0f, 0.5f};
    /* lambda 1: the plain loss and gradient. */
    float l = mixed(logits0, 1.0, w, 0.1f, dz);
    float lr = basira_softmax_xent(logits0, labels, N, K, w, 0.1f, dref, NULL);
    CHECK_NEAR(l, lr, 1e-6);
    for (int i = 0; i < N * K; i++)
        CHECK_NEAR(dz[i], dref[i], 1e-7);
    /* lambda 0: the loss of the paired labels. */
    int pl[N];
    for (int i = 0; i < N; i++)
        pl[i] = labels[perm[i]];
    l = mixed(logits0, 0.0, w, 0.1f, dz);
    lr = basira_softmax_xent(logits0, pl, N, K, w, 0.1f, dref, NULL);
    CHECK_NEAR(l, lr, 1e-6);
    for (int i = 0; i < N * K; i++)
        CHECK_NEAR(dz[i], dref[i], 1e-7);
    /* Unweighted, no smoothing: the gradient is that of the soft target
     * q = lambda e_y + (1 - lambda) e_y', (softmax(z) - q) / N, as PyTorch's
     * cross_entropy with probabilities as the target gives. */
    const double lam = 0.3;
    mixed(logits0, lam, NULL, 0.0f, dz);
    float p[N * K];
    basira_softmax(logits0, N, K, 1.0f, p);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < K; j++) {
            double q = lam * (j == labels[i]) + (1 - lam) * (j == labels[perm[i]]);
            dsoft[i * K + j] = (float)((p[i * K + j] - q) / N);
        }
    for (int i = 0; i < N * K; i++)
        CHECK_NEAR(dz[i], dsoft[i], 1e-6);
    /* Weighted and smoothed: central differences of the mixed loss. */
    mixed(logits0, lam, w, 0.1f, dz);
    for (int e = 0; e < N * K; e++) {
        float z[N * K];
        memcpy(z, logits0, sizeof z);
        const float h = 1e-2f;
        z[e] = logits0[e] + h;
        double up = mixed(z, lam, w, 0.1f, NULL);
        z[e] = logits0[e] - h;
        double down = mixed(z, lam, w, 0.1f, NULL);
        CHECK_MSG(fabs((up - down) / (2 * h) - dz[e]) < 2e-4, "logit %d: %g against %g", e,
                  (up - down) / (2 * h), dz[e]);
    }
    /* Bad arguments: NAN, as basira_softmax_xent. */
    float scratch[N * K];
    CHECK(isnan(basira_mixup_xent(logits0, labels, NULL, lam, N, K, NULL, 0, dz, scratch, pl)));
    CHECK(isnan(basira_mixup_xent(logits0, labels, perm, lam, N, K, NULL, 0, dz, NULL, pl)));
}

int main(void)
{
    RUN(test_lambda);
    RUN(test_perm);
    RUN(test_inputs);
    RUN(test_xent);
    return test_summary();
}
