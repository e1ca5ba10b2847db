/*
 * triage.h - from a photo to a triage decision: the dermatology classifier, the
 * risk index, the category with its action, and the safety rules on top.
 *
 * The classifier is a basira_net whose safetensors metadata key "basira" holds a
 * JSON document describing how to use it:
 *   {"name": "basira-derm", "version": "1.0.0",
 *    "classes": [{"code": "akiec", "names": {"en": "...", "fr": "...", "ar": "..."},
 *                 "malignant": true}, ...],
 *    "preprocessing": {"input_size": 128, "mean": [r,g,b], "std": [r,g,b],
 *                      "colour_constancy": "shades_of_gray" | "none"},
 *    "temperature": 1.3,
 *    "thresholds": {"high": 0.40, "medium": 0.08},   (on the malignant probability)
 *    "tta": 1 | 2 | 4 | 8,
 *    "malignant_bias": b, "malignant_slope": a,   (optional: P(malignant) recalibrated to
 *                       sigmoid(a logit(p) + b) after the views are averaged; model.h)
 *    "provenance": {...}}
 * and, beside "basira", "storage": "F16" when the weights are stored in half precision (nn.h).
 *
 * The risk index is 100 x the calibrated probability that the lesion is
 * malignant or pre-malignant (sum over classes marked malignant).
 * Safety rules (see triage.c for the reasons):
 *   - a patient-reported change, bleeding or rapid growth raises the category to at least medium;
 *   - a photo that failed the quality gate never yields "low";
 *   - every result carries the model identity and the decision-support sentence.
 */
#ifndef BASIRA_TRIAGE_H
#define BASIRA_TRIAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basira/error.h"
#include "basira/image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum basira_risk_category {
    BASIRA_RISK_LOW = 0,
    BASIRA_RISK_MEDIUM = 1,
    BASIRA_RISK_HIGH = 2,
} basira_risk_category;

/* "low", "medium", "high". */
const char *basira_risk_category_code(basira_risk_category c);
/* Localised recommended action for a category. */
const char *basira_risk_action(basira_risk_category c);
/* Localised "decision support, not a diagnosis" sentence. */
const char *basira_disclaimer(void);
/* The same two, untranslated (msgids), for saying them in another language (basira_translate). */
const char *basira_risk_action_msgid(basira_risk_category c);
const char *basira_disclaimer_msgid(void);

/* Patient-reported history. -1 = not asked. */
typedef struct basira_history {
    int changed;
    int bleeding;
    int rapid_growth;
    int itching;
    double duration_months; /* < 0 = unknown */
} basira_history;

void basira_history_init(basira_history *h);
/* Parse "changed,bleeding,growth,itching" (the --history option). */
basira_code basira_history_parse(const char *list, basira_history *h, basira_error *err);

/* Site overrides of the model's thresholds (< 0 = keep the model's). */
typedef struct basira_triage_config {
    double high_threshold;
    double medium_threshold;
} basira_triage_config;

void basira_triage_config_default(basira_triage_config *cfg);

/*
 * Site configuration file: {"thresholds": {"high": h, "medium": m}} (either may be
 * left out to keep the model's). Values must satisfy 0 <= medium <= high <= 1.
 * Errors are BASIRA_E_FORMAT (malformed JSON or values) or BASIRA_E_IO / NOT_FOUND.
 */
basira_code basira_triage_config_from_json(const json_t *j, basira_triage_config *cfg,
                                           basira_error *err);
basira_code basira_triage_config_load(const char *path, basira_triage_config *cfg,
                                      basira_error *err);

/* Decide the category from a malignant probability, the history and the quality verdict. */
basira_risk_category basira_triage_decide(double malignant_probability, double high_threshold,
                                          double medium_threshold, const basira_history *history,
                                          int quality_ok);

/* Why a category was raised above what the model's probability gives (bit flags). */
enum {
    BASIRA_TRIAGE_RAISED_HISTORY = 1, /* patient-reported change, bleeding or rapid growth */
    BASIRA_TRIAGE_RAISED_QUALITY = 2, /* photo failed the quality gate (scored with force) */
    BASIRA_TRIAGE_RAISED_INVALID = 4, /* probability not a number: fail safe to high */
};

/* Same as basira_triage_decide, and *raised (may be NULL) gets the BASIRA_TRIAGE_RAISED_* flags. */
basira_risk_category basira_triage_decide_ex(double malignant_probability, double high_threshold,
                                             double medium_threshold, const basira_history *history,
                                             int quality_ok, unsigned *raised);

/*
 * The primary-care rule for non-neoplastic results (issue 11, models/basira-clinical.md). A
 * photo the model finds inflammatory or infectious (P(non-neoplastic) at or above the model's
 * threshold) whose category is "low" (P(malignant) below the medium threshold and nothing
 * raised it) is managed in primary care, with the advice to refer it if it is not better in
 * BASIRA_PRIMARY_CARE_WEEKS weeks. It never applies to a medium or high category, so it never
 * hides a malignant probability at or above medium, and never to a number that is not one.
 * The threshold is the model's "thresholds"."non_neoplastic" when it states one, otherwise
 * BASIRA_NON_NEOPLASTIC_THRESHOLD: chosen on the validation groups of basira-clinical 1.0.0
 * (at 0.8 all 13 photos it selected were non-neoplastic; at 0.7, 5 of 32 were malignant).
 * A model without non-neoplastic classes (a dermoscopy model) never meets it.
 */
