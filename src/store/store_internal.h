/* store_internal.h - what the files of src/store share. Not a public API. */
#ifndef BASIRA_STORE_INTERNAL_H
#define BASIRA_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlcipher/sqlite3.h>

#include "basira/store.h"

struct basira_store {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, one writer at a time */
    char dir[4096];
    basira_argon2_cost argon2; /* cost of new password hashes (basira_store_options) */
};

/* Fill err from the connection's last error (BASIRA_E_STORE). */
basira_code store_sql_error(basira_store *st, const char *what, basira_error *err);

/* Run SQL without results. */
basira_code store_exec(basira_store *st, const char *sql, basira_error *err);

/* Prepare or fail with a store error. */
basira_code store_prepare(basira_store *st, const char *sql, sqlite3_stmt **stmt,
                          basira_error *err);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
basira_code store_begin(basira_store *st, basira_error *err);
basira_code store_commit(basira_store *st, basira_error *err);
void store_rollback(basira_store *st);

/* Append an audit entry inside the caller's transaction (lock held). */
basira_code store_audit_append_locked(basira_store *st, const basira_actor *who, const char *action,
                                      int64_t case_id, const char *outcome, const char *detail,
                                      basira_error *err);

/* "2026-11-22T16:30:00Z" for a unix time. */
void store_iso_time(int64_t t, char out[32]);

/* Current time, unix seconds. */
int64_t store_now(void);

/* Argon2id cost of a new key (for_key) or password hash: libsodium's minimum for
 * BASIRA_ARGON2_MINIMUM. */
void store_pwhash_cost(basira_argon2_cost cost, int for_key, unsigned long long *ops, size_t *mem);

/* The case record of basira_store_case_get, without its audit entry (lock held). */
basira_code store_case_json_locked(basira_store *st, int64_t id, json_t **out, basira_error *err);

/* ---- sync with the regional hub (outbox.c) ---- */

/* Schema step adding consent for remote review, the outbox and the replies (store.c). */
extern const char store_migration_sync[];

/* Add "replies": [...] (the hub's answers about case id) to the case record j. */
basira_code store_sync_replies_locked(basira_store *st, int64_t id, json_t *j, basira_error *err);

#endif
