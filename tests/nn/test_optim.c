/*
 * test_optim.c - optimisers, EMA and learning-rate schedules (src/nn/optim.c).
 *
 *   test_optim          update rules on a real net (decay flags, frozen running
 *                       statistics, zeroed gradients), EMA, swapping, settings that
 *                       must be refused, schedules
 *   test_optim torch    the update rules against torch.optim.SGD/AdamW: replays the
 *                       trajectories written by tests/nn/optim_ref.py (exit 77 when
 *                       /usr/bin/python3 has no torch)
 */
#include <stdint.h>
#include <unistd.h>

#include "nn/internal.h"
#include "nn/optim_internal.h"
#include "nn/safetensors.h"
#include "test.h"

/* conv (decay) -> batchnorm (no decay, frozen running stats) -> relu -> gap -> fc. */
static const char *TINY_ARCH =
    "{\"family\": \"test\", \"input\": [2, 4, 4], \"num_classes\": 3, \"layers\": ["
    "{\"name\": \"conv1\", \"type\": \"conv\", \"out_channels\": 4, \"kernel\": 3, "
    "\"padding\": 1, \"bias\": false},"
    "{\"name\": \"bn1\", \"type\": \"batchnorm\"},"
    "{\"name\": \"act1\", \"type\": \"relu\"},"
    "{\"name\": \"pool\", \"type\": \"gap\"},"
    "{\"name\": \"fc\", \"type\": \"fc\", \"out_features\": 3}], \"output\": \"fc\"}";

static basira_net *tiny_net(void)
{
    basira_net *net = NULL;
    basira_error err;
    if (basira_net_new(TINY_ARCH, 7, &net, &err)) {
        fprintf(stderr, "basira_net_new: %s\n", err.message);
        return NULL;
    }
    return net;
}

static float *copy_params(basira_net *net)
{
    size_t n = nn_net_numel(net);
    float *c = malloc(n * sizeof *c);
    memcpy(c, nn_net_params(net), n * sizeof *c);
    return c;
}

static void test_sgd_on_net(void)
{
    basira_net *net = tiny_net();
    CHECK(net != NULL);
    if (!net)
        return;
    /* Distinct running statistics, so "untouched" is visible. */
    const nn_param *rm = nn_net_param_find(net, "bn1.running_mean");
    CHECK(rm && !rm->trainable);
    for (size_t i = 0; rm && i < rm->numel; i++)
        nn_net_params(net)[rm->offset + i] = 0.25f * (float)i;

    basira_optim_config cfg = {.kind = BASIRA_OPTIM_SGD, .weight_decay = 0.5};
    basira_optim *opt = NULL;
    basira_error err;
    CHECK(!basira_optim_new(net, &cfg, &opt, &err));
    float *before = copy_params(net);
    size_t n = nn_net_numel(net);
    float *g = nn_net_grads(net);
    for (size_t i = 0; i < nn_net_param_count(net); i++) {
        const nn_param *p = nn_net_param(net, i);
        for (size_t k = 0; k < p->numel; k++)
            g[p->offset + k] = p->trainable ? 1.0f : 0.0f;
    }
    CHECK(!basira_optim_step(opt, 0.1, &err));
    const float *after = nn_net_params(net);
    int wrong = 0;
    for (size_t i = 0; i < nn_net_param_count(net); i++) {
        const nn_param *p = nn_net_param(net, i);
        for (size_t k = 0; k < p->numel; k++) {
            float b = before[p->offset + k], a = after[p->offset + k];
            float want = !p->trainable ? b : p->decay ? b - 0.1f * (1.0f + 0.5f * b) : b - 0.1f;
            if (fabsf(a - want) > 1e-6f) {
                if (!wrong)
                    fprintf(stderr, "  %s[%zu]: %g, want %g\n", p->name, k, a, want);
                wrong++;
            }
        }
    }
    CHECK_EQ_INT(wrong, 0);
    /* Decay flags as the engine sets them: conv/fc weights only. */
    CHECK(nn_net_param_find(net, "conv1.weight")->decay == 1);
    CHECK(nn_net_param_find(net, "fc.weight")->decay == 1);
    CHECK(nn_net_param_find(net, "fc.bias")->decay == 0);
    CHECK(nn_net_param_find(net, "bn1.weight")->decay == 0);
    /* Gradients are zeroed by the step. */
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero += g[i] != 0.0f;
    CHECK_EQ_INT(nonzero, 0);
    CHECK_EQ_INT(nn_optim_step_count(opt), 1);
    free(before);
    basira_optim_free(opt);
    basira_net_free(net);
}

