/* test_store.c - the encrypted case store: keys, users, sessions, cases, audit chain, purge. */
#include "basira/store.h"
#include "store/store_internal.h" /* white box: fault injection on the connection */
#include "raw_db.h"
#include "test.h"

#include <sodium.h>
#include <sqlcipher/sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The test suite uses libsodium's minimum Argon2id cost (never on a real node). */
static const basira_store_options fast = {BASIRA_ARGON2_MINIMUM};

static char tmpdir[256];
static const basira_actor cli = {"tester", "local"};

static void make_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
    mkdir(out, 0700);
}

static void write_key_file(const char *path, unsigned char seed)
{
    unsigned char k[48];
    for (size_t i = 0; i < sizeof k; i++)
        k[i] = (unsigned char)(seed * 31 + i * 7);
    FILE *f = fopen(path, "wb");
    fwrite(k, 1, sizeof k, f);
    fclose(f);
    chmod(path, 0600); /* key files readable by others are refused */
}

static int raw_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void test_keys(void)
{
    char dir[512];
    basira_error err;
    basira_store *st = NULL;
    make_dir(dir, sizeof dir, "keys");
    basira_store_key good = {"correct horse battery", NULL};
    basira_store_key bad = {"wrong horse battery", NULL};
    CHECK(!basira_store_exists(dir));
    CHECK_EQ_INT(basira_store_open(dir, &good, 0, &fast, &st, &err), BASIRA_E_NOT_FOUND);
    CHECK_EQ_INT(basira_store_open(dir, &good, 1, &fast, &st, &err), BASIRA_OK);
    CHECK(basira_store_schema_version(st) >= 1);
    CHECK_EQ_INT(
        basira_store_user_add(st, &cli, "alice", BASIRA_ROLE_ADMIN, "alice-horse-battery", &err),
        BASIRA_OK);
    basira_store_free(st);
    CHECK(basira_store_exists(dir));
    /* The Argon2id cost is the option given, not the environment (none is set here). */
    CHECK(getenv("BASIRA_ARGON2_FAST") == NULL);
    char kinfo[600];
    snprintf(kinfo, sizeof kinfo, "%s/keyinfo.json", dir);
    json_t *ki_json = json_load_file(kinfo, 0, NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(ki_json, "opslimit")),
                 crypto_pwhash_OPSLIMIT_MIN);
    CHECK_EQ_INT(json_integer_value(json_object_get(ki_json, "memlimit")),
                 crypto_pwhash_MEMLIMIT_MIN);
    json_decref(ki_json);

    st = NULL;
    CHECK_EQ_INT(basira_store_open(dir, &bad, 0, &fast, &st, &err), BASIRA_E_WRONG_KEY);
    CHECK(st == NULL);
    CHECK(strstr(err.message, "key") != NULL);
    char kf[600];
    snprintf(kf, sizeof kf, "%s/some.key", tmpdir);
    write_key_file(kf, 1);
    basira_store_key by_file = {NULL, kf};
    CHECK_EQ_INT(basira_store_open(dir, &by_file, 0, &fast, &st, &err), BASIRA_E_WRONG_KEY);
    basira_store_key both = {"x", kf};
    CHECK_EQ_INT(basira_store_open(dir, &both, 0, &fast, &st, &err), BASIRA_E_INVALID_ARGUMENT);

    CHECK_EQ_INT(basira_store_open(dir, &good, 0, &fast, &st, &err), BASIRA_OK);
    long n = 0;
    CHECK_EQ_INT(basira_store_user_count(st, &n, &err), BASIRA_OK);
    CHECK_EQ_INT(n, 1);
    basira_store_free(st);

    /* A key file that is too short is refused with advice. */
    char d2[512], shortkey[600];
    make_dir(d2, sizeof d2, "keys2");
    snprintf(shortkey, sizeof shortkey, "%s/short.key", tmpdir);
    FILE *f = fopen(shortkey, "w");
    fputs("tiny", f);
    fclose(f);
    basira_store_key sk = {NULL, shortkey};
    CHECK_EQ_INT(basira_store_open(d2, &sk, 1, &fast, &st, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "32") != NULL);

    /* A damaged keyinfo.json is a clear format error, not a crash. */
    char ki[600];
    snprintf(ki, sizeof ki, "%s/keyinfo.json", dir);
    f = fopen(ki, "w");
    fputs("{\"kdf\": \"argon2id\", \"salt\": \"zz\"", f);
    fclose(f);
    CHECK_EQ_INT(basira_store_open(dir, &good, 0, &fast, &st, &err), BASIRA_E_FORMAT);
}

static basira_store *fresh_store(const char *name, char *dir, size_t dirsz, char *kf, size_t kfsz)
{
    basira_error err;
    basira_store *st = NULL;
    make_dir(dir, dirsz, name);
    snprintf(kf, kfsz, "%s/%s.key", tmpdir, name);
    write_key_file(kf, 7);
    basira_store_key key = {NULL, kf};
    if (basira_store_open(dir, &key, 1, &fast, &st, &err))
        fprintf(stderr, "open: %s\n", err.message);
    return st;
}

