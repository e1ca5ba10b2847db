/*
 * down.c - the node's side of what travels down from the hub
 * (include/basira/down.h): each item's signature is checked against the hub
 * key learnt at enrolment, then the item is applied by the entry of its kind.
 *
 * To add a kind (e.g. "model_release"): write
 *     static basira_code apply_model_release(const down_env *env, const json_t *payload,
 *                                            basira_error *err);
 * and add {"model_release", apply_model_release} to kinds[] below; at the hub,
 * queue items with basira_hub_down_add(hub, node, "model_release", payload,
 * by, &id, err). Signing, ordering, acknowledgement, refusal and audit are
 * done here for every kind. An item of a kind this node does not know stops
 * the pull (not acknowledged, so it is applied after an upgrade).
 */
#include "basira/down.h"
#include "basira/fs.h"
#include "basira/json.h"
#include "basira/site.h"
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "sync_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct down_env {
    basira_store *st;
    const basira_sync_options *o;
    int64_t id;
} down_env;

/*
 * "site_config": a JSON object merged over DIR/config.json (its top-level
 * keys replace the node's), checked as `basira serve` checks the file, then
 * written atomically. A running `basira serve` (o->site_config_changed) applies
 * it at once, between requests; other commands read the file when they start.
 */
static basira_code apply_site_config(const down_env *env, const json_t *payload, basira_error *err)
{
    if (!env->o->data_dir)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("a site configuration came from the hub but the data folder is "
                                  "not known to the sync"));
    if (!json_is_object(payload))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the hub's site configuration is not a JSON object"));
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", env->o->data_dir);
    json_t *doc = NULL;
    basira_code rc = basira_json_read_file(path, (size_t)1 << 20, &doc, NULL, err);
    if (rc == BASIRA_E_NOT_FOUND) {
        doc = json_object();
        rc = doc ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (rc)
        return rc;
    if (!json_is_object(doc) || json_object_update(doc, (json_t *)payload)) {
        json_decref(doc);
        return basira_error_set(err, BASIRA_E_FORMAT, _("%s: not a JSON object"), path);
    }
    basira_site_config site;
    rc = basira_site_config_from_json(doc, "hub site configuration", &site, err);
    basira_site_config_free(&site);
    char *text = rc ? NULL : json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(doc);
    if (rc)
        return rc;
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    size_t n = strlen(text);
    unsigned char h[crypto_hash_sha256_BYTES];
    char sha[65], detail[160];
    crypto_hash_sha256(h, (const unsigned char *)text, n);
    sodium_bin2hex(sha, sizeof sha, h, sizeof h);
    rc = basira_fs_write_atomic(path, text, n, 0600, err);
    free(text);
    if (rc)
        return rc;
    snprintf(detail, sizeof detail, "hub_down=%" PRId64 " config.json sha256=%s", env->id, sha);
    basira_actor a = {"hub", "hub"};
    if ((rc = basira_store_audit_append(env->st, &a, "site_config", 0, "ok", detail, err)) ||
        !env->o->site_config_changed)
        return rc;
    /* The running node takes it now; if it cannot, the file waits for the next start. */
    basira_error lerr;
    basira_code lrc = env->o->site_config_changed(env->o->site_config_ctx, &lerr);
    char live[400];
    snprintf(live, sizeof live, "hub_down=%" PRId64 " sha256=%s%s%.200s", env->id, sha,
             lrc ? " not applied until the next start: " : "", lrc ? lerr.message : "");
    basira_actor srv = {"serve", "local"};
    return basira_store_audit_append(env->st, &srv, "site_config_live", 0, lrc ? "failed" : "ok",
                                     live, err);
}

