/*
 * releases.c - the hub's registry of model releases: create, approve (two
 * roles, two people), sign, stage and roll back per clinic, offer to nodes;
 * every step in the oversight audit trail of the same transaction.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/release.h"
#include "core/i18n.h"
#include "oversight_internal.h"

static basira_code bad_id(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                             N_("release ids are 1 to 64 letters, digits, '.', '_' or '-'"));
}

/* ---- create ---- */

typedef struct create_ctx {
    const basira_hub_release_new *r;
    const char *sha, *b64, *bytes;
} create_ctx;

static basira_code create_tx(PGconn *c, void *ctx, basira_error *err)
{
    const create_ctx *x = ctx;
    const char *vals[] = {x->r->id, x->r->model_name, x->r->model_version,  x->sha,
                          x->bytes, x->b64,           x->r->certify_sha256, x->r->by};
    basira_code rc = hub_exec(c,
                              "INSERT INTO hub_releases(id, model_name, model_version, sha256, "
                              "bytes, model, certify_sha256, created_by) VALUES($1, $2, $3, $4, "
                              "$5::bigint, decode($6, 'base64'), $7, $8)",
                              8, vals, NULL, err);
    if (rc == BASIRA_E_CONFLICT)
        return basira_error_setm(err, BASIRA_E_CONFLICT, N_("release %s exists already"), x->r->id);
    if (rc)
        return rc;
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s?}", "release_id", x->r->id, "sha256", x->sha,
                  "model_version", x->r->model_version, "certify_sha256", x->r->certify_sha256);
    rc = d ? hub_oversight_audit(c, x->r->by, "release_create", NULL, d, err)
           : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_decref(d);
    return rc;
}

basira_code basira_hub_release_create(basira_hub *hub, const basira_hub_release_new *r,
                                      basira_error *err)
{
    if (!r || !hub_name_ok(r->id))
        return bad_id(err);
    if (!r->model || !r->model_len || !r->model_name || !r->model_version || !r->by)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!r->certify_sha256 || strlen(r->certify_sha256) != 64)
        return basira_error_setm(err, BASIRA_E_PRECONDITION,
                                 N_("a release needs the certification report of its candidate "
                                    "(basira certify)"));
    unsigned char h[crypto_hash_sha256_BYTES];
    char sha[65], bytes[24];
    crypto_hash_sha256(h, r->model, r->model_len);
    sodium_bin2hex(sha, sizeof sha, h, sizeof h);
    snprintf(bytes, sizeof bytes, "%zu", r->model_len);
    size_t blen = sodium_base64_encoded_len(r->model_len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(blen);
    if (!b64)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    sodium_bin2base64(b64, blen, r->model, r->model_len, sodium_base64_VARIANT_ORIGINAL);
    create_ctx x = {r, sha, b64, bytes};
    basira_code rc = hub_tx(hub, create_tx, &x, err);
    free(b64);
    return rc;
}

/* ---- approve ---- */

typedef struct approve_ctx {
    const char *id, *user, *role;
} approve_ctx;

static basira_code approve_tx(PGconn *c, void *ctx, basira_error *err)
{
    const approve_ctx *x = ctx;
    PGresult *r = NULL;
    const char *v1[] = {x->id};
    basira_code rc =
        hub_exec(c, "SELECT signed_at IS NOT NULL FROM hub_releases WHERE id = $1 FOR UPDATE", 1,
                 v1, &r, err);
    if (rc)
        return rc;
    int found = PQntuples(r) == 1, is_signed = found && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!found)
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no release %s"), x->id);
    if (is_signed)
        return basira_error_setm(err, BASIRA_E_CONFLICT, N_("release %s is signed already"), x->id);
    const char *v2[] = {x->id, x->user};
    if ((rc = hub_exec(
             c, "SELECT 1 FROM hub_release_approvals WHERE release_id = $1 AND username = $2", 2,
             v2, &r, err)))
        return rc;
    int twice = PQntuples(r) > 0;
    PQclear(r);
    if (twice)
        return basira_error_setm(err, BASIRA_E_FORBIDDEN,
                                 N_("the two approvals of a release must come from two people"));
    const char *v3[] = {x->id, x->role, x->user};
    rc = hub_exec(
        c, "INSERT INTO hub_release_approvals(release_id, role, username) VALUES($1, $2, $3)", 3,
        v3, NULL, err);
    if (rc == BASIRA_E_CONFLICT)
        return basira_error_setm(err, BASIRA_E_CONFLICT,
                                 N_("release %s already has the approval of a %s"), x->id, x->role);
    if (rc)
        return rc;
    json_t *d = json_pack("{s:s, s:s}", "release_id", x->id, "role", x->role);
    rc = d ? hub_oversight_audit(c, x->user, "release_approve", NULL, d, err)
           : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_decref(d);
    return rc;
}

