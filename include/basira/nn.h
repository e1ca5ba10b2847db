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
#include <stdio.h>

#include <jansson.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_net basira_net;

/* ---- architectures -------------------------------------------------------
 * An architecture is a JSON object:
 *   {"family": "resnet",            (informative)
 *    "input": [C, H, W],            channels 1..16384, sides 1..4096
 *    "num_classes": K,              1..100000
 *    "layers": [ {...}, ... ],      1..4096 layers, in topological order
 *    "output": "<layer name>"}      its output must be K x 1 x 1 (the logits)
 * Every layer has "type" and "name" (unique, 1..63 characters, not "input";
 * default "layer<i>"; parameters are named "<name>.weight" etc., PyTorch style:
 * conv weight (O, I/groups, kH, kW), fc weight (out, in), batch norm weight, bias,
 * running_mean, running_var). "inputs" is a list of names of EARLIER layers or
 * "input"; it defaults to the previous layer (the image for the first), so a graph
 * can never have a cycle. Types and their fields (integers unless said):
 *   "conv"       out_channels, kernel, stride (1), padding (0), dilation (1),
 *                groups (1; = channels for depthwise), bias (true). kernel, stride,
 *                padding and dilation may be [h, w]. Output size as PyTorch (floor).
 *   "batchnorm"  eps 1e-5, momentum 0.1 (fixed, PyTorch defaults); running variance
 *                updated with the unbiased batch variance.
 *   "relu", "relu6", "silu"
 *   "maxpool", "avgpool"  kernel, stride (= kernel), padding (0, at most kernel/2);
 *                avgpool counts the padding (PyTorch count_include_pad=True).
 *   "gap"        global average pooling to C x 1 x 1.
 *   "fc"         out_features, bias (true); on a C x H x W input it flattens NCHW
 *                (PyTorch's flatten), so weight is (out, C*H*W).
 *   "dropout"    p in [0, 1) (0.5): inverted dropout, identity outside training.
 *   "add"        two or more inputs of the same shape.
 *   "concat"     two or more inputs of the same H x W, along channels.
 * After an fc only fc, relu, relu6, silu, dropout and add may follow. Anything
 * else (unknown type, wrong field type or range, undefined input, shapes that do
 * not fit, more than 2^28 parameters or 2^27 activations per sample) gives
 * BASIRA_E_MODEL with a message naming the layer.
 */

typedef struct basira_arch_params {
    const char *family; /* "resnet" or "mobilenetv2" */
    int input_size;     /* input width (and height when input_height is 0), e.g. 128 */
    int input_height;   /* input height for a non-square input (160 x 120 keeps 4:3); 0 = square */
    int num_classes;
    int width;      /* channels of the first stage (resnet) / stem (mobilenetv2) */
    int depth;      /* blocks per stage (resnet) or a depth multiplier in tenths (mobilenetv2) */
    double dropout; /* before the classifier, 0 = none */
} basira_arch_params;

/*
 * Build the architecture JSON of a family. Returns a malloc'd string (free()) or NULL with err.
 * Layer names are torchvision's, so the same model built in PyTorch has the same state_dict keys.
 *   resnet (input sides 8..1024, width 1..512, depth 1..16): stem conv3x3 (stride 2 when
 *     the shorter input side >= 96, else 1) + BN + ReLU ("conv1", "bn1"), no max pool; four stages
 *     "layer1".."layer4" of `depth` BasicBlocks with widths w, 2w, 4w, 8w, stride 2 at the
 *     start of stages 2-4, 1x1 conv + BN projection ("layerS.B.downsample.0/1") when the
 *     shape changes; then "avgpool" (gap), "dropout" (when dropout > 0), "fc".
 *   mobilenetv2 (input sides 32..1024, depth 1..40 tenths, 10 = standard): torchvision's
 *     MobileNetV2 with width_mult = width / 32 (channels rounded to multiples of 8), blocks per
 *     stage ceil(n * depth / 10); "features.*", "avgpool", "classifier.0" (dropout),
 *     "classifier.1" (fc). width 32, depth 10, 1000 classes = torchvision's 3,504,872 params.
 */
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

