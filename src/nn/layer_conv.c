/*
 * layer_conv.c - convolution (grouped, dilated): oneDNN direct convolution with
 * weights kept in PyTorch's OIHW layout and reordered to the layout oneDNN picks.
 * Prepared inference folds the following batch norm into the weights and bias and
 * runs the residual add (sum post-op) and the activation (eltwise post-op) inside it.
 */
#include "nn/exec.h"

#include <math.h>
#include <stdlib.h>

/* Fold batch norm into a convolution's weights: W' = W*g/sqrt(v+eps), b' =
 * (b-m)*g/sqrt(v+eps)+beta. */
static void fold_conv(basira_net *net, const nn_layer *cl, const nn_layer *bl, float *w, float *b)
{
    const nn_param *pw = &net->params[cl->param0];
    size_t per = pw->numel / (size_t)cl->out_ch;
    const float *w0 = net->values + pw->offset;
    const float *b0 = cl->bias ? param_ptr(net, cl, 1) : NULL;
    for (int o = 0; o < cl->out_ch; o++) {
        float s = 1.0f, shift = 0.0f, bias = b0 ? b0[o] : 0.0f;
        if (bl) {
            const float *g = param_ptr(net, bl, 0), *be = param_ptr(net, bl, 1);
            const float *m = param_ptr(net, bl, 2), *v = param_ptr(net, bl, 3);
            s = g[o] / sqrtf(v[o] + NN_BN_EPS);
            shift = be[o] - m[o] * s;
        }
        for (size_t k = 0; k < per; k++)
            w[(size_t)o * per + k] = w0[(size_t)o * per + k] * s;
        b[o] = bias * s + shift;
    }
}

/*
 * Layout of a convolution's activations: the one oneDNN prefers (format_tag_any),
 * except for grouped (depthwise) convolutions in bf16, kept channels-last. oneDNN 2.6
 * picks channel-blocked for those but channels-last for the AMX pointwise
 * convolutions around them, and the two reorders per depthwise layer, forward and
 * backward, cost MobileNetV2 more than a quarter of its bf16 step.
 */
static void act_md(dnnl_memory_desc_t *md, const dnnl_dim_t *dims, dnnl_data_type_t dt, int groups)
{
    if (dt != dnnl_bf16 || groups == 1) {
        nn_md_any(md, 4, dims, dt);
        return;
    }
    dnnl_dims_t d = {dims[0], dims[1], dims[2], dims[3]};
    dnnl_memory_desc_init_by_tag(md, 4, d, dt, dnnl_acdb);
}

static void conv_geometry(const nn_layer *l, int ih, int iw, dnnl_dims_t strides, dnnl_dims_t dil,
                          dnnl_dims_t pl, dnnl_dims_t pr)
{
    strides[0] = l->sh;
    strides[1] = l->sw;
    dil[0] = l->dh - 1; /* oneDNN counts dilation from 0 */
    dil[1] = l->dw - 1;
    pl[0] = l->ph;
    pl[1] = l->pw;
    /* Right/bottom padding that makes oneDNN's output size PyTorch's floor size. */
    pr[0] = (dnnl_dim_t)(l->h - 1) * l->sh + (dnnl_dim_t)l->dh * (l->kh - 1) + 1 - ih - l->ph;
    pr[1] = (dnnl_dim_t)(l->w - 1) * l->sw + (dnnl_dim_t)l->dw * (l->kw - 1) + 1 - iw - l->pw;
}

static void weight_dims(const nn_layer *l, int ic, int *nd, dnnl_dim_t *d)
{
    if (l->groups > 1) {
        *nd = 5;
        d[0] = l->groups;
        d[1] = l->out_ch / l->groups;
        d[2] = ic / l->groups;
        d[3] = l->kh;
        d[4] = l->kw;
    } else {
        *nd = 4;
        d[0] = l->out_ch;
        d[1] = ic;
        d[2] = l->kh;
        d[3] = l->kw;
    }
}

