/*
 * model_info.c - the "basira" metadata of a model file (model.h): parsed strictly,
 * written back, and the recalibration of P(malignant) it states.
 *
 * Everything that changes the meaning of the output (classes and which are
 * malignant, preprocessing, temperature, the malignant recalibration, thresholds)
 * must be stated by the model itself. A model file is an external input (a clinic
 * may receive one on a USB stick), so every field is checked and the message names
 * the field at fault.
 */
#include "basira/model.h"
#include "core/i18n.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The calibration temperature is fitted on validation data; outside this range it is a bug. */
#define MODEL_MIN_TEMPERATURE 0.05
#define MODEL_MAX_TEMPERATURE 20.0
/* ---- metadata ------------------------------------------------------------------ */

static basira_code meta_error(basira_error *err, const char *field, const char *rule)
{
    return basira_error_set(err, BASIRA_E_MODEL, _("model metadata: field \"%s\": %s"), field,
                            rule);
}

/* Copy a JSON string of 1..cap-1 bytes into dst. */
static int copy_string(const json_t *v, char *dst, size_t cap)
{
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    size_t n = json_string_length(v);
    if (n == 0 || n >= cap || strlen(s) != n) /* embedded NUL */
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

static int valid_code(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

basira_code basira_model_classes_from_json(const json_t *classes, basira_model_info *info,
                                           basira_error *err)
{
    if (!info)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!json_is_array(classes))
        return meta_error(err, "classes", _("must be an array"));
    size_t n = json_array_size(classes);
    if (n < 2 || n > BASIRA_MODEL_MAX_CLASSES)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model metadata: field \"classes\": must list 2 to %d classes"),
                                BASIRA_MODEL_MAX_CLASSES);
    int n_malignant = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(classes, i);
        basira_model_class *k = &info->classes[i];
        memset(k, 0, sizeof *k);
        if (!json_is_object(c))
            return meta_error(err, "classes", _("every class must be an object"));
        if (copy_string(json_object_get(c, "code"), k->code, sizeof k->code) ||
            !valid_code(k->code))
            return meta_error(err, "classes[].code",
                              _("must be a short code of letters, digits, _, - or ."));
        for (size_t j = 0; j < i; j++)
            if (!strcmp(info->classes[j].code, k->code))
                return basira_error_set(err, BASIRA_E_MODEL,
                                        _("model metadata: class code \"%s\" appears twice"),
                                        k->code);
        const json_t *names = json_object_get(c, "names");
        if (!json_is_object(names) ||
            copy_string(json_object_get(names, "en"), k->name_en, sizeof k->name_en) ||
            copy_string(json_object_get(names, "fr"), k->name_fr, sizeof k->name_fr) ||
            copy_string(json_object_get(names, "ar"), k->name_ar, sizeof k->name_ar))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("model metadata: class \"%s\" needs \"names\" with "
                                      "non-empty \"en\", \"fr\" and \"ar\" (under %d bytes)"),
                                    k->code, BASIRA_MODEL_NAME_MAX);
        const json_t *mal = json_object_get(c, "malignant");
        if (!json_is_boolean(mal))
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("model metadata: class \"%s\" needs \"malignant\": true or false"), k->code);
        k->malignant = json_is_true(mal);
        n_malignant += k->malignant;
        k->partition = basira_partition_of(json_object_get(c, "partition"), k->code, k->malignant);
        if (k->partition < 0)
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("model metadata: class \"%s\": \"partition\" must be "
                                      "\"malignant\" (exactly when malignant), \"benign\" or "
                                      "\"non-neoplastic\""),
                                    k->code);
    }
    /*
     * A model without any malignant class would report a risk of 0 for every photo:
     * that is never a usable triage model, so it is refused rather than trusted.
     */
    if (n_malignant == 0)
        return meta_error(err, "classes", _("no class is marked malignant"));
    info->num_classes = (int)n;
    return BASIRA_OK;
}