/*
 * Ensembles: up to BASIRA_NET_MAX_MEMBERS nets of the same input shape and outputs in one
 * model file, whose predictions the classifier averages (`basira ensemble`). Member 0 is
 * stored exactly as basira_net_save() stores one net and carries the file's metadata map;
 * the others are under "member<i>." names. basira_net_load() refuses an ensemble file
 * (BASIRA_E_MODEL, naming the count), so that nothing takes one member for the whole model
 * by accident; basira_net_load_ensemble() reads any model file,
 * a single net giving *n = 1. nets has room for BASIRA_NET_MAX_MEMBERS; on failure every
 * entry is NULL. Members that disagree in input shape or outputs are BASIRA_E_MODEL.
 */
#define BASIRA_NET_MAX_MEMBERS 8
basira_code basira_net_save_ensemble(const basira_net *const *nets, int n, const char *path,
                                     basira_error *err);
basira_code basira_net_load_ensemble(const char *path, basira_net **nets, int *n,
                                     basira_error *err);
basira_code basira_net_load_ensemble_buffer(const void *data, size_t len, basira_net **nets, int *n,
                                            basira_error *err);
/* Free nets[0..n-1] and set them to NULL. */
void basira_net_free_ensemble(basira_net **nets, int n);
/*
 * The network to start training or adaptation from (--init-from, `basira adapt --from`):
 * a single net's file as basira_net_load(), or an ensemble's member 0, the network of the
 * ensemble's first training run. The whole file is checked as basira_net_load_ensemble()
 * does; *members (may be NULL) is the file's network count, so the caller can say that
 * one network of several was taken.
 */
basira_code basira_net_load_first(const char *path, basira_net **out, int *members,
                                  basira_error *err);

/* Metadata: a JSON object of string values, borrowed; edit it to add keys before saving. */
json_t *basira_net_metadata(basira_net *net);
/*
 * The metadata key of the weights' storage in a saved file: "F16" stores every tensor in
 * half precision (the file is half the size; each weight rounded to nearest even, about 3
 * significant digits), except a tensor with a value beyond 65504, which stays F32; "F32" or
 * no key: F32. Set on member 0 of what is saved. A loaded file keeps the key, so saving it
 * again (calibrate, quantize, ensemble) keeps its storage; checkpoints are always F32.
 */
#define BASIRA_NET_META_STORAGE "storage"

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

/*
 * Backward pass from dlogits[n][K] of the last training forward; accumulates parameter
 * gradients. Once per training forward: a second call, or one after an eval forward,
 * gives BASIRA_E_INVALID_ARGUMENT. The primitives and buffers of a batch size are built
 * at the first forward with it and reused while it stays the same.
 */
basira_code basira_net_backward(basira_net *net, const float *dlogits, basira_error *err);

/* Set every gradient to zero. */
void basira_net_zero_grad(basira_net *net);

/* Global L2 norm of the gradients; if max_norm > 0 and the norm exceeds it, scale them down. */
double basira_net_clip_grad(basira_net *net, double max_norm);

/*
 * Prepare a network for fast repeated inference at batch size up to max_batch:
 * batch norm folded into the convolutions, the residual add and the activation that
 * follow fused as oneDNN post-ops, dropout removed, activation buffers shared by
 * layers whose lifetimes do not overlap. Outputs equal eval mode within 1e-4.
 * Forwards at another batch size rebuild the plan (cheap: oneDNN caches primitives).
 * After this the network can no longer be trained (training forwards are refused).
 */
basira_code basira_net_prepare_inference(basira_net *net, int max_batch, basira_error *err);

