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

/* ---- shared by cases.c and decisions.c ---- */

/* "low", "medium", "high" for 0..2; parse gives -1 for anything else. */
const char *store_risk_code(int r);
int store_risk_parse(const char *s);
/* 1 when s is NULL (and not required) or 1..max bytes with no control character. */
int store_text_ok(const char *s, size_t max, int required);
/* 1 when s is one of the NULL-terminated set. */
int store_one_of(const char *s, const char *const *set);
/* Characters of UTF-8 text, -1 when malformed. */
long store_utf8_length(const char *s);
/* Column text or NULL. */
const char *store_col_text(sqlite3_stmt *s, int i);

/*
 * Columns 0..16 of a case summary (get, list, patient): the case, its version,
 * latest referral, follow-up date and first stored photo (thumbnail).
 */
#define STORE_CASE_COLUMNS                                                                         \
    "id, patient_ref, age, sex, body_site, status, risk, ai_risk, ai_risk_index, created_at, "     \
    "created_by, updated_at, decision, version, referral, follow_up_at, (SELECT min(i.id) FROM "   \
    "images i JOIN photos p ON p.image_id = i.id WHERE i.case_id = cases.id)"
#define STORE_CASE_NCOLUMNS 17
json_t *store_case_summary(sqlite3_stmt *s);

/* Every decision of a case, oldest first (lock held). */
basira_code store_decisions_locked(basira_store *st, int64_t case_id, json_t **out,
                                   basira_error *err);

/* Schema 2: the decision JSON of each case becomes its decision version 1 (in a transaction). */
basira_code store_migrate_decisions(basira_store *st, basira_error *err);

/* Argon2id cost of a new key (for_key) or password hash: libsodium's minimum for
 * BASIRA_ARGON2_MINIMUM. */
void store_pwhash_cost(basira_argon2_cost cost, int for_key, unsigned long long *ops, size_t *mem);

#endif
