/* store_internal.h - what the files of src/store share. Not a public API. */
#ifndef BASIRA_STORE_INTERNAL_H
#define BASIRA_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlcipher/sqlite3.h>

#include "basira/session.h"
#include "basira/store.h"

/* Password checks under way for one account (users.c), so that the lockout tells them apart
 * from failures. */
#define STORE_LOGIN_INFLIGHT 32
typedef struct store_login_check {
    char key[BASIRA_USERNAME_MAX + 1];
    int n; /* 0: a free slot */
} store_login_check;

struct basira_store {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, one writer at a time */
    char dir[4096];
    basira_argon2_cost argon2; /* cost of new password hashes (basira_store_options) */
    /* Sign-in: lockout per account (login_failures table), constant work. */
    int login_max_failures, login_window_s;
    basira_dummy_hash dummy; /* what unknown usernames are checked against */
    store_login_check checking[STORE_LOGIN_INFLIGHT]; /* lock held */
    pthread_cond_t check_done;                        /* with lock: a password check ended */
    _Atomic long pwhash_runs;
    unsigned char checkpoint_key[32]; /* MAC key of audit checkpoints (from the db key) */
    int bind_failed;                  /* a sqlite3_bind_* failed since store_begin (lock held) */
    atomic_int disk_full; /* space.c: the disk filled up; writes refused until it has room */
};

/*
 * Every sqlite3_bind_* goes through this: a bind that fails (out of memory)
 * leaves its parameter NULL, and a statement run with it would store a NULL
 * where a value was meant (a decision acknowledged but not kept: found by the
 * allocation-failure run, tests/fault). The failure is remembered, and
 * store_commit refuses to commit the transaction. Lock held.
 */
static inline void store_bound(basira_store *st, int rc)
{
    if (rc != SQLITE_OK)
        st->bind_failed = 1;
}

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

/*
 * json_dumps(j, JSON_COMPACT) checked by parsing it back: jansson 2.14 can emit
 * malformed JSON (a key's closing quote missing) when an allocation fails in the
 * middle of a dump, and the store would keep it (found by tests/fault). NULL when
 * out of memory or malformed; free() the result.
 */
char *store_json_text(const json_t *j);

/* ---- space.c ---- */

/* Make DIR/space.reserve at open (or start in disk-full mode when it cannot be made). */
void store_space_init(basira_store *st);
/* A write failed with SQLITE_FULL: enter disk-full mode, free the reserve. */
void store_space_note_full(basira_store *st);
/* Before an operation that adds data: BASIRA_E_NO_SPACE while the disk is full. */
basira_code store_space_for_write(basira_store *st, basira_error *err);

/* ---- checkpoint.c ---- */

/* Derive the checkpoint MAC key from the raw database key. */
void store_checkpoint_key(basira_store *st, const unsigned char db_key[32]);
/* Append one checkpoint line (file I/O only; no database access). */
basira_code store_checkpoint_append(basira_store *st, const basira_audit_checkpoint *c,
                                    basira_error *err);
/* The checkpoint with the highest head in the file (*found 0: no file or no line);
 * BASIRA_E_TAMPERED when a line does not carry a valid MAC. */
basira_code store_checkpoint_latest(basira_store *st, basira_audit_checkpoint *out, int *found,
                                    basira_error *err);

/* ---- hygiene.c ---- */

/* A key file must carry at least this much (estimated) entropy. */
#define BASIRA_KEY_MIN_ENTROPY_BITS 96.0

/* Estimated entropy of buf in bits (per-byte plug-in estimate times length). */
double store_entropy_bits(const unsigned char *buf, size_t n);

/*
 * Refuse a key file (its n bytes read into buf) that others may read or write,
 * that lies inside the data folder dir, or whose content is not random-looking.
 */
basira_code store_check_key_file(const char *path, const char *dir, const unsigned char *buf,
                                 size_t n, basira_error *err);

/* Restrict the data folder to its owner (0700 at most). */
basira_code store_fix_folder(const char *dir, basira_error *err);
/* The case record of basira_store_case_get, without its audit entry (lock held). */
basira_code store_case_json_locked(basira_store *st, int64_t id, json_t **out, basira_error *err);

/* ---- sync with the regional hub (outbox.c) ---- */

/* Schema step adding consent for remote review, the outbox and the replies (store.c). */
extern const char store_migration_sync[];
/* Schema step 7: originals due at the hub, replies read (originals.c). */
extern const char store_migration_originals[];
/* item["reply"]: the latest hub reply about case_id {"plan",...,"unread","count"} or null. */
basira_code store_sync_reply_summary_locked(basira_store *st, int64_t case_id, json_t *item,
                                            basira_error *err);
/* A clinician opened the case: its hub replies are read (by who, now). */
basira_code store_sync_replies_read_locked(basira_store *st, int64_t case_id,
                                           const basira_actor *who, basira_error *err);

/* Add "replies": [...] (the hub's answers about case id) to the case record j. */
basira_code store_sync_replies_locked(basira_store *st, int64_t id, json_t *j, basira_error *err);

#endif
