/*
 * train.h - `basira train`: training an image classifier from a folder of images
 * and a CSV file, and the data pipeline behind it.
 *
 * The pieces are public so that other tools (evaluation, calibration, a site
 * retraining on its own photos) use the very same CSV reader, split and class list:
 *
 *   basira_csv         the strict RFC 4180 reader for untrusted CSV files (basira/csv.h)
 *   basira_split_*     deterministic split BY GROUP (lesion/patient), stratified by label
 *   basira_classes     the class list: order, display names, malignant flag
 *   basira_augment_*   on-the-fly augmentation of packed RGB for dermoscopy
 *   basira_train_run   the whole training run (see basira_train_options)
 */
#ifndef BASIRA_TRAIN_H
#define BASIRA_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "basira/csv.h"
#include "basira/error.h"
#include "basira/nn.h"
#include "basira/rgb.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- split by group ---------------------------------------------------------------- */

enum { BASIRA_PART_TRAIN = 0, BASIRA_PART_VAL = 1, BASIRA_PART_TEST = 2 };

/*
 * Assign each of n items to a part (train/val/test) so that:
 *   - all items of one group go to the same part (group[i] in [0, n_groups));
 *     pass group NULL to make every item its own group;
 *   - every label stratum (label[i] in [0, n_labels); a group takes the most
 *     common label of its items) is shared between the parts in proportions
 *     fractions[3] (summing to 1) as closely as whole groups allow;
 *   - the result depends only on the inputs and the seed.
 * part[i] receives BASIRA_PART_*.
 */
basira_code basira_split_groups(size_t n, const int *label, int n_labels, const int *group,
                                int n_groups, const double fractions[3], uint64_t seed, int *part,
                                basira_error *err);

/* Parse "0.70,0.15,0.15" (three non-negative numbers summing to 1 within 1e-6). */
/*
 * The rows a run uses: all, or with limit > 0 a seeded random subset of limit rows,
 * in file order. rows has room for nrows; returns the number used.
 */
size_t basira_split_select_rows(size_t nrows, long limit, uint64_t seed, size_t *rows);

/*
 * Split rows[0..n) of csv by the group column gc (-1: every row its own group),
 * stratified by the label column lc. Labels are ranked by their text, not by a class
 * list, so the split depends only on the CSV, the fractions and the seed: `basira
 * split` and `basira train` give the same parts. group (may be NULL) receives each
 * row's group id.
 */
basira_code basira_split_rows(const basira_csv *csv, const size_t *rows, size_t n, int lc, int gc,
                              const double fractions[3], uint64_t seed, int *part, int *group,
                              basira_error *err);

basira_code basira_split_parse(const char *s, double fractions[3], basira_error *err);

/* ---- classes ------------------------------------------------------------------------ */

#define BASIRA_MAX_CLASSES 32 /* what basira_pipeline_predict() has room for */

typedef struct basira_class_info {
    char code[64];
    char name_en[128], name_fr[128], name_ar[256];
    int malignant;
    int partition; /* basira_partition: the three-partition group (from "malignant" if absent) */
} basira_class_info;

typedef struct basira_classes {
    int n;
    basira_class_info c[BASIRA_MAX_CLASSES];
} basira_classes;

/*
 * Classes from a JSON array [{"code", "names": {"en","fr","ar"}, "malignant": bool}].
 * "code" is required and unique; missing names default to the code, malignant to false.
 */
basira_code basira_classes_from_json(const json_t *j, basira_classes *out, basira_error *err);
basira_code basira_classes_load(const char *path, basira_classes *out, basira_error *err);
/* The sorted distinct values of labels[0..n) as classes (names = code, benign). */
basira_code basira_classes_from_labels(const char *const *labels, size_t n, basira_classes *out,
                                       basira_error *err);
/* Index of a code, or -1. */
int basira_classes_find(const basira_classes *cl, const char *code);
/* The classes as the JSON array above (new reference). */
json_t *basira_classes_to_json(const basira_classes *cl);

/*
 * Class weights for the loss from the class counts: "balanced" gives
 * n / (K * n_c) (K counting classes with n_c > 0), "sqrt" the square root of
 * that, "none" 1. A class absent from the data gets 0.
 */
typedef enum basira_class_weighting {
    BASIRA_WEIGHTS_NONE,
    BASIRA_WEIGHTS_BALANCED,
    BASIRA_WEIGHTS_SQRT,
} basira_class_weighting;
void basira_class_weights(basira_class_weighting how, const size_t *counts, int k, float *weights);

