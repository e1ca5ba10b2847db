/*
 * layer_act.c - activations: relu, relu6 (clip to [0, 6]) and silu (swish), as
 * oneDNN eltwise primitives working in whatever layout their input has.
 */
#include "nn/exec.h"

#include "core/memory.h"

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
    nn_act_alg(l->type, &alg, &a, &b);
    dnnl_eltwise_desc_t d;
    dnnl_primitive_desc_t pd;
    DN(dnnl_eltwise_forward_desc_init(&d, train ? dnnl_forward_training : dnnl_forward_inference,
                                      alg, md, a, b));
    DN(nn_mk_pd(p, eng, &d, NULL, NULL, &pd));
    DN(nn_mk_prim(p, pd, &op->fwd));
    op->out = i + 1;
    p->t[i + 1].md = *qmd(pd, dnnl_query_dst_md, 0);
    if (!train || l->inputs[0] == 0)
        return BASIRA_OK;
    dnnl_eltwise_desc_t bd;
    dnnl_primitive_desc_t bpd;
    DN(dnnl_eltwise_backward_desc_init(&bd, alg, &p->t[i + 1].md, md, a, b));
    DN(nn_mk_pd(p, eng, &bd, NULL, pd, &bpd));
    DN(nn_mk_prim(p, bpd, &op->bwd_d));
    return nn_mk_deliver(net, p, in, qmd(bpd, dnnl_query_diff_src_md, 0), &op->dsrc, lname, err);
}

static basira_code forward_act(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    dnnl_memory_t src = p->t[p->t[l->inputs[0]].owner].mem;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, p->t[op->out].mem}};
    EXEC(op->fwd, a);
    return BASIRA_OK;
}

static basira_code backward_act(basira_net *net, nn_plan *p, int i, basira_error *err)
{
    const nn_layer *l = &net->layers[i];
    const char *lname = l->name;
    nn_op *op = &p->op[i];
    dnnl_stream_t stream = net->stream;
    int in = l->inputs[0];
    if (!op->bwd_d)
        return BASIRA_OK;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, p->t[in].mem},
                           {DNNL_ARG_DIFF_DST, p->t[op->out].dmem},
                           {DNNL_ARG_DIFF_SRC, op->dsrc.mem}};
    EXEC(op->bwd_d, a);
    return nn_deliver_diff(net, p, in, &op->dsrc, lname, err);
}

const nn_kind nn_kind_act = {build_act, NULL, forward_act, backward_act};
