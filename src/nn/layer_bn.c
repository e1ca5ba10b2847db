/*
 * layer_bn.c - batch normalisation (PyTorch semantics: batch statistics and running
 * statistics updated with the unbiased variance in training, running statistics
 * otherwise). In training a ReLU that is its only reader runs inside it.
 */
#include "nn/exec.h"

#include "core/memory.h"

static basira_code build_bn(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    const dnnl_memory_desc_t *md = &p->t[in].md;
    int train = p->mode == MODE_TRAIN;
    /*
     * oneDNN 2.6 has no fast bf16 batch norm for channels-last tensors whose channel
     * count is not a multiple of 16 (it falls back to a reference loop some 20 times
     * slower): such an input is reordered to the channel-blocked layout first.
     */
    dnnl_memory_desc_t blk;
    op->src.prim = NULL;
    if (md->data_type == dnnl_bf16 && md->format_kind == dnnl_blocked &&
        md->format_desc.blocking.inner_nblks == 0 && l->c % 16 && md->ndims == 4) {
        dnnl_dims_t d = {md->dims[0], md->dims[1], md->dims[2], md->dims[3]};
        DN(dnnl_memory_desc_init_by_tag(&blk, 4, d, dnnl_bf16, dnnl_aBcd16b));
        DN(nn_mk_cvt(p, eng, md, &blk, &op->src));
        md = &blk;
    }
    unsigned flags =
        dnnl_use_scale | dnnl_use_shift | (train ? 0u : (unsigned)dnnl_use_global_stats);
    /*
     * Training: a ReLU that is the only reader of the batch norm runs inside it
     * (fuse_norm_relu, with a bit mask workspace for backward): one pass over the
     * activations instead of two, forward and backward, and one tensor less to keep.
     */
    op->out = i + 1;
    if (train) {
        int j = nn_sole_consumer(net, p, i + 1);
        if (j >= 0 && net->layers[j].type == NN_RELU) {
            flags |= dnnl_fuse_norm_relu;
            p->op[j].skip = 1;
            op->out = j + 1;
        }
    }
    dnnl_batch_normalization_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_batch_normalization_forward_desc_init(
        &d, train ? dnnl_forward_training : dnnl_forward_inference, md, NN_BN_EPS, flags));
    DN(nn_mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
    dnnl_dim_t cd[1] = {l->c};
    dnnl_memory_desc_t cmd;
    nn_md_plain(&cmd, 1, cd);
    float *v[4] = {param_ptr(net, l, 0), param_ptr(net, l, 1), param_ptr(net, l, 2),
                   param_ptr(net, l, 3)};
    if (p->mode == MODE_PREPARED) {
        /* Its own copy: the parameters of a prepared plan may be released (net.c). One
         * not folded into a convolution (after an add or a concatenation) is rare. */
        if (!(op->own = malloc(4 * (size_t)l->c * sizeof(float))))
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        for (int k = 0; k < 4; k++) {
            memcpy(op->own + (size_t)k * l->c, v[k], (size_t)l->c * sizeof(float));
            v[k] = op->own + (size_t)k * l->c;
        }
    }
    DN(nn_mk_mem_at(p, eng, &cmd, v[0], &op->scale));
    DN(nn_mk_mem_at(p, eng, &cmd, v[1], &op->shift));
    if (train) {
        DN(nn_mk_mem(p, eng, &cmd, 1, &op->mean));
        DN(nn_mk_mem(p, eng, &cmd, 1, &op->var));
    } else {
        DN(nn_mk_mem_at(p, eng, &cmd, v[2], &op->mean));
        DN(nn_mk_mem_at(p, eng, &cmd, v[3], &op->var));
    }
    p->t[op->out].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *wsmd = qmd(pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd) > 0)
        DN(nn_mk_mem(p, eng, wsmd, 1, &op->ws));
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &p->t[op->out].md, md,
                                                   NN_BN_EPS, flags));
    DN(nn_mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(nn_mk_prim(p, bpd, &op->bwd_d));
    DN(nn_mk_mem(p, eng, &cmd, 1, &op->dscale));
    DN(nn_mk_mem(p, eng, &cmd, 1, &op->dshift));
    if (l->inputs[0] != 0)
        return nn_mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname,
                             err);
    /* The image needs no gradient, but the primitive still writes one. */
    DN(nn_mk_mem(p, eng, qmd(bpd, dnnl_query_diff_src_md, 0), 1, &op->dsrc.mem));
    return BASIRA_OK;
}

static basira_code forward_bn(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = NULL;
    dnnl_memory_t dst = p->t[op->out].mem;
    basira_code rc =
        nn_run_cvt(stream, &op->src, p->t[p->t[l->inputs[0]].owner].mem, &src, lname, err);
    if (rc)
        return rc;
    dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, src},         {DNNL_ARG_DST, dst},
                            {DNNL_ARG_SCALE, op->scale}, {DNNL_ARG_SHIFT, op->shift},
                            {DNNL_ARG_MEAN, op->mean},   {DNNL_ARG_VARIANCE, op->var}};
    basira_code xrc = nn_exec(op->fwd, stream, a, 6, DNNL_ARG_WORKSPACE, op->ws, lname, err);
    if (xrc)
        return xrc;
    if (p->mode == MODE_TRAIN) {
        /* PyTorch: running = (1 - m) running + m batch, with the unbiased variance. */
        const float *bm = mem_ptr(op->mean), *bv = mem_ptr(op->var);
        float *rm = param_ptr(net, l, 2), *rv = param_ptr(net, l, 3);
        double cnt = (double)p->n * l->h * l->w;
        float unb = cnt > 1 ? (float)(cnt / (cnt - 1)) : 1.0f;
        for (int c = 0; c < l->c; c++) {
            rm[c] = (1 - NN_BN_MOMENTUM) * rm[c] + NN_BN_MOMENTUM * bm[c];
            rv[c] = (1 - NN_BN_MOMENTUM) * rv[c] + NN_BN_MOMENTUM * bv[c] * unb;
        }
    }
    return BASIRA_OK;
}

static basira_code backward_bn(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    int in = l->inputs[0];
    dnnl_memory_t src = op->src.prim ? op->src.mem : p->t[in].mem, dsrc = op->dsrc.mem;
    dnnl_memory_t ddst = p->t[op->out].dmem;
    dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_MEAN, op->mean},
                             {DNNL_ARG_VARIANCE, op->var},
                             {DNNL_ARG_DIFF_DST, ddst},
                             {DNNL_ARG_SCALE, op->scale},
                             {DNNL_ARG_SHIFT, op->shift},
                             {DNNL_ARG_DIFF_SRC, dsrc},
                             {DNNL_ARG_DIFF_SCALE, op->dscale},
                             {DNNL_ARG_DIFF_SHIFT, op->dshift}};
    basira_code xrc = nn_exec(op->bwd_d, stream, a, 9, DNNL_ARG_WORKSPACE, op->ws, lname, err);
    if (xrc)
        return xrc;
    nn_add_into(grad_ptr(net, l, 0), mem_ptr(op->dscale), (size_t)l->c);
    nn_add_into(grad_ptr(net, l, 1), mem_ptr(op->dshift), (size_t)l->c);
    return nn_deliver_diff(net, p, in, &op->dsrc, lname, err);
}

const nn_kind nn_kind_bn = {build_bn, NULL, forward_bn, backward_bn};
