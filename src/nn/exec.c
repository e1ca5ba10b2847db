/*
 * exec.c - the executor: building a plan (one nn_kind per layer type does its own
 * primitives, see exec.h), the activation and gradient buffers, and the run loops
 * of forward, backward and inference preparation.
 *
 * A plan is built at the first forward with a batch size and mode and reused until
 * the size or mode changes: creating primitives costs far more than running them at
 * batch 1.
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
#include "nn/exec.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "core/memory.h"

/* The table of layer kinds, by layer type. */
static const nn_kind *nn_kind_of(nn_ltype t)
{
    static const nn_kind *const kinds[] = {
        [NN_CONV] = &nn_kind_conv,       [NN_BN] = &nn_kind_bn,    [NN_RELU] = &nn_kind_act,
        [NN_RELU6] = &nn_kind_act,       [NN_SILU] = &nn_kind_act, [NN_MAXPOOL] = &nn_kind_pool,
        [NN_AVGPOOL] = &nn_kind_pool,    [NN_GAP] = &nn_kind_pool, [NN_FC] = &nn_kind_fc,
        [NN_DROPOUT] = &nn_kind_dropout, [NN_ADD] = &nn_kind_add,  [NN_CONCAT] = &nn_kind_concat,
    };
    return kinds[t];
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
        free(p->op[i].fold_b);
        free(p->op[i].oscale);
        free(p->op[i].own);
        free(p->op[i].sub);
        free(p->op[i].accs);
        free(p->op[i].mask);
        free(p->op[i].baccs);
    }
    for (int i = 0; i < p->npool; i++)
        free(p->pool[i]);
    free(p->pool);
    free(p->scratch);
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
        dnnl_status_t s = nn_mk_mem_at(p, eng, &p->t[t].md, p->pool[slot_of[t]], &p->t[t].mem);
        if (s)
            rc = nn_dn_fail(err, s, lname);
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
            rc = nn_dn_fail(err, st, lname);
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

/*
 * low[i]: the lowest offset (in floats) of net->values that layers i, i + 1, ... read,
 * net->numel when none does; low[nlayers] = numel. A layer's parameters run from its
 * param0 to the next layer's. NULL when they are not in layer order (nothing is then
 * given back early) or on allocation failure.
 */
static size_t *param_low_water(const basira_net *net)
{
    size_t *low = malloc(((size_t)net->nlayers + 1) * sizeof *low);
    if (!low)
        return NULL;
    low[net->nlayers] = net->numel;
    size_t next = net->nparams;
    for (int j = net->nlayers - 1; j >= 0; j--) {
        size_t m = low[j + 1];
        int p0 = net->layers[j].param0;
        if (p0 >= 0) {
            if ((size_t)p0 > next) {
                free(low);
                return NULL;
            }
            for (size_t k = (size_t)p0; k < next; k++)
                if (net->params[k].offset < m)
                    m = net->params[k].offset;
            next = (size_t)p0;
        }
        low[j] = m;
    }
    return low;
}

/*
 * Build the plan for batch n in mode. With dropped (a lean prepare, fp32 only), every
 * page of net->values that no layer still to be built reads is given back as soon as
 * the layers before it are built (they copy or reorder what they need): the peak then
 * holds one copy of the weights and one layer, not two copies. *dropped counts the
 * bytes from net->values on that are gone, so that a failure knows whether the values
 * are still whole.
 */
