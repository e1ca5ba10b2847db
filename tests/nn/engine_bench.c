/*
 * engine_bench.c - timing of the engine for comparison with PyTorch (not a test).
 *
 *   nn_engine_bench FAMILY WIDTH DEPTH SIZE train BATCH THREADS STEPS
 *   nn_engine_bench FAMILY WIDTH DEPTH SIZE infer BATCH THREADS RUNS
 *
 * train: forward (training mode) + loss + backward + an SGD update per step, after
 * two warm-up steps; prints images per second. infer: basira_net_prepare_inference
 * then eval forwards; prints the median latency in ms. Both print the peak resident
 * memory of the process (getrusage). One JSON object per line on stdout.
 * Mode "arch" prints the architecture JSON instead (for building the same model in
 * PyTorch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "basira/nn.h"
#include "nn/internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s FAMILY WIDTH DEPTH SIZE train|infer BATCH THREADS N\n", argv[0]);
        return 2;
    }
    basira_arch_params ap = {argv[1], atoi(argv[4]), 0, 7, atoi(argv[2]), atoi(argv[3]), 0.2};
    int train = !strcmp(argv[5], "train"), n = atoi(argv[6]), threads = atoi(argv[7]);
    int iters = atoi(argv[8]);
    basira_error err;
    char *json = basira_arch_build(&ap, &err);
    basira_net *net = NULL;
    if (!json || basira_net_new(json, 1, &net, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (!strcmp(argv[5], "arch")) {
        printf("%s\n", json);
        free(json);
        basira_net_free(net);
        return 0;
    }
    free(json);
    basira_nn_set_threads(threads);
    size_t nx = (size_t)n * 3 * (size_t)ap.input_size * (size_t)ap.input_size;
    float *x = malloc(nx * sizeof *x), *logits = malloc((size_t)n * 7 * sizeof *logits);
    float *d = malloc((size_t)n * 7 * sizeof *d);
    int *y = malloc((size_t)n * sizeof *y);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < n; i++)
        y[i] = i % 7;
    if (train) {
        double t0 = 0;
        for (int s = 0; s < iters + 2; s++) {
            if (s == 2)
                t0 = now();
            if (basira_net_forward(net, x, n, 1, logits, &err))
                break;
            basira_softmax_xent(logits, y, n, 7, NULL, 0.0f, d, NULL);
            basira_net_zero_grad(net);
            if (basira_net_backward(net, d, &err))
                break;
            float *v = nn_net_params(net), *g = nn_net_grads(net);
            for (size_t i = 0; i < nn_net_numel(net); i++)
                v[i] -= 0.01f * g[i];
        }
        if (err.code && err.message[0])
            fprintf(stderr, "%s\n", err.message);
        double dt = now() - t0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"engine\":\"basira\",\"family\":\"%s\",\"mode\":\"train\",\"batch\":%d,"
               "\"threads\":%d,\"images_per_s\":%.2f,\"peak_rss_mb\":%.1f}\n",
               argv[1], n, threads, (double)n * iters / dt, ru.ru_maxrss / 1024.0);
    } else {
        if (basira_net_prepare_inference(net, n, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double *t = malloc((size_t)iters * sizeof *t);
        for (int s = 0; s < 3; s++)
            basira_net_forward(net, x, n, 0, logits, &err);
        for (int s = 0; s < iters; s++) {
            double t0 = now();
            if (basira_net_forward(net, x, n, 0, logits, &err)) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            t[s] = now() - t0;
        }
        qsort(t, (size_t)iters, sizeof *t, cmp);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"engine\":\"basira\",\"family\":\"%s\",\"mode\":\"infer\",\"batch\":%d,"
               "\"threads\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f,\"peak_rss_mb\":%.1f}\n",
               argv[1], n, threads, 1e3 * t[iters / 2], 1e3 * t[0], ru.ru_maxrss / 1024.0);
        free(t);
    }
    free(x);
    free(logits);
    free(d);
    free(y);
    basira_net_free(net);
    return 0;
}