/*
 * After basira_net_prepare_inference() and once its plan is built (by the prepare itself,
 * or by the first forward after a change of inference precision), give up the net's
 * float32 copy of its parameters: the prepared plan keeps its own. Forwards in the
 * prepared precision at the prepared batch size, and basira_net_calibrate() in fp32, go
 * on as before; whatever would need a new plan or the parameters (another precision or
 * batch size, basira_net_prepare_inference() again, training, saving) is refused with
 * BASIRA_E_INVALID_ARGUMENT, and the plan is kept. BASIRA_E_INVALID_ARGUMENT too when the
 * net is not prepared or its plan not built; releasing twice is a no-op.
 */
basira_code basira_net_release_values(basira_net *net, basira_error *err);
/*
 * basira_net_prepare_inference() then basira_net_release_values(), with a lower peak:
 * in fp32 each layer's float32 parameters are given back to the system as soon as the
 * plan holds them, so the build holds one copy of the weights plus one layer's instead
 * of two copies (MobileNetV2 at 128 px: 8.7 MB less at the peak). In bf16 and int8 the
 * values are released once the whole plan is built, as a layer without a bf16 or int8
 * kernel sends the net back to fp32, which needs them. On failure with part of the
 * values already given back, the net has neither plan nor values: its forwards are
 * refused (basira_net_values_released() says 1) and it can only be freed; otherwise it
 * is as after a failed basira_net_prepare_inference().
 */
basira_code basira_net_prepare_inference_lean(basira_net *net, int max_batch, basira_error *err);
/* 1 after basira_net_release_values() (or a lean prepare). */
int basira_net_values_released(const basira_net *net);

/*
 * Precision of training (basira_net_forward with train = 1, and backward).
 *   FP32  everything in float32 (the default; bit for bit reproducible).
 *   BF16  mixed precision: activations, their gradients and the weights handed to
 *         the convolutions and fc layers in bfloat16 through oneDNN's bf16 kernels
 *         (AVX-512 BF16 / AMX); the master weights, their gradients, batch-norm
 *         statistics and the optimiser state stay float32. Refused
 *         (BASIRA_E_UNSUPPORTED) on a processor without bf16 instructions.
 *   AUTO  BF16 where the processor has bf16 instructions, FP32 elsewhere.
 * A net whose layers oneDNN cannot run in bf16 falls back to FP32 at its first
 * training forward; basira_net_precision() then says FP32. Evaluation always runs in
 * float32; prepared inference in the precision set below.
 */
typedef enum basira_precision {
    BASIRA_PRECISION_FP32,
    BASIRA_PRECISION_BF16,
    BASIRA_PRECISION_AUTO,
    BASIRA_PRECISION_INT8 /* prepared inference only, after basira_net_calibrate() */
} basira_precision;
basira_code basira_net_set_precision(basira_net *net, basira_precision precision,
                                     basira_error *err);
/* The precision training runs in now (FP32 or BF16). */
basira_precision basira_net_precision(const basira_net *net);

/*
 * Precision of prepared inference (basira_net_prepare_inference; evaluation-mode
 * forwards of a net not prepared always run in float32).
 *   FP32  the default: float32 throughout.
 *   BF16  activations and the folded weights in bfloat16 through oneDNN's AVX-512 BF16 /
 *         AMX kernels, accumulation, bias and logits in float32: about 1.6x faster at
 *         batch 1 on AVX-512 BF16, logits within about 1% (use it only for a model whose
 *         accuracy in bf16 was measured). Refused (BASIRA_E_UNSUPPORTED) on a processor
 *         without bf16 instructions.
 *   AUTO  BF16 where the processor has bf16 instructions, FP32 elsewhere.
 * May be called before or after basira_net_prepare_inference(); a net whose layers oneDNN
 * cannot run in bf16 falls back to FP32 when its plan is built, and
 * basira_net_inference_precision() then says FP32.
 */
basira_code basira_net_set_inference_precision(basira_net *net, basira_precision precision,
                                               basira_error *err);
basira_precision basira_net_inference_precision(const basira_net *net);

