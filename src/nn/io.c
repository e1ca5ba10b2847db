/*
 * io.c - networks and checkpoints as safetensors files, and files' SHA-256.
 *
 * A model file holds every parameter and buffer of the net under its PyTorch name
 * (see internal.h) and, in "__metadata__", the net's metadata map plus
 * "architecture": the JSON from which basira_net_new() rebuilds the graph. Loading
 * is strict: every tensor the architecture needs must be there with the right
 * shape and finite values, and nothing else may be, because a model that only
 * half matches its architecture would still run and give confident wrong answers.
 *
 * A net calibrated for int8 inference (quant.c) also stores its activation ranges in
 * the metadata ("int8_calibration"), checked against the architecture at load.
 *
 * An ensemble (several nets whose predictions the classifier averages) is one file:
 * member 0 exactly as a single net, member i >= 1 with its tensors under
 * "member<i>.<param>" and its architecture and int8 ranges under
 * "member<i>.architecture" and "member<i>.int8_calibration", and "ensemble" = the
 * count. The metadata map is member 0's. basira_net_load() refuses such a file by name,
 * so nothing takes one member for the whole model by accident; training from an ensemble
 * (--init-from, adapt) asks for member 0 by name with basira_net_load_first().
 *
 * A checkpoint is the same file plus the optimiser state ("optim.<state>.<param>",
 * e.g. "optim.exp_avg.conv1.weight"), the averaged weights ("ema.<param>"), and in
 * the metadata "optim" (settings and step count) and "train_state" (the trainer's
 * JSON: epoch, step, RNG state, best metric...), so that a resumed run continues
 * with exactly the numbers an uninterrupted one would have.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/i18n.h"
#include "nn/internal.h"
#include "nn/optim_internal.h"
#include "nn/safetensors.h"

/* Metadata keys the file format itself uses; the net's map may not override them. */
#define META_ARCH "architecture"
#define META_OPTIM "optim"
#define META_TRAIN "train_state"
#define META_RNG "net_rng"                   /* dropout generator state, decimal */
#define META_INT8 "int8_calibration"         /* activation ranges for int8 inference (quant.c) */
#define META_ENSEMBLE "ensemble"             /* number of member nets, "2".."8"; absent = 1 */
#define META_STORAGE BASIRA_NET_META_STORAGE /* "F16" or "F32" (nn.h) */
#define MEMBER_PREFIX "member"               /* "member<i>." before a member's tensor and keys */

/* Keys of the file format, never copied between the file and the net's metadata map. */
static int reserved_key(const char *k)
{
    size_t pl = strlen(MEMBER_PREFIX);
    if (!strncmp(k, MEMBER_PREFIX, pl) && k[pl] >= '0' && k[pl] <= '9')
        return 1;
    return !strcmp(k, META_ARCH) || !strcmp(k, META_OPTIM) || !strcmp(k, META_TRAIN) ||
           !strcmp(k, META_INT8) || !strcmp(k, META_ENSEMBLE);
}

/* "architecture" for member 0, "member<i>.architecture" for the others. */
static void member_key(char *out, size_t cap, int member, const char *key)
{
    if (member)
        snprintf(out, cap, "%s%d.%s", MEMBER_PREFIX, member, key);
    else
        snprintf(out, cap, "%s", key);
}

/* ---- writing -------------------------------------------------------------------- */

/*
 * The storage member 0's metadata asks for (nn.h, BASIRA_NET_META_STORAGE): *f16 = 1 for
 * "F16", 0 for "F32" or none. Anything else is refused rather than guessed.
 */
static basira_code storage_of(const basira_net *net, int *f16, basira_error *err)
{
    const json_t *v = json_object_get(nn_net_metadata_ref((basira_net *)net), META_STORAGE);
    const char *s = json_string_value(v);
    *f16 = s && !strcmp(s, "F16");
    if (v && (!s || (strcmp(s, "F16") && strcmp(s, "F32"))))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("metadata \"%s\" must be \"F16\" or \"F32\""), META_STORAGE);
    return BASIRA_OK;
}

