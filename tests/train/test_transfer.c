/*
 * test_transfer.c - starting from a parent model (`basira adapt`): the backbone is
 * copied exactly, a new head has the new number of classes, frozen stages come back
 * unchanged after optimiser steps (weights and batch-norm statistics) while the others
 * move, an ensemble gives its first network, and bad requests are refused.
 */
#include <string.h>
#include <unistd.h>

#include "../model/tiny_model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "nn/internal.h"
#include "test.h"

static char parent[256];

static int same(const basira_net *a, const basira_net *b, const char *name)
{
    const nn_param *p = nn_net_param_find(a, name), *q = nn_net_param_find(b, name);
    return p && q && p->numel == q->numel &&
           !memcmp(nn_net_params_const(a) + p->offset, nn_net_params_const(b) + q->offset,
                   p->numel * sizeof(float));
}

static void test_copy_and_head(void)
{
    basira_net *pn = NULL, *net = NULL;
    size_t copied = 0, fresh = 0;
    CHECK_EQ_INT(basira_net_load(parent, &pn, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_train_net_from_parent(parent, 3, 5, 0, 0, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_net_num_classes(net), 3);
    CHECK_EQ_INT((int)fresh, 2); /* fc.weight, fc.bias */
    CHECK_EQ_INT((int)(copied + fresh), (int)nn_net_param_count(net));
    CHECK(same(pn, net, "conv1.weight"));
    CHECK(same(pn, net, "bn1.running_var"));
    CHECK(same(pn, net, "layer1.0.conv2.weight"));
    CHECK(!same(pn, net, "fc.weight"));
    basira_net_free(net);
    /* same classes: everything copied, the outputs equal the parent's */
    CHECK_EQ_INT(basira_train_net_from_parent(parent, 7, 5, 0, 0, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    CHECK_EQ_INT((int)fresh, 0);
    float x[3 * 32 * 32], la[7], lb[7];
    for (int i = 0; i < 3 * 32 * 32; i++)
        x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    CHECK_EQ_INT(basira_net_forward(pn, x, 1, 0, la, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_net_forward(net, x, 1, 0, lb, NULL), BASIRA_OK);
    for (int k = 0; k < 7; k++)
        CHECK_NEAR(la[k], lb[k], 1e-6);
    basira_net_free(net);
    basira_net_free(pn);
    /* An ensemble parent: its member 0, whatever the other members hold. */
    basira_net *other = NULL, *first = NULL;
    char ens[300];
    snprintf(ens, sizeof ens, "%s.ensemble", parent);
    CHECK_EQ_INT(basira_net_load(parent, &first, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_net_load(parent, &other, NULL), BASIRA_OK);
    if (other) {
        float *w = nn_net_params(other);
        for (size_t i = 0; i < nn_net_numel(other); i++)
            w[i] = 0.5f * w[i] + 0.01f;
        nn_net_params_changed(other);
    }
    const basira_net *pair[2] = {first, other};
    CHECK_EQ_INT(basira_net_save_ensemble(pair, 2, ens, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_train_net_from_parent(ens, 7, 5, 0, 0, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    CHECK_EQ_INT((int)fresh, 0);
    CHECK(net && same(first, net, "conv1.weight") && same(first, net, "fc.weight") &&
          !same(other, net, "conv1.weight"));
    basira_net_free(net);
    basira_net_free(other);
    basira_net_free(first);
    unlink(ens);
    /* a file that is not a model */
    basira_error err;
    CHECK(basira_train_net_from_parent("/nonexistent.safetensors", 3, 1, 0, 0, &net, &copied,
                                       &fresh, &err) != BASIRA_OK);
    CHECK(net == NULL);
}

/* Another input size than the parent's: the backbone copied, the net runs at the new size;
 * refused when a layer other than the head is sized by the input (a dense layer). */
static void test_input_size(void)
{
    basira_net *pn = NULL, *net = NULL;
    size_t copied = 0, fresh = 0;
    CHECK_EQ_INT(basira_net_load(parent, &pn, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_train_net_from_parent(parent, 3, 5, 48, 40, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    int c = 0, h = 0, w = 0;
    if (net)
        basira_net_input_shape(net, &c, &h, &w);
    CHECK(c == 3 && h == 40 && w == 48);
    CHECK_EQ_INT((int)fresh, 2);
    CHECK(same(pn, net, "conv1.weight") && same(pn, net, "layer1.0.conv2.weight"));
    static float x[3 * 40 * 48];
    float lo[3];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
    CHECK_EQ_INT(net ? basira_net_forward(net, x, 1, 0, lo, NULL) : BASIRA_E_INTERNAL, BASIRA_OK);
    basira_net_free(net);
    net = NULL;
    /* The parent's own size, stated: the same as not stating it. */
    CHECK_EQ_INT(basira_train_net_from_parent(parent, 3, 5, 32, 32, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    CHECK_EQ_INT((int)fresh, 2);
    basira_net_free(net);
    net = NULL;
    basira_net_free(pn);

    const char *dense =
        "{\"family\":\"test\",\"input\":[3,16,16],\"num_classes\":3,\"output\":\"fc\","
        "\"layers\":[{\"name\":\"c1\",\"type\":\"conv\",\"inputs\":[\"input\"],"
        "\"out_channels\":4,\"kernel\":3,\"stride\":2,\"padding\":1},"
        "{\"name\":\"hidden\",\"type\":\"fc\",\"out_features\":8},"
        "{\"name\":\"r\",\"type\":\"relu\"},"
        "{\"name\":\"fc\",\"type\":\"fc\",\"out_features\":3}]}";
    char path[300];
    snprintf(path, sizeof path, "%s.dense", parent);
    basira_net *d = NULL;
    CHECK_EQ_INT(basira_net_new(dense, 1, &d, NULL), BASIRA_OK);
    CHECK_EQ_INT(d ? basira_net_save(d, path, NULL) : BASIRA_E_INTERNAL, BASIRA_OK);
    basira_net_free(d);
    basira_error err;
    basira_error_clear(&err);
    CHECK_EQ_INT(basira_train_net_from_parent(path, 3, 5, 24, 24, &net, &copied, &fresh, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(net == NULL && strstr(err.message, "'hidden.weight'") && strstr(err.message, "16x16"));
    CHECK_EQ_INT(basira_train_net_from_parent(path, 3, 5, 0, 0, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    basira_net_free(net);
    unlink(path);
}

static void test_freeze(void)
{
    basira_net *pn = NULL, *net = NULL;
    size_t copied, fresh, n_frozen = 0;
    CHECK_EQ_INT(basira_net_load(parent, &pn, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_train_net_from_parent(parent, 3, 5, 0, 0, &net, &copied, &fresh, NULL),
                 BASIRA_OK);
    const char *stages[] = {"conv1", "bn1", "layer1"};
    basira_freeze *f = NULL;
    CHECK_EQ_INT(basira_freeze_new(net, stages, 3, &f, &n_frozen, NULL), BASIRA_OK);
    CHECK_EQ_INT((int)n_frozen, 1 + 4 + 10); /* conv1; bn1 (4 tensors); layer1.0: 2 convs, 2 bns */
    basira_optim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = BASIRA_OPTIM_ADAMW;
    cfg.weight_decay = 0.05;
    basira_optim *opt = NULL;
    CHECK_EQ_INT(basira_optim_new(net, &cfg, &opt, NULL), BASIRA_OK);
    enum { B = 4 };
    static float x[B * 3 * 32 * 32];
    float logits[B * 3], dl[B * 3];
    int y[B] = {0, 1, 2, 1};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 7919) % 211) / 100.0f - 1.0f;
    for (int step = 0; step < 3; step++) {
        basira_net_zero_grad(net);
        CHECK_EQ_INT(basira_net_forward(net, x, B, 1, logits, NULL), BASIRA_OK);
        basira_softmax_xent(logits, y, B, 3, NULL, 0.0f, dl, NULL);
        CHECK_EQ_INT(basira_net_backward(net, dl, NULL), BASIRA_OK);
        CHECK_EQ_INT(basira_optim_step(opt, 0.01, NULL), BASIRA_OK);
        basira_freeze_restore(f, net);
    }
    CHECK(same(pn, net, "conv1.weight"));
    CHECK(same(pn, net, "bn1.running_mean")); /* a training forward updated it; restored */
    CHECK(same(pn, net, "layer1.0.bn2.weight"));
    CHECK(!same(pn, net, "layer2.0.conv1.weight")); /* not frozen: it learned */
    CHECK(!same(pn, net, "layer2.0.bn1.running_mean"));
    basira_freeze_free(f);
    /* "layer" is not a stage (a prefix stops at a dot); unknown stages are refused */
    const char *bad[] = {"layer"};
    basira_error err;
    f = NULL;
    CHECK_EQ_INT(basira_freeze_new(net, bad, 1, &f, &n_frozen, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(f == NULL && strstr(err.message, "layer") != NULL);
    basira_freeze_restore(NULL, net); /* no-op */
    basira_optim_free(opt);
    basira_net_free(net);
    basira_net_free(pn);
}

int main(void)
{
    snprintf(parent, sizeof parent, "transfer-parent-%d.safetensors", (int)getpid());
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_error err;
    if (tiny_model_save(&o, parent, &err)) {
        fprintf(stderr, "cannot make the parent model: %s\n", err.message);
        return 1;
    }
    RUN(test_copy_and_head);
    RUN(test_input_size);
    RUN(test_freeze);
    unlink(parent);
    return test_summary();
}
