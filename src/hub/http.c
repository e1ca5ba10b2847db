/*
 * http.c - the hub's HTTP service (libmicrohttpd), one route table:
 *
 *   GET  /health                       liveness
 *   POST /api/v1/session               sign in {"username","password"}; DELETE: sign out; GET
 *   POST /sync/v1/enrol                {"token","public_key"} -> {"node"}
 *   POST /sync/v1/push                 signed batch -> {"acked_seq",...}
 *   POST /sync/v1/pull                 signed {"after","down_after"} -> {"replies","down"}
 *   POST /sync/v1/hub-key              signed {"node"} -> {"hub_key"} (nodes enrolled before it)
 *   POST /sync/v1/chunk                signed chunk of a photo (upload.c) -> {"have","complete"}
 *   POST /sync/v1/original             signed {"image_id","sha256"} -> {"stored"}
 *   GET  /api/v1/cases                 the worklist (dermatologist, auditor)
 *   GET  /api/v1/cases/NODE/ID         one case
 *   POST /api/v1/cases/NODE/ID/reply   {"diagnosis","plan","message"} (dermatologist)
 *   POST /api/v1/cases/NODE/ID/original {"image_id"}: ask the node for the original (dermatologist)
 *   POST /api/v1/nodes/NODE/site-config the clinic's site configuration, sent down (admin)
 *   GET  /api/v1/photos/SHA256         a photo
 *   GET  /api/v1/nodes                 the nodes and their audit chains (auditor, admin)
 *   GET  /, /app/hub.js, /app/hub.css  the web app (web/hub/)
 *
 * Nodes sign with their Ed25519 key (headers X-Basira-Node and
 * X-Basira-Signature over the exact body bytes sent, compressed or not); a
 * body may be deflate-compressed (Content-Encoding: deflate) and is inflated
 * under a hard cap. People sign in (POST /api/v1/session) and carry a session
 * cookie and a CSRF token, with the node's rules (basira/session.h), over
 * HTTPS (--tls-cert/--tls-key, GnuTLS through libmicrohttpd) or a TLS
 * terminator in front of the hub (docs/hub.md).
 */
#include "basira/json.h"
#include "basira/fs.h"
#include "basira/i18n.h"
#include "basira/paths.h"
#include "basira/session.h"
#include "basira/hub_oversight.h"
#include "core/i18n.h"
#include "hub_internal.h"
#include "http_indicators.h"
#include "basira/hub_indicators.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX ((size_t)24 * 1024 * 1024)     /* one batch on the wire */
#define INFLATED_MAX ((size_t)64 * 1024 * 1024) /* one batch once inflated */

struct basira_hub_server {
    basira_hub *hub;
    struct MHD_Daemon *daemon;
    uint16_t port;
    unsigned char *tls_cert, *tls_key; /* PEM, NUL-terminated */
    basira_translator *tr;             /* fr and ar: each answer in the asker's language */
    size_t tls_key_len;
};

typedef struct request {
    unsigned char *body;
    size_t len, cap;
    int too_big;
} request;

static enum MHD_Result send_text_h(struct MHD_Connection *c, unsigned status, const char *type,
                                   const void *data, size_t len, int copy, const char *const *hdrs)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!r)
        return MHD_NO;
    for (size_t i = 0; hdrs && hdrs[i] && hdrs[i + 1]; i += 2)
        MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type,
                                 const void *data, size_t len, int copy)
{
    return send_text_h(c, status, type, data, len, copy, NULL);
}

/* JSON with extra headers (name, value, ..., NULL). */
static enum MHD_Result send_json_h(struct MHD_Connection *c, unsigned status, json_t *j,
                                   const char *const *hdrs)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_text_h(c, status, "application/json", text, strlen(text), 0, hdrs);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    return send_json_h(c, status, j, NULL);
}

static unsigned status_of(basira_code rc)
{
    switch (rc) {
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
    case BASIRA_E_FORMAT:
    case BASIRA_E_INVALID_ARGUMENT:
        return 400;
    case BASIRA_E_STORE:
        return 503;
    default:
        return 500;
    }
}

/*
 * An error in the language of whoever asked (Accept-Language; the web app sends
 * the language chosen in the page), the code stable for programs.
 */
