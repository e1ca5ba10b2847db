/*
 * internal.h - internal interface of the engine shared by its files (net.c, layers,
 * safetensors I/O, optimisers).
 *
 * A net keeps every parameter and buffer tensor in ONE contiguous float allocation
 * and the gradients in a second one with the same layout, so the optimisers, the
 * model writer and zero_grad are single loops over nn_net_numel() floats. Each
 * tensor is described by an nn_param: its name, PyTorch shape and offset.
 *
 * Names follow PyTorch so that a PyTorch state_dict maps by name:
 *   conv:      "<layer>.weight" (O, I/groups, kH, kW), "<layer>.bias" (O) when bias
 *   batchnorm: "<layer>.weight", "<layer>.bias", "<layer>.running_mean",
 *              "<layer>.running_var" (C each; the running stats are not trainable)
 *   fc:        "<layer>.weight" (out, in), "<layer>.bias" (out)
 * where <layer> is the "name" of the layer in the architecture JSON. PyTorch's
 * "num_batches_tracked" is not kept (the engine uses a fixed momentum, 0.1).
 * Parameters are listed in the order of the layers, then in the order above.
 */
#ifndef BASIRA_NN_INTERNAL_H
#define BASIRA_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basira/nn.h"

#define NN_PARAM_NAME_MAX 96

/* One parameter or buffer tensor of a net, in the single contiguous allocation. */
typedef struct nn_param {
    char name[NN_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[4];
    size_t offset; /* in floats, from nn_net_params() / nn_net_grads() */
    size_t numel;
    int decay;     /* 1 for conv/fc weights (weight decay applies), 0 for biases and norms */
    int trainable; /* 0 for batch-norm running statistics (never touched by an optimiser) */
} nn_param;

size_t nn_net_param_count(const basira_net *net);
/* The i-th parameter (i < nn_net_param_count()), or NULL. */
const nn_param *nn_net_param(const basira_net *net, size_t i);
/* The parameter of that name, or NULL. */
const nn_param *nn_net_param_find(const basira_net *net, const char *name);

/* All values, contiguous (nn_net_numel() floats). */
float *nn_net_params(basira_net *net);
const float *nn_net_params_const(const basira_net *net);
/* Gradients, same layout; always 0 for non-trainable entries. Allocated (zeroed) on the
 * first call, so inference-only nets never hold them; NULL when out of memory. */
float *nn_net_grads(basira_net *net);
/* Total number of floats of all parameters and buffers. */
size_t nn_net_numel(const basira_net *net);

/* Metadata object (borrowed, string values). Same as basira_net_metadata(). */
json_t *nn_net_metadata_ref(basira_net *net);

/* The architecture as compact JSON text, malloc'd (free()), or NULL when out of memory. */
char *nn_net_arch_string(const basira_net *net);

/*
 * Call after writing parameter values directly (loading a file, swapping EMA
 * weights): a net prepared for inference re-folds its weights at the next forward.
 * Nets not prepared read the parameters at every forward and need nothing.
 */
void nn_net_params_changed(basira_net *net);

/*
 * State of the net's dropout random generator. Checkpoints save it so that a
 * resumed run draws the same dropout masks as an uninterrupted one.
 */
uint64_t nn_net_rng_state(const basira_net *net);

/* basira_net_new() without drawing initial weights (all zero): for loaders that set every tensor.
 */
basira_code nn_net_new_uninitialised(const char *arch_json, basira_net **out, basira_error *err);
void nn_net_set_rng_state(basira_net *net, uint64_t state);

/*
 * The int8 calibration (quant.c) as a model file stores it, in its metadata: compact JSON
 * text, malloc'd, or NULL with *nomem = 0 when the net has no calibration of its present
 * weights (none made, or the weights changed since), NULL with *nomem = 1 when out of memory.
 */
char *nn_calib_to_json(const basira_net *net, int *nomem);
/* Restore a calibration read from a model file; BASIRA_E_MODEL when it does not fit the net. */
basira_code nn_calib_from_json(basira_net *net, const char *text, basira_error *err);

/* 1 once basira_net_prepare_inference() succeeded (the net can no longer be trained). */
int nn_net_is_prepared(const basira_net *net);
/* The refusal of what needs the values a net gave up (basira_net_release_values). */
basira_code nn_net_released_error(basira_error *err);

#endif