static void test_users_sessions(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("users", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    basira_role r;
    CHECK_EQ_INT(basira_role_parse("dermatologist", &r, &err), BASIRA_OK);
    CHECK_EQ_INT(r, BASIRA_ROLE_DERMATOLOGIST);
    CHECK_EQ_INT(basira_role_parse("surgeon", &r, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_STR(basira_role_name(BASIRA_ROLE_AUDITOR), "auditor");

    CHECK_EQ_INT(basira_store_user_add(st, &cli, "gp1", BASIRA_ROLE_GP, "secret-pass", &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "gp1", BASIRA_ROLE_GP, "secret-pass", &err),
                 BASIRA_E_CONFLICT);
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "bad name", BASIRA_ROLE_GP, "secret-pass", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "gp2", BASIRA_ROLE_GP, "short", &err),
                 BASIRA_E_INVALID_ARGUMENT);

    basira_user u;
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "secret-pass", "1.2.3.4", &u, &err),
                 BASIRA_OK);
    CHECK_STR(u.username, "gp1");
    CHECK_EQ_INT(u.role, BASIRA_ROLE_GP);
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "wrong-pass", "1.2.3.4", &u, &err),
                 BASIRA_E_AUTH);
    CHECK_EQ_INT(basira_store_authenticate(st, "nobody", "secret-pass", "1.2.3.4", &u, &err),
                 BASIRA_E_AUTH);

    char token[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1], csrf2[BASIRA_TOKEN_LEN + 1];
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "secret-pass", "1.2.3.4", &u, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_session_create(st, &u, 3600, token, csrf, &err), BASIRA_OK);
    CHECK_EQ_INT(strlen(token), BASIRA_TOKEN_LEN);
    CHECK(strcmp(token, csrf) != 0);
    basira_user v;
    CHECK_EQ_INT(basira_store_session_lookup(st, token, &v, csrf2, &err), BASIRA_OK);
    CHECK_STR(v.username, "gp1");
    CHECK_STR(csrf2, csrf);
    CHECK_EQ_INT(basira_store_session_lookup(st, "nonsense", &v, csrf2, &err), BASIRA_E_AUTH);
    char forged[BASIRA_TOKEN_LEN + 1];
    memcpy(forged, token, sizeof forged);
    forged[0] = forged[0] == 'a' ? 'b' : 'a';
    CHECK_EQ_INT(basira_store_session_lookup(st, forged, &v, csrf2, &err), BASIRA_E_AUTH);

    /* Expired session. */
    char t2[BASIRA_TOKEN_LEN + 1], c2[BASIRA_TOKEN_LEN + 1];
    CHECK_EQ_INT(basira_store_session_create(st, &u, -10, t2, c2, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_session_lookup(st, t2, &v, csrf2, &err), BASIRA_E_AUTH);

    /* Password change ends sessions; old password stops working. */
    CHECK_EQ_INT(basira_store_user_passwd(st, &cli, "gp1", "new-secret-pass", &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_session_lookup(st, token, &v, csrf2, &err), BASIRA_E_AUTH);
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "secret-pass", "ip", &u, &err),
                 BASIRA_E_AUTH);
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "new-secret-pass", "ip", &u, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_session_create(st, &u, 3600, token, csrf, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "gp1", 1, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_session_lookup(st, token, &v, csrf2, &err), BASIRA_E_AUTH);
    CHECK_EQ_INT(basira_store_authenticate(st, "gp1", "new-secret-pass", "ip", &u, &err),
                 BASIRA_E_AUTH);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "ghost", 1, &err), BASIRA_E_NOT_FOUND);
    CHECK_EQ_INT(basira_store_session_delete(st, &cli, token, &err), BASIRA_OK);

    json_t *list = NULL;
    CHECK_EQ_INT(basira_store_user_list(st, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_array_size(list), 1);
    CHECK(json_is_true(json_object_get(json_array_get(list, 0), "disabled")));
    json_decref(list);

    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    CHECK(rep.checked >= 8); /* adds, logins (ok and denied), passwd, disable */
    basira_store_free(st);
}

static void new_case(basira_case_new *c)
{
    memset(c, 0, sizeof *c);
    c->patient_ref = "P-0001";
    c->age = 54;
    c->sex = "female";
    c->body_site = "back";
    c->changed = 1;
    c->bleeding = 0;
    c->itching = -1;
    c->duration_months = 6;
    c->consent_care = 1;
    c->consent_research = 0;
    c->consent_recorded_by = "nurse1";
}

static json_t *fake_result(const char *category, double risk)
{
    return json_pack("{s:s, s:{s:s, s:f}}", "status", "ok", "risk", "category", category, "index",
                     risk);
}