/* ---- augmentation ----------------------------------------------------------------- */

typedef enum basira_augment_mode {
    BASIRA_AUGMENT_NONE,       /* the whole image resized, as in inference */
    BASIRA_AUGMENT_LIGHT,      /* mild crop, flips, mild colour jitter */
    BASIRA_AUGMENT_DERMOSCOPY, /* crop 0.6-1.0, flips, 90-degree rotations, colour jitter */
    BASIRA_AUGMENT_MODALITY,   /* photo-kind detector: crop 0.3-1.0, strong colour, blur, noise */
    BASIRA_AUGMENT_SHIFT,      /* dermoscopy with wider scale and aspect, then the camera and
                                  clinic shifts of basira_shift_augment() (shift.c) */
} basira_augment_mode;

/* Parse "none" | "light" | "dermoscopy" | "modality" | "shift". */
basira_code basira_augment_parse(const char *s, basira_augment_mode *out, basira_error *err);

/* One random draw of the augmentation applied to an image. */
typedef struct basira_augment_params {
    double crop_x, crop_y, crop_w, crop_h;   /* crop rectangle in source pixels */
    int flip_h, flip_v, rot90;               /* rot90: quarter turns clockwise, 0..3 */
    double brightness, contrast, saturation; /* multiplicative factors, 1 = unchanged */
    double hue;                              /* rotation of hue, in turns (-0.5..0.5) */
    int blur;                                /* passes of a 3x3 binomial blur, 0..3 */
    double noise;                            /* amplitude of uniform pixel noise, 0..32 */
    uint64_t noise_seed;
} basira_augment_params;

/* Identity parameters for a src_w x src_h image: the whole image, no change. */
void basira_augment_identity(int src_w, int src_h, basira_augment_params *p);

/* Draw parameters for mode from seed (same seed, same draw). */
void basira_augment_sample(basira_augment_mode mode, int src_w, int src_h, uint64_t seed,
                           basira_augment_params *p);

/*
 * Apply p to packed RGB src (src_w x src_h) writing packed RGB dst (dst_w x dst_h):
 * bilinear crop-and-resize, flips and rotation in one pass, then colour jitter.
 */
basira_code basira_augment_apply(const basira_augment_params *p, const uint8_t *src, int src_w,
                                 int src_h, uint8_t *dst, int dst_w, int dst_h, basira_error *err);

/* Exact pixel moves (flips, quarter turn): basira/rgb.h. */

/* Deterministic 64-bit mix of a seed and two counters (per-sample seeds). */
uint64_t basira_seed_mix(uint64_t seed, uint64_t a, uint64_t b);

/* ---- training ---------------------------------------------------------------------- */

typedef struct basira_train_options {
    const char *images_dir; /* folder of the images */
    const char *csv_path;
    const char *image_col, *label_col, *group_col; /* group_col NULL: split by image */
    const char *stratify_col; /* column the split is stratified by (NULL: the label column) */
    const char *split_col;    /* column giving each row's part (train, val, test; empty: left
                                 out) instead of drawing the split; NULL: drawn */
    const char *classes_path; /* NULL: sorted distinct labels */
    const char *out_dir;
    const char *resume_path;    /* NULL: start afresh */
    const char *name, *version; /* of the model ("basira-derm", "0.1.0" when NULL) */
    const char *command_line;   /* for provenance */

    const char *arch;             /* "mobilenetv2" | "resnet" */
    int width, depth, input_size; /* input_size: the input's width */
    int input_height;             /* 0 = square; e.g. 120 with input_size 160 keeps 4:3 */
    int input_size_given;         /* --input-size stated: with init_from, the size to train at
                                     (else the parent's, which must then be input_size) */
    double dropout;

    int epochs, batch;
    double lr;
    int optimizer; /* basira_optim_kind */
    double momentum, weight_decay, ema;
    int schedule; /* basira_schedule */
    double warmup_epochs;
    double label_smoothing;
    double mixup; /* alpha of mixup's Beta(alpha, alpha); 0 = off (src/train/mixup.h) */
    /* Self-supervised pretraining (src/train/contrastive.h): the NT-Xent temperature, 0 =
     * off. Labels are then unused (one value for every photo will do; with several, the split
     * can still be stratified by them); each step takes batch / 2 photos, two views of each; the
     * network's head has proj_dim outputs (0: 64) and the best epoch is the lowest
     * validation contrastive loss. */
    double contrastive;
    int proj_dim;
    double clip_grad; /* 0 = off */
    basira_class_weighting class_weights;
    int balanced_sampler;
    basira_augment_mode augment;
    int colour_constancy; /* basira_colour_constancy */
    double split[3];
    uint64_t seed;
    /* The split (and --limit's subset) is drawn from split_seed when it is set (> 0), else
     * from seed: members of an ensemble then differ in their initialisation, order and
     * augmentation but are chosen on the same validation groups. */
    uint64_t split_seed;
    int threads;
    long limit;                /* 0 = all rows; else a seeded random subset of that many rows */
    int skip_bad;              /* skip missing/undecodable images instead of failing */
    int stop_after;            /* stop (resumably) after this many epochs in total; 0 = run all */
    const char *select_metric; /* "balanced_accuracy" (default) | "accuracy" | "auc" | "loss" */
    int progress;              /* 1 = report progress on the progress stream */
    /* `basira adapt`: start from this model (its architecture, a new head when the
     * classes differ) instead of random weights; keep the stages named in freeze. */
    const char *init_from;
    const char *const *freeze;
    int n_freeze;
    /* `basira cv`: the part of each CSV row (BASIRA_PART_*, or -1 to leave the row out),
     * n_parts entries (the CSV's rows), instead of --split and --limit. */
    const int *parts;
    size_t n_parts;
    int precision;         /* basira_precision of the training steps (FP32) */
    int profile;           /* 1 = after the first epoch, print where its time went */
    FILE *progress_stream; /* NULL = stderr */
} basira_train_options;

