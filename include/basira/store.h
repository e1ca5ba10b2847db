/*
 * store.h - the clinic node's encrypted case store: users and roles, sessions,
 * cases with consent, photos, clinician decisions, a hash-chained audit trail
 * and retention.
 *
 * Everything lives in one SQLite database encrypted by SQLCipher, in a data
 * folder (default ./basira-data):
 *   basira.db      the database (AES-256 pages; photos are BLOBs inside it, so
 *                  they are encrypted at rest like everything else)
 *   keyinfo.json   how the key is derived: {"kdf":"argon2id","salt":hex,
 *                  "opslimit":n,"memlimit":n} or {"kdf":"keyfile"}; not secret
 *   config.json    optional site settings, e.g. retention periods (see below)
 *
 * The key is derived from a passphrase with Argon2id (libsodium crypto_pwhash)
 * and the salt of keyinfo.json, or is the BLAKE2b-256 hash of a key file's
 * contents. A wrong key gives BASIRA_E_WRONG_KEY, never a garbled database.
 *
 * Durability: WAL mode with synchronous=FULL; every function returns only once
 * its transaction is committed, so a write that was acknowledged survives a
 * kill -9 of the process at any moment.
 *
 * Every change and every read of patient data is appended to the audit trail in
 * the same transaction (who, what, which case, when, from where, outcome). Each
 * audit entry holds the SHA-256 of the previous one; basira_store_audit_verify()
 * finds edited, inserted or deleted entries.
 *
 * The store reads no environment and never prompts: the key and the Argon2id
 * cost (basira_store_options) are given by the caller; the `basira` program
 * resolves them from its options, the environment or the terminal (src/cli).
 *
 * A basira_store is safe to use from several threads (one connection behind a
 * mutex; SQLite work is short and the slow parts - photo analysis, password
 * hashing - happen outside of it).
 */
#ifndef BASIRA_STORE_H
#define BASIRA_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct basira_store basira_store;

/* ---- roles ---- */

typedef enum basira_role {
    BASIRA_ROLE_GP = 0,
    BASIRA_ROLE_NURSE,
    BASIRA_ROLE_DERMATOLOGIST,
    BASIRA_ROLE_ADMIN,
    BASIRA_ROLE_AUDITOR,
    BASIRA_ROLE_COUNT_
} basira_role;

/* "gp", "nurse", "dermatologist", "admin", "auditor". */
const char *basira_role_name(basira_role r);
/* Parse a role name; BASIRA_E_INVALID_ARGUMENT naming the valid ones otherwise. */
basira_code basira_role_parse(const char *name, basira_role *out, basira_error *err);

/* ---- opening ---- */

/* Exactly one of passphrase / key_file. */
typedef struct basira_store_key {
    const char *passphrase;
    const char *key_file; /* at least 32 bytes of secret material */
} basira_store_key;

/*
 * Argon2id cost of the password hashes and database keys this store makes.
 * MINIMUM is libsodium's minimum, for test suites only (never on a real node);
 * a database created with it records its cost in keyinfo.json and keeps
 * opening with it.
 */
typedef enum basira_argon2_cost {
    BASIRA_ARGON2_STANDARD = 0, /* key: "moderate" (~0.7 s, 256 MiB); passwords: "interactive" */
    BASIRA_ARGON2_MINIMUM = 1,
} basira_argon2_cost;

typedef struct basira_store_options {
    basira_argon2_cost argon2;
} basira_store_options;

/* 1 when dir already holds a Basira database. */
int basira_store_exists(const char *dir);

/*
 * Open (create = 1: create when absent) the store in dir, apply pending schema
 * migrations. opts NULL: standard Argon2id cost. Errors: BASIRA_E_WRONG_KEY, BASIRA_E_NOT_FOUND (no
 * database and create = 0), BASIRA_E_IO, BASIRA_E_STORE.
 */
basira_code basira_store_open(const char *dir, const basira_store_key *key, int create,
                              const basira_store_options *opts, basira_store **out,
                              basira_error *err);
void basira_store_free(basira_store *st);

/* Current schema version (number of migrations applied). */
int basira_store_schema_version(basira_store *st);

/* Who does something, for the audit trail. ip may be "local" for the command line. */
typedef struct basira_actor {
    const char *username;
    const char *ip;
} basira_actor;

/* ---- users ---- */

#define BASIRA_USERNAME_MAX 64

typedef struct basira_user {
    int64_t id;
    char username[BASIRA_USERNAME_MAX + 1];
    basira_role role;
    char lang[4]; /* the account's language: "fr", "ar", "en", or "" (none chosen) */
} basira_user;

