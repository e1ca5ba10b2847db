/*
 * server.c - the HTTP API of the clinic node on libmicrohttpd.
 *
 * One request goes through: first call of the handler (headers known) ->
 * route, authentication, role, CSRF, declared size -- refused right away when
 * any fails, before the body is read; then the body is accumulated up to the
 * route's limit; then the final call runs the action and queues one JSON
 * response. The per-request state lives in the connection's con_cls; the
 * server-wide state (store, analyser, login limiter) in basira_server.
 */
#include "basira/server.h"
#include "basira/export.h"
#include "basira/i18n.h"
#include "basira/json.h"
#include "basira/paths.h"
#include "core/i18n.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define API "/api/v1"
#define LIMITER_SLOTS 512

typedef struct login_slot {
    uint64_t key; /* hash of username + address; 0 = free */
    int failures;
    int64_t window_start;
} login_slot;

struct basira_server {
    basira_store *store;
    basira_analyzer analyzer;
    basira_server_config cfg;
    char listen_addr[64];
    char *tls_cert, *tls_key; /* PEM contents */
    char *openapi;            /* served as is */
    size_t openapi_len;
    struct MHD_Daemon *daemon;
    uint16_t port;
    atomic_int in_flight;
    atomic_int stopping; /* set by basira_server_stop: new requests get 503 */
    pthread_mutex_t log_lock;
    pthread_mutex_t limiter_lock;
    unsigned char limiter_key[crypto_shorthash_KEYBYTES];
    login_slot slots[LIMITER_SLOTS];
};

/* What each role may do. One table, so the role matrix is reviewed in one place. */
enum {
    R_GP = 1 << BASIRA_ROLE_GP,
    R_NURSE = 1 << BASIRA_ROLE_NURSE,
    R_DERM = 1 << BASIRA_ROLE_DERMATOLOGIST,
    R_ADMIN = 1 << BASIRA_ROLE_ADMIN,
    R_AUDITOR = 1 << BASIRA_ROLE_AUDITOR,
    R_ANY = R_GP | R_NURSE | R_DERM | R_ADMIN | R_AUDITOR,
    R_CLINICAL = R_GP | R_NURSE | R_DERM,
    R_PUBLIC = 0,
};

typedef enum route_id {
    RT_NONE = 0,
    RT_HEALTH,
    RT_OPENAPI,
    RT_LOGIN,
    RT_WHOAMI,
    RT_LOGOUT,
    RT_CASE_CREATE,
    RT_CASE_LIST,
    RT_CASE_GET,
    RT_PHOTO_GET,
    RT_IMAGE_ADD,
    RT_DECISION,
    RT_REPORT_PDF,
    RT_FHIR,
    RT_EXPORT,
    RT_AUDIT_LIST,
    RT_AUDIT_VERIFY,
    RT_USER_LIST,
    RT_USER_ADD,
    RT_USER_UPDATE,
} route_id;

typedef struct route {
    route_id id;
    const char *method;
    /* After /api/v1; "{id}", "{iid}" = positive integers, "{name}" = a username. */
    const char *pattern;
    int roles; /* R_PUBLIC: no session needed */
    int body;  /* 0 none, 1 JSON, 2 image */
} route;