/* "original_request": {"case_id", "image_id"}; the original goes up after the pull. */
static basira_code apply_original_request(const down_env *env, const json_t *payload,
                                          basira_error *err)
{
    const json_t *cid = json_object_get(payload, "case_id"),
                 *iid = json_object_get(payload, "image_id");
    if (!json_is_integer(cid) || !json_is_integer(iid))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the hub's request for an original is malformed"));
    int known = 0;
    return basira_store_original_request(env->st, json_integer_value(cid), json_integer_value(iid),
                                         "hub", env->id, &known, err);
}

typedef struct down_kind {
    const char *kind;
    basira_code (*apply)(const down_env *env, const json_t *payload, basira_error *err);
} down_kind;

static const down_kind kinds[] = {
    {"site_config", apply_site_config},
    {"original_request", apply_original_request},
};

static basira_code refuse(basira_store *st, int64_t id, const char *kind, const char *why,
                          basira_error *err)
{
    char detail[160];
    snprintf(detail, sizeof detail, "hub_down=%" PRId64 " kind=%.32s: %s", id, kind, why);
    basira_actor a = {"hub", "hub"};
    basira_error aerr;
    if (basira_store_audit_append(st, &a, "down_refused", 0, "refused", detail, &aerr))
        return basira_error_set(err, aerr.code, "%s", aerr.message);
    return BASIRA_OK;
}

basira_code sync_down_apply(basira_store *st, const basira_sync_options *o, const char *node,
                            const json_t *items, int64_t *last, basira_sync_report *rep,
                            basira_error *err)
{
    char pk_hex[80];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    size_t pk_len = 0;
    int have_key =
        basira_store_sync_get(st, "hub_key", pk_hex, sizeof pk_hex, NULL) == BASIRA_OK &&
        sodium_hex2bin(pk, sizeof pk, pk_hex, strlen(pk_hex), NULL, &pk_len, NULL) == 0 &&
        pk_len == sizeof pk;
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
    {
        int64_t id = json_integer_value(json_object_get(it, "id"));
        const char *kind = json_string_value(json_object_get(it, "kind"));
        const char *payload = json_string_value(json_object_get(it, "payload"));
        const char *sig_hex = json_string_value(json_object_get(it, "sig"));
        unsigned char sig[crypto_sign_BYTES];
        size_t sl = 0, tl = 0;
        if (id <= *last)
            continue; /* already applied (a repeated answer) */
        char *text = kind && payload ? basira_down_text(node, id, kind, payload, &tl) : NULL;
        int ok = have_key && text && sig_hex &&
                 sodium_hex2bin(sig, sizeof sig, sig_hex, strlen(sig_hex), NULL, &sl, NULL) == 0 &&
                 sl == sizeof sig &&
                 crypto_sign_verify_detached(sig, (const unsigned char *)text, tl, pk) == 0;
        free(text);
        basira_code rc;
        if (!ok) {
            if (!(rc = refuse(st, id, kind ? kind : "?",
                              have_key ? "bad signature" : "no hub key (enrol again)", err)))
                rc = basira_error_set(err, BASIRA_E_TAMPERED,
                                      _("the hub's item %" PRId64
                                        " is not signed by the hub this node enrolled with: "
                                        "refused"),
                                      id);
            return rc;
        }
        const down_kind *k = NULL;
        for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
            if (!strcmp(kinds[j].kind, kind))
                k = &kinds[j];
        if (!k) {
            if (!(rc = refuse(st, id, kind, "unknown kind (upgrade this node)", err)))
                rc = basira_error_set(err, BASIRA_E_UNSUPPORTED,
                                      _("the hub sent an item of kind %s, unknown to this "
                                        "version: upgrade Basira"),
                                      kind);
            return rc;
        }
        json_t *p = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
        down_env env = {st, o, id};
        rc = p ? k->apply(&env, p, err)
               : basira_error_set(err, BASIRA_E_FORMAT, _("the hub's item %" PRId64 " is not JSON"),
                                  id);
        json_decref(p);
        if (rc)
            return rc;
        *last = id;
        if (rep)
            rep->down++;
    }
    return BASIRA_OK;
}
