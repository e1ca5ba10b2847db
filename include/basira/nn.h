/*
 * nn.h - Basira's neural-network engine: convolutional networks trained and run
 * on a CPU, in C, through oneDNN.
 *
 * A network is described as data (an architecture JSON kept in the model file),
 * so a new model loads without recompiling. Parameters live in one contiguous
 * allocation (llm.c style): saving, loading, zeroing gradients are single loops.
 * Model files are safetensors: a JSON header (tensor table + "__metadata__", a
 * map of string to string that holds the architecture and everything a model
 * needs to be used) followed by little-endian float32 tensors, readable by the
 * standard Python `safetensors` package.
 *
 * Layout of all activations at the API: NCHW float32. Labels are int class indices.
 *
 * Thread safety: a basira_net is used by one thread at a time.
 */
#ifndef BASIRA_NN_H
#define BASIRA_NN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_net basira_net;

/* ---- architectures -------------------------------------------------------
 * An architecture JSON looks like
 *   {"family": "resnet", "input": [3, H, W], "num_classes": K,
 *    "layers": [ {"name": "conv1", "type": "conv", "inputs": ["input"], "out_channels": 32,
 *                 "kernel": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1, "bias": false},
 *                {"name": "bn1", "type": "batchnorm", "inputs": ["conv1"]},
 *                {"name": "act1", "type": "relu" | "relu6" | "silu", "inputs": ["bn1"]},
 *                {"type": "maxpool"|"avgpool", "kernel", "stride", "padding"},
 *                {"type": "gap"}, {"type": "fc", "out_features": K}, {"type": "dropout", "p": 0.2},
 *                {"type": "add", "inputs": ["a", "b"]}, {"type": "concat", "inputs": [...]} ],
 *    "output": "<name of the logits layer>"}
 * Layers are listed in topological order; "inputs" defaults to the previous layer.
 */

typedef struct basira_arch_params {
    const char *family; /* "resnet" or "mobilenetv2" */
    int input_size;     /* square input side, e.g. 128 */
    int num_classes;
    int width;          /* channels of the first stage (resnet) / stem (mobilenetv2) */
    int depth;          /* blocks per stage (resnet) or a depth multiplier in tenths (mobilenetv2) */
    double dropout;     /* before the classifier, 0 = none */
} basira_arch_params;

/* Build the architecture JSON of a family. Returns a malloc'd string (free()) or NULL with err. */
char *basira_arch_build(const basira_arch_params *p, basira_error *err);

/* ---- networks ---------------------------------------------------------------- */

/* A new network from an architecture JSON, parameters initialised (He/Kaiming) from seed. */
basira_code basira_net_new(const char *arch_json, uint64_t seed, basira_net **out,
                           basira_error *err);

/* Load a safetensors model file (architecture in its metadata). Hostile files give errors. */
basira_code basira_net_load(const char *path, basira_net **out, basira_error *err);
basira_code basira_net_load_buffer(const void *data, size_t len, basira_net **out,
                                   basira_error *err);

/*
 * Save as safetensors. The file's metadata is the net's metadata map (see below)
 * plus "architecture". Written to a temporary file and renamed: never half a model.
 */
basira_code basira_net_save(const basira_net *net, const char *path, basira_error *err);

void basira_net_free(basira_net *net);

/* Metadata: a JSON object of string values, borrowed; edit it to add keys before saving. */
json_t *basira_net_metadata(basira_net *net);

/* Architecture JSON (borrowed). */
const json_t *basira_net_arch(const basira_net *net);

int basira_net_num_classes(const basira_net *net);
/* Input shape C, H, W. */
void basira_net_input_shape(const basira_net *net, int *c, int *h, int *w);
size_t basira_net_num_params(const basira_net *net);

/*
 * Forward pass on a batch x[n][C][H][W]; writes logits[n][K].
 * train = 1: batch norm uses batch statistics (and updates running ones), dropout
 *            is active, and activations are kept for basira_net_backward().
 * train = 0: inference; batch norm uses running statistics.
 */
basira_code basira_net_forward(basira_net *net, const float *x, int n, int train, float *logits,
                               basira_error *err);

/* Backward pass from dlogits[n][K] of the last training forward; accumulates parameter gradients. */
basira_code basira_net_backward(basira_net *net, const float *dlogits, basira_error *err);

/* Set every gradient to zero. */
void basira_net_zero_grad(basira_net *net);

