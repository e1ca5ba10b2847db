/*
 * export.h - documents made from a case: the PDF referral letter, the FHIR R4
 * Bundle, and the open CSV/JSON export of many cases.
 *
 * Every function here is a pure function of the case JSON returned by
 * GET /api/v1/cases/{id} (basira_store_case_get(): "id", "patient_ref", "age",
 * "sex", "body_site", "status", "risk", "ai_risk", "ai_risk_index",
 * "created_at", "created_by", "updated_at", "decision", "history", "consent",
 * "images" with each analysis "result") plus, where a photo is shown, the
 * stored photo's bytes (basira_store_photo_get() of the image named by
 * basira_case_report_image()). Nothing is read from the store or the network,
 * so the same case always gives the same document and a clinic can produce it
 * offline.
 *
 * The case JSON is treated as untrusted: missing fields are shown as unknown,
 * wrong types are ignored, and over-long text is cut so the letter stays one
 * page.
 */
#ifndef BASIRA_EXPORT_H
#define BASIRA_EXPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The clinic that sends the letter. Every field may be NULL (left out). */
typedef struct basira_report_info {
    const char *clinic_name;    /* e.g. "Centre de santé Al Amal" */
    const char *clinic_address; /* one line */
    const char *clinic_contact; /* telephone or e-mail */
    int64_t generated_at;       /* unix seconds printed as the letter's date; 0 = now */
    const char *addressee;      /* whom letters are addressed to (a service or a dermatologist);
                                   NULL: the dermatology department, in the letter's language */
} basira_report_info;

/*
 * The image whose photo and analysis a letter or bundle shows: the most recent
 * accepted photo ("kind": "photo" with a result of status "ok"). *image_id = 0
 * when the case has none (the documents then say that no photo was analysed).
 */
basira_code basira_case_report_image(const json_t *case_json, int64_t *image_id, basira_error *err);

/*
 * The one-page A4 referral letter as PDF, in lang "fr", "ar" (right to left,
 * shaped by HarfBuzz through Pango) or "en". Fonts are embedded. photo may be
 * NULL (or photo_len 0): the letter then has no picture. A photo that cannot be
 * decoded is an error (BASIRA_E_NOT_AN_IMAGE, BASIRA_E_CORRUPT, ...), so a
 * letter never silently lacks the picture it should show. clinic may be NULL.
 * On success *pdf is malloc'd (free() it).
 * Errors: BASIRA_E_INVALID_ARGUMENT (not a case object, unknown lang),
 * image errors, BASIRA_E_INTERNAL when cairo fails, BASIRA_E_NOMEM.
 */
basira_code basira_report_pdf(const json_t *case_json, const unsigned char *photo, size_t photo_len,
                              const char *lang, const basira_report_info *clinic,
                              unsigned char **pdf, size_t *pdf_len, basira_error *err);

/*
 * The case as a FHIR R4 Bundle (type "collection"): Patient (the pseudonymous
 * reference only), Consent (care and research purposes, who recorded it, when),
 * Practitioner (the user who recorded the consent), Media (the photo as a
 * base64 attachment; left out when photo is NULL), Device (the model: name,
 * version, SHA-256), Observation (risk index, category as interpretation,
 * per-class probabilities as components, Observation.device), ServiceRequest
 * (the referral; priority urgent for high risk, routine for medium, left out
 * for low risk unless the clinician asked for a referral), DiagnosticReport
 * tying them together. photo_mime is the photo's media type (NULL: image/jpeg).
 * Resource ids are derived from the case, so exporting twice gives the same
 * ids. *bundle is a new reference.
 */
basira_code basira_fhir_bundle(const json_t *case_json, const unsigned char *photo, size_t len,
                               const char *photo_mime, json_t **bundle, basira_error *err);

/*
 * Export many cases (an array of case objects, full or worklist summaries) as
 * "csv" (RFC 4180, header row, columns documented in docs/export.md; cells
 * starting with = + - @ are prefixed with ' so that spreadsheets do not run
 * them as formulas) or "json" ({"format": "basira-cases", "version": 1,
 * "exported_at", "cases": [...]}, each case as given). *out is malloc'd and
 * NUL-terminated; *out_len excludes the NUL.
 * Errors: BASIRA_E_INVALID_ARGUMENT (not an array, unknown format).
 */
basira_code basira_export_cases(const json_t *cases_array, const char *format, char **out,
                                size_t *out_len, basira_error *err);

/* The Content-Type of an export format ("text/csv; charset=utf-8", ...); NULL if unknown. */
const char *basira_export_content_type(const char *format);

#ifdef __cplusplus
}
#endif
#endif