/*
 * Add every tensor of the net, reading values from base (params or a state array); with
 * f16, in half precision, but a tensor half precision cannot hold (a value beyond 65504)
 * stays F32: a smaller file is never worth a wrong weight.
 */
static basira_code add_tensors(nn_st_writer *w, const basira_net *net, const char *prefix,
                               const float *base, int trainable_only, int f16, basira_error *err)
{
    size_t np = nn_net_param_count(net);
    char name[NN_PARAM_NAME_MAX + 32];
    for (size_t i = 0; i < np; i++) {
        const nn_param *p = nn_net_param(net, i);
        if (trainable_only && !p->trainable)
            continue;
        snprintf(name, sizeof name, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", p->name);
        basira_error half_err;
        basira_code rc =
            f16 ? nn_st_writer_add_f16(w, name, p->shape, p->ndim, base + p->offset, &half_err)
                : BASIRA_E_LIMIT;
        if (rc == BASIRA_E_LIMIT)
            rc = nn_st_writer_add_f32(w, name, p->shape, p->ndim, base + p->offset, err);
        else if (rc && err)
            *err = half_err;
        if (rc)
            return rc;
    }
    return BASIRA_OK;
}

/* The net's metadata map (string values only; member 0 only) plus its architecture. */
static basira_code add_metadata(nn_st_writer *w, const basira_net *net, int member,
                                basira_error *err)
{
    /* The metadata is only read here; the accessor is non-const for the callers who edit it. */
    json_t *meta = nn_net_metadata_ref((basira_net *)net);
    const char *k;
    json_t *v;
    char key[64];
    json_object_foreach(meta, k, v)
    {
        if (member)
            break;
        if (reserved_key(k))
            continue;
        if (!json_is_string(v))
            return basira_error_set(
                err, BASIRA_E_INVALID_ARGUMENT,
                _("metadata \"%s\" must be a string (serialise JSON documents into a string)"), k);
        basira_code rc = nn_st_writer_set_meta(w, k, json_string_value(v), err);
        if (rc)
            return rc;
    }
    char *arch = nn_net_arch_string(net);
    if (!arch)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    member_key(key, sizeof key, member, META_ARCH);
    basira_code rc = nn_st_writer_set_meta(w, key, arch, err);
    free(arch);
    /* A net calibrated for int8 keeps its ranges, so that it runs in int8 at load. */
    int nomem;
    char *calib = rc ? NULL : nn_calib_to_json(net, &nomem);
    if (!rc && nomem)
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    member_key(key, sizeof key, member, META_INT8);
    if (calib)
        rc = nn_st_writer_set_meta(w, key, calib, err);
    free(calib);
    return rc;
}

basira_code basira_net_save(const basira_net *net, const char *path, basira_error *err)
{
    return basira_net_save_ensemble(&net, 1, path, err);
}

/* Members must agree on what they take and what they give, or their average means nothing. */
static basira_code check_members(const basira_net *const *nets, int n, basira_error *err)
{
    int c0, h0, w0;
    basira_net_input_shape(nets[0], &c0, &h0, &w0);
    for (int i = 1; i < n; i++) {
        int c, h, w;
        basira_net_input_shape(nets[i], &c, &h, &w);
        if (c != c0 || h != h0 || w != w0 ||
            basira_net_num_classes(nets[i]) != basira_net_num_classes(nets[0]))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("ensemble: member %d takes %dx%dx%d inputs with %d outputs, "
                                      "member 0 %dx%dx%d with %d"),
                                    i, c, h, w, basira_net_num_classes(nets[i]), c0, h0, w0,
                                    basira_net_num_classes(nets[0]));
    }
    return BASIRA_OK;
}