/* What build_conv() works out for build_conv_fwd(): shapes, geometry, layouts, fusion. */
typedef struct conv_geom {
    dnnl_dim_t sd[4], dd[4], wd[5]; /* source, destination, weights */
    int wnd;
    dnnl_dims_t st, dil, pl, pr;
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    int bn, act;      /* absorbed batch norm and activation layers, -1 when none */
    int q;            /* int8 */
    float sx;         /* int8: input scale */
    const int8_t *qw; /* int8: quantised weights, plain layout */
} conv_geom;

static basira_code build_conv_fwd(basira_net *net, nn_plan *p, int i, const conv_geom *g,
                                  basira_error *err);

/* The geometry and fusion of a convolution; build_conv_fwd() makes its primitives. */
static basira_code build_conv(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    nn_op *op = &p->op[i];
    int in = p->t[l->inputs[0]].owner;
    const nn_tensor *ti = &p->t[in];
    int ic = ti->md.dims[1], ih = (int)ti->md.dims[2], iw = (int)ti->md.dims[3];
    dnnl_dim_t sd[4] = {p->n, ic, ih, iw}, dd[4] = {p->n, l->out_ch, l->h, l->w}, wd[5];
    dnnl_dim_t bd[1] = {l->out_ch};
    dnnl_dims_t st = {0}, dil = {0}, pl = {0}, pr = {0};
    int wnd;
    weight_dims(l, ic, &wnd, wd);
    conv_geometry(l, ih, iw, st, dil, pl, pr);
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    act_md(&smd, sd, p->adt, l->groups);
    nn_md_any(&wmd, wnd, wd, p->adt);
    act_md(&dmd, dd, p->adt, l->groups);
    nn_md_plain(&bmd, 1, bd);
    int prepared = p->mode == MODE_PREPARED;

    /* Prepared: absorb the batch norm, residual add and activation that follow. */
    int bn = -1, add = -1, act = -1, head = i;
    op->other = -1;
    if (prepared) {
        int j = nn_sole_consumer(net, p, head + 1);
        if (j >= 0 && net->layers[j].type == NN_BN) {
            bn = head = j;
            j = nn_sole_consumer(net, p, head + 1);
        }
        if (j >= 0 && net->layers[j].type == NN_ADD && net->layers[j].ninputs == 2) {
            const nn_layer *a = &net->layers[j];
            int other = a->inputs[0] == head + 1 ? a->inputs[1] : a->inputs[0];
            if (other <= i && other != head + 1) {
                add = head = j;
                op->other = p->t[other].owner;
                j = nn_sole_consumer(net, p, head + 1);
            }
        }
        if (j >= 0 && nn_is_act(net->layers[j].type)) {
            act = head = j;
        }
        if (bn >= 0)
            p->op[bn].skip = 1;
        if (add >= 0)
            p->op[add].skip = 1;
        if (act >= 0)
            p->op[act].skip = 1;
    }
    op->out = head + 1;

    /* int8: quantised input and weights (quant.c); the folded weights are made first,
     * since their scales go into the primitive's output scales. Depthwise (grouped)
     * convolutions stay float32: they are bound by memory, and quantising their input
     * costs MobileNetV2 more than oneDNN's int8 depthwise kernel saves (measured). */
    int q = prepared && p->int8 && l->groups == 1;
    int8_t *qw = NULL;
    float sx = 1.0f;
    if (q) {
        int usrc = 0;
        nn_quant_src(net, in, &sx, &usrc);
        act_md(&smd, sd, usrc ? dnnl_u8 : dnnl_s8, l->groups);
        nn_md_any(&wmd, wnd, wd, dnnl_s8);
        const nn_param *pw = &net->params[l->param0];
        float *fw = nn_plan_scratch(p, pw->numel);
        op->fold_b = malloc((size_t)l->out_ch * sizeof(float));
        op->oscale = malloc((size_t)l->out_ch * sizeof(float));
        if (!fw || !op->fold_b || !op->oscale)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        fold_conv(net, l, bn >= 0 ? &net->layers[bn] : NULL, fw, op->fold_b);
        qw = nn_quant_weights(fw, op->fold_b, l->out_ch, pw->numel / (size_t)l->out_ch, sx,
                              op->oscale, op->fold_b);
        if (!qw)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    conv_geom g = {.wnd = wnd,
                   .smd = smd,
                   .wmd = wmd,
                   .bmd = bmd,
                   .dmd = dmd,
                   .bn = bn,
                   .act = act,
                   .q = q,
                   .sx = sx,
                   .qw = qw};
    memcpy(g.sd, sd, sizeof sd);
    memcpy(g.dd, dd, sizeof dd);
    memcpy(g.wd, wd, sizeof wd);
    memcpy(g.st, st, sizeof st);
    memcpy(g.dil, dil, sizeof dil);
    memcpy(g.pl, pl, sizeof pl);
    memcpy(g.pr, pr, sizeof pr);
    basira_code qrc = build_conv_fwd(net, p, i, &g, err);
    free(qw);
    return qrc;
}

static basira_code build_conv_fwd(basira_net *net, nn_plan *p, int i, const conv_geom *g,
                                  basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    nn_tensor *ti = &p->t[in];
    const dnnl_dim_t *sd = g->sd, *dd = g->dd, *wd = g->wd, *st = g->st, *dil = g->dil, *pl = g->pl,
                     *pr = g->pr;
    int wnd = g->wnd, bn = g->bn, act = g->act, q = g->q;
    dnnl_memory_desc_t smd = g->smd, wmd = g->wmd, bmd = g->bmd, dmd = g->dmd, wplain, bplain;
    dnnl_dim_t bd[1] = {l->out_ch};
    nn_md_plain(&wplain, wnd, wd);
    nn_md_plain(&bplain, 1, bd);
    int prepared = p->mode == MODE_PREPARED;
    int has_bias = l->bias || prepared;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    /*
     * The residual add is a sum post-op: the skip tensor is first copied into the
     * output buffer and the convolution accumulates onto it. (A binary post-op would
     * read it in place, but oneDNN 2.6 then falls back to a slow gemm convolution in
     * plain layout; the copy costs far less.)
     */
    dnnl_primitive_desc_t pd = NULL;
    dnnl_convolution_desc_t cd;
    dnnl_status_t s = dnnl_dilated_convolution_forward_desc_init(
        &cd, p->mode == MODE_TRAIN ? dnnl_forward_training : dnnl_forward_inference,
        dnnl_convolution_direct, &smd, &wmd, has_bias ? &bmd : NULL, &dmd, st, dil, pl, pr);
    if (!s && (op->other >= 0 || act >= 0 || q)) {
        s = dnnl_primitive_attr_create(&attr);
        if (!s && q)
            s = dnnl_primitive_attr_set_output_scales(attr, l->out_ch, 1 << 1, op->oscale);
        if (!s)
            s = dnnl_post_ops_create(&po);
        if (!s && op->other >= 0)
            s = dnnl_post_ops_append_sum(po, 1.0f);
        if (!s && act >= 0) {
            dnnl_alg_kind_t alg;
            float a, b;
            nn_act_alg(net->layers[act].type, &alg, &a, &b);
            s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, a, b);
        }
        if (!s)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (!s)
        s = nn_mk_pd(p, eng, &cd, attr, NULL, &pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (po)
        dnnl_post_ops_destroy(po);
    if (s)
        return nn_dn_fail(err, s, lname);
    DN(nn_mk_prim(p, pd, &op->fwd));
    if (op->other >= 0) {
        /* always a reorder (a copy when the layouts agree) into the output buffer */
        op->src1.mem = NULL;
        DN(nn_mk_reorder(p, eng, &p->t[op->other].md, qmd(pd, dnnl_query_dst_md, 0), 0,
                         &op->src1.prim));
    }
    if (q)
        DN(nn_mk_qreorder(p, eng, &ti->md, qmd(pd, dnnl_query_src_md, 0), g->sx, &op->src));
    else
        DN(nn_mk_cvt(p, eng, &ti->md, qmd(pd, dnnl_query_src_md, 0), &op->src));
    const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md, 0);
    void *wsrc = param_ptr(net, l, 0);
    float *bsrc = l->bias ? param_ptr(net, l, 1) : NULL;
    if (q) {
        /* s8 weights in plain OIHW, reordered (with oneDNN's s8 compensation) below */
        dnnl_dims_t d8 = {0};
        memcpy(d8, wd, (size_t)wnd * sizeof *d8);
        dnnl_memory_desc_init_by_tag(&wplain, wnd, d8, dnnl_s8, wnd == 5 ? dnnl_abcde : dnnl_abcd);
        wsrc = (void *)g->qw;
        bsrc = op->fold_b;
    } else if (prepared) {
        const nn_param *pw = &net->params[l->param0];
        int keep = dnnl_memory_desc_equal(wq, &wplain); /* no reorder: the fold is kept */
        float *fw =
            keep ? (op->fold = malloc(pw->numel * sizeof(float))) : nn_plan_scratch(p, pw->numel);
        op->fold_b = malloc((size_t)l->out_ch * sizeof(float));
        if (!fw || !op->fold_b)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        fold_conv(net, l, bn >= 0 ? &net->layers[bn] : NULL, fw, op->fold_b);
        wsrc = fw;
        bsrc = op->fold_b;
    }
    DN(nn_mk_mem_at(p, eng, &wplain, wsrc, &op->w_plain));
    if (!q && dnnl_memory_desc_equal(wq, &wplain)) { /* int8: qw is freed after the build */
        op->w = op->w_plain;
    } else {
        DN(nn_mk_reorder(p, eng, &wplain, wq, 0, &op->w_re));
        DN(nn_mk_mem(p, eng, wq, 1, &op->w));
        if (prepared) {
            /* Reorder the folded weights once, now, and keep only that copy: holding
             * the plain one until every layer is built would double the peak memory.
             * (w_plain points into the scratch buffer, which the next layer reuses:
             * a prepared forward never reads it.) */
            dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
            DN(dnnl_primitive_execute(op->w_re, (dnnl_stream_t)net->stream, 2, a));
            op->w_re = NULL;
        }
    }
    if (has_bias)
        DN(nn_mk_mem_at(p, eng, &bplain, bsrc, &op->b));
    nn_tensor *to = &p->t[op->out];
    to->md = *qmd(pd, dnnl_query_dst_md, 0);

    if (p->mode != MODE_TRAIN)
        return BASIRA_OK;
    /* Backward: data (unless the input is the image) and weights. */
    const dnnl_memory_desc_t *src_used = qmd(pd, dnnl_query_src_md, 0);
    if (l->inputs[0] != 0) {
        dnnl_convolution_desc_t bdd;
        dnnl_memory_desc_t dsmd, dwmd, ddmd;
        act_md(&dsmd, sd, p->adt, l->groups);
        nn_md_any(&dwmd, wnd, wd, p->adt);
        act_md(&ddmd, dd, p->adt, l->groups);
        dnnl_primitive_desc_t bpd;
        DN(dnnl_dilated_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &dsmd,
                                                            &dwmd, &ddmd, st, dil, pl, pr));
        DN(nn_mk_pd(p, eng, &bdd, NULL, pd, &bpd));
        DN(nn_mk_prim(p, bpd, &op->bwd_d));
        DN(nn_mk_cvt(p, eng, &wplain, qmd(bpd, dnnl_query_weights_md, 0), &op->bd_w));
        op->bd_pd = bpd; /* its diff_dst conversion is made by finish_conv_bwd() */
        basira_code rc =
            nn_mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
        if (rc)
            return rc;
    }
    dnnl_convolution_desc_t bwd;
    dnnl_memory_desc_t ssmd, dwmd, ddmd;
    act_md(&ssmd, sd, p->adt, l->groups);
    nn_md_any(&dwmd, wnd, wd, dnnl_f32); /* weight gradients in f32 */
    act_md(&ddmd, dd, p->adt, l->groups);
    dnnl_primitive_desc_t wpd;
    DN(dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &ssmd,
                                                           &dwmd, l->bias ? &bmd : NULL, &ddmd, st,
                                                           dil, pl, pr));
    DN(nn_mk_pd(p, eng, &bwd, NULL, pd, &wpd));
    DN(nn_mk_prim(p, wpd, &op->bwd_w));
    DN(nn_mk_cvt(p, eng, src_used, qmd(wpd, dnnl_query_src_md, 0), &op->bw_src));
    const dnnl_memory_desc_t *dwq = qmd(wpd, dnnl_query_diff_weights_md, 0);
    DN(nn_mk_mem(p, eng, dwq, 1, &op->dw));
    DN(nn_mk_mem_at(p, eng, &wplain, grad_ptr(net, l, 0), &op->dw_plain));
    DN(nn_mk_reorder(p, eng, dwq, &wplain, 1, &op->dw_acc));
    if (l->bias)
        DN(nn_mk_mem(p, eng, &bmd, 1, &op->db));
    op->bw_pd = wpd;
    return BASIRA_OK;
}

