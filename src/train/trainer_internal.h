/*
 * trainer_internal.h - the state of one `basira train` run, shared by the
 * training loop (trainer.c) and the documents it writes (document.c).
 */
#ifndef BASIRA_TRAIN_TRAINER_INTERNAL_H
#define BASIRA_TRAIN_TRAINER_INTERNAL_H

#include "basira/model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "train/dataset.h"
#include "train/metrics.h"
#include "train/profile.h"
#include "train/progress.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* ---- the trainer ------------------------------------------------------------------ */

typedef struct trainer {
    const basira_train_options *o;
    train_dataset ds;
    basira_preprocess pp;
    basira_net *net;
    basira_optim *opt;
    int k;
    int out;          /* the network's outputs: k, or --proj-dim with --contrastive */
    size_t in_floats; /* floats of one input tensor */
    int batch;        /* images per step */
    int photos;       /* photos per step: batch, or batch / 2 (two views each) with --contrastive */
    long steps;       /* steps per epoch */
    long total_steps, warmup_steps;
    float weights[BASIRA_MAX_CLASSES];
    int use_weights;
    int malignant[BASIRA_MAX_CLASSES];
    float *x[2];
    int *y[2];
    uint8_t *rgb[2];
    float *logits, *dlogits, *probs;
    /* --mixup: the blended inputs, the second label's gradient and the step's pairing */
    float *mix_x, *mix_dlogits;
    int *mix_perm, *mix_labels;
    float *ntx_work; /* --contrastive: basira_ntxent()'s workspace */
    int *labels_all;
    size_t *order; /* this epoch's sample order: positions in the training items */
    double *cum;   /* class-balanced sampler */
    FILE *log;
    train_progress prog;
    json_t *history; /* array of epoch objects */
    json_t *config;  /* what must match for --resume */
    int start_epoch;
    long global_step;
    double best;
    int best_epoch;
    char date[32];
    double train_seconds;
    double data_wait; /* seconds the engine waited for the next batch, this epoch */
    double cpu0;      /* process CPU time at the start of the epoch */
    double train_cpu; /* CPU seconds of this epoch's training steps (all threads) */
    long train_images;
    basira_freeze *frozen; /* `basira adapt --freeze`: stages kept as the parent's */
    train_phases ph;       /* --profile: this epoch's phases */
} trainer;

/* The checks of the options before anything is read; options.c. */
basira_code train_check_options(const basira_train_options *o, basira_error *err);

/* The options that must be the same to continue a run exactly; options.c. */
json_t *train_config_json(const trainer *t);

/* Salt of the seeds of --augment shift's clinic shifts, apart from the augmentation's own. */
#define TRAIN_SHIFT_SALT 0x5348494654ULL

/* One augmented view of training item `item` (the augmentation drawn from aug_seed, the
 * clinic shift of --augment shift from shift_seed) into rgb (input-sized work buffer) and
 * x (the network's input, preprocessed as in inference). contrastive.c. */
basira_code train_view(const trainer *t, size_t item, uint64_t aug_seed, uint64_t shift_seed,
                       uint8_t *rgb, float *x, basira_error *err);

/* --contrastive: the mean NT-Xent loss of net on a part (validation or test), two views per
 * photo fixed by the seed, so that epochs compare; NAN when the part has under 2 photos.
 * contrastive.c. */
basira_code train_contrastive_loss(trainer *t, basira_net *net, int part, double *loss,
                                   basira_error *err);

/* The network's architecture family: the parent's with --init-from, else --arch. */
static inline const char *train_arch_family(const trainer *t)
{
    const char *f = json_string_value(json_object_get(basira_net_arch(t->net), "family"));
    return f ? f : t->o->arch;
}

static inline json_t *jnum(double v)
{
    /* JSON has no NaN: an undefined figure (e.g. AUC without malignant cases) is null. */
    return isfinite(v) ? json_real(v) : json_null();
}

/* One part's figures as JSON: n, loss, accuracy, balanced accuracy, AUC, recall per class. */
json_t *train_metrics_json(const trainer *t, const train_metrics *m);

/* The split's sizes, groups and fractions. */
json_t *train_split_json(const trainer *t);

/* The "basira" metadata document of the model after epoch (val: its validation figures, or NULL).
 */
json_t *train_model_document(const trainer *t, int epoch, const train_metrics *val);

/* Set the model's "basira" metadata document (classes, preprocessing, provenance). */
basira_code train_set_model_metadata(trainer *t, int epoch, const train_metrics *val,
                                     basira_error *err);

#endif
