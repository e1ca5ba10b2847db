/*
 * case.h - the case service: the one place where a case is created, gets its
 * photos analysed, is decided by a clinician and becomes documents (referral
 * letter, FHIR bundle, open export).
 *
 * The flow of a case (docs/architecture.md):
 *
 *   server handler / CLI command
 *        -> basira_case_* (this module: policy, audit of refusals)
 *             -> analyzer (the triage pipeline: intake -> quality -> model -> triage)
 *             -> store (SQLCipher: cases, photos, decisions, audit in one transaction)
 *             -> export (PDF, FHIR, CSV/JSON: pure functions of the case record)
 *
 * The HTTP server and the `basira` program are thin users: they parse their
 * input into the typed values below, call one function, and present what it
 * returns. Neither talks to the store about cases, nor to the exporters, on
 * its own.
 *
 * Values between modules are typed (basira_triage_result, basira_case_new,
 * basira_decision, basira_case_history); the case record itself (the object
 * of basira_store_case_get) stays a JSON document because it is what the API
 * returns and what the exporters render, unchanged.
 *
 * Privacy fails closed: a photo is stored only as the analyser's cleaned copy
 * (re-encoded without metadata). An analyser that says "ok" without a cleaned
 * copy, or that fails to make one, gets the upload refused and nothing of it
 * is stored; the refusal is audited.
 *
 * A basira_case_service is safe to use from several threads (it holds no
 * mutable state of its own; the store serialises its work).
 */
#ifndef BASIRA_CASE_H
#define BASIRA_CASE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"
#include "basira/export.h"
#include "basira/store.h"
#include "basira/triage.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Analyses an uploaded photo. Must be safe to call from several threads.
 * Fills *out (initialised by the caller with basira_triage_result_init):
 *   status OK       scored: category, risk_index, document, and clean /
 *                   clean_len / clean_mime, the photo to store re-encoded
 *                   without metadata (required: without it the photo is refused);
 *   status REJECTED failed the quality gate (document has the checks);
 *   status ERROR    not decodable (error says why).
 * Returns BASIRA_OK when *out was produced; BASIRA_E_UNSUPPORTED when no model
 * is available (the API answers 503); other codes for failures (the photo is
 * then refused and nothing is stored).
 * `basira serve` plugs in basira_pipeline_analyze; tests plug in fakes.
 */
typedef struct basira_analyzer {
    basira_code (*analyze)(void *ctx, const void *data, size_t len, const basira_history *history,
                           basira_triage_result *out, basira_error *err);
    void *ctx;
    /* Optional: the same, told how the photo was taken (its result then says whether the
     * photo is inside what the model was validated on). Used instead of analyze when set. */
    basira_code (*analyze_kind)(void *ctx, const void *data, size_t len,
                                const basira_history *history, basira_photo_kind kind,
                                basira_triage_result *out, basira_error *err);
    /* Optional: the same with the declaration confirmed or not (issue 11: the declared
     * kind wins over the detector only when confirmed). Used first when set. */
    basira_code (*analyze_declared)(void *ctx, const void *data, size_t len,
                                    const basira_history *history, basira_photo_kind kind,
                                    int confirmed, basira_triage_result *out, basira_error *err);
} basira_analyzer;

typedef struct basira_case_service basira_case_service;

/*
 * A service over st (which must outlive it). analyzer NULL (or its analyze
 * NULL): photos answer BASIRA_E_UNSUPPORTED. clinic NULL: letters carry the
 * generic heading; otherwise its strings must outlive the service.
 */
basira_code basira_case_service_new(basira_store *st, const basira_analyzer *analyzer,
                                    const basira_report_info *clinic, basira_case_service **out,
                                    basira_error *err);
/*
 * Replace the clinic printed on letters (copied; NULL or no name: the generic
 * heading), e.g. when the hub sends a new site configuration to a running
 * node: letters being written finish with the old one, later ones get the new.
 */
basira_code basira_case_service_set_clinic(basira_case_service *svc,
                                           const basira_report_info *clinic, basira_error *err);
void basira_case_service_free(basira_case_service *svc);

/* 1 when photos can be analysed (a model is installed). */
int basira_case_service_can_analyze(const basira_case_service *svc);

/* The store the service works on (for what is not about cases: users, sessions). */
basira_store *basira_case_service_store(basira_case_service *svc);

/*
 * Record a new case. Without consent for care: BASIRA_E_CONSENT, nothing
 * stored, and the refusal is audited (a failed audit write is the error then).
 */
