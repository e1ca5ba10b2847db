/*
 * apply.c - applying a node's signed push (changes and audit entries) and
 * answering its pull (replies), each in one PostgreSQL transaction.
 *
 * Rules (see hub.h):
 *   - a change is applied once: (node, seq) is the primary key of hub_changes,
 *     and the node's row, locked FOR UPDATE, holds the last applied seq, so two
 *     deliveries of the same batch racing each other apply it once;
 *   - per-case order follows from applying in seq order with no gap;
 *   - decisions are never overwritten: each version is its own row, the case's
 *     current category is the one of the highest seq (conflicting decisions
 *     made offline are both kept in the history);
 *   - "erase" removes the case and everything hanging from it (replies too);
 *     "photo_erase" removes one photo (the node's retention for photos);
 *   - audit entries must continue the chain stored for the node: prev_hash is
 *     the stored head and the hash is recomputed here. A broken chain marks the
 *     node (audit_ok false, audit_error) and stops taking its audit entries;
 *     its clinical changes still apply (they are signed by the node).
 */
#include "basira/store.h"
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Text of a JSON value for a jsonb parameter (malloc'd), NULL for null/absent. */
static char *dump(const json_t *v)
{
    return v && !json_is_null(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static basira_code apply_case(PGconn *c, const char *node_id, int64_t case_id, const json_t *rec,
                              basira_error *err)
{
    if (!json_is_object(rec))
        return BASIRA_OK; /* a tombstone: the case was erased at the node before it left */
    char cid[24], age[16];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    json_t *a = json_object_get(rec, "age");
    snprintf(age, sizeof age, "%d", (int)json_integer_value(a));
    char *history = dump(json_object_get(rec, "history"));
    char *consent = dump(json_object_get(rec, "consent"));
    const json_t *ri = json_object_get(rec, "ai_risk_index");
    char risk[32];
    snprintf(risk, sizeof risk, "%.17g", json_number_value(ri));
    const char *vals[] = {node_id,
                          cid,
                          str(rec, "patient_ref") ? str(rec, "patient_ref") : "?",
                          json_is_integer(a) ? age : NULL,
                          str(rec, "sex"),
                          str(rec, "body_site"),
                          history,
                          consent ? consent : "{}",
                          str(rec, "created_at"),
                          str(rec, "ai_risk"),
                          json_is_number(ri) ? risk : NULL,
                          str(rec, "risk"),
                          str(rec, "status")};
    basira_code rc = hub_exec(
        c,
        "INSERT INTO hub_cases(node_id, case_id, patient_ref, age, sex, body_site, history, "
        "consent, created_at, ai_category, ai_risk_index, category, status) VALUES($1, $2, $3, "
        "$4::int, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11::float8, $12, $13) ON CONFLICT "
        "(node_id, case_id) DO UPDATE SET patient_ref = $3, age = $4::int, sex = $5, body_site = "
        "$6, history = $7::jsonb, consent = $8::jsonb, updated_at = now()",
        13, vals, NULL, err);
    free(history);
    free(consent);
    return rc;
}

static basira_code apply_image(PGconn *c, const char *node_id, int64_t case_id, int64_t image_id,
                               const json_t *ch, const json_t *rec, basira_error *err)
{
    if (!json_is_object(rec))
        return BASIRA_OK; /* deleted at the node since */
    char cid[24], iid[24], created[24], orig[24], risk[32];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    snprintf(iid, sizeof iid, "%" PRId64, image_id);
    snprintf(created, sizeof created, "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(rec, "created_at")));
    basira_code rc = BASIRA_OK;
    const char *sha = NULL;
    char sha_hex[65];
    const json_t *photo = json_object_get(ch, "photo");
    if (json_is_object(photo) && !str(photo, "data")) {
        /* Uploaded in chunks before the batch (upload.c): named by its hash. */
        const char *pv[] = {str(photo, "sha256")};
        PGresult *r = NULL;
        if ((rc = hub_exec(c, "SELECT 1 FROM hub_photos WHERE sha256 = $1", 1, pv, &r, err)))
            return rc;
        int there = PQntuples(r) == 1;
        PQclear(r);
        if (!there)
            return basira_error_setm(err, BASIRA_E_CONFLICT,
                                     N_("a photo of the batch was not uploaded; send it again"));
        snprintf(sha_hex, sizeof sha_hex, "%s", pv[0]);
        sha = sha_hex;
        snprintf(orig, sizeof orig, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(photo, "original_bytes")));
    } else if (json_is_object(photo)) {
        const char *b64 = str(photo, "data"), *mime = str(photo, "mime");
        size_t n64 = b64 ? strlen(b64) : 0, len = 0;
        unsigned char *bin = malloc(n64 / 4 * 3 + 3);
        unsigned char h[crypto_hash_sha256_BYTES];
        if (!bin)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        if (!b64 || !mime ||
            sodium_base642bin(bin, n64 / 4 * 3 + 3, b64, n64, NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len == 0) {
            free(bin);
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("a photo in the batch is malformed"));
        }
        crypto_hash_sha256(h, bin, len);
        sodium_bin2hex(sha_hex, sizeof sha_hex, h, sizeof h);
        if (str(photo, "sha256") && strcmp(str(photo, "sha256"), sha_hex)) {
            free(bin);
            return basira_error_setm(err, BASIRA_E_FORMAT,
                                     N_("a photo arrived damaged (its SHA-256 differs)"));
        }
        char nbytes[24];
        snprintf(nbytes, sizeof nbytes, "%zu", len);
        const char *pv[] = {sha_hex, mime, nbytes, (const char *)bin};
        int lens[] = {0, 0, 0, (int)len};
        int fmts[] = {0, 0, 0, 1};
        PGresult *r = PQexecParams(c,
                                   "INSERT INTO hub_photos(sha256, mime, bytes, data) VALUES($1, "
                                   "$2, $3::int, $4) ON CONFLICT DO NOTHING",
                                   4, NULL, pv, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = basira_error_setm(err, BASIRA_E_STORE, N_("hub database error: %s"),
                                   PQresultErrorMessage(r));
        PQclear(r);
        free(bin);
        if (rc)
            return rc;
        sha = sha_hex;
        snprintf(orig, sizeof orig, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(photo, "original_bytes")));
    }
    const json_t *result = json_object_get(rec, "result");
    char *res = dump(result);
    /* The triage document: {"risk": {"index": 0..100, "category": "low|medium|high", ...}}. */
    const json_t *tri = json_object_get(result, "risk");
    const json_t *ri = json_object_get(tri, "index");
    snprintf(risk, sizeof risk, "%.17g", json_number_value(ri));
    const char *cat = sha ? str(tri, "category") : NULL;
    const char *vals[] = {node_id, iid, cid, str(rec, "kind"),
                          created, res, sha, sha ? orig : NULL};
    rc = hub_exec(c,
                  "INSERT INTO hub_images(node_id, image_id, case_id, kind, created_at, result, "
                  "photo_sha256, original_bytes) VALUES($1, $2, $3, $4, $5::bigint, $6::jsonb, $7, "
                  "$8::bigint) ON CONFLICT DO NOTHING",
                  8, vals, NULL, err);
    free(res);
    if (!rc && cat) {
        /* An analysed photo sets the AI category; a clinician's decision still wins. */
        const char *uv[] = {node_id, cid, cat, json_is_number(ri) ? risk : NULL};
        rc = hub_exec(c,
                      "UPDATE hub_cases SET ai_category = $3, ai_risk_index = $4::float8, "
                      "category = CASE WHEN EXISTS(SELECT 1 FROM hub_decisions d WHERE "
                      "d.node_id = $1 AND d.case_id = $2) THEN category ELSE $3 END, status = "
                      "CASE WHEN status = 'new' THEN 'triaged' ELSE status END, updated_at = now() "
                      "WHERE node_id = $1 AND case_id = $2",
                      4, uv, NULL, err);
    }
    return rc;
}

static basira_code apply_decision(PGconn *c, const char *node_id, const char *seq, int64_t case_id,
                                  const json_t *rec, basira_error *err)
{
    if (!json_is_object(rec))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("a decision in the batch is malformed"));
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    char *d = dump(rec);
    const char *vals[] = {node_id, seq, cid, d, str(rec, "category")};
    basira_code rc = hub_exec(
        c,
        "WITH ins AS (INSERT INTO hub_decisions(node_id, seq, case_id, decision) SELECT $1, "
        "$2::bigint, $3, $4::jsonb WHERE EXISTS(SELECT 1 FROM hub_cases WHERE node_id = $1 AND "
        "case_id = $3) ON CONFLICT DO NOTHING RETURNING 1) UPDATE hub_cases SET category = $5, "
        "status = 'reviewed', updated_at = now() WHERE node_id = $1 AND case_id = $3 AND "
        "EXISTS(SELECT 1 FROM ins)",
        5, vals, NULL, err);
    free(d);
    return rc;
}

static basira_code apply_erase(PGconn *c, const char *node_id, int64_t case_id, int64_t image_id,
                               basira_error *err)
{
    char cid[24], iid[24];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    snprintf(iid, sizeof iid, "%" PRId64, image_id);
    const char *vals[] = {node_id, cid, iid};
    /*
     * The photos the erased rows referred to are deleted once nothing else
     * refers to them (content-addressed: another case may share one). Only
     * those rows are touched, so erasures do not lock the whole photo table.
     */
    PGresult *r = NULL;
    basira_code rc = hub_exec(c,
                              "SELECT coalesce(array_agg(DISTINCT s) FILTER (WHERE s IS NOT "
                              "NULL), '{}') FROM hub_images, unnest(ARRAY[photo_sha256, "
                              "original_sha256]) s WHERE node_id = $1 AND case_id = $2::bigint "
                              "AND ($3::bigint = 0 OR image_id = $3::bigint)",
                              3, vals, &r, err);
    if (rc)
        return rc;
    char *shas = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!shas)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    rc = hub_exec(c,
                  image_id ? "UPDATE hub_images SET photo_sha256 = NULL, original_sha256 = NULL "
                             "WHERE node_id = $1 AND "
                             "case_id = $2::bigint AND image_id = $3::bigint"
                           : "DELETE FROM hub_cases WHERE node_id = $1 AND case_id = $2::bigint "
                             "AND $3::bigint = 0",
                  3, vals, NULL, err);
    const char *pv[] = {shas};
    if (!rc)
        rc = hub_exec(c,
                      "DELETE FROM hub_photos p WHERE p.sha256 = ANY($1::text[]) AND NOT "
                      "EXISTS(SELECT 1 FROM hub_images x WHERE x.photo_sha256 = p.sha256 OR "
                      "x.original_sha256 = p.sha256)",
                      1, pv, NULL, err);
    free(shas);
    /* The audit entries stay: they carry ids and actions, and the chain must keep verifying. */
    return rc;
}

typedef struct push_ctx {
    const char *node;
    const void *bytes;
    size_t len;
    const char *sig;
    const json_t *body;
    int64_t last_seq, audit_last;
    int audit_ok, applied, duplicates;
} push_ctx;

static basira_code apply_audit(PGconn *c, const char *node_id, push_ctx *p, basira_error *err)
{
    const json_t *entries = json_object_get(p->body, "audit");
    PGresult *r = NULL;
    const char *nv[] = {node_id};
    basira_code rc = hub_exec(
        c, "SELECT audit_last_id, coalesce(audit_head, ''), audit_ok FROM hub_nodes WHERE id = $1",
        1, nv, &r, err);
    if (rc)
        return rc;
    int64_t last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    char head[80];
    snprintf(head, sizeof head, "%s", PQgetvalue(r, 0, 1));
    p->audit_ok = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    const char *why = NULL;
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e)
    {
        if (!p->audit_ok)
            break;
        int64_t id = json_integer_value(json_object_get(e, "id"));
        if (id <= last)
            continue;
        const char *prev = str(e, "prev_hash"), *hash = str(e, "hash");
        char h[65];
        if (id != last + 1 && last != 0) {
            why = "gap";
            break; /* resent from the acknowledged id next time */
        }
        basira_audit_entry_hash(id, json_integer_value(json_object_get(e, "ts")), str(e, "actor"),
                                str(e, "action"), json_integer_value(json_object_get(e, "case_id")),
                                str(e, "ip"), str(e, "outcome"), str(e, "detail"), prev, h);
        if (!prev || !hash || (last != 0 && strcmp(prev, head)) || strcmp(hash, h)) {
            p->audit_ok = 0;
            char msg[160];
            snprintf(msg, sizeof msg, "entry %" PRId64 " %s", id,
                     !hash || strcmp(hash, h) ? "does not match its content"
                                              : "does not follow the previous entry");
            const char *bv[] = {node_id, msg};
            if ((rc = hub_exec(
                     c, "UPDATE hub_nodes SET audit_ok = false, audit_error = $2 WHERE id = $1", 2,
                     bv, NULL, err)))
                return rc;
            break;
        }
        char sid[24], ts[24], cid[24];
        snprintf(sid, sizeof sid, "%" PRId64, id);
        snprintf(ts, sizeof ts, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(e, "ts")));
        snprintf(cid, sizeof cid, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(e, "case_id")));
        const char *av[] = {node_id,          sid,  ts,           str(e, "actor"),
                            str(e, "action"), cid,  str(e, "ip"), str(e, "outcome"),
                            str(e, "detail"), prev, hash};
        if ((rc = hub_exec(c,
                           "INSERT INTO hub_audit(node_id, id, ts, actor, action, case_id, ip, "
                           "outcome, detail, prev_hash, hash) VALUES($1, $2::bigint, $3::bigint, "
                           "$4, $5, nullif($6::bigint, 0), $7, $8, $9, $10, $11)",
                           11, av, NULL, err)))
            return rc;
        last = id;
        snprintf(head, sizeof head, "%s", hash);
    }
    (void)why;
    p->audit_last = last;
    char sl[24];
    snprintf(sl, sizeof sl, "%" PRId64, last);
    const char *uv[] = {node_id, sl, head};
    return hub_exec(c,
                    "UPDATE hub_nodes SET audit_last_id = $2::bigint, audit_head = nullif($3, '') "
                    "WHERE id = $1",
                    3, uv, NULL, err);
}

