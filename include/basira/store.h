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
    BASIRA_ROLE_DATA_STEWARD, /* bulk export of every case (research, registries), nothing else */
    BASIRA_ROLE_COUNT_
} basira_role;

/* "gp", "nurse", "dermatologist", "admin", "auditor", "data_steward". */
const char *basira_role_name(basira_role r);
/* Every role's name, from the role table, as "gp, nurse, ..." (truncated to n). */
void basira_role_list(char *out, size_t n);
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

/*
 * 1 while the disk is full (see src/store/space.c): reads, sign-in and audit
 * entries keep working from a reserve; adding data is BASIRA_E_NO_SPACE.
 */
int basira_store_disk_full(basira_store *st);

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

/*
 * Usernames: 1..64 of [A-Za-z0-9._-]. Passwords: see basira_password_check().
 * BASIRA_E_CONFLICT if the username is taken.
 */
basira_code basira_store_user_add(basira_store *st, const basira_actor *who, const char *username,
                                  basira_role role, const char *password, basira_error *err);
basira_code basira_store_user_passwd(basira_store *st, const basira_actor *who,
                                     const char *username, const char *password, basira_error *err);
/* BASIRA_E_CONFLICT when this would leave no enabled admin account. */
basira_code basira_store_user_set_disabled(basira_store *st, const basira_actor *who,
                                           const char *username, int disabled, basira_error *err);

/*
 * Password policy after NIST SP 800-63B section 5.1.1: at least 8 characters
 * (Unicode characters, not bytes) and at most 256, valid UTF-8, not in a list
 * of common and breached passwords (case-insensitive), and not the username
 * (nor the username with digits around it). No composition rules.
 * BASIRA_E_INVALID_ARGUMENT saying which rule failed; BASIRA_E_LIMIT too long.
 */
basira_code basira_password_check(const char *password, const char *username, basira_error *err);

/*
 * A user changing their own password: the current one is checked first
 * (BASIRA_E_AUTH), the new one must satisfy the policy. Ends the user's other
 * sessions. Audited.
 */
basira_code basira_store_user_change_password(basira_store *st, const basira_actor *who,
                                              const char *username, const char *current,
                                              const char *new_password, basira_error *err);

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

/*
 * Sign-in with the lockout per account: after max_failures failed or unchecked
 * attempts on one username (known or not, from any address) within window_s
 * seconds of the first, further attempts are refused without checking the
 * password (BASIRA_E_LIMIT, *retry_after_s set) until the window ends or an
 * administrator unlocks the account. Each attempt is counted in the database
 * before the password is checked, so concurrent guesses get max_failures checks
 * in all and a restart keeps the lock. A success clears the count. Otherwise as
 * basira_store_authenticate (which is this with retry_after_s NULL).
 */
#define BASIRA_LOGIN_MAX_FAILURES 5
#define BASIRA_LOGIN_WINDOW_S 900
#define BASIRA_LOGIN_AUDITED_REFUSALS 20 /* refusals audited per locked window */
basira_code basira_store_sign_in(basira_store *st, const char *username, const char *password,
                                 const char *ip, basira_user *out, int *retry_after_s,
                                 basira_error *err);
/* The lockout's limits (defaults above; 0 keeps the default). */
void basira_store_set_login_limits(basira_store *st, int max_failures, int window_s);
/* Lift the lockout of an account (audited). BASIRA_E_NOT_FOUND when no such user. */
basira_code basira_store_user_unlock(basira_store *st, const basira_actor *who,
                                     const char *username, basira_error *err);
/* How many passwords were checked with Argon2id so far (tests: one run per sign-in). */
long basira_store_password_checks(basira_store *st);

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

/*
 * Idle sign-out: BASIRA_E_AUTH (and the session deleted) when the session was
 * not used for idle_s seconds; otherwise it counts as used now (recorded at most
 * every 30 s, so that reads do not each cost a write). idle_s <= 0: no limit.
 */
basira_code basira_store_session_touch(basira_store *st, const char *token, int64_t idle_s,
                                       basira_error *err);

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
    int rapid_growth;                /* 1 yes, 0 no, -1 not asked (0 in older callers: no) */
} basira_case_new;

/*
 * A patient_ref is 1..64 characters of valid UTF-8, not blank, with no control
 * character, no bidirectional override or isolate (U+202A..U+202E,
 * U+2066..U+2069: they make one reference display as another) and not only
 * invisible characters (zero-width spaces and joiners, word joiner, BOM).
 * BASIRA_E_INVALID_ARGUMENT with a message saying which rule failed.
 */
basira_code basira_patient_ref_check(const char *ref, basira_error *err);

/* BASIRA_E_CONSENT (and nothing stored but the audited refusal) without consent for care. */
basira_code basira_store_case_create(basira_store *st, const basira_actor *who,
                                     const basira_case_new *c, int64_t *id, basira_error *err);

/*
 * The whole case with its images (results only), every decision oldest first
 * ("decisions": [{"version","decided_by","role","decided_at","outcome",
 * "category","ai_category","referral","reason","note","follow_up"}]), the
 * latest one ("decision"), its "version" (for ETag / If-Match), "follow_up"
 * and "patient": {"ref","cases":[{"id","created_at","body_site","risk"}]} (the
 * other cases of the same patient_ref). BASIRA_E_NOT_FOUND.
 */
basira_code basira_store_case_get(basira_store *st, const basira_actor *who, int64_t id,
                                  json_t **out, basira_error *err);