basira_code basira_net_save_ensemble(const basira_net *const *nets, int n, const char *path,
                                     basira_error *err)
{
    if (!nets || !path || n < 1 || n > BASIRA_NET_MAX_MEMBERS)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("saving a model needs 1 to %d networks and a path"),
                                BASIRA_NET_MAX_MEMBERS);
    for (int i = 0; i < n; i++) {
        if (!nets[i])
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("saving a model needs 1 to %d networks and a path"),
                                    BASIRA_NET_MAX_MEMBERS);
        if (!nn_net_params_const(nets[i]))
            return nn_net_released_error(err);
    }
    basira_code rc = check_members(nets, n, err);
    if (rc)
        return rc;
    int f16 = 0;
    if ((rc = storage_of(nets[0], &f16, err)))
        return rc;
    nn_st_writer *w = nn_st_writer_new();
    if (!w)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    char prefix[32], count[16];
    for (int i = 0; !rc && i < n; i++) {
        snprintf(prefix, sizeof prefix, "%s%d", MEMBER_PREFIX, i);
        rc = add_tensors(w, nets[i], i ? prefix : NULL, nn_net_params_const(nets[i]), 0, f16, err);
        if (!rc)
            rc = add_metadata(w, nets[i], i, err);
    }
    snprintf(count, sizeof count, "%d", n);
    if (!rc && n > 1)
        rc = nn_st_writer_set_meta(w, META_ENSEMBLE, count, err);
    if (!rc)
        rc = nn_st_writer_save(w, path, err);
    nn_st_writer_free(w);
    return rc;
}

basira_code basira_checkpoint_save(const basira_net *net, const basira_optim *opt,
                                   const json_t *train_state, const char *path, basira_error *err)
{
    if (!net || !path)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("saving a checkpoint needs a network and a path"));
    if (opt && nn_optim_net(opt) != net)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the optimiser belongs to another network"));
    if (!nn_net_params_const(net))
        return nn_net_released_error(err);
    if (opt && nn_optim_ema_swapped(opt))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the averaged (EMA) weights are in the network: swap them back "
                                  "before saving a checkpoint"));
    if (train_state && !json_is_object(train_state))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the training state must be a JSON object"));
    nn_st_writer *w = nn_st_writer_new();
    if (!w)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = add_tensors(w, net, NULL, nn_net_params_const(net), 0, 0, err);
    if (!rc)
        rc = add_metadata(w, net, 0, err);
    if (!rc && opt) {
        nn_optim_state st[3];
        int ns = nn_optim_states((basira_optim *)opt, st);
        for (int i = 0; i < ns && !rc; i++)
            rc = add_tensors(w, net, st[i].name, st[i].data, st[i].trainable_only, 0, err);
        json_t *oj = nn_optim_to_json(opt);
        char *os = oj ? json_dumps(oj, JSON_COMPACT) : NULL;
        json_decref(oj);
        if (!rc)
            rc = os ? nn_st_writer_set_meta(w, META_OPTIM, os, err)
                    : basira_error_set(err, BASIRA_E_NOMEM, NULL);
        free(os);
    }
    if (!rc) {
        json_t *empty = train_state ? NULL : json_object();
        char *ts = json_dumps(train_state ? train_state : empty, JSON_COMPACT);
        json_decref(empty);
        rc = ts ? nn_st_writer_set_meta(w, META_TRAIN, ts, err)
                : basira_error_set(err, BASIRA_E_NOMEM, NULL);
        free(ts);
    }
    if (!rc) {
        char rng[24];
        snprintf(rng, sizeof rng, "%llu", (unsigned long long)nn_net_rng_state(net));
        rc = nn_st_writer_set_meta(w, META_RNG, rng, err);
    }
    if (!rc)
        rc = nn_st_writer_save(w, path, err);
    nn_st_writer_free(w);
    return rc;
}

/* ---- reading -------------------------------------------------------------------- */

