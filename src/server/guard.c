/*
 * guard.c - what a slow or hostile client may hold: hard deadlines on every
 * connection, strict reading of the request head.
 *
 * libmicrohttpd's connection timeout is an idle timeout: a client sending one
 * header byte every 10 s keeps its connection for ever, and 300 of them took
 * every connection slot of the node (the per-address limit was the global one).
 * So, besides a low per-address cap and a global cap that leaves room for
 * everyone else (http.c), each connection is tracked here from accept to close
 * with a deadline:
 *   - waiting for the first request head after accept: header_time_s; for the next
 *     one on a kept-alive connection, the idle timeout;
 *   - until the end of the body: twice request_time_s, counted from the same start
 *     (a body that ends after request_time_s gets its 408 from http.c; one that
 *     never ends is cut here);
 *   - while its handler runs (analysis, database): none here, the work has its
 *     own budgets (decode deadline, SQLite busy timeout).
 * A watchdog thread shuts down (shutdown(2)) the socket of a connection past its
 * deadline: libmicrohttpd sees the end of the stream and closes it. The close is
 * written to the access log, so no request vanishes without a trace. The socket
 * is shut down under the lock that the close notification takes, before
 * libmicrohttpd closes the descriptor, so a reused descriptor is never touched.
 * Every other close is logged too, when libmicrohttpd reports it (NOTIFY_CONNECTION
 * closed): before any request ("no_request"), on its idle timeout ("idle_timeout"),
 * between requests ("after_requests") or during one ("during_request"), with the
 * client's address and port and the number of requests the connection began.
 * The connection caps are checked here at accept (guard_accept), and each refusal
 * is logged too: {"event":"refused","reason":"per_address_limit"|"connection_limit"}.
 * The same thread writes the audit checkpoints (store.h) every
 * checkpoint_interval_s, and to syslog with audit_syslog.
 */
#include "basira/json.h"
#include "core/i18n.h"
#include "server_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

struct conn_guard {
    conn_guard *prev, *next;
    int fd;
    int phase; /* GUARD_HEAD, GUARD_BODY, GUARD_HANDLER */
    int shut;
    int kept;     /* kept alive after an answer: waiting for its next request */
    long started; /* requests begun on this connection */
    unsigned port;
    struct timespec since;
    char ip[INET6_ADDRSTRLEN];
};

static double seconds_since(const struct timespec *t)
{
    return elapsed_ms(t) / 1000.0;
}

/*
 * One access-log line about a connection: "closed" (why, after held seconds, with the
 * number of requests it began) or "refused" at accept (why, with the number of refusals
 * not logged since the last line).
 */
static void log_conn(basira_server *s, const conn_guard *g, const char *event, const char *why,
                     double held, long count)
{
    if (!s->cfg.access_log)
        return;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int closed = !strcmp(event, "closed");
    json_t *line = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "ts", when, "event", event, "reason",
                             why, "ip", g->ip, "port", (int)g->port,
                             closed ? "requests" : "not_logged", (json_int_t)count);
    if (line && closed)
        json_object_set_new(line, "s", json_real(held));
    if (!line)
        return;
    pthread_mutex_lock(&s->log_lock);
    basira_json_print_line(s->cfg.access_log, line);
    fflush(s->cfg.access_log);
    pthread_mutex_unlock(&s->log_lock);
    json_decref(line);
}

/*
 * Why libmicrohttpd (or the client) closed a connection that the watchdog did not cut.
 * libmicrohttpd does not say which side closed; what is known is what the connection
 * was doing and for how long.
 */
static const char *close_reason(const basira_server *s, const conn_guard *g)
{
    if (g->phase != GUARD_HEAD)
        return "during_request"; /* the request's own line says "end": "aborted" */
    if (seconds_since(&g->since) + 0.5 >= (double)s->cfg.idle_timeout_s)
        return "idle_timeout";
    return g->started ? "after_requests" : "no_request";
}

