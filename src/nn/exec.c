/*
 * exec.c - running a net through oneDNN: forward, backward, inference preparation.
 *
 * A plan holds, for one batch size and one mode (training, evaluation, prepared
 * inference), every oneDNN primitive, memory object and buffer the net needs.
 * It is built at the first forward with that batch size and reused until the size
 * or mode changes: creating primitives costs far more than running them at batch 1.
 *
 * Layouts. Inside the net each tensor keeps the layout oneDNN chose for the layer
 * that produced it (format_tag_any: usually channel-blocked nChw8c/nChw16c), and the
 * layers that work on any layout (batch norm, eltwise, pooling, binary add) take it
 * as it is. Reorders happen only where a convolution or fc wants another layout
 * (in practice: the input image and the parameters, which are kept in PyTorch's
 * plain layouts so a state_dict maps one to one).
 *
 * Gradients. Each tensor's gradient has the tensor's own layout. When a tensor has
 * one consumer whose backward can write its diff_src straight into it, it does
 * ("direct"); otherwise the diff_src goes to a scratch buffer and a reorder with a
 * sum post-op accumulates it (residual connections, layout changes).
 *
 * Prepared inference. Batch norm is folded into the preceding convolution's weights
 * and bias; the residual add and the activation that follow become post-ops
 * (binary add, eltwise) of the same convolution; dropout disappears; activation
 * buffers are shared by tensors whose lifetimes do not overlap.
 */
#include "nn/engine.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "core/i18n.h"
#include "core/memory.h"

typedef struct nn_cvt {
    dnnl_primitive_t prim; /* NULL: no reorder needed, use the source memory */
    dnnl_memory_t mem;
} nn_cvt;

typedef struct nn_tensor {
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    dnnl_memory_t dmem; /* gradient (training) */
    int owner;          /* tensor that holds the data (dropout at inference aliases its input) */
    int nuse;           /* number of (layer, input slot) reading it */
    int dzero;          /* gradient accumulated: zero it before backward */
    int last_use;       /* last op reading it (buffer sharing) */
    size_t bytes;
} nn_tensor;

/* Delivery of a diff_src to the gradient of an input tensor. */
typedef struct nn_deliver {
    dnnl_memory_t mem;    /* where the primitive writes diff_src */
    dnnl_primitive_t acc; /* reorder-with-sum into the tensor's gradient, NULL when direct */
} nn_deliver;

typedef struct nn_op {
    int skip; /* absorbed into another op (prepared inference) or an alias */
    int out;  /* tensor it writes */
    dnnl_primitive_t fwd;
    nn_cvt src;
    nn_cvt src1; /* add: second input; fused add: post-op operand */
    int other;   /* fused add: tensor added as a post-op, -1 when none */
    dnnl_memory_t w_plain, w, b;
    dnnl_primitive_t w_re;
    dnnl_memory_t ws;                      /* max-pool workspace */
    dnnl_memory_t mean, var, scale, shift; /* batch norm */
    float *fold;                           /* prepared conv: folded weights then bias */
    /* backward */
    dnnl_primitive_t bwd_d, bwd_w;
    nn_cvt bd_ddst, bd_w, bw_ddst, bw_src;
    dnnl_memory_t dw, dw_plain, db, dscale, dshift;
    dnnl_primitive_t dw_acc;
    nn_deliver dsrc;
    dnnl_memory_t *sub;                 /* concat: views of the output gradient */
    dnnl_primitive_t *accs;             /* concat: accumulation per input; add: layout conversion */
    dnnl_primitive_t *baccs;            /* add backward: accumulation per input (NULL: C loop) */
    dnnl_primitive_desc_t bd_pd, bw_pd; /* conv backward, until diff_dst layouts are known */
    float *mask;                        /* dropout */
    size_t mask_n;
} nn_op;

struct nn_plan {
    int n, mode; /* mode: 0 eval, 1 train, 2 prepared */
    int nt;
    nn_tensor *t;
    nn_op *op;
    dnnl_memory_t x_user, logits_user, dlogits_user;
    dnnl_primitive_t logits_re, dlogits_re;
    void **pool;
    int npool;
    int *zero_first, *zero_next; /* training: gradients to zero before each op's backward */
    /* everything to release */
    dnnl_primitive_t *prims;
    int nprims, capprims;
    dnnl_memory_t *mems;
    int nmems, capmems;
    dnnl_primitive_desc_t *pds;
    int npds, cappds;
};

enum { MODE_EVAL = 0, MODE_TRAIN = 1, MODE_PREPARED = 2 };

/* ---- bookkeeping -------------------------------------------------------------------- */

static basira_code dn_fail(basira_error *err, dnnl_status_t s, const char *layer)
{
    if (s == dnnl_out_of_memory)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (s == dnnl_unimplemented)
        return basira_error_set(
            err, BASIRA_E_UNSUPPORTED,
            _("layer \"%s\": the neural-network library cannot run this configuration"), layer);
    return basira_error_set(err, BASIRA_E_INTERNAL,
                            _("layer \"%s\": the neural-network library failed (status %d)"), layer,
                            (int)s);
}

#define DN(call)                                                                                   \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success)                                                                    \
            return dn_fail(err, s_, lname);                                                        \
    } while (0)

static int grow(void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static dnnl_status_t keep_pd(nn_plan *p, dnnl_primitive_desc_t pd)
{
    if (grow((void **)&p->pds, &p->cappds, p->npds, sizeof *p->pds)) {
        dnnl_primitive_desc_destroy(pd);
        return dnnl_out_of_memory;
    }
    p->pds[p->npds++] = pd;
    return dnnl_success;
}

/* Create a primitive descriptor from an op descriptor and keep it for release. */
static dnnl_status_t mk_pd(nn_plan *p, dnnl_engine_t eng, const void *desc,
                           const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                           dnnl_primitive_desc_t *out)
{
    dnnl_status_t s = dnnl_primitive_desc_create(out, desc, attr, eng, hint);
    if (s != dnnl_success)
        return s;
    return keep_pd(p, *out);
}

static dnnl_status_t mk_prim(nn_plan *p, const_dnnl_primitive_desc_t pd, dnnl_primitive_t *out)
{
    if (grow((void **)&p->prims, &p->capprims, p->nprims, sizeof *p->prims))
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_primitive_create(out, pd);
    if (s == dnnl_success)
        p->prims[p->nprims++] = *out;
    return s;
}

/* A memory object; alloc = 1: oneDNN allocates it, 0: its handle is set later. */
static void *mem_ptr(dnnl_memory_t m);

static dnnl_status_t mk_mem(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md, int alloc,
                            dnnl_memory_t *out)
{
    if (grow((void **)&p->mems, &p->capmems, p->nmems, sizeof *p->mems))
        return dnnl_out_of_memory;
    dnnl_status_t s =
        dnnl_memory_create(out, md, eng, alloc ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE);
    if (s == dnnl_success)
        p->mems[p->nmems++] = *out;
    if (s == dnnl_success && alloc) /* written in full before use: weights, buffers */
        basira_prefault(mem_ptr(*out), dnnl_memory_desc_get_size(md));
    return s;
}

static dnnl_status_t mk_mem_at(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md,
                               void *handle, dnnl_memory_t *out)
{
    dnnl_status_t s = mk_mem(p, eng, md, 0, out);
    if (s == dnnl_success)
        s = dnnl_memory_set_data_handle(*out, handle);
    return s;
}

/* A reorder from one layout to another; accumulate = 1 adds into the destination. */
static dnnl_status_t mk_reorder(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                                const dnnl_memory_desc_t *to, int accumulate, dnnl_primitive_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s = dnnl_success;
    if (accumulate) {
        if ((s = dnnl_primitive_attr_create(&attr)) || (s = dnnl_post_ops_create(&po)) ||
            (s = dnnl_post_ops_append_sum(po, 1.0f)) ||
            (s = dnnl_primitive_attr_set_post_ops(attr, po)))
            goto out;
    }
    dnnl_primitive_desc_t pd;
    s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr);
    if (s == dnnl_success && (s = keep_pd(p, pd)) == dnnl_success)
        s = mk_prim(p, pd, out);
out:
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s;
}

