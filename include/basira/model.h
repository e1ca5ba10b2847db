/*
 * model.h - turning a photo into the network's input, identically in training
 * and in use. Preprocessing parameters are stored in the model file so that a
 * model always sees what it was trained on.
 *
 * Steps: optional colour constancy (Shades of Gray, Minkowski p = 6: removes the
 * colour cast of the light and camera, which differs between clinics), resize
 * of the whole image to input_w x input_h (aspect not kept: the lesion is never
 * cropped away), scale to [0,1], per-channel normalisation (x - mean) / std,
 * output planar CHW float32.
 */
#ifndef BASIRA_MODEL_H
#define BASIRA_MODEL_H

#include <jansson.h>

#include "basira/error.h"
#include "basira/image.h"
#include "basira/partition.h"
#include "basira/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum basira_colour_constancy {
    BASIRA_CC_NONE = 0,
    BASIRA_CC_SHADES_OF_GRAY = 1,
} basira_colour_constancy;

typedef struct basira_preprocess {
    int input_w, input_h;
    float mean[3], std[3];
    basira_colour_constancy colour_constancy;
} basira_preprocess;

/* 128x128, ImageNet-like mean/std, Shades of Gray. */
void basira_preprocess_default(basira_preprocess *p);

/* {"input_size":[w,h], "mean":[..], "std":[..], "colour_constancy":"shades_of_gray"|"none"} */
basira_code basira_preprocess_from_json(const json_t *j, basira_preprocess *out, basira_error *err);
json_t *basira_preprocess_to_json(const basira_preprocess *p);

/* Colour constancy in place on packed RGB (3*w*h bytes). */
void basira_colour_constancy_apply(basira_colour_constancy cc, unsigned char *rgb, int w, int h);

/*
 * img resized to exactly w x h, as the model sees it (*out must be freed). When the
 * size is not square and the photo lies the other way (a portrait photo for a 4:3
 * input), the photo is first turned a quarter turn clockwise, so that it is not
 * squashed by 16:9: a lesion has no "up" (the training augmentation turns and
 * mirrors photos too). Training (its working size) and inference both go through here,
 * so both see the same pixels. A square size or a photo already lying the same way is
 * only resized.
 */
basira_code basira_preprocess_fit(const basira_image *img, int w, int h, basira_image **out,
                                  basira_error *err);

/* Whether basira_preprocess_fit() turns a photo of iw x ih for a w x h input. */
int basira_preprocess_turns(int iw, int ih, int w, int h);

/* img -> chw[3][input_h][input_w] normalised floats (through basira_preprocess_fit()). */
basira_code basira_preprocess_image(const basira_preprocess *p, const basira_image *img, float *chw,
                                    basira_error *err);

/* Same from packed RGB already at input_w x input_h (used after augmentation in training). */
void basira_preprocess_rgb(const basira_preprocess *p, const unsigned char *rgb, float *chw);

/* ---- the classifier -------------------------------------------------------------
 * A basira_net plus the "basira" metadata of its model file (schema in triage.h).
 * basira_model_info is that metadata, parsed and checked strictly: a field missing
 * or out of range is a BASIRA_E_MODEL error naming the field, never a guess, because
 * a model used with the wrong classes, thresholds or preprocessing gives confident
 * wrong answers.
 */

#define BASIRA_MODEL_MAX_CLASSES 32
/* Largest |malignant_bias| a model may carry (odds times e^8 = 2981). */
#define BASIRA_MODEL_MAX_BIAS 8.0
/* The range of "malignant_slope" (Platt scaling, basira calibrate --malignant-slope). */
#define BASIRA_MODEL_MIN_SLOPE 0.25
#define BASIRA_MODEL_MAX_SLOPE 4.0

#define BASIRA_MODEL_CODE_MAX 64  /* class code, e.g. "akiec" (bytes with the NUL) */
#define BASIRA_MODEL_NAME_MAX 256 /* display name of a class in one language (UTF-8 bytes) */

typedef struct basira_model_class {
    char code[BASIRA_MODEL_CODE_MAX]; /* [A-Za-z0-9_.-]+, unique in the model */
    char name_en[BASIRA_MODEL_NAME_MAX];
    char name_fr[BASIRA_MODEL_NAME_MAX];
    char name_ar[BASIRA_MODEL_NAME_MAX];
    int malignant; /* 1 = malignant or pre-malignant: counts in the risk index */
    int partition; /* basira_partition of the class (three-partition view, issue 11) */
} basira_model_class;