static int shape_equal(const nn_param *p, const nn_st_tensor *t)
{
    if (p->ndim != t->ndim)
        return 0;
    for (int d = 0; d < p->ndim; d++)
        if (p->shape[d] != t->shape[d])
            return 0;
    return 1;
}

static void shape_str(const int64_t *shape, int ndim, char *out, size_t outsz)
{
    size_t k = (size_t)snprintf(out, outsz, "[");
    for (int d = 0; d < ndim && k < outsz; d++)
        k += (size_t)snprintf(out + k, outsz - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < outsz)
        snprintf(out + k, outsz - k, "]");
}

/*
 * 1 when every value is finite. No early exit, so that the compiler vectorises it (a
 * one-photo triage checks 2.8 M weights): an exponent of all ones (infinity, NaN)
 * carries into the top bit, no other does.
 */
static int all_finite(const float *x, size_t n)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        acc |= (u & 0x7f800000u) + 0x00800000u;
    }
    return !(acc & 0x80000000u);
}

/* Copy the tensor "<prefix>.<param>" of every (trainable) param into base. */
static basira_code read_tensors(const nn_st_file *f, const basira_net *net, const char *prefix,
                                float *base, int trainable_only, basira_error *err)
{
    size_t np = nn_net_param_count(net);
    char name[NN_PARAM_NAME_MAX + 32];
    for (size_t i = 0; i < np; i++) {
        const nn_param *p = nn_net_param(net, i);
        if (trainable_only && !p->trainable)
            continue;
        snprintf(name, sizeof name, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", p->name);
        const nn_st_tensor *t = nn_st_find(f, name);
        if (!t)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("model file: tensor \"%s\" is missing (the architecture needs it)"), name);
        if (!shape_equal(p, t)) {
            char want[128], got[128];
            shape_str(p->shape, p->ndim, want, sizeof want);
            shape_str(t->shape, t->ndim, got, sizeof got);
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("model file: tensor \"%s\" has shape %s but the "
                                      "architecture needs %s"),
                                    name, got, want);
        }
        float *dst = base + p->offset;
        basira_code rc = nn_st_to_f32(t, dst, err);
        if (rc)
            return rc;
        if (!all_finite(dst, p->numel))
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("model file: tensor \"%s\" holds a value that is not a finite number"), name);
    }
    return BASIRA_OK;
}

/* How many (trainable) params the net has: the number of tensors a prefix must hold. */
static size_t count_params(const basira_net *net, int trainable_only)
{
    size_t np = nn_net_param_count(net), k = 0;
    for (size_t i = 0; i < np; i++)
        if (!trainable_only || nn_net_param(net, i)->trainable)
            k++;
    return k;
}

/*
 * Called when the file has more tensors than expected: name the first one that is
 * not "<param>" or "<state>.<param>" of one of the states (trainable params only for
 * the optimiser's states).
 */
static basira_code reject_extra(const nn_st_file *f, const basira_net *net,
                                const nn_optim_state *st, int ns, basira_error *err)
{
    size_t n = nn_st_count(f);
    for (size_t i = 0; i < n; i++) {
        const char *name = nn_st_at(f, i)->name;
        const char *rest = name;
        int trainable_only = 0;
        for (int k = 0; k < ns; k++) {
            size_t pl = strlen(st[k].name);
            if (!strncmp(name, st[k].name, pl) && name[pl] == '.') {
                rest = name + pl + 1;
                trainable_only = st[k].trainable_only;
                break;
            }
        }
        const nn_param *p = nn_net_param_find(net, rest);
        if (!p || (trainable_only && !p->trainable))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("model file: tensor \"%s\" is not part of the architecture"),
                                    name);
    }
    return basira_error_set(err, BASIRA_E_MODEL,
                            _("model file: a tensor appears under an unexpected name"));
}

/* Build member `member` of the file from its architecture and fill its values (and, member 0,
 * the metadata). */
