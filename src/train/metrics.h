/* metrics.h - internal: the validation figures printed and logged after each epoch. */
#ifndef BASIRA_TRAIN_METRICS_H
#define BASIRA_TRAIN_METRICS_H

#include <stddef.h>

#include "basira/train.h"

typedef struct train_metrics {
    double loss;              /* mean cross-entropy, no smoothing, no weights */
    double accuracy;          /* share of correct top-1 predictions */
    double balanced_accuracy; /* mean recall over the classes present */
    double auc;               /* malignant vs benign ROC AUC; NAN when not defined */
    int k;
    double recall[BASIRA_MAX_CLASSES]; /* NAN for a class with no example */
    size_t support[BASIRA_MAX_CLASSES];
    size_t n;
} train_metrics;

/*
 * Figures from probabilities probs[n][k] and labels. malignant[k] (or NULL)
 * flags the classes summed into the malignant score for the AUC.
 */
void train_metrics_compute(const float *probs, const int *labels, size_t n, int k,
                           const int *malignant, double loss, train_metrics *m);

/*
 * ROC AUC of score for positive vs the rest (Mann-Whitney U, ties counted half).
 * NAN when either side is empty. Needs n doubles + n size_t of scratch, allocated inside;
 * returns NAN when out of memory.
 */
double train_auc(const double *score, const int *positive, size_t n);

#endif