static enum MHD_Result fail_h(basira_hub_server *s, struct MHD_Connection *c, const basira_error *e,
                              unsigned status, const char *const *hdrs)
{
    const char *lang = basira_language_negotiate(
        NULL, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language"),
        basira_language());
    char text[BASIRA_ERROR_MESSAGE_MAX];
    if (e->msg.id)
        basira_msg_text(&e->msg, s->tr, lang, text, sizeof text);
    else
        snprintf(text, sizeof text, "%s", e->message);
    return send_json_h(
        c, status ? status : status_of(e->code),
        json_pack("{s:{s:s, s:s}}", "error", "code", basira_code_name(e->code), "message", text),
        hdrs);
}

static enum MHD_Result fail(basira_hub_server *s, struct MHD_Connection *c, const basira_error *e)
{
    return fail_h(s, c, e, 0, NULL);
}

typedef basira_code (*signed_op)(basira_hub *, const char *, const void *, size_t, const char *,
                                 const json_t *, json_t **, basira_error *);

static enum MHD_Result h_signed(basira_hub_server *s, struct MHD_Connection *c, request *rq,
                                signed_op op)
{
    basira_error e;
    const char *node = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Basira-Node");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Basira-Signature");
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    unsigned char *plain = rq->body;
    size_t plain_len = rq->len;
    if (enc && !strcmp(enc, "deflate")) {
        if (basira_hub_inflate(rq->body, rq->len, INFLATED_MAX, &plain, &plain_len, &e))
            return fail(s, c, &e);
    } else if (enc && *enc && strcmp(enc, "identity")) {
        basira_error_setm(&e, BASIRA_E_FORMAT, N_("unsupported Content-Encoding %s"), enc);
        return fail(s, c, &e);
    }
    json_error_t je;
    json_t *body = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES, &je);
    if (plain != rq->body)
        free(plain);
    if (!body) {
        basira_error_setm(&e, BASIRA_E_FORMAT, N_("the batch is not valid JSON: %s"), je.text);
        return fail(s, c, &e);
    }
    json_t *answer = NULL;
    basira_code rc = op(s->hub, node, rq->body, rq->len, sig, body, &answer, &e);
    json_decref(body);
    return rc ? fail(s, c, &e) : send_json(c, 200, answer);
}

static enum MHD_Result h_enrol(basira_hub_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *body = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    char name[65];
    basira_code rc =
        basira_hub_register(s->hub, json_string_value(json_object_get(body, "token")),
                            json_string_value(json_object_get(body, "public_key")), name, &e);
    json_decref(body);
    char pk[65];
    if (!rc)
        rc = basira_hub_public_key(s->hub, pk, &e);
    return rc ? fail(s, c, &e)
              : send_json(c, 200, json_pack("{s:s, s:s}", "node", name, "hub_key", pk));
}

static enum MHD_Result h_chunk(basira_hub_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *node = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Basira-Node");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Basira-Signature");
    json_t *answer = NULL;
    if (!rq->body)
        return fail(s, c, (basira_error_setm(&e, BASIRA_E_FORMAT, N_("a chunk needs a body")), &e));
    basira_code rc = basira_hub_chunk(s->hub, node, rq->body, rq->len, sig, &answer, &e);
    return rc ? fail(s, c, &e) : send_json(c, 200, answer);
}

#define R_DERM (1u << BASIRA_HUB_DERMATOLOGIST)
#define R_ADMIN (1u << BASIRA_HUB_ADMIN)
#define R_AUDIT (1u << BASIRA_HUB_AUDITOR)

/*
 * The signed-in hub user (session cookie, as on the node: basira/session.h)
 * with one of the allowed roles (a bit set); a request that changes something
 * must carry the session's CSRF token (X-CSRF-Token).
 */
static basira_code person(basira_hub_server *s, struct MHD_Connection *c, int changing,
                          unsigned roles, char user[65], basira_error *e)
{
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    char csrf[BASIRA_TOKEN_LEN + 1];
    basira_hub_role role = BASIRA_HUB_DERMATOLOGIST;
    basira_code rc = basira_hub_session(s->hub, token, user, &role, csrf, e);
    if (!rc && !(roles & (1u << role)))
        rc = basira_error_setm(e, BASIRA_E_FORBIDDEN, N_("your role does not allow this"));
    if (!rc && changing &&
        !basira_session_csrf_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"),
                                csrf))
        rc = basira_error_setm(e, BASIRA_E_FORBIDDEN,
                               N_("missing or wrong X-CSRF-Token header (use the value of the "
                                  "basira_csrf cookie)"));
    sodium_memzero(csrf, sizeof csrf);
    return rc;
}