static basira_code push_tx(PGconn *c, void *ctx, basira_error *err)
{
    push_ctx *p = ctx;
    char node_id[24];
    basira_code rc = hub_node_verify(c, p->node, p->bytes, p->len, p->sig, node_id, err);
    if (rc)
        return rc;
    PGresult *r = NULL;
    const char *nv[] = {node_id};
    if ((rc = hub_exec(c, "SELECT last_seq FROM hub_nodes WHERE id = $1", 1, nv, &r, err)))
        return rc;
    p->last_seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    p->applied = p->duplicates = 0;
    const json_t *changes = json_object_get(p->body, "changes");
    size_t i;
    const json_t *ch;
    json_array_foreach(changes, i, ch)
    {
        int64_t seq = json_integer_value(json_object_get(ch, "seq"));
        if (seq <= p->last_seq) {
            p->duplicates++;
            continue;
        }
        if (seq != p->last_seq + 1)
            break; /* a gap (reordered delivery): the node resends from last_seq */
        const char *kind = str(ch, "kind");
        int64_t case_id = json_integer_value(json_object_get(ch, "case_id"));
        const json_t *rec = json_object_get(ch, "record");
        char sseq[24], scid[24];
        snprintf(sseq, sizeof sseq, "%" PRId64, seq);
        snprintf(scid, sizeof scid, "%" PRId64, case_id);
        if (!kind || case_id <= 0)
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("change %" PRId64 " is malformed"),
                                     seq);
        if (!strcmp(kind, "case"))
            rc = apply_case(c, node_id, case_id, rec, err);
        else if (!strcmp(kind, "image"))
            rc = apply_image(c, node_id, case_id,
                             json_integer_value(json_object_get(ch, "image_id")), ch, rec, err);
        else if (!strcmp(kind, "decision"))
            rc = apply_decision(c, node_id, sseq, case_id, rec, err);
        else if (!strcmp(kind, "erase"))
            rc = apply_erase(c, node_id, case_id, 0, err);
        else if (!strcmp(kind, "photo_erase"))
            rc = apply_erase(c, node_id, case_id,
                             json_integer_value(json_object_get(ch, "image_id")), err);
        else
            rc = basira_error_setm(err, BASIRA_E_FORMAT,
                                   N_("change %" PRId64 " has unknown kind %s"), seq, kind);
        const char *cv[] = {node_id, sseq, kind, scid};
        if (rc || (rc = hub_exec(c,
                                 "INSERT INTO hub_changes(node_id, seq, kind, case_id) VALUES($1, "
                                 "$2::bigint, $3, $4::bigint)",
                                 4, cv, NULL, err)))
            return rc;
        p->last_seq = seq;
        p->applied++;
    }
    char sl[24];
    snprintf(sl, sizeof sl, "%" PRId64, p->last_seq);
    const char *uv[] = {node_id, sl};
    if ((rc = hub_exec(
             c, "UPDATE hub_nodes SET last_seq = $2::bigint, last_seen = now() WHERE id = $1", 2,
             uv, NULL, err)))
        return rc;
    return apply_audit(c, node_id, p, err);
}