typedef struct basira_model_info {
    char name[64];    /* e.g. "basira-derm" */
    char version[32]; /* e.g. "1.0.0" */
    int num_classes;  /* 2..BASIRA_MODEL_MAX_CLASSES, at least one malignant */
    basira_model_class classes[BASIRA_MODEL_MAX_CLASSES];
    basira_preprocess preprocess;
    double temperature;    /* calibration, > 0 (1 = none) */
    double threshold_high; /* on the malignant probability, 0 < medium <= high <= 1 */
    double threshold_medium;
    double threshold_non_neoplastic; /* of the primary-care rule (triage.h); 0: not stated */
    /*
     * Recalibration at a clinic (basira recalibrate): log-odds added to P(malignant)
     * after the views are averaged, i.e. every malignant class's probability times
     * e^b, then renormalised. 0 = none; within [-BASIRA_MODEL_MAX_BIAS, +...].
     */
    double malignant_bias;
    /*
     * Platt scaling of P(malignant) (basira calibrate --malignant-slope): with it the
     * recalibrated probability is sigmoid(slope * logit(p) + malignant_bias), the
     * malignant classes scaled by p'/p and the others by (1 - p')/(1 - p). 1 = none
     * (the bias alone, as above); within [BASIRA_MODEL_MIN_SLOPE, BASIRA_MODEL_MAX_SLOPE].
     * Monotone: the ranking, hence the AUC, is that of the network.
     */
    double malignant_slope;
    int tta; /* test-time augmentations averaged: 1, 2, 4 or 8 (8 needs a square input) */
    /*
     * "int8": {"default": true, ...}, written by `basira quantize` when the file's int8
     * calibration kept accuracy and malignant AUC within its tolerances of fp32 on the
     * images it was measured on: basira_classifier_load() then runs the net in int8. Not
     * written back by basira_model_info_to_json() nor kept by `basira calibrate`: a model
     * whose metadata is rewritten runs in fp32 until it is quantized and measured again.
     */
    int int8_default;
} basira_model_info;

/* Parse the "classes" array alone (as in models/ham10000-classes.json) into info->classes. */
basira_code basira_model_classes_from_json(const json_t *classes, basira_model_info *info,
                                           basira_error *err);
/* Parse and check the whole "basira" metadata document. */
basira_code basira_model_info_from_json(const json_t *j, basira_model_info *out, basira_error *err);
/* Same from its text (the string stored in the safetensors metadata); len bytes, no NUL needed. */
basira_code basira_model_info_parse(const char *text, size_t len, basira_model_info *out,
                                    basira_error *err);
/* The metadata document of info (what a trainer stores under "basira"). New reference. */
json_t *basira_model_info_to_json(const basira_model_info *info);
/*
 * Multiply the odds of P(malignant) of one probability row (k classes, summing to 1) by
 * e^bias: each malignant class's probability times e^bias, then the row renormalised.
 */
void basira_model_shift_malignant(const basira_model_info *info, float *probs, double bias);
/*
 * The model's own recalibration of P(malignant) on one probability row: its
 * malignant_slope and malignant_bias (identical to basira_model_shift_malignant() with
 * the bias when the slope is 1). A row whose P(malignant) is 0 or 1 stays as it is.
 */
void basira_model_map_malignant(const basira_model_info *info, float *probs);
/* Display name of a class in "en", "fr" or "ar" (anything else: English). */
const char *basira_model_class_name(const basira_model_class *c, const char *lang);

typedef struct basira_classifier basira_classifier;

/*
 * Load a model file: the whole file is read once, its SHA-256 computed (the model's
 * identity in every result) and the net built from the same bytes, then prepared for
 * inference. Errors: BASIRA_E_NOT_FOUND / BASIRA_E_IO for the file, BASIRA_E_MODEL for
 * a malformed file, missing or invalid "basira" metadata, or a net whose input shape or
 * number of classes disagrees with the metadata.
 *
 * Threads: a classifier may be used from any thread; its forward passes are
 * serialised. It runs its network on a thread of its own, because oneDNN's default
 * scratchpad is per thread and a primitive must run on the thread that created it.
 */
