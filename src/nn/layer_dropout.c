/*
 * layer_dropout.c - inverted dropout: in training each unit is kept with
 * probability 1 - p and scaled by 1/(1 - p) (masks from the net's generator, saved
 * in checkpoints); outside training the layer is an alias of its input.
 */
#include "nn/exec.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/memory.h"

static basira_code build_dropout(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    nn_op *op = &p->op[i];
    p->t[i + 1].md = p->t[p->t[l->inputs[0]].owner].md;
    op->out = i + 1;
    if (p->mode != MODE_TRAIN) {
        /* Identity outside training: the output is the input. */
        op->skip = 1;
        p->t[i + 1].owner = p->t[l->inputs[0]].owner;
        return BASIRA_OK;
    }
    op->mask_n = md_elems(&p->t[i + 1].md);
    op->mask = malloc(op->mask_n * sizeof(float) + 1);
    if (!op->mask)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (l->inputs[0] != 0)
        p->t[l->inputs[0]].dzero = 1;
    return BASIRA_OK;
}

static basira_code forward_dropout(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    nn_op *op = &p->op[i];
    (void)err;
    /* Inverted dropout: kept units are scaled by 1/(1-p) so eval needs no change. */
    const void *xv = mem_ptr(p->t[p->t[l->inputs[0]].owner].mem);
    void *yv = mem_ptr(p->t[op->out].mem);
    float keep = 1.0f - l->p, scale = 1.0f / keep;
    uint64_t thr = (uint64_t)((double)l->p * 4294967296.0);
    for (size_t k = 0; k < op->mask_n; k += 2) {
        uint64_t r = nn_rng_next(&net->rng);
        op->mask[k] = (r & 0xffffffffu) >= thr ? scale : 0.0f;
        if (k + 1 < op->mask_n)
            op->mask[k + 1] = (r >> 32) >= thr ? scale : 0.0f;
    }
    if (p->t[op->out].md.data_type == dnnl_bf16) {
        const uint16_t *xh = xv;
        uint16_t *yh = yv;
        for (size_t k = 0; k < op->mask_n; k++)
            yh[k] = f32_to_bf16(bf16_to_f32(xh[k]) * op->mask[k]);
        return BASIRA_OK;
    }
    const float *x = xv;
    float *y = yv;
    for (size_t k = 0; k < op->mask_n; k++)
        y[k] = x[k] * op->mask[k];
    return BASIRA_OK;
}

static basira_code backward_dropout(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    nn_op *op = &p->op[i];
    int in = l->inputs[0];
    (void)err;
    if (in == 0)
        return BASIRA_OK;
    void *dxv = mem_ptr(p->t[in].dmem);
    const void *dyv = mem_ptr(p->t[op->out].dmem);
    if (p->t[op->out].md.data_type == dnnl_bf16) {
        uint16_t *dxh = dxv;
        const uint16_t *dyh = dyv;
        for (size_t k = 0; k < op->mask_n; k++)
            dxh[k] = f32_to_bf16(bf16_to_f32(dxh[k]) + bf16_to_f32(dyh[k]) * op->mask[k]);
        return BASIRA_OK;
    }
    float *dx = dxv;
    const float *dy = dyv;
    for (size_t k = 0; k < op->mask_n; k++)
        dx[k] += dy[k] * op->mask[k];
    return BASIRA_OK;
}

const nn_kind nn_kind_dropout = {build_dropout, NULL, forward_dropout, backward_dropout};
