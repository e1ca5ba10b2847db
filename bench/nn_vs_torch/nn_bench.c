/*
 * nn_bench.c - Basira's side of bench/nn_vs_torch: training throughput, inference
 * latency and peak memory of one model, one measurement per process so that the
 * peak RSS is that of the measured work alone.
 *
 *   nn_bench arch  FAMILY SIZE                      print the architecture JSON
 *   nn_bench train FAMILY SIZE THREADS BATCH STEPS [PRECISION]   {"images_per_s": x,
 *                   "images_per_cpu_s": per second of the process's CPU time, all threads}
 *   nn_bench profile FAMILY SIZE THREADS BATCH STEPS [PRECISION] the same steps, then the
 *                   per-layer profile (time, FLOP/s against the peak, roofline bound)
 *                   and the optimiser's share, as text
 *   nn_bench infer FAMILY SIZE THREADS REPEATS [PRECISION]
 *                   {"ms_batch1": median, "cpu_ms_batch1": median thread CPU time,
 *                   "peak_rss_mb": y}: prepared inference at batch 1
 *                   in PRECISION (basira_net_set_inference_precision, fp32 by default;
 *                   basira_net_prepare_inference_lean; int8 is calibrated on the timed
 *                   input itself, on a plain prepare)
 *
 * The model settings (classes, width, depth) are fixed here and the Python side
 * builds its model from the architecture this program prints, so both run the same
 * network. Training is what `basira train` does per step: forward, softmax cross-
 * entropy, backward, SGD with Nesterov momentum. PRECISION is fp32 (default), bf16
 * or auto (basira_net_set_precision).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "basira/nn.h"

#define NUM_CLASSES 7

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *arch_for(const char *family, int size)
{
    /* ResNet-18 layout at a quarter of its width; MobileNetV2 at width multiplier 1.0. */
    int resnet = !strcmp(family, "resnet");
    basira_arch_params p = {family, size, 0, NUM_CLASSES, resnet ? 16 : 32, resnet ? 2 : 10, 0.0};
    basira_error err;
    char *a = basira_arch_build(&p, &err);
    if (!a)
        fprintf(stderr, "nn_bench: %s\n", err.message);
    return a;
}

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* CPU time of this thread: what a forward costs, less disturbed than the wall clock
 * when neighbours take the cores (the thread is then only waiting). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads): training runs on several threads. */
static double proc_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static basira_precision precision_arg(int argc, char **argv, int i)
{
    if (argc > i && !strcmp(argv[i], "bf16"))
        return BASIRA_PRECISION_BF16;
    if (argc > i && !strcmp(argv[i], "auto"))
        return BASIRA_PRECISION_AUTO;
    if (argc > i && !strcmp(argv[i], "int8"))
        return BASIRA_PRECISION_INT8;
    return BASIRA_PRECISION_FP32;
}

static int fail(const basira_error *err)
{
    fprintf(stderr, "nn_bench: %s\n", err->message);
    return 1;
}

static int train(const char *family, int size, int threads, int batch, int steps,
                 basira_precision precision, int profile)
{
    basira_nn_set_threads(threads);
    char *arch = arch_for(family, size);
    basira_net *net;
    basira_error err;
    if (!arch || basira_net_new(arch, 1, &net, &err))
        return arch ? fail(&err) : 1;
    free(arch);
    if (basira_net_set_precision(net, precision, &err))
        return fail(&err);
    basira_optim_config cfg = {
        .kind = BASIRA_OPTIM_SGD, .momentum = 0.9, .nesterov = 1, .weight_decay = 1e-4};
    basira_optim *opt;
    if (basira_optim_new(net, &cfg, &opt, &err))
        return fail(&err);
    size_t in = (size_t)batch * 3 * (size_t)size * (size_t)size;
    float *x = malloc(in * sizeof *x);
    float *logits = malloc((size_t)batch * NUM_CLASSES * sizeof *logits);
    float *dlogits = malloc((size_t)batch * NUM_CLASSES * sizeof *dlogits);
    int *labels = malloc((size_t)batch * sizeof *labels);
    fill(x, in, 7);
    for (int i = 0; i < batch; i++)
        labels[i] = i % NUM_CLASSES;
    double t0 = 0, c0 = 0, opt_s = 0;
    for (int s = -1; s < steps; s++) { /* step -1 warms up (plans, JIT kernels) */
        if (s == 0) {
            t0 = now_s();
            c0 = proc_cpu_s();
            if (profile && basira_net_profile_enable(net, 1, &err))
                return fail(&err);
        }
        if (basira_net_forward(net, x, batch, 1, logits, &err))
            return fail(&err);
        basira_softmax_xent(logits, labels, batch, NUM_CLASSES, NULL, 0.1f, dlogits, NULL);
        if (basira_net_backward(net, dlogits, &err))
            return fail(&err);
        double o0 = now_s();
        if (basira_optim_step(opt, 0.01, &err))
            return fail(&err);
        if (s >= 0)
            opt_s += now_s() - o0;
    }
    double dt = now_s() - t0, cdt = proc_cpu_s() - c0;
    if (profile) {
        basira_nn_peak peak;
        if (basira_nn_peak_measure(threads, &peak, &err))
            return fail(&err);
        printf("%s %dpx, batch %d, %d threads, %s, %d steps: %.1f images/s; optimiser %.1f ms "
               "per step (%.1f%%)\n",
               family, size, batch, threads,
               basira_net_precision(net) == BASIRA_PRECISION_BF16 ? "bf16" : "fp32", steps,
               (double)steps * batch / dt, 1e3 * opt_s / steps, 100 * opt_s / dt);
        basira_net_profile_print(net, &peak, basira_net_precision(net) == BASIRA_PRECISION_BF16,
                                 stdout);
    } else {
        printf("{\"images_per_s\": %.3f, \"images_per_cpu_s\": %.3f}\n", (double)steps * batch / dt,
               (double)steps * batch / cdt);
    }
    free(x);
    free(logits);
    free(dlogits);
    free(labels);
    basira_optim_free(opt);
    basira_net_free(net);
    return 0;
}

