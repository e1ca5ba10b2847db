/*
 * optim.c - optimisers (SGD with momentum/Nesterov, AdamW), the exponential moving
 * average of the weights, and learning-rate schedules.
 *
 * The update rules reproduce torch.optim.SGD and torch.optim.AdamW (PyTorch 1.13)
 * operation for operation, so a recipe tuned in PyTorch behaves the same here and
 * the tests can compare the two numerically:
 *   SGD:   d = g + wd * p (L2, only where decay applies); buf = mu * buf + d (the
 *          first step sets buf = d, which is the same from a zeroed buffer since
 *          dampening is 0); d = nesterov ? d + mu * buf : buf; p -= lr * d.
 *   AdamW: p *= 1 - lr * wd (decoupled, only where decay applies);
 *          m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Weight decay follows the nn_param decay flag (conv/fc weights only): decaying
 * biases and batch-norm scales hurts accuracy and is what PyTorch recipes exclude
 * with a separate parameter group. Non-trainable entries (batch-norm running
 * statistics) are never touched by an update, but the EMA does average them, so
 * the averaged weights come with statistics that match them.
 *
 * All state is float32, like PyTorch's, so a checkpoint holds it exactly and a
 * resumed run continues bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "nn/internal.h"
#include "nn/optim_internal.h"

struct basira_optim {
    basira_net *net;
    basira_optim_config cfg; /* defaults filled */
    long step;               /* updates done */
    float *s0;               /* SGD momentum buffer or AdamW exp_avg; NULL if unused */
    float *s1;               /* AdamW exp_avg_sq */
    float *ema;              /* averaged weights (all entries); NULL without EMA */
    int ema_swapped;         /* 1 while ema and the net's values are exchanged */
};

basira_optim_config nn_optim_config_defaults(const basira_optim_config *cfg)
{
    basira_optim_config c = *cfg;
    if (c.kind == BASIRA_OPTIM_ADAMW) {
        if (c.beta1 == 0)
            c.beta1 = 0.9;
        if (c.beta2 == 0)
            c.beta2 = 0.999;
        if (c.eps == 0)
            c.eps = 1e-8;
    }
    return c;
}

void nn_optim_update(const basira_optim_config *cfg, long step, double lr, float *p, const float *g,
                     float *state0, float *state1, size_t n, int decay)
{
    const float wd = decay ? (float)cfg->weight_decay : 0.0f;
    const float flr = (float)lr;
    if (cfg->kind == BASIRA_OPTIM_SGD) {
        const float mu = (float)cfg->momentum;
        for (size_t i = 0; i < n; i++) {
            float d = g[i];
            if (wd != 0.0f)
                d += wd * p[i];
            if (state0) {
                float buf = step <= 1 ? d : mu * state0[i] + d;
                state0[i] = buf;
                d = cfg->nesterov ? d + mu * buf : buf;
            }
            p[i] -= flr * d;
        }
        return;
    }
    const float b1 = (float)cfg->beta1, b2 = (float)cfg->beta2;
    /* Scalars in double as PyTorch computes them in Python, then used in float ops. */
    const double bc1 = 1.0 - pow(cfg->beta1, (double)step);
    const double bc2 = 1.0 - pow(cfg->beta2, (double)step);
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)cfg->eps;
    const float keep = (float)(1.0 - lr * (double)wd);
    for (size_t i = 0; i < n; i++) {
        if (wd != 0.0f)
            p[i] *= keep;
        float m = b1 * state0[i] + (1.0f - b1) * g[i];
        float v = b2 * state1[i] + (1.0f - b2) * g[i] * g[i];
        state0[i] = m;
        state1[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + eps;
        p[i] -= step_size * (m / denom);
    }
}

void nn_ema_update(float *ema, const float *w, size_t n, double d)
{
    const float fd = (float)d, fo = (float)(1.0 - d);
    for (size_t i = 0; i < n; i++)
        ema[i] = fd * ema[i] + fo * w[i];
}