/* POST /api/v1/session {"username","password"}, DELETE (sign out), GET (who am I). */
static enum MHD_Result h_session(basira_hub_server *s, struct MHD_Connection *c, request *rq,
                                 const char *method)
{
    basira_error e;
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    if (!strcmp(method, "DELETE")) {
        char user[65];
        /* Signing out needs the session and its CSRF token, like any change. */
        if (person(s, c, 1, R_DERM | R_ADMIN | R_AUDIT, user, &e) ||
            basira_hub_sign_out(s->hub, token, &e))
            return fail(s, c, &e);
        const char *hdrs[] = {"Set-Cookie", basira_session_cookie_clear, "Set-Cookie",
                              basira_csrf_cookie_clear, NULL};
        return send_json_h(c, 200, json_pack("{s:b}", "signed_out", 1), hdrs);
    }
    if (!strcmp(method, "GET")) {
        char user[65], csrf[BASIRA_TOKEN_LEN + 1];
        basira_hub_role role;
        if (basira_hub_session(s->hub, token, user, &role, csrf, &e))
            return fail(s, c, &e);
        sodium_memzero(csrf, sizeof csrf);
        return send_json(c, 200,
                         json_pack("{s:s, s:s, s:I}", "username", user, "role",
                                   basira_hub_role_name(role), "idle_timeout_s",
                                   (json_int_t)s->hub->session_idle_s));
    }
    json_t *b = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(b, "username"));
    const char *pass = json_string_value(json_object_get(b, "password"));
    char tok[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1];
    basira_hub_role role = BASIRA_HUB_DERMATOLOGIST;
    int retry = 0;
    basira_code rc = name && pass
                         ? basira_hub_sign_in(s->hub, name, pass, tok, csrf, &role, &retry, &e)
                         : basira_error_setm(&e, BASIRA_E_FORMAT,
                                             N_("send {\"username\": ..., \"password\": ...} "
                                                "as JSON"));
    json_t *who = rc ? NULL
                     : json_pack("{s:s, s:s, s:s, s:I, s:I}", "username", name, "role",
                                 basira_hub_role_name(role), "csrf_token", csrf, "expires_in",
                                 (json_int_t)s->hub->session_ttl_s, "idle_timeout_s",
                                 (json_int_t)s->hub->session_idle_s);
    json_decref(b);
    if (rc == BASIRA_E_LIMIT && retry > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        const char *hdrs[] = {"Retry-After", ra, NULL};
        return fail_h(s, c, &e, 429, hdrs);
    }
    if (rc)
        return fail(s, c, &e);
    char c1[256], c2[256];
    basira_session_cookies(tok, csrf, s->hub->session_ttl_s, s->tls_cert != NULL, c1, c2);
    sodium_memzero(tok, sizeof tok);
    sodium_memzero(csrf, sizeof csrf);
    const char *hdrs[] = {"Set-Cookie", c1, "Set-Cookie", c2, NULL};
    return send_json_h(c, 200, who, hdrs);
}

