/*
 * arch.c - architecture builders: the JSON of a ResNet or a MobileNetV2 of a given
 * width, depth and input size.
 *
 * Layer names are torchvision's (conv1, layer1.0.conv1, layer1.0.downsample.0,
 * features.3.conv.1.0, classifier.1, ...), so a torchvision-style PyTorch model
 * built with the same settings has the same state_dict keys.
 */
#include "basira/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "nn/engine.h"

typedef struct builder {
    json_t *layers;
    int failed;
    char prev[NN_LAYER_NAME_MAX];
} builder;

/* Append a layer; input NULL means the previous layer. Returns the layer object. */
static json_t *add(builder *b, const char *name, const char *type, const char *input)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "name", json_string(name)) ||
        json_object_set_new(o, "type", json_string(type))) {
        json_decref(o);
        b->failed = 1;
        return NULL;
    }
    if (input && json_object_set_new(o, "inputs", json_pack("[s]", input)))
        b->failed = 1;
    if (json_array_append_new(b->layers, o)) {
        b->failed = 1;
        return NULL;
    }
    snprintf(b->prev, sizeof b->prev, "%s", name);
    return o;
}

static void set_int(builder *b, json_t *o, const char *key, int v)
{
    if (!o || json_object_set_new(o, key, json_integer(v)))
        b->failed = 1;
}

static void conv(builder *b, const char *name, const char *input, int out, int k, int s, int groups)
{
    json_t *o = add(b, name, "conv", input);
    set_int(b, o, "out_channels", out);
    set_int(b, o, "kernel", k);
    set_int(b, o, "stride", s);
    set_int(b, o, "padding", k / 2);
    set_int(b, o, "dilation", 1);
    set_int(b, o, "groups", groups);
    if (o && json_object_set_new(o, "bias", json_false()))
        b->failed = 1;
}

static void conv_bn(builder *b, const char *pfx_conv, const char *pfx_bn, const char *input,
                    int out, int k, int s, int groups)
{
    conv(b, pfx_conv, input, out, k, s, groups);
    add(b, pfx_bn, "batchnorm", NULL);
}

static void head(builder *b, int num_classes, double dropout, const char *gap_name,
                 const char *drop_name, const char *fc_name)
{
    add(b, gap_name, "gap", NULL);
    if (dropout > 0.0) {
        json_t *o = add(b, drop_name, "dropout", NULL);
        if (!o || json_object_set_new(o, "p", json_real(dropout)))
            b->failed = 1;
    }
    json_t *o = add(b, fc_name, "fc", NULL);
    set_int(b, o, "out_features", num_classes);
}

/* ResNet with BasicBlocks; the stem has stride 2 when the shorter input side is 96 or more. */
static void build_resnet(builder *b, const basira_arch_params *p)
{
    char n1[NN_LAYER_NAME_MAX], n2[NN_LAYER_NAME_MAX], in[NN_LAYER_NAME_MAX];
    int h = p->input_height ? p->input_height : p->input_size;
    int stem_stride = (p->input_size < h ? p->input_size : h) >= 96 ? 2 : 1;
    conv_bn(b, "conv1", "bn1", "input", p->width, 3, stem_stride, 1);
    add(b, "relu", "relu", NULL);
    int cin = p->width;
    for (int s = 0; s < 4; s++) {
        int cout = p->width << s;
        for (int k = 0; k < p->depth; k++) {
            int stride = (s > 0 && k == 0) ? 2 : 1;
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", s + 1, k);
            snprintf(in, sizeof in, "%s", b->prev);
            snprintf(n1, sizeof n1, "%s.conv1", pfx);
            snprintf(n2, sizeof n2, "%s.bn1", pfx);
            conv_bn(b, n1, n2, in, cout, 3, stride, 1);
            snprintf(n1, sizeof n1, "%s.relu1", pfx);
            add(b, n1, "relu", NULL);
            snprintf(n1, sizeof n1, "%s.conv2", pfx);
            snprintf(n2, sizeof n2, "%s.bn2", pfx);
            conv_bn(b, n1, n2, NULL, cout, 3, 1, 1);
            char main_out[NN_LAYER_NAME_MAX], skip[NN_LAYER_NAME_MAX];
            snprintf(main_out, sizeof main_out, "%s", b->prev);
            snprintf(skip, sizeof skip, "%s", in);
            if (stride != 1 || cin != cout) {
                snprintf(n1, sizeof n1, "%s.downsample.0", pfx);
                snprintf(n2, sizeof n2, "%s.downsample.1", pfx);
                conv_bn(b, n1, n2, in, cout, 1, stride, 1);
                snprintf(skip, sizeof skip, "%s", b->prev);
            }
            snprintf(n1, sizeof n1, "%s.add", pfx);
            json_t *o = add(b, n1, "add", NULL);
            if (!o || json_object_set_new(o, "inputs", json_pack("[ss]", main_out, skip)))
                b->failed = 1;
            snprintf(n1, sizeof n1, "%s.relu2", pfx);
            add(b, n1, "relu", NULL);
            cin = cout;
        }
    }
    head(b, p->num_classes, p->dropout, "avgpool", "dropout", "fc");
}