static void test_cases(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("cases", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    basira_case_new c;
    int64_t id1 = 0, id2 = 0, id3 = 0;
    new_case(&c);
    c.consent_care = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id1, &err), BASIRA_E_CONSENT);
    basira_case_filter f;
    basira_case_filter_init(&f);
    json_t *list = NULL;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 0); /* nothing stored */
    json_decref(list);

    new_case(&c);
    c.age = 200;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id1, &err), BASIRA_E_INVALID_ARGUMENT);
    new_case(&c);
    c.sex = "banana";
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id1, &err), BASIRA_E_INVALID_ARGUMENT);
    new_case(&c);
    c.patient_ref = "";
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id1, &err), BASIRA_E_INVALID_ARGUMENT);

    new_case(&c);
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id1, &err), BASIRA_OK);
    c.patient_ref = "P-0002";
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id2, &err), BASIRA_OK);
    c.patient_ref = "P-0003";
    c.consent_research = 1;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id3, &err), BASIRA_OK);
    CHECK(id1 > 0 && id2 > id1 && id3 > id2);

    /* Photo on case 2 (high), case 3 (low), a rejected photo on case 1. */
    const char photo[] = "\xff\xd8\xff\xe0 UNIQUE-PHOTO-MARKER-1234567890 \xff\xd9";
    int64_t im = 0;
    json_t *hi = fake_result("high", 62.5), *lo = fake_result("low", 3.0);
    json_t *rej = json_pack("{s:s}", "status", "rejected");
    basira_image_record rhi = {hi, 2, 62.5}, rlo = {lo, 0, 3.0}, rrej = {rej, -1, -1};
    CHECK_EQ_INT(basira_store_image_add(st, &cli, id2, photo, sizeof photo, "image/jpeg", &rhi, 1,
                                        &im, &err),
                 BASIRA_OK);
    int64_t photo_id = im;
    CHECK_EQ_INT(basira_store_image_add(st, &cli, id3, photo, sizeof photo, "image/jpeg", &rlo, 1,
                                        &im, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_image_add(st, &cli, id1, photo, sizeof photo, "image/jpeg", &rrej, 0,
                                        &im, &err),
                 BASIRA_OK);
    int64_t event_id = im;
    CHECK_EQ_INT(basira_store_image_add(st, &cli, 9999, photo, sizeof photo, "image/jpeg", &rhi, 1,
                                        &im, &err),
                 BASIRA_E_NOT_FOUND);
    json_decref(hi);
    json_decref(lo);
    json_decref(rej);

    unsigned char *data = NULL;
    size_t len = 0;
    char mime[32];
    int64_t owner = 0;
    CHECK_EQ_INT(basira_store_photo_get(st, &cli, photo_id, &data, &len, mime, &owner, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(owner, id2);
    CHECK_EQ_INT(len, sizeof photo);
    CHECK(data && !memcmp(data, photo, len));
    CHECK_STR(mime, "image/jpeg");
    free(data);
    /* The rejected photo was never stored. */
    CHECK_EQ_INT(basira_store_photo_get(st, &cli, event_id, &data, &len, mime, NULL, &err),
                 BASIRA_E_NOT_FOUND);

    /* Worklist: high first, then low, then the untriaged case. */
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    json_t *items = json_object_get(list, "items");
    CHECK_EQ_INT(json_array_size(items), 3);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(items, 0), "id")), id2);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(items, 1), "id")), id3);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(items, 2), "id")), id1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "risk")), "high");
    json_decref(list);
    f.risk = 0;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 1);
    json_decref(list);
    basira_case_filter_init(&f);
    f.limit = 1;
    f.offset = 1;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 3);
    CHECK_EQ_INT(json_array_size(json_object_get(list, "items")), 1);
    CHECK_EQ_INT(json_integer_value(
                     json_object_get(json_array_get(json_object_get(list, "items"), 0), "id")),
                 id3);
    json_decref(list);
    f.status = "closed";
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_E_INVALID_ARGUMENT);

    /* Decisions. */
    basira_decision d = {1, NULL, NULL, "none", NULL, 0};
    CHECK_EQ_INT(basira_store_decision(st, &cli, id1, &d, &err), BASIRA_E_CONFLICT);
    basira_decision o = {0, "high", NULL, "requested", NULL, 0};
    CHECK_EQ_INT(basira_store_decision(st, &cli, id3, &o, &err), BASIRA_E_INVALID_ARGUMENT);
    o.reason = "irregular border seen on dermoscopy";
    o.referral = "teleported";
    CHECK_EQ_INT(basira_store_decision(st, &cli, id3, &o, &err), BASIRA_E_INVALID_ARGUMENT);
    o.referral = "requested";
    CHECK_EQ_INT(basira_store_decision(st, &cli, id3, &o, &err), BASIRA_OK);
    /* Accepting a high AI category without a referral needs a reason. */
    CHECK_EQ_INT(basira_store_decision(st, &cli, id2, &d, &err), BASIRA_E_INVALID_ARGUMENT);
    d.referral = "requested";
    CHECK_EQ_INT(basira_store_decision(st, &cli, id2, &d, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_decision(st, &cli, 4242, &d, &err), BASIRA_E_NOT_FOUND);

    json_t *cj = NULL;
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id3, &cj, &err), BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(cj, "status")), "reviewed");
    CHECK_STR(json_string_value(json_object_get(cj, "risk")), "high");
    CHECK_STR(json_string_value(json_object_get(cj, "ai_risk")), "low");
    json_t *dec = json_object_get(cj, "decision");
    CHECK_STR(json_string_value(json_object_get(dec, "outcome")), "overridden");
    CHECK_STR(json_string_value(json_object_get(dec, "referral")), "requested");
    CHECK(json_is_true(json_object_get(json_object_get(cj, "consent"), "research")));
    CHECK(json_is_true(json_object_get(json_object_get(cj, "history"), "changed")));
    CHECK(json_is_null(json_object_get(json_object_get(cj, "history"), "itching")));
    CHECK_EQ_INT(json_array_size(json_object_get(cj, "images")), 1);
    json_decref(cj);
    CHECK_EQ_INT(basira_store_case_get(st, &cli, 777, &cj, &err), BASIRA_E_NOT_FOUND);

    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    json_t *audit = NULL;
    CHECK_EQ_INT(basira_store_audit_list(st, &cli, 0, 1000, &audit, &err), BASIRA_OK);
    CHECK_EQ_INT(json_array_size(json_object_get(audit, "items")), rep.checked);
    /* The failed read of case 777 is in the trail too. */
    int saw_not_found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(audit, "items"), i, e)
    {
        if (json_integer_value(json_object_get(e, "case_id")) == 777 &&
            !strcmp(json_string_value(json_object_get(e, "outcome")), "not_found"))
            saw_not_found = 1;
    }
    CHECK(saw_not_found);
    json_decref(audit);
    basira_store_free(st);

    /* Encrypted at rest: neither the photo nor the patient reference is in the files. */
    char path[700];
    const char *files[] = {"basira.db", "basira.db-wal"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        static char buf[1 << 22];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        CHECK(n > 0);
        CHECK(memmem(buf, n, "UNIQUE-PHOTO-MARKER", 19) == NULL);
        CHECK(memmem(buf, n, "P-0002", 6) == NULL);
        CHECK(memmem(buf, n, "SQLite format", 13) == NULL);
    }
}

