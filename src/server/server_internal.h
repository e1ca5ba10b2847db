/*
 * server_internal.h - what the files of the HTTP server share. Not installed.
 *
 * The server is split by resource:
 *   http.c      libmicrohttpd glue: one request's life (headers, body, final
 *               call, access log), the server's life cycle
 *   router.c    THE route table: method, path, handler, roles, body kind
 *   respond.c   the one path every response leaves by (security headers, CSP),
 *               JSON and error bodies, HTTP status of each basira_code
 *   sessions.c  sign-in (lockout: the store's), sessions, role and CSRF checks
 *   guard.c     connection deadlines, strict request heads
 *   cases.c     cases, photos, decisions (thin calls into the case service)
 *   documents.c referral letter, FHIR bundle, open export
 *   admin.c     audit trail and users
 *   static.c    the web app's files and the OpenAPI description
 *   request.c   pure parsers of what clients send (fuzzed)
 *
 * Adding an endpoint: write the handler in the file of its resource, declare it
 * below, add one line to the table in router.c.
 */
#ifndef BASIRA_SERVER_INTERNAL_H
#define BASIRA_SERVER_INTERNAL_H

#include "basira/case.h"
#include "basira/i18n.h"
#include "basira/server.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define API "/api/v1"
/* guard.c: one per open connection, from accept to close. */
typedef struct conn_guard conn_guard;
enum { GUARD_HEAD = 0, GUARD_BODY, GUARD_HANDLER };

struct basira_server {
    basira_store *store;
    basira_case_service *cases;
    basira_translator *tr; /* fr and ar catalogues, for answering each user in their language */
    basira_server_config cfg;
    char listen_addr[64];
    char *tls_cert, *tls_key; /* PEM contents */
    char *openapi;            /* served as is */
    size_t openapi_len;
    struct MHD_Daemon *daemon;
    uint16_t port;
    atomic_int in_flight;
    atomic_int stopping; /* set by basira_server_stop: new requests get 503 */
    /* http.c: each connection has its own thread; at most cfg.threads handlers run at once. */
    pthread_mutex_t slot_lock;
    pthread_cond_t slot_free;
    unsigned slots_busy;
    pthread_mutex_t log_lock;
    /* guard.c: every open connection and the watchdog that enforces its deadline. */
    pthread_mutex_t guard_lock;
    pthread_cond_t guard_wake;
    pthread_t guard_thread;
    int guard_running, guard_stop;
    conn_guard *guards;
    struct timespec refused_logged; /* connections refused at the caps: one log line a second */
    long refused_unlogged;
    struct timespec last_checkpoint; /* audit checkpoints, written by the watchdog */
    /* Refusals (401, bad CSRF) are audited, at most a burst then one per second. */
    pthread_mutex_t refusal_lock;
    double refusal_tokens;
    struct timespec refusal_refill;
    long refusals_suppressed;
    /* documents.c: when each data steward last exported everything (rate limit). */
    pthread_mutex_t export_lock;
    struct {
        int64_t user_id;
        struct timespec at;
    } exports[16];
};

/* What each role may do: the route table names these, so the matrix is reviewed in one place. */
enum {
    R_GP = 1 << BASIRA_ROLE_GP,
    R_NURSE = 1 << BASIRA_ROLE_NURSE,
    R_DERM = 1 << BASIRA_ROLE_DERMATOLOGIST,
    R_ADMIN = 1 << BASIRA_ROLE_ADMIN,
    R_AUDITOR = 1 << BASIRA_ROLE_AUDITOR,
    R_STEWARD = 1 << BASIRA_ROLE_DATA_STEWARD,
    R_ANY = R_GP | R_NURSE | R_DERM | R_ADMIN | R_AUDITOR | R_STEWARD,
    R_CLINICAL = R_GP | R_NURSE | R_DERM,
    R_PUBLIC = 0,
};

typedef enum route_body { BODY_NONE = 0, BODY_JSON, BODY_IMAGE } route_body;

typedef struct request request;
typedef enum MHD_Result (*route_handler)(basira_server *s, struct MHD_Connection *c, request *rq);

typedef struct route {
    const char *method;
    /* After /api/v1; "{id}", "{iid}" = positive integers, "{name}" = a username. */
    const char *pattern;
    route_handler handler;
    int roles; /* R_PUBLIC: no session needed */
    route_body body;
} route;

struct request {
    const route *rt;
    int64_t id;                         /* {id} */
    int64_t iid;                        /* {iid} */
    char name[BASIRA_USERNAME_MAX + 1]; /* {name} */
    char ip[INET6_ADDRSTRLEN];
    char method[8];
    char path[160]; /* for the access log: the URL without its query */
    basira_user user;
    int authed;
    const basira_translator *tr; /* the server's */
    const char *lang;            /* the language to answer in: "fr", "ar" or "en" */
    struct timespec start;
    unsigned char *body;
    size_t len, cap, limit;
    int too_large;
    int too_slow;
    int responded; /* a response was queued on the first call */
    unsigned status;
    size_t bytes_out;
    int idem;       /* the write carries an Idempotency-Key: its JSON answer is kept */
    int tls;        /* served over HTTPS (HSTS) */
    char *captured; /* that answer (malloc'd), for the key */
};