/* torchvision's _make_divisible: round to a multiple of 8, never down by more than 10%. */
static int make_divisible(double v)
{
    int nv = (int)(v + 4.0) / 8 * 8;
    if (nv < 8)
        nv = 8;
    if (nv < 0.9 * v)
        nv += 8;
    return nv;
}

static void build_mobilenetv2(builder *b, const basira_arch_params *p)
{
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    double mult = p->width / 32.0;
    double dmul = (p->depth > 0 ? p->depth : 10) / 10.0;
    int cin = make_divisible(32.0 * mult);
    int last = make_divisible(1280.0 * (mult > 1.0 ? mult : 1.0));
    char n1[NN_LAYER_NAME_MAX], n2[NN_LAYER_NAME_MAX], in[NN_LAYER_NAME_MAX];
    conv_bn(b, "features.0.0", "features.0.1", "input", cin, 3, 2, 1);
    add(b, "features.0.2", "relu6", NULL);
    int idx = 1;
    for (int g = 0; g < 7; g++) {
        int t = cfg[g][0], cout = make_divisible(cfg[g][1] * mult);
        int n = (int)ceil(cfg[g][2] * dmul);
        if (n < 1)
            n = 1;
        for (int k = 0; k < n; k++, idx++) {
            int s = k == 0 ? cfg[g][3] : 1, hidden = cin * t, c = 0;
            snprintf(in, sizeof in, "%s", b->prev);
            if (t != 1) {
                snprintf(n1, sizeof n1, "features.%d.conv.%d.0", idx, c);
                snprintf(n2, sizeof n2, "features.%d.conv.%d.1", idx, c);
                conv_bn(b, n1, n2, NULL, hidden, 1, 1, 1);
                snprintf(n1, sizeof n1, "features.%d.conv.%d.2", idx, c++);
                add(b, n1, "relu6", NULL);
            }
            snprintf(n1, sizeof n1, "features.%d.conv.%d.0", idx, c);
            snprintf(n2, sizeof n2, "features.%d.conv.%d.1", idx, c);
            conv_bn(b, n1, n2, NULL, hidden, 3, s, hidden);
            snprintf(n1, sizeof n1, "features.%d.conv.%d.2", idx, c++);
            add(b, n1, "relu6", NULL);
            snprintf(n1, sizeof n1, "features.%d.conv.%d", idx, c++);
            snprintf(n2, sizeof n2, "features.%d.conv.%d", idx, c++);
            conv_bn(b, n1, n2, NULL, cout, 1, 1, 1);
            if (s == 1 && cin == cout) {
                char main_out[NN_LAYER_NAME_MAX];
                snprintf(main_out, sizeof main_out, "%s", b->prev);
                snprintf(n1, sizeof n1, "features.%d.add", idx);
                json_t *o = add(b, n1, "add", NULL);
                if (!o || json_object_set_new(o, "inputs", json_pack("[ss]", main_out, in)))
                    b->failed = 1;
            }
            cin = cout;
        }
    }
    snprintf(n1, sizeof n1, "features.%d.0", idx);
    snprintf(n2, sizeof n2, "features.%d.1", idx);
    conv_bn(b, n1, n2, NULL, last, 1, 1, 1);
    snprintf(n1, sizeof n1, "features.%d.2", idx);
    add(b, n1, "relu6", NULL);
    head(b, p->num_classes, p->dropout, "avgpool", "classifier.0", "classifier.1");
}

char *basira_arch_build(const basira_arch_params *p, basira_error *err)
{
    if (!p || !p->family) {
        basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
        return NULL;
    }
    int resnet = !strcmp(p->family, "resnet"), mnet = !strcmp(p->family, "mobilenetv2");
    if (!resnet && !mnet) {
        basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                         _("unknown architecture family \"%s\" (use resnet or mobilenetv2)"),
                         p->family);
        return NULL;
    }
    int min_side = resnet ? 8 : 32, max_depth = resnet ? 16 : 40;
    int in_h = p->input_height ? p->input_height : p->input_size;
    if (p->input_size < min_side || p->input_size > 1024 || in_h < min_side || in_h > 1024 ||
        p->num_classes < 1 || p->num_classes > NN_MAX_CLASSES || p->width < 1 || p->width > 512 ||
        p->depth < 1 || p->depth > max_depth || !(p->dropout >= 0.0 && p->dropout < 1.0)) {
        basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                         _("architecture settings out of range: input size %d to 1024, width 1 to "
                           "512, depth 1 to %d, dropout in [0, 1)"),
                         min_side, max_depth);
        return NULL;
    }
    builder b = {.layers = json_array()};
    json_t *arch = json_object();
    if (!b.layers || !arch) {
        json_decref(b.layers);
        json_decref(arch);
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
        return NULL;
    }
    if (resnet)
        build_resnet(&b, p);
    else
        build_mobilenetv2(&b, p);
    char *out = NULL;
    if (!b.failed && !json_object_set_new(arch, "family", json_string(p->family)) &&
        !json_object_set_new(arch, "input", json_pack("[iii]", 3, in_h, p->input_size)) &&
        !json_object_set_new(arch, "num_classes", json_integer(p->num_classes)) &&
        !json_object_set(arch, "layers", b.layers) &&
        !json_object_set_new(arch, "output", json_string(b.prev)))
        out = json_dumps(arch, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(b.layers);
    json_decref(arch);
    if (!out)
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return out;
}
