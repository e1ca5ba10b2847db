/*
 * net.c - the network as data: parsing and checking an architecture JSON, the
 * parameter table and its single allocation, initialisation, accessors.
 *
 * The architecture comes from model files, which come from outside, so every
 * field is checked (type, range, references to earlier layers only, shapes that
 * stay non-empty, memory that stays bounded) before anything is allocated from it.
 */
#include "nn/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "core/memory.h"

static const struct {
    const char *name;
    nn_ltype type;
} layer_types[] = {
    {"conv", NN_CONV}, {"batchnorm", NN_BN},    {"relu", NN_RELU},       {"relu6", NN_RELU6},
    {"silu", NN_SILU}, {"maxpool", NN_MAXPOOL}, {"avgpool", NN_AVGPOOL}, {"gap", NN_GAP},
    {"fc", NN_FC},     {"dropout", NN_DROPOUT}, {"add", NN_ADD},         {"concat", NN_CONCAT},
};

/* ---- small JSON readers --------------------------------------------------------- */

/* An integer field in [lo, hi], def when absent; -1 when present but wrong. */
static int get_int(const json_t *o, const char *key, int def, int lo, int hi, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

/* An integer or a pair [a, b] (kernel, stride, padding, dilation). */
static int get_pair(const json_t *o, const char *key, int def, int lo, int hi, int *a, int *b)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_array(v)) {
        const json_t *x = json_array_get(v, 0), *y = json_array_get(v, 1);
        if (json_array_size(v) != 2 || !json_is_integer(x) || !json_is_integer(y))
            return -1;
        json_int_t xi = json_integer_value(x), yi = json_integer_value(y);
        if (xi < lo || xi > hi || yi < lo || yi > hi)
            return -1;
        *a = (int)xi;
        *b = (int)yi;
        return 0;
    }
    if (get_int(o, key, def, lo, hi, a))
        return -1;
    *b = *a;
    return 0;
}

