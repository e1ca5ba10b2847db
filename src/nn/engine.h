/*
 * engine.h - private to the engine's core (net.c, exec.c, arch.c): the parsed
 * network graph and its execution plans. Other files of src/nn use internal.h.
 */
#ifndef BASIRA_NN_ENGINE_H
#define BASIRA_NN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nn/internal.h"

/* Limits that keep a hostile architecture from asking for absurd work or memory. */
#define NN_MAX_LAYERS 4096
#define NN_MAX_INPUTS 64
#define NN_MAX_CHANNELS 16384
#define NN_MAX_SIDE 4096
#define NN_MAX_KERNEL 64
#define NN_MAX_CLASSES 100000
#define NN_MAX_PARAMS ((size_t)1 << 28)         /* floats (1 GiB) */
#define NN_MAX_ACT_PER_SAMPLE ((size_t)1 << 27) /* floats of activations per sample */
#define NN_LAYER_NAME_MAX 64
#define NN_BN_EPS 1e-5f
#define NN_BN_MOMENTUM 0.1f

typedef enum nn_ltype {
    NN_CONV,
    NN_BN,
    NN_RELU,
    NN_RELU6,
    NN_SILU,
    NN_MAXPOOL,
    NN_AVGPOOL,
    NN_GAP,
    NN_FC,
    NN_DROPOUT,
    NN_ADD,
    NN_CONCAT,
} nn_ltype;

/*
 * One layer. Tensors are numbered 0 = the network input, i + 1 = the output of
 * layer i, so inputs[] holds tensor numbers and layer i writes tensor i + 1.
 */
typedef struct nn_layer {
    char name[NN_LAYER_NAME_MAX];
    nn_ltype type;
    int ninputs;
    int inputs[NN_MAX_INPUTS];
    int c, h, w;                /* output shape of one sample */
    int out_ch;                 /* conv out_channels, fc out_features */
    int kh, kw, sh, sw, ph, pw; /* conv and pooling */
    int dh, dw, groups;         /* conv */
    int bias;                   /* conv, fc */
    float p;                    /* dropout */
    int flat;                   /* output is 2-D (N, C): after a fully connected layer */
    int param0;                 /* index of its first nn_param, -1 when it has none */
} nn_layer;

typedef struct nn_plan nn_plan;

struct basira_net {
    json_t *arch; /* owned */
    json_t *meta; /* owned, object of strings */
    int in_c, in_h, in_w, num_classes;
    int nlayers;
    nn_layer *layers;
    int output; /* tensor number of the logits */
    size_t nparams;
    nn_param *params;
    size_t numel;
    float *values; /* numel floats, 64-byte aligned; NULL once released (values_released) */
    float *grads;
    uint64_t rng; /* dropout masks */
    void *eng;    /* dnnl_engine_t, created lazily */
    void *stream; /* dnnl_stream_t */
    nn_plan *plan_train;
    nn_plan *plan_eval;
    int train_ready; /* the last forward was a training forward: backward may run */
    int train_bf16;  /* training forwards and backwards run in bf16 (fp32 master weights) */
    int infer_bf16;  /* prepared inference runs in bf16 (basira_net_set_inference_precision) */
    int infer_int8;  /* prepared inference runs its convolutions in int8 (quant.c) */
    int calib_on;    /* the forward running records activation ranges (basira_net_calibrate) */
    int calibrated;  /* act_max / act_min hold calibration statistics */
    int calib_stale; /* parameters changed since: the ranges are not saved, and the next
                        basira_net_calibrate() starts them afresh */
    float *act_max;  /* per tensor (nlayers + 1): largest |value| seen in calibration */
    float *act_min;  /* per tensor: smallest value seen */
    basira_layer_profile *prof; /* nlayers entries while profiling (profile.c), else NULL */
    int prof_on;
    int prepared;
    int prepared_stale;  /* parameters changed since the folded weights were made */
    int values_released; /* basira_net_release_values(): only the prepared plan is left */
};

/* Parse and check an architecture (net.c). Fills the graph fields of net. */
basira_code nn_parse_arch(basira_net *net, const json_t *arch, basira_error *err);

/* Execution (exec.c). */
void nn_plan_free(nn_plan *p);
void nn_exec_release(basira_net *net);
uint64_t nn_rng_next(uint64_t *state);

#endif
