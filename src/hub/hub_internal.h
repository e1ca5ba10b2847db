/* hub_internal.h - what the files of src/hub share. Not a public API. */
#ifndef BASIRA_HUB_INTERNAL_H
#define BASIRA_HUB_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>

#include "basira/hub.h"
#include "basira/session.h"

#define HUB_POOL_MAX 16

struct basira_hub {
    char *conninfo;
    basira_argon2_cost argon2;
    int64_t session_ttl_s, session_idle_s; /* sign-in sessions (session.c) */
    int login_max_failures, login_window_s;
    basira_dummy_hash dummy; /* what unknown usernames are checked against (session.h) */
    pthread_mutex_t lock;
    PGconn *idle[HUB_POOL_MAX];
    int n_idle;
};

/* 1 when s is 1..64 of [A-Za-z0-9._-] (user, node and release names). */
int hub_name_ok(const char *s);

/* A connection from the pool (or a new one). BASIRA_E_STORE when the database cannot be reached. */
basira_code hub_conn_get(basira_hub *hub, PGconn **out, basira_error *err);
/* Back to the pool when healthy and idle; closed otherwise. */
void hub_conn_put(basira_hub *hub, PGconn *c);

/*
 * Run sql with text parameters (NULL values are SQL NULL). *res (may be NULL
 * to discard) gets the result; BASIRA_E_STORE with PostgreSQL's message on
 * failure, BASIRA_E_CONFLICT for a unique violation.
 */
basira_code hub_exec(PGconn *c, const char *sql, int n, const char *const *vals, PGresult **res,
                     basira_error *err);

/*
 * hub_exec on a pooled connection, once more on a new one when PostgreSQL
 * restarted under the pooled one. For single statements outside hub_tx.
 */
basira_code hub_query(basira_hub *hub, const char *sql, int n, const char *const *vals,
                      PGresult **res, basira_error *err);

/*
 * Run fn(c, ctx, err) inside BEGIN ... COMMIT on a pooled connection. When the
 * connection turns out to be dead (PostgreSQL restarted), the transaction is
 * retried once on a fresh one: nothing was committed on the dead one.
 */
basira_code hub_tx(basira_hub *hub, basira_code (*fn)(PGconn *c, void *ctx, basira_error *err),
                   void *ctx, basira_error *err);

/* The node row (id, public key) of an enrolled node, locked FOR UPDATE; then check sig over bytes.
 */
basira_code hub_node_verify(PGconn *c, const char *node, const void *bytes, size_t len,
                            const char *sig_hex, char node_id[24], basira_error *err);

/* A JSON string of 64 lowercase hex characters (a SHA-256). batch.c */
int hub_hex64(const json_t *v);

/* Queue a down item for a node (its row locked by the caller or not), signed with the hub key. */
basira_code hub_down_insert(PGconn *c, const char *node_id, const char *node, const char *kind,
                            const char *payload, const char *by, int64_t *id, basira_error *err);

/* Acknowledge the node's down items up to after and append those after it (at most 20) to out. */
basira_code hub_down_list(PGconn *c, const char *node_id, int64_t after, json_t *out,
                          basira_error *err);

#endif