/* Resolve the diff_dst conversions of a conv once its output's gradient layout is known. */
static basira_code finish_conv_bwd(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    const dnnl_memory_desc_t *have = &p->t[i + 1].md;
    if (op->bwd_d) {
        DN(nn_mk_cvt(p, eng, have, qmd(op->bd_pd, dnnl_query_diff_dst_md, 0), &op->bd_ddst));
    }
    DN(nn_mk_cvt(p, eng, have, qmd(op->bw_pd, dnnl_query_diff_dst_md, 0), &op->bw_ddst));
    return BASIRA_OK;
}

static basira_code forward_conv(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = p->t[p->t[l->inputs[0]].owner].mem;
    dnnl_memory_t dst = p->t[op->out].mem;
    basira_code rc;
    dnnl_memory_t s = NULL;
    if ((rc = nn_run_cvt(stream, &op->src, src, &s, lname, err)))
        return rc;
    if (op->other >= 0) {
        dnnl_exec_arg_t c[] = {{DNNL_ARG_FROM, p->t[op->other].mem}, {DNNL_ARG_TO, dst}};
        EXEC(op->src1.prim, c);
    }
    if (op->w_re) {
        dnnl_exec_arg_t c[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
        EXEC(op->w_re, c);
    }
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, op->w}, {DNNL_ARG_DST, dst}};
    return nn_exec(op->fwd, stream, a, 3, DNNL_ARG_BIAS, op->b, lname, err);
}