basira_code basira_hub_release_approve(basira_hub *hub, const char *id, const char *username,
                                       const char *password, basira_error *err)
{
    if (!hub_name_ok(id))
        return bad_id(err);
    basira_hub_role role;
    basira_code rc = basira_hub_authenticate(hub, username, password, &role, err);
    if (rc)
        return rc;
    if (role != BASIRA_HUB_DATA_STEWARD && role != BASIRA_HUB_MEDICAL_LEAD)
        return basira_error_setm(err, BASIRA_E_FORBIDDEN,
                                 N_("only a data steward or a medical lead approves a release"));
    approve_ctx x = {id, username, basira_hub_role_name(role)};
    return hub_tx(hub, approve_tx, &x, err);
}

/* ---- sign ---- */

typedef struct sign_ctx {
    const char *id, *sk, *by;
} sign_ctx;

static basira_code sign_tx(PGconn *c, void *ctx, basira_error *err)
{
    const sign_ctx *x = ctx;
    PGresult *r = NULL;
    const char *v1[] = {x->id};
    basira_code rc = hub_exec(
        c,
        "SELECT model_name, model_version, sha256, bytes, signed_at IS NOT NULL, "
        "(SELECT username FROM hub_release_approvals WHERE release_id = $1 AND role = "
        "'data_steward'), (SELECT username FROM hub_release_approvals WHERE release_id = $1 AND "
        "role = 'medical_lead') FROM hub_releases WHERE id = $1 FOR UPDATE",
        1, v1, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no release %s"), x->id);
    }
    if (PQgetvalue(r, 0, 4)[0] == 't') {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_CONFLICT, N_("release %s is signed already"), x->id);
    }
    if (PQgetisnull(r, 0, 5) || PQgetisnull(r, 0, 6)) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_PRECONDITION,
                                 N_("release %s lacks the approval of a data steward or of a "
                                    "medical lead"),
                                 x->id);
    }
    basira_release_info in;
    memset(&in, 0, sizeof in);
    snprintf(in.release_id, sizeof in.release_id, "%s", x->id);
    snprintf(in.model_name, sizeof in.model_name, "%s", PQgetvalue(r, 0, 0));
    snprintf(in.model_version, sizeof in.model_version, "%s", PQgetvalue(r, 0, 1));
    snprintf(in.sha256, sizeof in.sha256, "%s", PQgetvalue(r, 0, 2));
    size_t bytes = (size_t)strtoull(PQgetvalue(r, 0, 3), NULL, 10);
    snprintf(in.data_steward, sizeof in.data_steward, "%s", PQgetvalue(r, 0, 5));
    snprintf(in.medical_lead, sizeof in.medical_lead, "%s", PQgetvalue(r, 0, 6));
    PQclear(r);
    json_t *m = basira_release_manifest(&in, bytes, NULL);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    char sig[BASIRA_RELEASE_SIG_HEX];
    if (!(rc = basira_release_sign(text, strlen(text), x->sk, sig, err))) {
        const char *v2[] = {x->id, text, sig};
        rc = hub_exec(c,
                      "UPDATE hub_releases SET manifest = $2, signature = $3, signed_at = now() "
                      "WHERE id = $1",
                      3, v2, NULL, err);
    }
    free(text);
    if (rc)
        return rc;
    json_t *d = json_pack("{s:s, s:s}", "release_id", x->id, "sha256", in.sha256);
    rc = d ? hub_oversight_audit(c, x->by, "release_sign", NULL, d, err)
           : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_decref(d);
    return rc;
}