/*
 * int8 post-training quantisation. basira_net_calibrate() runs n inputs x (NCHW) through
 * the net prepared for inference, in fp32, and records the range of every tensor between
 * fused layers (call it several times to add batches: the ranges grow). Then
 * basira_net_set_inference_precision(net, BASIRA_PRECISION_INT8) runs every convolution
 * except the depthwise (grouped) ones in 8-bit integers (inputs u8 after a ReLU else s8, one scale
 * per tensor from its range; weights s8 with one scale per output channel; accumulation in s32,
 * bias, residual sum and activation in float32) through oneDNN's int8 kernels, VNNI where the
 * processor has it; the other layers stay float32. Refused before calibration; a net whose
 * convolutions oneDNN cannot run in int8 falls back to fp32 (the precision then says FP32).
 * Measure the accuracy of a model in int8 before using it. basira_net_save() keeps the ranges
 * in the model file (metadata "int8_calibration") and a load restores them, so a model
 * calibrated once can be set to int8 at load without its calibration images; ranges of
 * weights changed since the calibration (an EMA swap, a reload into the net) are not saved,
 * and the next basira_net_calibrate() starts them afresh.
 */
basira_code basira_net_calibrate(basira_net *net, const float *x, int n, basira_error *err);
/* 1 when the net has int8 ranges (from basira_net_calibrate() or a file that kept them). */
int basira_net_int8_calibrated(const basira_net *net);
/* 1 when the processor has 8-bit dot-product instructions (AVX-512 VNNI / AVX-VNNI). */
int basira_nn_int8_fast(void);
/* 1 when the processor has native bf16 arithmetic (as oneDNN sees it). */
int basira_nn_bf16_supported(void);

/* ---- profile ------------------------------------------------------------------------
 * Where the time of forward and backward passes goes, layer by layer. While
 * profiling is on, every op's wall time is accumulated with its arithmetic (FLOP)
 * and an estimate of the bytes it moves (activations read and written, weights);
 * an op that absorbed the layers after it (batch norm + ReLU in training; conv +
 * batch norm + add + activation in prepared inference) counts under its first layer.
 */
typedef struct basira_layer_profile {
    char name[64];
    const char *type; /* "conv", "batchnorm", ... (static string) */
    int fused;        /* layers absorbed into this one */
    long fwd_calls, bwd_calls;
    double fwd_s, bwd_s;       /* seconds */
    double fwd_flop, bwd_flop; /* total FLOP (multiply + add = 2) */
    double fwd_bytes, bwd_bytes;
} basira_layer_profile;

/* Start (on = 1) or pause (0) accumulating; BASIRA_E_NOMEM when it cannot start. */
basira_code basira_net_profile_enable(basira_net *net, int on, basira_error *err);
void basira_net_profile_reset(basira_net *net);
/* The profile of every layer that ran (up to max entries copied); returns how many there are. */
size_t basira_net_profile(const basira_net *net, basira_layer_profile *out, size_t max);

/* The processor's limits for the roofline: peak FLOP/s of `threads` cores in fp32
 * (AVX-512/AVX2 FMA) and in bf16 (AMX or AVX-512 BF16, = fp32 without them), from the
 * instruction set oneDNN uses and the nominal clock; memory bandwidth measured now
 * (a short parallel copy of 2 x 64 MiB). */
typedef struct basira_nn_peak {
    double fp32_flops, bf16_flops, bytes_per_s, ghz;
    const char *isa; /* oneDNN's name of the instruction set */
} basira_nn_peak;
basira_code basira_nn_peak_measure(int threads, basira_nn_peak *out, basira_error *err);

/*
 * Print the profile as a table: per layer forward and backward milliseconds per call,
 * share of the time, achieved GFLOP/s, percentage of peak, and whether the layer is
 * bound by compute or memory on the roofline (arithmetic intensity against the
 * machine's FLOP per byte). bf16 = 1 judges against the bf16 peak. Layers under
 * 0.5% of the time are summed in one line.
 */
void basira_net_profile_print(const basira_net *net, const basira_nn_peak *peak, int bf16, FILE *f);

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
typedef enum basira_schedule {
    BASIRA_SCHED_CONSTANT,
    BASIRA_SCHED_COSINE,
    BASIRA_SCHED_ONECYCLE
} basira_schedule;
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