#define BASIRA_NON_NEOPLASTIC_THRESHOLD 0.8
#define BASIRA_PRIMARY_CARE_WEEKS 4 /* the advice's sentence says the same number */

/* 1 when the rule applies (see above), 0 otherwise. */
int basira_triage_primary_care(basira_risk_category category, double malignant_probability,
                               double medium_threshold, double non_neoplastic_probability,
                               double threshold);
/* The advice of the rule, localised, and its msgid (basira_translate). */
const char *basira_primary_care_advice(void);
const char *basira_primary_care_advice_msgid(void);

/* ---- the typed result of one photo ---- */

typedef enum basira_triage_status {
    BASIRA_TRIAGE_OK = 0,       /* scored: category, risk index, cleaned photo */
    BASIRA_TRIAGE_REJECTED = 1, /* failed the quality gate: retake advice in the document */
    BASIRA_TRIAGE_ERROR = 2,    /* not decodable: error says why */
} basira_triage_status;

/*
 * What the pipeline says about one photo, as values the case service and the
 * store decide on. `document` is the same result as one line of `basira triage
 * --json` (without "file"): what is stored with the photo and shown to people;
 * nothing downstream parses it to decide. clean is the photo to keep: the
 * pixels intake decoded, re-encoded without any metadata (EXIF, GPS, XMP).
 * Owns document and clean: release with basira_triage_result_clear().
 */
typedef struct basira_triage_result {
    basira_triage_status status;
    basira_risk_category category;     /* status OK */
    int risk_index;                    /* 0..100, status OK; -1 otherwise */
    double malignant_probability;      /* status OK */
    unsigned raised;                   /* BASIRA_TRIAGE_RAISED_* (status OK) */
    int primary_care;                  /* status OK: the non-neoplastic primary-care rule applies */
    double non_neoplastic_probability; /* status OK: the partition's P(non-neoplastic) */
    int quality_ok;                    /* the quality gate passed */
    basira_error error;                /* status REJECTED or ERROR: why */
    json_t *document;                  /* the whole result (owned) */
    unsigned char *clean; /* status OK from basira_pipeline_analyze (owned, malloc'd) */
    size_t clean_len;
    const char *clean_mime; /* static string, e.g. "image/jpeg" */
} basira_triage_result;

static inline void basira_triage_result_init(basira_triage_result *r)
{
    memset(r, 0, sizeof *r);
    r->status = BASIRA_TRIAGE_ERROR;
    r->risk_index = -1;
}

/* Free what r owns and reset it (safe on an initialised or cleared result). */
static inline void basira_triage_result_clear(basira_triage_result *r)
{
    json_decref(r->document);
    free(r->clean);
    basira_triage_result_init(r);
}

/*
 * Say the sentences of a result document (retake advice of the quality checks,
 * the refusal, the recommended action, the disclaimer, validation warnings) in
 * lang, whatever language it was made in. t, lang: see basira_translate().
 */
struct basira_translator;
void basira_triage_localize(json_t *doc, const struct basira_translator *t, const char *lang);

/* ---- the whole pipeline: intake -> quality -> skin tone -> model -> triage ---- */

typedef struct basira_pipeline basira_pipeline;

typedef enum basira_photo_kind {
    BASIRA_PHOTO_UNKNOWN = 0,
    BASIRA_PHOTO_DERMOSCOPIC, /* taken through a dermatoscope */
    BASIRA_PHOTO_CLINICAL,    /* taken without one */
} basira_photo_kind;

/* model_path NULL = the bundled model. cfg NULL = the model's thresholds. */
basira_code basira_pipeline_new(const char *model_path, const basira_triage_config *cfg,
                                basira_pipeline **out, basira_error *err);
void basira_pipeline_free(basira_pipeline *p);
/*
 * The same, for a program that triages a few photos and exits (`basira triage`): the
 * models are loaded when the first photo needs them (the clinical model only for a
 * photo routed to it, the bundled main model only for one it scores or an error it
 * names; a model_path given is loaded here), and
 * not at all when set_detector, clear_detector or set_kind_model replace them first.
 * Results are the same; a model file that cannot be loaded is then reported on each
 * photo that needs it (status "error") rather than here. Site thresholds wrong for any
 * model (outside [0, 1], medium above high) are still refused here. A server keeps
 * basira_pipeline_new(): every model checked at start, no first photo slower than the others.
 */
basira_code basira_pipeline_new_lazy(const char *model_path, const basira_triage_config *cfg,
                                     basira_pipeline **out, basira_error *err);

/*
 * The site's thresholds from now on (cfg NULL: the model's), for the main
 * model, checked as basira_pipeline_new checks them: on error nothing
 * changes. Safe while photos are analysed: each photo is decided with one pair,
 * the old or the new (a site configuration from the hub, applied while serving).
 */