static int infer(const char *family, int size, int threads, int repeats, basira_precision precision)
{
    basira_nn_set_threads(threads);
    char *arch = arch_for(family, size);
    basira_net *net;
    basira_error err;
    if (!arch || basira_net_new(arch, 1, &net, &err))
        return arch ? fail(&err) : 1;
    free(arch);
    size_t in = 3 * (size_t)size * (size_t)size;
    float *x = malloc(in * sizeof *x), logits[NUM_CLASSES];
    double *ms = malloc((size_t)repeats * sizeof *ms), *cms = malloc((size_t)repeats * sizeof *cms);
    fill(x, in, 9);
    /* As a program that only predicts would load a model: the lean prepare gives the
     * net's float32 values back as the plan takes them (peak memory: one copy of the
     * weights). int8 is calibrated on the fp32 plan, which needs them kept. */
    int int8 = precision == BASIRA_PRECISION_INT8;
    if ((!int8 && (basira_net_set_inference_precision(net, precision, &err) ||
                   basira_net_prepare_inference_lean(net, 1, &err))) ||
        (int8 && (basira_net_prepare_inference(net, 1, &err) ||
                  basira_net_calibrate(net, x, 1, &err) || /* calibrated on the input itself */
                  basira_net_set_inference_precision(net, precision, &err))))
        return fail(&err);
    for (int r = -3; r < repeats; r++) { /* 3 warm-up runs */
        double t0 = now_s(), c0 = cpu_s();
        if (basira_net_forward(net, x, 1, 0, logits, &err))
            return fail(&err);
        if (r >= 0) {
            ms[r] = 1e3 * (now_s() - t0);
            cms[r] = 1e3 * (cpu_s() - c0);
        }
    }
    qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
    qsort(cms, (size_t)repeats, sizeof *cms, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"ms_batch1\": %.4f, \"cpu_ms_batch1\": %.4f, \"peak_rss_mb\": %.2f}\n",
           ms[repeats / 2], cms[repeats / 2], (double)ru.ru_maxrss / 1024.0);
    free(x);
    free(ms);
    free(cms);
    basira_net_free(net);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "arch")) {
        char *a = arch_for(argv[2], atoi(argv[3]));
        if (!a)
            return 1;
        puts(a);
        free(a);
        return 0;
    }
    if (argc >= 7 && (!strcmp(argv[1], "train") || !strcmp(argv[1], "profile"))) {
        basira_precision pr = precision_arg(argc, argv, 7);
        return train(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), pr,
                     !strcmp(argv[1], "profile"));
    }
    if (argc >= 6 && !strcmp(argv[1], "infer") && atoi(argv[5]) > 0)
        return infer(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                     precision_arg(argc, argv, 6));
    fprintf(stderr,
            "usage: nn_bench arch FAMILY SIZE | train|profile FAMILY SIZE THREADS BATCH STEPS "
            "[fp32|bf16|auto] | "
            "infer FAMILY SIZE THREADS REPEATS [fp32|bf16|auto|int8]\n");
    return 2;
}
