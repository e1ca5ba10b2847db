/*
 * layer_concat.c - concatenation along channels. The output is plain NCHW so each
 * input is a channel slice of it; backward reads each slice as a sub-memory.
 */
#include "nn/exec.h"

#include <stdlib.h>

#include "core/memory.h"

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
    dnnl_dims_t ddims = {dd[0], dd[1], dd[2], dd[3]};
    dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, p->adt, dnnl_abcd);
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_concat_primitive_desc_create(&pd, &dmd, l->ninputs, 1, mds, NULL, eng);
    free(mds);
    if (s)
        return nn_dn_fail(err, s, lname);
    DN(nn_keep_pd(p, pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
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
        DN(nn_mk_mem(p, eng, &smd, 0, &op->sub[k]));
        DN(nn_mk_reorder(p, eng, &smd, mk, 1, &op->accs[k]));
        p->t[t].dzero = 1;
    }
    return BASIRA_OK;
}

static basira_code forward_concat(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_exec_arg_t a[NN_MAX_INPUTS + 1];
    for (int k = 0; k < l->ninputs; k++)
        a[k] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + k, p->t[p->t[l->inputs[k]].owner].mem};
    a[l->ninputs] = (dnnl_exec_arg_t){DNNL_ARG_DST, p->t[op->out].mem};
    dnnl_status_t st = dnnl_primitive_execute(op->fwd, stream, l->ninputs + 1, a);
    if (st)
        return nn_dn_fail(err, st, lname);
    return BASIRA_OK;
}

static basira_code backward_concat(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t ddst = p->t[op->out].dmem;
    for (int k = 0; k < l->ninputs; k++) {
        int t = l->inputs[k];
        if (t == 0)
            continue;
        dnnl_status_t st = dnnl_memory_set_data_handle(op->sub[k], mem_ptr(ddst));
        if (st)
            return nn_dn_fail(err, st, lname);
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->sub[k]}, {DNNL_ARG_TO, p->t[t].dmem}};
        EXEC(op->accs[k], a);
    }
    return BASIRA_OK;
}

const nn_kind nn_kind_concat = {build_concat, NULL, forward_concat, backward_concat};
