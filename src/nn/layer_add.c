/*
 * layer_add.c - element-wise sum of two or more inputs of one shape (residual
 * connections): a chain of oneDNN binary adds forward, the gradient passed to
 * every input backward.
 */
#include "nn/exec.h"

#include <stdlib.h>

#include "core/memory.h"

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
    DN(nn_mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
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
            DN(nn_mk_reorder(p, eng, mk, md0, 0, &op->accs[k]));
            DN(nn_mk_mem(p, eng, md0, 1, &op->sub[k]));
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
        /* The C loop of backward_add() adds floats: bf16 gradients always go through a
         * reorder with a sum post-op. */
        if (md0->data_type != dnnl_f32 || !dnnl_memory_desc_equal(&p->t[t].md, md0)) {
            DN(nn_mk_reorder(p, eng, md0, &p->t[t].md, 1, &bacc[k]));
        }
    }
    return BASIRA_OK;
}

static basira_code forward_add(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t acc = p->t[p->t[l->inputs[0]].owner].mem;
    dnnl_memory_t dst = p->t[op->out].mem;
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

static basira_code backward_add(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t ddst = p->t[op->out].dmem;
    dnnl_primitive_t *bacc = op->baccs;
    size_t nf = md_elems(&p->t[i + 1].md);
    for (int k = 0; k < l->ninputs; k++) {
        int t = l->inputs[k];
        if (t == 0)
            continue;
        if (bacc[k]) {
            dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, ddst}, {DNNL_ARG_TO, p->t[t].dmem}};
            EXEC(bacc[k], a);
        } else {
            nn_add_into(mem_ptr(p->t[t].dmem), mem_ptr(ddst), nf);
        }
    }
    return BASIRA_OK;
}

const nn_kind nn_kind_add = {build_add, NULL, forward_add, backward_add};