static void test_audit_tamper(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("tamper", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(basira_store_audit_append(st, &cli, "test", i + 1, "ok", NULL, &err),
                     BASIRA_OK);
    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(rep.checked, 10);
    CHECK_EQ_INT(rep.bad_id, 0);

    sqlite3 *db = raw_open(dir, kf);
    /* Edit. */
    CHECK_EQ_INT(raw_exec(db, "UPDATE audit SET actor = 'mallory' WHERE id = 4"), SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_E_TAMPERED);
    CHECK_EQ_INT(rep.bad_id, 4);
    CHECK(strstr(err.message, "4") != NULL);
    CHECK_EQ_INT(raw_exec(db, "UPDATE audit SET actor = 'tester' WHERE id = 4"), SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    /* Delete in the middle. */
    CHECK_EQ_INT(raw_exec(db, "CREATE TABLE keep AS SELECT * FROM audit"), SQLITE_OK);
    CHECK_EQ_INT(raw_exec(db, "DELETE FROM audit WHERE id = 6"), SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_E_TAMPERED);
    CHECK_EQ_INT(rep.bad_id, 6);
    CHECK(strstr(err.message, "deleted") != NULL);
    /* Delete at the end. */
    CHECK_EQ_INT(raw_exec(db, "DELETE FROM audit; INSERT INTO audit SELECT * FROM keep WHERE "
                              "id < 10"),
                 SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_E_TAMPERED);
    CHECK(strstr(err.message, "removed") != NULL);
    /* Insert a forged entry in the middle (renumbering what follows). */
    CHECK_EQ_INT(raw_exec(db, "DELETE FROM audit; INSERT INTO audit SELECT * FROM keep"),
                 SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(raw_exec(db, "UPDATE audit SET id = id + 100 WHERE id > 5;"
                              "UPDATE audit SET id = id - 99 WHERE id > 100;"
                              "INSERT INTO audit SELECT 6, ts, 'mallory', action, case_id, ip, "
                              "outcome, detail, hash, hash FROM keep WHERE id = 5"),
                 SQLITE_OK);
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_E_TAMPERED);
    CHECK_EQ_INT(rep.bad_id, 6);
    sqlite3_close(db);
    basira_store_free(st);

    /* A database from a newer Basira (higher schema version) is refused, not damaged. */
    db = raw_open(dir, kf);
    CHECK_EQ_INT(raw_exec(db, "PRAGMA user_version = 99"), SQLITE_OK);
    sqlite3_close(db);
    basira_store_key key = {NULL, kf};
    st = NULL;
    CHECK_EQ_INT(basira_store_open(dir, &key, 0, &fast, &st, &err), BASIRA_E_UNSUPPORTED);
    CHECK(st == NULL);
    CHECK(strstr(err.message, "99") != NULL);
}

/* What basira_site_config_load does with the retention part of DIR/config.json. */
static basira_code retention_load(const char *dir, basira_retention *r, basira_error *err)
{
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *j = NULL;
    if (access(path, F_OK) == 0 && !(j = json_load_file(path, 0, NULL)))
        return basira_error_set(err, BASIRA_E_FORMAT, "malformed");
    basira_code rc = basira_retention_from_json(j, path, r, err);
    json_decref(j);
    return rc;
}

static void test_retention(void)
{
    char dir[512], kf[600], path[700];
    basira_error err;
    basira_retention r;
    basira_store *st = fresh_store("retention", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_EQ_INT(retention_load(dir, &r, &err), BASIRA_OK);
    CHECK_EQ_INT(r.cases_days, 3650);
    CHECK(r.audit_days > r.cases_days);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"retention_days\": {\"cases\": 30, \"photos\": 10, \"quality_events\": 5}}", f);
    fclose(f);
    CHECK_EQ_INT(retention_load(dir, &r, &err), BASIRA_OK);
    CHECK_EQ_INT(r.cases_days, 30);
    CHECK_EQ_INT(r.photos_days, 10);
    CHECK_EQ_INT(r.quality_events_days, 5);
    CHECK_EQ_INT(r.audit_days, 7300);

    basira_case_new c;
    new_case(&c);
    int64_t id = 0, im = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id, &err), BASIRA_OK);
    json_t *res = fake_result("medium", 20);
    basira_image_record rec = {res, 1, 20};
    CHECK_EQ_INT(basira_store_image_add(st, &cli, id, "abc", 3, "image/png", &rec, 1, &im, &err),
                 BASIRA_OK);
    int64_t ev = 0;
    CHECK_EQ_INT(basira_store_image_add(st, &cli, id, NULL, 0, NULL, &rec, 0, &ev, &err),
                 BASIRA_OK);
    json_decref(res);

    basira_purge_report rep;
    int64_t now = (int64_t)time(NULL);
    CHECK_EQ_INT(basira_store_purge(st, &cli, &r, now, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(rep.cases + rep.photos + rep.quality_events, 0);
    /* 7 days later: the quality event is gone, the photo stays. */
    CHECK_EQ_INT(basira_store_purge(st, &cli, &r, now + 7 * 86400, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(rep.quality_events, 1);
    CHECK_EQ_INT(rep.photos, 0);
    /* 11 days: the photo goes, the case (with its result) stays. */
    CHECK_EQ_INT(basira_store_purge(st, &cli, &r, now + 11 * 86400, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(rep.photos, 1);
    unsigned char *data;
    size_t len;
    char mime[32];
    CHECK_EQ_INT(basira_store_photo_get(st, &cli, im, &data, &len, mime, NULL, &err),
                 BASIRA_E_NOT_FOUND);
    json_t *cj = NULL;
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id, &cj, &err), BASIRA_OK);
    CHECK_EQ_INT(json_array_size(json_object_get(cj, "images")), 1);
    json_decref(cj);
    /* 31 days: the case goes. */
    CHECK_EQ_INT(basira_store_purge(st, &cli, &r, now + 31 * 86400, &rep, &err), BASIRA_OK);
    CHECK_EQ_INT(rep.cases, 1);
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id, &cj, &err), BASIRA_E_NOT_FOUND);
    /* Far future: old audit entries go too, and the remaining chain still verifies. */
    CHECK_EQ_INT(basira_store_purge(st, &cli, &r, now + 7400L * 86400, &rep, &err), BASIRA_OK);
    CHECK(rep.audit_entries > 5);
    basira_audit_report arep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &arep, &err), BASIRA_OK);
    CHECK_EQ_INT(arep.checked, 1); /* the record of this purge */
    json_t *audit = NULL;
    CHECK_EQ_INT(basira_store_audit_list(st, &cli, 0, 10, &audit, &err), BASIRA_OK);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(audit, "items"), 0), "action")),
              "purge");
    json_decref(audit);

    f = fopen(path, "w");
    fputs("{\"retention_days\": {\"cases\": -3}}", f);
    fclose(f);
    CHECK_EQ_INT(retention_load(dir, &r, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "cases") != NULL);
    f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    CHECK_EQ_INT(retention_load(dir, &r, &err), BASIRA_E_FORMAT);
    basira_store_free(st);
}