/* Usernames: 1..64 of [A-Za-z0-9._-]. Passwords: at least 8 bytes. BASIRA_E_CONFLICT if taken. */
basira_code basira_store_user_add(basira_store *st, const basira_actor *who, const char *username,
                                  basira_role role, const char *password, basira_error *err);
basira_code basira_store_user_passwd(basira_store *st, const basira_actor *who,
                                     const char *username, const char *password, basira_error *err);
basira_code basira_store_user_set_disabled(basira_store *st, const basira_actor *who,
                                           const char *username, int disabled, basira_error *err);
/* The account's language ("fr", "ar", "en"; NULL or "" clears it). Sessions stay open. */
basira_code basira_store_user_set_lang(basira_store *st, const basira_actor *who,
                                       const char *username, const char *lang, basira_error *err);
basira_code basira_store_user_count(basira_store *st, long *count, basira_error *err);
/* [{"username","role","disabled","created_at","lang"}] (new reference; lang null when none). */
basira_code basira_store_user_list(basira_store *st, json_t **out, basira_error *err);

/*
 * Check a password (Argon2id, constant work whether or not the user exists).
 * BASIRA_E_AUTH for an unknown user, a wrong password or a disabled account
 * (one message for all three, so as not to reveal which usernames exist).
 * The attempt is audited.
 */
basira_code basira_store_authenticate(basira_store *st, const char *username, const char *password,
                                      const char *ip, basira_user *out, basira_error *err);

/* ---- sessions ---- */

#define BASIRA_TOKEN_LEN 64 /* hex characters of a session or CSRF token */

/* New random session (32 bytes from libsodium) valid ttl_s seconds. Only its hash is stored. */
basira_code basira_store_session_create(basira_store *st, const basira_user *user, int64_t ttl_s,
                                        char token[BASIRA_TOKEN_LEN + 1],
                                        char csrf[BASIRA_TOKEN_LEN + 1], basira_error *err);
/* BASIRA_E_AUTH when unknown, expired, or the user was disabled since. */
basira_code basira_store_session_lookup(basira_store *st, const char *token, basira_user *user,
                                        char csrf[BASIRA_TOKEN_LEN + 1], basira_error *err);
/* Sign out: the session is deleted and the sign-out audited in one transaction. */
basira_code basira_store_session_delete(basira_store *st, const basira_actor *who,
                                        const char *token, basira_error *err);

/* ---- cases ---- */

typedef struct basira_case_new {
    const char *patient_ref;        /* pseudonymous reference, 1..64 printable characters */
    int age;                        /* years, -1 unknown */
    const char *sex;                /* "female" | "male" | "other" | "unknown" */
    const char *body_site;          /* free text, up to 64 characters; NULL unknown */
    int changed, bleeding, itching; /* 1 yes, 0 no, -1 not asked */
    double duration_months;         /* < 0 unknown */
    int consent_care;               /* must be 1 */
    int consent_research;
    int consent_remote_review;       /* 1: the case may be sent to the regional hub (src/sync) */
    const char *consent_recorded_by; /* who recorded the consent */
} basira_case_new;

/* BASIRA_E_CONSENT (and nothing stored but the audited refusal) without consent for care. */
basira_code basira_store_case_create(basira_store *st, const basira_actor *who,
                                     const basira_case_new *c, int64_t *id, basira_error *err);

/* The whole case with its images (results only) and decision. BASIRA_E_NOT_FOUND. */
basira_code basira_store_case_get(basira_store *st, const basira_actor *who, int64_t id,
                                  json_t **out, basira_error *err);

/* The patient-reported history recorded with a case. */
typedef struct basira_case_history {
    int changed, bleeding, itching; /* 1 yes, 0 no, -1 not asked */
    double duration_months;         /* < 0 unknown */
} basira_case_history;

/*
 * The patient-reported history of a case, for the analysis of a new photo. Not
 * audited on its own: the upload it serves is. BASIRA_E_NOT_FOUND.
 */
basira_code basira_store_case_history(basira_store *st, int64_t id, basira_case_history *out,
                                      basira_error *err);

typedef struct basira_case_filter {
    const char *status; /* "new" | "triaged" | "reviewed" | NULL any */
    int risk;           /* 0 low, 1 medium, 2 high, -1 any */
    int64_t from, to;   /* created_at bounds (unix seconds, inclusive); 0 = open */
    int limit;          /* 1..500 */
    int offset;
} basira_case_filter;

void basira_case_filter_init(basira_case_filter *f);

/* Worklist: highest risk first, then longest waiting. {"items":[...],"total","limit","offset"}. */
basira_code basira_store_case_list(basira_store *st, const basira_actor *who,
                                   const basira_case_filter *f, json_t **out, basira_error *err);

