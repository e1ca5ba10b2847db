/* triage_internal.h - what the files of src/triage share. Not a public API. */
#ifndef BASIRA_TRIAGE_INTERNAL_H
#define BASIRA_TRIAGE_INTERNAL_H

#include "basira/model.h"
#include "basira/quality.h"
#include "basira/triage.h"

/* "validation": what the model was validated on, and warnings when this photo is outside. */
json_t *triage_validation_json(const char *model_name, const basira_skin_tone *tone,
                               basira_photo_kind kind);

/* "uncertainty": the range of the risk index over the n spread samples (per_view: n x k):
 * symmetry views, or with by_member an ensemble's (view, member) pairs. */
json_t *triage_uncertainty_json(const basira_model_info *info, const float *per_view, int n,
                                int by_member);

/* Codes of triage_validation_json's warnings; triage_add_warning appends one (its message in
 * the process's language; basira_triage_localize says it in the user's). 0 = added. */
int triage_add_warning(json_t *validation, const char *code);

/* The kind of photo a model was validated on (explain.c's table); UNKNOWN when not listed. */
basira_photo_kind triage_model_kind(const char *model_name);

/* ---- route.c: which kind of photo, which model ---- */

typedef struct triage_modality {
    basira_photo_kind declared, detected, used; /* detected UNKNOWN without a detector */
    double p_clinical;                          /* the detector's P(clinical) */
    int confirmed;                              /* the user confirmed the declared kind */
    int disagreement;                           /* declared and detected kinds differ */
} triage_modality;

const char *triage_kind_code(basira_photo_kind k);
/* BASIRA_E_MODEL unless info is a photo-kind detector (classes dermoscopic, clinical). */
basira_code triage_detector_check(const basira_model_info *info, basira_error *err);
/* Detect the kind (detector may be NULL) and decide which kind the photo is treated as. */
basira_code triage_route(basira_classifier *detector, const basira_image *img,
                         const basira_triage_request *req, triage_modality *m, basira_error *err);
/* {"kind", "probability", "declared", "detected", "confirmed", "disagreement"}. */
json_t *triage_modality_json(const triage_modality *m);

/* Message of a photo refused because it shows no skin (msgid; error code "not_skin"). */
const char *triage_not_skin_msgid(void);

#endif
