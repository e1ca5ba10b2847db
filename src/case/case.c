/*
 * case.c - the case service (include/basira/case.h): create, add a photo,
 * decide, and the documents of a case. Policy lives here; storage in the store,
 * analysis behind the analyzer, rendering in export.
 */
#include "basira/case.h"
#include "core/i18n.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct basira_case_service {
    basira_store *store;
    basira_analyzer analyzer;
    /* The clinic on the letters: replaced while serving when the hub sends a site
     * configuration, so letters read it under clinic_lock and it owns its strings. */
    pthread_rwlock_t clinic_lock;
    basira_report_info clinic;
    char *clinic_text[4]; /* name, address, contact, addressee */
    int has_clinic;
};

static void clinic_clear(basira_case_service *svc)
{
    for (int i = 0; i < 4; i++) {
        free(svc->clinic_text[i]);
        svc->clinic_text[i] = NULL;
    }
    memset(&svc->clinic, 0, sizeof svc->clinic);
    svc->has_clinic = 0;
}

/* Copy clinic in (lock held for writing, or not yet shared); nothing changes on failure. */
static basira_code clinic_set(basira_case_service *svc, const basira_report_info *clinic,
                              basira_error *err)
{
    if (!clinic || !clinic->clinic_name) {
        clinic_clear(svc);
        return BASIRA_OK;
    }
    const char *from[4] = {clinic->clinic_name, clinic->clinic_address, clinic->clinic_contact,
                           clinic->addressee};
    char *copy[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++)
        if (from[i] && !(copy[i] = strdup(from[i]))) {
            for (int j = 0; j < i; j++)
                free(copy[j]);
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
    clinic_clear(svc);
    memcpy(svc->clinic_text, copy, sizeof copy);
    svc->clinic = (basira_report_info){.clinic_name = copy[0],
                                       .clinic_address = copy[1],
                                       .clinic_contact = copy[2],
                                       .generated_at = clinic->generated_at,
                                       .addressee = copy[3]};
    svc->has_clinic = 1;
    return BASIRA_OK;
}

basira_code basira_case_service_new(basira_store *st, const basira_analyzer *analyzer,
                                    const basira_report_info *clinic, basira_case_service **out,
                                    basira_error *err)
{
    if (!out || !st)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_case_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    svc->store = st;
    if (analyzer)
        svc->analyzer = *analyzer;
    basira_code rc = clinic_set(svc, clinic, err);
    if (rc) {
        free(svc);
        return rc;
    }
    pthread_rwlock_init(&svc->clinic_lock, NULL);
    *out = svc;
    return BASIRA_OK;
}

basira_code basira_case_service_set_clinic(basira_case_service *svc,
                                           const basira_report_info *clinic, basira_error *err)
{
    if (!svc)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    pthread_rwlock_wrlock(&svc->clinic_lock);
    basira_code rc = clinic_set(svc, clinic, err);
    pthread_rwlock_unlock(&svc->clinic_lock);
    return rc;
}

void basira_case_service_free(basira_case_service *svc)
{
    if (!svc)
        return;
    clinic_clear(svc);
    pthread_rwlock_destroy(&svc->clinic_lock);
    free(svc);
}

int basira_case_service_can_analyze(const basira_case_service *svc)
{
    return svc && svc->analyzer.analyze != NULL;
}

basira_store *basira_case_service_store(basira_case_service *svc)
{
    return svc ? svc->store : NULL;
}

basira_code basira_case_create(basira_case_service *svc, const basira_actor *who,
                               const basira_case_new *c, int64_t *id, basira_error *err)
{
    /* The store records a refusal of consent in the audit trail itself. */
    return basira_store_case_create(svc->store, who, c, id, err);
}

basira_code basira_case_get(basira_case_service *svc, const basira_actor *who, int64_t id,
                            json_t **out, basira_error *err)
{
    return basira_store_case_get(svc->store, who, id, out, err);
}

basira_code basira_case_list(basira_case_service *svc, const basira_actor *who,
                             const basira_case_filter *f, json_t **out, basira_error *err)
{
    return basira_store_case_list(svc->store, who, f, out, err);
}

basira_code basira_case_photo(basira_case_service *svc, const basira_actor *who, int64_t image_id,
                              unsigned char **data, size_t *len, char mime[32], int64_t *case_id,
                              basira_error *err)
{
    return basira_store_photo_get(svc->store, who, image_id, data, len, mime, case_id, err);
}

void basira_photo_outcome_clear(basira_photo_outcome *o)
{
    if (!o)
        return;
    basira_triage_result_clear(&o->result);
    o->image_id = 0;
    o->quality_event_id = 0;
}

/* Audit a photo that was not filed; the audit failing is the error to report then. */
static basira_code audit_refusal(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                                 const char *outcome, const char *detail, basira_code rc,
                                 basira_error *err)
{
    basira_error aerr;
    if (basira_store_audit_append(svc->store, who, "image_add", case_id, outcome, detail, &aerr)) {
        if (err)
            *err = aerr;
        return aerr.code;
    }
    return rc;
}

basira_code basira_case_add_photo(basira_case_service *svc, const basira_actor *who,
                                  int64_t case_id, const void *data, size_t len,
                                  basira_photo_outcome *o, basira_error *err)
{
    return basira_case_add_photo_kind(svc, who, case_id, data, len, BASIRA_PHOTO_UNKNOWN, o, err);
}

basira_code basira_case_add_photo_kind(basira_case_service *svc, const basira_actor *who,
                                       int64_t case_id, const void *data, size_t len,
                                       basira_photo_kind kind, basira_photo_outcome *o,
                                       basira_error *err)
{
    return basira_case_add_photo_declared(svc, who, case_id, data, len, kind, 0, o, err);
}

basira_code basira_case_add_photo_declared(basira_case_service *svc, const basira_actor *who,
                                           int64_t case_id, const void *data, size_t len,
                                           basira_photo_kind kind, int confirmed,
                                           basira_photo_outcome *o, basira_error *err)
{
    memset(o, 0, sizeof *o);
    basira_triage_result_init(&o->result);
    if (!data || len == 0)
        return basira_error_setm(err, BASIRA_E_EMPTY_FILE, N_("the photo is empty"));
    basira_case_history ch;
    basira_code rc = basira_store_case_history(svc->store, case_id, &ch, err);
    if (rc)
        return rc;
    if (!basira_case_service_can_analyze(svc))
        return basira_error_setm(
            err, BASIRA_E_UNSUPPORTED,
            N_("photo analysis is not available on this node (no model installed)"));
    basira_history h = {.changed = ch.changed,
                        .bleeding = ch.bleeding,
                        .rapid_growth = ch.rapid_growth,
                        .itching = ch.itching,
                        .duration_months = ch.duration_months};

    basira_triage_result *r = &o->result;
    rc = svc->analyzer.analyze_declared
             ? svc->analyzer.analyze_declared(svc->analyzer.ctx, data, len, &h, kind, confirmed, r,
                                              err)
         : svc->analyzer.analyze_kind
             ? svc->analyzer.analyze_kind(svc->analyzer.ctx, data, len, &h, kind, r, err)
             : svc->analyzer.analyze(svc->analyzer.ctx, data, len, &h, r, err);
    if (rc) {
        basira_triage_result_clear(r);
        if (rc == BASIRA_E_UNSUPPORTED)
            return rc;
        return audit_refusal(svc, who, case_id, "refused", basira_code_name(rc), rc, err);
    }
    if (r->status == BASIRA_TRIAGE_ERROR) {
        /* Undecodable: nothing kept but the fact it happened. */
        return audit_refusal(svc, who, case_id, "undecodable", basira_code_name(r->error.code),
                             BASIRA_OK, err);
    }
    int accepted = r->status == BASIRA_TRIAGE_OK;
    if (accepted && (!r->clean || !r->clean_len || !r->clean_mime)) {
        /* Fail closed: never keep the upload as received (EXIF, GPS and all). */
        basira_triage_result_clear(r);
        basira_error_setm(err, BASIRA_E_INTERNAL,
                          N_("the photo could not be stripped of its metadata; it was not stored"));
        return audit_refusal(svc, who, case_id, "refused", "no_clean_copy", BASIRA_E_INTERNAL, err);
    }
    basira_image_record rec = {r->document, accepted ? (int)r->category : -1,
                               accepted ? (double)r->risk_index : -1.0};
    int64_t id = 0;
    rc = basira_store_image_add(svc->store, who, case_id, accepted ? r->clean : NULL,
                                accepted ? r->clean_len : 0, accepted ? r->clean_mime : NULL, &rec,
                                accepted, &id, err);
    if (rc) {
        basira_triage_result_clear(r);
        return rc;
    }
    if (accepted)
        o->image_id = id;
    else
        o->quality_event_id = id;
    return BASIRA_OK;
}

basira_code basira_case_decide(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                               const basira_decision *d, basira_error *err)
{
    return basira_store_decision(svc->store, who, case_id, d, err);
}

basira_code basira_case_decide_versioned(basira_case_service *svc, const basira_actor *who,
                                         basira_role role, int64_t case_id,
                                         const basira_decision *d, int64_t if_match,
                                         int64_t *version, basira_error *err)
{
    return basira_store_decision_add(svc->store, who, role, case_id, d, if_match, version, err);
}

basira_code basira_case_patient(basira_case_service *svc, const basira_actor *who,
                                const char *patient_ref, json_t **out, basira_error *err)
{
    return basira_store_patient_get(svc->store, who, patient_ref, out, err);
}

/*
 * The case and the photo its documents show (NULL when it has none or the
 * photo was purged by retention: the documents then say so).
 */
static basira_code case_and_photo(basira_case_service *svc, const basira_actor *who,
                                  int64_t case_id, json_t **cj, unsigned char **photo, size_t *len,
                                  char mime[32], basira_error *e)
{
    *photo = NULL;
    *len = 0;
    mime[0] = '\0';
    basira_code rc = basira_store_case_get(svc->store, who, case_id, cj, e);
    if (rc)
        return rc;
    int64_t iid = 0, owner = 0;
    basira_case_report_image(*cj, &iid, NULL);
    basira_error pe;
    if (iid > 0 && (basira_store_photo_get(svc->store, who, iid, photo, len, mime, &owner, &pe) ||
                    owner != case_id)) {
        free(*photo);
        *photo = NULL;
        *len = 0;
    }
    return BASIRA_OK;
}

basira_code basira_case_letter(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                               const char *lang, unsigned char **pdf, size_t *len,
                               basira_error *err)
{
    json_t *cj = NULL;
    unsigned char *photo = NULL;
    size_t plen = 0;
    char mime[32];
    basira_code rc = case_and_photo(svc, who, case_id, &cj, &photo, &plen, mime, err);
    if (rc)
        return rc;
    /* A new clinic from the hub waits for the letters being written, and they for it. */
    pthread_rwlock_rdlock(&svc->clinic_lock);
    rc = basira_report_pdf(cj, photo, plen, lang, svc->has_clinic ? &svc->clinic : NULL, pdf, len,
                           err);
    pthread_rwlock_unlock(&svc->clinic_lock);
    json_decref(cj);
    free(photo);
    return rc;
}

basira_code basira_case_fhir(basira_case_service *svc, const basira_actor *who, int64_t case_id,
                             json_t **bundle, basira_error *err)
{
    json_t *cj = NULL;
    unsigned char *photo = NULL;
    size_t plen = 0;
    char mime[32];
    basira_code rc = case_and_photo(svc, who, case_id, &cj, &photo, &plen, mime, err);
    if (rc)
        return rc;
    rc =
        basira_fhir_bundle(cj, photo, plen, !strncmp(mime, "image/", 6) ? mime : NULL, bundle, err);
    json_decref(cj);
    free(photo);
    return rc;
}

basira_code basira_case_export(basira_case_service *svc, const basira_actor *who,
                               const char *format, char **out, size_t *len, size_t *n_cases,
                               basira_error *err)
{
    *out = NULL;
    if (!basira_export_content_type(format))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("format must be csv or json"));
    json_t *cases = json_array();
    basira_case_filter f;
    basira_case_filter_init(&f);
    f.limit = 500;
    basira_code rc = cases ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (f.offset = 0; !rc;) {
        json_t *page = NULL;
        if ((rc = basira_store_case_list(svc->store, who, &f, &page, err)))
            break;
        json_t *items = json_object_get(page, "items");
        size_t i, n = json_array_size(items);
        json_t *it;
        json_array_foreach(items, i, it)
        {
            json_t *full = NULL;
            basira_error ge;
            int64_t id = (int64_t)json_integer_value(json_object_get(it, "id"));
            /* A case deleted meanwhile (retention) is simply not exported. */
            if (!basira_store_case_get(svc->store, who, id, &full, &ge))
                json_array_append_new(cases, full);
        }
        json_decref(page);
        if (n < (size_t)f.limit)
            break;
        f.offset += f.limit;
    }
    if (!rc)
        rc = basira_export_cases(cases, format, out, len, err);
    char detail[64];
    snprintf(detail, sizeof detail, "format=%s cases=%zu", format, json_array_size(cases));
    if (n_cases)
        *n_cases = json_array_size(cases);
    json_decref(cases);
    basira_error aerr;
    if (basira_store_audit_append(svc->store, who, "export", 0, rc ? "failed" : "ok", detail,
                                  &aerr)) {
        free(*out);
        *out = NULL;
        if (err)
            *err = aerr;
        return aerr.code;
    }
    return rc;
}