static int get_number(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

basira_code basira_model_info_from_json(const json_t *j, basira_model_info *out, basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!json_is_object(j))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model metadata: \"basira\" must be a JSON object"));
    basira_model_info *m = calloc(1, sizeof *m);
    if (!m)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = BASIRA_OK;
    if (copy_string(json_object_get(j, "name"), m->name, sizeof m->name)) {
        rc = meta_error(err, "name", _("must be a non-empty string under 64 bytes"));
        goto out;
    }
    if (copy_string(json_object_get(j, "version"), m->version, sizeof m->version)) {
        rc = meta_error(err, "version", _("must be a non-empty string under 32 bytes"));
        goto out;
    }
    if ((rc = basira_model_classes_from_json(json_object_get(j, "classes"), m, err)))
        goto out;
    if ((rc =
             basira_preprocess_from_json(json_object_get(j, "preprocessing"), &m->preprocess, err)))
        goto out;
    if (get_number(j, "temperature", &m->temperature) || m->temperature < MODEL_MIN_TEMPERATURE ||
        m->temperature > MODEL_MAX_TEMPERATURE) {
        rc = basira_error_set(
            err, BASIRA_E_MODEL,
            _("model metadata: field \"temperature\": must be a number from %g to %g"),
            MODEL_MIN_TEMPERATURE, MODEL_MAX_TEMPERATURE);
        goto out;
    }
    const json_t *th = json_object_get(j, "thresholds");
    if (!json_is_object(th) || get_number(th, "high", &m->threshold_high) ||
        get_number(th, "medium", &m->threshold_medium) || !(m->threshold_medium >= 0) ||
        !(m->threshold_high > 0) || m->threshold_high > 1 ||
        m->threshold_medium > m->threshold_high) {
        rc = meta_error(err, "thresholds",
                        _("needs \"high\" and \"medium\" with 0 <= medium <= high <= 1"));
        goto out;
    }
    /* Optional: the P(non-neoplastic) of the primary-care rule, chosen on validation. */
    if (json_object_get(th, "non_neoplastic") &&
        (get_number(th, "non_neoplastic", &m->threshold_non_neoplastic) ||
         !(m->threshold_non_neoplastic > 0) || m->threshold_non_neoplastic > 1)) {
        rc = meta_error(err, "thresholds",
                        _("\"non_neoplastic\" must be a number above 0, at most 1"));
        goto out;
    }
    const json_t *bias = json_object_get(j, "malignant_bias");
    m->malignant_bias = 0.0;
    if (bias &&
        (!json_is_number(bias) || !(fabs(json_number_value(bias)) <= BASIRA_MODEL_MAX_BIAS))) {
        rc = basira_error_set(
            err, BASIRA_E_MODEL,
            _("model metadata: field \"malignant_bias\": must be a number from %g to %g"),
            -BASIRA_MODEL_MAX_BIAS, BASIRA_MODEL_MAX_BIAS);
        goto out;
    }
    if (bias)
        m->malignant_bias = json_number_value(bias);
    const json_t *slope = json_object_get(j, "malignant_slope");
    m->malignant_slope = 1.0;
    if (slope &&
        (!json_is_number(slope) || !(json_number_value(slope) >= BASIRA_MODEL_MIN_SLOPE &&
                                     json_number_value(slope) <= BASIRA_MODEL_MAX_SLOPE))) {
        rc = basira_error_set(
            err, BASIRA_E_MODEL,
            _("model metadata: field \"malignant_slope\": must be a number from %g to %g"),
            BASIRA_MODEL_MIN_SLOPE, BASIRA_MODEL_MAX_SLOPE);
        goto out;
    }
    if (slope)
        m->malignant_slope = json_number_value(slope);
    const json_t *tta = json_object_get(j, "tta");
    json_int_t t = json_is_integer(tta) ? json_integer_value(tta) : 0;
    if (t != 1 && t != 2 && t != 4 && t != 8) {
        rc = meta_error(err, "tta", _("must be 1, 2, 4 or 8"));
        goto out;
    }
    m->tta = (int)t;
    /* The 90-degree rotations of TTA 8 only keep the tensor's shape for a square input. */
    if (m->tta == 8 && m->preprocess.input_w != m->preprocess.input_h) {
        rc = meta_error(err, "tta", _("8 views need a square input size"));
        goto out;
    }
    const json_t *q = json_object_get(j, "int8");
    if (q && (!json_is_object(q) || !json_is_boolean(json_object_get(q, "default")))) {
        rc = meta_error(err, "int8", _("must be an object with a true or false \"default\""));
        goto out;
    }
    m->int8_default = q && json_is_true(json_object_get(q, "default"));
    *out = *m;
