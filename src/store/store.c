/* store.c - opening the encrypted database: key derivation, SQLCipher, migrations. */
#include "basira/fs.h"
#include "basira/json.h"
#include "core/i18n.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const role_names[BASIRA_ROLE_COUNT_] = {
    [BASIRA_ROLE_GP] = "gp",
    [BASIRA_ROLE_NURSE] = "nurse",
    [BASIRA_ROLE_DERMATOLOGIST] = "dermatologist",
    [BASIRA_ROLE_ADMIN] = "admin",
    [BASIRA_ROLE_AUDITOR] = "auditor",
    [BASIRA_ROLE_DATA_STEWARD] = "data_steward",
};

void basira_role_list(char *out, size_t n)
{
    size_t used = 0;
    if (!n)
        return;
    out[0] = '\0';
    for (int i = 0; i < BASIRA_ROLE_COUNT_ && used < n; i++) {
        int w = snprintf(out + used, n - used, "%s%s", i ? ", " : "", role_names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

const char *basira_role_name(basira_role r)
{
    if ((int)r < 0 || r >= BASIRA_ROLE_COUNT_)
        return "unknown";
    return role_names[r];
}

basira_code basira_role_parse(const char *name, basira_role *out, basira_error *err)
{
    for (int i = 0; name && i < BASIRA_ROLE_COUNT_; i++) {
        if (!strcmp(name, role_names[i])) {
            *out = (basira_role)i;
            return BASIRA_OK;
        }
    }
    char roles[256];
    basira_role_list(roles, sizeof roles);
    return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                             N_("unknown role '%s' (expected one of: %s)"), name ? name : "",
                             roles);
}

/*
 * Versioned schema. Each entry moves the database from version i to i + 1 and is
 * applied in one transaction with PRAGMA user_version; never edit a released
 * entry, append a new one.
 */
static const char *const migrations[] = {
    /* 1: everything of the first release. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL, pwhash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE sessions(token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL"
    " REFERENCES users(id) ON DELETE CASCADE, csrf TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL);"
    "CREATE TABLE cases(id INTEGER PRIMARY KEY, patient_ref TEXT NOT NULL, age INTEGER,"
    " sex TEXT NOT NULL, body_site TEXT, history TEXT NOT NULL,"
    " consent_care INTEGER NOT NULL CHECK(consent_care = 1),"
    " consent_research INTEGER NOT NULL, consent_recorded_by TEXT NOT NULL,"
    " consent_recorded_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'new', ai_risk INTEGER,"
    " ai_risk_index REAL, risk INTEGER, decision TEXT, updated_at INTEGER NOT NULL);"
    "CREATE INDEX cases_worklist ON cases(status, risk, created_at);"
    "CREATE TABLE images(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    " REFERENCES cases(id) ON DELETE CASCADE, kind TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL, result TEXT NOT NULL);"
    "CREATE INDEX images_case ON images(case_id);"
    "CREATE TABLE photos(image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,"
    " mime TEXT NOT NULL, created_at INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, case_id INTEGER, ip TEXT NOT NULL, outcome TEXT NOT NULL,"
    " detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    /* 2: each account's language for the node's answers ("fr", "ar", "en"; NULL: none). */
    "ALTER TABLE users ADD COLUMN lang TEXT;",
    /* 3: sign-in failures per account, so that a lockout holds across addresses and restarts. */
    "CREATE TABLE login_failures(username TEXT PRIMARY KEY, failures INTEGER NOT NULL,"
    " window_start INTEGER NOT NULL);",
    /* 4: idempotency keys of writes (a retry never records twice). */
    "CREATE TABLE idempotency(user_id INTEGER NOT NULL, key TEXT NOT NULL, route TEXT NOT NULL,"
    " status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " PRIMARY KEY(user_id, key));",
    /*
     * 5: decisions are versioned, never overwritten (one row each; cases.decision
     * keeps a copy of the latest for older readers); cases carry a version for
     * ETag / If-Match, the latest referral and a follow-up date; cases of one
     * patient are found by patient_ref. Existing decisions become version 1
     * (store_migrate_decisions, in C: this SQLCipher has no JSON functions).
     */
    "CREATE TABLE decisions(id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    " REFERENCES cases(id) ON DELETE CASCADE, version INTEGER NOT NULL,"
    " decided_by TEXT NOT NULL, role TEXT NOT NULL, decided_at INTEGER NOT NULL,"
    " outcome TEXT NOT NULL, category TEXT NOT NULL, ai_category TEXT, referral TEXT NOT NULL,"
    " reason TEXT, note TEXT, follow_up_at INTEGER, UNIQUE(case_id, version));"
    "ALTER TABLE cases ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE cases ADD COLUMN referral TEXT;"
    "ALTER TABLE cases ADD COLUMN follow_up_at INTEGER;"
    "ALTER TABLE sessions ADD COLUMN last_seen INTEGER;"
    "CREATE INDEX decisions_case ON decisions(case_id, version);"
    "CREATE INDEX cases_patient ON cases(patient_ref, created_at);",
    /* 6: consent for remote review, the outbox to the regional hub, its replies (outbox.c). */
    store_migration_sync,
    /* 7: the stored originals due at the hub, and when a hub reply was read (originals.c). */
    store_migration_originals,
    /*
     * 8 (issue 11): the kind of each photo, as the
     * pipeline treated it ("dermoscopic" | "clinical") and as the user declared it.
     */
    "CREATE TABLE image_modality(image_id INTEGER PRIMARY KEY REFERENCES images(id)"
    " ON DELETE CASCADE, kind TEXT, declared TEXT);",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int64_t store_now(void)
{
    return (int64_t)time(NULL);
}

void store_iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "%lld", (long long)t);
}