/* The seed the split is drawn from (split_seed, else seed). */
static inline uint64_t basira_train_split_seed(const basira_train_options *o)
{
    return o->split_seed ? o->split_seed : o->seed;
}

/* The defaults of `basira train` (see `basira help train`). */
void basira_train_options_default(basira_train_options *o);

/* Result of a run, for the caller's summary. */
typedef struct basira_train_result {
    int epochs_run, best_epoch;
    double best_metric;
    double final_train_loss, final_val_loss, final_val_accuracy, final_val_balanced_accuracy;
    double images_per_second; /* training throughput, mean over the run */
    size_t n_train, n_val, n_test;
} basira_train_result;

/*
 * Run a training as described by o; writes into o->out_dir: best.safetensors,
 * checkpoint.safetensors, train.csv/val.csv/test.csv, history.jsonl, summary.json.
 */
basira_code basira_train_run(const basira_train_options *o, basira_train_result *res,
                             basira_error *err);

/* ---- adapting a parent model (transfer.c) ----------------------------------------- */

/*
 * A network with the parent's architecture and k outputs: every tensor whose name and
 * size match is copied from the parent (*copied), the others (the head when k differs)
 * initialised from seed (*fresh). A parent that is an ensemble gives its member 0
 * (basira_net_load_first()). input_w x input_h: the new network's input (0, 0: the
 * parent's); another size than the parent's is refused (BASIRA_E_INVALID_ARGUMENT) when
 * a tensor other than the head's would then be new.
 */
basira_code basira_train_net_from_parent(const char *parent_path, int k, uint64_t seed, int input_w,
                                         int input_h, basira_net **out, size_t *copied,
                                         size_t *fresh, basira_error *err);

/* The tensors of the stages named by prefixes ("conv1", "layer1", ...), kept as they are. */
typedef struct basira_freeze basira_freeze;
/* Snapshot the tensors; a prefix that names no tensor is BASIRA_E_INVALID_ARGUMENT. */
basira_code basira_freeze_new(basira_net *net, const char *const *prefixes, int n_prefixes,
                              basira_freeze **out, size_t *n_frozen, basira_error *err);
/* Put the snapshot back (after each optimiser step). f may be NULL. */
void basira_freeze_restore(const basira_freeze *f, basira_net *net);
void basira_freeze_free(basira_freeze *f);

/* ---- near-duplicates (phash.c) ----------------------------------------------------- */

typedef struct basira_image basira_image;
/* 64-bit difference hash of a photo (9x8 grey levels, brighter than the right neighbour). */
basira_code basira_image_dhash(const basira_image *img, uint64_t *hash, basira_error *err);
/*
 * Group photos whose hashes differ in at most max_distance bits (connected components):
 * group[i] in [0, *n_groups), numbered in order of each group's first photo.
 */
basira_code basira_group_near_duplicates(const uint64_t *hash, size_t n, int max_distance,
                                         int *group, size_t *n_groups, basira_error *err);

