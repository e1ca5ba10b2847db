/*
 * http.c - the HTTP API of the clinic node on libmicrohttpd: the glue.
 *
 * One request goes through: first call of the handler (headers known) ->
 * route, authentication, role, CSRF, declared size -- refused right away when
 * any fails, before the body is read; then the body is accumulated up to the
 * route's limit; then the final call runs the action and queues one JSON
 * response. The per-request state lives in the connection's con_cls; the
 * server-wide state (store, case service, connection guard) in basira_server.
 * The route table is in router.c, the handlers in one file per resource.
 */
#include "basira/fs.h"
#include "basira/json.h"
#include "basira/paths.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

void basira_server_config_default(basira_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_addr = "127.0.0.1";
    cfg->port = 8080;
    cfg->threads = 8;
    cfg->max_json_bytes = 64 * 1024;
    cfg->max_image_bytes = 16 * 1024 * 1024;
    /* Longer than the longest handler (20 s waiting for the photo budget + 20 s decoding):
     * libmicrohttpd counts a connection idle while its worker runs another handler, and
     * closed kept-alive connections whose request had arrived (issue 13). Slow clients are
     * held to the hard deadlines of guard.c instead. */
    cfg->idle_timeout_s = 60;
    cfg->request_time_s = 120;
    cfg->session_ttl_s = 8 * 3600;
    cfg->session_idle_s = 15 * 60;
    cfg->login_max_failures = 5;
    cfg->login_window_s = 900;
    cfg->max_connections = 1000;
    cfg->max_connections_per_ip = 16;
    cfg->header_time_s = 10;
    cfg->checkpoint_interval_s = 600;
}

unsigned server_client_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

void server_format_ip(const struct sockaddr *sa, char *out, size_t outsz)
{
    snprintf(out, outsz, "?");
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outsz);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)outsz);
}

static int first_call(basira_server *s, struct MHD_Connection *c, request *rq, const char *url,
                      const char *method, const char *version, enum MHD_Result *ret)
{
    int known = 0;
    const char *bad = guard_check_head(c, url, version);
    if (bad) {
        /* Closing the connection: whatever follows on it (a smuggled request) is never read. */
        const char *hdrs[] = {"Connection", "close", NULL};
        basira_error e;
        basira_error_clear(&e);
        e.code = BASIRA_E_FORMAT;
        e.msg.id = bad; /* translated into the request's language by error_json */
        snprintf(e.message, sizeof e.message, "%s", basira_translate(NULL, NULL, bad));
        *ret = send_json(c, rq, 400, json_pack("{s:o}", "error", error_json(rq, &e)), hdrs);
        return 1;
    }
    /* Outside the API: the web app's own files (public: the sign-in page must load). */
    if (!strcmp(url, "/") || !strcmp(url, "/sw.js") || !strncmp(url, "/app/", 5)) {
        *ret = serve_web(c, rq, url, method);
        return 1;
    }
    rq->rt = server_find_route(method, url, rq, &known);
    if (!rq->rt) {
        *ret = known ? fail_with(c, rq, 405, BASIRA_E_UNSUPPORTED,
                                 N_("this method is not allowed on this endpoint"))
                     : fail_with(c, rq, 404, BASIRA_E_NOT_FOUND, N_("no such endpoint"));
        return 1;
    }
    if (rq->rt->roles != R_PUBLIC && session_check(s, c, rq, method, ret))
        return 1;
    rq->limit = rq->rt->body == BODY_IMAGE  ? s->cfg.max_image_bytes
                : rq->rt->body == BODY_JSON ? s->cfg.max_json_bytes
                                            : 0;
    if (rq->rt->body == BODY_JSON) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!ct || strncasecmp(ct, "application/json", 16)) {
            *ret = fail_with(c, rq, 415, BASIRA_E_UNSUPPORTED,
                             N_("send the body as Content-Type: application/json"));
            return 1;
        }
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > rq->limit) {
            basira_error e;
            basira_error_setm(&e, BASIRA_E_LIMIT,
                              N_("the request body is larger than the limit of %zu bytes"),
                              rq->limit);
            *ret = send_error(c, rq, 413, &e);
            return 1;
        }
    }
    return 0;
}

/*
 * Run the route's handler; a write with an Idempotency-Key runs at most once per
 * key and account: a retry gets the first answer again (Idempotent-Replayed), or
 * a conflict when the first attempt was interrupted before its answer. Keys of
 * requests that did nothing (an error answer) are forgotten, so they can be sent
 * again. See src/store/idempotency.c.
 */