void store_pwhash_cost(basira_argon2_cost cost, int for_key, unsigned long long *ops, size_t *mem)
{
    if (cost == BASIRA_ARGON2_MINIMUM) {
        *ops = crypto_pwhash_OPSLIMIT_MIN;
        *mem = crypto_pwhash_MEMLIMIT_MIN;
    } else if (for_key) {
        /* Derived once per start: afford the "moderate" cost (~0.7 s, 256 MiB). */
        *ops = crypto_pwhash_OPSLIMIT_MODERATE;
        *mem = crypto_pwhash_MEMLIMIT_MODERATE;
    } else {
        /* Paid at every login, on a 2-core node serving several people. */
        *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
}

/* The disk is full: say so, and switch to disk-full mode (space.c). */
static basira_code disk_full_error(basira_store *st, basira_error *err)
{
    store_space_note_full(st);
    return basira_error_setm(err, BASIRA_E_NO_SPACE,
                             N_("the node's disk is full: this was not recorded; ask the "
                                "administrator to free space, then send it again"));
}

basira_code store_sql_error(basira_store *st, const char *what, basira_error *err)
{
    if (st && st->db && sqlite3_errcode(st->db) == SQLITE_FULL)
        return disk_full_error(st, err);
    return basira_error_setm(err, BASIRA_E_STORE, N_("database error while %s: %s"), what,
                             st && st->db ? sqlite3_errmsg(st->db) : "?");
}

basira_code store_exec(basira_store *st, const char *sql, basira_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_FULL) {
        sqlite3_free(msg);
        return disk_full_error(st, err);
    }
    if (rc != SQLITE_OK) {
        basira_error_setm(err, BASIRA_E_STORE, N_("database error: %s"), msg ? msg : "?");
        sqlite3_free(msg);
        return BASIRA_E_STORE;
    }
    return BASIRA_OK;
}

basira_code store_prepare(basira_store *st, const char *sql, sqlite3_stmt **stmt, basira_error *err)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return store_sql_error(st, "preparing a query", err);
    return BASIRA_OK;
}

char *store_json_text(const json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    int same = back && json_equal(back, (json_t *)j);
    json_decref(back);
    if (!same) {
        free(text);
        return NULL;
    }
    return text;
}

basira_code store_begin(basira_store *st, basira_error *err)
{
    st->bind_failed = 0;
    return store_exec(st, "BEGIN IMMEDIATE", err);
}

basira_code store_commit(basira_store *st, basira_error *err)
{
    if (st->bind_failed) {
        store_rollback(st);
        st->bind_failed = 0;
        return basira_error_setm(err, BASIRA_E_NOMEM,
                                 N_("not enough memory to record this; nothing was changed"));
    }
    basira_code rc = store_exec(st, "COMMIT", err);
    if (rc) {
        store_rollback(st);
        return rc;
    }
    return BASIRA_OK;
}