/* NIST SP 800-63B policy: characters not bytes, common passwords, not the username. */
static void test_password_policy(void)
{
    basira_error err;
    CHECK_EQ_INT(basira_password_check("password", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "common") != NULL);
    CHECK_EQ_INT(basira_password_check("PassWord123", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("motdepasse", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("dr.amina", "dr.amina", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "username") != NULL);
    CHECK_EQ_INT(basira_password_check("Dr.Amina2026!", "dr.amina", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("aaaaaaaaaa", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("abcdefghij", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("short", "gp1", &err), BASIRA_E_INVALID_ARGUMENT);
    /* 7 Arabic letters are 14 bytes but 7 characters: too short; 8 are enough. */
    CHECK_EQ_INT(basira_password_check("\xd8\xb3\xd8\xb1\xd9\x8a\xd8\xb3\xd8\xb1\xd9\x8a\xd8\xa9",
                                       "gp1", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("\xd8\xb3\xd8\xb1\xd9\x8a\xd8\xa9 \xd8\xac\xd8\xaf\xd8\xa7",
                                       "gp1", &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_password_check("\xc3\xa9t\xc3\xa9 chaud", "gp1", &err), BASIRA_OK);
    CHECK_EQ_INT(basira_password_check("bad\xff utf8 text", "gp1", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_password_check("olive tree river", "gp1", &err), BASIRA_OK);

    char dir[512], kf[600];
    basira_store *st = fresh_store("policy", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "nurse9", BASIRA_ROLE_NURSE, "password", &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "nurse9", BASIRA_ROLE_NURSE, "nurse9nurse9", &err),
                 BASIRA_E_INVALID_ARGUMENT); /* the username twice */
    CHECK_EQ_INT(
        basira_store_user_add(st, &cli, "admin1", BASIRA_ROLE_ADMIN, "olive tree river", &err),
        BASIRA_OK);
    /* The only admin cannot disable themselves; with a second one, they can. */
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "admin1", 1, &err), BASIRA_E_CONFLICT);
    CHECK(strstr(err.message, "admin") != NULL);
    CHECK_EQ_INT(
        basira_store_user_add(st, &cli, "admin2", BASIRA_ROLE_ADMIN, "cedar lake stone", &err),
        BASIRA_OK);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "admin1", 1, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "admin2", 1, &err), BASIRA_E_CONFLICT);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "admin1", 0, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_user_set_disabled(st, &cli, "ghost", 1, &err), BASIRA_E_NOT_FOUND);

    /* Changing one's own password: the current one first, then the policy. */
    CHECK_EQ_INT(
        basira_store_user_change_password(st, &cli, "admin2", "wrong one!", "new pass here", &err),
        BASIRA_E_AUTH);
    CHECK_EQ_INT(
        basira_store_user_change_password(st, &cli, "admin2", "cedar lake stone", "password", &err),
        BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_store_user_change_password(st, &cli, "admin2", "cedar lake stone",
                                                   "maple hill road", &err),
                 BASIRA_OK);
    basira_user u;
    CHECK_EQ_INT(basira_store_authenticate(st, "admin2", "maple hill road", "ip", &u, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_authenticate(st, "admin2", "cedar lake stone", "ip", &u, &err),
                 BASIRA_E_AUTH);
    basira_store_free(st);
}

static void test_patient_ref(void)
{
    basira_error err;
    CHECK_EQ_INT(basira_patient_ref_check("P-0001", &err), BASIRA_OK);
    CHECK_EQ_INT(basira_patient_ref_check("\xd9\x85-\xd9\xa1\xd9\xa2", &err), BASIRA_OK);
    CHECK_EQ_INT(basira_patient_ref_check("", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_patient_ref_check("   ", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "blank") != NULL);
    CHECK_EQ_INT(basira_patient_ref_check("\xc2\xa0\xe3\x80\x80", &err),
                 BASIRA_E_INVALID_ARGUMENT); /* no-break and ideographic spaces */
    CHECK_EQ_INT(basira_patient_ref_check("\xe2\x80\x8b\xe2\x80\x8d\xef\xbb\xbf", &err),
                 BASIRA_E_INVALID_ARGUMENT); /* zero-width space, joiner, BOM */
    CHECK_EQ_INT(basira_patient_ref_check("P-1\xe2\x80\xae"
                                          "2000",
                                          &err),
                 BASIRA_E_INVALID_ARGUMENT); /* right-to-left override */
    CHECK(strstr(err.message, "U+202A") != NULL);
    CHECK_EQ_INT(basira_patient_ref_check("P-\xe2\x81\xa6"
                                          "12",
                                          &err),
                 BASIRA_E_INVALID_ARGUMENT); /* left-to-right isolate */
    CHECK_EQ_INT(basira_patient_ref_check("P-\x01", &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_patient_ref_check("P-\xc0\xaf", &err), BASIRA_E_INVALID_ARGUMENT);
    char long_ref[80];
    memset(long_ref, 'x', 65);
    long_ref[65] = 0;
    CHECK_EQ_INT(basira_patient_ref_check(long_ref, &err), BASIRA_E_INVALID_ARGUMENT);
    /* 64 Arabic letters: 128 bytes, 64 characters: fine. */
    char ar[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(ar, "\xd9\x85");
    CHECK_EQ_INT(basira_patient_ref_check(ar, &err), BASIRA_OK);
}

/* Two clinicians on one case: both decisions stay, a stale version is refused. */
static void test_decision_versions(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("versions", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    const basira_actor derm = {"derm1", "10.0.0.2"}, gp = {"gp1", "10.0.0.3"};
    basira_case_new c;
    new_case(&c);
    int64_t id = 0, other = 0, im = 0, v = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id, &err), BASIRA_OK);
    json_t *res = fake_result("high", 46.0);
    const char photo[] = "\xff\xd8 photo \xff\xd9";
    basira_image_record rec = {res, 2, 46.0};
    CHECK_EQ_INT(
        basira_store_image_add(st, &cli, id, photo, sizeof photo, "image/jpeg", &rec, 1, &im, &err),
        BASIRA_OK);
    json_decref(res);
    json_t *cj = NULL;
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id, &cj, &err), BASIRA_OK);
    int64_t seen = json_integer_value(json_object_get(cj, "version"));
    CHECK_EQ_INT(seen, 1); /* the photo moved it */
    CHECK_EQ_INT(json_array_size(json_object_get(cj, "decisions")), 0);
    json_decref(cj);
    /* The dermatologist's queue holds the triaged case. */
    basira_case_filter f;
    basira_case_filter_init(&f);
    f.awaiting_review = 1;
    json_t *list = NULL;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 1);
    json_decref(list);

    /* High without referral and without reason: refused, nothing stored; accepting too. */
    basira_decision hd = {1, NULL, NULL, "none", NULL, 0};
    CHECK_EQ_INT(
        basira_store_decision_add(st, &derm, BASIRA_ROLE_DERMATOLOGIST, id, &hd, seen, &v, &err),
        BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "reason") != NULL);
    hd.accept_ai = 0;
    hd.category = "high";
    hd.reason = "asymmetric pigment network on dermoscopy";
    hd.referral = "requested";
    hd.note = "Seen with the dermatoscope.\nPatient informed.";
    CHECK_EQ_INT(
        basira_store_decision_add(st, &derm, BASIRA_ROLE_DERMATOLOGIST, id, &hd, seen, &v, &err),
        BASIRA_OK);
    CHECK_EQ_INT(v, seen + 1);
    /* The GP still holds the old version: refused, and the dermatologist's decision stays. */
    basira_decision gd = {0, "low", "looks like a common naevus", "none", NULL, 0};
    CHECK_EQ_INT(basira_store_decision_add(st, &gp, BASIRA_ROLE_GP, id, &gd, seen, NULL, &err),
                 BASIRA_E_PRECONDITION);
    CHECK(strstr(err.message, "version") != NULL);
    CHECK_EQ_INT(basira_store_decision_add(st, &gp, BASIRA_ROLE_GP, id, &gd, v, &v, &err),
                 BASIRA_OK);
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id, &cj, &err), BASIRA_OK);
    json_t *ds = json_object_get(cj, "decisions");
    CHECK_EQ_INT(json_array_size(ds), 2);
    json_t *d0 = json_array_get(ds, 0), *d1 = json_array_get(ds, 1);
    CHECK_STR(json_string_value(json_object_get(d0, "decided_by")), "derm1");
    CHECK_STR(json_string_value(json_object_get(d0, "role")), "dermatologist");
    CHECK_STR(json_string_value(json_object_get(d0, "category")), "high");
    CHECK_STR(json_string_value(json_object_get(d0, "reason")),
              "asymmetric pigment network on dermoscopy");
    CHECK(strstr(json_string_value(json_object_get(d0, "note")), "\nPatient informed.") != NULL);
    CHECK_STR(json_string_value(json_object_get(d1, "category")), "low");
    CHECK_STR(json_string_value(json_object_get(d1, "role")), "gp");
    CHECK_STR(json_string_value(json_object_get(json_object_get(cj, "decision"), "category")),
              "low");
    CHECK_EQ_INT(json_integer_value(json_object_get(cj, "version")), v);
    json_decref(cj);

    /* Medium schedules a follow-up (90 days); the worklist finds it once it is overdue. */
    basira_decision md = {0, "medium", "slight asymmetry, review in three months", "none", NULL, 0};
    CHECK_EQ_INT(basira_store_decision_add(st, &gp, BASIRA_ROLE_GP, id, &md, -1, &v, &err),
                 BASIRA_OK);
    basira_case_filter_init(&f);
    f.overdue = 1;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 0);
    json_decref(list);
    f.overdue_now = time(NULL) + 91 * 86400;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 1);
    json_t *item = json_array_get(json_object_get(list, "items"), 0);
    CHECK(json_is_string(json_object_get(item, "follow_up")));
    CHECK_EQ_INT(json_integer_value(json_object_get(item, "thumbnail")), im);
    json_decref(list);

    /* Same patient_ref: linked, the patient page lists both cases with their photos. */
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &other, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_case_get(st, &cli, other, &cj, &err), BASIRA_OK);
    json_t *rel = json_object_get(json_object_get(cj, "patient"), "cases");
    CHECK_EQ_INT(json_array_size(rel), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(rel, 0), "id")), id);
    json_decref(cj);
    json_t *pj = NULL;
    CHECK_EQ_INT(basira_store_patient_get(st, &cli, "P-0001", &pj, &err), BASIRA_OK);
    json_t *pcases = json_object_get(pj, "cases");
    CHECK_EQ_INT(json_array_size(pcases), 2);
    json_t *pimages = json_object_get(json_array_get(pcases, 0), "images");
    CHECK_EQ_INT(json_array_size(pimages), 1);
    CHECK_NEAR(json_number_value(json_object_get(json_array_get(pimages, 0), "risk_index")), 46,
               1e-9);
    json_decref(pj);
    CHECK_EQ_INT(basira_store_patient_get(st, &cli, "P-none", &pj, &err), BASIRA_E_NOT_FOUND);
    basira_case_filter_init(&f);
    f.patient_ref = "P-0001";
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 2);
    json_decref(list);
    /* Reviewed now, and the new case has no photo: the queue is empty. */
    basira_case_filter_init(&f);
    f.awaiting_review = 1;
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), 0);
    json_decref(list);

    /* The audit row holds the whole decision, reason included. */
    json_t *audit = NULL;
    CHECK_EQ_INT(basira_store_audit_list(st, &cli, 0, 1000, &audit, &err), BASIRA_OK);
    int found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(audit, "items"), i, e)
    {
        const char *det = json_string_value(json_object_get(e, "detail"));
        if (!strcmp(json_string_value(json_object_get(e, "action")), "decision") && det &&
            strstr(det, "asymmetric pigment network") &&
            strstr(det, "\"referral\":\"requested\"") && strstr(det, "dermatologist"))
            found = 1;
    }
    CHECK(found);
    json_decref(audit);
    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    basira_store_free(st);
}