basira_code basira_optim_new(basira_net *net, const basira_optim_config *cfg, basira_optim **out,
                             basira_error *err)
{
    if (out)
        *out = NULL;
    if (!net || !cfg || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("an optimiser needs a network and a configuration"));
    if (nn_net_is_prepared(net))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("this network was prepared for inference and cannot be trained"));
    basira_optim_config c = nn_optim_config_defaults(cfg);
    if (c.kind != BASIRA_OPTIM_SGD && c.kind != BASIRA_OPTIM_ADAMW)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("unknown optimiser kind %d"),
                                (int)c.kind);
    if (!(c.momentum >= 0 && c.momentum < 1) || !(c.weight_decay >= 0) ||
        !(c.ema_decay >= 0 && c.ema_decay < 1) || !(c.beta1 >= 0 && c.beta1 < 1) ||
        !(c.beta2 >= 0 && c.beta2 < 1) || !(c.eps > 0 || c.kind == BASIRA_OPTIM_SGD) ||
        (c.nesterov && c.kind == BASIRA_OPTIM_SGD && c.momentum <= 0))
        return basira_error_set(
            err, BASIRA_E_INVALID_ARGUMENT,
            _("invalid optimiser settings: momentum, betas and EMA decay must be in [0, 1), "
              "weight decay >= 0, eps > 0, and Nesterov needs a momentum"));
    basira_optim *o = calloc(1, sizeof *o);
    if (!o)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    o->net = net;
    o->cfg = c;
    size_t n = nn_net_numel(net);
    size_t alloc = n ? n : 1;
    int ok = 1;
    if (c.kind == BASIRA_OPTIM_ADAMW) {
        ok = (o->s0 = calloc(alloc, sizeof(float))) && (o->s1 = calloc(alloc, sizeof(float)));
    } else if (c.momentum > 0) {
        ok = (o->s0 = calloc(alloc, sizeof(float))) != NULL;
    }
    if (ok && c.ema_decay > 0) {
        ok = (o->ema = malloc(alloc * sizeof(float))) != NULL;
        if (ok && n)
            memcpy(o->ema, nn_net_params_const(net), n * sizeof(float));
    }
    if (!ok) {
        basira_optim_free(o);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    *out = o;
    return BASIRA_OK;
}

void basira_optim_free(basira_optim *opt)
{
    if (!opt)
        return;
    free(opt->s0);
    free(opt->s1);
    free(opt->ema);
    free(opt);
}

basira_code basira_optim_step(basira_optim *opt, double lr, basira_error *err)
{
    if (!opt)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no optimiser"));
    if (!(lr >= 0) || isinf(lr))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("invalid learning rate %g"), lr);
    if (opt->ema_swapped)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the averaged (EMA) weights are in the network: swap them back "
                                  "before training further"));
    if (nn_net_is_prepared(opt->net))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("this network was prepared for inference and cannot be trained"));
    float *p = nn_net_params(opt->net);
    float *g = nn_net_grads(opt->net);
    if (!g)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    opt->step++;
    size_t np = nn_net_param_count(opt->net);
    for (size_t i = 0; i < np; i++) {
        const nn_param *pr = nn_net_param(opt->net, i);
        if (!pr->trainable)
            continue;
        size_t o = pr->offset;
        nn_optim_update(&opt->cfg, opt->step, lr, p + o, g + o, opt->s0 ? opt->s0 + o : NULL,
                        opt->s1 ? opt->s1 + o : NULL, pr->numel, pr->decay);
    }
    size_t n = nn_net_numel(opt->net);
    if (opt->ema)
        nn_ema_update(opt->ema, p, n, opt->cfg.ema_decay);
    if (n)
        memset(g, 0, n * sizeof *g);
    return BASIRA_OK;
}

basira_code basira_optim_swap_ema(basira_optim *opt, basira_error *err)
{
    if (!opt)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no optimiser"));
    if (!opt->ema)
        return BASIRA_OK;
    float *p = nn_net_params(opt->net);
    size_t n = nn_net_numel(opt->net);
    for (size_t i = 0; i < n; i++) {
        float t = p[i];
        p[i] = opt->ema[i];
        opt->ema[i] = t;
    }
    opt->ema_swapped = !opt->ema_swapped;
    nn_net_params_changed(opt->net);
    return BASIRA_OK;
}

/* ---- learning-rate schedules --------------------------------------------------- */

/* One-cycle as torch.optim.lr_scheduler.OneCycleLR's defaults: start at max/25, end at
 * start/1e4; the rise here is linear (the warm-up), the fall a cosine. */
#define ONECYCLE_DIV 25.0
#define ONECYCLE_FINAL_DIV 1e4
#define ONECYCLE_PCT_START 0.3

