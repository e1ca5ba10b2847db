/*
 * case.c - a triage result document (what a node records and syncs) read as a
 * drift case: quality gate, skin tone, probabilities, risk, image statistics.
 */
#include <stdio.h>
#include <string.h>

#include "basira/drift.h"

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

int basira_drift_case_from_result(const json_t *result, const json_t *classes, basira_drift_case *c)
{
    const char *status = json_string_value(json_object_get(result, "status"));
    if (!status || !strcmp(status, "error"))
        return 0;
    c->quality_ok = json_is_true(json_object_get(json_object_get(result, "quality"), "ok"));
    copy(c->skin_tone, sizeof c->skin_tone,
         json_string_value(json_object_get(json_object_get(result, "skin_tone"), "category")));
    json_t *probs = json_object_get(result, "probabilities");
    json_t *risk = json_object_get(result, "risk");
    int k = (int)json_array_size(classes);
    c->scored = !strcmp(status, "ok") && json_is_object(probs) && json_is_object(risk) && k >= 2 &&
                k <= BASIRA_DRIFT_MAX_CLASSES;
    for (int i = 0; c->scored && i < k; i++) {
        json_t *p = json_object_get(probs, json_string_value(json_array_get(classes, (size_t)i)));
        if (!json_is_number(p))
            c->scored = 0;
        else
            c->probs[i] = (float)json_number_value(p);
    }
    if (c->scored) {
        c->num_classes = k;
        c->p_mal = json_number_value(json_object_get(risk, "malignant_probability"));
        c->risk_index = json_number_value(json_object_get(risk, "index"));
        copy(c->category, sizeof c->category, json_string_value(json_object_get(risk, "category")));
        c->scored = c->p_mal >= 0.0 && c->p_mal <= 1.0;
    }
    json_t *st = json_object_get(result, "image_stats"), *rgb = json_object_get(st, "mean_rgb");
    c->has_image_stats = 0;
    if (json_array_size(rgb) == 3 && json_is_number(json_object_get(st, "brightness"))) {
        for (int ch = 0; ch < 3; ch++)
            c->mean_rgb[ch] = json_number_value(json_array_get(rgb, (size_t)ch));
        c->brightness = json_number_value(json_object_get(st, "brightness"));
        c->has_image_stats = 1;
    }
    return 1;
}