/*
 * The connection caps are enforced here, not by libmicrohttpd: its refusals close the
 * socket without a trace. Each refusal is logged, at most one line a second (a flood of
 * connections must not fill the disk), with the number of refusals not written since.
 * Called by libmicrohttpd's listening thread as it accepts; a connection is counted from
 * its start notification (guard_notify), so should that come later, in the connection's
 * own thread, a burst of simultaneous connections could pass a cap by a few (the global
 * limit given to libmicrohttpd, a little higher, still holds).
 */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    basira_server *s = cls;
    (void)addrlen;
    conn_guard probe;
    memset(&probe, 0, sizeof probe);
    server_format_ip(addr, probe.ip, sizeof probe.ip);
    probe.port = server_client_port(addr);
    unsigned same = 0, all = 0;
    pthread_mutex_lock(&s->guard_lock);
    for (const conn_guard *g = s->guards; g; g = g->next) {
        all++;
        same += !strcmp(g->ip, probe.ip);
    }
    const char *why = same >= s->cfg.max_connections_per_ip ? "per_address_limit"
                      : all >= s->cfg.max_connections       ? "connection_limit"
                                                            : NULL;
    if (why) {
        if (s->refused_logged.tv_sec == 0 || seconds_since(&s->refused_logged) >= 1.0) {
            log_conn(s, &probe, "refused", why, 0.0, s->refused_unlogged);
            s->refused_unlogged = 0;
            clock_gettime(CLOCK_MONOTONIC, &s->refused_logged);
        } else {
            s->refused_unlogged++;
        }
    }
    pthread_mutex_unlock(&s->guard_lock);
    return why ? MHD_NO : MHD_YES;
}

void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    basira_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_guard *g = calloc(1, sizeof *g);
        if (!g)
            return; /* not watched: only the idle timeout applies */
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        g->fd = fd ? fd->connect_fd : -1;
        g->phase = GUARD_HEAD;
        clock_gettime(CLOCK_MONOTONIC, &g->since);
        snprintf(g->ip, sizeof g->ip, "?");
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            server_format_ip(ci->client_addr, g->ip, sizeof g->ip);
            g->port = server_client_port(ci->client_addr);
        }
        pthread_mutex_lock(&s->guard_lock);
        g->next = s->guards;
        if (s->guards)
            s->guards->prev = g;
        s->guards = g;
        pthread_mutex_unlock(&s->guard_lock);
        *socket_context = g;
        return;
    }
    conn_guard *g = *socket_context;
    if (!g)
        return;
    pthread_mutex_lock(&s->guard_lock);
    /* Every close is logged (the watchdog's own cuts already were): one that came before
     * the connection's first request, or while a request head was awaited, would otherwise
     * leave no trace (issue 13: a kept-alive request closed unanswered, unlogged). */
    if (!g->shut)
        log_conn(s, g, "closed", close_reason(s, g), seconds_since(&g->since), g->started);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->guards = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pthread_mutex_unlock(&s->guard_lock);
    free(g);
    *socket_context = NULL;
}

void guard_phase(basira_server *s, struct MHD_Connection *c, int phase)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_guard *g = ci ? ci->socket_context : NULL;
    if (!g)
        return;
    pthread_mutex_lock(&s->guard_lock);
    if (g->phase != phase) {
        g->phase = phase;
        /* The body's deadline runs from the head's arrival, like the request's. */
        if (phase != GUARD_BODY)
            clock_gettime(CLOCK_MONOTONIC, &g->since);
        if (phase == GUARD_HEAD)
            g->kept = 1;
        if (phase == GUARD_BODY)
            g->started++;
    }
    pthread_mutex_unlock(&s->guard_lock);
}

/*
 * The audit trail's head, outside the database (store.h): every
 * checkpoint_interval_s, and to syslog when configured. Called without guard_lock
 * (the store may be busy for a moment).
 */
static void write_checkpoint(basira_server *s)
{
    basira_audit_checkpoint cp;
    basira_error e;
    if (basira_store_audit_checkpoint(s->store, &cp, &e)) {
        fprintf(stderr, "basira serve: %s\n", e.message);
        return;
    }
    if (s->cfg.audit_syslog)
        syslog(LOG_AUTHPRIV | LOG_NOTICE,
               "basira audit checkpoint head=%lld hash=%s anchor=%lld anchor_hash=%s",
               (long long)cp.head_id, cp.head_hash, (long long)cp.anchor_id, cp.anchor_hash);
}