static const route routes[] = {
    {RT_HEALTH, "GET", "/health", R_PUBLIC, 0},
    {RT_OPENAPI, "GET", "/openapi.json", R_PUBLIC, 0},
    {RT_LOGIN, "POST", "/session", R_PUBLIC, 1},
    {RT_WHOAMI, "GET", "/session", R_ANY, 0},
    {RT_LOGOUT, "DELETE", "/session", R_ANY, 0},
    {RT_CASE_CREATE, "POST", "/cases", R_CLINICAL, 1},
    {RT_CASE_LIST, "GET", "/cases", R_CLINICAL, 0},
    {RT_CASE_GET, "GET", "/cases/{id}", R_CLINICAL, 0},
    {RT_IMAGE_ADD, "POST", "/cases/{id}/images", R_CLINICAL, 2},
    {RT_PHOTO_GET, "GET", "/cases/{id}/images/{iid}", R_CLINICAL, 0},
    {RT_DECISION, "POST", "/cases/{id}/decision", R_GP | R_DERM, 1},
    {RT_REPORT_PDF, "GET", "/cases/{id}/report.pdf", R_CLINICAL, 0},
    {RT_FHIR, "GET", "/cases/{id}/fhir", R_CLINICAL, 0},
    {RT_EXPORT, "GET", "/export", R_CLINICAL, 0},
    {RT_AUDIT_LIST, "GET", "/audit", R_AUDITOR, 0},
    {RT_AUDIT_VERIFY, "GET", "/audit/verify", R_AUDITOR, 0},
    {RT_USER_LIST, "GET", "/users", R_ADMIN, 0},
    {RT_USER_ADD, "POST", "/users", R_ADMIN, 1},
    {RT_USER_UPDATE, "PATCH", "/users/{name}", R_ADMIN, 1},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

typedef struct request {
    const route *rt;
    int64_t id;                         /* {id} */
    int64_t iid;                        /* {iid} */
    char name[BASIRA_USERNAME_MAX + 1]; /* {name} */
    char ip[INET6_ADDRSTRLEN];
    char method[8];
    char path[160]; /* for the access log: the URL without its query */
    basira_user user;
    int authed;
    struct timespec start;
    unsigned char *body;
    size_t len, cap, limit;
    int too_large;
    int too_slow;
    int responded; /* a response was queued on the first call */
    unsigned status;
    size_t bytes_out;
} request;

void basira_server_config_default(basira_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_addr = "127.0.0.1";
    cfg->port = 8080;
    cfg->threads = 8;
    cfg->max_json_bytes = 64 * 1024;
    cfg->max_image_bytes = 16 * 1024 * 1024;
    cfg->idle_timeout_s = 30;
    cfg->request_time_s = 120;
    cfg->session_ttl_s = 8 * 3600;
    cfg->login_max_failures = 5;
    cfg->login_window_s = 900;
    cfg->max_connections = 256;
}

/* ---- helpers ---- */

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static unsigned http_status(basira_code c)
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

/* Queue a JSON response; takes the reference to body. */
static enum MHD_Result send_json(struct MHD_Connection *c, request *rq, unsigned status,
                                 json_t *body, const char *const *extra_headers)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(body);
    if (!text) {
        text = strdup("{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}");
        status = 500;
        if (!text)
            return MHD_NO;
    }
    size_t n = strlen(text);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'");
    for (const char *const *h = extra_headers; h && h[0]; h += 2)
        MHD_add_response_header(r, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    rq->status = status;
    rq->bytes_out = n;
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, request *rq, unsigned status,
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
    json_t *body = json_pack("{s:o}", "error", basira_json_error(&shown));
    return send_json(c, rq, status, body, NULL);
}

static enum MHD_Result fail(struct MHD_Connection *c, request *rq, const basira_error *e)
{
    return send_error(c, rq, http_status(e->code), e);
}

static enum MHD_Result fail_with(struct MHD_Connection *c, request *rq, unsigned status,
                                 basira_code code, const char *msg)
{
    basira_error e;
    basira_error_set(&e, code, "%s", msg);
    return send_error(c, rq, status, &e);
}

/* ---- routing ---- */

static int match(const char *pattern, const char *path, request *rq)
{
    while (*pattern && *path) {
        if (!strncmp(pattern, "{id}", 4) || !strncmp(pattern, "{iid}", 5)) {
            char *end;
            errno = 0;
            if (!(*path >= '1' && *path <= '9'))
                return 0;
            long long v = strtoll(path, &end, 10);
            if (errno || v <= 0)
                return 0;
            int is_iid = pattern[1] == 'i' && pattern[2] == 'i';
            *(is_iid ? &rq->iid : &rq->id) = v;
            path = end;
            pattern += is_iid ? 5 : 4;
        } else if (!strncmp(pattern, "{name}", 6)) {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > BASIRA_USERNAME_MAX)
                return 0;
            memcpy(rq->name, path, n);
            rq->name[n] = '\0';
            path += n;
            pattern += 6;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return !*pattern && !*path;
}

/* The route for method + url; *path_known tells 405 from 404. */
static const route *find_route(const char *method, const char *url, request *rq, int *path_known)
{
    *path_known = 0;
    if (strncmp(url, API, strlen(API)))
        return NULL;
    const char *path = url + strlen(API);
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (match(routes[i].pattern, path, rq)) {
            *path_known = 1;
            if (!strcmp(routes[i].method, method))
                return &routes[i];
        }
    }
    return NULL;
}

/* ---- login rate limiting (per username + client address) ---- */

static login_slot *limiter_slot(basira_server *s, const char *username, const char *ip, int create)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s\n%s", username, ip);
    uint64_t key;
    crypto_shorthash((unsigned char *)&key, (const unsigned char *)buf,
                     (unsigned long long)(n < 0                     ? 0
                                          : (size_t)n >= sizeof buf ? sizeof buf - 1
                                                                    : (size_t)n),
                     s->limiter_key);
    if (!key)
        key = 1;
    login_slot *victim = NULL;
    int64_t now = (int64_t)time(NULL);
    for (size_t probe = 0; probe < 8; probe++) {
        login_slot *sl = &s->slots[(key + probe) % LIMITER_SLOTS];
        if (sl->key == key)
            return sl;
        int stale = sl->key && now - sl->window_start > s->cfg.login_window_s;
        if (!victim && (!sl->key || stale))
            victim = sl;
    }
    if (!create)
        return NULL;
    if (!victim) /* table crowded: reuse the oldest of the probed slots */
        victim = &s->slots[key % LIMITER_SLOTS];
    victim->key = key;
    victim->failures = 0;
    victim->window_start = now;
    return victim;
}

static int login_blocked(basira_server *s, const char *username, const char *ip, int *retry)
{
    int blocked = 0;
    pthread_mutex_lock(&s->limiter_lock);
    login_slot *sl = limiter_slot(s, username, ip, 0);
    int64_t now = (int64_t)time(NULL);
    if (sl && now - sl->window_start <= s->cfg.login_window_s &&
        sl->failures >= s->cfg.login_max_failures) {
        blocked = 1;
        *retry = (int)(sl->window_start + s->cfg.login_window_s - now) + 1;
    }
    pthread_mutex_unlock(&s->limiter_lock);
    return blocked;
}

static void login_record(basira_server *s, const char *username, const char *ip, int ok)
{
    pthread_mutex_lock(&s->limiter_lock);
    login_slot *sl = limiter_slot(s, username, ip, !ok);
    if (sl) {
        int64_t now = (int64_t)time(NULL);
        if (ok) {
            sl->key = 0;
        } else {
            if (now - sl->window_start > s->cfg.login_window_s) {
                sl->window_start = now;
                sl->failures = 0;
            }
            sl->failures++;
        }
    }
    pthread_mutex_unlock(&s->limiter_lock);
}

/* ---- handlers ---- */

static basira_actor actor_of(const request *rq)
{
    basira_actor a = {rq->user.username, rq->ip};
    return a;
}