static dnnl_status_t mk_cvt(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                            const dnnl_memory_desc_t *to, nn_cvt *c)
{
    c->prim = NULL;
    c->mem = NULL;
    if (dnnl_memory_desc_equal(from, to))
        return dnnl_success;
    dnnl_status_t s = mk_reorder(p, eng, from, to, 0, &c->prim);
    if (s == dnnl_success)
        s = mk_mem(p, eng, to, 1, &c->mem);
    return s;
}

static const dnnl_memory_desc_t *qmd(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int i)
{
    return dnnl_primitive_desc_query_md(pd, what, i);
}

/* dnnl_dims_t is a fixed-size array (DNNL_MAX_NDIMS): copy so oneDNN may read it whole. */
static void md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims)
{
    static const dnnl_format_tag_t tags[] = {
        dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
    dnnl_dims_t d = {0};
    memcpy(d, dims, (size_t)nd * sizeof *d);
    dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, tags[nd]);
}

static void md_any(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims)
{
    dnnl_dims_t d = {0};
    memcpy(d, dims, (size_t)nd * sizeof *d);
    dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, dnnl_format_tag_any);
}

static void *mem_ptr(dnnl_memory_t m)
{
    void *h = NULL;
    dnnl_memory_get_data_handle(m, &h);
    return h;
}

static size_t md_floats(const dnnl_memory_desc_t *md)
{
    return dnnl_memory_desc_get_size(md) / sizeof(float);
}

/* ---- plan release ------------------------------------------------------------------- */

void nn_plan_free(nn_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nprims; i++)
        dnnl_primitive_destroy(p->prims[i]);
    for (int i = 0; i < p->npds; i++)
        dnnl_primitive_desc_destroy(p->pds[i]);
    for (int i = 0; i < p->nmems; i++)
        dnnl_memory_destroy(p->mems[i]);
    for (int i = 0; p->op && i < p->nt - 1; i++) {
        free(p->op[i].fold);
        free(p->op[i].sub);
        free(p->op[i].accs);
        free(p->op[i].mask);
        free(p->op[i].baccs);
    }
    for (int i = 0; i < p->npool; i++)
        free(p->pool[i]);
    free(p->pool);
    free(p->zero_first);
    free(p->zero_next);
    free(p->prims);
    free(p->pds);
    free(p->mems);
    free(p->t);
    free(p->op);
    free(p);
}

void nn_exec_release(basira_net *net)
{
    nn_plan_free(net->plan_train);
    nn_plan_free(net->plan_eval);
    net->plan_train = net->plan_eval = NULL;
    if (net->stream)
        dnnl_stream_destroy((dnnl_stream_t)net->stream);
    if (net->eng)
        dnnl_engine_destroy((dnnl_engine_t)net->eng);
    net->stream = net->eng = NULL;
}

static basira_code ensure_engine(basira_net *net, basira_error *err)
{
    const char *lname = "";
    if (!net->eng) {
        dnnl_engine_t e;
        DN(dnnl_engine_create(&e, dnnl_cpu, 0));
        net->eng = e;
    }
    if (!net->stream) {
        dnnl_stream_t s;
        DN(dnnl_stream_create(&s, (dnnl_engine_t)net->eng, dnnl_stream_default_flags));
        net->stream = s;
    }
    return BASIRA_OK;
}

/* ---- building a plan ------------------------------------------------------------------ */

static float *param_ptr(basira_net *net, const nn_layer *l, int k)
{
    return net->values + net->params[l->param0 + k].offset;
}

static float *grad_ptr(basira_net *net, const nn_layer *l, int k)
{
    return net->grads + net->params[l->param0 + k].offset;
}

static int is_act(nn_ltype t)
{
    return t == NN_RELU || t == NN_RELU6 || t == NN_SILU;
}

static void act_alg(nn_ltype t, dnnl_alg_kind_t *alg, float *alpha, float *beta)
{
    *alpha = 0.0f;
    *beta = 0.0f;
    if (t == NN_RELU) {
        *alg = dnnl_eltwise_relu;
    } else if (t == NN_RELU6) {
        *alg = dnnl_eltwise_clip_v2;
        *beta = 6.0f;
    } else {
        *alg = dnnl_eltwise_swish;
        *alpha = 1.0f;
    }
}

/* The only consumer (layer index) of tensor t, or -1. */
static int sole_consumer(const basira_net *net, const nn_plan *p, int t)
{
    if (p->t[t].nuse != 1 || t == net->output)
        return -1;
    for (int j = t; j < net->nlayers; j++)
        for (int k = 0; k < net->layers[j].ninputs; k++)
            if (net->layers[j].inputs[k] == t)
                return j;
    return -1;
}

/* Gradient delivery of an op's diff_src (layout md) into tensor ti. */
static basira_code mk_deliver(basira_net *net, nn_plan *p, int ti, const dnnl_memory_desc_t *md,
                              nn_deliver *d, const char *lname, basira_error *err)
{
    dnnl_engine_t eng = net->eng;
    nn_tensor *t = &p->t[ti];
    if (t->nuse == 1 && ti != net->output && dnnl_memory_desc_equal(md, &t->md)) {
        d->mem = t->dmem;
        d->acc = NULL;
        return BASIRA_OK;
    }
    t->dzero = 1;
    DN(mk_mem(p, eng, md, 1, &d->mem));
    DN(mk_reorder(p, eng, md, &t->md, 1, &d->acc));
    return BASIRA_OK;
}

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