basira_code basira_pipeline_set_thresholds(basira_pipeline *p, const basira_triage_config *cfg,
                                           basira_error *err);

/*
 * Photo kinds (issue 11). A pipeline made with model_path NULL also loads the bundled
 * photo-kind detector (models/basira-modality.safetensors) and the bundled clinical
 * model (models/basira-clinical.safetensors) when they are installed; with a model_path
 * only the detector. Each photo is then scored by the model for its kind: the detected
 * kind, or the declared one when the request confirms it (kind_confirmed) or there is no
 * detector. A kind no loaded model is validated for is scored by the main model with the
 * warning "no_model_for_kind".
 *   set_kind_model: the model for clinical photos (path NULL: the bundled one if installed;
 *                   its own thresholds, not the site's). Only BASIRA_PHOTO_CLINICAL.
 *   set_detector:   the photo-kind detector (path NULL: the bundled one if installed);
 *                   BASIRA_E_MODEL if the file is not one. clear_detector: none.
 */
basira_code basira_pipeline_set_kind_model(basira_pipeline *p, basira_photo_kind kind,
                                           const char *path, basira_error *err);
basira_code basira_pipeline_set_detector(basira_pipeline *p, const char *path, basira_error *err);
void basira_pipeline_clear_detector(basira_pipeline *p);
int basira_pipeline_has_detector(const basira_pipeline *p);

/* {"name","version","sha256"} of the main model (new reference; loads it if deferred;
 * NULL when it cannot be loaded or out of memory). */
json_t *basira_pipeline_model_json(basira_pipeline *p);

/*
 * The intake limits photos are decoded under (default: basira_intake_options_default);
 * the clinic node passes its shared decode budget here. Set before the first run;
 * the budget must outlive the pipeline.
 */
void basira_pipeline_set_intake(basira_pipeline *p, const basira_intake_options *opts);

typedef struct basira_triage_request {
    const basira_history *history; /* NULL = nothing reported */
    int force;                     /* score even if the quality gate failed */
    basira_photo_kind photo_kind;  /* what the photographer said; UNKNOWN when not asked */
    int kind_confirmed;            /* photo_kind wins over the detector (the user confirmed it) */
} basira_triage_request;

/*
 * Every scored result explains itself, besides "risk": {"index", "category",
 * "raised_by" (history, quality, invalid_probability), "thresholds"}:
 *   "risk"."uncertainty": {"method": "tta", "views": n, "low": i, "high": i} - the
 *       lowest and highest risk index over the n symmetry views of the photo (turned,
 *       mirrored), which the lesion does not care about: a wide range means the model
 *       is unsure;
 *   "primary_care": {"applies", "non_neoplastic_probability", "threshold",
 *       "refer_after_weeks", "advice" (only when it applies)} - the rule above;
 *   "validation": {"data_set", "photo_kinds": [...], "skin_tones": [...], "warnings":
 *       [{"code", "message"}]} - what the model was validated on, and a warning when
 *       this photo is outside it (a clinical photo, a skin tone darker than those of
 *       the validation data, or a photo kind not given).
 */

/*
 * Run the whole pipeline on a photo in memory / on disk. Always produces a result
 * object shaped as one line of `basira triage --json` (without "file"):
 * status "ok" | "rejected" | "error". Returns BASIRA_OK when *result was produced
 * (even for a rejected or undecodable photo, whose error is inside the result);
 * an error code only when no result could be produced (out of memory, ...).
 * Safe to call from several threads on one pipeline.
 */
basira_code basira_pipeline_run_buffer(basira_pipeline *p, const void *data, size_t len,
                                       const basira_triage_request *req, json_t **result,
                                       basira_error *err);
basira_code basira_pipeline_run_file(basira_pipeline *p, const char *path,
                                     const basira_triage_request *req, json_t **result,
                                     basira_error *err);

/* Re-encodes a decoded photo for storage (the seam tests use to make it fail). */
typedef basira_code (*basira_photo_encoder)(const basira_image *img, uint8_t **buf, size_t *len,
                                            basira_error *err);

/*
 * The pipeline for the clinic node: decode the photo ONCE, assess, score, and
 * return the typed result with, when scored, the cleaned photo (what intake
 * decoded, re-encoded as JPEG by encode, NULL = basira_image_encode_jpeg at
 * quality 92). A photo that cannot be re-encoded is never stored as received:
 * the call then fails (BASIRA_E_INTERNAL or the encoder's code, message saying
 * the photo was refused) and *out holds nothing. Undecodable and rejected
 * photos return BASIRA_OK with status ERROR / REJECTED and no clean photo.
 */
basira_code basira_pipeline_analyze(basira_pipeline *p, const void *data, size_t len,
                                    const basira_triage_request *req, basira_photo_encoder encode,
                                    basira_triage_result *out, basira_error *err);

/* Class probabilities (calibrated) of an already-loaded image; probs has room for 16. */
basira_code basira_pipeline_predict(basira_pipeline *p, const basira_image *img, float *probs,
                                    int *num_classes, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
