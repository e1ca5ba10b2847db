/*
 * documents.c - the documents of cases: the referral letter (PDF), the FHIR R4
 * bundle, the open export of every case (CSV/JSON). The case service makes
 * them; these handlers check the query and send the bytes.
 */
#include "basira/i18n.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

enum MHD_Result h_report_pdf(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *lang = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lang");
    if (!lang || !*lang)
        lang = rq->lang; /* the language of the person asking */
    if (strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en"))
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, N_("lang must be fr, ar or en"));
    unsigned char *pdf = NULL;
    size_t len = 0;
    basira_actor a = actor_of(rq);
    if (basira_case_letter(s->cases, &a, rq->id, lang, &pdf, &len, &e))
        return fail(c, rq, &e);
    char disp[96];
    snprintf(disp, sizeof disp, "attachment; filename=\"basira-case-%" PRId64 "-%s.pdf\"", rq->id,
             lang);
    reply how = {200, "application/pdf", disp, NULL, NULL, NULL};
    return server_send_bytes(c, rq, pdf, len, &how);
}

enum MHD_Result h_fhir(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *bundle = NULL;
    basira_actor a = actor_of(rq);
    if (basira_case_fhir(s->cases, &a, rq->id, &bundle, &e))
        return fail(c, rq, &e);
    char *text = json_dumps(bundle, JSON_COMPACT);
    json_decref(bundle);
    if (!text) {
        basira_error_set(&e, BASIRA_E_NOMEM, NULL);
        return fail(c, rq, &e);
    }
    char disp[80];
    snprintf(disp, sizeof disp, "inline; filename=\"basira-case-%" PRId64 ".fhir.json\"", rq->id);
    reply how = {200, "application/fhir+json; charset=utf-8", disp, NULL, NULL, NULL};
    return server_send_bytes(c, rq, text, strlen(text), &how);
}

/* Every case the user may see (the worklist, all pages), each as its full record. */
/*
 * A bulk export carries every patient's record: one per EXPORT_INTERVAL_S and data
 * steward (429 with Retry-After otherwise), and each one goes to syslog as well as
 * the audit trail, so that an administrator notices one that was not expected.
 */
#define EXPORT_INTERVAL_S 60

static int export_allowed(basira_server *s, const request *rq, int *retry)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int ok = 1;
    pthread_mutex_lock(&s->export_lock);
    size_t n = sizeof s->exports / sizeof s->exports[0], slot = n, oldest = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->exports[i].user_id == rq->user.id)
            slot = i;
        if (s->exports[i].at.tv_sec < s->exports[oldest].at.tv_sec)
            oldest = i;
    }
    if (slot < n && s->exports[slot].at.tv_sec &&
        now.tv_sec - s->exports[slot].at.tv_sec < EXPORT_INTERVAL_S) {
        ok = 0;
        *retry = (int)(EXPORT_INTERVAL_S - (now.tv_sec - s->exports[slot].at.tv_sec));
    } else {
        if (slot == n)
            slot = oldest;
        s->exports[slot].user_id = rq->user.id;
        s->exports[slot].at = now;
    }
    pthread_mutex_unlock(&s->export_lock);
    return ok;
}

enum MHD_Result h_export(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    int retry = 0;
    if (!export_allowed(s, rq, &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        const char *hdrs[] = {"Retry-After", ra, NULL};
        basira_actor a = actor_of(rq);
        if (basira_store_audit_append(s->store, &a, "export", 0, "rate_limited", NULL, &e))
            return fail(c, rq, &e);
        basira_error_setm(&e, BASIRA_E_LIMIT,
                          N_("a bulk export was made less than a minute ago; try again in %d "
                             "seconds"),
                          retry);
        return send_json(c, rq, 429, json_pack("{s:o}", "error", error_json(rq, &e)), hdrs);
    }
    const char *format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    if (!format || !*format)
        format = "csv";
    const char *type = basira_export_content_type(format);
    if (!type)
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, N_("format must be csv or json"));
    basira_actor a = actor_of(rq);
    char *out = NULL;
    size_t len = 0;
    if (basira_case_export(s->cases, &a, format, &out, &len, NULL, &e))
        return fail(c, rq, &e);
    syslog(LOG_AUTHPRIV | LOG_WARNING, "basira: bulk export (%s, %zu bytes) by %s from %s", format,
           len, rq->user.username, rq->ip);
    char disp[80];
    snprintf(disp, sizeof disp, "attachment; filename=\"basira-cases.%s\"", format);
    reply how = {200, type, disp, NULL, NULL, NULL};
    return server_send_bytes(c, rq, out, len, &how);
}
