/*
 * db.c - the hub's PostgreSQL: connection pool, versioned schema, accounts,
 * node enrolment.
 */
#include "core/i18n.h"
#include "hub_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Versioned schema: entry i moves the database from version i to i + 1, in one
 * transaction with the version row. Never edit a released entry; append one.
 *
 * Photos are bytea rows keyed by their SHA-256 (docs/hub.md has the
 * measurement against a content-addressed folder): one transaction covers a
 * case's record and its photo, and streaming replication copies both.
 */
static const char *const migrations[] = {
    /* 1: the first release. */
    "CREATE TABLE hub_nodes(id bigserial PRIMARY KEY, name text NOT NULL UNIQUE,"
    " token_hash text, public_key text, created_at timestamptz NOT NULL DEFAULT now(),"
    " enrolled_at timestamptz, last_seq bigint NOT NULL DEFAULT 0,"
    " audit_last_id bigint NOT NULL DEFAULT 0, audit_head text,"
    " audit_ok boolean NOT NULL DEFAULT true, audit_error text,"
    " reply_acked bigint NOT NULL DEFAULT 0, last_seen timestamptz);"
    "CREATE TABLE hub_changes(node_id bigint NOT NULL REFERENCES hub_nodes(id),"
    " seq bigint NOT NULL, kind text NOT NULL, case_id bigint NOT NULL,"
    " received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY(node_id, seq));"
    "CREATE TABLE hub_cases(node_id bigint NOT NULL REFERENCES hub_nodes(id),"
    " case_id bigint NOT NULL, patient_ref text NOT NULL, age int, sex text, body_site text,"
    " history jsonb, consent jsonb NOT NULL, created_at text, ai_category text,"
    " ai_risk_index double precision, category text, status text,"
    " received_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL"
    " DEFAULT now(), PRIMARY KEY(node_id, case_id));"
    "CREATE TABLE hub_photos(sha256 text PRIMARY KEY, mime text NOT NULL, bytes int NOT NULL,"
    " data bytea NOT NULL);"
    "CREATE TABLE hub_images(node_id bigint NOT NULL, image_id bigint NOT NULL,"
    " case_id bigint NOT NULL, kind text, created_at bigint, result jsonb, photo_sha256 text"
    " REFERENCES hub_photos(sha256), original_bytes bigint, PRIMARY KEY(node_id, image_id),"
    " FOREIGN KEY(node_id, case_id) REFERENCES hub_cases(node_id, case_id) ON DELETE CASCADE);"
    "CREATE TABLE hub_decisions(node_id bigint NOT NULL, seq bigint NOT NULL,"
    " case_id bigint NOT NULL, decision jsonb NOT NULL, PRIMARY KEY(node_id, seq),"
    " FOREIGN KEY(node_id, case_id) REFERENCES hub_cases(node_id, case_id) ON DELETE CASCADE);"
    "CREATE TABLE hub_users(id bigserial PRIMARY KEY, username text NOT NULL UNIQUE,"
    " role text NOT NULL, pwhash text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE hub_replies(id bigserial PRIMARY KEY, node_id bigint NOT NULL,"
    " case_id bigint NOT NULL, diagnosis text, plan text NOT NULL CHECK(plan IN"
    " ('urgent_visit','biopsy','follow_up','reassure')), message text, author text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " FOREIGN KEY(node_id, case_id) REFERENCES hub_cases(node_id, case_id) ON DELETE CASCADE);"
    "CREATE INDEX hub_replies_node ON hub_replies(node_id, id);"
    "CREATE TABLE hub_audit(node_id bigint NOT NULL REFERENCES hub_nodes(id), id bigint NOT NULL,"
    " ts bigint NOT NULL, actor text, action text, case_id bigint, ip text, outcome text,"
    " detail text, prev_hash text NOT NULL, hash text NOT NULL, PRIMARY KEY(node_id, id));"
    "CREATE TABLE hub_sessions(token_hash text PRIMARY KEY, user_id bigint NOT NULL"
    " REFERENCES hub_users(id) ON DELETE CASCADE, expires_at timestamptz NOT NULL);",
    /*
     * 2: photos in chunks (resumable inside a photo, upload.c), the stored
     * originals and their requests, the hub's signing key and the signed items
     * that travel down to a node (site configuration, original requests, ...:
     * down.c).
     */
    "CREATE TABLE hub_upload_chunks(node_id bigint NOT NULL REFERENCES hub_nodes(id),"
    " sha256 text NOT NULL, off bigint NOT NULL, data bytea NOT NULL,"
    " received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY(node_id, sha256, off));"
    "ALTER TABLE hub_upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
    "ALTER TABLE hub_images ADD COLUMN original_sha256 text REFERENCES hub_photos(sha256),"
    " ADD COLUMN original_requested_by text, ADD COLUMN original_requested_at timestamptz;"
    "CREATE TABLE hub_keys(id int PRIMARY KEY CHECK(id = 1), public_key text NOT NULL,"
    " secret_key text NOT NULL);"
    "CREATE TABLE hub_down(id bigserial PRIMARY KEY, node_id bigint NOT NULL REFERENCES"
    " hub_nodes(id), kind text NOT NULL, payload text NOT NULL, sig text NOT NULL,"
    " created_by text, created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX hub_down_node ON hub_down(node_id, id);"
    "ALTER TABLE hub_nodes ADD COLUMN down_acked bigint NOT NULL DEFAULT 0;"
    /* ... and sign-in sessions for people, as on the node (session.c, basira/session.h). */
    "ALTER TABLE hub_sessions ADD COLUMN csrf text NOT NULL,"
    " ADD COLUMN last_seen timestamptz NOT NULL DEFAULT now();"
    "CREATE TABLE hub_login_failures(username text PRIMARY KEY, failures int NOT NULL,"
    " window_start bigint NOT NULL);",
    /*
     * 3 (issue 14, indicators): histology outcomes,
     * each dermatologist's first opening of a case (review time), settings (costs).
     */
    "CREATE TABLE hub_outcomes(id bigserial PRIMARY KEY, node_id bigint NOT NULL,"
    " case_id bigint NOT NULL, histology text NOT NULL CHECK(histology IN ('malignant','benign')),"
    " recorded_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
    " FOREIGN KEY(node_id, case_id) REFERENCES hub_cases(node_id, case_id) ON DELETE CASCADE);"
    "CREATE TABLE hub_case_views(node_id bigint NOT NULL, case_id bigint NOT NULL,"
    " username text NOT NULL, first_opened_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY(node_id, case_id, username), FOREIGN KEY(node_id, case_id)"
    " REFERENCES hub_cases(node_id, case_id) ON DELETE CASCADE);"
    "CREATE TABLE hub_settings(key text PRIMARY KEY, value jsonb NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    /* The per-case lookups of the indicators (and the worklist): 2000 cases took 8 s without. */
    "CREATE INDEX hub_outcomes_case ON hub_outcomes(node_id, case_id, id);"
    "CREATE INDEX hub_decisions_case ON hub_decisions(node_id, case_id, seq);"
    "CREATE INDEX hub_replies_case ON hub_replies(node_id, case_id, id);"
    "CREATE INDEX hub_images_case ON hub_images(node_id, case_id, image_id);"
    "CREATE INDEX hub_cases_patient ON hub_cases(node_id, patient_ref, created_at);",
    /*
     * 4 (issue 14, oversight): the hub's own oversight audit trail (drift
     * alerts, release approvals), model releases and their staging per clinic,
     * and what each node reports of installing them.
     */
    "CREATE TABLE hub_oversight_audit(id bigserial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT"
    " now(), actor text NOT NULL, action text NOT NULL, clinic text, detail jsonb);"
    "CREATE TABLE hub_releases(id text PRIMARY KEY, model_name text NOT NULL,"
    " model_version text NOT NULL, sha256 text NOT NULL, bytes bigint NOT NULL,"
    " model bytea NOT NULL, certify_sha256 text, created_by text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(), manifest text, signature text,"
    " signed_at timestamptz);"
    "ALTER TABLE hub_releases ALTER COLUMN model SET STORAGE EXTERNAL;"
    "CREATE TABLE hub_release_approvals(release_id text NOT NULL REFERENCES hub_releases(id),"
    " role text NOT NULL CHECK(role IN ('data_steward','medical_lead')), username text NOT NULL,"
    " approved_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY(release_id, role));"
    "CREATE TABLE hub_release_stages(id bigserial PRIMARY KEY, release_id text NOT NULL"
    " REFERENCES hub_releases(id), node_id bigint NOT NULL REFERENCES hub_nodes(id),"
    " action text NOT NULL CHECK(action IN ('stage','rollback')), by_user text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE hub_release_reports(id bigserial PRIMARY KEY, node_id bigint NOT NULL"
    " REFERENCES hub_nodes(id), release_id text, sha256 text, outcome text NOT NULL,"
    " detail text, at timestamptz NOT NULL DEFAULT now());",
    /*
     * 5 (issue 14, oversight): which offer a node refused (SHA-256 of the manifest and
     * the signature it was sent), so that the hub stops sending that same offer again
     * at every round (releases.c).
     */
    "ALTER TABLE hub_release_reports ADD COLUMN offer_sha256 text;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int basira_hub_schema_current(void)
{
    return N_MIGRATIONS;
}