out:
    free(m);
    return rc;
}

basira_code basira_model_info_parse(const char *text, size_t len, basira_model_info *out,
                                    basira_error *err)
{
    if (!text || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    json_error_t jerr;
    /* Depth and size are bounded by jansson and by the safetensors header limit. */
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model metadata: invalid JSON at line %d: %s"), jerr.line,
                                jerr.text);
    basira_code rc = basira_model_info_from_json(j, out, err);
    json_decref(j);
    return rc;
}

json_t *basira_model_info_to_json(const basira_model_info *m)
{
    if (!m)
        return NULL;
    json_t *classes = json_array();
    for (int i = 0; classes && i < m->num_classes; i++) {
        const basira_model_class *k = &m->classes[i];
        json_array_append_new(
            classes, json_pack("{s:s, s:{s:s, s:s, s:s}, s:b, s:s}", "code", k->code, "names", "en",
                               k->name_en, "fr", k->name_fr, "ar", k->name_ar, "malignant",
                               k->malignant, "partition", basira_partition_code(k->partition)));
    }
    json_t *doc = json_pack("{s:s, s:s, s:o, s:o, s:f, s:{s:f, s:f}, s:i}", "name", m->name,
                            "version", m->version, "classes", classes, "preprocessing",
                            basira_preprocess_to_json(&m->preprocess), "temperature",
                            m->temperature, "thresholds", "high", m->threshold_high, "medium",
                            m->threshold_medium, "tta", m->tta);
    if (doc && m->threshold_non_neoplastic > 0 &&
        json_object_set_new(json_object_get(doc, "thresholds"), "non_neoplastic",
                            json_real(m->threshold_non_neoplastic))) {
        json_decref(doc);
        return NULL;
    }
    /* Only a recalibrated model carries a bias: the documents of the others stay as they were. */
    if (doc && m->malignant_bias != 0.0 &&
        json_object_set_new(doc, "malignant_bias", json_real(m->malignant_bias))) {
        json_decref(doc);
        return NULL;
    }
    if (doc && m->malignant_slope != 1.0 &&
        json_object_set_new(doc, "malignant_slope", json_real(m->malignant_slope))) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

void basira_model_shift_malignant(const basira_model_info *info, float *probs, double bias)
{
    if (!info || !probs || bias == 0.0)
        return;
    double f = exp(bias), s = 0.0, q[BASIRA_MODEL_MAX_CLASSES];
    for (int j = 0; j < info->num_classes; j++)
        s += q[j] = probs[j] * (info->classes[j].malignant ? f : 1.0);
    for (int j = 0; s > 0.0 && j < info->num_classes; j++)
        probs[j] = (float)(q[j] / s);
}

void basira_model_map_malignant(const basira_model_info *info, float *probs)
{
    if (!info || !probs)
        return;
    if (info->malignant_slope == 1.0) {
        basira_model_shift_malignant(info, probs, info->malignant_bias);
        return;
    }
    double p = 0.0;
    for (int j = 0; j < info->num_classes; j++)
        p += info->classes[j].malignant ? probs[j] : 0.0;
    if (!(p > 0.0 && p < 1.0))
        return;
    double q =
        1.0 / (1.0 + exp(-(info->malignant_slope * log(p / (1.0 - p)) + info->malignant_bias)));
    double fm = q / p, fb = (1.0 - q) / (1.0 - p);
    for (int j = 0; j < info->num_classes; j++)
        probs[j] = (float)(probs[j] * (info->classes[j].malignant ? fm : fb));
}

const char *basira_model_class_name(const basira_model_class *c, const char *lang)
{
    if (!c)
        return "";
    if (lang && !strncmp(lang, "fr", 2))
        return c->name_fr;
    if (lang && !strncmp(lang, "ar", 2))
        return c->name_ar;
    return c->name_en;
}