static void test_ema_and_swap(void)
{
    basira_net *net = tiny_net();
    if (!net)
        return;
    basira_optim_config cfg = {.kind = BASIRA_OPTIM_ADAMW, .weight_decay = 0.01, .ema_decay = 0.9};
    basira_optim *opt;
    basira_error err;
    CHECK(!basira_optim_new(net, &cfg, &opt, &err));
    size_t n = nn_net_numel(net);
    float *ema = copy_params(net); /* the EMA starts at the initial weights */
    /* Change a running statistic by hand, as a training forward would: the EMA follows it. */
    const nn_param *rv = nn_net_param_find(net, "bn1.running_var");
    for (int step = 0; step < 3; step++) {
        float *g = nn_net_grads(net);
        for (size_t i = 0; i < nn_net_param_count(net); i++) {
            const nn_param *p = nn_net_param(net, i);
            for (size_t k = 0; k < p->numel; k++)
                g[p->offset + k] = p->trainable ? (float)((k % 5) - 2) * 0.3f : 0.0f;
        }
        nn_net_params(net)[rv->offset] = 2.0f + (float)step;
        CHECK(!basira_optim_step(opt, 0.01, &err));
        const float *w = nn_net_params(net);
        for (size_t i = 0; i < n; i++)
            ema[i] = 0.9f * ema[i] + 0.1f * w[i];
    }
    nn_optim_state st[3];
    int ns = nn_optim_states(opt, st);
    CHECK_EQ_INT(ns, 3);
    CHECK_STR(st[2].name, "ema");
    double maxdiff = 0;
    for (size_t i = 0; i < n; i++)
        maxdiff = fmax(maxdiff, fabs(st[2].data[i] - ema[i]));
    CHECK_NEAR(maxdiff, 0, 1e-6);
    CHECK(ema[rv->offset] != 1.0f); /* the running variance was averaged too */

    float *train_w = copy_params(net);
    CHECK(!basira_optim_swap_ema(opt, &err));
    maxdiff = 0;
    for (size_t i = 0; i < n; i++)
        maxdiff = fmax(maxdiff, fabs(nn_net_params(net)[i] - ema[i]));
    CHECK_NEAR(maxdiff, 0, 1e-6);
    /* Training or checkpointing with the averaged weights in place is refused. */
    CHECK(basira_optim_step(opt, 0.01, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "swap") != NULL);
    CHECK(basira_checkpoint_save(net, opt, NULL, "/nonexistent/x", &err) ==
          BASIRA_E_INVALID_ARGUMENT);
    CHECK(!basira_optim_swap_ema(opt, &err));
    CHECK(!memcmp(nn_net_params(net), train_w, n * sizeof(float)));
    CHECK(!basira_optim_step(opt, 0.01, &err));
    free(train_w);
    free(ema);
    basira_optim_free(opt);

    /* Without EMA, swapping is a no-op. */
    cfg.ema_decay = 0;
    CHECK(!basira_optim_new(net, &cfg, &opt, &err));
    float *w0 = copy_params(net);
    CHECK(!basira_optim_swap_ema(opt, &err));
    CHECK(!memcmp(nn_net_params(net), w0, n * sizeof(float)));
    CHECK_EQ_INT(nn_optim_states(opt, st), 2);
    free(w0);
    basira_optim_free(opt);
    basira_net_free(net);
}