basira_code basira_hub_push(basira_hub *hub, const char *node, const void *signed_bytes,
                            size_t signed_len, const char *sig_hex, const json_t *body,
                            json_t **answer, basira_error *err)
{
    *answer = NULL;
    basira_code rc = basira_hub_batch_check(body, err);
    if (rc)
        return rc;
    if (strcmp(str(body, "node"), node ? node : ""))
        return basira_error_setm(err, BASIRA_E_AUTH,
                                 N_("unknown node or bad signature: the batch was not applied"));
    push_ctx p = {node, signed_bytes, signed_len, sig_hex, body, 0, 0, 1, 0, 0};
    rc = hub_tx(hub, push_tx, &p, err);
    if (rc)
        return rc;
    *answer = json_pack("{s:I, s:I, s:b, s:i, s:i}", "acked_seq", (json_int_t)p.last_seq,
                        "acked_audit", (json_int_t)p.audit_last, "audit_ok", p.audit_ok, "applied",
                        p.applied, "duplicates", p.duplicates);
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

typedef struct pull_ctx {
    const char *node;
    const void *bytes;
    size_t len;
    const char *sig;
    int64_t after, down_after; /* down_after < 0: a node that does not take down items */
    json_t *replies, *down;
} pull_ctx;

static basira_code pull_tx(PGconn *c, void *ctx, basira_error *err)
{
    pull_ctx *p = ctx;
    char node_id[24], after[24];
    basira_code rc = hub_node_verify(c, p->node, p->bytes, p->len, p->sig, node_id, err);
    if (rc)
        return rc;
    snprintf(after, sizeof after, "%" PRId64, p->after);
    const char *vals[] = {node_id, after};
    if ((rc = hub_exec(c,
                       "UPDATE hub_nodes SET reply_acked = greatest(reply_acked, $2::bigint), "
                       "last_seen = now() WHERE id = $1",
                       2, vals, NULL, err)))
        return rc;
    PGresult *r = NULL;
    if ((rc = hub_exec(c,
                       "SELECT id, case_id, diagnosis, plan, message, author, "
                       "extract(epoch FROM created_at)::bigint FROM hub_replies WHERE node_id = "
                       "$1 AND id > $2::bigint ORDER BY id LIMIT 100",
                       2, vals, &r, err)))
        return rc;
    json_array_clear(p->replies);
    json_array_clear(p->down);
    if (p->down_after >= 0 && (rc = hub_down_list(c, node_id, p->down_after, p->down, err))) {
        PQclear(r);
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_pack(
            "{s:I, s:I, s:s?, s:s, s:s?, s:s, s:I}", "id",
            (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10), "case_id",
            (json_int_t)strtoll(PQgetvalue(r, i, 1), NULL, 10), "diagnosis",
            PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2), "plan", PQgetvalue(r, i, 3),
            "message", PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4), "author",
            PQgetvalue(r, i, 5), "replied_at", (json_int_t)strtoll(PQgetvalue(r, i, 6), NULL, 10));
        json_array_append_new(p->replies, o);
    }
    PQclear(r);
    return BASIRA_OK;
}

basira_code basira_hub_pull(basira_hub *hub, const char *node, const void *signed_bytes,
                            size_t signed_len, const char *sig_hex, const json_t *body,
                            json_t **answer, basira_error *err)
{
    *answer = NULL;
    json_t *after = json_object_get(body, "after");
    if (!json_is_integer(after) || json_integer_value(after) < 0 || !str(body, "node") ||
        strcmp(str(body, "node"), node ? node : ""))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("a pull is {\"node\", \"after\": N}"));
    const json_t *da = json_object_get(body, "down_after");
    if (da && (!json_is_integer(da) || json_integer_value(da) < 0))
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("a pull is {\"node\", \"after\": N}"));
    pull_ctx p = {node,
                  signed_bytes,
                  signed_len,
                  sig_hex,
                  json_integer_value(after),
                  da ? json_integer_value(da) : -1,
                  json_array(),
                  json_array()};
    if (!p.replies || !p.down) {
        json_decref(p.replies);
        json_decref(p.down);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_code rc = hub_tx(hub, pull_tx, &p, err);
    if (rc) {
        json_decref(p.replies);
        json_decref(p.down);
        return rc;
    }
    *answer = json_pack("{s:o, s:o}", "replies", p.replies, "down", p.down);
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}