/* ---- grouped k-fold cross-validation (kfold.c) ----------------------------------- */

/*
 * Assign each of n items to one of k folds (fold[i] in [0, k)) so that every group
 * (group[i] in [0, n_groups); NULL: each item its own group) lies in one fold and
 * every label stratum (a group takes its most common label) is shared between the
 * folds as evenly as whole groups allow. Depends only on the inputs and the seed.
 */
basira_code basira_kfold_groups(size_t n, const int *label, int n_labels, const int *group,
                                int n_groups, int k, uint64_t seed, int *fold, basira_error *err);

/* Merge two groupings (e.g. lesion and near-duplicate): items linked by either share a
 * group. a, b: n ids each (b may be NULL, a negative id links nothing); out: n ids,
 * numbered from 0 in order of first item; *n_out the count. */
basira_code basira_groups_union(size_t n, const int *a, const int *b, int *out, int *n_out,
                                basira_error *err);

/*
 * The threshold rule that survives a shift. Per fold f the largest threshold t_f on the
 * malignant probability keeping at least target of fold f's malignant cases at or above
 * it (the ceiling of target x M_f, as basira_choose_operating_point). The shipped
 * threshold is min_f t_f times margin (margin <= 1 moves it lower, i.e. safer), so
 * sensitivity reaches the target on every fold. p[i], malignant[i], fold[i] in [0, k).
 * *threshold is NaN when a fold has no malignant case.
 */
basira_code basira_cv_threshold(const double *p, const int *malignant, const int *fold, size_t n,
                                int k, double target, double margin, double *per_fold,
                                double *threshold, basira_error *err);

/* Mean and sample standard deviation of the finite values of v[0..n) (NaN when none;
 * sd NaN when fewer than 2). */
void basira_mean_sd(const double *v, size_t n, double *mean, double *sd);

/* ---- camera and clinic shifts (shift.c) -------------------------------------------- */

/* The shifts of `basira shift-check`, each a fixed, deterministic change of a photo. */
typedef enum basira_shift_kind {
    BASIRA_SHIFT_NONE,    /* the photo as it is */
    BASIRA_SHIFT_SQUASH,  /* centre square crop: a 4:3 photo stretched 4/3 (ISIC 2017 storage) */
    BASIRA_SHIFT_BLUR,    /* Gaussian blur, sigma 1.5 px of a 200 px wide photo */
    BASIRA_SHIFT_JPEG,    /* JPEG re-encoding at quality 40 */
    BASIRA_SHIFT_COLOUR,  /* warm colour cast (R x1.12, B x0.88) and gamma 0.8 */
    BASIRA_SHIFT_SCALE,   /* centre crop of 70% of each side: the lesion 1.43 x larger */
    BASIRA_SHIFT_ROTATE,  /* rotation by 30 degrees, borders mirrored */
    BASIRA_SHIFT_UPRIGHT, /* a quarter turn clockwise: the phone held upright (portrait) */
    BASIRA_SHIFT_COUNT
} basira_shift_kind;

const char *basira_shift_name(basira_shift_kind k);
/* The kind named s, or -1. */
int basira_shift_from_name(const char *s);

/* Apply shift k to packed RGB src (w x h) into a new malloc'd *out (*ow x *oh). */
basira_code basira_shift_apply(basira_shift_kind k, const uint8_t *src, int w, int h, uint8_t **out,
                               int *ow, int *oh, basira_error *err);

/* The pieces (dst != src, w x h unless said): Gaussian blur; JPEG re-encoding; per-channel
 * gains then gamma (v' = 255 (v/255)^gamma); rotation about the centre, mirrored borders. */
basira_code basira_rgb_blur(const uint8_t *src, int w, int h, double sigma, uint8_t *dst,
                            basira_error *err);
basira_code basira_rgb_jpeg(const uint8_t *src, int w, int h, int quality, uint8_t *dst,
                            basira_error *err);
void basira_rgb_colour(const uint8_t *src, int w, int h, const double gain[3], double gamma,
                       uint8_t *dst);
void basira_rgb_rotate(const uint8_t *src, int w, int h, double degrees, uint8_t *dst);

/* The random part of --augment shift, applied in place to packed RGB (w x h) after the
 * geometric augmentation: rotation, blur, JPEG quality, colour cast and illumination,
 * each with its own probability, all drawn from seed. */
basira_code basira_shift_augment(uint8_t *rgb, int w, int h, uint64_t seed, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