static void test_bad_settings(void)
{
    basira_net *net = tiny_net();
    if (!net)
        return;
    basira_optim *opt = (basira_optim *)1;
    basira_error err;
    const basira_optim_config bad[] = {
        {.kind = BASIRA_OPTIM_SGD, .momentum = 1.5},
        {.kind = BASIRA_OPTIM_SGD, .nesterov = 1},
        {.kind = BASIRA_OPTIM_SGD, .weight_decay = -1},
        {.kind = BASIRA_OPTIM_ADAMW, .beta2 = 1.0},
        {.kind = BASIRA_OPTIM_ADAMW, .eps = -1e-8},
        {.kind = BASIRA_OPTIM_ADAMW, .ema_decay = 1.0},
        {.kind = BASIRA_OPTIM_SGD, .momentum = NAN},
        {.kind = (basira_optim_kind)7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(basira_optim_new(net, &bad[i], &opt, &err) == BASIRA_E_INVALID_ARGUMENT,
                  "config %zu accepted", i);
        CHECK(opt == NULL);
    }
    CHECK(basira_optim_new(NULL, &bad[0], &opt, &err) == BASIRA_E_INVALID_ARGUMENT);
    basira_optim_config ok = {.kind = BASIRA_OPTIM_SGD, .momentum = 0.9, .nesterov = 1};
    CHECK(!basira_optim_new(net, &ok, &opt, &err));
    CHECK(basira_optim_step(opt, NAN, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_optim_step(opt, -0.1, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_optim_step(opt, INFINITY, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(nn_optim_step_count(opt), 0);
    CHECK(basira_optim_step(NULL, 0.1, &err) == BASIRA_E_INVALID_ARGUMENT);
    basira_optim_free(opt);
    basira_net_free(net);
}

static void test_schedules(void)
{
    const double lr = 0.1;
    /* Constant: warm-up rises linearly to lr and stays. */
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_CONSTANT, lr, 0, 100, 10), 0.01, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_CONSTANT, lr, 4, 100, 10), 0.05, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_CONSTANT, lr, 9, 100, 10), 0.1, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_CONSTANT, lr, 99, 100, 10), 0.1, 1e-12);
    /* Cosine: lr right after warm-up, half at the middle of the decay, near 0 at the end. */
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_COSINE, lr, 0, 100, 0), lr, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_COSINE, lr, 10, 110, 10), lr, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_COSINE, lr, 60, 110, 10), lr / 2, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_COSINE, lr, 25, 100, 0), lr * 0.5 * (1 + cos(M_PI * 0.25)),
               1e-12);
    double last = basira_lr_at(BASIRA_SCHED_COSINE, lr, 109, 110, 10);
    CHECK(last > 0 && last < lr * 1e-3);
    int mono = 1;
    for (long s = 11; s < 110; s++)
        mono &= basira_lr_at(BASIRA_SCHED_COSINE, lr, s, 110, 10) <
                basira_lr_at(BASIRA_SCHED_COSINE, lr, s - 1, 110, 10);
    CHECK(mono);
    /* One-cycle: from lr/25 up to lr at the end of the warm-up, down to lr/25/1e4. */
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 0, 101, 30), lr / 25, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 15, 101, 30), (lr / 25 + lr) / 2, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 30, 101, 30), lr, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 100, 101, 30), lr / 25 / 1e4, 1e-12);
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 65, 101, 30),
               lr / 25e4 + (lr - lr / 25e4) * 0.5 * (1 + cos(M_PI * 0.5)), 1e-12);
    /* Without a warm-up length, one-cycle rises over the first 30 %. */
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 30, 100, 0), lr, 1e-12);
    /* Out-of-range steps are clamped, never NaN. */
    CHECK_NEAR(basira_lr_at(BASIRA_SCHED_COSINE, lr, -5, 100, 0), lr, 1e-12);
    CHECK(isfinite(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 500, 100, 0)));
    CHECK(isfinite(basira_lr_at(BASIRA_SCHED_ONECYCLE, lr, 0, 1, 0)));
    CHECK(isfinite(basira_lr_at(BASIRA_SCHED_COSINE, lr, 3, 0, 0)));
}

