/*
 * exec.h - private to the executor (exec.c, exec_util.c) and the layer kinds
 * (layer_*.c): the execution plan and the table of layer kinds.
 *
 * Each layer type is one nn_kind in its own file, with its build, forward and
 * backward side by side (as llm.c keeps each layer's pair together). The executor
 * (exec.c) keeps what is common: the plan, the activation and gradient buffers and
 * the run loops; exec_util.c has the small oneDNN helpers every kind uses.
 *
 * A plan holds, for one batch size and one mode (training, evaluation, prepared
 * inference), every oneDNN primitive, memory object and buffer the net needs.
 * Tensors are numbered as in engine.h: 0 the input, i + 1 the output of layer i;
 * op[i] is what layer i runs.
 */
#ifndef BASIRA_NN_EXEC_H
#define BASIRA_NN_EXEC_H

#include <stdint.h>
#include <string.h>

#include <dnnl.h>

#include "nn/engine.h"

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
    float *fold, *fold_b; /* prepared conv: folded weights (freed once reordered), bias */
    float *oscale;        /* int8 conv: per-channel output scales */
    float *own;           /* prepared fc / batch norm: a copy of its parameters, so that a prepared
                             plan reads nothing of net->values (basira_net_release_values) */
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
    int n, mode;          /* mode: 0 eval, 1 train, 2 prepared */
    int int8;             /* prepared: convolutions in int8 (quant.c) */
    dnnl_data_type_t adt; /* activations, their gradients and the weights given to
                             oneDNN: f32, or bf16 in bf16 training (weight gradients
                             and the master weights stay f32) */
    int nt;
    nn_tensor *t;
    nn_op *op;
    dnnl_memory_t x_user, logits_user, dlogits_user;
    dnnl_primitive_t logits_re, dlogits_re;
    void **pool;
    int npool;
    int *zero_first, *zero_next; /* training: gradients to zero before each op's backward */
    /* Prepared build: the convolutions' folded weights before their reorder, one buffer
     * for every layer (nn_plan_scratch), freed once the plan is built. */
    float *scratch;
    size_t scratch_n;
    /* everything to release */
    dnnl_primitive_t *prims;
    int nprims, capprims;
    dnnl_memory_t *mems;
    int nmems, capmems;
    dnnl_primitive_desc_t *pds;
    int npds, cappds;
};

enum { MODE_EVAL = 0, MODE_TRAIN = 1, MODE_PREPARED = 2 };

/*
 * One layer type. build() makes the op's primitives and memories for the plan's
 * mode and sets the layout (md) of the tensor it writes; it may mark the layers it
 * absorbs as skipped (fusion). finish() (optional) runs in training once every layer
 * is built, when the layouts of all gradients are known. forward() and backward()
 * run one op; backward accumulates parameter gradients and delivers diff_src.
 * Skipped ops are never run.
 */
typedef struct nn_kind {
    basira_code (*build)(basira_net *net, nn_plan *p, int i, basira_error *err);
    basira_code (*finish)(basira_net *net, nn_plan *p, int i, basira_error *err);
    basira_code (*forward)(basira_net *net, nn_plan *p, int i, basira_error *err);
    basira_code (*backward)(basira_net *net, nn_plan *p, int i, basira_error *err);
} nn_kind;

extern const nn_kind nn_kind_conv;    /* layer_conv.c */
extern const nn_kind nn_kind_bn;      /* layer_bn.c */
extern const nn_kind nn_kind_act;     /* layer_act.c: relu, relu6, silu */
extern const nn_kind nn_kind_pool;    /* layer_pool.c: maxpool, avgpool, gap */
extern const nn_kind nn_kind_fc;      /* layer_fc.c */
extern const nn_kind nn_kind_dropout; /* layer_dropout.c */
extern const nn_kind nn_kind_add;     /* layer_add.c */
extern const nn_kind nn_kind_concat;  /* layer_concat.c */

/* ---- int8 quantisation (quant.c) ------------------------------------------------------ */

/* Calibration: fold n values of tensor t into its recorded range. */
void nn_calib_scan(basira_net *net, int t, const float *v, size_t n);
/* Quantisation of tensor t as a convolution's input: scale, and u8 (1) or s8 (0). */
void nn_quant_src(const basira_net *net, int t, float *scale, int *is_unsigned);
/* Per-channel s8 weights of out_ch x per floats (malloc'd, NULL when out of memory), the
 * output scales 1 / (sx * sw_o) and the bias in the accumulator's units b_o * sx * sw_o. */
int8_t *nn_quant_weights(const float *w, const float *b, int out_ch, size_t per, float sx,
                         float *oscale, float *bias_q);
/* A reorder that multiplies by scale on the way (quantisation), into a new memory. */
dnnl_status_t nn_mk_qreorder(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                             const dnnl_memory_desc_t *to, float scale, nn_cvt *c);

/* ---- profile (profile.c) ---------------------------------------------------------------- */

double nn_now(void);
/* Account `seconds` of op i's forward (bwd = 0) or backward (1) to the net's profile. */
void nn_profile_add(basira_net *net, const nn_plan *p, int i, int bwd, double seconds);

/* ---- helpers (exec_util.c) ------------------------------------------------------------ */

/* A basira error for a failed oneDNN call in layer `layer`. */
basira_code nn_dn_fail(basira_error *err, dnnl_status_t s, const char *layer);

