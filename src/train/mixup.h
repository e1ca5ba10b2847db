/*
 * mixup.h - internal: mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk
 * Minimization") for the training loop: each step trains on convex combinations of
 * pairs of its images, x = lambda x_i + (1 - lambda) x_perm(i), with the loss the same
 * combination of the two labels' losses. One lambda ~ Beta(alpha, alpha) and one
 * permutation per step, drawn from a seed, as the reference implementation does.
 *
 * Why: on a small training set (basira-clinical has about 2,000 photos) it is a
 * regulariser that costs no extra forward pass; the paper reports better calibration
 * and accuracy, and `basira train --mixup ALPHA` lets a recipe measure it.
 */
#ifndef BASIRA_TRAIN_MIXUP_H
#define BASIRA_TRAIN_MIXUP_H

#include <stddef.h>
#include <stdint.h>

/* A draw of Beta(alpha, alpha), alpha > 0 (alpha <= 0: 1, no mixing), from *rng. */
double basira_mixup_lambda(double alpha, uint64_t *rng);

/* A uniformly random permutation of 0..n-1 into perm (Fisher-Yates), from *rng. */
void basira_mixup_perm(int n, uint64_t *rng, int *perm);

/* out_i = lambda x_i + (1 - lambda) x_perm(i) for n inputs of per floats each (out and x
 * must not overlap). */
void basira_mixup_inputs(const float *x, int n, size_t per, const int *perm, double lambda,
                         float *out);

/*
 * The mixed loss: lambda * xent(logits, labels) + (1 - lambda) * xent(logits, labels[perm]),
 * each term basira_softmax_xent() with the same class weights and smoothing. Writes the
 * same combination of the two gradients into dlogits; scratch holds n * k floats and
 * perm_labels n ints. Returns the loss (NAN on bad arguments, as basira_softmax_xent).
 */
float basira_mixup_xent(const float *logits, const int *labels, const int *perm, double lambda,
                        int n, int k, const float *class_weights, float label_smoothing,
                        float *dlogits, float *scratch, int *perm_labels);

#endif