basira_code hub_exec(PGconn *c, const char *sql, int n, const char *const *vals, PGresult **res,
                     basira_error *err)
{
    if (res)
        *res = NULL;
    /* Without parameters, the simple protocol: a migration is several statements. */
    PGresult *r = n ? PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0) : PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        basira_code code = state && !strcmp(state, "23505") ? BASIRA_E_CONFLICT : BASIRA_E_STORE;
        basira_error_setm(err, code, N_("hub database error: %s"),
                          r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        return code;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return BASIRA_OK;
}

static basira_code connect_db(const char *conninfo, PGconn **out, basira_error *err);

basira_code hub_query(basira_hub *hub, const char *sql, int n, const char *const *vals,
                      PGresult **res, basira_error *err)
{
    PGconn *c = NULL;
    basira_code rc = BASIRA_E_STORE;
    for (int attempt = 0; attempt < 2 && rc == BASIRA_E_STORE; attempt++) {
        if ((rc = hub_conn_get(hub, &c, err)))
            return rc;
        rc = hub_exec(c, sql, n, vals, res, err);
        int dead = PQstatus(c) != CONNECTION_OK;
        hub_conn_put(hub, c);
        if (!dead)
            break;
    }
    return rc;
}

static basira_code connect_db(const char *conninfo, PGconn **out, basira_error *err)
{
    PGconn *c = PQconnectdb(conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        basira_error_setm(err, BASIRA_E_STORE, N_("cannot reach the hub database: %s"),
                          c ? PQerrorMessage(c) : "?");
        PQfinish(c);
        return BASIRA_E_STORE;
    }
    /* Quiet NOTICEs (they would go to stderr) and a bounded wait for locks. */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    *out = c;
    return BASIRA_OK;
}

