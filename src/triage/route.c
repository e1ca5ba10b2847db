/*
 * route.c - which kind of photo is this, and which model scores it (issue 11).
 *
 * A dermoscopy model scores clinical phone photos no better than chance, so every
 * photo is first classified as dermoscopic or clinical by a small detector
 * (models/basira-modality.safetensors, see its card) and then scored by the model
 * made for that kind. The photographer may declare the kind; when the declaration
 * and the detector disagree, the result says so, and the declared kind wins only
 * when the user confirmed it (a tap on "yes, I am sure"): a slip of the finger on
 * the capture screen must not send a dermoscopic photo to the wrong model, and a
 * detector mistake must not overrule a clinician who looked twice.
 * Without a detector the declaration is all there is, and it is used as given.
 */
#include "basira/paths.h"
#include "core/i18n.h"
#include "triage_internal.h"

#include <string.h>

const char *triage_kind_code(basira_photo_kind k)
{
    return k == BASIRA_PHOTO_DERMOSCOPIC ? "dermoscopic"
           : k == BASIRA_PHOTO_CLINICAL  ? "clinical"
                                         : "unknown";
}

/*
 * The detector's classes are coded "dermoscopic" and "clinical" (models/
 * modality-classes.json); any other model file is refused as a detector.
 */
basira_code triage_detector_check(const basira_model_info *info, basira_error *err)
{
    int d = 0, c = 0;
    for (int i = 0; i < info->num_classes; i++) {
        d += !strcmp(info->classes[i].code, "dermoscopic");
        c += !strcmp(info->classes[i].code, "clinical");
    }
    if (info->num_classes != 2 || d != 1 || c != 1)
        return basira_error_setm(err, BASIRA_E_MODEL,
                                 N_("%s is not a photo-kind detector: its classes must be "
                                    "\"dermoscopic\" and \"clinical\""),
                                 info->name);
    return BASIRA_OK;
}

basira_code triage_route(basira_classifier *detector, const basira_image *img,
                         const basira_triage_request *req, triage_modality *m, basira_error *err)
{
    memset(m, 0, sizeof *m);
    m->declared = req ? req->photo_kind : BASIRA_PHOTO_UNKNOWN;
    m->confirmed = req && req->photo_kind != BASIRA_PHOTO_UNKNOWN && req->kind_confirmed;
    m->detected = BASIRA_PHOTO_UNKNOWN;
    if (detector) {
        const basira_model_info *info = basira_classifier_info(detector);
        float probs[BASIRA_MODEL_MAX_CLASSES];
        basira_code rc = basira_classifier_predict(detector, img, probs, err);
        if (rc)
            return rc;
        for (int i = 0; i < info->num_classes; i++)
            if (!strcmp(info->classes[i].code, "clinical"))
                m->p_clinical = probs[i];
        /* The detector's shipped threshold (chosen on validation, as `basira classify`). */
        m->detected = m->p_clinical >= info->threshold_high ? BASIRA_PHOTO_CLINICAL
                                                            : BASIRA_PHOTO_DERMOSCOPIC;
    }
    m->disagreement = m->declared != BASIRA_PHOTO_UNKNOWN && m->detected != BASIRA_PHOTO_UNKNOWN &&
                      m->declared != m->detected;
    if (m->detected == BASIRA_PHOTO_UNKNOWN || (m->disagreement && m->confirmed) ||
        (!m->disagreement && m->declared != BASIRA_PHOTO_UNKNOWN))
        m->used = m->declared;
    else
        m->used = m->detected;
    return BASIRA_OK;
}

json_t *triage_modality_json(const triage_modality *m)
{
    const char *kind = m->used == BASIRA_PHOTO_UNKNOWN ? NULL : triage_kind_code(m->used);
    double p = m->used == BASIRA_PHOTO_CLINICAL ? m->p_clinical : 1.0 - m->p_clinical;
    json_t *j = json_pack(
        "{s:s?, s:o, s:s?, s:s?, s:b, s:b}", "kind", kind, "probability",
        m->detected == BASIRA_PHOTO_UNKNOWN || !kind ? json_null() : json_real(p), "declared",
        m->declared == BASIRA_PHOTO_UNKNOWN ? NULL : triage_kind_code(m->declared), "detected",
        m->detected == BASIRA_PHOTO_UNKNOWN ? NULL : triage_kind_code(m->detected), "confirmed",
        m->confirmed, "disagreement", m->disagreement);
    return j;
}
