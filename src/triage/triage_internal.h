/* triage_internal.h - what the files of src/triage share. Not a public API. */
#ifndef BASIRA_TRIAGE_INTERNAL_H
#define BASIRA_TRIAGE_INTERNAL_H

#include "basira/model.h"
#include "basira/quality.h"
#include "basira/triage.h"

/* "validation": what the model was validated on, and warnings when this photo is outside. */
json_t *triage_validation_json(const char *model_name, const basira_skin_tone *tone,
                               basira_photo_kind kind);

/* "uncertainty": the range of the risk index over the n symmetry views (per_view: n x k). */
json_t *triage_uncertainty_json(const basira_model_info *info, const float *per_view, int n);

#endif
