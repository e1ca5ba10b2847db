/*
 * release.c - signing and verifying model releases, and a node's folder of
 * installed models with its history (basira/release.h).
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basira/fs.h"
#include "basira/release.h"
#include "core/i18n.h"

#define MANIFEST_MAX ((size_t)1 << 20)

static basira_code init_sodium(basira_error *err)
{
    if (sodium_init() < 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("cannot initialise libsodium"));
    return BASIRA_OK;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

static int hex_decode(const char *hex, unsigned char *out, size_t n)
{
    size_t got = 0;
    if (!hex || strlen(hex) != 2 * n)
        return -1;
    return sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, NULL) || got != n ? -1 : 0;
}

basira_code basira_release_keygen(char pk_hex[65], char sk_hex[129], basira_error *err)
{
    basira_code rc = init_sodium(err);
    if (rc)
        return rc;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    sodium_bin2hex(pk_hex, 65, pk, sizeof pk);
    sodium_bin2hex(sk_hex, 129, sk, sizeof sk);
    sodium_memzero(sk, sizeof sk);
    return BASIRA_OK;
}

json_t *basira_release_manifest(const basira_release_info *info, size_t model_bytes,
                                const json_t *clinics)
{
    json_t *m =
        json_pack("{s:s, s:i, s:s, s:{s:s, s:s, s:s, s:I}, s:[{s:s, s:s}, {s:s, s:s}]}", "format",
                  "basira-model-release", "version", 1, "release_id", info->release_id, "model",
                  "name", info->model_name, "version", info->model_version, "sha256", info->sha256,
                  "bytes", (json_int_t)model_bytes, "approvals", "role", "data_steward", "by",
                  info->data_steward, "role", "medical_lead", "by", info->medical_lead);
    if (m && clinics && json_object_set(m, "clinics", (json_t *)clinics)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

basira_code basira_release_sign(const void *bytes, size_t len, const char *sk_hex,
                                char sig_hex[BASIRA_RELEASE_SIG_HEX], basira_error *err)
{
    basira_code rc = init_sodium(err);
    if (rc)
        return rc;
    unsigned char sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
    if (hex_decode(sk_hex, sk, sizeof sk))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("the release secret key is not 128 hex digits"));
    crypto_sign_detached(sig, NULL, bytes, len, sk);
    sodium_memzero(sk, sizeof sk);
    sodium_bin2hex(sig_hex, BASIRA_RELEASE_SIG_HEX, sig, sizeof sig);
    return BASIRA_OK;
}

static int copy_str(char *dst, size_t n, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || !s[0] || strlen(s) >= n)
        return -1;
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int safe_id(const char *s)
{
    if (!s[0])
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

basira_code basira_release_verify(const void *manifest, size_t manifest_len, const char *sig_hex,
                                  const void *model, size_t model_len, const char *pk_hex,
                                  const char *clinic, basira_release_info *info, basira_error *err)
{
    basira_code rc = init_sodium(err);
    if (rc)
        return rc;
    if (!manifest || !model)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
    if (hex_decode(pk_hex, pk, sizeof pk))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("the release public key is not 64 hex digits"));
    /* An absent or malformed signature is refused like a wrong one: fail closed. */
    if (hex_decode(sig_hex, sig, sizeof sig) ||
        crypto_sign_verify_detached(sig, manifest, manifest_len, pk))
        return basira_error_setm(err, BASIRA_E_AUTH,
                                 N_("the release signature does not verify: model refused"));
    json_error_t je;
    json_t *m = json_loadb(manifest, manifest_len, JSON_REJECT_DUPLICATES, &je);
    basira_release_info in;
    memset(&in, 0, sizeof in);
    json_t *mo = json_object_get(m, "model"), *ap = json_object_get(m, "approvals");
    const char *format = json_string_value(json_object_get(m, "format"));
    json_t *bytes = json_object_get(mo, "bytes");
    if (!m || !format || strcmp(format, "basira-model-release") ||
        json_integer_value(json_object_get(m, "version")) != 1 ||
        copy_str(in.release_id, sizeof in.release_id, json_object_get(m, "release_id")) ||
        !safe_id(in.release_id) ||
        copy_str(in.model_name, sizeof in.model_name, json_object_get(mo, "name")) ||
        copy_str(in.model_version, sizeof in.model_version, json_object_get(mo, "version")) ||
        copy_str(in.sha256, sizeof in.sha256, json_object_get(mo, "sha256")) ||
        strlen(in.sha256) != 64 || !json_is_integer(bytes) || !json_is_array(ap)) {
        json_decref(m);
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("the release manifest is malformed"));
    }
    size_t i;
    json_t *a;
    json_array_foreach(ap, i, a)
    {
        const char *role = json_string_value(json_object_get(a, "role"));
        char *dst = role && !strcmp(role, "data_steward")   ? in.data_steward
                    : role && !strcmp(role, "medical_lead") ? in.medical_lead
                                                            : NULL;
        if (dst && copy_str(dst, 65, json_object_get(a, "by")))
            dst[0] = '\0';
    }
    if (!in.data_steward[0] || !in.medical_lead[0] || !strcmp(in.data_steward, in.medical_lead)) {
        json_decref(m);
        return basira_error_setm(err, BASIRA_E_FORBIDDEN,
                                 N_("the release lacks the approvals of a data steward and a "
                                    "medical lead (two different people)"));
    }
    char got[65];
    sha256_hex(model, model_len, got);
    if (strcmp(got, in.sha256) || (json_int_t)model_len != json_integer_value(bytes)) {
        json_decref(m);
        return basira_error_setm(err, BASIRA_E_TAMPERED,
                                 N_("the model file is not the one the release names"));
    }
    json_t *clinics = json_object_get(m, "clinics");
    if (clinic && json_is_array(clinics)) {
        int found = 0;
        json_array_foreach(clinics, i, a) found |=
            json_is_string(a) && !strcmp(json_string_value(a), clinic);
        if (!found) {
            json_decref(m);
            return basira_error_setm(err, BASIRA_E_FORBIDDEN,
                                     N_("release %s is not staged for clinic %s"), in.release_id,
                                     clinic);
        }
    }
    json_decref(m);
    if (info)
        *info = in;
    return BASIRA_OK;
}