static enum MHD_Result h_login(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    const char *user = json_string_value(json_object_get(j, "username"));
    const char *pass = json_string_value(json_object_get(j, "password"));
    if (!json_is_object(j) || !user || !pass || json_object_size(j) != 2) {
        json_decref(j);
        return fail_with(c, rq, 400, BASIRA_E_FORMAT,
                         _("send {\"username\": ..., \"password\": ...} as JSON"));
    }
    int retry = 0;
    if (login_blocked(s, user, rq->ip, &retry)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        const char *hdrs[] = {"Retry-After", ra, NULL};
        basira_error_set(&e, BASIRA_E_LIMIT,
                         _("too many failed sign-ins for this account from this address; try "
                           "again in %d seconds"),
                         retry);
        /* Only a well-formed username goes into the audit trail as the actor. */
        size_t ul = strlen(user), ok = ul > 0 && ul <= BASIRA_USERNAME_MAX;
        for (size_t i = 0; ok && i < ul; i++)
            ok = isalnum((unsigned char)user[i]) || strchr("._-", user[i]);
        basira_actor a = {ok ? user : "?", rq->ip};
        basira_store_audit_append(s->store, &a, "login", 0, "rate_limited", NULL, NULL);
        json_decref(j);
        return send_json(c, rq, 429, json_pack("{s:o}", "error", basira_json_error(&e)), hdrs);
    }
    basira_user u;
    basira_code rc = basira_store_authenticate(s->store, user, pass, rq->ip, &u, &e);
    login_record(s, user, rq->ip, rc == BASIRA_OK);
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    char token[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1];
    if ((rc = basira_store_session_create(s->store, &u, s->cfg.session_ttl_s, token, csrf, &e)))
        return fail(c, rq, &e);
    rq->user = u;
    char c1[256], c2[256];
    const char *secure = s->tls_cert ? "; Secure" : "";
    snprintf(c1, sizeof c1,
             "basira_session=%s; Path=/api/v1; Max-Age=%lld; HttpOnly; "
             "SameSite=Strict%s",
             token, (long long)s->cfg.session_ttl_s, secure);
    snprintf(c2, sizeof c2, "basira_csrf=%s; Path=/; Max-Age=%lld; SameSite=Strict%s", csrf,
             (long long)s->cfg.session_ttl_s, secure);
    const char *hdrs[] = {"Set-Cookie", c1, "Set-Cookie", c2, NULL};
    sodium_memzero(token, sizeof token);
    return send_json(c, rq, 200,
                     json_pack("{s:s, s:s, s:s, s:I}", "username", u.username, "role",
                               basira_role_name(u.role), "csrf_token", csrf, "expires_in",
                               (json_int_t)s->cfg.session_ttl_s),
                     hdrs);
}

static enum MHD_Result h_logout(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
    if (basira_store_session_delete(s->store, token, &e))
        return fail(c, rq, &e);
    basira_actor a = actor_of(rq);
    basira_store_audit_append(s->store, &a, "logout", 0, "ok", NULL, NULL);
    const char *hdrs[] = {"Set-Cookie",
                          "basira_session=; Path=/api/v1; Max-Age=0; HttpOnly; SameSite=Strict",
                          "Set-Cookie", "basira_csrf=; Path=/; Max-Age=0; SameSite=Strict", NULL};
    return send_json(c, rq, 200, json_pack("{s:b}", "signed_out", 1), hdrs);
}

static enum MHD_Result h_case_create(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_case_new cn;
    json_t *holder = NULL;
    basira_actor a = actor_of(rq);
    basira_code rc = basira_request_parse_case((const char *)rq->body, rq->len, &cn, &holder, &e);
    if (rc == BASIRA_E_CONSENT)
        basira_store_audit_append(s->store, &a, "case_create", 0, "consent_refused", NULL, NULL);
    if (rc)
        return fail(c, rq, &e);
    int64_t id = 0;
    rc = basira_store_case_create(s->store, &a, &cn, &id, &e);
    json_decref(holder);
    if (rc)
        return fail(c, rq, &e);
    json_t *out = NULL;
    if ((rc = basira_store_case_get(s->store, &a, id, &out, &e)))
        return fail(c, rq, &e);
    char loc[64];
    snprintf(loc, sizeof loc, API "/cases/%" PRId64, id);
    const char *hdrs[] = {"Location", loc, NULL};
    return send_json(c, rq, 201, out, hdrs);
}