/* ---- router.c ---- */

/* The route for method + url (rq gets the path's parameters); *path_known tells 405 from 404. */
const route *server_find_route(const char *method, const char *url, request *rq, int *path_known);

/* ---- respond.c: every response leaves through server_queue ---- */

typedef struct reply {
    unsigned status;
    const char *type;           /* Content-Type */
    const char *disposition;    /* Content-Disposition; NULL none */
    const char *cache;          /* Cache-Control; NULL = "no-store" */
    const char *csp;            /* Content-Security-Policy; NULL = "default-src 'none'" */
    const char *const *headers; /* more name, value pairs, NULL-terminated; may be NULL */
} reply;

/*
 * Queue r (taken: destroyed here) with the security headers every response
 * carries (Content-Security-Policy, X-Content-Type-Options, Referrer-Policy,
 * Cache-Control) and record status and size for the access log. r NULL: out of
 * memory, the connection is closed.
 */
enum MHD_Result server_queue(struct MHD_Connection *c, request *rq, struct MHD_Response *r,
                             size_t len, const reply *how);
/* A response from a malloc'd buffer (taken). */
enum MHD_Result server_send_bytes(struct MHD_Connection *c, request *rq, void *data, size_t len,
                                  const reply *how);
/* A JSON response; takes the reference to body. */
enum MHD_Result send_json(struct MHD_Connection *c, request *rq, unsigned status, json_t *body,
                          const char *const *extra_headers);
enum MHD_Result send_error(struct MHD_Connection *c, request *rq, unsigned status,
                           const basira_error *e);
/* The error with the HTTP status of its code. */
enum MHD_Result fail(struct MHD_Connection *c, request *rq, const basira_error *e);
/* msgid: an N_()-marked message, translated into the request's language. */
enum MHD_Result fail_with(struct MHD_Connection *c, request *rq, unsigned status, basira_code code,
                          const char *msgid);
/* {"code","message"} of e, its message in the request's language when e->msg has one. */
json_t *error_json(const request *rq, const basira_error *e);
/* A message of a handler's own in the request's language (see basira_msg, i18n.h). */
const char *server_text(const request *rq, const basira_msg *m, char *out, size_t outsz);
unsigned http_status(basira_code c);
basira_actor actor_of(const request *rq);
double elapsed_ms(const struct timespec *t0);

/* ---- guard.c: deadlines of connections, strict request heads ---- */

/* The accept policy of MHD_start_daemon: the per-address and global caps, each refusal logged. */
enum MHD_Result guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION: track a connection from accept to close. */
void guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);
/* The connection enters GUARD_HEAD (waiting for a request), _BODY or _HANDLER. */
void guard_phase(basira_server *s, struct MHD_Connection *c, int phase);
basira_code guard_start(basira_server *s, basira_error *err);
void guard_stop(basira_server *s);
/* MHD_OPTION_UNESCAPE_CALLBACK: %-decoding that leaves %00 as is (then refused). */
size_t guard_unescape(void *cls, struct MHD_Connection *c, char *s);
/*
 * Why the request head must be refused (400, connection closed), or NULL: NUL
 * in the path, Content-Length with Transfer-Encoding, conflicting
 * Content-Lengths, several Transfer-Encodings, HTTP/1.1 without one Host.
 */
const char *guard_check_head(struct MHD_Connection *c, const char *url, const char *version);
/* The numeric address of a client. */
void server_format_ip(const struct sockaddr *sa, char *out, size_t outsz);
/* The client's port (0 when not IP), for matching a client's view with the access log. */
unsigned server_client_port(const struct sockaddr *sa);

/* ---- sessions.c ---- */

/* Audit a refused request (rate-limited; see REFUSAL_BURST in sessions.c). */
void audit_refusal(basira_server *s, const request *rq, const char *outcome);

/*
 * The session, role and CSRF checks of a route that needs a session. Returns 1
 * when a response was queued (*ret) because one failed.
 */
int session_check(basira_server *s, struct MHD_Connection *c, request *rq, const char *method,
                  enum MHD_Result *ret);

/* ---- handlers, by resource ---- */

enum MHD_Result h_login(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_whoami(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_logout(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_session_update(basira_server *s, struct MHD_Connection *c, request *rq);

enum MHD_Result h_case_create(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_case_list(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_case_get(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_image_add(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_photo_get(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_decision(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_patient_get(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_password_change(basira_server *s, struct MHD_Connection *c, request *rq);

enum MHD_Result h_report_pdf(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_fhir(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_export(basira_server *s, struct MHD_Connection *c, request *rq);

enum MHD_Result h_audit_list(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_audit_verify(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_user_list(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_user_add(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_user_update(basira_server *s, struct MHD_Connection *c, request *rq);

enum MHD_Result h_health(basira_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result h_openapi(basira_server *s, struct MHD_Connection *c, request *rq);
/* GET / and /app/<file>: the web app (outside the API, public). */
enum MHD_Result serve_web(struct MHD_Connection *c, request *rq, const char *url,
                          const char *method);

#endif