/* The analysis of one photo as the store keeps it. */
typedef struct basira_image_record {
    const json_t *result; /* the result document shown with the photo (stored as is) */
    int risk;             /* AI category of an accepted photo: 0 low, 1 medium, 2 high; -1 none */
    double risk_index;    /* 0..100; < 0 unknown */
} basira_image_record;

/*
 * Add the analysis of a photo to a case. accepted = 1: the photo (data, len,
 * mime) is stored with its result and the case's AI risk is updated from
 * rec->risk / rec->risk_index; accepted = 0: only a quality event (the result)
 * is stored, never the photo.
 */
basira_code basira_store_image_add(basira_store *st, const basira_actor *who, int64_t case_id,
                                   const void *data, size_t len, const char *mime,
                                   const basira_image_record *rec, int accepted, int64_t *image_id,
                                   basira_error *err);

/*
 * The stored photo of an image (malloc'd copy) and the case it belongs to
 * (case_id may be NULL). Audited. BASIRA_E_NOT_FOUND once purged.
 */
basira_code basira_store_photo_get(basira_store *st, const basira_actor *who, int64_t image_id,
                                   unsigned char **data, size_t *len, char mime[32],
                                   int64_t *case_id, basira_error *err);

typedef struct basira_decision {
    int accept_ai;        /* 1: keep the AI category */
    const char *category; /* "low" | "medium" | "high" when overriding */
    const char *reason;   /* required when overriding */
    const char *referral; /* "none" | "requested" | "sent" | "completed" */
} basira_decision;

/* BASIRA_E_CONFLICT when accepting an AI category that does not exist yet. */
basira_code basira_store_decision(basira_store *st, const basira_actor *who, int64_t case_id,
                                  const basira_decision *d, basira_error *err);

/* ---- audit ---- */

/*
 * The hash of one audit entry: SHA-256 over prev and the fields, each
 * length-prefixed (case_id 0 = none, detail NULL = none), as 64 hex characters.
 * The regional hub recomputes it to verify each node's chain.
 */
void basira_audit_entry_hash(int64_t id, int64_t ts, const char *actor, const char *action,
                             int64_t case_id, const char *ip, const char *outcome,
                             const char *detail, const char *prev, char out[65]);

/* Append one entry. case_id 0 = none. detail may be NULL (never patient data). */
basira_code basira_store_audit_append(basira_store *st, const basira_actor *who, const char *action,
                                      int64_t case_id, const char *outcome, const char *detail,
                                      basira_error *err);

/* Entries with id > after_id, oldest first, at most limit. {"items":[...]}. The read is audited. */
basira_code basira_store_audit_list(basira_store *st, const basira_actor *who, int64_t after_id,
                                    int limit, json_t **out, basira_error *err);

typedef struct basira_audit_report {
    long checked;   /* entries verified */
    int64_t bad_id; /* first entry at fault, 0 when intact */
} basira_audit_report;

/* BASIRA_E_TAMPERED with a message naming the entry when the chain is broken. */
basira_code basira_store_audit_verify(basira_store *st, basira_audit_report *rep,
                                      basira_error *err);

/* ---- retention ---- */

typedef struct basira_retention {
    long cases_days;          /* cases (and everything attached) after creation */
    long photos_days;         /* photo pixels; the analysis result is kept with the case */
    long quality_events_days; /* rejected-photo events */
    long audit_days;          /* audit entries (kept longer than the data they describe) */
} basira_retention;

/* Defaults: cases 3650, photos 1825, quality events 365, audit 7300 days. */
void basira_retention_default(basira_retention *r);

/*
 * The retention periods of a site configuration (the object of DIR/config.json,
 * read once by basira_site_config_load, include/basira/site.h):
 * {"retention_days": {"cases": n, "photos": n, "quality_events": n, "audit": n}}.
 * cfg NULL or a missing key keeps the default; a value outside 1..36500 is
 * BASIRA_E_FORMAT (source names the file in the message).
 */
basira_code basira_retention_from_json(const json_t *cfg, const char *source, basira_retention *r,
                                       basira_error *err);

typedef struct basira_purge_report {
    long cases, photos, quality_events, audit_entries;
} basira_purge_report;

/*
 * Delete what is older than its retention period at time now (unix seconds):
 * irrecoverably (secure_delete zeroes freed pages, the WAL is truncated) and
 * recorded in the audit trail. The audit chain stays verifiable: the last
 * purged entry becomes its anchor.
 */
basira_code basira_store_purge(basira_store *st, const basira_actor *who, const basira_retention *r,
                               int64_t now, basira_purge_report *rep, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