static enum MHD_Result h_case_list(basira_server *s, struct MHD_Connection *c, request *rq)
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
                             _("risk must be low, medium or high"));
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
                                 _("limit and offset must be whole numbers"));
            *dst[i] = (int)n;
        }
    }
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_store_case_list(s->store, &a, &f, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

static enum MHD_Result h_case_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    basira_actor a = actor_of(rq);
    if (basira_store_case_get(s->store, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

static enum MHD_Result h_photo_get(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_actor a = actor_of(rq);
    unsigned char *data = NULL;
    size_t len = 0;
    char mime[32];
    int64_t case_id = 0;
    if (basira_store_photo_get(s->store, &a, rq->iid, &data, &len, mime, &case_id, &e))
        return fail(c, rq, &e);
    if (case_id != rq->id) {
        free(data);
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, _("this case has no such photo"));
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", mime);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Disposition", "inline");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    rq->status = 200;
    rq->bytes_out = len;
    return ret;
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
static json_t *guidance(const json_t *result)
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
    json_array_append_new(g, json_string(_("Please take the photo again.")));
    return g;
}

static enum MHD_Result h_image_add(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_actor a = actor_of(rq);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const unsigned char *data = rq->body;
    size_t len = rq->len;
    const char *mime = image_type(ct);
    if (!mime && ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        char ptype[64];
        if (basira_multipart_find(ct, rq->body, rq->len, "image", &data, &len, ptype, &e))
            return fail_with(c, rq, 400, BASIRA_E_FORMAT, e.message);
        mime = image_type(ptype);
        if (!mime)
            mime = "application/octet-stream"; /* the decoder decides from the bytes */
    } else if (!mime) {
        return fail_with(c, rq, 415, BASIRA_E_UNSUPPORTED,
                         _("send the photo as image/jpeg, image/png, image/heic or image/webp, "
                           "or as the field 'image' of multipart/form-data"));
    }
    if (len == 0)
        return fail_with(c, rq, 422, BASIRA_E_EMPTY_FILE, _("the photo is empty"));
    json_t *hist = NULL;
    if (basira_store_case_history(s->store, rq->id, &hist, &e))
        return fail(c, rq, &e);
    basira_history h = {-1, -1, -1, -1, -1.0};
    json_t *v;
    if ((v = json_object_get(hist, "changed")) && json_is_boolean(v))
        h.changed = json_is_true(v);
    if ((v = json_object_get(hist, "bleeding")) && json_is_boolean(v))
        h.bleeding = json_is_true(v);
    if ((v = json_object_get(hist, "itching")) && json_is_boolean(v))
        h.itching = json_is_true(v);
    if ((v = json_object_get(hist, "duration_months")) && json_is_number(v))
        h.duration_months = json_number_value(v);
    json_decref(hist);
    if (!s->analyzer.analyze)
        return fail_with(c, rq, 503, BASIRA_E_UNSUPPORTED,
                         _("photo analysis is not available on this node (no model installed)"));

    json_t *result = NULL;
    unsigned char *clean = NULL;
    size_t clean_len = 0;
    const char *clean_mime = NULL;
    basira_code rc = s->analyzer.analyze(s->analyzer.ctx, data, len, &h, &result, &clean,
                                         &clean_len, &clean_mime, &e);
    if (rc) {
        free(clean);
        return fail(c, rq, &e);
    }
    const char *status = json_string_value(json_object_get(result, "status"));
    if (!status || !strcmp(status, "error")) {
        /* Undecodable: nothing kept but the fact it happened. */
        json_t *err = json_object_get(result, "error");
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        basira_store_audit_append(s->store, &a, "image_add", rq->id, "undecodable", code, NULL);
        json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : "not_an_image",
                                 "message", msg ? msg : basira_strerror(BASIRA_E_NOT_AN_IMAGE));
        json_decref(result);
        free(clean);
        return send_json(c, rq, 422, body, NULL);
    }
    int accepted = !strcmp(status, "ok");
    int64_t image_id = 0;
    rc = basira_store_image_add(s->store, &a, rq->id, clean ? clean : data, clean ? clean_len : len,
                                clean ? clean_mime : mime, result, accepted, &image_id, &e);
    free(clean);
    if (rc) {
        json_decref(result);
        return fail(c, rq, &e);
    }
    json_object_set_new(result, "case_id", json_integer(rq->id));
    if (accepted) {
        json_object_set_new(result, "image_id", json_integer(image_id));
        return send_json(c, rq, 201, result, NULL);
    }
    json_object_set_new(result, "quality_event_id", json_integer(image_id));
    json_object_set_new(result, "guidance", guidance(result));
    return send_json(c, rq, 200, result, NULL);
}

static enum MHD_Result h_decision(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_decision d;
    json_t *holder = NULL;
    basira_actor a = actor_of(rq);
    if (basira_request_parse_decision((const char *)rq->body, rq->len, &d, &holder, &e))
        return fail(c, rq, &e);
    basira_code rc = basira_store_decision(s->store, &a, rq->id, &d, &e);
    json_decref(holder);
    if (rc)
        return fail(c, rq, &e);
    json_t *out = NULL;
    if (basira_store_case_get(s->store, &a, rq->id, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, out, NULL);
}

static enum MHD_Result h_audit_list(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    long long after = 0, limit = 100;
    const char *v;
    char *end;
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after")) && *v) {
        errno = 0;
        after = strtoll(v, &end, 10);
        if (errno || *end || after < 0)
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                             _("after must be an audit entry id"));
    }
    if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit")) && *v) {
        errno = 0;
        limit = strtoll(v, &end, 10);
        if (errno || *end || limit < 1 || limit > 1000)
            return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT,
                             _("limit must be between 1 and 1000"));
    }
    json_t *out = NULL;
    if (basira_store_audit_list(s->store, after, (int)limit, &out, &e))
        return fail(c, rq, &e);
    basira_actor a = actor_of(rq);
    basira_store_audit_append(s->store, &a, "audit_read", 0, "ok", NULL, NULL);
    return send_json(c, rq, 200, out, NULL);
}

static enum MHD_Result h_audit_verify(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    basira_audit_report rep;
    basira_code rc = basira_store_audit_verify(s->store, &rep, &e);
    if (rc && rc != BASIRA_E_TAMPERED)
        return fail(c, rq, &e);
    return send_json(c, rq, 200,
                     json_pack("{s:b, s:I, s:I, s:s}", "ok", rc == BASIRA_OK, "checked",
                               (json_int_t)rep.checked, "bad_id", (json_int_t)rep.bad_id, "message",
                               rc ? e.message : ""),
                     NULL);
}

static enum MHD_Result h_user_list(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *out = NULL;
    if (basira_store_user_list(s->store, &out, &e))
        return fail(c, rq, &e);
    return send_json(c, rq, 200, json_pack("{s:o}", "items", out), NULL);
}