static basira_code member_from_file(const nn_st_file *f, int member, basira_net **out,
                                    basira_error *err)
{
    *out = NULL;
    char key[64], prefix[32];
    member_key(key, sizeof key, member, META_ARCH);
    snprintf(prefix, sizeof prefix, "%s%d", MEMBER_PREFIX, member);
    const char *arch = nn_st_meta_get(f, key);
    if (!arch)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: no \"%s\" in its metadata (not a Basira model?)"),
                                key);
    basira_net *net = NULL;
    basira_error e2;
    basira_error_clear(&e2);
    basira_code rc = nn_net_new_uninitialised(arch, &net, &e2);
    if (rc) {
        if (rc == BASIRA_E_NOMEM)
            return basira_error_set(err, rc, "%s", e2.message);
        return basira_error_set(err, BASIRA_E_MODEL, _("model file: invalid architecture: %s"),
                                e2.message);
    }
    rc = read_tensors(f, net, member ? prefix : NULL, nn_net_params(net), 0, err);
    if (rc)
        goto fail;
    const char *k;
    json_t *v;
    json_t *meta = nn_net_metadata_ref(net);
    json_object_foreach((json_t *)nn_st_metadata(f), k, v)
    {
        if (member || reserved_key(k))
            continue;
        if (json_object_set(meta, k, v)) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto fail;
        }
    }
    nn_net_params_changed(net);
    /* After the line above: the ranges are those of the weights just read. */
    member_key(key, sizeof key, member, META_INT8);
    const char *calib = nn_st_meta_get(f, key);
    if (calib && (rc = nn_calib_from_json(net, calib, err)))
        goto fail;
    *out = net;
    return BASIRA_OK;
fail:
    basira_net_free(net);
    return rc;
}

static basira_code net_from_file(const nn_st_file *f, basira_net **out, basira_error *err)
{
    return member_from_file(f, 0, out, err);
}

/* The file's member count: 1 without "ensemble", else 2..BASIRA_NET_MAX_MEMBERS. */
static basira_code member_count(const nn_st_file *f, int *n, basira_error *err)
{
    const char *s = nn_st_meta_get(f, META_ENSEMBLE);
    *n = 1;
    if (!s)
        return BASIRA_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 2 || v > BASIRA_NET_MAX_MEMBERS)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: \"ensemble\" must be a count of 2 to %d networks"),
                                BASIRA_NET_MAX_MEMBERS);
    *n = (int)v;
    return BASIRA_OK;
}

static basira_code net_load_parsed(const nn_st_file *f, basira_net **out, basira_error *err)
{
    int members;
    basira_code rc = member_count(f, &members, err);
    if (rc)
        return rc;
    if (members > 1)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: an ensemble of %d networks, not one network (it "
                                  "is used as a classifier; training starts from its first "
                                  "network)"),
                                members);
    basira_net *net;
    rc = net_from_file(f, &net, err);
    if (rc)
        return rc;
    if (nn_st_count(f) != count_params(net, 0)) {
        rc = reject_extra(f, net, NULL, 0, err);
        basira_net_free(net);
        return rc;
    }
    *out = net;
    return BASIRA_OK;
}

basira_code basira_net_load(const char *path, basira_net **out, basira_error *err)
{
    if (out)
        *out = NULL;
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    nn_st_file *f;
    basira_code rc = nn_st_read_file(path, &f, err);
    if (rc)
        return rc;
    rc = net_load_parsed(f, out, err);
    nn_st_free(f);
    return rc;
}

basira_code basira_net_load_buffer(const void *data, size_t len, basira_net **out,
                                   basira_error *err)
{
    if (out)
        *out = NULL;
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    nn_st_file *f;
    basira_code rc = nn_st_parse(data, len, &f, err);
    if (rc)
        return rc;
    rc = net_load_parsed(f, out, err);
    nn_st_free(f);
    return rc;
}