static basira_code build_conv(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    nn_tensor *ti = &p->t[in];
    int ic = ti->md.dims[1], ih = (int)ti->md.dims[2], iw = (int)ti->md.dims[3];
    dnnl_dim_t sd[4] = {p->n, ic, ih, iw}, dd[4] = {p->n, l->out_ch, l->h, l->w}, wd[5];
    dnnl_dim_t bd[1] = {l->out_ch};
    dnnl_dims_t st = {0}, dil = {0}, pl = {0}, pr = {0};
    int wnd;
    weight_dims(l, ic, &wnd, wd);
    conv_geometry(l, ih, iw, st, dil, pl, pr);
    dnnl_memory_desc_t smd, wmd, bmd, dmd, wplain, bplain;
    md_any(&smd, 4, sd);
    md_any(&wmd, wnd, wd);
    md_any(&dmd, 4, dd);
    md_plain(&bmd, 1, bd);
    md_plain(&wplain, wnd, wd);
    md_plain(&bplain, 1, bd);
    int prepared = p->mode == MODE_PREPARED;
    int has_bias = l->bias || prepared;

    /* Prepared: absorb the batch norm, residual add and activation that follow. */
    int bn = -1, add = -1, act = -1, head = i;
    op->other = -1;
    if (prepared) {
        int j = sole_consumer(net, p, head + 1);
        if (j >= 0 && net->layers[j].type == NN_BN) {
            bn = head = j;
            j = sole_consumer(net, p, head + 1);
        }
        if (j >= 0 && net->layers[j].type == NN_ADD && net->layers[j].ninputs == 2) {
            const nn_layer *a = &net->layers[j];
            int other = a->inputs[0] == head + 1 ? a->inputs[1] : a->inputs[0];
            if (other <= i && other != head + 1) {
                add = head = j;
                op->other = p->t[other].owner;
                j = sole_consumer(net, p, head + 1);
            }
        }
        if (j >= 0 && is_act(net->layers[j].type)) {
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
    if (!s && (op->other >= 0 || act >= 0)) {
        s = dnnl_primitive_attr_create(&attr);
        if (!s)
            s = dnnl_post_ops_create(&po);
        if (!s && op->other >= 0)
            s = dnnl_post_ops_append_sum(po, 1.0f);
        if (!s && act >= 0) {
            dnnl_alg_kind_t alg;
            float a, b;
            act_alg(net->layers[act].type, &alg, &a, &b);
            s = dnnl_post_ops_append_eltwise(po, 1.0f, alg, a, b);
        }
        if (!s)
            s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (!s)
        s = mk_pd(p, eng, &cd, attr, NULL, &pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (po)
        dnnl_post_ops_destroy(po);
    if (s)
        return dn_fail(err, s, lname);
    DN(mk_prim(p, pd, &op->fwd));
    if (op->other >= 0) {
        /* always a reorder (a copy when the layouts agree) into the output buffer */
        op->src1.mem = NULL;
        DN(mk_reorder(p, eng, &p->t[op->other].md, qmd(pd, dnnl_query_dst_md, 0), 0,
                      &op->src1.prim));
    }
    DN(mk_cvt(p, eng, &ti->md, qmd(pd, dnnl_query_src_md, 0), &op->src));
    const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md, 0);
    float *wsrc = param_ptr(net, l, 0), *bsrc = l->bias ? param_ptr(net, l, 1) : NULL;
    if (prepared) {
        const nn_param *pw = &net->params[l->param0];
        op->fold = malloc((pw->numel + (size_t)l->out_ch) * sizeof(float));
        if (!op->fold)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        basira_prefault(op->fold, (pw->numel + (size_t)l->out_ch) * sizeof(float));
        fold_conv(net, l, bn >= 0 ? &net->layers[bn] : NULL, op->fold, op->fold + pw->numel);
        wsrc = op->fold;
        bsrc = op->fold + pw->numel;
    }
    DN(mk_mem_at(p, eng, &wplain, wsrc, &op->w_plain));
    if (dnnl_memory_desc_equal(wq, &wplain)) {
        op->w = op->w_plain;
    } else {
        DN(mk_reorder(p, eng, &wplain, wq, 0, &op->w_re));
        DN(mk_mem(p, eng, wq, 1, &op->w));
    }
    if (has_bias)
        DN(mk_mem_at(p, eng, &bplain, bsrc, &op->b));
    nn_tensor *to = &p->t[op->out];
    to->md = *qmd(pd, dnnl_query_dst_md, 0);

    if (p->mode != MODE_TRAIN)
        return BASIRA_OK;
    /* Backward: data (unless the input is the image) and weights. */
    const dnnl_memory_desc_t *src_used = qmd(pd, dnnl_query_src_md, 0);
    if (l->inputs[0] != 0) {
        dnnl_convolution_desc_t bdd;
        dnnl_memory_desc_t dsmd, dwmd, ddmd;
        md_any(&dsmd, 4, sd);
        md_any(&dwmd, wnd, wd);
        md_any(&ddmd, 4, dd);
        dnnl_primitive_desc_t bpd;
        DN(dnnl_dilated_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &dsmd,
                                                            &dwmd, &ddmd, st, dil, pl, pr));
        DN(mk_pd(p, eng, &bdd, NULL, pd, &bpd));
        DN(mk_prim(p, bpd, &op->bwd_d));
        DN(mk_cvt(p, eng, &wplain, qmd(bpd, dnnl_query_weights_md, 0), &op->bd_w));
        op->bd_pd = bpd; /* its diff_dst conversion is made by finish_conv_bwd() */
        basira_code rc =
            mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
        if (rc)
            return rc;
    }
    dnnl_convolution_desc_t bwd;
    dnnl_memory_desc_t ssmd, dwmd, ddmd;
    md_any(&ssmd, 4, sd);
    md_any(&dwmd, wnd, wd);
    md_any(&ddmd, 4, dd);
    dnnl_primitive_desc_t wpd;
    DN(dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &ssmd,
                                                           &dwmd, l->bias ? &bmd : NULL, &ddmd, st,
                                                           dil, pl, pr));
    DN(mk_pd(p, eng, &bwd, NULL, pd, &wpd));
    DN(mk_prim(p, wpd, &op->bwd_w));
    DN(mk_cvt(p, eng, src_used, qmd(wpd, dnnl_query_src_md, 0), &op->bw_src));
    const dnnl_memory_desc_t *dwq = qmd(wpd, dnnl_query_diff_weights_md, 0);
    DN(mk_mem(p, eng, dwq, 1, &op->dw));
    DN(mk_mem_at(p, eng, &wplain, grad_ptr(net, l, 0), &op->dw_plain));
    DN(mk_reorder(p, eng, dwq, &wplain, 1, &op->dw_acc));
    if (l->bias)
        DN(mk_mem(p, eng, &bmd, 1, &op->db));
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
        DN(mk_cvt(p, eng, have, qmd(op->bd_pd, dnnl_query_diff_dst_md, 0), &op->bd_ddst));
    }
    DN(mk_cvt(p, eng, have, qmd(op->bw_pd, dnnl_query_diff_dst_md, 0), &op->bw_ddst));
    return BASIRA_OK;
}

static basira_code build_bn(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    const dnnl_memory_desc_t *md = &p->t[in].md;
    int train = p->mode == MODE_TRAIN;
    unsigned flags =
        dnnl_use_scale | dnnl_use_shift | (train ? 0u : (unsigned)dnnl_use_global_stats);
    /*
     * Training: a ReLU that is the only reader of the batch norm runs inside it
     * (fuse_norm_relu, with a bit mask workspace for backward): one pass over the
     * activations instead of two, forward and backward, and one tensor less to keep.
     */
    op->out = i + 1;
    if (train) {
        int j = sole_consumer(net, p, i + 1);
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
    DN(mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(mk_prim(p, pd, &op->fwd));
    dnnl_dim_t cd[1] = {l->c};
    dnnl_memory_desc_t cmd;
    md_plain(&cmd, 1, cd);
    DN(mk_mem_at(p, eng, &cmd, param_ptr(net, l, 0), &op->scale));
    DN(mk_mem_at(p, eng, &cmd, param_ptr(net, l, 1), &op->shift));
    if (train) {
        DN(mk_mem(p, eng, &cmd, 1, &op->mean));
        DN(mk_mem(p, eng, &cmd, 1, &op->var));
    } else {
        DN(mk_mem_at(p, eng, &cmd, param_ptr(net, l, 2), &op->mean));
        DN(mk_mem_at(p, eng, &cmd, param_ptr(net, l, 3), &op->var));
    }
    p->t[op->out].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *wsmd = qmd(pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd) > 0)
        DN(mk_mem(p, eng, wsmd, 1, &op->ws));
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &p->t[op->out].md, md,
                                                   NN_BN_EPS, flags));
    DN(mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(mk_prim(p, bpd, &op->bwd_d));
    DN(mk_mem(p, eng, &cmd, 1, &op->dscale));
    DN(mk_mem(p, eng, &cmd, 1, &op->dshift));
    if (l->inputs[0] != 0)
        return mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
    /* The image needs no gradient, but the primitive still writes one. */
    DN(mk_mem(p, eng, qmd(bpd, dnnl_query_diff_src_md, 0), 1, &op->dsrc.mem));
    return BASIRA_OK;
}