/* The patient-reported history recorded with a case. */
typedef struct basira_case_history {
    int changed, bleeding, itching; /* 1 yes, 0 no, -1 not asked */
    double duration_months;         /* < 0 unknown */
    int rapid_growth;               /* 1 yes, 0 no, -1 not asked */
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
    const char *patient_ref; /* exact reference, NULL any */
    int overdue;             /* 1: only cases whose follow-up date has passed (at overdue_now) */
    int awaiting_review;     /* 1: the dermatologist's queue (AI-triaged, not yet reviewed, or
                                a referral requested and not yet sent) */
    int64_t overdue_now;     /* "now" for overdue; 0 = the clock */
} basira_case_filter;

void basira_case_filter_init(basira_case_filter *f);

/*
 * Worklist: highest risk first, then longest waiting. {"items":[...],"total","limit","offset"};
 * each item has the case summary plus "thumbnail" (id of its first stored photo or null),
 * "version", "referral", "follow_up" and "overdue".
 */
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
    const char *reason;   /* required when overriding, and for "high" without a referral */
    const char *referral; /* "none" | "requested" | "sent" | "completed" */
    const char *note;     /* free-text clinical note, up to 2000 characters; NULL none */
    int64_t follow_up_at; /* unix time of the follow-up visit; 0: for "medium" the default
                             (BASIRA_FOLLOW_UP_DAYS after the decision), none otherwise */
} basira_decision;

#define BASIRA_FOLLOW_UP_DAYS 90

/*
 * Record a decision: a new version of the case's decision, never replacing an
 * earlier one (all stay in basira_store_case_get). role is the decider's role
 * (stored with the decision). if_match >= 0: the case version the decider saw;
 * when the case has changed since (a decision or a photo), nothing is stored and
 * the result is BASIRA_E_PRECONDITION. *version (may be NULL) gets the case's new
 * version. The audit entry holds the whole decision.
 * BASIRA_E_CONFLICT when accepting an AI category that does not exist yet;
 * BASIRA_E_INVALID_ARGUMENT for a "high" category with no referral and no reason.
 */
basira_code basira_store_decision_add(basira_store *st, const basira_actor *who, basira_role role,
                                      int64_t case_id, const basira_decision *d, int64_t if_match,
                                      int64_t *version, basira_error *err);

/* basira_store_decision_add() without a version check, role "gp". */
basira_code basira_store_decision(basira_store *st, const basira_actor *who, int64_t case_id,
                                  const basira_decision *d, basira_error *err);

/*
 * Every case of one patient_ref, oldest first, with their photos:
 * {"patient_ref", "cases":[{summary..., "images":[{"id","created_at","photo_stored",
 * "risk_index","category"}]}]}. Audited. BASIRA_E_NOT_FOUND when there is none.
 */
basira_code basira_store_patient_get(basira_store *st, const basira_actor *who,
                                     const char *patient_ref, json_t **out, basira_error *err);
/* ---- idempotency keys ---- */

typedef enum basira_idem_state {
    BASIRA_IDEM_NEW = 0,  /* reserved now: run the write, then basira_store_idem_finish */
    BASIRA_IDEM_DONE,     /* answered before: status and body are that answer */
    BASIRA_IDEM_PENDING,  /* a first attempt started and never answered (interrupted) */
    BASIRA_IDEM_MISMATCH, /* the key was used for another request */
} basira_idem_state;

typedef struct basira_idem {
    basira_idem_state state;
    int status;
    char *body; /* malloc'd (DONE) */
} basira_idem;

/*
 * Look up, or reserve, the key of one account's write. route names the request
 * (method and path). Keys: 1..128 visible ASCII characters; kept a day.
 */
basira_code basira_store_idem_begin(basira_store *st, int64_t user_id, const char *key,
                                    const char *route, basira_idem *out, basira_error *err);
/* Record the answer (status > 0) or forget the key (status 0: nothing was done). */
basira_code basira_store_idem_finish(basira_store *st, int64_t user_id, const char *key, int status,
                                     const char *body, basira_error *err);

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
    long checked;                        /* entries verified */
    int64_t bad_id;                      /* first entry at fault, 0 when intact */
    int64_t head_id, anchor_id;          /* last entry; last purged entry (0 none) */
    char head_hash[65], anchor_hash[65]; /* their hashes (hex) */
    int64_t checkpoint_at;               /* time of the checkpoint checked against; 0 none */
    int64_t checkpoint_head_id;          /* the head it recorded */
} basira_audit_report;

/*
 * BASIRA_E_TAMPERED with a message naming the entry when the chain is broken,
 * when the anchor differs from the one the latest purge recorded, or when the
 * trail disagrees with the latest checkpoint (DIR/audit-checkpoints.jsonl, see
 * basira_store_audit_checkpoint): its head is behind it, the entry it recorded
 * has another hash, or the anchor moved back. A checkpoint file whose lines do
 * not carry a valid MAC is tampering too.
 */
basira_code basira_store_audit_verify(basira_store *st, basira_audit_report *rep,
                                      basira_error *err);

typedef struct basira_audit_checkpoint {
    int64_t at; /* unix seconds */
    int64_t head_id, anchor_id;
    char head_hash[65], anchor_hash[65];
} basira_audit_checkpoint;

/*
 * Append the current head and anchor, with a MAC keyed from the database key, as
 * one line of DIR/audit-checkpoints.jsonl (0600, fsync'd), outside the database:
 * what `verify` later checks the trail against. out (may be NULL) receives it.
 * The node writes one periodically, after each purge and after each verify.
 */
basira_code basira_store_audit_checkpoint(basira_store *st, basira_audit_checkpoint *out,
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