static int get_bool(const json_t *o, const char *key, int def, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

static basira_code bad_field(basira_error *err, const char *layer, const char *key, int lo, int hi)
{
    return basira_error_set(err, BASIRA_E_MODEL,
                            _("layer \"%s\": \"%s\" must be an integer from %d to %d"), layer, key,
                            lo, hi);
}

/* ---- parameters --------------------------------------------------------------------- */

static basira_code add_param(basira_net *net, size_t *cap, const nn_layer *l, const char *suffix,
                             int ndim, const int64_t *shape, int decay, int trainable,
                             basira_error *err)
{
    if (net->nparams == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        nn_param *np = realloc(net->params, ncap * sizeof *np);
        if (!np)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        net->params = np;
        *cap = ncap;
    }
    nn_param *p = &net->params[net->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    p->numel = n;
    p->offset = net->numel;
    p->decay = decay;
    p->trainable = trainable;
    net->numel += n;
    net->nparams++;
    return BASIRA_OK;
}

/* ---- architecture ------------------------------------------------------------------- */

static int find_tensor(const basira_net *net, int nlayers, const char *name)
{
    if (!strcmp(name, "input"))
        return 0;
    for (int i = nlayers - 1; i >= 0; i--)
        if (!strcmp(net->layers[i].name, name))
            return i + 1;
    return -1;
}

static void tensor_shape(const basira_net *net, int t, int *c, int *h, int *w)
{
    if (t == 0) {
        *c = net->in_c;
        *h = net->in_h;
        *w = net->in_w;
    } else {
        *c = net->layers[t - 1].c;
        *h = net->layers[t - 1].h;
        *w = net->layers[t - 1].w;
    }
}

/* Output side of a window operation, floor mode as PyTorch; <= 0 when empty. */
static long out_side(long in, long k, long s, long p, long d)
{
    long span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0)
        return 0;
    return span / s + 1;
}

static basira_code parse_layer(basira_net *net, int i, const json_t *o, size_t *pcap, size_t *act,
                               basira_error *err)
{
    nn_layer *l = &net->layers[i];
    memset(l, 0, sizeof *l);
    l->param0 = -1;
    if (!json_is_object(o))
        return basira_error_set(err, BASIRA_E_MODEL, _("layer %d is not a JSON object"), i);

    const json_t *jn = json_object_get(o, "name");
    if (jn) {
        const char *s = json_string_value(jn);
        if (!s || !*s || strlen(s) >= NN_LAYER_NAME_MAX || !strcmp(s, "input") ||
            find_tensor(net, i, s) >= 0)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("layer %d: the name must be a unique string of 1 to %d characters, not "
                  "\"input\""),
                i, NN_LAYER_NAME_MAX - 1);
        snprintf(l->name, sizeof l->name, "%s", s);
    } else {
        snprintf(l->name, sizeof l->name, "layer%d", i);
        if (find_tensor(net, i, l->name) >= 0)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("layer %d: the name must be a unique string of 1 to %d characters, not "
                  "\"input\""),
                i, NN_LAYER_NAME_MAX - 1);
    }

    const char *type = json_string_value(json_object_get(o, "type"));
    size_t ti;
    for (ti = 0; type && ti < sizeof layer_types / sizeof layer_types[0]; ti++)
        if (!strcmp(type, layer_types[ti].name))
            break;
    if (!type || ti == sizeof layer_types / sizeof layer_types[0])
        return basira_error_set(err, BASIRA_E_MODEL, _("layer \"%s\": unknown type \"%s\""),
                                l->name, type ? type : "");
    l->type = layer_types[ti].type;

    /* Inputs: names of earlier layers (or "input"), so the graph cannot have a cycle. */
    const json_t *ji = json_object_get(o, "inputs");
    if (ji) {
        if (!json_is_array(ji) || json_array_size(ji) < 1 || json_array_size(ji) > NN_MAX_INPUTS)
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("layer \"%s\": \"inputs\" must be a list of 1 to %d names"),
                                    l->name, NN_MAX_INPUTS);
        l->ninputs = (int)json_array_size(ji);
        for (int k = 0; k < l->ninputs; k++) {
            const char *s = json_string_value(json_array_get(ji, (size_t)k));
            int t = s ? find_tensor(net, i, s) : -1;
            if (t < 0)
                return basira_error_set(
                    err, BASIRA_E_MODEL,
                    _("layer \"%s\": input \"%s\" is not the name of an earlier layer"), l->name,
                    s ? s : "");
            l->inputs[k] = t;
        }
    } else {
        l->ninputs = 1;
        l->inputs[0] = i; /* the previous layer's output (tensor i), or the input */
    }
    int multi = l->type == NN_ADD || l->type == NN_CONCAT;
    if ((multi && l->ninputs < 2) || (!multi && l->ninputs != 1))
        return basira_error_set(err, BASIRA_E_MODEL, _("layer \"%s\": wrong number of inputs (%d)"),
                                l->name, l->ninputs);

    /* After an fc the data is 2-D (N, C): only layers that work on any shape may follow. */
    int flat = l->inputs[0] > 0 && net->layers[l->inputs[0] - 1].flat;
    for (int k = 1; k < l->ninputs; k++)
        if (flat != (l->inputs[k] > 0 && net->layers[l->inputs[k] - 1].flat))
            flat = -1;
    int flat_ok = l->type == NN_FC || l->type == NN_RELU || l->type == NN_RELU6 ||
                  l->type == NN_SILU || l->type == NN_DROPOUT || l->type == NN_ADD;
    if (flat < 0 || (flat && !flat_ok))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("layer \"%s\": this type cannot follow a fully connected layer"),
                                l->name);
    l->flat = flat || l->type == NN_FC;

    int ic, ih, iw;
    tensor_shape(net, l->inputs[0], &ic, &ih, &iw);
    l->c = ic;
    l->h = ih;
    l->w = iw;
    int64_t shape[4];
    basira_code rc = BASIRA_OK;

    switch (l->type) {
    case NN_CONV: {
        if (get_int(o, "out_channels", -1, 1, NN_MAX_CHANNELS, &l->out_ch))
            return bad_field(err, l->name, "out_channels", 1, NN_MAX_CHANNELS);
        if (l->out_ch < 0)
            return bad_field(err, l->name, "out_channels", 1, NN_MAX_CHANNELS);
        if (get_pair(o, "kernel", -1, 1, NN_MAX_KERNEL, &l->kh, &l->kw) || l->kh < 0)
            return bad_field(err, l->name, "kernel", 1, NN_MAX_KERNEL);
        if (get_pair(o, "stride", 1, 1, NN_MAX_KERNEL, &l->sh, &l->sw))
            return bad_field(err, l->name, "stride", 1, NN_MAX_KERNEL);
        if (get_pair(o, "dilation", 1, 1, NN_MAX_KERNEL, &l->dh, &l->dw))
            return bad_field(err, l->name, "dilation", 1, NN_MAX_KERNEL);
        int maxpad = NN_MAX_KERNEL * NN_MAX_KERNEL;
        if (get_pair(o, "padding", 0, 0, maxpad, &l->ph, &l->pw))
            return bad_field(err, l->name, "padding", 0, maxpad);
        if (get_int(o, "groups", 1, 1, NN_MAX_CHANNELS, &l->groups))
            return bad_field(err, l->name, "groups", 1, NN_MAX_CHANNELS);
        if (get_bool(o, "bias", 1, &l->bias))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("layer \"%s\": \"%s\" must be true or false"), l->name,
                                    "bias");
        if (ic % l->groups || l->out_ch % l->groups)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("layer \"%s\": groups (%d) must divide the input (%d) and output (%d) channels"),
                l->name, l->groups, ic, l->out_ch);
        /* oneDNN, like PyTorch, wants the padded span to reach a whole window. */
        long oh = out_side(ih, l->kh, l->sh, l->ph, l->dh);
        long ow = out_side(iw, l->kw, l->sw, l->pw, l->dw);
        if (oh < 1 || ow < 1 || l->ph > l->dh * (l->kh - 1) || l->pw > l->dw * (l->kw - 1))
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("layer \"%s\": kernel, padding and stride do not fit an input of %dx%d"), l->name,
                ih, iw);
        l->c = l->out_ch;
        l->h = (int)oh;
        l->w = (int)ow;
        uint64_t wn =
            (uint64_t)l->out_ch * (uint64_t)(ic / l->groups) * (uint64_t)l->kh * (uint64_t)l->kw;
        if (wn > NN_MAX_PARAMS)
            break; /* caught by the total below */
        l->param0 = (int)net->nparams;
        shape[0] = l->out_ch;
        shape[1] = ic / l->groups;
        shape[2] = l->kh;
        shape[3] = l->kw;
        if ((rc = add_param(net, pcap, l, "weight", 4, shape, 1, 1, err)))
            return rc;
        if (l->bias && (rc = add_param(net, pcap, l, "bias", 1, shape, 0, 1, err)))
            return rc;
        break;
    }
    case NN_BN:
        l->param0 = (int)net->nparams;
        shape[0] = ic;
        if ((rc = add_param(net, pcap, l, "weight", 1, shape, 0, 1, err)) ||
            (rc = add_param(net, pcap, l, "bias", 1, shape, 0, 1, err)) ||
            (rc = add_param(net, pcap, l, "running_mean", 1, shape, 0, 0, err)) ||
            (rc = add_param(net, pcap, l, "running_var", 1, shape, 0, 0, err)))
            return rc;
        break;
    case NN_RELU:
    case NN_RELU6:
    case NN_SILU:
        break;
    case NN_MAXPOOL:
    case NN_AVGPOOL: {
        if (get_pair(o, "kernel", -1, 1, NN_MAX_KERNEL, &l->kh, &l->kw) || l->kh < 0)
            return bad_field(err, l->name, "kernel", 1, NN_MAX_KERNEL);
        /* PyTorch: the stride defaults to the kernel. */
        int dsh = l->kh;
        if (get_pair(o, "stride", dsh, 1, NN_MAX_KERNEL, &l->sh, &l->sw))
            return bad_field(err, l->name, "stride", 1, NN_MAX_KERNEL);
        if (!json_object_get(o, "stride"))
            l->sw = l->kw;
        if (get_pair(o, "padding", 0, 0, NN_MAX_KERNEL / 2, &l->ph, &l->pw))
            return bad_field(err, l->name, "padding", 0, NN_MAX_KERNEL / 2);
        long oh = out_side(ih, l->kh, l->sh, l->ph, 1), ow = out_side(iw, l->kw, l->sw, l->pw, 1);
        if (oh < 1 || ow < 1 || 2 * l->ph > l->kh || 2 * l->pw > l->kw)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("layer \"%s\": kernel, padding and stride do not fit an input of %dx%d"), l->name,
                ih, iw);
        l->h = (int)oh;
        l->w = (int)ow;
        l->dh = l->dw = 1;
        break;
    }
    case NN_GAP:
        l->h = l->w = 1;
        break;
    case NN_FC: {
        if (get_int(o, "out_features", -1, 1, NN_MAX_CHANNELS, &l->out_ch) || l->out_ch < 0)
            return bad_field(err, l->name, "out_features", 1, NN_MAX_CHANNELS);
        if (get_bool(o, "bias", 1, &l->bias))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("layer \"%s\": \"%s\" must be true or false"), l->name,
                                    "bias");
        uint64_t in = (uint64_t)ic * (uint64_t)ih * (uint64_t)iw;
        l->c = l->out_ch;
        l->h = l->w = 1;
        if (in * (uint64_t)l->out_ch > NN_MAX_PARAMS)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("the architecture needs too much memory (%zu parameters, %zu activations per "
                  "sample)"),
                (size_t)(in * (uint64_t)l->out_ch), *act);
        l->param0 = (int)net->nparams;
        /* PyTorch's Linear weight is (out, in); on a 4-D input, in = C*H*W flattened NCHW. */
        shape[0] = l->out_ch;
        shape[1] = (int64_t)in;
        if ((rc = add_param(net, pcap, l, "weight", 2, shape, 1, 1, err)))
            return rc;
        if (l->bias && (rc = add_param(net, pcap, l, "bias", 1, shape, 0, 1, err)))
            return rc;
        break;
    }
    case NN_DROPOUT: {
        const json_t *jp = json_object_get(o, "p");
        double p = jp ? (json_is_number(jp) ? json_number_value(jp) : -1.0) : 0.5;
        if (!(p >= 0.0 && p < 1.0))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("layer \"%s\": \"p\" must be a number in [0, 1)"), l->name);
        l->p = (float)p;
        break;
    }
    case NN_ADD:
    case NN_CONCAT: {
        long csum = 0;
        for (int k = 0; k < l->ninputs; k++) {
            int c, h, w;
            tensor_shape(net, l->inputs[k], &c, &h, &w);
            csum += c;
            if (h != ih || w != iw || (l->type == NN_ADD && c != ic))
                return basira_error_set(err, BASIRA_E_MODEL,
                                        _("layer \"%s\": the inputs have different shapes"),
                                        l->name);
        }
        if (l->type == NN_CONCAT) {
            if (csum > NN_MAX_CHANNELS)
                return bad_field(err, l->name, "channels", 1, NN_MAX_CHANNELS);
            l->c = (int)csum;
        }
        break;
    }
    }
    *act += (size_t)l->c * (size_t)l->h * (size_t)l->w;
    if (net->numel > NN_MAX_PARAMS || *act > NN_MAX_ACT_PER_SAMPLE ||
        (l->type == NN_CONV && l->param0 < 0))
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("the architecture needs too much memory (%zu parameters, %zu activations per "
              "sample)"),
            net->numel, *act);
    return BASIRA_OK;
}