static enum MHD_Result h_api(basira_hub_server *s, struct MHD_Connection *c, request *rq,
                             const char *method, const char *path)
{
    basira_error e;
    char user[65], node[65], tail[16] = "";
    long long id = 0;
    int is_get = !strcmp(method, "GET"), is_post = !strcmp(method, "POST");
    json_t *out = NULL;
    basira_code rc;
    if (!strcmp(path, "session"))
        return h_session(s, c, rq, method);
    if (!is_get && !is_post) {
        basira_error_setm(&e, BASIRA_E_NOT_FOUND, N_("no such resource"));
        return fail(s, c, &e);
    }
    if (is_get && !strcmp(path, "cases")) {
        if ((rc = person(s, c, is_post, R_DERM | R_AUDIT, user, &e)) ||
            (rc = basira_hub_cases(s->hub, &out, &e)))
            return fail(s, c, &e);
        return send_json(c, 200, json_pack("{s:o}", "items", out));
    }
    if (is_get && !strcmp(path, "nodes")) {
        if ((rc = person(s, c, is_post, R_AUDIT | R_ADMIN, user, &e)) ||
            (rc = basira_hub_nodes(s->hub, &out, &e)))
            return fail(s, c, &e);
        return send_json(c, 200, json_pack("{s:o}", "items", out));
    }
    if (is_get && !strncmp(path, "photos/", 7) && strlen(path + 7) == 64) {
        unsigned char *data = NULL;
        size_t len = 0;
        char mime[32];
        if ((rc = person(s, c, is_post, R_DERM, user, &e)) ||
            (rc = basira_hub_photo(s->hub, path + 7, &data, &len, mime, &e)))
            return fail(s, c, &e);
        return send_text(c, 200, mime, data, len, 0);
    }
    if (is_post && sscanf(path, "nodes/%64[A-Za-z0-9._-]/%15s", node, tail) == 2 &&
        !strcmp(tail, "site-config")) {
        if ((rc = person(s, c, is_post, R_ADMIN, user, &e)))
            return fail(s, c, &e);
        json_t *b = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
        int64_t did = 0;
        rc = basira_hub_site_config(s->hub, node, b, user, &did, &e);
        json_decref(b);
        return rc ? fail(s, c, &e) : send_json(c, 201, json_pack("{s:I}", "id", (json_int_t)did));
    }
    if (is_get && !strncmp(path, "indicators", 10)) {
        char *body = NULL;
        size_t len = 0;
        const char *type = NULL;
        if ((rc = person(s, c, is_post, R_AUDIT | R_ADMIN, user, &e)) ||
            (rc = hub_http_indicators(s->hub, c, path + 10, s->tr, &body, &len, &type, &e)))
            return fail(s, c, &e);
        return send_text(c, 200, type, body, len, 0);
    }
    int k = sscanf(path, "cases/%64[A-Za-z0-9._-]/%lld/%15s", node, &id, tail);
    if (k == 3 && is_post && !strcmp(tail, "original")) {
        if ((rc = person(s, c, is_post, R_DERM, user, &e)))
            return fail(s, c, &e);
        json_t *b = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
        json_int_t iid = json_integer_value(json_object_get(b, "image_id"));
        json_decref(b);
        if ((rc = basira_hub_original_request(s->hub, node, id, iid, user, &e)))
            return fail(s, c, &e);
        return send_json(c, 202, json_pack("{s:b}", "requested", 1));
    }
    if (k >= 2 && is_get && k == 2) {
        if ((rc = person(s, c, is_post, R_DERM | R_AUDIT, user, &e)) ||
            (rc = basira_hub_case_get(s->hub, node, id, &out, &e)))
            return fail(s, c, &e);
        if ((rc = basira_hub_case_opened(s->hub, node, id, user, &e))) {
            json_decref(out);
            return fail(s, c, &e);
        }
        return send_json(c, 200, out);
    }
    if (k == 3 && is_post && !strcmp(tail, "reply")) {
        if ((rc = person(s, c, is_post, R_DERM, user, &e)))
            return fail(s, c, &e);
        json_t *b = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
        basira_hub_reply_new r = {node,
                                  id,
                                  json_string_value(json_object_get(b, "diagnosis")),
                                  json_string_value(json_object_get(b, "plan")),
                                  json_string_value(json_object_get(b, "message")),
                                  user};
        int64_t rid = 0;
        rc = basira_hub_reply(s->hub, &r, &rid, &e);
        json_decref(b);
        return rc ? fail(s, c, &e) : send_json(c, 201, json_pack("{s:I}", "id", (json_int_t)rid));
    }
    basira_error_setm(&e, BASIRA_E_NOT_FOUND, N_("no such resource"));
    return fail(s, c, &e);
}

/*
 * The hub's web app (web/hub/): a fixed list of files, so no request path ever
 * reaches the file system. The page loads only its own files (CSP); photos are
 * fetched with the user's credentials and shown from blob: URLs.
 */
static enum MHD_Result h_web(basira_hub_server *s, struct MHD_Connection *c, const char *url)
{
    static const char *const files[][3] = {
        {"/", "web/hub/index.html", "text/html; charset=utf-8"},
        {"/app/hub.js", "web/hub/hub.js", "text/javascript; charset=utf-8"},
        {"/app/hub.css", "web/hub/hub.css", "text/css; charset=utf-8"},
    };
    basira_error e;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(url, files[i][0]))
            continue;
        char path[4096];
        if (basira_data_file(files[i][1], path, sizeof path, &e))
            return fail(s, c, &e);
        unsigned char *buf = NULL;
        size_t n = 0;
        if (basira_fs_read(path, (size_t)1024 * 1024, &buf, &n, &e))
            return fail(s, c, &e);
        struct MHD_Response *r = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(buf);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", files[i][2]);
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    basira_error_setm(&e, BASIRA_E_NOT_FOUND, N_("no such resource"));
    return fail(s, c, &e);
}

