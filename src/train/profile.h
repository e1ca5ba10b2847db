/*
 * profile.h - `basira train --profile`: where the time of the training steps goes,
 * phase by phase (forward, loss, backward, optimiser, data preparation, data wait)
 * and, from the engine's profile, layer by layer.
 */
#ifndef BASIRA_TRAIN_PROFILE_H
#define BASIRA_TRAIN_PROFILE_H

#include <stdio.h>

#include "basira/nn.h"

typedef struct train_phases {
    long steps, images;
    double forward, loss, backward, optimiser; /* seconds on the training thread */
    double prepare;                            /* augmentation + preprocessing (worker thread) */
    double wait; /* the training thread waiting for the next batch: the data starved it */
} train_phases;

void train_phases_add(train_phases *ph, double forward, double loss, double backward,
                      double optimiser, double prepare, double wait, int batch);

/* Print the phases, then the engine's per-layer table against the peak of `threads` cores. */
void train_profile_print(FILE *f, const basira_net *net, const train_phases *ph, int threads);

#endif