basira_code hub_conn_get(basira_hub *hub, PGconn **out, basira_error *err)
{
    PGconn *c = NULL;
    pthread_mutex_lock(&hub->lock);
    if (hub->n_idle > 0)
        c = hub->idle[--hub->n_idle];
    pthread_mutex_unlock(&hub->lock);
    if (c && PQstatus(c) == CONNECTION_OK) {
        *out = c;
        return BASIRA_OK;
    }
    PQfinish(c);
    return connect_db(hub->conninfo, out, err);
}

void hub_conn_put(basira_hub *hub, PGconn *c)
{
    if (!c)
        return;
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
        pthread_mutex_lock(&hub->lock);
        if (hub->n_idle < HUB_POOL_MAX) {
            hub->idle[hub->n_idle++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&hub->lock);
    }
    PQfinish(c);
}

basira_code hub_tx(basira_hub *hub, basira_code (*fn)(PGconn *c, void *ctx, basira_error *err),
                   void *ctx, basira_error *err)
{
    basira_code rc = BASIRA_E_STORE;
    /*
     * A database error is retried a few times: a deadlock between two nodes'
     * batches (they insert the same content-addressed photo in another order),
     * a serialisation failure, or a connection that died with a PostgreSQL
     * restart. fn starts from what the database says, so a retry is a clean
     * replay; a lasting error still comes back after the last attempt.
     */
    for (int attempt = 0; attempt < 6; attempt++) {
        if (attempt) {
            struct timespec ts = {0, (long)(randombytes_uniform(20000) + 5000) * 1000L * attempt};
            nanosleep(&ts, NULL);
        }
        PGconn *c = NULL;
        if ((rc = hub_conn_get(hub, &c, err)))
            continue;
        if (!(rc = hub_exec(c, "BEGIN", 0, NULL, NULL, err)) && !(rc = fn(c, ctx, err)))
            rc = hub_exec(c, "COMMIT", 0, NULL, NULL, err);
        if (rc && PQstatus(c) == CONNECTION_OK)
            PQclear(PQexec(c, "ROLLBACK"));
        hub_conn_put(hub, c);
        if (rc != BASIRA_E_STORE)
            return rc;
    }
    return rc;
}