static enum MHD_Result h_user_add(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    const char *name = json_string_value(json_object_get(j, "username"));
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *pass = json_string_value(json_object_get(j, "password"));
    basira_role r;
    basira_code rc;
    if (!json_is_object(j) || !name || !role || !pass || json_object_size(j) != 3)
        rc = basira_error_set(&e, BASIRA_E_FORMAT,
                              _("send {\"username\", \"role\", \"password\"} as JSON"));
    else if (!(rc = basira_role_parse(role, &r, &e))) {
        basira_actor a = actor_of(rq);
        rc = basira_store_user_add(s->store, &a, name, r, pass, &e);
    }
    if (rc) {
        json_decref(j);
        return fail(c, rq, &e);
    }
    json_t *out = json_pack("{s:s, s:s, s:b}", "username", name, "role", role, "disabled", 0);
    json_decref(j);
    return send_json(c, rq, 201, out, NULL);
}

static enum MHD_Result h_user_update(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *j = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, NULL);
    json_t *pass = json_object_get(j, "password"), *dis = json_object_get(j, "disabled");
    size_t known = (pass != NULL) + (dis != NULL);
    basira_code rc = BASIRA_OK;
    basira_actor a = actor_of(rq);
    if (!json_is_object(j) || known == 0 || json_object_size(j) != known ||
        (pass && !json_is_string(pass)) || (dis && !json_is_boolean(dis)))
        rc = basira_error_set(&e, BASIRA_E_FORMAT,
                              _("send {\"password\": string} and/or {\"disabled\": bool}"));
    if (!rc && pass)
        rc = basira_store_user_passwd(s->store, &a, rq->name, json_string_value(pass), &e);
    if (!rc && dis)
        rc = basira_store_user_set_disabled(s->store, &a, rq->name, json_is_true(dis), &e);
    json_decref(j);
    if (rc)
        return fail(c, rq, &e);
    return send_json(c, rq, 200, json_pack("{s:s, s:b}", "username", rq->name, "updated", 1), NULL);
}

/* ---- documents: referral letter, FHIR bundle, open export (basira_export) ---- */

/* A response from a malloc'd buffer (taken), with the API's security headers. */
static enum MHD_Result send_bytes(struct MHD_Connection *c, request *rq, unsigned char *data,
                                  size_t len, const char *type, const char *disposition)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'");
    if (disposition)
        MHD_add_response_header(r, "Content-Disposition", disposition);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    rq->status = 200;
    rq->bytes_out = len;
    return ret;
}

/*
 * The case and the photo its documents show (NULL when it has none or the
 * photo was purged by retention: the documents then say so).
 */
static basira_code case_and_photo(basira_server *s, request *rq, json_t **cj, unsigned char **photo,
                                  size_t *len, char mime[32], basira_error *e)
{
    basira_actor a = actor_of(rq);
    *photo = NULL;
    *len = 0;
    mime[0] = '\0';
    basira_code rc = basira_store_case_get(s->store, &a, rq->id, cj, e);
    if (rc)
        return rc;
    int64_t iid = 0, owner = 0;
    basira_case_report_image(*cj, &iid, NULL);
    basira_error pe;
    if (iid > 0 && (basira_store_photo_get(s->store, &a, iid, photo, len, mime, &owner, &pe) ||
                    owner != rq->id)) {
        free(*photo);
        *photo = NULL;
        *len = 0;
    }
    return BASIRA_OK;
}

static enum MHD_Result h_report_pdf(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *lang = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lang");
    if (!lang || !*lang)
        lang = basira_language();
    if (strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en"))
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, _("lang must be fr, ar or en"));
    json_t *cj = NULL;
    unsigned char *photo = NULL, *pdf = NULL;
    size_t plen = 0, len = 0;
    char mime[32];
    if (case_and_photo(s, rq, &cj, &photo, &plen, mime, &e))
        return fail(c, rq, &e);
    basira_report_info clinic = {s->cfg.clinic_name, s->cfg.clinic_address, s->cfg.clinic_contact,
                                 0};
    basira_code rc = basira_report_pdf(cj, photo, plen, lang, s->cfg.clinic_name ? &clinic : NULL,
                                       &pdf, &len, &e);
    json_decref(cj);
    free(photo);
    if (rc)
        return fail(c, rq, &e);
    char disp[96];
    snprintf(disp, sizeof disp, "attachment; filename=\"basira-case-%" PRId64 "-%s.pdf\"", rq->id,
             lang);
    return send_bytes(c, rq, pdf, len, "application/pdf", disp);
}

static enum MHD_Result h_fhir(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    json_t *cj = NULL, *bundle = NULL;
    unsigned char *photo = NULL;
    size_t plen = 0;
    char mime[32];
    if (case_and_photo(s, rq, &cj, &photo, &plen, mime, &e))
        return fail(c, rq, &e);
    basira_code rc =
        basira_fhir_bundle(cj, photo, plen, !strncmp(mime, "image/", 6) ? mime : NULL, &bundle, &e);
    json_decref(cj);
    free(photo);
    if (rc)
        return fail(c, rq, &e);
    char *text = json_dumps(bundle, JSON_COMPACT);
    json_decref(bundle);
    if (!text)
        return fail_with(c, rq, 500, BASIRA_E_NOMEM, basira_strerror(BASIRA_E_NOMEM));
    char disp[80];
    snprintf(disp, sizeof disp, "inline; filename=\"basira-case-%" PRId64 ".fhir.json\"", rq->id);
    return send_bytes(c, rq, (unsigned char *)text, strlen(text),
                      "application/fhir+json; charset=utf-8", disp);
}

