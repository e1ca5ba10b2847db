/*
 * optim_internal.h - internal: the optimisers' update rules on plain arrays and the
 * access the checkpoint code (io.c) needs to an optimiser's state.
 *
 * The update rules are separate functions over float arrays so that the tests can
 * compare them with PyTorch on fixed tensors without building a network.
 */
#ifndef BASIRA_NN_OPTIM_INTERNAL_H
#define BASIRA_NN_OPTIM_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "basira/nn.h"

/* cfg with the documented defaults filled in (beta1/beta2/eps when 0). */
basira_optim_config nn_optim_config_defaults(const basira_optim_config *cfg);

/*
 * One update of n parameters p from gradients g, as torch.optim.SGD / AdamW (1.13)
 * do it. step is the 1-based number of this update (AdamW's bias correction).
 * state0 is the momentum buffer (SGD, NULL when momentum is 0) or exp_avg (AdamW);
 * state1 is exp_avg_sq (AdamW). decay = 0 turns weight decay off for these values.
 * cfg must have its defaults filled (nn_optim_config_defaults).
 */
void nn_optim_update(const basira_optim_config *cfg, long step, double lr, float *p, const float *g,
                     float *state0, float *state1, size_t n, int decay);

/* ema = d * ema + (1 - d) * w over n values. */
void nn_ema_update(float *ema, const float *w, size_t n, double d);

/* State arrays of an optimiser, each nn_net_numel() floats laid out like the params. */
typedef struct nn_optim_state {
    const char *name; /* tensor prefix in checkpoints: "optim.momentum", "optim.exp_avg", ... */
    float *data;
    int trainable_only; /* 1: only entries of trainable params are meaningful */
} nn_optim_state;

/* Up to 3 state arrays (momentum or exp_avg + exp_avg_sq, ema); returns how many. */
int nn_optim_states(basira_optim *opt, nn_optim_state out[3]);

basira_net *nn_optim_net(const basira_optim *opt);
const basira_optim_config *nn_optim_config(const basira_optim *opt);
long nn_optim_step_count(const basira_optim *opt);
void nn_optim_set_step_count(basira_optim *opt, long step);
/* 1 while the EMA weights are swapped into the net. */
int nn_optim_ema_swapped(const basira_optim *opt);

/* {"kind": "sgd"|"adamw", "momentum": .., ..., "step": n}: new reference or NULL. */
json_t *nn_optim_to_json(const basira_optim *opt);
/* Inverse of nn_optim_to_json (config and step); BASIRA_E_MODEL when malformed. */
basira_code nn_optim_config_from_json(const json_t *j, basira_optim_config *cfg, long *step,
                                      basira_error *err);

#endif