basira_code basira_hub_release_sign(basira_hub *hub, const char *id, const char *sk_hex,
                                    const char *by, basira_error *err)
{
    if (!hub_name_ok(id))
        return bad_id(err);
    sign_ctx x = {id, sk_hex, by ? by : "hub"};
    return hub_tx(hub, sign_tx, &x, err);
}

/* ---- stage and roll back ---- */

typedef struct stage_ctx {
    const char *id, *clinic, *by;
    int rollback;
} stage_ctx;

static basira_code node_id_of(PGconn *c, const char *clinic, char id[24], basira_error *err)
{
    PGresult *r = NULL;
    const char *v[] = {clinic};
    basira_code rc = hub_exec(c, "SELECT id FROM hub_nodes WHERE name = $1", 1, v, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no clinic node %s"), clinic);
    }
    snprintf(id, 24, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return BASIRA_OK;
}

static basira_code stage_tx(PGconn *c, void *ctx, basira_error *err)
{
    stage_ctx *x = ctx;
    char nid[24];
    basira_code rc = node_id_of(c, x->clinic, nid, err);
    if (rc)
        return rc;
    PGresult *r = NULL;
    char prev[65] = "";
    if (x->rollback) {
        const char *v[] = {nid};
        /* The latest staged release that is not the current one. */
        if ((rc = hub_exec(c,
                           "SELECT release_id FROM hub_release_stages WHERE node_id = $1 AND "
                           "release_id <> (SELECT release_id FROM hub_release_stages WHERE "
                           "node_id = $1 ORDER BY id DESC LIMIT 1) ORDER BY id DESC LIMIT 1",
                           1, v, &r, err)))
            return rc;
        int found = PQntuples(r) == 1;
        if (found)
            snprintf(prev, sizeof prev, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!found)
            return basira_error_setm(err, BASIRA_E_NOT_FOUND,
                                     N_("clinic %s has no earlier release to go back to"),
                                     x->clinic);
        x->id = prev;
    }
    const char *v1[] = {x->id};
    if ((rc = hub_exec(c, "SELECT signed_at IS NOT NULL FROM hub_releases WHERE id = $1", 1, v1, &r,
                       err)))
        return rc;
    int found = PQntuples(r) == 1, is_signed = found && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!found)
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no release %s"), x->id);
    if (!is_signed)
        return basira_error_setm(err, BASIRA_E_PRECONDITION,
                                 N_("release %s is not signed: it cannot be staged"), x->id);
    const char *action = x->rollback ? "rollback" : "stage";
    const char *v2[] = {x->id, nid, action, x->by};
    if ((rc = hub_exec(c,
                       "INSERT INTO hub_release_stages(release_id, node_id, action, by_user) "
                       "VALUES($1, $2, $3, $4)",
                       4, v2, NULL, err)))
        return rc;
    json_t *d = json_pack("{s:s}", "release_id", x->id);
    rc = d ? hub_oversight_audit(c, x->by, x->rollback ? "release_rollback" : "release_stage",
                                 x->clinic, d, err)
           : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_decref(d);
    return rc;
}

basira_code basira_hub_release_stage(basira_hub *hub, const char *id, const char *clinic,
                                     const char *by, basira_error *err)
{
    if (!hub_name_ok(id))
        return bad_id(err);
    stage_ctx x = {id, clinic ? clinic : "", by ? by : "hub", 0};
    return hub_tx(hub, stage_tx, &x, err);
}

basira_code basira_hub_release_rollback(basira_hub *hub, const char *clinic, const char *by,
                                        basira_error *err)
{
    stage_ctx x = {NULL, clinic ? clinic : "", by ? by : "hub", 1};
    return hub_tx(hub, stage_tx, &x, err);
}

/* ---- the registry ---- */

