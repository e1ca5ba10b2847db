/*
 * test_release.c - a node installs only a release signed by the hub's release
 * key, approved by two roles, whose model is the one named; anything else is
 * refused and the node keeps running the previous model. Rollback.
 */
#include <sodium.h>
#include <unistd.h>

#include "basira/fs.h"
#include "basira/release.h"
#include "test.h"

static char dir[64];
static char pk[65], sk[129];

static void sha_of(const char *s, char out[65])
{
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, h, 32);
}

/* The release the hub makes of model (text), approved by dsA and drLead. */
static basira_release_info info_of(const char *id, const char *version, const char *model)
{
    basira_release_info in;
    memset(&in, 0, sizeof in);
    snprintf(in.release_id, sizeof in.release_id, "%s", id);
    snprintf(in.model_name, sizeof in.model_name, "basira-derm");
    snprintf(in.model_version, sizeof in.model_version, "%s", version);
    snprintf(in.data_steward, sizeof in.data_steward, "dsA");
    snprintf(in.medical_lead, sizeof in.medical_lead, "drLead");
    sha_of(model, in.sha256);
    return in;
}

/* Sign the manifest of in (model text) with key; *text gets the exact bytes. */
static char *signed_manifest(basira_release_info *in, const char *model, const json_t *clinics,
                             const char *key, char sig[BASIRA_RELEASE_SIG_HEX])
{
    json_t *m = basira_release_manifest(in, strlen(model), clinics);
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    CHECK(basira_release_sign(text, strlen(text), key, sig, NULL) == BASIRA_OK);
    return text;
}

static int install(basira_release_info *in, const char *model, const char *manifest,
                   const char *sig, const char *clinic, basira_error *e)
{
    basira_error_clear(e);
    return basira_release_install(dir, manifest, strlen(manifest), sig, model, strlen(model), pk,
                                  clinic, in, e);
}

static void current_is(const char *model_text)
{
    char path[4096], sha[65], want[65];
    CHECK(basira_release_current(dir, path, sizeof path, sha, NULL) == BASIRA_OK);
    sha_of(model_text, want);
    CHECK_STR(sha, want);
}

static void test_release(void)
{
    snprintf(dir, sizeof dir, "/tmp/basira-release-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK(sodium_init() >= 0);
    CHECK(basira_release_keygen(pk, sk, NULL) == BASIRA_OK);
    char pk2[65], sk2[129], sig[BASIRA_RELEASE_SIG_HEX];
    CHECK(basira_release_keygen(pk2, sk2, NULL) == BASIRA_OK);
    basira_error e;
    char path[4096];
    CHECK(basira_release_current(dir, path, sizeof path, NULL, NULL) == BASIRA_E_NOT_FOUND);

    const char *m1 = "model one bytes", *m2 = "model two bytes, recalibrated";
    basira_release_info r1 = info_of("r1", "1.0.0", m1), r2 = info_of("r2", "1.0.1", m2);
    char *t1 = signed_manifest(&r1, m1, NULL, sk, sig);
    basira_release_info got;
    CHECK(install(&got, m1, t1, sig, "fes-01", &e) == BASIRA_OK);
    CHECK_STR(got.release_id, "r1");
    CHECK_STR(got.medical_lead, "drLead");
    current_is(m1);
    free(t1);

    /* Signed by another key: refused, the node keeps model one. */
    char *t2 = signed_manifest(&r2, m2, NULL, sk2, sig);
    CHECK(install(&got, m2, t2, sig, "fes-01", &e) == BASIRA_E_AUTH);
    CHECK(strstr(e.message, "signature") != NULL);
    current_is(m1);
    /* Unsigned (empty or truncated signature): refused. */
    CHECK(install(&got, m2, t2, "", "fes-01", &e) == BASIRA_E_AUTH);
    CHECK(install(&got, m2, t2, "abcd", "fes-01", &e) == BASIRA_E_AUTH);
    free(t2);
    /* Right key, manifest changed after signing (one byte): refused. */
    t2 = signed_manifest(&r2, m2, NULL, sk, sig);
    char *pos = strstr(t2, "1.0.1");
    pos[4] = '2';
    CHECK(install(&got, m2, t2, sig, "fes-01", &e) == BASIRA_E_AUTH);
    pos[4] = '1';
    /* Right signature, another model file: refused. */
    CHECK(install(&got, "model two bytes, tampered!!!!", t2, sig, "fes-01", &e) ==
          BASIRA_E_TAMPERED);
    current_is(m1);
    free(t2);
    /* One person in both roles: refused even when signed. */
    basira_release_info one = r2;
    snprintf(one.medical_lead, sizeof one.medical_lead, "dsA");
    t2 = signed_manifest(&one, m2, NULL, sk, sig);
    CHECK(install(&got, m2, t2, sig, "fes-01", &e) == BASIRA_E_FORBIDDEN);
    free(t2);
    /* Staged for other clinics only: refused here. */
    json_t *clinics = json_pack("[s]", "rab-02");
    t2 = signed_manifest(&r2, m2, clinics, sk, sig);
    CHECK(install(&got, m2, t2, sig, "fes-01", &e) == BASIRA_E_FORBIDDEN);
    current_is(m1);
    free(t2);
    json_array_append_new(clinics, json_string("fes-01"));
    t2 = signed_manifest(&r2, m2, clinics, sk, sig);
    json_decref(clinics);
    CHECK(install(&got, m2, t2, sig, "fes-01", &e) == BASIRA_OK);
    current_is(m2);
    free(t2);
    json_t *h = NULL;
    CHECK(basira_release_history(dir, &h, NULL) == BASIRA_OK);
    CHECK_EQ_INT(json_array_size(h), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(h, 1), "release_id")), "r2");
    json_decref(h);

    /* Rollback: model one runs again; nothing before it. */
    CHECK(basira_release_rollback(dir, NULL) == BASIRA_OK);
    current_is(m1);
    CHECK(basira_release_rollback(dir, NULL) == BASIRA_E_NOT_FOUND);
    current_is(m1);

    /* The installed file changed on disk: refused at load. */
    char sha[65];
    CHECK(basira_release_current(dir, path, sizeof path, sha, NULL) == BASIRA_OK);
    CHECK(basira_fs_write_atomic(path, "evil", 4, 0644, NULL) == BASIRA_OK);
    CHECK(basira_release_current(dir, path, sizeof path, sha, NULL) == BASIRA_E_TAMPERED);
    /* A damaged current.json is refused, not guessed around. */
    char cur[4096];
    snprintf(cur, sizeof cur, "%s/current.json", dir);
    CHECK(basira_fs_write_atomic(cur, "{\"history\":[{\"sha256\":\"../x\"}]}", 32, 0644, NULL) ==
          BASIRA_OK);
    CHECK(basira_release_current(dir, path, sizeof path, sha, NULL) == BASIRA_E_CORRUPT);
    /* A malformed key is a format error. */
    CHECK(basira_release_sign("x", 1, "zz", sig, NULL) == BASIRA_E_FORMAT);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(test_release);
    return test_summary();
}