void store_rollback(basira_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- key material ---- */

static basira_code read_small_file(const char *path, unsigned char *buf, size_t bufsz, size_t *len,
                                   basira_error *err)
{
    unsigned char *data = NULL;
    basira_code rc = basira_fs_read(path, bufsz, &data, len, err);
    if (rc)
        return rc;
    memcpy(buf, data, *len);
    sodium_memzero(data, *len);
    free(data);
    return BASIRA_OK;
}

static basira_code key_from_file(const char *path, const char *dir, unsigned char key[32],
                                 basira_error *err)
{
    unsigned char buf[4096];
    size_t n = 0;
    basira_code rc = read_small_file(path, buf, sizeof buf, &n, err);
    if (rc)
        return rc;
    if (n < 32) {
        sodium_memzero(buf, sizeof buf);
        return basira_error_setm(
            err, BASIRA_E_INVALID_ARGUMENT,
            N_("key file %s holds %zu bytes; it needs at least 32 random bytes "
               "(e.g. head -c 32 /dev/urandom > %s)"),
            path, n, path);
    }
    rc = store_check_key_file(path, dir, buf, n, err);
    if (rc) {
        sodium_memzero(buf, sizeof buf);
        return rc;
    }
    /* Any file of enough random bytes works (raw, hex, base64): hash it to 256 bits. */
    crypto_generichash(key, 32, buf, n, NULL, 0);
    sodium_memzero(buf, sizeof buf);
    return BASIRA_OK;
}

/*
 * Derive the raw 256-bit database key. keyinfo.json records how, so that a
 * passphrase given to a key-file database (or the reverse) is a clear error and
 * the Argon2id cost chosen at creation keeps being used.
 */
static basira_code derive_key(const char *dir, const basira_store_key *key, int creating,
                              basira_argon2_cost cost, unsigned char out[32], basira_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/keyinfo.json", dir);
    if (!key || (!key->passphrase == !key->key_file))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("give either a passphrase or a key file for the database"));
    if (creating) {
        char text[512];
        if (key->key_file) {
            snprintf(text, sizeof text, "{\"kdf\": \"keyfile\"}\n");
        } else {
            unsigned char salt[crypto_pwhash_SALTBYTES];
            char salt_hex[2 * sizeof salt + 1];
            unsigned long long ops;
            size_t mem;
            randombytes_buf(salt, sizeof salt);
            sodium_bin2hex(salt_hex, sizeof salt_hex, salt, sizeof salt);
            store_pwhash_cost(cost, 1, &ops, &mem);
            snprintf(text, sizeof text,
                     "{\"kdf\": \"argon2id\", \"salt\": \"%s\", \"opslimit\": %llu, "
                     "\"memlimit\": %zu}\n",
                     salt_hex, ops, mem);
        }
        basira_code rc = basira_fs_write_atomic(path, text, strlen(text), 0600, err);
        if (rc)
            return rc;
    }
    json_error_t jerr;
    json_t *info = NULL;
    basira_error ierr;
    if (basira_json_read_file(path, 64 * 1024, &info, &jerr, &ierr))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("%s is missing or damaged (%s); it is needed to derive the "
                                    "database key"),
                                 path, jerr.text[0] ? jerr.text : ierr.message);
    const char *kdf = json_string_value(json_object_get(info, "kdf"));
    basira_code rc = BASIRA_OK;
    if (kdf && !strcmp(kdf, "keyfile")) {
        if (!key->key_file)
            rc = basira_error_setm(err, BASIRA_E_WRONG_KEY,
                                   N_("this database is opened with a key file (--key-file), not a "
                                      "passphrase"));
        else
            rc = key_from_file(key->key_file, dir, out, err);
    } else if (kdf && !strcmp(kdf, "argon2id")) {
        const char *salt_hex = json_string_value(json_object_get(info, "salt"));
        json_int_t ops = json_integer_value(json_object_get(info, "opslimit"));
        json_int_t mem = json_integer_value(json_object_get(info, "memlimit"));
        unsigned char salt[crypto_pwhash_SALTBYTES];
        size_t salt_len = 0;
        if (!key->passphrase) {
            rc = basira_error_setm(err, BASIRA_E_WRONG_KEY,
                                   N_("this database is opened with a passphrase, not a key file"));
        } else if (!salt_hex ||
                   sodium_hex2bin(salt, sizeof salt, salt_hex, strlen(salt_hex), NULL, &salt_len,
                                  NULL) != 0 ||
                   salt_len != sizeof salt || ops < (json_int_t)crypto_pwhash_OPSLIMIT_MIN ||
                   ops > (json_int_t)crypto_pwhash_OPSLIMIT_SENSITIVE ||
                   mem < (json_int_t)crypto_pwhash_MEMLIMIT_MIN ||
                   mem > (json_int_t)crypto_pwhash_MEMLIMIT_SENSITIVE) {
            rc = basira_error_setm(err, BASIRA_E_FORMAT, N_("%s has invalid key parameters"), path);
        } else if (crypto_pwhash(out, 32, key->passphrase, strlen(key->passphrase), salt,
                                 (unsigned long long)ops, (size_t)mem,
                                 crypto_pwhash_ALG_ARGON2ID13) != 0) {
            rc = basira_error_setm(err, BASIRA_E_NOMEM,
                                   N_("not enough memory to derive the database key"));
        }
    } else {
        rc = basira_error_setm(err, BASIRA_E_FORMAT, N_("%s names an unknown key method"), path);
    }
    json_decref(info);
    return rc;
}

int basira_store_exists(const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/basira.db", dir);
    return stat(path, &sb) == 0;
}

