/*
 * release_sync.c - the node's model release step of a sync (basira/sync.h):
 * ask the hub for the release staged for this node, verify and install it or
 * refuse it, report back, and audit.
 */
#include "basira/release.h"
#include "core/i18n.h"
#include "sync_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What runs now: its SHA-256, or "" (nothing installed, or a file that no longer verifies). */
static void installed_sha(const char *models_dir, char sha[65])
{
    char path[4096];
    basira_error e;
    if (basira_release_current(models_dir, path, sizeof path, sha, &e))
        sha[0] = '\0';
}

static basira_code ask(const basira_sync_options *o, const char *node, const unsigned char *sk,
                       const char *installed, const json_t *report, json_t **answer,
                       basira_error *err)
{
    json_t *body = json_pack("{s:s, s:s?, s:O?}", "node", node, "installed",
                             installed[0] ? installed : NULL, "report", report);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_sync_report rep;
    memset(&rep, 0, sizeof rep);
    /* The offer carries the model, base64: more than the other answers may hold. */
    basira_code rc = sync_post_capped(o, "/sync/v1/release", node, sk, text,
                                      BASIRA_RELEASE_MAX_OFFER_BYTES, answer, &rep, err);
    free(text);
    return rc;
}

static basira_code install_offer(const char *models_dir, const char *pk, const char *node,
                                 const json_t *rel, basira_release_info *info, basira_error *err)
{
    const char *manifest = json_string_value(json_object_get(rel, "manifest"));
    const char *sig = json_string_value(json_object_get(rel, "signature"));
    const char *b64 = json_string_value(json_object_get(rel, "model"));
    if (!manifest || !b64)
        return basira_error_setm(err, BASIRA_E_AUTH,
                                 N_("the release signature does not verify: model refused"));
    size_t cap = strlen(b64) / 4 * 3 + 3, len = 0;
    unsigned char *model = malloc(cap);
    if (!model)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (sodium_base642bin(model, cap, b64, strlen(b64), "\r\n", &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL)) {
        free(model);
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("the release's model is not base64"));
    }
    basira_code rc = basira_release_install(models_dir, manifest, strlen(manifest), sig ? sig : "",
                                            model, len, pk, node, info, err);
    free(model);
    return rc;
}

basira_code basira_sync_release(basira_store *st, const basira_sync_options *o,
                                const char *models_dir, const char *release_pk_hex,
                                basira_sync_release_report *rep, basira_error *err)
{
    basira_sync_release_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (!models_dir || !release_pk_hex)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    char node[65];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    basira_code rc = sync_load_identity(st, node, sk, err);
    if (rc)
        return rc;
    installed_sha(models_dir, rep->sha256);
    json_t *answer = NULL;
    if ((rc = ask(o, node, sk, rep->sha256, NULL, &answer, err))) {
        sodium_memzero(sk, sizeof sk);
        return rc;
    }
    json_t *rel = json_object_get(answer, "release");
    if (!json_is_object(rel)) {
        json_decref(answer);
        sodium_memzero(sk, sizeof sk);
        return BASIRA_OK;
    }
    rep->offered = 1;
    snprintf(rep->release_id, sizeof rep->release_id, "%s",
             json_string_value(json_object_get(rel, "id"))
                 ? json_string_value(json_object_get(rel, "id"))
                 : "");
    char offer_fp[65];
    basira_release_offer_fingerprint(json_string_value(json_object_get(rel, "manifest")),
                                     json_string_value(json_object_get(rel, "signature")),
                                     offer_fp);
    basira_release_info info;
    basira_error ierr;
    basira_error_clear(&ierr);
    basira_code irc = install_offer(models_dir, release_pk_hex, node, rel, &info, &ierr);
    json_decref(answer);
    answer = NULL;
    rep->installed = irc == BASIRA_OK;
    rep->refused = !rep->installed;
    installed_sha(models_dir, rep->sha256);
    /* The node's audit trail first (it travels to the hub), then the report. */
    basira_actor a = {"sync", "local"};
    char detail[600];
    snprintf(detail, sizeof detail, "release=%s %s", rep->release_id,
             irc ? ierr.message : rep->sha256);
    rc = basira_store_audit_append(st, &a, irc ? "release_refused" : "release_install", 0,
                                   irc ? "refused" : "ok", detail, err);
    if (!rc) {
        json_t *report = json_pack("{s:s, s:s, s:s, s:s, s:s}", "release_id", rep->release_id,
                                   "sha256", rep->sha256, "outcome", irc ? "refused" : "installed",
                                   "detail", irc ? ierr.message : "", "offer_sha256", offer_fp);
        rc = report ? ask(o, node, sk, rep->sha256, report, &answer, err)
                    : basira_error_set(err, BASIRA_E_NOMEM, NULL);
        json_decref(report);
        json_decref(answer);
    }
    sodium_memzero(sk, sizeof sk);
    if (!rc && irc) {
        if (err)
            *err = ierr;
        rc = irc;
    }
    return rc;
}