static basira_code build_act(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    int in = p->t[l->inputs[0]].owner;
    const dnnl_memory_desc_t *md = &p->t[in].md;
    int train = p->mode == MODE_TRAIN;
    dnnl_alg_kind_t alg;
    float a, b;
    act_alg(l->type, &alg, &a, &b);
    dnnl_eltwise_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_eltwise_forward_desc_init(&d, train ? dnnl_forward_training : dnnl_forward_inference,
                                      alg, md, a, b));
    DN(mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train || l->inputs[0] == 0)
        return BASIRA_OK;
    dnnl_eltwise_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_eltwise_backward_desc_init(&bd, alg, &p->t[i + 1].md, md, a, b));
    DN(mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(mk_prim(p, bpd, &op->bwd_d));
    return mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
}

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
    md_any(&dmd, 4, dd);
    dnnl_pooling_v2_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_pooling_v2_forward_desc_init(&d, train ? dnnl_forward_training : dnnl_forward_inference,
                                         alg, md, &dmd, st, k, dil, pl, pr));
    DN(mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *wsmd = qmd(pd, dnnl_query_workspace_md, 0);
    if (wsmd && dnnl_memory_desc_get_size(wsmd) > 0)
        DN(mk_mem(p, eng, wsmd, 1, &op->ws));
    if (l->inputs[0] == 0)
        return BASIRA_OK;
    dnnl_pooling_v2_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_pooling_v2_backward_desc_init(&bd, alg, md, &p->t[i + 1].md, st, k, dil, pl, pr));
    DN(mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(mk_prim(p, bpd, &op->bwd_d));
    return mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
}

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
    md_any(&wmd, wnd, wd);
    md_plain(&wplain, wnd, wd);
    md_plain(&bmd, 1, bd);
    md_any(&dmd, 2, dd);
    dnnl_inner_product_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_inner_product_forward_desc_init(&d,
                                            train ? dnnl_forward_training : dnnl_forward_inference,
                                            md, &wmd, l->bias ? &bmd : NULL, &dmd));
    DN(mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(mk_prim(p, pd, &op->fwd));
    const dnnl_memory_desc_t *wq = qmd(pd, dnnl_query_weights_md, 0);
    DN(mk_mem_at(p, eng, &wplain, param_ptr(net, l, 0), &op->w_plain));
    if (dnnl_memory_desc_equal(wq, &wplain)) {
        op->w = op->w_plain;
    } else {
        DN(mk_reorder(p, eng, &wplain, wq, 0, &op->w_re));
        DN(mk_mem(p, eng, wq, 1, &op->w));
    }
    if (l->bias)
        DN(mk_mem_at(p, eng, &bmd, param_ptr(net, l, 1), &op->b));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train)
        return BASIRA_OK;
    const dnnl_memory_desc_t *omd = &p->t[i + 1].md;
    if (l->inputs[0] != 0) {
        dnnl_inner_product_desc_t bdd;
        dnnl_primitive_desc_t bpd;
        md_any(&wmd, wnd, wd);
        DN(dnnl_inner_product_backward_data_desc_init(&bdd, md, &wmd, omd));
        DN(mk_pd(p, eng, &bdd, NULL, pd, &bpd));
        DN(mk_prim(p, bpd, &op->bwd_d));
        DN(mk_cvt(p, eng, &wplain, qmd(bpd, dnnl_query_weights_md, 0), &op->bd_w));
        basira_code rc =
            mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
        if (rc)
            return rc;
    }
    dnnl_inner_product_desc_t bwd;
    dnnl_primitive_desc_t wpd;
    md_any(&wmd, wnd, wd);
    DN(dnnl_inner_product_backward_weights_desc_init(&bwd, md, &wmd, l->bias ? &bmd : NULL, omd));
    DN(mk_pd(p, eng, &bwd, NULL, pd, &wpd));
    DN(mk_prim(p, wpd, &op->bwd_w));
    const dnnl_memory_desc_t *dwq = qmd(wpd, dnnl_query_diff_weights_md, 0);
    DN(mk_mem(p, eng, dwq, 1, &op->dw));
    DN(mk_mem_at(p, eng, &wplain, grad_ptr(net, l, 0), &op->dw_plain));
    DN(mk_reorder(p, eng, dwq, &wplain, 1, &op->dw_acc));
    if (l->bias)
        DN(mk_mem(p, eng, &bmd, 1, &op->db));
    return BASIRA_OK;
}

static basira_code build_add(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    const dnnl_memory_desc_t *md0 = &p->t[p->t[l->inputs[0]].owner].md;
    /* Sums of more than two inputs run as a chain of adds into the output. */
    dnnl_binary_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_binary_desc_init(&d, dnnl_binary_add, md0, md0, md0));
    DN(mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = *md0;
    op->accs = calloc((size_t)l->ninputs, sizeof *op->accs);
    op->sub = calloc((size_t)l->ninputs, sizeof *op->sub);
    if (!op->accs || !op->sub)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    /* Inputs in another layout are converted first (sub[k] holds the converted copy). */
    for (int k = 1; k < l->ninputs; k++) {
        const dnnl_memory_desc_t *mk = &p->t[p->t[l->inputs[k]].owner].md;
        if (!dnnl_memory_desc_equal(mk, md0)) {
            DN(mk_reorder(p, eng, mk, md0, 0, &op->accs[k]));
            DN(mk_mem(p, eng, md0, 1, &op->sub[k]));
        }
    }
    if (p->mode != MODE_TRAIN)
        return BASIRA_OK;
    /* Backward: the output gradient goes to every input, accumulated. */
    dnnl_primitive_t *bacc = op->baccs = calloc((size_t)l->ninputs, sizeof *bacc);
    if (!bacc)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (int k = 0; k < l->ninputs; k++) {
        int t = l->inputs[k];
        if (t == 0)
            continue;
        p->t[t].dzero = 1;
        if (!dnnl_memory_desc_equal(&p->t[t].md, md0)) {
            DN(mk_reorder(p, eng, md0, &p->t[t].md, 1, &bacc[k]));
        }
    }
    return BASIRA_OK;
}