/* ---- the node's folder of models --------------------------------------------------- */

static basira_code join(const char *dir, const char *rel, char *out, size_t n, basira_error *err)
{
    return basira_fs_join(dir, rel, out, n, err);
}

basira_code basira_release_history(const char *models_dir, json_t **out, basira_error *err)
{
    char path[4096];
    basira_code rc = join(models_dir, "current.json", path, sizeof path, err);
    unsigned char *data = NULL;
    size_t len = 0;
    if (rc || (rc = basira_fs_read(path, MANIFEST_MAX, &data, &len, err)))
        return rc;
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    free(data);
    json_t *h = json_object_get(j, "history");
    if (!json_is_array(h)) {
        json_decref(j);
        return basira_error_setm(err, BASIRA_E_CORRUPT, N_("%s is damaged"), path);
    }
    size_t i;
    json_t *e;
    json_array_foreach(h, i, e)
    {
        const char *sha = json_string_value(json_object_get(e, "sha256"));
        if (!sha || strlen(sha) != 64 || !safe_id(sha)) {
            json_decref(j);
            return basira_error_setm(err, BASIRA_E_CORRUPT, N_("%s is damaged"), path);
        }
    }
    *out = json_incref(h);
    json_decref(j);
    return BASIRA_OK;
}

static basira_code write_history(const char *models_dir, json_t *history, basira_error *err)
{
    char path[4096];
    basira_code rc = join(models_dir, "current.json", path, sizeof path, err);
    if (rc)
        return rc;
    json_t *doc = json_pack("{s:O}", "history", history);
    char *text = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    rc = basira_fs_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    return rc;
}