static void *watchdog(void *arg)
{
    basira_server *s = arg;
    pthread_mutex_lock(&s->guard_lock);
    while (!s->guard_stop) {
        if (seconds_since(&s->last_checkpoint) >= s->cfg.checkpoint_interval_s) {
            clock_gettime(CLOCK_MONOTONIC, &s->last_checkpoint);
            pthread_mutex_unlock(&s->guard_lock);
            write_checkpoint(s);
            pthread_mutex_lock(&s->guard_lock);
            continue;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 200 * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->guard_wake, &s->guard_lock, &t);
        for (conn_guard *g = s->guards; g && !s->guard_stop; g = g->next) {
            if (g->shut || g->fd < 0 || g->phase == GUARD_HANDLER)
                continue;
            double held = seconds_since(&g->since);
            /* A kept-alive connection may wait for its next request as long as the idle
             * timeout allows (its request may also be waiting for a busy worker). */
            double head = g->kept ? s->cfg.idle_timeout_s + 1.0 : s->cfg.header_time_s;
            double limit = g->phase == GUARD_HEAD ? head : 2.0 * s->cfg.request_time_s;
            if (held < limit)
                continue;
            shutdown(g->fd, SHUT_RDWR);
            g->shut = 1;
            log_conn(s, g, "closed",
                     g->phase == GUARD_HEAD ? "header_deadline" : "request_deadline", held,
                     g->started);
        }
    }
    pthread_mutex_unlock(&s->guard_lock);
    return NULL;
}

basira_code guard_start(basira_server *s, basira_error *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&s->guard_wake, &ca);
    pthread_condattr_destroy(&ca);
    if (r)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->guard_stop = 0;
    /* The first checkpoint at start-up. */
    clock_gettime(CLOCK_MONOTONIC, &s->last_checkpoint);
    s->last_checkpoint.tv_sec -= (time_t)s->cfg.checkpoint_interval_s + 1;
    if (pthread_create(&s->guard_thread, NULL, watchdog, s)) {
        pthread_cond_destroy(&s->guard_wake);
        return basira_error_setm(err, BASIRA_E_INTERNAL,
                                 N_("cannot start the connection watchdog"));
    }
    s->guard_running = 1;
    return BASIRA_OK;
}

void guard_stop(basira_server *s)
{
    if (!s->guard_running)
        return;
    pthread_mutex_lock(&s->guard_lock);
    s->guard_stop = 1;
    pthread_cond_signal(&s->guard_wake);
    pthread_mutex_unlock(&s->guard_lock);
    pthread_join(s->guard_thread, NULL);
    pthread_cond_destroy(&s->guard_wake);
    s->guard_running = 0;
}

/* ---- strict reading of the request head --------------------------------------- */

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10);
}

size_t guard_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *r = s, *w = s;
    while (*r) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            int v = hexval(r[1]) * 16 + hexval(r[2]);
            if (v != 0) {
                *w++ = (char)v;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

typedef struct head_scan {
    int content_length, transfer_encoding, host;
    int conflict;
    char first_length[32];
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    head_scan *h = cls;
    if (!key)
        return MHD_YES;
    if (!strcasecmp(key, "Content-Length")) {
        if (h->content_length++ == 0)
            snprintf(h->first_length, sizeof h->first_length, "%s", value ? value : "");
        else if (!value || strcmp(value, h->first_length))
            h->conflict = 1;
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        h->transfer_encoding++;
    } else if (!strcasecmp(key, "Host")) {
        h->host++;
    }
    return MHD_YES;
}

const char *guard_check_head(struct MHD_Connection *c, const char *url, const char *version)
{
    if (strstr(url, "%00"))
        return N_("the address of the request holds a NUL character");
    head_scan h;
    memset(&h, 0, sizeof h);
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.content_length && h.transfer_encoding)
        return N_("the request has both Content-Length and Transfer-Encoding");
    if (h.conflict)
        return N_("the request has conflicting Content-Length headers");
    if (h.transfer_encoding > 1)
        return N_("the request has several Transfer-Encoding headers");
    if (version && !strcmp(version, MHD_HTTP_VERSION_1_1) && h.host != 1)
        return N_("an HTTP/1.1 request needs exactly one Host header");
    return NULL;
}