static json_t *val(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *num(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

basira_code basira_hub_releases(basira_hub *hub, json_t **out, basira_error *err)
{
    *out = NULL;
    static const char *const sql[] = {
        "SELECT id, model_name, model_version, sha256, bytes, certify_sha256, created_by, "
        "extract(epoch FROM created_at)::bigint, extract(epoch FROM signed_at)::bigint FROM "
        "hub_releases ORDER BY created_at, id",
        "SELECT release_id, role, username, extract(epoch FROM approved_at)::bigint FROM "
        "hub_release_approvals ORDER BY approved_at",
        "SELECT s.release_id, n.name, s.action, s.by_user, extract(epoch FROM s.at)::bigint FROM "
        "hub_release_stages s JOIN hub_nodes n ON n.id = s.node_id ORDER BY s.id",
        "SELECT n.name, i.result->'model'->>'sha256', i.result->'model'->>'version', "
        "min(i.created_at), max(i.created_at), count(*) FROM hub_images i JOIN hub_nodes n ON "
        "n.id = i.node_id WHERE i.result ? 'model' GROUP BY 1, 2, 3 ORDER BY 1, 4",
        "SELECT n.name, r.release_id, r.sha256, r.outcome, r.detail, extract(epoch FROM "
        "r.at)::bigint FROM hub_release_reports r JOIN hub_nodes n ON n.id = r.node_id ORDER BY "
        "r.id",
    };
    PGresult *r[5] = {NULL};
    basira_code rc = BASIRA_OK;
    for (int q = 0; q < 5 && !rc; q++)
        rc = hub_query(hub, sql[q], 0, NULL, &r[q], err);
    json_t *rel = json_array(), *ran = json_array(), *rep = json_array();
    for (int i = 0; !rc && i < PQntuples(r[0]); i++) {
        const char *id = PQgetvalue(r[0], i, 0);
        json_t *ap = json_array(), *st = json_array();
        for (int j = 0; j < PQntuples(r[1]); j++)
            if (!strcmp(PQgetvalue(r[1], j, 0), id))
                json_array_append_new(ap, json_pack("{s:o, s:o, s:o}", "role", val(r[1], j, 1),
                                                    "by", val(r[1], j, 2), "at", num(r[1], j, 3)));
        for (int j = 0; j < PQntuples(r[2]); j++)
            if (!strcmp(PQgetvalue(r[2], j, 0), id))
                json_array_append_new(st, json_pack("{s:o, s:o, s:o, s:o}", "clinic",
                                                    val(r[2], j, 1), "action", val(r[2], j, 2),
                                                    "by", val(r[2], j, 3), "at", num(r[2], j, 4)));
        json_array_append_new(
            rel,
            json_pack("{s:o, s:{s:o, s:o}, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                      val(r[0], i, 0), "model", "name", val(r[0], i, 1), "version", val(r[0], i, 2),
                      "sha256", val(r[0], i, 3), "bytes", num(r[0], i, 4), "certify_sha256",
                      val(r[0], i, 5), "created_by", val(r[0], i, 6), "created_at", num(r[0], i, 7),
                      "signed_at", num(r[0], i, 8), "approvals", ap, "stages", st));
    }
    for (int i = 0; !rc && i < PQntuples(r[3]); i++)
        json_array_append_new(
            ran, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "clinic", val(r[3], i, 0), "sha256",
                           val(r[3], i, 1), "model_version", val(r[3], i, 2), "first",
                           num(r[3], i, 3), "last", num(r[3], i, 4), "results", num(r[3], i, 5)));
    for (int i = 0; !rc && i < PQntuples(r[4]); i++)
        json_array_append_new(rep, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "clinic",
                                             val(r[4], i, 0), "release_id", val(r[4], i, 1),
                                             "sha256", val(r[4], i, 2), "outcome", val(r[4], i, 3),
                                             "detail", val(r[4], i, 4), "at", num(r[4], i, 5)));
    for (int q = 0; q < 5; q++)
        PQclear(r[q]);
    if (!rc)
        *out = json_pack("{s:o, s:o, s:o}", "releases", rel, "ran", ran, "reports", rep);
    else {
        json_decref(rel);
        json_decref(ran);
        json_decref(rep);
    }
    return rc || *out ? rc : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

/* ---- the nodes' sync message ---- */

typedef struct offer_ctx {
    const char *node;
    const void *bytes;
    size_t len;
    const char *sig;
    const json_t *body;
    json_t *release;
} offer_ctx;

static basira_code offer_tx(PGconn *c, void *ctx, basira_error *err)
{
    offer_ctx *x = ctx;
    char nid[24];
    basira_code rc = hub_node_verify(c, x->node, x->bytes, x->len, x->sig, nid, err);
    if (rc)
        return rc;
    json_t *report = json_object_get(x->body, "report");
    if (json_is_object(report)) {
        const char *outcome = json_string_value(json_object_get(report, "outcome"));
        const char *detail = json_string_value(json_object_get(report, "detail"));
        char d[512];
        snprintf(d, sizeof d, "%s", detail ? detail : "");
        const char *v[] = {nid,
                           json_string_value(json_object_get(report, "release_id")),
                           json_string_value(json_object_get(report, "sha256")),
                           outcome,
                           d,
                           json_string_value(json_object_get(report, "offer_sha256"))};
        if (!outcome || strlen(outcome) > 32)
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("a release report is malformed"));
        if ((rc = hub_exec(c,
                           "INSERT INTO hub_release_reports(node_id, release_id, sha256, outcome, "
                           "detail, offer_sha256) VALUES($1, left($2, 64), left($3, 64), $4, $5, "
                           "left($6, 64))",
                           6, v, NULL, err)))
            return rc;
    }
    const char *v[] = {nid};
    PGresult *r = NULL;
    if ((rc = hub_exec(c,
                       "SELECT r.id, r.sha256, r.manifest, r.signature, encode(r.model, "
                       "'base64') FROM hub_release_stages s JOIN hub_releases r ON r.id = "
                       "s.release_id WHERE s.node_id = $1 ORDER BY s.id DESC LIMIT 1",
                       1, v, &r, err)))
        return rc;
    const char *installed = json_string_value(json_object_get(x->body, "installed"));
    int offer = PQntuples(r) == 1 && (!installed || strcmp(installed, PQgetvalue(r, 0, 1)));
    /*
     * An offer this node refused since its last staging (same manifest, same signature)
     * is not sent again: the node would download the whole model at every round only to
     * refuse it again. A new signature or a new staging offers it anew.
     */
    if (offer) {
        char fp[65];
        basira_release_offer_fingerprint(PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3), fp);
        const char *v2[] = {nid, PQgetvalue(r, 0, 0), fp};
        PGresult *q = NULL;
        if ((rc = hub_exec(c,
                           "SELECT 1 FROM hub_release_reports WHERE node_id = $1 AND release_id = "
                           "$2 AND outcome = 'refused' AND offer_sha256 = $3 AND at >= (SELECT "
                           "max(at) FROM hub_release_stages WHERE node_id = $1) LIMIT 1",
                           3, v2, &q, err))) {
            PQclear(r);
            return rc;
        }
        offer = PQntuples(q) == 0;
        PQclear(q);
    }
    if (offer)
        x->release =
            json_pack("{s:o, s:o, s:o, s:o, s:o}", "id", val(r, 0, 0), "sha256", val(r, 0, 1),
                      "manifest", val(r, 0, 2), "signature", val(r, 0, 3), "model", val(r, 0, 4));
    PQclear(r);
    return BASIRA_OK;
}

basira_code basira_hub_release_offer(basira_hub *hub, const char *node, const void *signed_bytes,
                                     size_t signed_len, const char *sig_hex, const json_t *body,
                                     json_t **answer, basira_error *err)
{
    *answer = NULL;
    const char *bn = json_string_value(json_object_get(body, "node"));
    json_t *inst = json_object_get(body, "installed");
    if (!bn || strcmp(bn, node ? node : "") ||
        (inst && !json_is_null(inst) && !json_is_string(inst)))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("a release request is {\"node\", \"installed\"}"));
    offer_ctx x = {node, signed_bytes, signed_len, sig_hex, body, NULL};
    basira_code rc = hub_tx(hub, offer_tx, &x, err);
    if (rc) {
        json_decref(x.release);
        return rc;
    }
    *answer = json_pack("{s:o}", "release", x.release ? x.release : json_null());
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}