basira_code nn_parse_arch(basira_net *net, const json_t *arch, basira_error *err)
{
    const json_t *in = json_object_get(arch, "input");
    const json_t *layers = json_object_get(arch, "layers");
    const char *output = json_string_value(json_object_get(arch, "output"));
    if (!json_is_object(arch) || !json_is_array(in) || !json_is_array(layers) || !output)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("the architecture must be a JSON object with \"input\", \"layers\" and \"output\""));
    json_int_t dims[3];
    for (size_t k = 0; k < 3; k++) {
        const json_t *d = json_array_get(in, k);
        dims[k] = json_is_integer(d) ? json_integer_value(d) : 0;
    }
    if (json_array_size(in) != 3 || dims[0] < 1 || dims[0] > NN_MAX_CHANNELS || dims[1] < 1 ||
        dims[1] > NN_MAX_SIDE || dims[2] < 1 || dims[2] > NN_MAX_SIDE)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("the architecture's \"input\" must be [channels, height, width] "
                                  "with channels 1 to %d and sides 1 to %d"),
                                NN_MAX_CHANNELS, NN_MAX_SIDE);
    net->in_c = (int)dims[0];
    net->in_h = (int)dims[1];
    net->in_w = (int)dims[2];
    size_t nl = json_array_size(layers);
    if (nl < 1 || nl > NN_MAX_LAYERS)
        return basira_error_set(err, BASIRA_E_MODEL, _("the architecture must have 1 to %d layers"),
                                NN_MAX_LAYERS);
    net->layers = calloc(nl, sizeof *net->layers);
    if (!net->layers)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    size_t cap = 0, act = (size_t)net->in_c * (size_t)net->in_h * (size_t)net->in_w;
    for (size_t i = 0; i < nl; i++) {
        basira_code rc = parse_layer(net, (int)i, json_array_get(layers, i), &cap, &act, err);
        if (rc)
            return rc;
        net->nlayers = (int)i + 1;
    }
    net->output = find_tensor(net, net->nlayers, output);
    int k = -1;
    if (get_int(arch, "num_classes", -1, 1, NN_MAX_CLASSES, &k) || k < 0)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("\"num_classes\" must be an integer from 1 to %d"),
                                NN_MAX_CLASSES);
    net->num_classes = k;
    if (net->output <= 0 || net->layers[net->output - 1].c != k ||
        net->layers[net->output - 1].h != 1 || net->layers[net->output - 1].w != 1)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("the output layer \"%s\" does not exist or does not give one "
                                  "score per class"),
                                output);
    return BASIRA_OK;
}