basira_code basira_classifier_load(const char *path, basira_classifier **out, basira_error *err);
/* basira_classifier_load() runs the network in fp32, or in int8 for a model whose metadata
 * says "int8": {"default": true} (see basira_model_info.int8_default); a file that says so
 * without an int8 calibration is refused (BASIRA_E_MODEL). */
/*
 * The same, with the network's inference precision (basira_net_set_inference_precision):
 * FP32 as basira_classifier_load(), BF16 (refused with BASIRA_E_UNSUPPORTED without bf16
 * instructions) or AUTO. Use BF16 only for a model whose accuracy in bf16 was measured
 * (`basira evaluate --precision bf16`). INT8 runs a model file that carries an int8
 * calibration (saved by basira_net_save() after basira_net_calibrate()) in int8 at once;
 * refused for a file without one.
 */
basira_code basira_classifier_load_precision(const char *path, basira_precision precision,
                                             basira_classifier **out, basira_error *err);
/* The precision the classifier's network runs in (FP32, BF16 or INT8). */
basira_precision basira_classifier_precision(const basira_classifier *c);
/*
 * Average views (1, 2, 4 or 8; 8 needs a square input) instead of the model's "tta", e.g.
 * to measure test-time augmentation (`basira evaluate --tta`, `basira cv --tta`). Call it
 * before the first prediction, not while another thread predicts. BASIRA_E_INVALID_ARGUMENT
 * for another count.
 */
basira_code basira_classifier_set_tta(basira_classifier *c, int views, basira_error *err);
/*
 * int8 post-training quantisation (basira_net_calibrate): record the activation ranges of
 * one preprocessed image chw[3][input_h][input_w] (call it for each calibration image,
 * e.g. the validation split), then basira_classifier_use_int8() runs the network's
 * convolutions in int8 (refused before any calibration). Measure the accuracy first.
 * Only for a classifier loaded with basira_classifier_load_precision(): one loaded with
 * basira_classifier_load() keeps only what its predictions need, and refuses the switch
 * (BASIRA_E_INVALID_ARGUMENT), predicting as before.
 */
basira_code basira_classifier_calibrate_chw(basira_classifier *c, const float *chw,
                                            basira_error *err);
basira_code basira_classifier_use_int8(basira_classifier *c, basira_error *err);
void basira_classifier_free(basira_classifier *c);

const basira_model_info *basira_classifier_info(const basira_classifier *c);
/* Networks whose probabilities are averaged: 1, or an ensemble's member count (nn.h). */
int basira_classifier_members(const basira_classifier *c);
/* SHA-256 of the model file, 64 lowercase hex digits. */
const char *basira_classifier_sha256(const basira_classifier *c);
/* Bytes Basira allocates for the classifier (parameters, its buffers); oneDNN's own copies,
 * kernels and scratchpad come on top (about 40 MB in all for a 2.2 M-parameter model). */
size_t basira_classifier_memory(const basira_classifier *c);

/*
 * Calibrated class probabilities of a photo (probs has num_classes entries): preprocess,
 * forward pass of each TTA view (one at a time, to bound memory) through each member of an
 * ensemble, softmax(logits / T) of each, averaged in probability space. Safe from several threads
 * (calls are serialised).
 */
basira_code basira_classifier_predict(basira_classifier *c, const basira_image *img, float *probs,
                                      basira_error *err);
/*
 * The same probs (bit for bit), plus spread samples: the probabilities of each symmetry
 * view of the photo (8 for a square input, else 4; at least the model's TTA views), or
 * for an ensemble whose members x TTA views make 4 to 8, each member's probabilities on
 * each view, sample v * members + m (basira_classifier_spread_by_member). per_view has
 * room for 8 x num_classes floats, *n_views gets how many samples were written. How much
 * the answer moves when the photo is only turned or mirrored, or scored by another of
 * the networks, is a cheap measure of its uncertainty.
 */
basira_code basira_classifier_predict_views(basira_classifier *c, const basira_image *img,
                                            float *probs, float *per_view, int *n_views,
                                            basira_error *err);
/* 1 when predict_views' samples are an ensemble's (view, member) pairs, else 0. */
int basira_classifier_spread_by_member(const basira_classifier *c);
/* Same from an already preprocessed tensor chw[3][input_h][input_w]. */
basira_code basira_classifier_predict_chw(basira_classifier *c, const float *chw, float *probs,
                                          basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