static enum MHD_Result route(basira_hub_server *s, struct MHD_Connection *c, request *rq,
                             const char *url, const char *method)
{
    basira_error e;
    int post = !strcmp(method, "POST");
    if (!strcmp(url, "/health") && !strcmp(method, "GET"))
        return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
    if (post && !strcmp(url, "/sync/v1/enrol"))
        return h_enrol(s, c, rq);
    if (post && !strcmp(url, "/sync/v1/push"))
        return h_signed(s, c, rq, basira_hub_push);
    if (post && !strcmp(url, "/sync/v1/pull"))
        return h_signed(s, c, rq, basira_hub_pull);
    if (post && !strcmp(url, "/sync/v1/hub-key"))
        return h_signed(s, c, rq, basira_hub_key_refresh);
    if (post && !strcmp(url, "/sync/v1/chunk"))
        return h_chunk(s, c, rq);
    if (post && !strcmp(url, "/sync/v1/original"))
        return h_signed(s, c, rq, basira_hub_original);
    if (post && !strcmp(url, "/sync/v1/release"))
        return h_signed(s, c, rq, basira_hub_release_offer);
    if (!strncmp(url, "/api/v1/", 8))
        return h_api(s, c, rq, method, url + 8);
    if (!strcmp(method, "GET") && (!strcmp(url, "/") || !strncmp(url, "/app/", 5)))
        return h_web(s, c, url);
    basira_error_setm(&e, BASIRA_E_NOT_FOUND, N_("no such resource"));
    return fail(s, c, &e);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)version;
    basira_hub_server *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*size) {
        if (rq->too_big || rq->len + *size > BODY_MAX) {
            rq->too_big = 1;
        } else {
            if (rq->len + *size > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 65536;
                while (cap < rq->len + *size)
                    cap *= 2;
                unsigned char *nb = realloc(rq->body, cap);
                if (!nb)
                    return MHD_NO;
                rq->body = nb;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, data, *size);
            rq->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_big) {
        basira_error e;
        basira_error_setm(&e, BASIRA_E_LIMIT, N_("the request is larger than %zu bytes"), BODY_MAX);
        return fail(s, c, &e);
    }
    return route(s, c, rq, url, method);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static void server_free(basira_hub_server *s)
{
    basira_translator_free(s->tr);
    if (s->tls_key)
        sodium_memzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    free(s->tls_cert);
    free(s);
}

basira_code basira_hub_server_start(basira_hub *hub, const char *addr, uint16_t port,
                                    unsigned threads, const char *tls_cert, const char *tls_key,
                                    basira_hub_server **out, basira_error *err)
{
    *out = NULL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("invalid listen address %s (expected an IPv4 address)"), addr);
    if (!tls_cert != !tls_key)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("HTTPS needs both --tls-cert and --tls-key"));
    basira_hub_server *s = calloc(1, sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->hub = hub;
    basira_code trc = basira_translator_new(&s->tr, err);
    if (trc) {
        server_free(s);
        return trc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    size_t n = 0;
    basira_code rc = BASIRA_OK;
    if (tls_cert &&
        ((rc = basira_fs_read(tls_cert, (size_t)1 << 20, &s->tls_cert, &n, err)) ||
         (rc = basira_fs_read(tls_key, (size_t)1 << 20, &s->tls_key, &s->tls_key_len, err)))) {
        server_free(s);
        return rc;
    }
    if (tls_cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    s->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, &handler, s, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_NOTIFY_COMPLETED, &completed, s,
        MHD_OPTION_ARRAY, tls_cert ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->daemon) {
        server_free(s);
        return basira_error_setm(err, BASIRA_E_IO,
                                 N_("cannot listen on %s port %u (in use, not allowed, or a bad "
                                    "TLS certificate or key)"),
                                 addr, (unsigned)port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : port;
    *out = s;
    return BASIRA_OK;
}

uint16_t basira_hub_server_port(const basira_hub_server *s)
{
    return s ? s->port : 0;
}

void basira_hub_server_stop(basira_hub_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
