/*
 * server.h - the clinic node's HTTP API (libmicrohttpd), JSON under /api/v1.
 *
 * The routes, their roles and their bodies are described in docs/openapi.json
 * (also served at GET /api/v1/openapi.json). In short (roles in brackets):
 *   POST   /session              sign in {"username","password"} -> cookies [anyone]
 *   GET    /session              who am I                          [any role]
 *   DELETE /session              sign out                          [any role]
 *   POST   /cases                new case, consent for care needed [gp nurse dermatologist]
 *   GET    /cases                worklist: ?status=&risk=&from=&to=&limit=&offset=  [same]
 *   GET    /cases/{id}           a case with its images and decision                [same]
 *   POST   /cases/{id}/images    photo: raw image body or multipart field "image"   [same]
 *   GET    /cases/{id}/images/{image_id}   the stored photo                          [same]
 *   POST   /cases/{id}/decision  {"accept_ai","category","reason","referral"} [gp dermatologist]
 *   GET    /audit, /audit/verify the audit trail and its check     [auditor]
 *   GET, POST /users; PATCH /users/{username}                      [admin]
 *   GET    /health, /openapi.json                                  [anyone]
 * (all under /api/v1)
 *
 * Security: sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict
 * cookie (Secure under TLS); every state-changing request other than login must
 * carry the session's CSRF token (cookie basira_csrf) in the X-CSRF-Token
 * header; failed logins are limited per username + client address. Errors are
 * {"error": {"code", "message"}} with the matching HTTP status. Bodies are
 * limited in size and requests in time; each completed request writes one JSON
 * line to the access log (method, route, status, duration, user; never patient
 * data).
 *
 * The photo analysis is an interface (basira_analyzer, include/basira/case.h),
 * so tests can use a deterministic fake and `basira serve` plugs in the real
 * pipeline. Every case operation goes through the case service (case.h); the
 * server only translates HTTP to its typed calls and back.
 */
#ifndef BASIRA_SERVER_H
#define BASIRA_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "basira/case.h"
#include "basira/error.h"
#include "basira/store.h"
#include "basira/triage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The photo analysis plugged into the node: basira_analyzer, see include/basira/case.h. */

typedef struct basira_server_config {
    const char *listen_addr; /* IPv4 or IPv6 literal; default "127.0.0.1" */
    uint16_t port;           /* 0 = any free port (see basira_server_port) */
    const char *tls_cert;    /* PEM files; both or neither (HTTPS via GnuTLS) */
    const char *tls_key;
    unsigned threads;                /* requests whose handlers run at once; default 8 */
    size_t max_json_bytes;           /* default 64 KiB */
    size_t max_image_bytes;          /* default 16 MiB */
    unsigned idle_timeout_s;         /* close a connection silent this long; default 60 */
    unsigned request_time_s;         /* whole request (upload included) limit; default 120 */
    int64_t session_ttl_s;           /* default 8 hours */
    int64_t session_idle_s;          /* signed out after this long without a request; default 900 */
    int login_max_failures;          /* per account (any address) and window; default 5 */
    int login_window_s;              /* default 900 */
    unsigned max_connections;        /* all addresses together; default 1000 (fewer with few fds) */
    unsigned max_connections_per_ip; /* default 16: one address cannot take the others' room */
    unsigned header_time_s;          /* a request head must arrive within this; default 10 */
    unsigned checkpoint_interval_s;  /* audit checkpoint outside the database; default 600 */
    int audit_syslog;                /* also send each checkpoint to syslog (LOG_AUTHPRIV) */
    FILE *access_log;                /* JSON Lines; NULL = no access log */
    const char *openapi_path;        /* NULL = docs/openapi.json found by basira_data_file() */
    /* The clinic printed on referral letters (DIR/config.json "clinic"); NULL = generic. */
    const char *clinic_name;
    const char *clinic_address;
    const char *clinic_contact;
    const char *clinic_addressee; /* whom letters are addressed to; NULL = generic */
} basira_server_config;

void basira_server_config_default(basira_server_config *cfg);

typedef struct basira_server basira_server;

/* The server keeps pointers to st and cfg->access_log; they must outlive it. */
basira_code basira_server_new(basira_store *st, const basira_analyzer *analyzer,
                              const basira_server_config *cfg, basira_server **out,
                              basira_error *err);

/* Start listening (worker threads run until basira_server_stop). */
basira_code basira_server_start(basira_server *srv, basira_error *err);

/* The port actually bound (useful with port 0). */
uint16_t basira_server_port(const basira_server *srv);

/*
 * The clinic printed on referral letters from now on (a site configuration
 * that came from the hub while serving; copied): see basira_case_service_set_clinic.
 */
basira_code basira_server_set_clinic(basira_server *srv, const basira_report_info *clinic,
                                     basira_error *err);

/*
 * Stop accepting connections, let requests in flight finish (at most
 * grace_s seconds), then stop the workers. Every write a client was told
 * succeeded is committed before its response is sent, so nothing acknowledged
 * is lost.
 */
void basira_server_stop(basira_server *srv, unsigned grace_s);

void basira_server_free(basira_server *srv);

/* ---- request parsing, exposed for tests and the fuzzer ---- */

/*
 * Parse a new-case body into c. Strings in c point into *holder (free it with
 * json_decref). Unknown fields, wrong types and a missing or false
 * consent.care are errors (BASIRA_E_FORMAT / BASIRA_E_CONSENT).
 */
basira_code basira_request_parse_case(const char *body, size_t len, basira_case_new *c,
                                      json_t **holder, basira_error *err);

/* {"accept_ai": bool, "category", "reason", "referral"}. Strings point into *holder. */
basira_code basira_request_parse_decision(const char *body, size_t len, basira_decision *d,
                                          json_t **holder, basira_error *err);

/*
 * Find the form field `field` of a multipart/form-data body (RFC 7578).
 * *part points into body; part_type gets the part's Content-Type ("" if none).
 * BASIRA_E_FORMAT when malformed, BASIRA_E_NOT_FOUND when the field is absent.
 */
basira_code basira_multipart_find(const char *content_type, const unsigned char *body, size_t len,
                                  const char *field, const unsigned char **part, size_t *part_len,
                                  char part_type[64], basira_error *err);

/* Parse "2026-11-22" or "2026-11-22T10:00:00Z" to unix seconds (end_of_day for a bare date). */
basira_code basira_parse_time(const char *s, int end_of_day, int64_t *out, basira_error *err);

/*
 * The case version in an If-Match header: "7", W/"7" or 7 -> 7; NULL (absent)
 * or "*" -> -1 (no check); anything else -> -2 (malformed, answered 400).
 */
int64_t basira_request_if_match(const char *value);

#ifdef __cplusplus
}
#endif
#endif