static basira_code backward_conv(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    int in = l->inputs[0];
    dnnl_memory_t src = p->t[in].mem, dsrc = op->dsrc.mem;
    dnnl_memory_t ddst = p->t[op->out].dmem;
    basira_code rc;
    if (op->bwd_d) {
        dnnl_memory_t dd = NULL, w = NULL;
        if ((rc = nn_run_cvt(stream, &op->bd_ddst, ddst, &dd, lname, err)) ||
            (rc = nn_run_cvt(stream, &op->bd_w, op->w_plain, &w, lname, err)))
            return rc;
        dnnl_exec_arg_t a[] = {
            {DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dsrc}};
        EXEC(op->bwd_d, a);
        if ((rc = nn_deliver_diff(net, p, in, &op->dsrc, lname, err)))
            return rc;
    }
    dnnl_memory_t s0 = op->src.prim ? op->src.mem : src, s = NULL, dd = NULL;
    if ((rc = nn_run_cvt(stream, &op->bw_src, s0, &s, lname, err)) ||
        (rc = nn_run_cvt(stream, &op->bw_ddst, ddst, &dd, lname, err)))
        return rc;
    return nn_backward_weights(net, l, op, stream, s, dd, lname, err);
}

const nn_kind nn_kind_conv = {build_conv, finish_conv_bwd, forward_conv, backward_conv};
