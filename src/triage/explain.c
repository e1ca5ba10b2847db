/*
 * explain.c - what makes a triage result explain itself: the uncertainty of the
 * score, what the model was validated on (with warnings when the photo is outside
 * it), and the translation of a result's sentences into the language of whoever
 * reads it (the clinic node answers each user in theirs).
 */
#include "basira/i18n.h"
#include "basira/quality.h"
#include "core/i18n.h"
#include "triage_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * What a model was validated on. The metadata of a model file does not say yet, so
 * it is stated here per model name (from models/MODEL_CARD.md); a model that is
 * not listed gets a warning that its validation is unknown.
 */
static const struct {
    const char *model;
    const char *data_set;
    const char *photo_kind;            /* "dermoscopic" | "clinical" */
    basira_skin_tone_category darkest; /* darkest skin-tone category well represented */
    int below_floors; /* fails its acceptance criteria (`basira certify`): said on every result */
} validated[] = {
    {"basira-derm", "HAM10000", "dermoscopic", BASIRA_TONE_INTERMEDIATE, 0},
    /* models/basira-clinical.md: test AUC 0.728, specificity 0.30; certify fails 4 of 5. */
    {"basira-clinical", "Fitzpatrick17k", "clinical", BASIRA_TONE_DARK, 1},
};

/* The warnings a result may carry, as msgids (said in each user's language at the edge). */
static const struct {
    const char *code;
    const char *msgid;
} warnings[] = {
    {"validation_unknown", N_("This model does not state what it was validated on: treat its "
                              "result with caution.")},
    {"photo_kind_outside", N_("This photo was taken without a dermatoscope; the model was "
                              "validated on dermoscopic photos only and may be wrong here.")},
    {"photo_kind_unknown", N_("The model was validated on dermoscopic photos only; if this photo "
                              "was taken without a dermatoscope, its result may be wrong.")},
    {"modality_disagreement",
     N_("The photo kind you declared differs from what the photo looks like: it was analysed as "
        "the kind it looks like. If you are sure, confirm the declared kind.")},
    {"modality_declared_confirmed",
     N_("The photo kind you declared differs from what the photo looks like: it was analysed as "
        "you declared, because you confirmed it.")},
    {"no_model_for_kind", N_("No bundled model is validated for this kind of photo: the risk "
                             "shown comes from a model made for another kind and may be wrong.")},
    {"model_below_floors",
     N_("The model for photos taken without a dermatoscope does not yet meet its acceptance "
        "criteria (it misses many benign lesions and some malignant ones): take its result as a "
        "weak hint and decide on the clinical examination.")},
    {"skin_tone_outside", N_("The skin in this photo looks darker than most skin in the model's "
                             "validation data (mostly light skin): the result is less reliable.")},
};

static const char *warning_msgid(const char *code)
{
    for (size_t i = 0; code && i < sizeof warnings / sizeof warnings[0]; i++)
        if (!strcmp(warnings[i].code, code))
            return warnings[i].msgid;
    return NULL;
}

static int add_warning(json_t *w, const char *code)
{
    const char *m = warning_msgid(code);
    return json_array_append_new(w,
                                 json_pack("{s:s, s:s}", "code", code, "message", m ? _(m) : ""));
}

int triage_add_warning(json_t *validation, const char *code)
{
    json_t *w = json_object_get(validation, "warnings");
    return json_is_array(w) ? add_warning(w, code) : -1;
}

basira_photo_kind triage_model_kind(const char *model_name)
{
    for (size_t i = 0; model_name && i < sizeof validated / sizeof validated[0]; i++)
        if (!strcmp(model_name, validated[i].model))
            return strcmp(validated[i].photo_kind, "clinical") ? BASIRA_PHOTO_DERMOSCOPIC
                                                               : BASIRA_PHOTO_CLINICAL;
    return BASIRA_PHOTO_UNKNOWN;
}

const char *triage_not_skin_msgid(void)
{
    return N_("this photo does not seem to show skin (a document, a screen, a wall?): take a "
              "close-up photo of the skin lesion");
}