static basira_code plan_build(basira_net *net, int n, int mode, dnnl_data_type_t adt, int int8,
                              size_t *dropped, nn_plan **out, basira_error *err)
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
    p->adt = adt;
    p->int8 = int8;
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
    nn_md_plain(&p->t[0].md, 4, xd);
    size_t *low = dropped && mode == MODE_PREPARED ? param_low_water(net) : NULL;

    for (int i = 0; i < net->nlayers && !rc; i++) {
        const nn_layer *l = &net->layers[i];
        nn_op *op = &p->op[i];
        if (op->skip)
            continue;
        op->out = i + 1;
        rc = nn_kind_of(l->type)->build(net, p, i, err);
        if (rc)
            break;
        if (low && low[i + 1] * sizeof(float) > *dropped)
            *dropped += basira_discard((char *)net->values + *dropped,
                                       low[i + 1] * sizeof(float) - *dropped);
        /* Training: every tensor keeps its data for backward; gradients share buffers
         * (assign_diff_buffers), so only their objects are made here. */
        if (mode == MODE_TRAIN) {
            nn_tensor *t = &p->t[op->out];
            dnnl_status_t s = nn_mk_mem(p, eng, &t->md, 1, &t->mem);
            if (!s)
                s = nn_mk_mem(p, eng, &t->md, 0, &t->dmem);
            if (s)
                rc = nn_dn_fail(err, s, l->name);
        }
    }
    /* Conv backward needs its output gradient's layout, known only now. */
    for (int i = 0; !rc && mode == MODE_TRAIN && i < net->nlayers; i++) {
        const nn_kind *k = nn_kind_of(net->layers[i].type);
        if (k->finish && !p->op[i].skip)
            rc = k->finish(net, p, i, err);
    }
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
        dnnl_status_t s = nn_mk_mem(p, eng, &x->md, 0, &x->mem);
        /* The logits leave in plain layout, the gradient comes in plain layout. */
        const nn_tensor *o = &p->t[p->t[net->output].owner];
        dnnl_memory_desc_t plain;
        nn_md_plain(&plain, o->md.ndims, o->md.dims);
        if (!s)
            s = nn_mk_mem(p, eng, &plain, 0, &p->logits_user);
        if (!s)
            s = nn_mk_reorder(p, eng, &o->md, &plain, 0, &p->logits_re);
        if (!s && mode == MODE_TRAIN) {
            s = nn_mk_mem(p, eng, &plain, 0, &p->dlogits_user);
            if (!s)
                s = nn_mk_reorder(p, eng, &plain, &o->md, 1, &p->dlogits_re);
            p->t[net->output].dzero = 1;
        }
        if (s)
            rc = nn_dn_fail(err, s, lname);
    }
    /* Prepared: the folded weights are reordered once, here. */
    for (int i = 0; !rc && mode == MODE_PREPARED && i < net->nlayers; i++) {
        nn_op *op = &p->op[i];
        if (op->skip || !op->w_re)
            continue;
        dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, op->w_plain}, {DNNL_ARG_TO, op->w}};
        dnnl_status_t s = dnnl_primitive_execute(op->w_re, net->stream, 2, a);
        if (s)
            rc = nn_dn_fail(err, s, net->layers[i].name);
        op->w_re = NULL;
    }
    free(low);
    free(p->scratch); /* the folded weights are all reordered */
    p->scratch = NULL;
    p->scratch_n = 0;
    if (rc) {
        nn_plan_free(p);
        return rc;
    }
    *out = p;
    return BASIRA_OK;
}
/* ---- public ------------------------------------------------------------------------------ */