/* ---- against PyTorch ------------------------------------------------------------- */

static int torch_compare(void)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (!src)
        TEST_SKIP("BASIRA_SOURCE_DIR not set (run through ctest)");
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        TEST_SKIP("/usr/bin/python3 cannot import torch (Debian package python3-torch)");
    char dir[] = "/tmp/basira-optim-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128], cmd[1024];
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/nn/optim_ref.py %s", src, path);
    CHECK(system(cmd) == 0);
    nn_st_file *f = NULL;
    basira_error err;
    CHECK_MSG(!nn_st_read_file(path, &f, &err), "%s", err.message);
    unlink(path);
    rmdir(dir);
    if (!f)
        return test_summary();
    json_t *configs = json_loads(nn_st_meta_get(f, "configs"), 0, NULL);
    int steps = atoi(nn_st_meta_get(f, "steps"));
    CHECK(json_array_size(configs) >= 5 && steps > 0);
    const nn_st_tensor *tp0 = nn_st_find(f, "p0");
    size_t n = tp0->numel;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *want = malloc(n * sizeof *g);
    float *s0 = calloc(n, sizeof *s0), *s1 = calloc(n, sizeof *s1);
    size_t i;
    json_t *c;
    json_array_foreach(configs, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        basira_optim_config cfg = {0};
        cfg.kind = !strcmp(json_string_value(json_object_get(c, "kind")), "sgd")
                       ? BASIRA_OPTIM_SGD
                       : BASIRA_OPTIM_ADAMW;
        cfg.momentum = json_number_value(json_object_get(c, "momentum"));
        cfg.nesterov = (int)json_integer_value(json_object_get(c, "nesterov"));
        cfg.beta1 = json_number_value(json_object_get(c, "beta1"));
        cfg.beta2 = json_number_value(json_object_get(c, "beta2"));
        cfg.eps = json_number_value(json_object_get(c, "eps"));
        cfg.weight_decay = json_number_value(json_object_get(c, "weight_decay"));
        int decay = (int)json_integer_value(json_object_get(c, "decay"));
        cfg = nn_optim_config_defaults(&cfg);
        nn_st_to_f32(tp0, p, &err);
        memset(s0, 0, n * sizeof *s0);
        memset(s1, 0, n * sizeof *s1);
        double worst = 0;
        for (int t = 0; t < steps; t++) {
            char tn[96];
            snprintf(tn, sizeof tn, "g.%d", t);
            nn_st_to_f32(nn_st_find(f, tn), g, &err);
            double lr = json_number_value(json_array_get(json_object_get(c, "lr"), (size_t)t));
            nn_optim_update(&cfg, t + 1, lr, p, g,
                            (cfg.kind == BASIRA_OPTIM_ADAMW || cfg.momentum > 0) ? s0 : NULL, s1, n,
                            decay);
            snprintf(tn, sizeof tn, "%s.p.%d", name, t);
            const nn_st_tensor *tw = nn_st_find(f, tn);
            CHECK_MSG(tw != NULL, "%s missing", tn);
            if (!tw)
                break;
            nn_st_to_f32(tw, want, &err);
            for (size_t k = 0; k < n; k++) {
                double d = fabs((double)p[k] - want[k]) / (1e-3 + fabs(want[k]));
                worst = fmax(worst, d);
            }
        }
        fprintf(stderr, "  %-22s max relative difference to torch over %d steps: %.3g\n", name,
                steps, worst);
        CHECK_MSG(worst < 2e-5, "%s differs from torch by %g", name, worst);
    }
    free(p);
    free(g);
    free(want);
    free(s0);
    free(s1);
    json_decref(configs);
    nn_st_free(f);
    return test_summary();
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "torch"))
        return torch_compare();
    RUN(test_sgd_on_net);
    RUN(test_ema_and_swap);
    RUN(test_bad_settings);
    RUN(test_schedules);
    return test_summary();
}
