/*
 * fixtures.h - case objects shaped exactly like GET /api/v1/cases/{id}
 * (basira_store_case_get + the pipeline's result), and a small synthetic photo.
 */
#ifndef BASIRA_TEST_EXPORT_FIXTURES_H
#define BASIRA_TEST_EXPORT_FIXTURES_H

#include "basira/image.h"
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A triage result of status "ok" for the given category and index. */
static inline json_t *fixture_result(const char *category, int index)
{
    double pmel = index / 100.0 * 0.7, pbcc = index / 100.0 * 0.3;
    double rest = 1.0 - pmel - pbcc;
    return json_pack(
        "{s:s, s:{s:b, s:[{s:s, s:f, s:f, s:b, s:s}]}, s:{s:f, s:s},"
        " s:{s:f, s:f, s:f, s:f, s:f, s:f, s:f},"
        " s:[{s:s, s:s, s:f}, {s:s, s:s, s:f}, {s:s, s:s, s:f}],"
        " s:{s:i, s:f, s:s, s:s, s:[], s:{s:f, s:f}},"
        " s:{s:s, s:s, s:s}, s:s}",
        "status", "ok", "quality", "ok", 1, "checks", "code", "sharpness", "value", 120.0,
        "threshold", 40.0, "passed", 1, "message", "", "skin_tone", "ita", 12.5, "category", "tan",
        "probabilities", "akiec", 0.0, "bcc", pbcc, "bkl", rest * 0.2, "df", 0.0, "mel", pmel, "nv",
        rest * 0.8, "vasc", 0.0, "candidates", "code", "mel", "name", "Melanoma", "probability",
        pmel, "code", "nv", "name", "Melanocytic naevus (mole)", "probability", rest * 0.8, "code",
        "bcc", "name", "Basal cell carcinoma", "probability", pbcc, "risk", "index", index,
        "malignant_probability", index / 100.0, "category", category, "action",
        "Priority referral to a dermatologist.", "raised_by", "thresholds", "high", 0.3, "medium",
        0.1, "model", "name", "basira-derm", "version", "1.2.0", "sha256",
        "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c", "disclaimer",
        "Decision support, not a diagnosis: a qualified clinician must confirm every decision.");
}

/*
 * A full case. category NULL: no photo analysed. decision_outcome NULL: not
 * reviewed; else "accepted"/"overridden" with referral and reason.
 */
static inline json_t *fixture_case(int64_t id, const char *patient_ref, const char *category,
                                   int index, const char *decision_outcome, const char *referral,
                                   const char *reason)
{
    json_t *c = json_pack("{s:I, s:s, s:i, s:s, s:s, s:s, s:s?, s:s?, s:f, s:s, s:s, s:s,"
                          " s:{s:b, s:b, s:n, s:f}, s:{s:b, s:b, s:s, s:s}, s:[]}",
                          "id", (json_int_t)id, "patient_ref", patient_ref, "age", 58, "sex",
                          "female", "body_site", "dos, omoplate gauche", "status",
                          decision_outcome ? "reviewed" : "triaged", "risk", category, "ai_risk",
                          category, "ai_risk_index", (double)index, "created_at",
                          "2026-11-22T09:15:00Z", "created_by", "nurse1", "updated_at",
                          "2026-11-22T10:05:00Z", "history", "changed", 1, "bleeding", 0, "itching",
                          "duration_months", 7.5, "consent", "care", 1, "research", 1,
                          "recorded_by", "nurse1", "recorded_at", "2026-11-22T09:15:00Z", "images");
    if (!category)
        json_object_set_new(c, "ai_risk_index", json_null());
    if (category) {
        json_array_append_new(json_object_get(c, "images"),
                              json_pack("{s:i, s:s, s:s, s:s, s:{s:s}, s:b}", "id", 3, "kind",
                                        "quality_event", "created_at", "2026-11-22T09:20:00Z",
                                        "created_by", "nurse1", "result", "status", "rejected",
                                        "photo_stored", 0));
        json_array_append_new(json_object_get(c, "images"),
                              json_pack("{s:i, s:s, s:s, s:s, s:o, s:b}", "id", 4, "kind", "photo",
                                        "created_at", "2026-11-22T09:21:00Z", "created_by",
                                        "nurse1", "result", fixture_result(category, index),
                                        "photo_stored", 1));
    }
    if (decision_outcome) {
        json_object_set_new(c, "decision",
                            json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "outcome",
                                      decision_outcome, "category", category ? category : "medium",
                                      "ai_category", category, "reason", reason, "referral",
                                      referral ? referral : "none", "decided_by", "dr.amrani",
                                      "decided_at", "2026-11-22T10:05:00Z"));
        /* Decisions are versions: an earlier one by a dermatologist, then this one. */
        json_t *first = json_pack(
            "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "version", 1, "decided_by", "dr.bennani",
            "role", "dermatologist", "decided_at", "2026-11-22T09:50:00Z", "outcome", "accepted",
            "category", category ? category : "medium", "referral", "none", "reason", "first look");
        json_t *latest = json_deep_copy(json_object_get(c, "decision"));
        json_object_set_new(latest, "version", json_integer(2));
        json_object_set_new(latest, "role", json_string("gp"));
        json_object_set_new(c, "decisions", json_pack("[o, o]", first, latest));
    } else {
        json_object_set_new(c, "decision", json_null());
        json_object_set_new(c, "decisions", json_array());
    }
    return c;
}

/* A 240x180 JPEG: a brown disc on skin tone, so the letter has a real picture. */
static inline int fixture_photo(unsigned char **jpeg, size_t *len)
{
    int w = 240, h = 180;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * ((size_t)y * w + x);
            int dx = x - w / 2, dy = y - h / 2, in = dx * dx + dy * dy < 50 * 50;
            p[0] = in ? 90 : 224;
            p[1] = in ? 55 : 172;
            p[2] = in ? 40 : 140;
        }
    basira_image *img = NULL;
    int rc = basira_image_from_rgb(rgb, w, h, &img, NULL) ||
             basira_image_encode_jpeg(img, 90, jpeg, len, NULL);
    basira_image_free(img);
    free(rgb);
    return rc ? -1 : 0;
}

#endif
