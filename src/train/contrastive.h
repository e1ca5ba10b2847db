/*
 * contrastive.h - internal: self-supervised pretraining for `basira train --contrastive`
 * (SimCLR: Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
 * Representations"). Each step shows the network two augmented views of each of its
 * batch/2 photos; the loss (NT-Xent) pulls the two views of a photo together and pushes
 * them away from the views of every other photo of the step. No label is used.
 *
 * Why: a clinic has many more photos than labelled ones, and its photos differ from the
 * public data sets a model was trained on. Pretraining on them, labels unused, and then
 * fine-tuning (`--init-from`) is the usual remedy the literature gives for small labelled
 * sets (issue 11 asks for it to be measured).
 */
#ifndef BASIRA_TRAIN_CONTRASTIVE_H
#define BASIRA_TRAIN_CONTRASTIVE_H

#include <stddef.h>

/* Floats of the workspace basira_ntxent() needs for n embeddings of d floats. */
static inline size_t basira_ntxent_work_floats(int n, int d)
{
    return (size_t)n * (size_t)d + (size_t)n * (size_t)n + (size_t)n;
}

/*
 * NT-Xent of n = 2m embeddings z[n][d], where rows i and i + m are the two views of one
 * photo: with u_i = z_i / |z_i| and s_ij = u_i . u_j / tau,
 *     loss = 1/n sum_i ( -s_{i,p(i)} + log sum_{j != i} exp(s_ij) ),   p(i) = (i + m) mod n.
 * Writes d loss / d z into dz (n x d) when not NULL; work holds
 * basira_ntxent_work_floats(n, d) floats. Returns the loss; NAN when n is odd or under 4,
 * d < 1, tau not in (0, 10], or an embedding is not finite.
 */
float basira_ntxent(const float *z, int n, int d, float tau, float *dz, float *work);

#endif