/* "validation": what the model was validated on, and warnings when this photo is outside. */
json_t *triage_validation_json(const char *model_name, const basira_skin_tone *tone,
                               basira_photo_kind kind)
{
    int row = -1;
    for (size_t i = 0; i < sizeof validated / sizeof validated[0]; i++)
        if (!strcmp(model_name, validated[i].model))
            row = (int)i;
    json_t *w = json_array(), *tones = json_array();
    if (!w || !tones) {
        json_decref(w);
        json_decref(tones);
        return NULL;
    }
    if (row < 0) {
        json_decref(tones);
        add_warning(w, "validation_unknown");
        return json_pack("{s:n, s:[], s:[], s:o}", "data_set", "photo_kinds", "skin_tones",
                         "warnings", w);
    }
    for (int t = BASIRA_TONE_VERY_LIGHT; t <= (int)validated[row].darkest; t++)
        json_array_append_new(tones, json_string(basira_skin_tone_category_code(t)));
    int dermoscopic = !strcmp(validated[row].photo_kind, "dermoscopic");
    if (dermoscopic && kind == BASIRA_PHOTO_CLINICAL)
        add_warning(w, "photo_kind_outside");
    else if (dermoscopic && kind == BASIRA_PHOTO_UNKNOWN)
        add_warning(w, "photo_kind_unknown");
    if (validated[row].below_floors)
        add_warning(w, "model_below_floors");
    if (tone->category > validated[row].darkest)
        add_warning(w, "skin_tone_outside");
    return json_pack("{s:s, s:[s], s:o, s:o}", "data_set", validated[row].data_set, "photo_kinds",
                     validated[row].photo_kind, "skin_tones", tones, "warnings", w);
}

/*
 * The range of the risk index over the spread samples of the photo: its symmetry views
 * ("tta"), or an ensemble's members on each of its views ("ensemble").
 */
json_t *triage_uncertainty_json(const basira_model_info *info, const float *per_view, int n,
                                int by_member)
{
    double lo = 1, hi = 0;
    for (int v = 0; v < n; v++) {
        double m = 0;
        for (int i = 0; i < info->num_classes; i++)
            if (info->classes[i].malignant)
                m += per_view[(size_t)v * info->num_classes + i];
        m = m > 1 ? 1 : m;
        lo = m < lo ? m : lo;
        hi = m > hi ? m : hi;
    }
    return json_pack("{s:s, s:i, s:I, s:I}", "method", by_member ? "ensemble" : "tta", "views", n,
                     "low", (json_int_t)floor(100.0 * lo + 0.5), "high",
                     (json_int_t)floor(100.0 * hi + 0.5));
}

/* Set obj[key] to msgid in lang when msgid is known. */
static void retranslate(json_t *obj, const char *key, const char *msgid, const basira_translator *t,
                        const char *lang)
{
    if (json_is_object(obj) && msgid && json_object_get(obj, key))
        json_object_set_new(obj, key, json_string(basira_translate(t, lang, msgid)));
}

void basira_triage_localize(json_t *doc, const basira_translator *t, const char *lang)
{
    if (!json_is_object(doc))
        return;
    const char *first = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(doc, "quality"), "checks"), i, c)
    {
        const char *msgid = basira_quality_advice(json_string_value(json_object_get(c, "code")));
        retranslate(c, "message", msgid, t, lang);
        if (!first && json_is_false(json_object_get(c, "passed")) && msgid)
            first = msgid;
    }
    json_t *e = json_object_get(doc, "error");
    const char *ecode = json_string_value(json_object_get(e, "code"));
    if (first && ecode && !strcmp(ecode, "quality_rejected")) {
        basira_msg m;
        char text[BASIRA_ERROR_MESSAGE_MAX];
        basira_msg_set(&m, N_("the photo did not pass the quality check: %s"),
                       basira_translate(t, lang, first));
        json_object_set_new(e, "message",
                            json_string(basira_msg_text(&m, t, lang, text, sizeof text)));
    }
    if (ecode && !strcmp(ecode, "not_skin"))
        retranslate(e, "message", triage_not_skin_msgid(), t, lang);
    json_t *risk = json_object_get(doc, "risk");
    const char *cat = json_string_value(json_object_get(risk, "category"));
    for (int k = BASIRA_RISK_LOW; cat && k <= BASIRA_RISK_HIGH; k++)
        if (!strcmp(cat, basira_risk_category_code((basira_risk_category)k)))
            retranslate(risk, "action", basira_risk_action_msgid((basira_risk_category)k), t, lang);
    retranslate(json_object_get(doc, "primary_care"), "advice", basira_primary_care_advice_msgid(),
                t, lang);
    retranslate(doc, "disclaimer", basira_disclaimer_msgid(), t, lang);
    json_array_foreach(json_object_get(json_object_get(doc, "validation"), "warnings"), i, c)
        retranslate(c, "message", warning_msgid(json_string_value(json_object_get(c, "code"))), t,
                    lang);
}
