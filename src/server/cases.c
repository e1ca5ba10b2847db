/*
 * cases.c - the case endpoints: create, worklist, read, photos, decision. Each
 * handler parses the request into typed values, makes one call into the case
 * service (include/basira/case.h) and presents what it returns.
 */
#include "basira/json.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum MHD_Result h_case_create(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_case_new cn;
    json_t *holder = NULL;
    basira_actor a = actor_of(rq);
    int64_t id = 0;
    basira_code rc = basira_request_parse_case((const char *)rq->body, rq->len, &cn, &holder, &e);
    if (rc == BASIRA_E_CONSENT) {
        /* The case service records the refusal; the parser's message says what was missing. */
        basira_case_new refused = {.consent_care = 0};
        basira_error ae;
        if (basira_case_create(s->cases, &a, &refused, &id, &ae) != BASIRA_E_CONSENT)
            return fail(c, rq, &ae);
    }
    if (rc)
        return fail(c, rq, &e);
    rc = basira_case_create(s->cases, &a, &cn, &id, &e);
    json_decref(holder);
    if (rc)
        return fail(c, rq, &e);
    json_t *out = NULL;
    if ((rc = basira_case_get(s->cases, &a, id, &out, &e)))
        return fail(c, rq, &e);
    char loc[64];
    snprintf(loc, sizeof loc, API "/cases/%" PRId64, id);
    const char *hdrs[] = {"Location", loc, NULL};
    return send_json(c, rq, 201, out, hdrs);
}

enum MHD_Result h_case_list(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_case_filter f;
    basira_case_filter_init(&f);
    static const char *const risks[] = {"low", "medium", "high"};
    const char *v;
    f.status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    if (f.status && !*f.status)
        f.status = NULL;
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "risk")) && *v) {
        f.risk = -2;
        for (int i = 0; i < 3; i++)
            if (!strcmp(v, risks[i]))
                f.risk = i;
        if (f.risk == -2)
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                             N_("risk must be low, medium or high"));
    }
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from")) && *v &&
        basira_parse_time(v, 0, &f.from, &e))
        return fail(c, rq, &e);
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to")) && *v &&
        basira_parse_time(v, 1, &f.to, &e))
        return fail(c, rq, &e);
    const char *nums[2] = {"limit", "offset"};
    int *dst[2] = {&f.limit, &f.offset};
    for (int i = 0; i < 2; i++) {
        if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, nums[i])) && *v) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || *end || n < 0 || n > 1000000)
                return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                                 N_("limit and offset must be whole numbers"));
            *dst[i] = (int)n;
        }
    }
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_case_list(s->cases, &a, &f, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

enum MHD_Result h_case_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_case_get(s->cases, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

enum MHD_Result h_photo_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_actor a = actor_of(rq);
    unsigned char *data = NULL;
    size_t len = 0;
    char mime[32];
    int64_t case_id = 0;
    if (basira_case_photo(s->cases, &a, rq->iid, &data, &len, mime, &case_id, &e))
        return fail(c, rq, &e);
    if (case_id != rq->id) {
        free(data);
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, N_("this case has no such photo"));
    }
    reply how = {200, mime, "inline", NULL, NULL, NULL};
    return server_send_bytes(c, rq, data, len, &how);
}

static const char *image_type(const char *ct)
{
    static const char *const types[] = {"image/jpeg", "image/png",  "image/heic",
                                        "image/heif", "image/webp", NULL};
    if (!ct)
        return NULL;
    size_t n = strcspn(ct, "; \t");
    for (const char *const *t = types; *t; t++)
        if (strlen(*t) == n && !strncasecmp(ct, *t, n))
            return *t;
    return NULL;
}

/* The failed quality checks' instructions, for the person holding the phone. */
static json_t *guidance(const request *rq, const json_t *result)
{
    json_t *g = json_array();
    size_t i;
    json_t *chk;
    json_array_foreach(json_object_get(json_object_get(result, "quality"), "checks"), i, chk)
    {
        const char *m = json_string_value(json_object_get(chk, "message"));
        if (json_is_false(json_object_get(chk, "passed")) && m && *m)
            json_array_append_new(g, json_string(m));
    }
    json_array_append_new(
        g, json_string(basira_translate(rq->tr, rq->lang, N_("Please take the photo again."))));
    return g;
}

enum MHD_Result h_image_add(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_actor a = actor_of(rq);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const unsigned char *data = rq->body;
    size_t len = rq->len;
    /* What is stored is the analyser's cleaned copy, so the declared type only gates the upload. */
    if (!image_type(ct) && ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        char ptype[64];
        if (basira_multipart_find(ct, rq->body, rq->len, "image", &data, &len, ptype, &e)) {
            e.code = BASIRA_E_FORMAT;
            return send_error(c, rq, 400, &e);
        }
    } else if (!image_type(ct)) {
        return fail_with(c, rq, 415, BASIRA_E_UNSUPPORTED,
                         N_("send the photo as image/jpeg, image/png, image/heic or image/webp, "
                            "or as the field 'image' of multipart/form-data"));
    }
    basira_photo_outcome o;
    basira_code rc = basira_case_add_photo(s->cases, &a, rq->id, data, len, &o, &e);
    if (rc) {
        basira_photo_outcome_clear(&o);
        return fail(c, rq, &e);
    }
    json_t *result = o.result.document;
    o.result.document = NULL;
    if (o.result.status == BASIRA_TRIAGE_ERROR) {
        /* Undecodable: the case service kept nothing but the fact it happened. */
        json_t *body = json_pack("{s:o}", "error", error_json(rq, &o.result.error));
        json_decref(result);
        basira_photo_outcome_clear(&o);
        return send_json(c, rq, 422, body, NULL);
    }
    json_object_set_new(result, "case_id", json_integer(rq->id));
    if (o.result.status == BASIRA_TRIAGE_OK) {
        json_object_set_new(result, "image_id", json_integer(o.image_id));
        basira_photo_outcome_clear(&o);
        return send_json(c, rq, 201, result, NULL);
    }
    json_object_set_new(result, "quality_event_id", json_integer(o.quality_event_id));
    json_object_set_new(result, "guidance", guidance(rq, result));
    basira_photo_outcome_clear(&o);
    return send_json(c, rq, 200, result, NULL);
}

enum MHD_Result h_decision(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_decision d;
    json_t *holder = NULL;
    basira_actor a = actor_of(rq);
    if (basira_request_parse_decision((const char *)rq->body, rq->len, &d, &holder, &e))
        return fail(c, rq, &e);
    basira_code rc = basira_case_decide(s->cases, &a, rq->id, &d, &e);
    json_decref(holder);
    if (rc)
        return fail(c, rq, &e);
    json_t *out = NULL;
    if (basira_case_get(s->cases, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}
