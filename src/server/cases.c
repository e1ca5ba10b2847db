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
    char loc[64];
    snprintf(loc, sizeof loc, API "/cases/%" PRId64, id);
    const char *hdrs[] = {"Location", loc, NULL};
    /* The case is committed: whatever happens to the read-back, the answer is 201 (a 5xx
     * here made a client retry and duplicate a case that existed; seen on a full disk). */
    if ((rc = basira_case_get(s->cases, &a, id, &out, &e)))
        return send_json(c, rq, 201, json_pack("{s:I}", "id", (json_int_t)id), hdrs);
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
    /* Search by patient; the dermatologist's queue; follow-ups whose date has passed. */
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "patient_ref")) && *v)
        f.patient_ref = v;
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "queue")) && *v) {
        if (strcmp(v, "review"))
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, N_("queue must be review"));
        f.awaiting_review = 1;
    }
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "overdue")) && *v) {
        if (strcmp(v, "1") && strcmp(v, "true"))
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, N_("overdue must be 1"));
        f.overdue = 1;
    }
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

/*
 * The case with its version as ETag: a decision sends it back as If-Match. The
 * sentences of its analyses are said in the language of whoever asked.
 */
static enum MHD_Result send_case(struct MHD_Connection *c, request *rq, unsigned status,
                                 json_t *out)
{
    size_t i;
    json_t *im;
    json_array_foreach(json_object_get(out, "images"), i, im)
        basira_triage_localize(json_object_get(im, "result"), rq->tr, rq->lang);
    char etag[32];
    snprintf(etag, sizeof etag, "\"%" JSON_INTEGER_FORMAT "\"",
             json_integer_value(json_object_get(out, "version")));
    const char *hdrs[] = {"ETag", etag, NULL};
    return send_json(c, rq, status, out, hdrs);
}

enum MHD_Result h_case_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_case_get(s->cases, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_case(c, rq, 200, out);
}

enum MHD_Result h_patient_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    const char *ref = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ref");
    if (!ref || !*ref)
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                         N_("give the patient reference as ?ref="));
    if (basira_case_patient(s->cases, &a, ref, &out, &e))
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

/* A short text field of a multipart body into out (NUL-terminated); 0 = found. */
static int multipart_text(const char *ct, const unsigned char *body, size_t len, const char *name,
                          char *out, size_t outsz)
{
    const unsigned char *v = NULL;
    size_t vlen = 0;
    char ptype[64];
    basira_error e;
    if (basira_multipart_find(ct, body, len, name, &v, &vlen, ptype, &e) || vlen >= outsz)
        return -1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 0;
}

static json_t *guidance(const request *rq, const json_t *result)
{
    json_t *g = json_array();
    size_t i;
    json_t *chk;
    /* A photo that shows no skin: the refusal says what to photograph instead. */
    const json_t *e = json_object_get(result, "error");
    const char *ecode = json_string_value(json_object_get(e, "code"));
    const char *em = json_string_value(json_object_get(e, "message"));
    if (ecode && !strcmp(ecode, "not_skin") && em)
        json_array_append_new(g, json_string(em));
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
    /*
     * How the photo was taken (?modality= or ?photo_kind=dermoscopic|clinical, or the
     * multipart field "modality"), and whether the user confirmed it over the detector
     * (?modality_confirmed=true or the field "modality_confirmed").
     */
    basira_photo_kind kind = BASIRA_PHOTO_UNKNOWN;
    char field[32] = "", confirm[16] = "";
    const char *pk = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "modality");
    if (!pk)
        pk = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "photo_kind");
    const char *cf = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "modality_confirmed");
    if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        if (!pk && !multipart_text(ct, rq->body, rq->len, "modality", field, sizeof field))
            pk = field;
        if (!cf &&
            !multipart_text(ct, rq->body, rq->len, "modality_confirmed", confirm, sizeof confirm))
            cf = confirm;
    }
    if (pk && !strcmp(pk, "dermoscopic"))
        kind = BASIRA_PHOTO_DERMOSCOPIC;
    else if (pk && !strcmp(pk, "clinical"))
        kind = BASIRA_PHOTO_CLINICAL;
    else if (pk && *pk)
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                         N_("modality must be dermoscopic or clinical"));
    int confirmed = 0;
    if (cf && (!strcmp(cf, "true") || !strcmp(cf, "1")))
        confirmed = 1;
    else if (cf && *cf && strcmp(cf, "false") && strcmp(cf, "0"))
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                         N_("modality_confirmed must be true or false"));
    basira_photo_outcome o;
    basira_code rc =
        basira_case_add_photo_declared(s->cases, &a, rq->id, data, len, kind, confirmed, &o, &e);
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
    /* Retake advice and every sentence of the result in the user's language. */
    basira_triage_localize(result, rq->tr, rq->lang);
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
    int64_t if_match =
        basira_request_if_match(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match"));
    if (if_match == -2) {
        json_decref(holder);
        return fail_with(c, rq, 400, BASIRA_E_FORMAT,
                         N_("If-Match must be the case's ETag, e.g. \"3\""));
    }
    basira_code rc =
        basira_case_decide_versioned(s->cases, &a, rq->user.role, rq->id, &d, if_match, NULL, &e);
    json_decref(holder);
    json_t *out = NULL;
    if (rc == BASIRA_E_PRECONDITION) {
        /* Stale: the error, and the case as it is now, so the page can show what changed. */
        basira_error ge;
        json_t *body = json_pack("{s:o}", "error", basira_json_error(&e));
        if (body && !basira_case_get(s->cases, &a, rq->id, &out, &ge))
            json_object_set_new(body, "current", out);
        return send_json(c, rq, 412, body, NULL);
    }
    if (rc)
        return fail(c, rq, &e);
    if (basira_case_get(s->cases, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_case(c, rq, 200, out);
}
