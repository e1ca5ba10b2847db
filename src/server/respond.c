/*
 * respond.c - the one way a response leaves the server. Every byte sent -
 * JSON, errors, photos, PDFs, the web app's files - goes through server_queue,
 * so no response can miss the security headers (a copy of this code once lost
 * the Content-Security-Policy header).
 */
#include "basira/i18n.h"
#include "basira/json.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

basira_actor actor_of(const request *rq)
{
    basira_actor a = {rq->user.username, rq->ip};
    return a;
}

unsigned http_status(basira_code c)
{
    switch (c) {
    case BASIRA_OK:
        return 200;
    case BASIRA_E_INVALID_ARGUMENT:
    case BASIRA_E_FORMAT:
        return 400;
    case BASIRA_E_AUTH:
        return 401;
    case BASIRA_E_FORBIDDEN:
        return 403;
    case BASIRA_E_NOT_FOUND:
        return 404;
    case BASIRA_E_CONFLICT:
        return 409;
    case BASIRA_E_LIMIT:
        return 413;
    case BASIRA_E_CONSENT:
    case BASIRA_E_EMPTY_FILE:
    case BASIRA_E_NOT_AN_IMAGE:
    case BASIRA_E_CORRUPT:
    case BASIRA_E_IMAGE_TOO_SMALL:
    case BASIRA_E_IMAGE_TOO_LARGE:
    case BASIRA_E_MULTIPAGE:
        return 422;
    case BASIRA_E_UNSUPPORTED:
        return 503;
    default:
        return 500;
    }
}

enum MHD_Result server_queue(struct MHD_Connection *c, request *rq, struct MHD_Response *r,
                             size_t len, const reply *how)
{
    if (!r)
        return MHD_NO;
    if (how->type)
        MHD_add_response_header(r, "Content-Type", how->type);
    MHD_add_response_header(r, "Cache-Control", how->cache ? how->cache : "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            how->csp ? how->csp : "default-src 'none'");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (how->disposition)
        MHD_add_response_header(r, "Content-Disposition", how->disposition);
    for (const char *const *h = how->headers; h && h[0]; h += 2)
        MHD_add_response_header(r, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(c, how->status, r);
    MHD_destroy_response(r);
    rq->status = how->status;
    rq->bytes_out = len;
    return ret;
}

enum MHD_Result server_send_bytes(struct MHD_Connection *c, request *rq, void *data, size_t len,
                                  const reply *how)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(data);
    return server_queue(c, rq, r, len, how);
}

enum MHD_Result send_json(struct MHD_Connection *c, request *rq, unsigned status, json_t *body,
                          const char *const *extra_headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(body);
    if (!text) {
        text = strdup("{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}");
        status = 500;
        if (!text)
            return MHD_NO;
    }
    reply how = {status, "application/json; charset=utf-8", NULL, NULL, NULL, extra_headers};
    return server_send_bytes(c, rq, text, strlen(text), &how);
}

enum MHD_Result send_error(struct MHD_Connection *c, request *rq, unsigned status,
                           const basira_error *e)
{
    basira_error shown = *e;
    /*
     * Internal failures answer a generic message: details (SQL errors, paths)
     * help an attacker more than a user. They go to the server's stderr.
     */
    if (status >= 500 && status != 503) {
        fprintf(stderr, "basira serve: %s %s: %s [%s]\n", rq->method, rq->path, e->message,
                basira_code_name(e->code));
        basira_error_set(&shown, e->code, NULL);
    }
    json_t *body = json_pack("{s:o}", "error", error_json(rq, &shown));
    return send_json(c, rq, status, body, NULL);
}

json_t *error_json(const request *rq, const basira_error *e)
{
    if (!e->msg.id)
        return basira_json_error(e);
    basira_error shown = *e;
    basira_msg_text(&e->msg, rq->tr, rq->lang, shown.message, sizeof shown.message);
    return basira_json_error(&shown);
}

const char *server_text(const request *rq, const basira_msg *m, char *out, size_t outsz)
{
    return basira_msg_text(m, rq->tr, rq->lang, out, outsz);
}

enum MHD_Result fail(struct MHD_Connection *c, request *rq, const basira_error *e)
{
    return send_error(c, rq, http_status(e->code), e);
}

enum MHD_Result fail_with(struct MHD_Connection *c, request *rq, unsigned status, basira_code code,
                          const char *msgid)
{
    basira_error e;
    basira_error_clear(&e);
    e.code = code;
    e.msg.id = msgid;
    snprintf(e.message, sizeof e.message, "%s", basira_translate(NULL, NULL, msgid));
    return send_error(c, rq, status, &e);
}