/* Return a basira error from the enclosing function when a oneDNN call fails
 * (needs `err` and `lname` in scope). */
#define DN(call)                                                                                   \
    do {                                                                                           \
        dnnl_status_t s_ = (call);                                                                 \
        if (s_ != dnnl_success)                                                                    \
            return nn_dn_fail(err, s_, lname);                                                     \
    } while (0)

/* Run a primitive with an array of arguments (needs `stream`, `err`, `lname`). */
#define EXEC(prim, args)                                                                           \
    do {                                                                                           \
        dnnl_status_t s_ =                                                                         \
            dnnl_primitive_execute((prim), stream, (int)(sizeof(args) / sizeof((args)[0])), args); \
        if (s_ != dnnl_success)                                                                    \
            return nn_dn_fail(err, s_, lname);                                                     \
    } while (0)

/* Everything made through these is kept in the plan and released by nn_plan_free(). */
dnnl_status_t nn_keep_pd(nn_plan *p, dnnl_primitive_desc_t pd);
dnnl_status_t nn_mk_pd(nn_plan *p, dnnl_engine_t eng, const void *desc,
                       const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                       dnnl_primitive_desc_t *out);
dnnl_status_t nn_mk_prim(nn_plan *p, const_dnnl_primitive_desc_t pd, dnnl_primitive_t *out);
/* A buffer of at least n floats, 64-byte aligned, for the build of one layer: its
 * contents are gone at the next call. NULL when out of memory. */
float *nn_plan_scratch(nn_plan *p, size_t n);
/* A memory object; alloc = 1: oneDNN allocates it, 0: its handle is set later. */
dnnl_status_t nn_mk_mem(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md, int alloc,
                        dnnl_memory_t *out);
dnnl_status_t nn_mk_mem_at(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md,
                           void *handle, dnnl_memory_t *out);
/* A reorder from one layout to another; accumulate = 1 adds into the destination. */
dnnl_status_t nn_mk_reorder(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                            const dnnl_memory_desc_t *to, int accumulate, dnnl_primitive_t *out);
/* A conversion into layout `to` (none when the layouts are equal). */
dnnl_status_t nn_mk_cvt(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to, nn_cvt *c);
/* Plain (row-major) float descriptor and any-layout descriptor of type dt, nd <= 5. */
void nn_md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims);
void nn_md_any(dnnl_memory_desc_t *md, int nd, const dnnl_dim_t *dims, dnnl_data_type_t dt);

/* The only consumer (layer index) of tensor t, or -1. */
int nn_sole_consumer(const basira_net *net, const nn_plan *p, int t);
int nn_is_act(nn_ltype t);
void nn_act_alg(nn_ltype t, dnnl_alg_kind_t *alg, float *alpha, float *beta);
/* Gradient delivery of an op's diff_src (layout md) into tensor ti. */
basira_code nn_mk_deliver(basira_net *net, nn_plan *p, int ti, const dnnl_memory_desc_t *md,
                          nn_deliver *d, const char *lname, basira_error *err);

/* Run prim with the na arguments of a, plus (opt_arg, opt) when opt is not NULL (a bias,
 * a workspace); a must have room for it. */
basira_code nn_exec(dnnl_primitive_t prim, dnnl_stream_t stream, dnnl_exec_arg_t *a, int na,
                    int opt_arg, dnnl_memory_t opt, const char *lname, basira_error *err);
/* Run a conversion made by nn_mk_cvt(): *used is the converted memory (or from). */
basira_code nn_run_cvt(dnnl_stream_t stream, nn_cvt *c, dnnl_memory_t from, dnnl_memory_t *used,
                       const char *lname, basira_error *err);
/* Send an op's diff_src (written to d->mem) on to its input's gradient. */
basira_code nn_deliver_diff(basira_net *net, nn_plan *p, int ti, nn_deliver *d, const char *lname,
                            basira_error *err);
void nn_add_into(float *g, const float *d, size_t n);
/* Weight (and bias) gradients of a convolution or fully connected layer. */
basira_code nn_backward_weights(basira_net *net, const nn_layer *l, nn_op *op, dnnl_stream_t stream,
                                dnnl_memory_t src, dnnl_memory_t ddst, const char *lname,
                                basira_error *err);

static inline const dnnl_memory_desc_t *qmd(const_dnnl_primitive_desc_t pd, dnnl_query_t what,
                                            int i)
{
    return dnnl_primitive_desc_query_md(pd, what, i);
}

static inline void *mem_ptr(dnnl_memory_t m)
{
    void *h = NULL;
    dnnl_memory_get_data_handle(m, &h);
    return h;
}

/* Number of elements (padding included) of an f32 or bf16 tensor. */
static inline size_t md_elems(const dnnl_memory_desc_t *md)
{
    return dnnl_memory_desc_get_size(md) / (md->data_type == dnnl_bf16 ? 2 : 4);
}

/* bfloat16: the top 16 bits of an IEEE float; rounding to nearest even. */
static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float *param_ptr(basira_net *net, const nn_layer *l, int k)
{
    return net->values + net->params[l->param0 + k].offset;
}

static inline float *grad_ptr(basira_net *net, const nn_layer *l, int k)
{
    return net->grads + net->params[l->param0 + k].offset;
}

#endif
