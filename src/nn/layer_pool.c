/*
 * layer_pool.c - max pooling, average pooling (counting the padding, as PyTorch's
 * default) and global average pooling, with PyTorch's floor output size.
 */
#include "nn/exec.h"

#include "core/memory.h"

static basira_code build_pool(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    const dnnl_memory_desc_t *md = &p->t[in].md;
    int train = p->mode == MODE_TRAIN;
    int ih = (int)md->dims[2], iw = (int)md->dims[3];
    dnnl_dims_t k = {0}, st = {0}, pl = {0}, pr = {0}, dil = {0};
    if (l->type == NN_GAP) {
        k[0] = ih;
        k[1] = iw;
        st[0] = st[1] = 1;
        pl[0] = pl[1] = pr[0] = pr[1] = 0;
    } else {
        k[0] = l->kh;
        k[1] = l->kw;
        st[0] = l->sh;
        st[1] = l->sw;
        pl[0] = l->ph;
        pl[1] = l->pw;
        pr[0] = (dnnl_dim_t)(l->h - 1) * l->sh + l->kh - ih - l->ph;
        pr[1] = (dnnl_dim_t)(l->w - 1) * l->sw + l->kw - iw - l->pw;
    }
    /* PyTorch's avg_pool2d counts the zero padding (count_include_pad=True). */
    dnnl_alg_kind_t alg =
        l->type == NN_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_dim_t dd[4] = {p->n, l->c, l->h, l->w};
    dnnl_memory_desc_t dmd;
    nn_md_any(&dmd, 4, dd, p->adt);
    dnnl_pooling_v2_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_pooling_v2_forward_desc_init(&d, train ? dnnl_forward_training : dnnl_forward_inference,
                                         alg, md, &dmd, st, k, dil, pl, pr));
    DN(nn_mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *wsmd = qmd(pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd) > 0)
        DN(nn_mk_mem(p, eng, wsmd, 1, &op->ws));
    if (l->inputs[0] == 0)
        return BASIRA_OK;
    dnnl_pooling_v2_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_pooling_v2_backward_desc_init(&bd, alg, md, &p->t[i + 1].md, st, k, dil, pl, pr));
    DN(nn_mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(nn_mk_prim(p, bpd, &op->bwd_d));
    return nn_mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
}

static basira_code forward_pool(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = p->t[p->t[l->inputs[0]].owner].mem;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, p->t[op->out].mem}};
    return nn_exec(op->fwd, stream, a, 2, DNNL_ARG_WORKSPACE, op->ws, lname, err);
}

static basira_code backward_pool(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    if (!op->bwd_d)
        return BASIRA_OK;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, p->t[op->out].dmem},
                            {DNNL_ARG_DIFF_SRC, op->dsrc.mem}};
    basira_code xrc = nn_exec(op->bwd_d, stream, a, 2, DNNL_ARG_WORKSPACE, op->ws, lname, err);
    if (xrc)
        return xrc;
    return nn_deliver_diff(net, p, l->inputs[0], &op->dsrc, lname, err);
}

const nn_kind nn_kind_pool = {build_pool, NULL, forward_pool, backward_pool};