/* Every case the user may see (the worklist, all pages), each as its full record. */
static enum MHD_Result h_export(basira_server *s, struct MHD_Connection *c, request *rq)
{
    basira_error e;
    const char *format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
    if (!format || !*format)
        format = "csv";
    const char *type = basira_export_content_type(format);
    if (!type)
        return fail_with(c, rq, 400, BASIRA_E_INVALID_ARGUMENT, _("format must be csv or json"));
    basira_actor a = actor_of(rq);
    json_t *cases = json_array();
    basira_case_filter f;
    basira_case_filter_init(&f);
    f.limit = 500;
    basira_code rc = cases ? BASIRA_OK : basira_error_set(&e, BASIRA_E_NOMEM, NULL);
    for (f.offset = 0; !rc;) {
        json_t *page = NULL;
        if ((rc = basira_store_case_list(s->store, &a, &f, &page, &e)))
            break;
        json_t *items = json_object_get(page, "items");
        size_t i, n = json_array_size(items);
        json_t *it;
        json_array_foreach(items, i, it)
        {
            json_t *full = NULL;
            int64_t id = (int64_t)json_integer_value(json_object_get(it, "id"));
            /* A case deleted meanwhile (retention) is simply not exported. */
            if (!basira_store_case_get(s->store, &a, id, &full, &e))
                json_array_append_new(cases, full);
        }
        json_decref(page);
        if (n < (size_t)f.limit)
            break;
        f.offset += f.limit;
    }
    char *out = NULL;
    size_t len = 0;
    if (!rc)
        rc = basira_export_cases(cases, format, &out, &len, &e);
    char detail[64];
    snprintf(detail, sizeof detail, "format=%s cases=%zu", format, json_array_size(cases));
    json_decref(cases);
    basira_store_audit_append(s->store, &a, "export", 0, rc ? "failed" : "ok", detail, NULL);
    if (rc)
        return fail(c, rq, &e);
    char disp[80];
    snprintf(disp, sizeof disp, "attachment; filename=\"basira-cases.%s\"", format);
    return send_bytes(c, rq, (unsigned char *)out, len, type, disp);
}

/* ---- the web app: GET / and /app/<file> from the installed web folder ---- */

/* Content-Type of a web file by extension; NULL: not served. */
static const char *web_type(const char *path)
{
    static const char *const types[][2] = {{".html", "text/html; charset=utf-8"},
                                           {".css", "text/css; charset=utf-8"},
                                           {".js", "text/javascript; charset=utf-8"},
                                           {".json", "application/json; charset=utf-8"},
                                           {".svg", "image/svg+xml"},
                                           {".png", "image/png"},
                                           {".ico", "image/x-icon"},
                                           {".woff2", "font/woff2"},
                                           {".webmanifest", "application/manifest+json"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return NULL;
}

/*
 * Only plain relative names reach the disk: [A-Za-z0-9._-] segments separated
 * by single '/', no segment starting with '.' (so no "..", no hidden files),
 * no absolute path, at most 128 bytes. MHD has already decoded %xx, so an
 * encoded "%2e%2e" or "%00" is checked here in its decoded form.
 */
static int web_path_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > 128 || rel[0] == '/' || rel[n - 1] == '/')
        return 0;
    for (const char *p = rel; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p))
            return 0;
        if ((p == rel || p[-1] == '/') && (*p == '.' || *p == '/'))
            return 0;
    }
    return 1;
}

static enum MHD_Result serve_web(struct MHD_Connection *c, request *rq, const char *url,
                                 const char *method)
{
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return fail_with(c, rq, 405, BASIRA_E_UNSUPPORTED,
                         _("this method is not allowed on this endpoint"));
    const char *rel = !strcmp(url, "/") ? "index.html" : url + strlen("/app/");
    const char *type = web_type(rel);
    if (!web_path_ok(rel) || !type)
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, _("no such file"));
    char index[4096], path[4300];
    basira_error e;
    if (basira_data_file("web/index.html", index, sizeof index, &e))
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND,
                         _("the web app is not installed on this node"));
    char *slash = strrchr(index, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof path, "%s/%s", index, rel);
    /* O_NOFOLLOW: a symbolic link planted in the web folder is not followed out of it. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > 4 * 1024 * 1024) {
        if (fd >= 0)
            close(fd);
        return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, _("no such file"));
    }
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    /*
     * The page may load only its own files (no CDN, no inline script); photos
     * being taken are previewed from blob: URLs.
     */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    /* index.html always revalidated (it names the current files); the rest a short while. */
    MHD_add_response_header(r, "Cache-Control",
                            !strcmp(rel, "index.html") ? "no-cache" : "public, max-age=300");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    rq->status = 200;
    rq->bytes_out = (size_t)st.st_size;
    return ret;
}

static enum MHD_Result dispatch(basira_server *s, struct MHD_Connection *c, request *rq)
{
    switch (rq->rt->id) {
    case RT_HEALTH:
        return send_json(c, rq, 200,
                         json_pack("{s:s, s:s, s:b}", "status", "ok", "version", basira_version(),
                                   "analysis", s->analyzer.analyze != NULL),
                         NULL);
    case RT_OPENAPI: {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(s->openapi_len, s->openapi, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        rq->status = 200;
        rq->bytes_out = s->openapi_len;
        return ret;
    }
    case RT_LOGIN:
        return h_login(s, c, rq);
    case RT_WHOAMI:
        return send_json(c, rq, 200,
                         json_pack("{s:s, s:s}", "username", rq->user.username, "role",
                                   basira_role_name(rq->user.role)),
                         NULL);
    case RT_LOGOUT:
        return h_logout(s, c, rq);
    case RT_CASE_CREATE:
        return h_case_create(s, c, rq);
    case RT_CASE_LIST:
        return h_case_list(s, c, rq);
    case RT_CASE_GET:
        return h_case_get(s, c, rq);
    case RT_IMAGE_ADD:
        return h_image_add(s, c, rq);
    case RT_PHOTO_GET:
        return h_photo_get(s, c, rq);
    case RT_REPORT_PDF:
        return h_report_pdf(s, c, rq);
    case RT_FHIR:
        return h_fhir(s, c, rq);
    case RT_EXPORT:
        return h_export(s, c, rq);
    case RT_DECISION:
        return h_decision(s, c, rq);
    case RT_AUDIT_LIST:
        return h_audit_list(s, c, rq);
    case RT_AUDIT_VERIFY:
        return h_audit_verify(s, c, rq);
    case RT_USER_LIST:
        return h_user_list(s, c, rq);
    case RT_USER_ADD:
        return h_user_add(s, c, rq);
    case RT_USER_UPDATE:
        return h_user_update(s, c, rq);
    case RT_NONE:
        break;
    }
    return fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, _("no such endpoint"));
}