void basira_nn_set_threads(int n)
{
    omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

/* dropped: as for plan_build (NULL but in a lean prepare). */
static basira_code get_plan(basira_net *net, int n, int mode, size_t *dropped, nn_plan **out,
                            basira_error *err)
{
    nn_plan **slot = mode == MODE_TRAIN ? &net->plan_train : &net->plan_eval;
    *out = NULL;
    if (*slot && (*slot)->n == n && (*slot)->mode == mode) {
        *out = *slot;
        return BASIRA_OK;
    }
    if (net->values_released)
        return nn_net_released_error(err); /* a new plan would need them; keep the old one */
    nn_plan_free(*slot);
    *slot = NULL;
    int bf16 =
        (mode == MODE_TRAIN && net->train_bf16) || (mode == MODE_PREPARED && net->infer_bf16);
    int int8 = mode == MODE_PREPARED && net->infer_int8;
    /* Values are given back early in fp32 only: a bf16 or int8 build that meets a layer
     * without such a kernel starts again in fp32 from the values. */
    basira_code rc = plan_build(net, n, mode, bf16 ? dnnl_bf16 : dnnl_f32, int8,
                                bf16 || int8 ? NULL : dropped, slot, err);
    if (rc == BASIRA_E_UNSUPPORTED && (bf16 || int8)) {
        /* Some layer has no bf16 (int8) implementation here: the whole net runs in fp32. */
        if (mode == MODE_TRAIN)
            net->train_bf16 = 0;
        else
            net->infer_bf16 = net->infer_int8 = 0;
        rc = plan_build(net, n, mode, dnnl_f32, 0, dropped, slot, err);
    }
    *out = *slot;
    return rc;
}

int basira_nn_bf16_supported(void)
{
    /* Native bf16 arithmetic (AVX-512 BF16 or AMX), as oneDNN sees the processor and
     * any ONEDNN_MAX_CPU_ISA limit; elsewhere oneDNN would only emulate it, slowly. */
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

basira_code basira_net_set_precision(basira_net *net, basira_precision precision, basira_error *err)
{
    if (!net || (precision != BASIRA_PRECISION_FP32 && precision != BASIRA_PRECISION_BF16 &&
                 precision != BASIRA_PRECISION_AUTO))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int supported = basira_nn_bf16_supported();
    if (precision == BASIRA_PRECISION_BF16 && !supported)
        return basira_error_set(err, BASIRA_E_UNSUPPORTED,
                                _("this processor has no bfloat16 instructions (AVX-512 BF16 or "
                                  "AMX): train in fp32 or let the precision be chosen "
                                  "automatically"));
    int bf16 =
        precision == BASIRA_PRECISION_BF16 || (precision == BASIRA_PRECISION_AUTO && supported);
    if (bf16 != net->train_bf16) {
        nn_plan_free(net->plan_train);
        net->plan_train = NULL;
        net->train_ready = 0;
    }
    net->train_bf16 = bf16;
    return BASIRA_OK;
}

basira_precision basira_net_precision(const basira_net *net)
{
    return net && net->train_bf16 ? BASIRA_PRECISION_BF16 : BASIRA_PRECISION_FP32;
}

basira_code basira_net_set_inference_precision(basira_net *net, basira_precision precision,
                                               basira_error *err)
{
    if (!net || (precision != BASIRA_PRECISION_FP32 && precision != BASIRA_PRECISION_BF16 &&
                 precision != BASIRA_PRECISION_AUTO && precision != BASIRA_PRECISION_INT8))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (precision == BASIRA_PRECISION_INT8 && !net->calibrated)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("int8 inference needs calibration first "
                                  "(activation ranges measured on sample inputs)"));
    int int8 = precision == BASIRA_PRECISION_INT8;
    if (net->values_released) {
        /* The plan stays as it is, or the net would have none: only "no change" is taken. */
        int bf16 = !int8 && (precision == BASIRA_PRECISION_BF16 ||
                             (precision == BASIRA_PRECISION_AUTO && basira_nn_bf16_supported()));
        return int8 == net->infer_int8 && bf16 == net->infer_bf16 ? BASIRA_OK
                                                                  : nn_net_released_error(err);
    }
    if (int8 != net->infer_int8 && net->prepared) {
        nn_plan_free(net->plan_eval);
        net->plan_eval = NULL;
        net->prepared_stale = 0;
    }
    net->infer_int8 = int8;
    if (int8)
        precision = BASIRA_PRECISION_FP32; /* activations between layers stay float32 */
    int supported = basira_nn_bf16_supported();
    if (precision == BASIRA_PRECISION_BF16 && !supported)
        return basira_error_set(err, BASIRA_E_UNSUPPORTED,
                                _("this processor has no bfloat16 instructions (AVX-512 BF16 or "
                                  "AMX): run the network in fp32"));
    int bf16 =
        precision == BASIRA_PRECISION_BF16 || (precision == BASIRA_PRECISION_AUTO && supported);
    if (bf16 != net->infer_bf16) {
        net->infer_bf16 = bf16;
        if (net->prepared) {
            /* The next forward rebuilds the prepared plan in the new precision. */
            nn_plan_free(net->plan_eval);
            net->plan_eval = NULL;
            net->prepared_stale = 0;
        }
    }
    return BASIRA_OK;
}

basira_precision basira_net_inference_precision(const basira_net *net)
{
    if (net && net->infer_int8)
        return BASIRA_PRECISION_INT8;
    return net && net->infer_bf16 ? BASIRA_PRECISION_BF16 : BASIRA_PRECISION_FP32;
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
    basira_code rc = get_plan(net, n, mode, NULL, &p, err);
    if (rc)
        return rc;
    const char *lname = "";
    dnnl_stream_t stream = net->stream;
    dnnl_status_t s = dnnl_memory_set_data_handle(p->t[0].mem, (void *)x);
    if (s)
        return nn_dn_fail(err, s, lname);
    if (net->calib_on)
        nn_calib_scan(net, 0, x, md_elems(&p->t[0].md));
    for (int i = 0; i < net->nlayers; i++) {
        if (p->op[i].skip)
            continue;
        double t0 = net->prof_on ? nn_now() : 0;
        if ((rc = nn_kind_of(net->layers[i].type)->forward(net, p, i, err)))
            return rc;
        if (net->calib_on) {
            const nn_tensor *t = &p->t[p->op[i].out];
            const float *v = t->mem ? mem_ptr(t->mem) : NULL;
            if (v)
                nn_calib_scan(net, p->op[i].out, v, md_elems(&t->md));
        }
        if (net->prof_on)
            nn_profile_add(net, p, i, 0, nn_now() - t0);
    }
    if ((s = dnnl_memory_set_data_handle(p->logits_user, logits)))
        return nn_dn_fail(err, s, lname);
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
        return nn_dn_fail(err, s, lname);
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, p->dlogits_user}, {DNNL_ARG_TO, p->t[net->output].dmem}};
    EXEC(p->dlogits_re, a);
    for (int i = net->nlayers - 1; i >= 0; i--) {
        for (int t = p->zero_first[i]; t >= 0; t = p->zero_next[t])
            memset(mem_ptr(p->t[t].dmem), 0, dnnl_memory_desc_get_size(&p->t[t].md));
        if (p->op[i].skip)
            continue;
        double t0 = net->prof_on ? nn_now() : 0;
        basira_code rc = nn_kind_of(net->layers[i].type)->backward(net, p, i, err);
        if (rc)
            return rc;
        if (net->prof_on)
            nn_profile_add(net, p, i, 1, nn_now() - t0);
    }
    dnnl_stream_wait(stream);
    return BASIRA_OK;
}