basira_code basira_release_install(const char *models_dir, const void *manifest,
                                   size_t manifest_len, const char *sig_hex, const void *model,
                                   size_t model_len, const char *pk_hex, const char *clinic,
                                   basira_release_info *info, basira_error *err)
{
    basira_release_info in;
    basira_code rc = basira_release_verify(manifest, manifest_len, sig_hex, model, model_len,
                                           pk_hex, clinic, &in, err);
    if (rc)
        return rc;
    char dir[4096], path[4200], rel[128];
    if ((rc = join(models_dir, "releases", dir, sizeof dir, err)) ||
        (rc = basira_fs_mkdirs(dir, 0755, err)))
        return rc;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, in.sha256);
    if ((rc = basira_fs_write_atomic(path, model, model_len, 0644, err)))
        return rc;
    snprintf(path, sizeof path, "%s/%s.manifest.json", dir, in.sha256);
    if ((rc = basira_fs_write_atomic(path, manifest, manifest_len, 0644, err)))
        return rc;
    snprintf(path, sizeof path, "%s/%s.sig", dir, in.sha256);
    if ((rc = basira_fs_write_atomic(path, sig_hex, strlen(sig_hex), 0644, err)))
        return rc;
    json_t *history = NULL;
    basira_error e2;
    basira_error_clear(&e2);
    rc = basira_release_history(models_dir, &history, &e2);
    if (rc == BASIRA_E_NOT_FOUND)
        history = json_array();
    else if (rc) {
        if (err)
            *err = e2;
        return rc;
    }
    snprintf(rel, sizeof rel, "%s", in.release_id);
    if (!history ||
        json_array_append_new(history, json_pack("{s:s, s:s, s:s, s:I}", "release_id", rel,
                                                 "sha256", in.sha256, "model", in.model_version,
                                                 "installed_at", (json_int_t)time(NULL)))) {
        json_decref(history);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    rc = write_history(models_dir, history, err);
    json_decref(history);
    if (!rc && info)
        *info = in;
    return rc;
}

basira_code basira_release_rollback(const char *models_dir, basira_error *err)
{
    json_t *history = NULL;
    basira_code rc = basira_release_history(models_dir, &history, err);
    if (rc)
        return rc;
    if (json_array_size(history) < 2) {
        json_decref(history);
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no earlier release to go back to"));
    }
    json_array_remove(history, json_array_size(history) - 1);
    rc = write_history(models_dir, history, err);
    json_decref(history);
    return rc;
}

basira_code basira_release_current(const char *models_dir, char *path, size_t pathsz,
                                   char sha256[65], basira_error *err)
{
    json_t *history = NULL;
    basira_code rc = basira_release_history(models_dir, &history, err);
    if (rc)
        return rc;
    size_t n = json_array_size(history);
    if (!n) {
        json_decref(history);
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no model release installed"));
    }
    char want[65], rel[128];
    snprintf(want, sizeof want, "%s",
             json_string_value(json_object_get(json_array_get(history, n - 1), "sha256")));
    json_decref(history);
    snprintf(rel, sizeof rel, "releases/%s.safetensors", want);
    if ((rc = join(models_dir, rel, path, pathsz, err)))
        return rc;
    unsigned char *data = NULL;
    size_t len = 0;
    if ((rc = basira_fs_read(path, BASIRA_RELEASE_MAX_MODEL_BYTES, &data, &len, err)))
        return rc;
    char got[65];
    sha256_hex(data, len, got);
    free(data);
    if (strcmp(got, want))
        return basira_error_setm(err, BASIRA_E_TAMPERED,
                                 N_("the installed model %s was changed after it was verified"),
                                 path);
    if (sha256)
        memcpy(sha256, got, 65);
    return BASIRA_OK;
}

void basira_release_offer_fingerprint(const char *manifest, const char *sig_hex, char out[65])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    if (manifest)
        crypto_hash_sha256_update(&st, (const unsigned char *)manifest, strlen(manifest));
    if (sig_hex)
        crypto_hash_sha256_update(&st, (const unsigned char *)sig_hex, strlen(sig_hex));
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, 65, h, sizeof h);
}