/*
 * Everything that can be decided from the headers alone. Returns 1 when a
 * response was queued (the body, if any, is then never read).
 */
static int first_call(basira_server *s, struct MHD_Connection *c, request *rq, const char *url,
                      const char *method, enum MHD_Result *ret)
{
    int known = 0;
    /* Outside the API: the web app's own files (public: the sign-in page must load). */
    if (!strcmp(url, "/") || !strncmp(url, "/app/", 5)) {
        *ret = serve_web(c, rq, url, method);
        return 1;
    }
    rq->rt = find_route(method, url, rq, &known);
    if (!rq->rt) {
        *ret = known ? fail_with(c, rq, 405, BASIRA_E_UNSUPPORTED,
                                 _("this method is not allowed on this endpoint"))
                     : fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, _("no such endpoint"));
        return 1;
    }
    if (rq->rt->roles != R_PUBLIC) {
        basira_error e;
        char csrf[BASIRA_TOKEN_LEN + 1];
        const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "basira_session");
        if (basira_store_session_lookup(s->store, token, &rq->user, csrf, &e)) {
            *ret = fail(c, rq, &e);
            return 1;
        }
        rq->authed = 1;
        if (!(rq->rt->roles & (1 << rq->user.role))) {
            basira_actor a = actor_of(rq);
            basira_store_audit_append(s->store, &a, rq->rt->pattern, rq->id, "forbidden", NULL,
                                      NULL);
            *ret = fail_with(c, rq, 403, BASIRA_E_FORBIDDEN, _("your role does not allow this"));
            return 1;
        }
        /* Every state-changing request proves it comes from our own page (CSRF). */
        if (strcmp(method, "GET")) {
            const char *sent = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
            if (!sent || strlen(sent) != BASIRA_TOKEN_LEN ||
                sodium_memcmp(sent, csrf, BASIRA_TOKEN_LEN) != 0) {
                *ret = fail_with(c, rq, 403, BASIRA_E_FORBIDDEN,
                                 _("missing or wrong X-CSRF-Token header (use the value of the "
                                   "basira_csrf cookie)"));
                return 1;
            }
        }
    }
    rq->limit = rq->rt->body == 2   ? s->cfg.max_image_bytes
                : rq->rt->body == 1 ? s->cfg.max_json_bytes
                                    : 0;
    if (rq->rt->body == 1) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!ct || strncasecmp(ct, "application/json", 16)) {
            *ret = fail_with(c, rq, 415, BASIRA_E_UNSUPPORTED,
                             _("send the body as Content-Type: application/json"));
            return 1;
        }
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > rq->limit) {
            char msg[160];
            snprintf(msg, sizeof msg, _("the request body is larger than the limit of %zu bytes"),
                     rq->limit);
            *ret = fail_with(c, rq, 413, BASIRA_E_LIMIT, msg);
            return 1;
        }
    }
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    basira_server *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&s->in_flight, 1);
        clock_gettime(CLOCK_MONOTONIC, &rq->start);
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%.*s", (int)strcspn(url, "?"), url);
        snprintf(rq->ip, sizeof rq->ip, "?");
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                          rq->ip, sizeof rq->ip);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          rq->ip, sizeof rq->ip);
        }
        enum MHD_Result ret = MHD_YES;
        if (atomic_load(&s->stopping)) {
            /* Draining for shutdown: refuse new work so requests in flight can finish. */
            const char *hdrs[] = {"Connection", "close", "Retry-After", "5", NULL};
            basira_error e;
            basira_error_set(&e, BASIRA_E_UNSUPPORTED, _("the server is shutting down"));
            rq->responded = 1;
            return send_json(c, rq, 503, json_pack("{s:o}", "error", basira_json_error(&e)), hdrs);
        }
        if (first_call(s, c, rq, url, method, &ret))
            rq->responded = 1;
        return ret;
    }
    if (rq->responded) {
        *upload_data_size = 0; /* rest of a body we already refused: discard it */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (elapsed_ms(&rq->start) > 1000.0 * s->cfg.request_time_s)
            rq->too_slow = 1;
        if (rq->too_large || rq->too_slow)
            return MHD_YES;
        if (n > rq->limit - rq->len) {
            rq->too_large = 1; /* chunked upload over the limit: drop the rest */
            return MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 16384;
            while (cap < rq->len + n)
                cap *= 2;
            if (cap > rq->limit)
                cap = rq->limit;
            unsigned char *nb = realloc(rq->body, cap);
            if (!nb)
                return MHD_NO;
            rq->body = nb;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    if (rq->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, _("the request body is larger than the limit of %zu bytes"),
                 rq->limit);
        return fail_with(c, rq, 413, BASIRA_E_LIMIT, msg);
    }
    if (rq->too_slow)
        return fail_with(c, rq, 408, BASIRA_E_LIMIT, _("the request took too long to arrive"));
    return dispatch(s, c, rq);
}