/* Which member a tensor name belongs to, and its name in that member. */
static int tensor_member(const char *name, int n, const char **rest)
{
    size_t pl = strlen(MEMBER_PREFIX);
    *rest = name;
    if (strncmp(name, MEMBER_PREFIX, pl) || name[pl] < '1' || name[pl] > '9')
        return 0;
    char *end;
    long m = strtol(name + pl, &end, 10);
    if (*end != '.' || m < 1 || m >= n)
        return -1;
    *rest = end + 1;
    return (int)m;
}

static basira_code ensemble_parsed(const nn_st_file *f, basira_net **nets, int *n,
                                   basira_error *err)
{
    int members;
    basira_code rc = member_count(f, &members, err);
    size_t expected = 0;
    int made = 0;
    for (; !rc && made < members; made++) {
        if ((rc = member_from_file(f, made, &nets[made], err)))
            break;
        expected += count_params(nets[made], 0);
    }
    if (!rc)
        rc = check_members((const basira_net *const *)nets, members, err);
    /* Every tensor must belong to a member: the count alone would let one hide. */
    for (size_t i = 0; !rc && i < nn_st_count(f); i++) {
        const char *name = nn_st_at(f, i)->name, *rest;
        int m = tensor_member(name, members, &rest);
        if (m < 0 || !nn_net_param_find(nets[m], rest))
            rc = basira_error_set(err, BASIRA_E_MODEL,
                                  _("model file: tensor \"%s\" is not part of the architecture"),
                                  name);
    }
    if (!rc && nn_st_count(f) != expected)
        rc = basira_error_set(err, BASIRA_E_MODEL,
                              _("model file: a tensor appears under an unexpected name"));
    if (rc) {
        for (int i = 0; i < made && i < members; i++) {
            basira_net_free(nets[i]);
            nets[i] = NULL;
        }
        return rc;
    }
    *n = members;
    return BASIRA_OK;
}

basira_code basira_net_load_ensemble_buffer(const void *data, size_t len, basira_net **nets, int *n,
                                            basira_error *err)
{
    if (!nets || !n)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    *n = 0;
    for (int i = 0; i < BASIRA_NET_MAX_MEMBERS; i++)
        nets[i] = NULL;
    nn_st_file *f;
    basira_code rc = nn_st_parse(data, len, &f, err);
    if (rc)
        return rc;
    rc = ensemble_parsed(f, nets, n, err);
    nn_st_free(f);
    return rc;
}

basira_code basira_net_load_ensemble(const char *path, basira_net **nets, int *n, basira_error *err)
{
    if (!nets || !n)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    *n = 0;
    for (int i = 0; i < BASIRA_NET_MAX_MEMBERS; i++)
        nets[i] = NULL;
    nn_st_file *f;
    basira_code rc = nn_st_read_file(path, &f, err);
    if (rc)
        return rc;
    rc = ensemble_parsed(f, nets, n, err);
    nn_st_free(f);
    return rc;
}

basira_code basira_net_load_first(const char *path, basira_net **out, int *members,
                                  basira_error *err)
{
    if (out)
        *out = NULL;
    if (members)
        *members = 0;
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    basira_net *nets[BASIRA_NET_MAX_MEMBERS];
    int n;
    basira_code rc = basira_net_load_ensemble(path, nets, &n, err);
    if (rc)
        return rc;
    /* Every member was read and checked: a file damaged past member 0 is still refused. */
    *out = nets[0];
    nets[0] = NULL;
    basira_net_free_ensemble(nets, n);
    if (members)
        *members = n;
    return BASIRA_OK;
}

void basira_net_free_ensemble(basira_net **nets, int n)
{
    for (int i = 0; nets && i < n; i++) {
        basira_net_free(nets[i]);
        nets[i] = NULL;
    }
}