static enum MHD_Result run_handler_now(basira_server *s, struct MHD_Connection *c, request *rq)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    if (!key || !rq->authed || !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD"))
        return rq->rt->handler(s, c, rq);
    char what[200];
    snprintf(what, sizeof what, "%s %s", rq->method, rq->path);
    basira_idem id;
    basira_error e;
    if (basira_store_idem_begin(s->store, rq->user.id, key, what, &id, &e))
        return fail(c, rq, &e);
    if (id.state == BASIRA_IDEM_DONE) {
        const char *hdrs[] = {"Idempotent-Replayed", "true", NULL};
        reply how = {
            (unsigned)id.status, "application/json; charset=utf-8", NULL, NULL, NULL, hdrs};
        return server_send_bytes(c, rq, id.body, strlen(id.body), &how);
    }
    if (id.state == BASIRA_IDEM_PENDING)
        return fail_with(c, rq, 409, BASIRA_E_CONFLICT,
                         N_("a first request with this Idempotency-Key was interrupted before it "
                            "was answered; check whether it was recorded before sending it again "
                            "with a new key"));
    if (id.state == BASIRA_IDEM_MISMATCH)
        return fail_with(c, rq, 422, BASIRA_E_CONFLICT,
                         N_("this Idempotency-Key was already used for another request"));
    rq->idem = 1;
    enum MHD_Result r = rq->rt->handler(s, c, rq);
    int keep = rq->status >= 200 && rq->status < 300 && rq->captured;
    if (basira_store_idem_finish(s->store, rq->user.id, key, keep ? (int)rq->status : 0,
                                 keep ? rq->captured : NULL, &e))
        fprintf(stderr, "basira serve: idempotency key: %s\n", e.message);
    return r;
}

/*
 * Each connection has its own thread (a busy handler never holds up another
 * connection, whose request libmicrohttpd would otherwise close unanswered on its
 * idle timeout); cfg.threads handlers at most run at once, the others wait here,
 * in the handler phase (no connection deadline applies, see guard.c).
 */
static enum MHD_Result run_handler(basira_server *s, struct MHD_Connection *c, request *rq)
{
    pthread_mutex_lock(&s->slot_lock);
    while (s->slots_busy >= s->cfg.threads)
        pthread_cond_wait(&s->slot_free, &s->slot_lock);
    s->slots_busy++;
    pthread_mutex_unlock(&s->slot_lock);
    enum MHD_Result r = run_handler_now(s, c, rq);
    pthread_mutex_lock(&s->slot_lock);
    s->slots_busy--;
    pthread_cond_signal(&s->slot_free);
    pthread_mutex_unlock(&s->slot_lock);
    return r;
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
        /* Until the session says who it is: the language the browser asks for. */
        rq->tr = s->tr;
        rq->lang = basira_language_negotiate(
            NULL, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language"),
            basira_language());
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr)
            server_format_ip(ci->client_addr, rq->ip, sizeof rq->ip);
        guard_phase(s, c, GUARD_BODY);
        rq->tls = s->tls_cert != NULL;
        enum MHD_Result ret = MHD_YES;
        if (atomic_load(&s->stopping)) {
            /* Draining for shutdown: refuse new work so requests in flight can finish. */
            const char *hdrs[] = {"Connection", "close", "Retry-After", "5", NULL};
            basira_error e;
            basira_error_setm(&e, BASIRA_E_UNSUPPORTED, N_("the server is shutting down"));
            rq->responded = 1;
            return send_json(c, rq, 503, json_pack("{s:o}", "error", error_json(rq, &e)), hdrs);
        }
        if (first_call(s, c, rq, url, method, version, &ret))
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
        basira_error e;
        basira_error_setm(&e, BASIRA_E_LIMIT,
                          N_("the request body is larger than the limit of %zu bytes"), rq->limit);
        return send_error(c, rq, 413, &e);
    }
    if (rq->too_slow)
        return fail_with(c, rq, 408, BASIRA_E_LIMIT, N_("the request took too long to arrive"));
    guard_phase(s, c, GUARD_HANDLER);
    return run_handler(s, c, rq);
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
    free(rq->captured);
    free(rq);
    *con_cls = NULL;
    guard_phase(s, c, GUARD_HEAD); /* kept alive: the next request's head has its deadline */
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- life cycle ---- */

/* PEM files and the OpenAPI description: small text files read once at start-up. */
static basira_code slurp(const char *path, char **out, size_t *len, basira_error *err)
{
    return basira_fs_read(path, (size_t)4 << 20, (unsigned char **)out, len, err);
}