static basira_code build_concat(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_engine_t eng = net->eng;
    dnnl_memory_desc_t *mds = calloc((size_t)l->ninputs, sizeof *mds);
    if (!mds)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (int k = 0; k < l->ninputs; k++)
        mds[k] = p->t[p->t[l->inputs[k]].owner].md;
    /* Output in plain NCHW so that each input is a simple channel slice of it. */
    dnnl_dim_t dd[4] = {p->n, l->c, l->h, l->w};
    dnnl_memory_desc_t dmd;
    md_plain(&dmd, 4, dd);
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_concat_primitive_desc_create(&pd, &dmd, l->ninputs, 1, mds, NULL, eng);
    free(mds);
    if (s)
        return dn_fail(err, s, lname);
    DN(keep_pd(p, pd));
    DN(mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = dmd;
    if (p->mode != MODE_TRAIN)
        return BASIRA_OK;
    op->sub = calloc((size_t)l->ninputs, sizeof *op->sub);
    op->accs = calloc((size_t)l->ninputs, sizeof *op->accs);
    if (!op->sub || !op->accs)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    dnnl_dim_t off = 0;
    for (int k = 0; k < l->ninputs; k++) {
        int t = l->inputs[k];
        const dnnl_memory_desc_t *mk = &p->t[t].md;
        dnnl_dims_t sdims = {p->n, mk->dims[1], l->h, l->w}, offs = {0, off, 0, 0};
        off += mk->dims[1];
        if (t == 0)
            continue;
        dnnl_memory_desc_t smd;
        DN(dnnl_memory_desc_init_submemory(&smd, &dmd, sdims, offs));
        DN(mk_mem(p, eng, &smd, 0, &op->sub[k]));
        DN(mk_reorder(p, eng, &smd, mk, 1, &op->accs[k]));
        p->t[t].dzero = 1;
    }
    return BASIRA_OK;
}

/* Share activation buffers between tensors whose lifetimes do not overlap (no backward). */
static basira_code assign_buffers(basira_net *net, nn_plan *p, basira_error *err)
{
    const char *lname = "";
    dnnl_engine_t eng = net->eng;
    int nt = p->nt;
    int *slot_of = calloc((size_t)nt, sizeof *slot_of);
    size_t *slot_size = calloc((size_t)nt, sizeof *slot_size);
    int *slot_busy_until = calloc((size_t)nt, sizeof *slot_busy_until);
    if (!slot_of || !slot_size || !slot_busy_until) {
        free(slot_of);
        free(slot_size);
        free(slot_busy_until);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    int nslots = 0;
    for (int t = 0; t < nt; t++)
        slot_of[t] = -1;
    for (int made = 0; made < nt - 1; made++) {
        if (p->op[made].skip)
            continue;
        int t = p->op[made].out; /* a fused op writes the tensor of the last layer it absorbed */
        nn_tensor *x = &p->t[t];
        size_t need = dnnl_memory_desc_get_size(&x->md);
        int best = -1;
        for (int s = 0; s < nslots; s++) {
            if (slot_busy_until[s] >= made)
                continue;
            if (best < 0 ||
                (slot_size[s] >= need &&
                 (slot_size[best] < need || slot_size[s] < slot_size[best])) ||
                (slot_size[best] < need && slot_size[s] > slot_size[best]))
                best = s;
        }
        if (best < 0)
            best = nslots++;
        if (slot_size[best] < need)
            slot_size[best] = need;
        slot_busy_until[best] = x->last_use;
        slot_of[t] = best;
    }
    basira_code rc = BASIRA_OK;
    p->pool = calloc((size_t)(nslots ? nslots : 1), sizeof *p->pool);
    if (!p->pool)
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (int s = 0; !rc && s < nslots; s++) {
        p->pool[s] = aligned_alloc(64, (slot_size[s] + 63) / 64 * 64);
        if (!p->pool[s])
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        else
            p->npool = s + 1;
        basira_prefault(p->pool[s], (slot_size[s] + 63) / 64 * 64);
    }
    for (int t = 1; !rc && t < nt; t++) {
        if (slot_of[t] < 0)
            continue;
        dnnl_status_t s = mk_mem_at(p, eng, &p->t[t].md, p->pool[slot_of[t]], &p->t[t].mem);
        if (s)
            rc = dn_fail(err, s, lname);
    }
    free(slot_of);
    free(slot_size);
    free(slot_busy_until);
    return rc;
}

/*
 * Gradient buffers in training. Backward runs the ops from last to first; the
 * gradient of tensor t is first written by the backward of its last reader (step
 * `start`, the highest op index; before everything for the logits) and last read by
 * the backward of the op that produced it (step `end`). Tensors whose [start, end]
 * intervals do not overlap share a buffer, so only a few activation-sized gradients
 * exist at once instead of one per tensor. Accumulated gradients are zeroed at
 * their start step (zero_first/zero_next), not at the beginning of backward, since
 * their buffer may still hold a live gradient until then.
 */
static basira_code assign_diff_buffers(basira_net *net, nn_plan *p, basira_error *err)
{
    const char *lname = "";
    int nt = p->nt, L = net->nlayers;
    int *start = malloc((size_t)nt * sizeof *start), *end = malloc((size_t)nt * sizeof *end);
    int *order = malloc((size_t)nt * sizeof *order),
        *slot_of = malloc((size_t)nt * sizeof *slot_of);
    size_t *slot_size = calloc((size_t)nt, sizeof *slot_size);
    int *slot_end = calloc((size_t)nt, sizeof *slot_end);
    p->zero_first = malloc((size_t)(L + 1) * sizeof *p->zero_first);
    p->zero_next = malloc((size_t)nt * sizeof *p->zero_next);
    basira_code rc = BASIRA_OK;
    if (!start || !end || !order || !slot_of || !slot_size || !slot_end || !p->zero_first ||
        !p->zero_next) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    for (int t = 0; t < nt; t++)
        start[t] = end[t] = -1;
    for (int i = 0; i < L; i++) {
        if (p->op[i].skip)
            continue;
        end[p->op[i].out] = i;
        for (int k = 0; k < net->layers[i].ninputs; k++) {
            int t = net->layers[i].inputs[k];
            if (i > start[t])
                start[t] = i;
        }
    }
    start[net->output] = L;
    int n = 0;
    for (int t = 1; t < nt; t++) {
        if (end[t] < 0)
            continue; /* not materialised (fused away) */
        if (start[t] < end[t])
            start[t] = end[t]; /* read by nobody: zeroed just before its producer */
        order[n++] = t;
    }
    /* By start step, latest first (the order backward meets them). */
    for (int a = 1; a < n; a++) {
        int x = order[a], b = a - 1;
        while (b >= 0 && start[order[b]] < start[x]) {
            order[b + 1] = order[b];
            b--;
        }
        order[b + 1] = x;
    }
    int nslots = 0;
    for (int a = 0; a < n; a++) {
        int t = order[a];
        size_t need = dnnl_memory_desc_get_size(&p->t[t].md);
        int best = -1;
        for (int s = 0; s < nslots; s++) {
            if (slot_end[s] <= start[t])
                continue; /* still in use at step start[t] */
            if (best < 0 ||
                (slot_size[s] >= need &&
                 (slot_size[best] < need || slot_size[s] < slot_size[best])) ||
                (slot_size[best] < need && slot_size[s] > slot_size[best]))
                best = s;
        }
        if (best < 0)
            best = nslots++;
        if (slot_size[best] < need)
            slot_size[best] = need;
        slot_end[best] = end[t];
        slot_of[t] = best;
    }
    p->pool = calloc((size_t)(nslots ? nslots : 1), sizeof *p->pool);
    if (!p->pool) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    for (int s = 0; s < nslots; s++) {
        p->pool[s] = aligned_alloc(64, (slot_size[s] + 63) / 64 * 64);
        if (!p->pool[s]) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto out;
        }
        p->npool = s + 1;
        basira_prefault(p->pool[s], (slot_size[s] + 63) / 64 * 64);
    }
    for (int s = 0; s <= L; s++)
        p->zero_first[s] = -1;
    for (int a = 0; a < n; a++) {
        int t = order[a];
        dnnl_status_t st = dnnl_memory_set_data_handle(p->t[t].dmem, p->pool[slot_of[t]]);
        if (st) {
            rc = dn_fail(err, st, lname);
            goto out;
        }
        /* Zero at the start step whatever is accumulated, and what nobody writes. */
        if (p->t[t].dzero || start[t] == end[t] || t == net->output) {
            p->zero_next[t] = p->zero_first[start[t]];
            p->zero_first[start[t]] = t;
        }
    }
out:
    free(start);
    free(end);
    free(order);
    free(slot_of);
    free(slot_size);
    free(slot_end);
    return rc;
}

static basira_code plan_build(basira_net *net, int n, int mode, nn_plan **out, basira_error *err)
{
    basira_code rc = ensure_engine(net, err);
    if (rc)
        return rc;
    /* Gradients exist only once the net is trained (inference never needs them). */
    if (mode == MODE_TRAIN && !nn_net_grads(net))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    const char *lname = "";
    dnnl_engine_t eng = net->eng;
    nn_plan *p = calloc(1, sizeof *p);
    if (!p)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    p->n = n;
    p->mode = mode;
    p->nt = net->nlayers + 1;
    p->t = calloc((size_t)p->nt, sizeof *p->t);
    p->op = calloc((size_t)net->nlayers, sizeof *p->op);
    if (!p->t || !p->op) {
        nn_plan_free(p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (int t = 0; t < p->nt; t++) {
        p->t[t].owner = t;
        p->t[t].last_use = -1;
    }
    for (int i = 0; i < net->nlayers; i++)
        for (int k = 0; k < net->layers[i].ninputs; k++)
            p->t[net->layers[i].inputs[k]].nuse++;
    dnnl_dim_t xd[4] = {n, net->in_c, net->in_h, net->in_w};
    md_plain(&p->t[0].md, 4, xd);

    for (int i = 0; i < net->nlayers && !rc; i++) {
        const nn_layer *l = &net->layers[i];
        nn_op *op = &p->op[i];
        if (op->skip)
            continue;
        op->out = i + 1;
        switch (l->type) {
        case NN_CONV:
            rc = build_conv(net, p, i, err);
            break;
        case NN_BN:
            rc = build_bn(net, p, i, err);
            break;
        case NN_RELU:
        case NN_RELU6:
        case NN_SILU:
            rc = build_act(net, p, i, err);
            break;
        case NN_MAXPOOL:
        case NN_AVGPOOL:
        case NN_GAP:
            rc = build_pool(net, p, i, err);
            break;
        case NN_FC:
            rc = build_fc(net, p, i, err);
            break;
        case NN_DROPOUT:
            p->t[i + 1].md = p->t[p->t[l->inputs[0]].owner].md;
            if (mode != MODE_TRAIN) {
                /* Identity outside training: the output is the input. */
                op->skip = 1;
                p->t[i + 1].owner = p->t[l->inputs[0]].owner;
            } else {
                op->mask_n = md_floats(&p->t[i + 1].md);
                op->mask = malloc(op->mask_n * sizeof(float) + 1);
                if (!op->mask)
                    rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
                else if (l->inputs[0] != 0)
                    p->t[l->inputs[0]].dzero = 1;
            }
            break;
        case NN_ADD:
            rc = build_add(net, p, i, err);
            break;
        case NN_CONCAT:
            rc = build_concat(net, p, i, err);
            break;
        }
        if (rc)
            break;
        /* Training: every tensor keeps its data for backward; gradients share buffers
         * (assign_diff_buffers), so only their objects are made here. */
        if (mode == MODE_TRAIN) {
            nn_tensor *t = &p->t[op->out];
            dnnl_status_t s = mk_mem(p, eng, &t->md, 1, &t->mem);
            if (!s)
                s = mk_mem(p, eng, &t->md, 0, &t->dmem);
            if (s)
                rc = dn_fail(err, s, l->name);
        }
    }
    /* Conv backward needs its output gradient's layout, known only now. */
    for (int i = 0; !rc && mode == MODE_TRAIN && i < net->nlayers; i++)
        if (net->layers[i].type == NN_CONV)
            rc = finish_conv_bwd(net, p, i, err);
    if (!rc && mode == MODE_TRAIN)
        rc = assign_diff_buffers(net, p, err);
    if (!rc && mode != MODE_TRAIN) {
        /* Lifetimes: the last op reading each tensor's owner. */
        for (int i = 0; i < net->nlayers; i++) {
            const nn_op *op = &p->op[i];
            if (op->skip)
                continue;
            for (int k = 0; k < net->layers[i].ninputs; k++) {
                int o = p->t[net->layers[i].inputs[k]].owner;
                if (p->t[o].last_use < i)
                    p->t[o].last_use = i;
            }
            if (op->other >= 0 && p->t[op->other].last_use < i)
                p->t[op->other].last_use = i;
        }
        p->t[p->t[net->output].owner].last_use = net->nlayers;
        rc = assign_buffers(net, p, err);
    }
    if (!rc) {
        nn_tensor *x = &p->t[0];
        dnnl_status_t s = mk_mem(p, eng, &x->md, 0, &x->mem);
        /* The logits leave in plain layout, the gradient comes in plain layout. */
        const nn_tensor *o = &p->t[p->t[net->output].owner];
        dnnl_memory_desc_t plain;
        md_plain(&plain, o->md.ndims, o->md.dims);
        if (!s)
            s = mk_mem(p, eng, &plain, 0, &p->logits_user);
        if (!s)
            s = mk_reorder(p, eng, &o->md, &plain, 0, &p->logits_re);
        if (!s && mode == MODE_TRAIN) {
            s = mk_mem(p, eng, &plain, 0, &p->dlogits_user);
            if (!s)
                s = mk_reorder(p, eng, &plain, &o->md, 1, &p->dlogits_re);
            p->t[net->output].dzero = 1;
        }
        if (s)
            rc = dn_fail(err, s, lname);
    }
    /* Prepared: the folded weights are reordered once, here. */
    for (int i = 0; !rc && mode == MODE_PREPARED && i < net->nlayers; i++) {
        nn_op *op = &p->op[i];
        if (op->skip || !op->w_re)
            continue;
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
        dnnl_status_t s = dnnl_primitive_execute(op->w_re, net->stream, 2, a);
        if (s)
            rc = dn_fail(err, s, net->layers[i].name);
        op->w_re = NULL;
    }
    if (rc) {
        nn_plan_free(p);
        return rc;
    }
    *out = p;
    return BASIRA_OK;
}

/* ---- running ---------------------------------------------------------------------------- */

#define EXEC(prim, args)                                                                           \
    do {                                                                                           \
        dnnl_status_t s_ =                                                                         \
            dnnl_primitive_execute((prim), stream, (int)(sizeof(args) / sizeof((args)[0])), args); \
        if (s_ != dnnl_success)                                                                    \
            return dn_fail(err, s_, lname);                                                        \
    } while (0)

static basira_code run_cvt(dnnl_stream_t stream, nn_cvt *c, dnnl_memory_t from, dnnl_memory_t *used,
                           const char *lname, basira_error *err)
{
    if (!c->prim) {
        *used = from;
        return BASIRA_OK;
    }
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, c->mem}};
    EXEC(c->prim, a);
    *used = c->mem;
    return BASIRA_OK;
}

static basira_code forward_op(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = p->t[p->t[l->inputs[0]].owner].mem;
    dnnl_memory_t dst = p->t[op->out].mem;
    basira_code rc;
    switch (l->type) {
    case NN_CONV: {
        dnnl_memory_t s = NULL;
        if ((rc = run_cvt(stream, &op->src, src, &s, lname, err)))
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
        int na = 3;
        if (op->b)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, op->b};
        dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
        return BASIRA_OK;
    }
    case NN_BN: {
        dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, src},         {DNNL_ARG_DST, dst},
                                {DNNL_ARG_SCALE, op->scale}, {DNNL_ARG_SHIFT, op->shift},
                                {DNNL_ARG_MEAN, op->mean},   {DNNL_ARG_VARIANCE, op->var}};
        int na = 6;
        if (op->ws)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws};
        dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
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
    case NN_RELU:
    case NN_RELU6:
    case NN_SILU:
    case NN_MAXPOOL:
    case NN_AVGPOOL:
    case NN_GAP: {
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
        int na = 2;
        if (op->ws)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws};
        dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
        return BASIRA_OK;
    }
    case NN_FC: {
        if (op->w_re) {
            dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
            EXEC(op->w_re, a);
        }
        dnnl_exec_arg_t a[4] = {
            {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, op->w}, {DNNL_ARG_DST, dst}};
        int na = 3;
        if (op->b)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, op->b};
        dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
        return BASIRA_OK;
    }
    case NN_DROPOUT: {
        /* Inverted dropout: kept units are scaled by 1/(1-p) so eval needs no change. */
        const float *x = mem_ptr(src);
        float *y = mem_ptr(dst);
        float keep = 1.0f - l->p, scale = 1.0f / keep;
        uint64_t thr = (uint64_t)((double)l->p * 4294967296.0);
        for (size_t k = 0; k < op->mask_n; k += 2) {
            uint64_t r = nn_rng_next(&net->rng);
            op->mask[k] = (r & 0xffffffffu) >= thr ? scale : 0.0f;
            if (k + 1 < op->mask_n)
                op->mask[k + 1] = (r >> 32) >= thr ? scale : 0.0f;
        }
        for (size_t k = 0; k < op->mask_n; k++)
            y[k] = x[k] * op->mask[k];
        return BASIRA_OK;
    }
    case NN_ADD: {
        dnnl_memory_t acc = src;
        for (int k = 1; k < l->ninputs; k++) {
            dnnl_memory_t b = p->t[p->t[l->inputs[k]].owner].mem;
            if (op->accs[k]) {
                dnnl_exec_arg_t c[] = {{DNNL_ARG_FROM, b}, {DNNL_ARG_TO, op->sub[k]}};
                EXEC(op->accs[k], c);
                b = op->sub[k];
            }
            dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC_0, acc}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}};
            EXEC(op->fwd, a);
            acc = dst;
        }
        return BASIRA_OK;
    }
    case NN_CONCAT: {
        dnnl_exec_arg_t a[NN_MAX_INPUTS + 1];
        for (int k = 0; k < l->ninputs; k++)
            a[k] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + k, p->t[p->t[l->inputs[k]].owner].mem};
        a[l->ninputs] = (dnnl_exec_arg_t){DNNL_ARG_DST, dst};
        dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, l->ninputs + 1, a);
        if (st)
            return dn_fail(err, st, lname);
        return BASIRA_OK;
    }
    }
    return BASIRA_OK;
}