static basira_code schema_version(PGconn *c, int *v, basira_error *err)
{
    PGresult *r;
    *v = 0;
    basira_code rc = hub_exec(c, "SELECT to_regclass('hub_schema') IS NOT NULL", 0, NULL, &r, err);
    if (rc)
        return rc;
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists)
        return BASIRA_OK;
    if ((rc = hub_exec(c, "SELECT max(version) FROM hub_schema", 0, NULL, &r, err)))
        return rc;
    *v = PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return BASIRA_OK;
}

basira_code basira_hub_init(const char *conninfo, int *version, basira_error *err)
{
    PGconn *c = NULL;
    basira_code rc = connect_db(conninfo, &c, err);
    if (rc)
        return rc;
    int v = 0;
    /* One migrating process at a time: an advisory lock held for the transaction. */
    if (!(rc = hub_exec(c, "BEGIN", 0, NULL, NULL, err)) &&
        !(rc = hub_exec(c, "SELECT pg_advisory_xact_lock(7341)", 0, NULL, NULL, err)) &&
        !(rc = hub_exec(c, "CREATE TABLE IF NOT EXISTS hub_schema(version int NOT NULL)", 0, NULL,
                        NULL, err)) &&
        !(rc = schema_version(c, &v, err))) {
        if (v > N_MIGRATIONS)
            rc = basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                                   N_("the hub database has schema version %d, newer than this "
                                      "program (%d); upgrade Basira"),
                                   v, N_MIGRATIONS);
        for (; !rc && v < N_MIGRATIONS; v++) {
            char num[16];
            snprintf(num, sizeof num, "%d", v + 1);
            const char *vals[] = {num};
            if (!(rc = hub_exec(c, migrations[v], 0, NULL, NULL, err)))
                rc = hub_exec(c, "INSERT INTO hub_schema(version) VALUES($1::int)", 1, vals, NULL,
                              err);
        }
        if (!rc)
            rc = hub_exec(c, "COMMIT", 0, NULL, NULL, err);
    }
    if (rc && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
    if (!rc && version)
        *version = v;
    return rc;
}