basira_code basira_server_new(basira_store *st, const basira_analyzer *analyzer,
                              const basira_server_config *cfg, basira_server **out,
                              basira_error *err)
{
    basira_code rc;
    *out = NULL;
    if (!st || !cfg)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!cfg->tls_cert != !cfg->tls_key)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("HTTPS needs both --tls-cert and --tls-key"));
    if (sodium_init() < 0)
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("libsodium failed to start"));
    basira_server *s = calloc(1, sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->store = st;
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
    if (s->cfg.session_idle_s <= 0)
        s->cfg.session_idle_s = d.session_idle_s;
    if (s->cfg.login_max_failures <= 0)
        s->cfg.login_max_failures = d.login_max_failures;
    if (s->cfg.login_window_s <= 0)
        s->cfg.login_window_s = d.login_window_s;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = d.max_connections;
    if (!s->cfg.max_connections_per_ip)
        s->cfg.max_connections_per_ip = d.max_connections_per_ip;
    if (!s->cfg.header_time_s)
        s->cfg.header_time_s = d.header_time_s;
    if (!s->cfg.checkpoint_interval_s)
        s->cfg.checkpoint_interval_s = d.checkpoint_interval_s;
    /* Leave descriptors for the database, the log and the photos being read. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        nofile.rlim_cur > 64 && s->cfg.max_connections > nofile.rlim_cur - 64)
        s->cfg.max_connections = (unsigned)(nofile.rlim_cur - 64);
    if (s->cfg.max_connections_per_ip > s->cfg.max_connections)
        s->cfg.max_connections_per_ip = s->cfg.max_connections;
    snprintf(s->listen_addr, sizeof s->listen_addr, "%s",
             cfg->listen_addr ? cfg->listen_addr : d.listen_addr);
    pthread_mutex_init(&s->log_lock, NULL);
    pthread_mutex_init(&s->guard_lock, NULL);
    pthread_mutex_init(&s->refusal_lock, NULL);
    pthread_mutex_init(&s->export_lock, NULL);
    pthread_mutex_init(&s->slot_lock, NULL);
    pthread_cond_init(&s->slot_free, NULL);
    s->refusal_tokens = 60;
    clock_gettime(CLOCK_MONOTONIC, &s->refusal_refill);
    basira_store_set_login_limits(st, s->cfg.login_max_failures, s->cfg.login_window_s);
    *out = s; /* from here on basira_server_free cleans up */

    basira_report_info clinic = {cfg->clinic_name, cfg->clinic_address, cfg->clinic_contact, 0,
                                 cfg->clinic_addressee};
    if ((rc = basira_case_service_new(st, analyzer, &clinic, &s->cases, err)) ||
        (rc = basira_translator_new(&s->tr, err)))
        return rc;
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

basira_code basira_server_set_clinic(basira_server *s, const basira_report_info *clinic,
                                     basira_error *err)
{
    if (!s)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    return basira_case_service_set_clinic(s->cases, clinic, err);
}

basira_code basira_server_start(basira_server *s, basira_error *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    /* A thread per connection (see run_handler); poll(), as that mode requires. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
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
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("invalid listen address '%s' (give an IP address such as "
                                    "127.0.0.1 or ::1)"),
                                 s->listen_addr);
    }
    (void)sl;
    if (s->tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                                     N_("this libmicrohttpd was built without TLS"));
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
        /* TLS 1.2 and 1.3 only, and key exchanges with forward secrecy only: no static RSA
         * (a stolen key must not decrypt recorded traffic). */
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:%SERVER_PRECEDENCE"},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    s->daemon = MHD_start_daemon(
        flags, s->cfg.port, &guard_accept, s, &handler, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout_s,
        /* The caps are guard_accept's (the accept policy above: each refusal logged);
         * libmicrohttpd's own global limit, a little higher, only backs it up. */
        MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections + 16, MHD_OPTION_NOTIFY_CONNECTION,
        &guard_notify, s, MHD_OPTION_UNESCAPE_CALLBACK, &guard_unescape, NULL,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        &completed, s, MHD_OPTION_ARRAY, s->tls_cert ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->daemon)
        return basira_error_setm(err, BASIRA_E_IO,
                                 N_("cannot listen on %s port %u (in use, or not allowed)"),
                                 s->listen_addr, (unsigned)s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    basira_code rc = guard_start(s, err);
    if (rc) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    return rc;
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
    guard_stop(s);
}

void basira_server_free(basira_server *s)
{
    if (!s)
        return;
    basira_server_stop(s, 0);
    pthread_mutex_destroy(&s->log_lock);
    pthread_mutex_destroy(&s->guard_lock);
    pthread_mutex_destroy(&s->refusal_lock);
    pthread_mutex_destroy(&s->export_lock);
    pthread_mutex_destroy(&s->slot_lock);
    pthread_cond_destroy(&s->slot_free);
    basira_case_service_free(s->cases);
    basira_translator_free(s->tr);
    free(s->openapi);
    if (s->tls_key)
        sodium_memzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free(s->tls_cert);
    free(s);
}