/* Send an op's diff_src (written to d->mem) on to its input's gradient. */
static basira_code deliver(basira_net *net, nn_plan *p, int ti, nn_deliver *d, const char *lname,
                           basira_error *err)
{
    dnnl_stream_t stream = net->stream;
    if (!d->acc || ti == 0)
        return BASIRA_OK;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, d->mem}, {DNNL_ARG_TO, p->t[ti].dmem}};
    EXEC(d->acc, a);
    return BASIRA_OK;
}

static void add_into(float *g, const float *d, size_t n)
{
    for (size_t k = 0; k < n; k++)
        g[k] += d[k];
}

/*
 * Weight (and bias) gradients of a convolution or fully connected layer from its
 * input src and output gradient ddst, in the layouts op->bwd_w was created for:
 * run the primitive, then accumulate the result into the plain (OIHW / out x in)
 * gradient array through op->dw_acc, and add the bias gradient.
 */
static basira_code backward_weights(basira_net *net, const nn_layer *l, nn_op *op,
                                    dnnl_stream_t stream, dnnl_memory_t src, dnnl_memory_t ddst,
                                    const char *lname, basira_error *err)
{
    dnnl_exec_arg_t a[4] = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, op->dw}};
    int na = 3;
    if (op->db)
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, op->db};
    dnnl_status_t st = dnnl_primitive_execute(op->bwd_w, stream, na, a);
    if (st)
        return dn_fail(err, st, lname);
    dnnl_exec_arg_t c[] = {{DNNL_ARG_FROM, op->dw}, {DNNL_ARG_TO, op->dw_plain}};
    EXEC(op->dw_acc, c);
    if (op->db)
        add_into(grad_ptr(net, l, 1), mem_ptr(op->db), (size_t)l->out_ch);
    return BASIRA_OK;
}