basira_code basira_hub_open(const char *conninfo, basira_argon2_cost argon2, basira_hub **out,
                            basira_error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("libsodium failed to start"));
    PGconn *c = NULL;
    basira_code rc = connect_db(conninfo, &c, err);
    if (rc)
        return rc;
    int v = 0;
    rc = schema_version(c, &v, err);
    if (!rc && v != N_MIGRATIONS)
        rc = basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                               v > N_MIGRATIONS
                                   ? N_("the hub database has schema version %d, newer than this "
                                        "program (%d); upgrade Basira")
                                   : N_("the hub database has schema version %d, this program "
                                        "needs %d: run `basira hub init --db CONNINFO`"),
                               v, N_MIGRATIONS);
    basira_hub *hub = rc ? NULL : calloc(1, sizeof *hub);
    if (!rc && (!hub || !(hub->conninfo = strdup(conninfo)))) {
        free(hub);
        hub = NULL;
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (rc) {
        PQfinish(c);
        return rc;
    }
    pthread_mutex_init(&hub->lock, NULL);
    basira_dummy_hash_init(&hub->dummy);
    hub->argon2 = argon2;
    hub->session_ttl_s = 8 * 3600;
    hub->session_idle_s = 15 * 60;
    hub->login_max_failures = BASIRA_LOGIN_MAX_FAILURES;
    hub->login_window_s = BASIRA_LOGIN_WINDOW_S;
    hub->idle[hub->n_idle++] = c;
    *out = hub;
    return BASIRA_OK;
}

void basira_hub_free(basira_hub *hub)
{
    if (!hub)
        return;
    for (int i = 0; i < hub->n_idle; i++)
        PQfinish(hub->idle[i]);
    pthread_mutex_destroy(&hub->lock);
    basira_dummy_hash_destroy(&hub->dummy);
    free(hub->conninfo);
    free(hub);
}

/* ---- accounts ---- */

static const char *const hub_roles[] = {"dermatologist", "admin", "auditor", "data_steward",
                                        "medical_lead"};

const char *basira_hub_role_name(basira_hub_role r)
{
    return (int)r >= 0 && r <= BASIRA_HUB_MEDICAL_LEAD ? hub_roles[r] : "unknown";
}

basira_code basira_hub_role_parse(const char *name, basira_hub_role *out, basira_error *err)
{
    for (int i = 0; name && i <= BASIRA_HUB_MEDICAL_LEAD; i++)
        if (!strcmp(name, hub_roles[i])) {
            *out = (basira_hub_role)i;
            return BASIRA_OK;
        }
    return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                             N_("unknown hub role '%s' (expected dermatologist, admin, auditor, "
                                "data_steward or medical_lead)"),
                             name ? name : "");
}

int hub_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
            return 0;
    return 1;
}

static void pwhash_cost(const basira_hub *hub, unsigned long long *ops, size_t *mem)
{
    int test = hub->argon2 == BASIRA_ARGON2_MINIMUM;
    *ops = test ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    *mem = test ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

basira_code basira_hub_user_add(basira_hub *hub, const char *username, basira_hub_role role,
                                const char *password, basira_error *err)
{
    if (!hub_name_ok(username))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("usernames are 1 to 64 letters, digits, '.', '_' or '-'"));
    if (!password || strlen(password) < 8)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the password must be at least 8 characters"));
    char hash[crypto_pwhash_STRBYTES];
    unsigned long long ops;
    size_t mem;
    pwhash_cost(hub, &ops, &mem);
    if (crypto_pwhash_str(hash, password, strlen(password), ops, mem) != 0)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    const char *vals[] = {username, basira_hub_role_name(role), hash};
    basira_code rc =
        hub_query(hub, "INSERT INTO hub_users(username, role, pwhash) VALUES($1, $2, $3)", 3, vals,
                  NULL, err);
    if (rc == BASIRA_E_CONFLICT)
        basira_error_setm(err, rc, N_("the user %s already exists"), username);
    return rc;
}

basira_code basira_hub_authenticate(basira_hub *hub, const char *username, const char *password,
                                    basira_hub_role *role, basira_error *err)
{
    PGresult *r = NULL;
    const char *vals[] = {username ? username : ""};
    basira_code rc =
        hub_query(hub, "SELECT role, pwhash FROM hub_users WHERE username = $1", 1, vals, &r, err);
    if (rc)
        return rc;
    /*
     * An unknown name is checked against the dummy hash, at the cost of real
     * hashes: it used to skip Argon2id and answer in a fraction of the time,
     * which told anyone timing the answers which usernames exist.
     */
    int found = PQntuples(r) == 1;
    unsigned long long ops;
    size_t mem;
    pwhash_cost(hub, &ops, &mem);
    int ok = basira_password_verify(&hub->dummy, found ? PQgetvalue(r, 0, 1) : NULL,
                                    password ? password : "", ops, mem);
    if (ok < 0) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_NOMEM, N_("not enough memory to hash the password"));
    }
    ok = ok && found && password;
    if (ok)
        basira_hub_role_parse(PQgetvalue(r, 0, 0), role, NULL);
    PQclear(r);
    return ok ? BASIRA_OK : basira_error_setm(err, BASIRA_E_AUTH, N_("wrong username or password"));
}