/* Called once per request when its response is sent (or the connection dies). */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    basira_server *s = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    if (s->cfg.access_log) {
        char when[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        /* Route, status, timing, staff user and address; never bodies or query strings. */
        json_t *line = json_pack(
            "{s:s, s:s, s:s, s:i, s:f, s:I, s:I, s:s, s:s?, s:s?}", "ts", when, "method",
            rq->method, "path", rq->path, "status", (int)rq->status, "ms", elapsed_ms(&rq->start),
            "bytes_in", (json_int_t)rq->len, "bytes_out", (json_int_t)rq->bytes_out, "ip", rq->ip,
            "user", rq->authed || rq->user.username[0] ? rq->user.username : NULL, "end",
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL : "aborted");
        if (line) {
            pthread_mutex_lock(&s->log_lock);
            basira_json_print_line(s->cfg.access_log, line);
            fflush(s->cfg.access_log);
            pthread_mutex_unlock(&s->log_lock);
            json_decref(line);
        }
    }
    free(rq->body);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- life cycle ---- */

static basira_code slurp(const char *path, char **out, size_t *len, basira_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (4u << 20)) {
                free(buf);
                fclose(f);
                return basira_error_set(err, BASIRA_E_LIMIT, _("%s is too large"), path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return basira_error_set(err, BASIRA_E_NOMEM, NULL);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s"), path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return BASIRA_OK;
}

basira_code basira_server_new(basira_store *st, const basira_analyzer *analyzer,
                              const basira_server_config *cfg, basira_server **out,
                              basira_error *err)
{
    *out = NULL;
    if (!st || !cfg)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!cfg->tls_cert != !cfg->tls_key)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("HTTPS needs both --tls-cert and --tls-key"));
    if (sodium_init() < 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("libsodium failed to start"));
    basira_server *s = calloc(1, sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->store = st;
    if (analyzer)
        s->analyzer = *analyzer;
    s->cfg = *cfg;
    basira_server_config d;
    basira_server_config_default(&d);
    if (!s->cfg.threads)
        s->cfg.threads = d.threads;
    if (!s->cfg.max_json_bytes)
        s->cfg.max_json_bytes = d.max_json_bytes;
    if (!s->cfg.max_image_bytes)
        s->cfg.max_image_bytes = d.max_image_bytes;
    if (!s->cfg.idle_timeout_s)
        s->cfg.idle_timeout_s = d.idle_timeout_s;
    if (!s->cfg.request_time_s)
        s->cfg.request_time_s = d.request_time_s;
    if (s->cfg.session_ttl_s <= 0)
        s->cfg.session_ttl_s = d.session_ttl_s;
    if (s->cfg.login_max_failures <= 0)
        s->cfg.login_max_failures = d.login_max_failures;
    if (s->cfg.login_window_s <= 0)
        s->cfg.login_window_s = d.login_window_s;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = d.max_connections;
    snprintf(s->listen_addr, sizeof s->listen_addr, "%s",
             cfg->listen_addr ? cfg->listen_addr : d.listen_addr);
    pthread_mutex_init(&s->log_lock, NULL);
    pthread_mutex_init(&s->limiter_lock, NULL);
    crypto_shorthash_keygen(s->limiter_key);
    *out = s; /* from here on basira_server_free cleans up */

    basira_code rc;
    char path[4096];
    const char *api = cfg->openapi_path;
    if (!api) {
        if ((rc = basira_data_file("docs/openapi.json", path, sizeof path, err)))
            return rc;
        api = path;
    }
    if ((rc = slurp(api, &s->openapi, &s->openapi_len, err)))
        return rc;
    if (cfg->tls_cert && ((rc = slurp(cfg->tls_cert, &s->tls_cert, NULL, err)) ||
                          (rc = slurp(cfg->tls_key, &s->tls_key, NULL, err))))
        return rc;
    return BASIRA_OK;
}

basira_code basira_server_start(basira_server *s, basira_error *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&ss;
    if (inet_pton(AF_INET, s->listen_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(s->cfg.port);
        sl = sizeof *v4;
    } else if (inet_pton(AF_INET6, s->listen_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(s->cfg.port);
        sl = sizeof *v6;
        flags |= MHD_USE_IPv6;
    } else {
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("invalid listen address '%s' (give an IP address such as "
                                  "127.0.0.1 or ::1)"),
                                s->listen_addr);
    }
    (void)sl;
    if (s->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return basira_error_set(err, BASIRA_E_UNSUPPORTED,
                                    _("this libmicrohttpd was built without TLS"));
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    s->daemon = MHD_start_daemon(
        flags, s->cfg.port, NULL, NULL, &handler, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        s->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        &completed, s, MHD_OPTION_ARRAY, s->tls_cert ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->daemon)
        return basira_error_set(err, BASIRA_E_IO,
                                _("cannot listen on %s port %u (in use, or not allowed)"),
                                s->listen_addr, (unsigned)s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return BASIRA_OK;
}

uint16_t basira_server_port(const basira_server *s)
{
    return s ? s->port : 0;
}

void basira_server_stop(basira_server *s, unsigned grace_s)
{
    if (!s || !s->daemon)
        return;
    atomic_store(&s->stopping, 1);
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    for (unsigned waited = 0; atomic_load(&s->in_flight) > 0 && waited < grace_s * 20; waited++)
        usleep(50000);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}

void basira_server_free(basira_server *s)
{
    if (!s)
        return;
    basira_server_stop(s, 0);
    pthread_mutex_destroy(&s->log_lock);
    pthread_mutex_destroy(&s->limiter_lock);
    free(s->openapi);
    if (s->tls_key)
        sodium_memzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free(s->tls_cert);
    free(s);
}