basira_code basira_checkpoint_load(const char *path, basira_net **net_out, basira_optim **opt_out,
                                   json_t **train_state, basira_error *err)
{
    if (net_out)
        *net_out = NULL;
    if (opt_out)
        *opt_out = NULL;
    if (train_state)
        *train_state = NULL;
    if (!net_out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output given"));
    nn_st_file *f;
    basira_code rc = nn_st_read_file(path, &f, err);
    if (rc)
        return rc;
    basira_net *net = NULL;
    basira_optim *opt = NULL;
    json_t *ts = NULL;
    if ((rc = net_from_file(f, &net, err)))
        goto fail;

    /* The training state: a JSON object serialised into a string. */
    const char *tss = nn_st_meta_get(f, META_TRAIN);
    if (!tss) {
        rc = basira_error_set(err, BASIRA_E_MODEL,
                              _("checkpoint: no \"train_state\" in its metadata (a model file, "
                                "not a checkpoint?)"));
        goto fail;
    }
    json_error_t jerr;
    ts = json_loads(tss, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(ts)) {
        rc = basira_error_set(err, BASIRA_E_MODEL,
                              _("checkpoint: \"train_state\" is not a JSON object"));
        goto fail;
    }

    /* The dropout generator (absent in checkpoints older than this field). */
    const char *rs = nn_st_meta_get(f, META_RNG);
    if (rs) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(rs, &end, 10);
        if (errno || end == rs || *end) {
            rc =
                basira_error_set(err, BASIRA_E_MODEL, _("checkpoint: \"net_rng\" is not a number"));
            goto fail;
        }
        nn_net_set_rng_state(net, (uint64_t)v);
    }

    /* The optimiser, when the checkpoint has one. */
    size_t expected = count_params(net, 0);
    const char *os = nn_st_meta_get(f, META_OPTIM);
    if (os) {
        json_t *oj = json_loads(os, JSON_REJECT_DUPLICATES, &jerr);
        basira_optim_config cfg;
        long step;
        rc = nn_optim_config_from_json(oj, &cfg, &step, err);
        json_decref(oj);
        if (rc)
            goto fail;
        basira_error e2;
        if ((rc = basira_optim_new(net, &cfg, &opt, &e2))) {
            rc = basira_error_set(err, rc == BASIRA_E_NOMEM ? rc : BASIRA_E_MODEL,
                                  _("checkpoint: optimiser settings rejected: %s"), e2.message);
            goto fail;
        }
        nn_optim_set_step_count(opt, step);
        nn_optim_state st[3];
        int ns = nn_optim_states(opt, st);
        for (int i = 0; i < ns; i++) {
            if ((rc = read_tensors(f, net, st[i].name, st[i].data, st[i].trainable_only, err)))
                goto fail;
            expected += count_params(net, st[i].trainable_only);
        }
    }
    if (nn_st_count(f) != expected) {
        nn_optim_state st[3];
        int ns = opt ? nn_optim_states(opt, st) : 0;
        rc = reject_extra(f, net, st, ns, err);
        goto fail;
    }
    nn_st_free(f);
    *net_out = net;
    if (opt_out)
        *opt_out = opt;
    else
        basira_optim_free(opt);
    if (train_state)
        *train_state = ts;
    else
        json_decref(ts);
    return BASIRA_OK;
fail:
    json_decref(ts);
    basira_optim_free(opt);
    basira_net_free(net);
    nn_st_free(f);
    return rc;
}

/* ---- identity ------------------------------------------------------------------- */

basira_code basira_file_sha256(const char *path, char hex[65], basira_error *err)
{
    if (!path || !hex)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no file given"));
    hex[0] = '\0';
    if (sodium_init() < 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("libsodium could not start"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return basira_error_set(err, errno == ENOENT ? BASIRA_E_NOT_FOUND : BASIRA_E_IO,
                                _("cannot open %s: %s"), path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(e));
        }
        if (r == 0)
            break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)r);
    }
    close(fd);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof digest);
    return BASIRA_OK;
}