static basira_code backward_op(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    int in = l->inputs[0];
    dnnl_memory_t src = p->t[in].mem, dsrc = op->dsrc.mem;
    dnnl_memory_t dst = p->t[op->out].mem, ddst = p->t[op->out].dmem;
    basira_code rc;
    if (op->skip)
        return BASIRA_OK;
    switch (l->type) {
    case NN_CONV: {
        if (op->bwd_d) {
            dnnl_memory_t dd = NULL, w = NULL;
            if ((rc = run_cvt(stream, &op->bd_ddst, ddst, &dd, lname, err)) ||
                (rc = run_cvt(stream, &op->bd_w, op->w_plain, &w, lname, err)))
                return rc;
            dnnl_exec_arg_t a[] = {
                {DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dsrc}};
            EXEC(op->bwd_d, a);
            if ((rc = deliver(net, p, in, &op->dsrc, lname, err)))
                return rc;
        }
        dnnl_memory_t s0 = op->src.prim ? op->src.mem : src, s = NULL, dd = NULL;
        if ((rc = run_cvt(stream, &op->bw_src, s0, &s, lname, err)) ||
            (rc = run_cvt(stream, &op->bw_ddst, ddst, &dd, lname, err)))
            return rc;
        return backward_weights(net, l, op, stream, s, dd, lname, err);
    }
    case NN_BN: {
        dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, src},
                                 {DNNL_ARG_MEAN, op->mean},
                                 {DNNL_ARG_VARIANCE, op->var},
                                 {DNNL_ARG_DIFF_DST, ddst},
                                 {DNNL_ARG_SCALE, op->scale},
                                 {DNNL_ARG_SHIFT, op->shift},
                                 {DNNL_ARG_DIFF_SRC, dsrc},
                                 {DNNL_ARG_DIFF_SCALE, op->dscale},
                                 {DNNL_ARG_DIFF_SHIFT, op->dshift}};
        int na = 9;
        if (op->ws)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws};
        dnnl_status_t st = dnnl_primitive_execute(op->bwd_d, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
        add_into(grad_ptr(net, l, 0), mem_ptr(op->dscale), (size_t)l->c);
        add_into(grad_ptr(net, l, 1), mem_ptr(op->dshift), (size_t)l->c);
        return deliver(net, p, in, &op->dsrc, lname, err);
    }
    case NN_RELU:
    case NN_RELU6:
    case NN_SILU: {
        if (!op->bwd_d)
            return BASIRA_OK;
        dnnl_exec_arg_t a[] = {
            {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_SRC, dsrc}};
        EXEC(op->bwd_d, a);
        return deliver(net, p, in, &op->dsrc, lname, err);
    }
    case NN_MAXPOOL:
    case NN_AVGPOOL:
    case NN_GAP: {
        if (!op->bwd_d)
            return BASIRA_OK;
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_SRC, dsrc}};
        int na = 2;
        if (op->ws)
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws};
        dnnl_status_t st = dnnl_primitive_execute(op->bwd_d, stream, na, a);
        if (st)
            return dn_fail(err, st, lname);
        return deliver(net, p, in, &op->dsrc, lname, err);
    }
    case NN_FC: {
        if (op->bwd_d) {
            dnnl_memory_t w = NULL;
            if ((rc = run_cvt(stream, &op->bd_w, op->w_plain, &w, lname, err)))
                return rc;
            dnnl_exec_arg_t a[] = {
                {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dsrc}};
            EXEC(op->bwd_d, a);
            if ((rc = deliver(net, p, in, &op->dsrc, lname, err)))
                return rc;
        }
        return backward_weights(net, l, op, stream, src, ddst, lname, err);
    }
    case NN_DROPOUT: {
        if (in == 0)
            return BASIRA_OK;
        float *dx = mem_ptr(p->t[in].dmem);
        const float *dy = mem_ptr(ddst);
        for (size_t k = 0; k < op->mask_n; k++)
            dx[k] += dy[k] * op->mask[k];
        return BASIRA_OK;
    }
    case NN_ADD: {
        dnnl_primitive_t *bacc = op->baccs;
        size_t nf = md_floats(&p->t[i + 1].md);
        for (int k = 0; k < l->ninputs; k++) {
            int t = l->inputs[k];
            if (t == 0)
                continue;
            if (bacc[k]) {
                dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, ddst}, {DNNL_ARG_TO, p->t[t].dmem}};
                EXEC(bacc[k], a);
            } else {
                add_into(mem_ptr(p->t[t].dmem), mem_ptr(ddst), nf);
            }
        }
        (void)dst;
        return BASIRA_OK;
    }
    case NN_CONCAT: {
        for (int k = 0; k < l->ninputs; k++) {
            int t = l->inputs[k];
            if (t == 0)
                continue;
            dnnl_status_t st = dnnl_memory_set_data_handle(op->sub[k], mem_ptr(ddst));
            if (st)
                return dn_fail(err, st, lname);
            dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->sub[k]}, {DNNL_ARG_TO, p->t[t].dmem}};
            EXEC(op->accs[k], a);
        }
        return BASIRA_OK;
    }
    }
    return BASIRA_OK;
}