/* ---- initialisation ----------------------------------------------------------------- */

uint64_t nn_rng_next(uint64_t *state)
{
    /* splitmix64: tiny, fast, statistically fine for initialisation and dropout masks. */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return ((double)(nn_rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/*
 * Conv weights: Kaiming normal, fan_out, gain sqrt(2), as torchvision's ResNet and
 * MobileNetV2. fc: PyTorch Linear's default U(-1/sqrt(in), 1/sqrt(in)), bias 0.
 * Batch norm: weight 1, bias 0, running mean 0, running var 1.
 */
static void init_params(basira_net *net, uint64_t seed)
{
    uint64_t s = seed ^ 0x6261736972610001ULL;
    memset(net->values, 0, net->numel * sizeof(float));
    for (int i = 0; i < net->nlayers; i++) {
        const nn_layer *l = &net->layers[i];
        if (l->param0 < 0)
            continue;
        const nn_param *p = &net->params[l->param0];
        float *v = net->values + p->offset;
        if (l->type == NN_CONV) {
            double fan_out = (double)p->shape[0] * (double)(p->shape[2] * p->shape[3]);
            double sd = sqrt(2.0 / fan_out);
            for (size_t k = 0; k < p->numel; k++)
                v[k] = (float)(sd * rng_normal(&s));
        } else if (l->type == NN_FC) {
            double b = 1.0 / sqrt((double)p->shape[1]);
            for (size_t k = 0; k < p->numel; k++)
                v[k] = (float)(b * (2.0 * rng_uniform(&s) - 1.0));
        } else if (l->type == NN_BN) {
            for (size_t k = 0; k < p->numel; k++) {
                v[k] = 1.0f;                                               /* weight */
                net->values[net->params[l->param0 + 3].offset + k] = 1.0f; /* running_var */
            }
        }
    }
}

/* ---- public: life cycle and accessors ------------------------------------------------ */

/*
 * Build the graph and allocate its tensors. With init = 0 the values are left as
 * allocated, for the file loader (io.c), which writes every one of them or frees the
 * net: each param is one tensor of the file, and the params tile the values. Drawing
 * 10^5 to 10^7 Gaussian numbers, or even clearing the values, only to overwrite them
 * is a visible part of a model's start-up time, on the path of every `basira triage`.
 */
static basira_code net_create(const char *arch_json, uint64_t seed, int init, basira_net **out,
                              basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (!arch_json)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    json_error_t je;
    json_t *arch = json_loads(arch_json, JSON_REJECT_DUPLICATES, &je);
    if (!arch)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("the architecture is not valid JSON: %s (line %d)"), je.text,
                                je.line);
    basira_net *net = calloc(1, sizeof *net);
    if (!net) {
        json_decref(arch);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    net->arch = arch;
    net->meta = json_object();
    basira_code rc =
        net->meta ? nn_parse_arch(net, arch, err) : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (!rc) {
        size_t bytes = ((net->numel ? net->numel : 1) * sizeof(float) + 63) / 64 * 64;
        net->values = aligned_alloc(64, bytes);
        if (!net->values)
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        else
            basira_prefault(net->values, bytes);
    }
    if (rc) {
        basira_net_free(net);
        return rc;
    }
    if (init)
        init_params(net, seed);
    net->rng = seed ^ 0x64726f706f757400ULL;
    *out = net;
    return BASIRA_OK;
}

basira_code basira_net_new(const char *arch_json, uint64_t seed, basira_net **out,
                           basira_error *err)
{
    return net_create(arch_json, seed, 1, out, err);
}

basira_code nn_net_new_uninitialised(const char *arch_json, basira_net **out, basira_error *err)
{
    return net_create(arch_json, 0, 0, out, err);
}

void basira_net_free(basira_net *net)
{
    if (!net)
        return;
    nn_exec_release(net);
    free(net->prof);
    free(net->act_max);
    free(net->act_min);
    json_decref(net->arch);
    json_decref(net->meta);
    free(net->layers);
    free(net->params);
    free(net->values);
    free(net->grads);
    free(net);
}

json_t *basira_net_metadata(basira_net *net)
{
    return net ? net->meta : NULL;
}

json_t *nn_net_metadata_ref(basira_net *net)
{
    return basira_net_metadata(net);
}

const json_t *basira_net_arch(const basira_net *net)
{
    return net ? net->arch : NULL;
}

char *nn_net_arch_string(const basira_net *net)
{
    return net ? json_dumps(net->arch, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

int basira_net_num_classes(const basira_net *net)
{
    return net ? net->num_classes : 0;
}

void basira_net_input_shape(const basira_net *net, int *c, int *h, int *w)
{
    if (c)
        *c = net ? net->in_c : 0;
    if (h)
        *h = net ? net->in_h : 0;
    if (w)
        *w = net ? net->in_w : 0;
}

size_t basira_net_num_params(const basira_net *net)
{
    size_t n = 0;
    for (size_t i = 0; net && i < net->nparams; i++)
        if (net->params[i].trainable)
            n += net->params[i].numel;
    return n;
}

size_t nn_net_param_count(const basira_net *net)
{
    return net ? net->nparams : 0;
}

const nn_param *nn_net_param(const basira_net *net, size_t i)
{
    return net && i < net->nparams ? &net->params[i] : NULL;
}

const nn_param *nn_net_param_find(const basira_net *net, const char *name)
{
    for (size_t i = 0; net && name && i < net->nparams; i++)
        if (!strcmp(net->params[i].name, name))
            return &net->params[i];
    return NULL;
}

float *nn_net_params(basira_net *net)
{
    return net ? net->values : NULL;
}

const float *nn_net_params_const(const basira_net *net)
{
    return net ? net->values : NULL;
}

/*
 * The gradients are allocated (zeroed) when first asked for: a net that is only
 * run for inference, such as the bundled model in `basira triage`, never touches
 * them, which saves their memory and the time to clear it at start-up.
 */
float *nn_net_grads(basira_net *net)
{
    if (!net)
        return NULL;
    if (!net->grads) {
        size_t bytes = ((net->numel ? net->numel : 1) * sizeof(float) + 63) / 64 * 64;
        net->grads = aligned_alloc(64, bytes);
        if (net->grads)
            memset(net->grads, 0, bytes);
    }
    return net->grads;
}

size_t nn_net_numel(const basira_net *net)
{
    return net ? net->numel : 0;
}

uint64_t nn_net_rng_state(const basira_net *net)
{
    return net->rng;
}

void nn_net_set_rng_state(basira_net *net, uint64_t state)
{
    net->rng = state;
}

void nn_net_params_changed(basira_net *net)
{
    if (!net)
        return;
    net->prepared_stale = 1;
    net->calib_stale = net->calibrated;
}

basira_code nn_net_released_error(basira_error *err)
{
    return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                            _("this network kept only its prepared inference: load the model "
                              "again to change its precision or batch size, calibrate, train "
                              "or save it"));
}

int nn_net_is_prepared(const basira_net *net)
{
    return net ? net->prepared : 0;
}

void basira_net_zero_grad(basira_net *net)
{
    if (net && net->grads) /* none yet: zero by definition */
        memset(net->grads, 0, net->numel * sizeof(float));
}

double basira_net_clip_grad(basira_net *net, double max_norm)
{
    if (!net || !net->grads)
        return 0.0;
    double ss = 0.0;
    for (size_t i = 0; i < net->numel; i++)
        ss += (double)net->grads[i] * (double)net->grads[i];
    double norm = sqrt(ss);
    if (max_norm > 0.0 && norm > max_norm) {
        /* Same rule as torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6). */
        float s = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < net->numel; i++)
            net->grads[i] *= s;
    }
    return norm;
}