/*
 * A failed audit write fails the operation it records (fault injection: a
 * trigger makes every audit INSERT fail, as a full disk or a broken chain
 * would). Nothing the audit trail does not show may happen: no case, no
 * sign-out, no read of the trail, no consent refusal reported as success.
 */
static void test_audit_failure_fails_the_operation(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("auditfail", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_EQ_INT(basira_store_user_add(st, &cli, "nurse9", BASIRA_ROLE_NURSE, "password-123", &err),
                 BASIRA_OK);
    basira_user u;
    CHECK_EQ_INT(basira_store_authenticate(st, "nurse9", "password-123", "local", &u, &err),
                 BASIRA_OK);
    char token[BASIRA_TOKEN_LEN + 1], csrf[BASIRA_TOKEN_LEN + 1];
    CHECK_EQ_INT(basira_store_session_create(st, &u, 3600, token, csrf, &err), BASIRA_OK);
    long cases_before = 0;
    json_t *list = NULL;
    basira_case_filter f;
    basira_case_filter_init(&f);
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    cases_before = (long)json_integer_value(json_object_get(list, "total"));
    json_decref(list);

    CHECK_EQ_INT(sqlite3_exec(st->db,
                              "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN "
                              "SELECT RAISE(ABORT, 'audit unavailable'); END",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    basira_case_new c;
    new_case(&c);
    int64_t id = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id, &err), BASIRA_E_STORE);
    c.consent_care = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id, &err), BASIRA_E_STORE);
    CHECK_EQ_INT(basira_store_session_delete(st, &cli, token, &err), BASIRA_E_STORE);
    json_t *audit = NULL;
    CHECK_EQ_INT(basira_store_audit_list(st, &cli, 0, 10, &audit, &err), BASIRA_E_STORE);
    CHECK(audit == NULL);
    CHECK_EQ_INT(sqlite3_exec(st->db, "DROP TRIGGER no_audit", NULL, NULL, NULL), SQLITE_OK);

    /* Nothing happened: the session is still open, no case was added. */
    basira_user back;
    CHECK_EQ_INT(basira_store_session_lookup(st, token, &back, csrf, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_store_case_list(st, &cli, &f, &list, &err), BASIRA_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(list, "total")), cases_before);
    json_decref(list);
    basira_audit_report rep;
    CHECK_EQ_INT(basira_store_audit_verify(st, &rep, &err), BASIRA_OK);
    basira_store_free(st);
}

