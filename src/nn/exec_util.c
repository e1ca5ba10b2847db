/*
 * exec_util.c - small helpers of the executor and the layer kinds: oneDNN errors,
 * primitive/memory/reorder creation kept in the plan for release, layouts, gradient
 * delivery, and the weight-gradient step shared by convolution and fc.
 */
#include "nn/exec.h"

#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "core/memory.h"

basira_code nn_dn_fail(basira_error *err, dnnl_status_t s, const char *layer)
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

dnnl_status_t nn_keep_pd(nn_plan *p, dnnl_primitive_desc_t pd)
{
    if (grow((void **)&p->pds, &p->cappds, p->npds, sizeof *p->pds)) {
        dnnl_primitive_desc_destroy(pd);
        return dnnl_out_of_memory;
    }
    p->pds[p->npds++] = pd;
    return dnnl_success;
}

/* Create a primitive descriptor from an op descriptor and keep it for release. */
dnnl_status_t nn_mk_pd(nn_plan *p, dnnl_engine_t eng, const void *desc,
                       const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                       dnnl_primitive_desc_t *out)
{
    dnnl_status_t s = dnnl_primitive_desc_create(out, desc, attr, eng, hint);
    if (s != dnnl_success)
        return s;
    return nn_keep_pd(p, *out);
}

dnnl_status_t nn_mk_prim(nn_plan *p, const_dnnl_primitive_desc_t pd, dnnl_primitive_t *out)
{
    if (grow((void **)&p->prims, &p->capprims, p->nprims, sizeof *p->prims))
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_primitive_create(out, pd);
    if (s == dnnl_success)
        p->prims[p->nprims++] = *out;
    return s;
}

/*
 * Each prepared convolution folds its batch norm into a copy of its weights, which is
 * reordered into oneDNN's layout and no longer needed. A fresh buffer per layer would
 * be mapped, faulted in and unmapped again for every large layer (glibc maps blocks
 * over 128 KiB on their own): one buffer, grown to the largest layer, is faulted in
 * once.
 */
float *nn_plan_scratch(nn_plan *p, size_t n)
{
    if (n > p->scratch_n) {
        free(p->scratch);
        size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
        p->scratch = aligned_alloc(64, bytes);
        p->scratch_n = p->scratch ? n : 0;
        if (p->scratch)
            basira_prefault(p->scratch, bytes);
    }
    return p->scratch;
}

dnnl_status_t nn_mk_mem(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md, int alloc,
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

dnnl_status_t nn_mk_mem_at(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md,
                           void *handle, dnnl_memory_t *out)
{
    dnnl_status_t s = nn_mk_mem(p, eng, md, 0, out);
    if (s == dnnl_success)
        s = dnnl_memory_set_data_handle(*out, handle);
    return s;
}

/* A reorder from one layout to another; accumulate = 1 adds into the destination. */
dnnl_status_t nn_mk_reorder(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
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
    if (s == dnnl_success && (s = nn_keep_pd(p, pd)) == dnnl_success)
        s = nn_mk_prim(p, pd, out);
out:
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s;
}

dnnl_status_t nn_mk_cvt(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, nn_cvt *c)
{
    c->prim = NULL;
    c->mem = NULL;
    if (dnnl_memory_desc_equal(from, to))
        return dnnl_success;
    dnnl_status_t s = nn_mk_reorder(p, eng, from, to, 0, &c->prim);
    if (s == dnnl_success)
        s = nn_mk_mem(p, eng, to, 1, &c->mem);
    return s;
}

/* dnnl_dims_t is a fixed-size array (DNNL_MAX_NDIMS): copy so oneDNN may read it whole. */
void nn_md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims)
{
    static const dnnl_format_tag_t tags[] = {
        dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
    dnnl_dims_t d = {0};
    memcpy(d, dims, (size_t)nd * sizeof *d);
    dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, tags[nd]);
}

void nn_md_any(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt)
{
    dnnl_dims_t d = {0};
    memcpy(d, dims, (size_t)nd * sizeof *d);
    dnnl_memory_desc_init_by_tag(md, nd, d, dt, dnnl_format_tag_any);
}

int nn_is_act(nn_ltype t)
{
    return t == NN_RELU || t == NN_RELU6 || t == NN_SILU;
}

void nn_act_alg(nn_ltype t, dnnl_alg_kind_t *alg, float *alpha, float *beta)
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
int nn_sole_consumer(const basira_net *net, const nn_plan *p, int t)
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
basira_code nn_mk_deliver(basira_net *net, nn_plan *p, int ti, const dnnl_memory_desc_t *md,
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
    DN(nn_mk_mem(p, eng, md, 1, &d->mem));
    DN(nn_mk_reorder(p, eng, md, &t->md, 1, &d->acc));
    return BASIRA_OK;
}
basira_code nn_exec(dnnl_primitive_t prim, dnnl_stream_t stream, dnnl_exec_arg_t *a, int na,
                    int opt_arg, dnnl_memory_t opt, const char *lname, basira_error *err)
{
    if (opt)
        a[na++] = (dnnl_exec_arg_t){opt_arg, opt};
    dnnl_status_t st = dnnl_primitive_execute(prim, stream, na, a);
    if (st)
        return nn_dn_fail(err, st, lname);
    return BASIRA_OK;
}

basira_code nn_run_cvt(dnnl_stream_t stream, nn_cvt *c, dnnl_memory_t from, dnnl_memory_t *used,
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
basira_code nn_deliver_diff(basira_net *net, nn_plan *p, int ti, nn_deliver *d, const char *lname,
                            basira_error *err)
{
    dnnl_stream_t stream = net->stream;
    if (!d->acc || ti == 0)
        return BASIRA_OK;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, d->mem}, {DNNL_ARG_TO, p->t[ti].dmem}};
    EXEC(d->acc, a);
    return BASIRA_OK;
}

void nn_add_into(float *g, const float *d, size_t n)
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
basira_code nn_backward_weights(basira_net *net, const nn_layer *l, nn_op *op, dnnl_stream_t stream,
                                dnnl_memory_t src, dnnl_memory_t ddst, const char *lname,
                                basira_error *err)
{
    dnnl_exec_arg_t a[4] = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, op->dw}};
    basira_code xrc = nn_exec(op->bwd_w, stream, a, 3, DNNL_ARG_DIFF_BIAS, op->db, lname, err);
    if (xrc)
        return xrc;
    dnnl_exec_arg_t c[] = {{DNNL_ARG_FROM, op->dw}, {DNNL_ARG_TO, op->dw_plain}};
    EXEC(op->dw_acc, c);
    if (op->db)
        nn_add_into(grad_ptr(net, l, 1), mem_ptr(op->db), (size_t)l->out_ch);
    return BASIRA_OK;
}
