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
enum MHD_Result h_export(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
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
    char disp[80];
    snprintf(disp, sizeof disp, "attachment; filename=\"basira-cases.%s\"", format);
    reply how = {200, type, disp, NULL, NULL, NULL};
    return server_send_bytes(c, rq, out, len, &how);
}