double basira_lr_at(basira_schedule s, double base_lr, long step, long total, long warmup)
{
    if (step < 0)
        step = 0;
    if (total > 0 && step >= total)
        step = total - 1;
    if (warmup < 0)
        warmup = 0;
    if (s == BASIRA_SCHED_ONECYCLE) {
        double lo = base_lr / ONECYCLE_DIV, end = lo / ONECYCLE_FINAL_DIV;
        long up = warmup > 0 ? warmup : (long)(ONECYCLE_PCT_START * (double)total);
        if (total <= 1)
            return base_lr;
        if (up > total - 1)
            up = total - 1;
        if (step < up)
            return lo + (base_lr - lo) * (double)step / (double)up;
        double t = (double)(step - up) / (double)(total - 1 - up > 0 ? total - 1 - up : 1);
        return end + (base_lr - end) * 0.5 * (1.0 + cos(M_PI * t));
    }
    if (step < warmup)
        return base_lr * (double)(step + 1) / (double)warmup;
    if (s == BASIRA_SCHED_COSINE && total > warmup) {
        double t = (double)(step - warmup) / (double)(total - warmup);
        return base_lr * 0.5 * (1.0 + cos(M_PI * t));
    }
    return base_lr;
}

/* ---- access for checkpoints ---------------------------------------------------- */

int nn_optim_states(basira_optim *opt, nn_optim_state out[3])
{
    int k = 0;
    if (opt->cfg.kind == BASIRA_OPTIM_ADAMW) {
        out[k++] = (nn_optim_state){"optim.exp_avg", opt->s0, 1};
        out[k++] = (nn_optim_state){"optim.exp_avg_sq", opt->s1, 1};
    } else if (opt->s0) {
        out[k++] = (nn_optim_state){"optim.momentum", opt->s0, 1};
    }
    if (opt->ema)
        out[k++] = (nn_optim_state){"ema", opt->ema, 0};
    return k;
}

basira_net *nn_optim_net(const basira_optim *opt)
{
    return opt->net;
}

const basira_optim_config *nn_optim_config(const basira_optim *opt)
{
    return &opt->cfg;
}

long nn_optim_step_count(const basira_optim *opt)
{
    return opt->step;
}

void nn_optim_set_step_count(basira_optim *opt, long step)
{
    opt->step = step;
}

int nn_optim_ema_swapped(const basira_optim *opt)
{
    return opt->ema_swapped;
}

json_t *nn_optim_to_json(const basira_optim *opt)
{
    const basira_optim_config *c = &opt->cfg;
    /* Doubles are written with 17 significant digits by jansson: they read back exactly. */
    return json_pack("{s:s, s:f, s:b, s:f, s:f, s:f, s:f, s:f, s:I}", "kind",
                     c->kind == BASIRA_OPTIM_ADAMW ? "adamw" : "sgd", "momentum", c->momentum,
                     "nesterov", c->nesterov, "beta1", c->beta1, "beta2", c->beta2, "eps", c->eps,
                     "weight_decay", c->weight_decay, "ema_decay", c->ema_decay, "step",
                     (json_int_t)opt->step);
}

basira_code nn_optim_config_from_json(const json_t *j, basira_optim_config *cfg, long *step,
                                      basira_error *err)
{
    const char *kind = NULL;
    int nesterov = 0;
    json_int_t st = 0;
    json_error_t jerr;
    memset(cfg, 0, sizeof *cfg);
    if (!j || json_unpack_ex((json_t *)j, &jerr, JSON_STRICT,
                             "{s:s, s:F, s:b, s:F, s:F, s:F, s:F, s:F, s:I}", "kind", &kind,
                             "momentum", &cfg->momentum, "nesterov", &nesterov, "beta1",
                             &cfg->beta1, "beta2", &cfg->beta2, "eps", &cfg->eps, "weight_decay",
                             &cfg->weight_decay, "ema_decay", &cfg->ema_decay, "step", &st))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("checkpoint: the optimiser settings are malformed: %s"),
                                j ? jerr.text : _("missing"));
    if (!strcmp(kind, "sgd"))
        cfg->kind = BASIRA_OPTIM_SGD;
    else if (!strcmp(kind, "adamw"))
        cfg->kind = BASIRA_OPTIM_ADAMW;
    else
        return basira_error_set(err, BASIRA_E_MODEL, _("checkpoint: unknown optimiser \"%s\""),
                                kind);
    if (st < 0)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("checkpoint: negative optimiser step count"));
    cfg->nesterov = nesterov;
    *step = (long)st;
    return BASIRA_OK;
}