/* ---- public ------------------------------------------------------------------------------ */

void basira_nn_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

static basira_code get_plan(basira_net *net, int n, int mode, nn_plan **out, basira_error *err)
{
    nn_plan **slot = mode == MODE_TRAIN ? &net->plan_train : &net->plan_eval;
    if (*slot && (*slot)->n == n && (*slot)->mode == mode) {
        *out = *slot;
        return BASIRA_OK;
    }
    nn_plan_free(*slot);
    *slot = NULL;
    basira_code rc = plan_build(net, n, mode, slot, err);
    *out = *slot;
    return rc;
}

basira_code basira_net_forward(basira_net *net, const float *x, int n, int train, float *logits,
                               basira_error *err)
{
    if (!net || !x || !logits || n < 1 || n > 1 << 20)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (train && net->prepared)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("this network was prepared for inference and cannot be trained"));
    if ((size_t)n * ((size_t)net->in_c * net->in_h * net->in_w) > ((size_t)1 << 34) / sizeof(float))
        return basira_error_set(err, BASIRA_E_LIMIT, NULL);
    int mode = train ? MODE_TRAIN : net->prepared ? MODE_PREPARED : MODE_EVAL;
    if (mode == MODE_PREPARED && net->prepared_stale) {
        nn_plan_free(net->plan_eval);
        net->plan_eval = NULL;
        net->prepared_stale = 0;
    }
    net->train_ready = 0;
    nn_plan *p;
    basira_code rc = get_plan(net, n, mode, &p, err);
    if (rc)
        return rc;
    const char *lname = "";
    dnnl_stream_t stream = net->stream;
    dnnl_status_t s = dnnl_memory_set_data_handle(p->t[0].mem, (void *)x);
    if (s)
        return dn_fail(err, s, lname);
    for (int i = 0; i < net->nlayers; i++) {
        if (p->op[i].skip)
            continue;
        if ((rc = forward_op(net, p, i, err)))
            return rc;
    }
    if ((s = dnnl_memory_set_data_handle(p->logits_user, logits)))
        return dn_fail(err, s, lname);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, p->t[p->t[net->output].owner].mem},
                           {DNNL_ARG_TO, p->logits_user}};
    EXEC(p->logits_re, a);
    dnnl_stream_wait(stream);
    net->train_ready = train != 0;
    return BASIRA_OK;
}

basira_code basira_net_backward(basira_net *net, const float *dlogits, basira_error *err)
{
    if (!net || !dlogits)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    nn_plan *p = net->plan_train;
    if (!net->train_ready || !p)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("backward needs a training forward pass first"));
    net->train_ready = 0; /* gradients of one forward are taken once */
    const char *lname = "";
    dnnl_stream_t stream = net->stream;
    for (int t = p->zero_first[net->nlayers]; t >= 0; t = p->zero_next[t])
        memset(mem_ptr(p->t[t].dmem), 0, dnnl_memory_desc_get_size(&p->t[t].md));
    dnnl_status_t s = dnnl_memory_set_data_handle(p->dlogits_user, (void *)dlogits);
    if (s)
        return dn_fail(err, s, lname);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, p->dlogits_user}, {DNNL_ARG_TO, p->t[net->output].dmem}};
    EXEC(p->dlogits_re, a);
    for (int i = net->nlayers - 1; i >= 0; i--) {
        for (int t = p->zero_first[i]; t >= 0; t = p->zero_next[t])
            memset(mem_ptr(p->t[t].dmem), 0, dnnl_memory_desc_get_size(&p->t[t].md));
        basira_code rc = backward_op(net, p, i, err);
        if (rc)
            return rc;
    }
    dnnl_stream_wait(stream);
    return BASIRA_OK;
}

basira_code basira_net_prepare_inference(basira_net *net, int max_batch, basira_error *err)
{
    if (!net || max_batch < 1 || max_batch > 1 << 16)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    nn_plan_free(net->plan_train);
    net->plan_train = NULL;
    net->train_ready = 0;
    nn_plan_free(net->plan_eval);
    net->plan_eval = NULL;
    net->prepared = 1;
    net->prepared_stale = 0;
    nn_plan *p;
    basira_code rc = get_plan(net, max_batch, MODE_PREPARED, &p, err);
    if (rc)
        net->prepared = 0;
    return rc;
}