static basira_code migrate(basira_store *st, basira_error *err)
{
    sqlite3_stmt *s;
    basira_code rc = store_prepare(st, "PRAGMA user_version", &s, err);
    if (rc)
        return rc;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (version < 0)
        return store_sql_error(st, "reading the schema version", err);
    if (version > N_MIGRATIONS)
        return basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                                 N_("the database has schema version %d, newer than this program "
                                    "(%d); upgrade Basira"),
                                 version, N_MIGRATIONS);
    for (int v = version; v < N_MIGRATIONS; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if ((rc = store_begin(st, err)) || (rc = store_exec(st, migrations[v], err)) ||
            (strstr(migrations[v], "CREATE TABLE decisions(") &&
             (rc = store_migrate_decisions(st, err))) ||
            (rc = store_exec(st, bump, err))) {
            store_rollback(st);
            return rc;
        }
        if ((rc = store_commit(st, err)))
            return rc;
    }
    return BASIRA_OK;
}

int basira_store_schema_version(basira_store *st)
{
    sqlite3_stmt *s;
    int v = -1;
    pthread_mutex_lock(&st->lock);
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&st->lock);
    return v;
}

basira_code basira_store_open(const char *dir, const basira_store_key *key, int create,
                              const basira_store_options *opts, basira_store **out,
                              basira_error *err)
{
    basira_argon2_cost cost = opts ? opts->argon2 : BASIRA_ARGON2_STANDARD;
    *out = NULL;
    if (!dir || !*dir || strlen(dir) > 4000)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("invalid data folder"));
    if (sodium_init() < 0)
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("libsodium failed to start"));
    int exists = basira_store_exists(dir);
    if (!exists && !create)
        return basira_error_setm(err, BASIRA_E_NOT_FOUND,
                                 N_("no Basira database in %s (create one with `basira user add "
                                    "--data %s --role admin NAME`)"),
                                 dir, dir);
    if (!exists && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot create the data folder %s: %s"), dir,
                                 strerror(errno));
    basira_code frc = store_fix_folder(dir, err);
    if (frc)
        return frc;

    unsigned char raw[32];
    basira_code rc = derive_key(dir, key, !exists, cost, raw, err);
    if (rc)
        return rc;

    basira_store *st = calloc(1, sizeof *st);
    if (!st) {
        sodium_memzero(raw, sizeof raw);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    st->argon2 = cost;
    pthread_mutex_init(&st->lock, NULL);
    basira_dummy_hash_init(&st->dummy);
    pthread_cond_init(&st->check_done, NULL);
    st->login_max_failures = BASIRA_LOGIN_MAX_FAILURES;
    st->login_window_s = BASIRA_LOGIN_WINDOW_S;
    char path[4200];
    snprintf(path, sizeof path, "%s/basira.db", dir);
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = basira_error_setm(err, BASIRA_E_IO, N_("cannot open %s: %s"), path,
                               st->db ? sqlite3_errmsg(st->db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 10000);
    /* Raw key: SQLCipher uses these 256 bits directly, no second PBKDF2. */
    char pragma[128] = "PRAGMA key = \"x'";
    size_t p = strlen(pragma);
    sodium_bin2hex(pragma + p, sizeof pragma - p, raw, sizeof raw);
    strcat(pragma, "'\"");
    store_checkpoint_key(st, raw);
    sodium_memzero(raw, sizeof raw);
    int krc = sqlite3_exec(st->db, pragma, NULL, NULL, NULL);
    sodium_memzero(pragma, sizeof pragma);
    if (krc != SQLITE_OK) {
        rc = store_sql_error(st, "setting the key", err);
        goto fail;
    }
    /* The first read of a page tells whether the key decrypts it. */
    int probe = sqlite3_exec(st->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (probe == SQLITE_NOTADB) {
        rc = basira_error_setm(err, BASIRA_E_WRONG_KEY,
                               N_("the database key is wrong for %s (check the passphrase or key "
                                  "file)"),
                               path);
        goto fail;
    } else if (probe != SQLITE_OK) {
        rc = store_sql_error(st, "opening the database", err);
        goto fail;
    }
    /*
     * WAL + synchronous=FULL: a commit is on disk before we answer, so kill -9 or
     * a power cut loses nothing acknowledged. secure_delete zeroes freed pages so
     * purged data cannot be carved out of the file.
     */
    if ((rc = store_exec(st,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                         "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
                         err)) ||
        (rc = migrate(st, err)))
        goto fail;
    chmod(path, 0600);
    store_space_init(st);
    *out = st;
    return BASIRA_OK;
fail:
    basira_store_free(st);
    return rc;
}

void basira_store_free(basira_store *st)
{
    if (!st)
        return;
    if (st->db)
        sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    basira_dummy_hash_destroy(&st->dummy);
    pthread_cond_destroy(&st->check_done);
    sodium_memzero(st->checkpoint_key, sizeof st->checkpoint_key);
    free(st);
}
