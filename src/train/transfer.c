/*
 * transfer.c - starting a training from a parent model (`basira adapt`): the same
 * architecture with a head for the new classes, every tensor of the backbone copied,
 * and stages that stay frozen.
 *
 * Freezing restores the frozen tensors (weights and batch-norm statistics) after each
 * optimiser step rather than masking gradients: weight decay and momentum move a
 * parameter even at zero gradient, and a frozen stage's batch norm must keep the
 * parent's running statistics, which a training forward would otherwise update.
 */
#include <stdlib.h>
#include <string.h>

#include "basira/train.h"
#include "core/i18n.h"
#include "nn/internal.h"

/*
 * The parent's architecture with k outputs (the output layer's out_features set to k) and,
 * when w and h are not 0, an input of w x h: a network of convolutions ending in a global
 * average pool takes any size, and fine-tuning at a larger one than the parent's is the
 * usual way to use more of a photo's detail.
 */
static char *arch_with_classes(const basira_net *parent, int k, int w, int h, basira_error *err)
{
    json_t *a = json_deep_copy(basira_net_arch(parent));
    json_t *in = json_object_get(a, "input");
    if (w && h && json_array_size(in) == 3) {
        json_array_set_new(in, 1, json_integer(h));
        json_array_set_new(in, 2, json_integer(w));
    }
    const char *out = json_string_value(json_object_get(a, "output"));
    json_t *layers = json_object_get(a, "layers"), *head = NULL;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *name = json_string_value(json_object_get(l, "name"));
        if (out && name && !strcmp(name, out))
            head = l;
    }
    if (!a || !head || !json_is_integer(json_object_get(head, "out_features"))) {
        json_decref(a);
        basira_error_set(err, BASIRA_E_MODEL,
                         _("the parent model's architecture has no fully connected output layer"));
        return NULL;
    }
    json_object_set_new(head, "out_features", json_integer(k));
    json_object_set_new(a, "num_classes", json_integer(k));
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!s)
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return s;
}

basira_code basira_train_net_from_parent(const char *parent_path, int k, uint64_t seed, int input_w,
                                         int input_h, basira_net **out, size_t *copied,
                                         size_t *fresh, basira_error *err)
{
    *out = NULL;
    *copied = *fresh = 0;
    basira_net *parent = NULL, *net = NULL;
    /* An ensemble's member 0: one network to train, whose tensors the others share by name. */
    basira_code rc = basira_net_load_first(parent_path, &parent, NULL, err);
    if (rc)
        return rc;
    char *arch = arch_with_classes(parent, k, input_w, input_h, err);
    if (!arch) {
        basira_net_free(parent);
        return err ? err->code : BASIRA_E_MODEL;
    }
    rc = basira_net_new(arch, seed, &net, err);
    free(arch);
    if (rc) {
        basira_net_free(parent);
        return rc;
    }
    /* Same names, same sizes: copied. The head, when the classes changed, stays fresh. */
    float *dst = nn_net_params(net);
    const float *src = nn_net_params_const(parent);
    const char *head = json_string_value(json_object_get(basira_net_arch(parent), "output"));
    size_t head_len = head ? strlen(head) : 0;
    int pc, ph, pw, nc, nh, nw;
    basira_net_input_shape(parent, &pc, &ph, &pw);
    basira_net_input_shape(net, &nc, &nh, &nw);
    for (size_t i = 0; i < nn_net_param_count(net); i++) {
        const nn_param *p = nn_net_param(net, i);
        const nn_param *q = nn_net_param_find(parent, p->name);
        if (q && q->numel == p->numel) {
            memcpy(dst + p->offset, src + q->offset, p->numel * sizeof(float));
            (*copied)++;
            continue;
        }
        (*fresh)++;
        /* At another input size only the head may be new: a layer whose size follows the
         * input's (a dense layer after a flatten) would silently restart from scratch. */
        if ((nh != ph || nw != pw) &&
            !(head && !strncmp(p->name, head, head_len) && p->name[head_len] == '.')) {
            /* The message first: the name belongs to the net freed next. */
            basira_code rc2 = basira_error_set(
                err, BASIRA_E_INVALID_ARGUMENT,
                _("--init-from: the parent model takes %dx%d images and its tensor '%s' depends "
                  "on that size; give --input-size %dx%d"),
                pw, ph, p->name, pw, ph);
            basira_net_free(net);
            basira_net_free(parent);
            return rc2;
        }
    }
    nn_net_params_changed(net);
    basira_net_free(parent);
    *out = net;
    return BASIRA_OK;
}

struct basira_freeze {
    size_t n;
    size_t *offset, *numel;
    float *saved;
};

basira_code basira_freeze_new(basira_net *net, const char *const *prefixes, int n_prefixes,
                              basira_freeze **out, size_t *n_frozen, basira_error *err)
{
    *out = NULL;
    *n_frozen = 0;
    basira_freeze *f = calloc(1, sizeof *f);
    size_t count = nn_net_param_count(net), floats = 0;
    if (f) {
        f->offset = malloc(sizeof(size_t) * (count ? count : 1));
        f->numel = malloc(sizeof(size_t) * (count ? count : 1));
    }
    if (!f || !f->offset || !f->numel) {
        basira_freeze_free(f);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    int used[64] = {0};
    for (size_t i = 0; i < count; i++) {
        const nn_param *p = nn_net_param(net, i);
        for (int j = 0; j < n_prefixes; j++) {
            size_t len = strlen(prefixes[j]);
            /* "layer1" freezes layer1.* but not layer10.*: a prefix ends at a dot */
            if (!strncmp(p->name, prefixes[j], len) && (p->name[len] == '.' || !p->name[len])) {
                f->offset[f->n] = p->offset;
                f->numel[f->n++] = p->numel;
                floats += p->numel;
                if (j < 64)
                    used[j] = 1;
                break;
            }
        }
    }
    for (int j = 0; j < n_prefixes && j < 64; j++)
        if (!used[j]) {
            basira_freeze_free(f);
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("--freeze: the model has no stage '%s' (stages are the "
                                      "first part of tensor names, e.g. conv1, layer1)"),
                                    prefixes[j]);
        }
    f->saved = malloc(sizeof(float) * (floats ? floats : 1));
    if (!f->saved) {
        basira_freeze_free(f);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    const float *v = nn_net_params_const(net);
    for (size_t i = 0, at = 0; i < f->n; at += f->numel[i], i++)
        memcpy(f->saved + at, v + f->offset[i], f->numel[i] * sizeof(float));
    *n_frozen = f->n;
    *out = f;
    return BASIRA_OK;
}

void basira_freeze_restore(const basira_freeze *f, basira_net *net)
{
    if (!f || !f->n)
        return;
    float *v = nn_net_params(net);
    for (size_t i = 0, at = 0; i < f->n; at += f->numel[i], i++)
        memcpy(v + f->offset[i], f->saved + at, f->numel[i] * sizeof(float));
    nn_net_params_changed(net);
}

void basira_freeze_free(basira_freeze *f)
{
    if (!f)
        return;
    free(f->offset);
    free(f->numel);
    free(f->saved);
    free(f);
}
