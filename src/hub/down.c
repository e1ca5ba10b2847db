/*
 * down.c - what the hub sends down to a node (include/basira/down.h): its
 * signing key, signed down items, and the two kinds it makes today: a
 * clinic's site configuration and a dermatologist's request for an original.
 *
 * The hub's Ed25519 key pair is made on first use and kept in hub_keys (the
 * hub's database is its root of trust already: it holds every node's public
 * key). Nodes learn the public key at enrolment; those enrolled before the hub
 * had it ask for it once, in a request signed with their key (key_refresh).
 */
#include "basira/down.h"
#include "basira/site.h"
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key pair, made when absent (two hubs racing: one insert wins, both read it back). */
static basira_code hub_keys(PGconn *c, unsigned char sk[crypto_sign_SECRETKEYBYTES],
                            char pk_hex[65], basira_error *err)
{
    PGresult *r = NULL;
    basira_code rc =
        hub_exec(c, "SELECT public_key, secret_key FROM hub_keys WHERE id = 1", 0, NULL, &r, err);
    if (!rc && PQntuples(r) == 0) {
        PQclear(r);
        r = NULL;
        unsigned char pk[crypto_sign_PUBLICKEYBYTES], nsk[crypto_sign_SECRETKEYBYTES];
        char pkh[2 * sizeof pk + 1], skh[2 * sizeof nsk + 1];
        crypto_sign_keypair(pk, nsk);
        sodium_bin2hex(pkh, sizeof pkh, pk, sizeof pk);
        sodium_bin2hex(skh, sizeof skh, nsk, sizeof nsk);
        sodium_memzero(nsk, sizeof nsk);
        const char *vals[] = {pkh, skh};
        rc = hub_exec(c,
                      "INSERT INTO hub_keys(id, public_key, secret_key) VALUES(1, $1, $2) ON "
                      "CONFLICT DO NOTHING",
                      2, vals, NULL, err);
        sodium_memzero(skh, sizeof skh);
        if (!rc)
            rc = hub_exec(c, "SELECT public_key, secret_key FROM hub_keys WHERE id = 1", 0, NULL,
                          &r, err);
    }
    if (rc)
        return rc;
    size_t n = 0;
    int ok = PQntuples(r) == 1 && strlen(PQgetvalue(r, 0, 0)) == 64 &&
             sodium_hex2bin(sk, crypto_sign_SECRETKEYBYTES, PQgetvalue(r, 0, 1),
                            strlen(PQgetvalue(r, 0, 1)), NULL, &n, NULL) == 0 &&
             n == crypto_sign_SECRETKEYBYTES;
    if (ok)
        snprintf(pk_hex, 65, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok ? BASIRA_OK
              : basira_error_setm(err, BASIRA_E_TAMPERED, N_("the hub's signing key is damaged"));
}

static basira_code key_tx(PGconn *c, void *ctx, basira_error *err)
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    basira_code rc = hub_keys(c, sk, ctx, err);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

basira_code basira_hub_public_key(basira_hub *hub, char out[65], basira_error *err)
{
    return hub_tx(hub, key_tx, out, err);
}

typedef struct refresh_ctx {
    const char *node, *sig;
    const void *bytes;
    size_t len;
    char pk[65];
} refresh_ctx;

static basira_code refresh_tx(PGconn *c, void *ctx, basira_error *err)
{
    refresh_ctx *k = ctx;
    char nid[24];
    basira_code rc = hub_node_verify(c, k->node, k->bytes, k->len, k->sig, nid, err);
    return rc ? rc : key_tx(c, k->pk, err);
}

basira_code basira_hub_key_refresh(basira_hub *hub, const char *node, const void *signed_bytes,
                                   size_t signed_len, const char *sig_hex, const json_t *body,
                                   json_t **answer, basira_error *err)
{
    *answer = NULL;
    const char *bn = json_string_value(json_object_get(body, "node"));
    if (!bn || strcmp(bn, node ? node : ""))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("a request for the hub's key is {\"node\"}"));
    refresh_ctx k = {.node = node, .sig = sig_hex, .bytes = signed_bytes, .len = signed_len};
    basira_code rc = hub_tx(hub, refresh_tx, &k, err);
    if (rc)
        return rc;
    *answer = json_pack("{s:s, s:s}", "node", node, "hub_key", k.pk);
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

typedef struct down_ctx {
    const char *node, *kind, *payload, *by;
    int64_t id;
} down_ctx;

basira_code hub_down_insert(PGconn *c, const char *node_id, const char *node, const char *kind,
                            const char *payload, const char *by, int64_t *id, basira_error *err)
{
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    char pk[65];
    basira_code rc = hub_keys(c, sk, pk, err);
    PGresult *r = NULL;
    if (!rc)
        rc = hub_exec(c, "SELECT nextval('hub_down_id_seq')", 0, NULL, &r, err);
    if (rc) {
        sodium_memzero(sk, sizeof sk);
        return rc;
    }
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    size_t len = 0;
    char *text = basira_down_text(node, *id, kind, payload, &len);
    if (!text) {
        sodium_memzero(sk, sizeof sk);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    unsigned char sig[crypto_sign_BYTES];
    char sig_hex[2 * sizeof sig + 1], sid[24];
    crypto_sign_detached(sig, NULL, (const unsigned char *)text, len, sk);
    sodium_memzero(sk, sizeof sk);
    free(text);
    sodium_bin2hex(sig_hex, sizeof sig_hex, sig, sizeof sig);
    snprintf(sid, sizeof sid, "%" PRId64, *id);
    const char *vals[] = {sid, node_id, kind, payload, sig_hex, by};
    return hub_exec(c,
                    "INSERT INTO hub_down(id, node_id, kind, payload, sig, created_by) "
                    "VALUES($1::bigint, $2::bigint, $3, $4, $5, $6)",
                    6, vals, NULL, err);
}

/* The id of an enrolled node by name. */
static basira_code node_id_of(PGconn *c, const char *node, char id[24], basira_error *err)
{
    PGresult *r = NULL;
    const char *vals[] = {node ? node : ""};
    basira_code rc = hub_exec(
        c, "SELECT id FROM hub_nodes WHERE name = $1 AND public_key IS NOT NULL", 1, vals, &r, err);
    if (rc)
        return rc;
    int found = PQntuples(r) == 1;
    if (found)
        snprintf(id, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return found ? BASIRA_OK
                 : basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no enrolled node named %s"),
                                     node ? node : "");
}

static basira_code down_tx(PGconn *c, void *ctx, basira_error *err)
{
    down_ctx *d = ctx;
    char nid[24];
    basira_code rc = node_id_of(c, d->node, nid, err);
    return rc ? rc : hub_down_insert(c, nid, d->node, d->kind, d->payload, d->by, &d->id, err);
}

basira_code basira_hub_down_add(basira_hub *hub, const char *node, const char *kind,
                                const char *payload, const char *by, int64_t *id, basira_error *err)
{
    if (!kind || !*kind || strlen(kind) > BASIRA_DOWN_KIND_MAX || !payload ||
        strlen(payload) > BASIRA_DOWN_PAYLOAD_MAX)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("a down item needs a kind and a payload of at most 1 MiB"));
    down_ctx d = {node, kind, payload, by ? by : "hub", 0};
    basira_code rc = hub_tx(hub, down_tx, &d, err);
    if (!rc && id)
        *id = d.id;
    return rc;
}

basira_code basira_hub_site_config(basira_hub *hub, const char *node, const json_t *config,
                                   const char *by, int64_t *id, basira_error *err)
{
    if (!json_is_object(config))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("a site configuration is a JSON object"));
    /* Checked as the node will check it: a clinic never gets settings it would refuse. */
    basira_site_config site;
    basira_code rc = basira_site_config_from_json(config, "site configuration", &site, err);
    basira_site_config_free(&site);
    if (rc)
        return rc;
    char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    rc = basira_hub_down_add(hub, node, "site_config", text, by, id, err);
    free(text);
    return rc;
}