/* A database of the first schema, with a decision, is migrated without losing it. */
static void test_migration(void)
{
    char dir[512], kf[600];
    basira_error err;
    basira_store *st = fresh_store("migrate", dir, sizeof dir, kf, sizeof kf);
    CHECK(st != NULL);
    if (!st)
        return;
    int v2 = basira_store_schema_version(st);
    basira_case_new c;
    new_case(&c);
    int64_t id = 0;
    CHECK_EQ_INT(basira_store_case_create(st, &cli, &c, &id, &err), BASIRA_OK);
    basira_store_free(st);
    /* Back to schema 1 behind the store's back, with a decision the old way. */
    sqlite3 *db = raw_open(dir, kf);
    /* The hub's sync step (after the decisions migration) goes too: it did not exist then. */
    CHECK_EQ_INT(raw_exec(db,
                          "DROP TRIGGER sync_image_new; DROP TRIGGER sync_photo_erased;"
                          "DROP TABLE sync_outbox; DROP TABLE sync_state; DROP TABLE sync_replies;"
                          "DROP TABLE sync_originals;"),
                 SQLITE_OK);
    /* So do the photo-kind columns (migration 8, issue 11). */
    CHECK_EQ_INT(raw_exec(db, "DROP TABLE image_modality;"), SQLITE_OK);
    CHECK_EQ_INT(raw_exec(db, "DROP TABLE decisions; DROP INDEX cases_patient; DROP TABLE sessions;"
                              "CREATE TABLE sessions(token_hash TEXT PRIMARY KEY, user_id INTEGER"
                              " NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL,"
                              " expires_at INTEGER NOT NULL);"
                              "CREATE TABLE c1(id INTEGER PRIMARY KEY, patient_ref TEXT NOT NULL,"
                              " age INTEGER, sex TEXT NOT NULL, body_site TEXT, history TEXT NOT"
                              " NULL, consent_care INTEGER NOT NULL, consent_research INTEGER NOT"
                              " NULL, consent_recorded_by TEXT NOT NULL, consent_recorded_at"
                              " INTEGER NOT NULL, created_by TEXT NOT NULL, created_at INTEGER"
                              " NOT NULL, status TEXT NOT NULL DEFAULT 'new', ai_risk INTEGER,"
                              " ai_risk_index REAL, risk INTEGER, decision TEXT, updated_at"
                              " INTEGER NOT NULL);"
                              "INSERT INTO c1 SELECT id, patient_ref, age, sex, body_site, "
                              "history, consent_care, consent_research, consent_recorded_by, "
                              "consent_recorded_at, created_by, created_at, status, ai_risk, "
                              "ai_risk_index, risk, decision, updated_at FROM cases;"
                              "DROP TABLE cases; ALTER TABLE c1 RENAME TO cases;"
                              "UPDATE cases SET status = 'reviewed', risk = 2, decision = "
                              "'{\"outcome\":\"overridden\",\"category\":\"high\",\"reason\":"
                              "\"ulcerated\",\"referral\":\"requested\",\"decided_by\":\"derm0\","
                              "\"decided_at\":\"2026-01-02T03:04:05Z\"}';"),
                 SQLITE_OK);
    /*
     * The version before the decisions migration (5): the hub's sync (6), the
     * originals and read replies (7) and the photo kinds (8) follow it.
     */
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d;", v2 - 4);
    CHECK_EQ_INT(raw_exec(db, pragma), SQLITE_OK);
    sqlite3_close(db);
    basira_store_key key = {NULL, kf};
    CHECK_EQ_INT(basira_store_open(dir, &key, 0, &fast, &st, &err), BASIRA_OK);
    if (!st)
        return;
    CHECK_EQ_INT(basira_store_schema_version(st), v2);
    json_t *cj = NULL;
    CHECK_EQ_INT(basira_store_case_get(st, &cli, id, &cj, &err), BASIRA_OK);
    json_t *ds = json_object_get(cj, "decisions");
    CHECK_EQ_INT(json_array_size(ds), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(ds, 0), "reason")), "ulcerated");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ds, 0), "decided_by")), "derm0");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ds, 0), "decided_at")),
              "2026-01-02T03:04:05Z");
    CHECK_EQ_INT(json_integer_value(json_object_get(cj, "version")), 1);
    CHECK_STR(json_string_value(json_object_get(cj, "referral")), "requested");
    json_decref(cj);
    basira_store_free(st);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-store-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(test_keys);
    RUN(test_users_sessions);
    RUN(test_cases);
    RUN(test_audit_tamper);
    RUN(test_retention);
    RUN(test_password_policy);
    RUN(test_patient_ref);
    RUN(test_decision_versions);
    RUN(test_migration);
    RUN(test_audit_failure_fails_the_operation);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
