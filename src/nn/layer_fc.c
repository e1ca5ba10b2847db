/*
 * layer_fc.c - fully connected layer (oneDNN inner product). On a C x H x W input
 * it flattens NCHW as PyTorch does: the weight is (out, C, H, W) to oneDNN.
 */
#include "nn/exec.h"

#include "core/memory.h"

static basira_code build_fc(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    const dnnl_memory_desc_t *md = &p->t[in].md;
    int train = p->mode == MODE_TRAIN;
    dnnl_dim_t wd[4], bd[1] = {l->out_ch}, dd[2] = {p->n, l->out_ch};
    int wnd = md->ndims;
    wd[0] = l->out_ch;
    for (int k = 1; k < wnd; k++)
        wd[k] = md->dims[k];
    dnnl_memory_desc_t wmd, wplain, bmd, dmd;
    nn_md_any(&wmd, wnd, wd, p->adt);
    nn_md_plain(&wplain, wnd, wd);
    nn_md_plain(&bmd, 1, bd);
    nn_md_any(&dmd, 2, dd, p->adt);
    dnnl_inner_product_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_inner_product_forward_desc_init(&d,
                                            train ? dnnl_forward_training : dnnl_forward_inference,
                                            md, &wmd, l->bias ? &bmd : NULL, &dmd));
    DN(nn_mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
    const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md, 0);
    float *wsrc = param_ptr(net, l, 0), *bsrc = l->bias ? param_ptr(net, l, 1) : NULL;
    if (p->mode == MODE_PREPARED) {
        /* Its own copy: the parameters of a prepared plan may be released (net.c). */
        size_t nw = net->params[l->param0].numel, nb = bsrc ? (size_t)l->out_ch : 0;
        if (!(op->own = malloc((nw + nb) * sizeof(float))))
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        memcpy(op->own, wsrc, nw * sizeof(float));
        if (bsrc)
            memcpy(op->own + nw, bsrc, nb * sizeof(float));
        wsrc = op->own;
        bsrc = bsrc ? op->own + nw : NULL;
    }
    DN(nn_mk_mem_at(p, eng, &wplain, wsrc, &op->w_plain));
    if (dnnl_memory_desc_equal(wq, &wplain)) {
        op->w = op->w_plain;
    } else {
        DN(nn_mk_reorder(p, eng, &wplain, wq, 0, &op->w_re));
        DN(nn_mk_mem(p, eng, wq, 1, &op->w));
    }
    if (l->bias)
        DN(nn_mk_mem_at(p, eng, &bmd, bsrc, &op->b));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *omd = &p->t[i + 1].md;
    if (l->inputs[0] != 0) {
        dnnl_inner_product_desc_t bdd;
        dnnl_primitive_desc_t bpd;
        nn_md_any(&wmd, wnd, wd, p->adt);
        DN(dnnl_inner_product_backward_data_desc_init(&bdd, md, &wmd, omd));
        DN(nn_mk_pd(p, eng, &bdd, NULL, pd, &bpd));
        DN(nn_mk_prim(p, bpd, &op->bwd_d));
        DN(nn_mk_cvt(p, eng, &wplain, qmd(bpd, dnnl_query_weights_md, 0), &op->bd_w));
        basira_code rc =
            nn_mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
        if (rc)
            return rc;
    }
    dnnl_inner_product_desc_t bwd;
    dnnl_primitive_desc_t wpd;
    nn_md_any(&wmd, wnd, wd, dnnl_f32); /* weight gradients in f32 */
    DN(dnnl_inner_product_backward_weights_desc_init(&bwd, md, &wmd, l->bias ? &bmd : NULL, omd));
    DN(nn_mk_pd(p, eng, &bwd, NULL, pd, &wpd));
    DN(nn_mk_prim(p, wpd, &op->bwd_w));
    const dnnl_memory_desc_t *dwq = qmd(wpd, dnnl_query_diff_weights_md, 0);
    DN(nn_mk_mem(p, eng, dwq, 1, &op->dw));
    DN(nn_mk_mem_at(p, eng, &wplain, grad_ptr(net, l, 0), &op->dw_plain));
    DN(nn_mk_reorder(p, eng, dwq, &wplain, 1, &op->dw_acc));
    if (l->bias)
        DN(nn_mk_mem(p, eng, &bmd, 1, &op->db));
    return BASIRA_OK;
}

static basira_code forward_fc(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = p->t[p->t[l->inputs[0]].owner].mem;
    if (op->w_re) {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
        EXEC(op->w_re, a);
    }
    dnnl_exec_arg_t a[4] = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, op->w}, {DNNL_ARG_DST, p->t[op->out].mem}};
    return nn_exec(op->fwd, stream, a, 3, DNNL_ARG_BIAS, op->b, lname, err);
}

static basira_code backward_fc(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    int in = l->inputs[0];
    dnnl_memory_t ddst = p->t[op->out].dmem;
    basira_code rc;
    if (op->bwd_d) {
        dnnl_memory_t w = NULL;
        if ((rc = nn_run_cvt(stream, &op->bd_w, op->w_plain, &w, lname, err)))
            return rc;
        dnnl_exec_arg_t a[] = {
            {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, op->dsrc.mem}};
        EXEC(op->bwd_d, a);
        if ((rc = nn_deliver_diff(net, p, in, &op->dsrc, lname, err)))
            return rc;
    }
    return nn_backward_weights(net, l, op, stream, p->t[in].mem, ddst, lname, err);
}

const nn_kind nn_kind_fc = {build_fc, NULL, forward_fc, backward_fc};