/* Global L2 norm of the gradients; if max_norm > 0 and the norm exceeds it, scale them down. */
double basira_net_clip_grad(basira_net *net, double max_norm);

/*
 * Prepare a network for fast repeated inference at batch size up to max_batch:
 * batch norm folded into the convolutions, activations fused, buffers reused.
 * After this the network can no longer be trained.
 */
basira_code basira_net_prepare_inference(basira_net *net, int max_batch, basira_error *err);

/* Number of threads the engine uses (oneDNN / OpenMP). 0 = all cores. */
void basira_nn_set_threads(int n);

/* ---- loss ---------------------------------------------------------------------- */

/*
 * Mean softmax cross-entropy over n rows of K logits with optional class weights
 * (NULL = all 1; the mean is weighted by the weights of the labels, as PyTorch)
 * and label smoothing in [0, 1). Writes dlogits (d loss / d logits) when not NULL
 * and probabilities when probs is not NULL. Returns the loss.
 */
float basira_softmax_xent(const float *logits, const int *labels, int n, int k,
                          const float *class_weights, float label_smoothing, float *dlogits,
                          float *probs);

/* Row-wise softmax with temperature T (> 0): probs = softmax(logits / T). */
void basira_softmax(const float *logits, int n, int k, float temperature, float *probs);

/* ---- optimisers ------------------------------------------------------------------ */

typedef enum basira_optim_kind { BASIRA_OPTIM_SGD, BASIRA_OPTIM_ADAMW } basira_optim_kind;

typedef struct basira_optim_config {
    basira_optim_kind kind;
    double momentum;     /* SGD */
    int nesterov;        /* SGD */
    double beta1, beta2; /* AdamW, defaults 0.9 / 0.999 when 0 */
    double eps;          /* AdamW, default 1e-8 when 0 */
    double weight_decay; /* decoupled for AdamW, L2 for SGD; not applied to biases and norms */
    double ema_decay;    /* 0 = no exponential moving average of the weights */
} basira_optim_config;

typedef struct basira_optim basira_optim;

basira_code basira_optim_new(basira_net *net, const basira_optim_config *cfg, basira_optim **out,
                             basira_error *err);
void basira_optim_free(basira_optim *opt);
/* One update with learning rate lr from the accumulated gradients (then zeroes them). */
basira_code basira_optim_step(basira_optim *opt, double lr, basira_error *err);
/*
 * Exchange the EMA weights and the net's weights (for evaluation/saving); no-op
 * without EMA. Call it again to put the training weights back: basira_optim_step()
 * and basira_checkpoint_save() refuse to run while the EMA weights are swapped in.
 */
basira_code basira_optim_swap_ema(basira_optim *opt, basira_error *err);

/* Learning-rate schedules: step in [0, total). */
typedef enum basira_schedule { BASIRA_SCHED_CONSTANT, BASIRA_SCHED_COSINE, BASIRA_SCHED_ONECYCLE } basira_schedule;
double basira_lr_at(basira_schedule s, double base_lr, long step, long total, long warmup);

/*
 * Checkpoints for `basira train --resume`: net + optimiser state + a JSON of training
 * state, in one safetensors file written atomically. Tensors: the net's, then
 * "optim.momentum.<p>" (SGD) or "optim.exp_avg.<p>" and "optim.exp_avg_sq.<p>"
 * (AdamW) for trainable params, and "ema.<p>" for all; metadata "optim" (settings
 * and step count, JSON) and "train_state" (the caller's JSON object: epoch, step,
 * RNG state, best metric...). opt may be NULL (no optimiser saved); train_state
 * NULL saves {}. Saving refuses while EMA weights are swapped in.
 * Loading gives a new net, a new optimiser bound to it (*opt = NULL when the file
 * has none; pass opt = NULL to ignore it) and the training state (new reference;
 * pass NULL to ignore it). A resumed run continues bit for bit.
 */
basira_code basira_checkpoint_save(const basira_net *net, const basira_optim *opt,
                                   const json_t *train_state, const char *path, basira_error *err);
basira_code basira_checkpoint_load(const char *path, basira_net **net, basira_optim **opt,
                                   json_t **train_state, basira_error *err);

/* ---- identity ------------------------------------------------------------------ */

/*
 * SHA-256 of a file as 64 lowercase hex digits (+ NUL). A model file's hash is its
 * identity: results and audit records name the exact model that produced them.
 */
basira_code basira_file_sha256(const char *path, char hex[65], basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