typedef struct request_ctx {
    const char *node, *by;
    int64_t case_id, image_id, id;
} request_ctx;

static basira_code request_tx(PGconn *c, void *ctx, basira_error *err)
{
    request_ctx *q = ctx;
    char nid[24], cid[24], iid[24];
    basira_code rc = node_id_of(c, q->node, nid, err);
    if (rc)
        return rc;
    snprintf(cid, sizeof cid, "%" PRId64, q->case_id);
    snprintf(iid, sizeof iid, "%" PRId64, q->image_id);
    const char *vals[] = {nid, cid, iid, q->by};
    PGresult *r = NULL;
    /* Only a photo that is at the hub and whose original is not: once per photo. */
    if ((rc = hub_exec(c,
                       "UPDATE hub_images SET original_requested_by = $4, original_requested_at = "
                       "now() WHERE node_id = $1 AND case_id = $2::bigint AND image_id = "
                       "$3::bigint AND photo_sha256 IS NOT NULL RETURNING original_sha256 IS NOT "
                       "NULL",
                       4, vals, &r, err)))
        return rc;
    int found = PQntuples(r) == 1, have = found && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!found)
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no such photo at the hub"));
    if (have)
        return basira_error_setm(err, BASIRA_E_CONFLICT, N_("the original is at the hub already"));
    char payload[96];
    snprintf(payload, sizeof payload, "{\"case_id\":%" PRId64 ",\"image_id\":%" PRId64 "}",
             q->case_id, q->image_id);
    return hub_down_insert(c, nid, q->node, "original_request", payload, q->by, &q->id, err);
}

basira_code basira_hub_original_request(basira_hub *hub, const char *node, int64_t case_id,
                                        int64_t image_id, const char *by, basira_error *err)
{
    request_ctx q = {node, by ? by : "hub", case_id, image_id, 0};
    return hub_tx(hub, request_tx, &q, err);
}

basira_code hub_down_list(PGconn *c, const char *node_id, int64_t after, json_t *out,
                          basira_error *err)
{
    char sa[24];
    snprintf(sa, sizeof sa, "%" PRId64, after);
    const char *vals[] = {node_id, sa};
    basira_code rc = hub_exec(c,
                              "UPDATE hub_nodes SET down_acked = greatest(down_acked, $2::bigint) "
                              "WHERE id = $1",
                              2, vals, NULL, err);
    PGresult *r = NULL;
    if (!rc)
        rc = hub_exec(c,
                      "SELECT id, kind, payload, sig FROM hub_down WHERE node_id = $1 AND id > "
                      "$2::bigint ORDER BY id LIMIT 20",
                      2, vals, &r, err);
    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_pack("{s:I, s:s, s:s, s:s}", "id",
                                             (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                             "kind", PQgetvalue(r, i, 1), "payload",
                                             PQgetvalue(r, i, 2), "sig", PQgetvalue(r, i, 3)));
    PQclear(r);
    return BASIRA_OK;
}
