/* Tests of the NT-Xent loss of `basira train --contrastive` (src/train/contrastive.c): a
 * value known in closed form, its invariances, the gradient against central finite
 * differences, and the refusals. With the argument "torch" it compares loss and gradient
 * with PyTorch's instead (tests/train/ntxent_torch.py: F.normalize, a masked cross-entropy,
 * autograd in double; skipped when /usr/bin/python3 has no torch). */
#include "test.h"
#include "train/contrastive.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static float work[4096];

static void fill(float *z, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        z[i] = (float)((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* Two photos whose views agree exactly and are orthogonal to the other photo's:
 * every row has its positive at 1/tau and two negatives at 0, so
 * loss = log(2 + e^(1/tau)) - 1/tau. Lengths do not matter (the embeddings are normalised). */
static void test_known_value(void)
{
    const float z[4 * 2] = {3, 0, 0, 0.5f, 1, 0, 0, 7};
    for (float tau = 0.1f; tau < 1.05f; tau += 0.3f) {
        double want = log(2.0 + exp(1.0 / tau)) - 1.0 / tau;
        CHECK_NEAR(basira_ntxent(z, 4, 2, tau, NULL, work), want, 1e-6 * (1 + fabs(want)));
    }
    /* All four the same: no photo can be told from another, loss = log(3). */
    const float same[4 * 2] = {1, 1, 2, 2, 3, 3, 0.1f, 0.1f};
    CHECK_NEAR(basira_ntxent(same, 4, 2, 0.2f, NULL, work), log(3.0), 1e-6);
}

/* Scaling an embedding changes nothing, and swapping the two halves (which view is "first")
 * neither; the gradient is orthogonal to each embedding and scales as 1 / length. */
static void test_invariances(void)
{
    enum { N = 8, D = 5 };
    float z[N * D], z2[N * D], g[N * D], g2[N * D];
    fill(z, N * D, 11);
    float l = basira_ntxent(z, N, D, 0.3f, g, work);
    CHECK(isfinite(l) && l > 0);
    for (int i = 0; i < N * D; i++)
        z2[i] = z[i] * (1.0f + (float)(i / D)); /* row r scaled by r + 1 */
    CHECK_NEAR(basira_ntxent(z2, N, D, 0.3f, g2, work), l, 1e-5);
    for (int r = 0; r < N; r++) {
        double dot = 0;
        for (int k = 0; k < D; k++) {
            dot += (double)g[r * D + k] * z[r * D + k];
            CHECK_NEAR(g2[r * D + k] * (1.0f + (float)r), g[r * D + k], 1e-5);
        }
        CHECK_NEAR(dot, 0.0, 1e-6);
    }
    for (int r = 0; r < N; r++)
        for (int k = 0; k < D; k++)
            z2[r * D + k] = z[((r + N / 2) % N) * D + k];
    CHECK_NEAR(basira_ntxent(z2, N, D, 0.3f, NULL, work), l, 1e-5);
    /* The views of one photo pulled together lower the loss. */
    for (int k = 0; k < D; k++)
        z2[k] = z[k], z2[(N / 2) * D + k] = z[k];
    for (int r = 1; r < N; r++)
        if (r != N / 2)
            for (int k = 0; k < D; k++)
                z2[r * D + k] = z[r * D + k];
    CHECK(basira_ntxent(z2, N, D, 0.3f, NULL, work) < l);
}

/* d loss / d z against central differences, at two temperatures and two sizes. */
static void test_gradient(void)
{
    const int sizes[][2] = {{4, 3}, {12, 6}};
    const float taus[] = {0.1f, 0.5f};
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++) {
            int n = sizes[s][0], d = sizes[s][1];
            float z[12 * 6], g[12 * 6];
            fill(z, n * d, 100 + (uint64_t)(s * 2 + t));
            CHECK(isfinite(basira_ntxent(z, n, d, taus[t], g, work)));
            double worst = 0;
            for (int i = 0; i < n * d; i++) {
                const float h = 1e-2f;
                float keep = z[i];
                z[i] = keep + h;
                double up = basira_ntxent(z, n, d, taus[t], NULL, work);
                z[i] = keep - h;
                double down = basira_ntxent(z, n, d, taus[t], NULL, work);
                z[i] = keep;
                double fd = (up - down) / (2.0 * h), e = fabs(fd - g[i]);
                worst = e > worst ? e : worst;
            }
            CHECK_MSG(worst < 2e-3, "n %d d %d tau %.1f: worst gradient error %.2e", n, d,
                      (double)taus[t], worst);
        }
}

static void test_refusals(void)
{
    float z[6 * 2];
    fill(z, 12, 5);
    CHECK(isnan(basira_ntxent(z, 5, 2, 0.2f, NULL, work))); /* odd: no pairs */
    CHECK(isnan(basira_ntxent(z, 2, 2, 0.2f, NULL, work))); /* one photo: no negative */
    CHECK(isnan(basira_ntxent(z, 4, 0, 0.2f, NULL, work))); /* no dimension */
    CHECK(isnan(basira_ntxent(z, 4, 2, 0.0f, NULL, work))); /* temperature */
    CHECK(isnan(basira_ntxent(z, 4, 2, NAN, NULL, work)));
    CHECK(isnan(basira_ntxent(NULL, 4, 2, 0.2f, NULL, work)));
    CHECK(isnan(basira_ntxent(z, 4, 2, 0.2f, NULL, NULL)));
    z[3] = NAN;
    CHECK(isnan(basira_ntxent(z, 4, 2, 0.2f, NULL, work)));
    z[3] = INFINITY;
    CHECK(isnan(basira_ntxent(z, 4, 2, 0.2f, NULL, work)));
    CHECK(basira_ntxent_work_floats(6, 2) == 6 * 2 + 36 + 6);
}

/* ntxent_torch.py's file: "n d tau", z (n*d), PyTorch's loss, its gradient (n*d). */
static int compare_torch(void)
{
    char path[] = "/tmp/basira-ntxent-XXXXXX", cmd[4096];
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);
    const char *src = getenv("BASIRA_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/train/ntxent_torch.py %s", src ? src : ".",
             path);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        unlink(path);
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 77)
            TEST_SKIP("/usr/bin/python3 cannot import torch (Debian python3-torch)");
        fprintf(stderr, "%s failed\n", cmd);
        return 1;
    }
    FILE *f = fopen(path, "r");
    unlink(path);
    int n = 0, d = 0;
    double tau = 0, want = 0;
    if (!f || fscanf(f, "%d %d %lf", &n, &d, &tau) != 3 || n < 4 || d < 1 ||
        basira_ntxent_work_floats(n, d) > sizeof work / sizeof work[0]) {
        fprintf(stderr, "bad file %s\n", path);
        return 1;
    }
    float *z = malloc(sizeof(float) * (size_t)(n * d)),
          *g = malloc(sizeof(float) * (size_t)(n * d));
    double *tg = malloc(sizeof(double) * (size_t)(n * d));
    int ok = z && g && tg;
    for (int i = 0; ok && i < n * d; i++)
        ok = fscanf(f, "%f", &z[i]) == 1;
    ok = ok && fscanf(f, "%lf", &want) == 1;
    for (int i = 0; ok && i < n * d; i++)
        ok = fscanf(f, "%lf", &tg[i]) == 1;
    fclose(f);
    CHECK(ok);
    if (ok) {
        float l = basira_ntxent(z, n, d, (float)tau, g, work);
        CHECK_NEAR(l, want, 1e-5 * (1 + fabs(want)));
        double worst = 0;
        for (int i = 0; i < n * d; i++)
            worst = fmax(worst, fabs(g[i] - tg[i]));
        CHECK_MSG(worst < 1e-6, "n %d d %d: worst gradient difference from PyTorch %.2e", n, d,
                  worst);
        printf("agrees with PyTorch: n %d, d %d, tau %.2f, loss %.6f, worst gradient "
               "difference %.1e\n",
               n, d, tau, (double)l, worst);
    }
    free(z);
    free(g);
    free(tg);
    return test_summary();
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "torch"))
        return compare_torch();
    RUN(test_known_value);
    RUN(test_invariances);
    RUN(test_gradient);
    RUN(test_refusals);
    return test_summary();
}