/* ---- enrolment ---- */

static void token_hash(const char *token, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 65, h, sizeof h);
}

basira_code basira_hub_enrol(basira_hub *hub, const char *node_name, char token[65],
                             basira_error *err)
{
    if (!hub_name_ok(node_name))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("node names are 1 to 64 letters, digits, '.', '_' or '-'"));
    unsigned char raw[32];
    char th[65];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(token, 65, raw, sizeof raw);
    token_hash(token, th);
    PGresult *r = NULL;
    const char *vals[] = {node_name, th};
    basira_code rc =
        hub_query(hub,
                  "INSERT INTO hub_nodes(name, token_hash) VALUES($1, $2) ON CONFLICT(name) DO "
                  "UPDATE SET token_hash = $2 WHERE hub_nodes.public_key IS NULL RETURNING id",
                  2, vals, &r, err);
    if (!rc && PQntuples(r) != 1)
        rc = basira_error_setm(err, BASIRA_E_CONFLICT, N_("the node %s is already enrolled"),
                               node_name);
    PQclear(r);
    return rc;
}

basira_code basira_hub_register(basira_hub *hub, const char *token, const char *public_key_hex,
                                char node_name[65], basira_error *err)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    size_t pk_len = 0;
    if (!token || strlen(token) != 64 || !public_key_hex ||
        sodium_hex2bin(pk, sizeof pk, public_key_hex, strlen(public_key_hex), NULL, &pk_len,
                       NULL) != 0 ||
        pk_len != sizeof pk)
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("enrolment needs a token and an Ed25519 public key (hex)"));
    char th[65];
    token_hash(token, th);
    PGresult *r = NULL;
    const char *vals[] = {th, public_key_hex};
    basira_code rc =
        hub_query(hub,
                  "UPDATE hub_nodes SET public_key = $2, token_hash = NULL, enrolled_at = now() "
                  "WHERE token_hash = $1 AND public_key IS NULL RETURNING name",
                  2, vals, &r, err);
    if (!rc && PQntuples(r) != 1)
        rc = basira_error_setm(err, BASIRA_E_AUTH,
                               N_("unknown or already used enrolment token; ask the hub's "
                                  "administrator for a new one"));
    if (!rc)
        snprintf(node_name, 65, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

basira_code hub_node_verify(PGconn *c, const char *node, const void *bytes, size_t len,
                            const char *sig_hex, char node_id[24], basira_error *err)
{
    PGresult *r = NULL;
    const char *vals[] = {node ? node : ""};
    basira_code rc = hub_exec(c,
                              "SELECT id, public_key FROM hub_nodes WHERE name = $1 AND "
                              "public_key IS NOT NULL FOR UPDATE",
                              1, vals, &r, err);
    if (rc)
        return rc;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
    size_t pk_len = 0, sig_len = 0;
    int ok = PQntuples(r) == 1 &&
             sodium_hex2bin(pk, sizeof pk, PQgetvalue(r, 0, 1), strlen(PQgetvalue(r, 0, 1)), NULL,
                            &pk_len, NULL) == 0 &&
             pk_len == sizeof pk && sig_hex &&
             sodium_hex2bin(sig, sizeof sig, sig_hex, strlen(sig_hex), NULL, &sig_len, NULL) == 0 &&
             sig_len == sizeof sig && crypto_sign_verify_detached(sig, bytes, len, pk) == 0;
    if (ok)
        snprintf(node_id, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok ? BASIRA_OK
              : basira_error_setm(err, BASIRA_E_AUTH,
                                  N_("unknown node or bad signature: the batch was not applied"));
}