/* The net's float32 values (and gradients) go: only a plan, if any, is left. */
static void drop_values(basira_net *net)
{
    free(net->values);
    free(net->grads);
    net->values = net->grads = NULL;
    net->values_released = 1;
}

static basira_code prepare(basira_net *net, int max_batch, int lean, basira_error *err)
{
    if (!net || max_batch < 1 || max_batch > 1 << 16)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (net->values_released)
        return nn_net_released_error(err);
    nn_plan_free(net->plan_train);
    net->plan_train = NULL;
    net->train_ready = 0;
    nn_plan_free(net->plan_eval);
    net->plan_eval = NULL;
    net->prepared = 1;
    net->prepared_stale = 0;
    nn_plan *p;
    size_t dropped = 0;
    basira_code rc = get_plan(net, max_batch, MODE_PREPARED, lean ? &dropped : NULL, &p, err);
    if (rc) {
        net->prepared = 0;
        if (dropped) /* part of the values is gone: nothing can use the rest */
            drop_values(net);
        return rc;
    }
    return lean ? basira_net_release_values(net, err) : BASIRA_OK;
}

basira_code basira_net_prepare_inference(basira_net *net, int max_batch, basira_error *err)
{
    return prepare(net, max_batch, 0, err);
}

basira_code basira_net_prepare_inference_lean(basira_net *net, int max_batch, basira_error *err)
{
    return prepare(net, max_batch, 1, err);
}

/*
 * A prepared plan holds everything its forwards read: the convolutions' folded weights in
 * oneDNN's layout, and copies of the fc and batch-norm parameters. The net's own float32
 * values are then a second copy of the weights that only a new plan, training or saving
 * would read. A model loaded to triage photos never does those, so it gives them up: the
 * bundled clinical model's four networks hold 10.7 MB less, and a later allocation reuses
 * those pages instead of faulting in fresh ones.
 */
basira_code basira_net_release_values(basira_net *net, basira_error *err)
{
    if (!net)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (net->values_released)
        return BASIRA_OK;
    if (!net->prepared || net->prepared_stale || !net->plan_eval ||
        net->plan_eval->mode != MODE_PREPARED)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("only a network prepared for inference, its plan built, can "
                                  "give up its weights"));
    drop_values(net);
    return BASIRA_OK;
}

int basira_net_values_released(const basira_net *net)
{
    return net && net->values_released;
}