basira_code basira_case_create(basira_case_service *svc, const basira_actor *who,
                               const basira_case_new *c, int64_t *id, basira_error *err);

/* The case record (see basira_store_case_get; audited). */
basira_code basira_case_get(basira_case_service *svc, const basira_actor *who, int64_t id,
                            json_t **out, basira_error *err);

/* The worklist (see basira_store_case_list; audited). */
basira_code basira_case_list(basira_case_service *svc, const basira_actor *who,
                             const basira_case_filter *f, json_t **out, basira_error *err);

/* A stored photo and the case it belongs to (see basira_store_photo_get; audited). */
basira_code basira_case_photo(basira_case_service *svc, const basira_actor *who, int64_t image_id,
                              unsigned char **data, size_t *len, char mime[32], int64_t *case_id,
                              basira_error *err);

/* What happened to an uploaded photo. */
typedef struct basira_photo_outcome {
    basira_triage_result result; /* the analysis (owned: basira_photo_outcome_clear) */
    int64_t image_id;            /* status OK: the stored photo */
    int64_t quality_event_id;    /* status REJECTED: the recorded quality event */
} basira_photo_outcome;

void basira_photo_outcome_clear(basira_photo_outcome *o);

/*
 * Analyse a photo with the case's history and file it:
 *   status OK       -> the cleaned photo and its analysis are stored, the
 *                      case's AI risk updated (o->image_id);
 *   status REJECTED -> only a quality event is stored, never the photo;
 *   status ERROR    -> (undecodable) nothing but an audit entry.
 * These three return BASIRA_OK with o->result telling which. Any other failure
 * (no model: BASIRA_E_UNSUPPORTED; no case: BASIRA_E_NOT_FOUND; analysis or
 * metadata stripping failed; store or audit failure) returns its code and
 * nothing of the photo is stored. o must be cleared by the caller in every case.
 */
basira_code basira_case_add_photo(basira_case_service *svc, const basira_actor *who,
                                  int64_t case_id, const void *data, size_t len,
                                  basira_photo_outcome *o, basira_error *err);

/* basira_case_add_photo, told how the photo was taken (dermatoscope or not). */
basira_code basira_case_add_photo_kind(basira_case_service *svc, const basira_actor *who,
                                       int64_t case_id, const void *data, size_t len,
                                       basira_photo_kind kind, basira_photo_outcome *o,
                                       basira_error *err);

/* The same, with the kind confirmed by the user (it then wins over the photo-kind detector). */
basira_code basira_case_add_photo_declared(basira_case_service *svc, const basira_actor *who,
                                           int64_t case_id, const void *data, size_t len,
                                           basira_photo_kind kind, int confirmed,
                                           basira_photo_outcome *o, basira_error *err);

/* A clinician's decision (see basira_store_decision). */
basira_code basira_case_decide(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                               const basira_decision *d, basira_error *err);

/*
 * A new version of the case's decision by a clinician of role, amending the
 * version if_match (-1: whatever is current). BASIRA_E_PRECONDITION when the
 * case changed since; see basira_store_decision_add.
 */
basira_code basira_case_decide_versioned(basira_case_service *svc, const basira_actor *who,
                                         basira_role role, int64_t case_id,
                                         const basira_decision *d, int64_t if_match,
                                         int64_t *version, basira_error *err);

/* Every case of a patient over time, with their photos (see basira_store_patient_get). */
basira_code basira_case_patient(basira_case_service *svc, const basira_actor *who,
                                const char *patient_ref, json_t **out, basira_error *err);

/*
 * The one-page referral letter of a case as PDF in lang ("fr", "ar", "en"),
 * with its most recent analysed photo (none once retention purged it) and the
 * service's clinic. *pdf is malloc'd.
 */
basira_code basira_case_letter(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                               const char *lang, unsigned char **pdf, size_t *len,
                               basira_error *err);

/* The case as a FHIR R4 Bundle (new reference), photo included when stored. */
basira_code basira_case_fhir(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                             json_t **bundle, basira_error *err);

/*
 * Every case who may see, each as its full record, exported as format ("csv"
 * or "json", see basira_export_cases). *out is malloc'd and NUL-terminated;
 * *n_cases (may be NULL) gets how many cases it holds. The export is audited
 * with its outcome; when the audit entry cannot be written the export fails
 * and nothing is returned.
 */
basira_code basira_case_export(basira_case_service *svc, const basira_actor *who,
                               const char *format, char **out, size_t *len, size_t *n_cases,
                               basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
