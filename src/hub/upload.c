/*
 * upload.c - photos in chunks, so that a link cut inside a photo costs at
 * most the chunk in flight; and the stored originals that follow the
 * size-budgeted copies.
 *
 * A chunk is a signed POST /sync/v1/chunk whose body is one JSON line
 * {"node","sha256","total","offset","mime"} then the chunk's bytes. The hub
 * keeps the chunks of an unfinished photo (hub_upload_chunks, per node and
 * SHA-256) and answers how many bytes it holds ("have"): a chunk at another
 * offset is not stored, the node continues from "have". An empty chunk is a
 * question (after a restart the node asks where to resume). When the last
 * byte arrives the photo is assembled, its SHA-256 checked, and it becomes a
 * hub_photos row; the change that refers to it names it by hash.
 */
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk_ctx {
    const char *node, *sig;
    const void *bytes;
    size_t len;
    basira_hub_chunk_head h;
    int64_t have;
    int complete;
} chunk_ctx;

static basira_code chunk_tx(PGconn *c, void *ctx, basira_error *err)
{
    chunk_ctx *k = ctx;
    char nid[24];
    basira_code rc = hub_node_verify(c, k->node, k->bytes, k->len, k->sig, nid, err);
    if (rc)
        return rc;
    const char *sha = k->h.sha256, *mime = k->h.mime;
    int64_t off = k->h.offset;
    char stotal[24], soff[24];
    snprintf(stotal, sizeof stotal, "%" PRId64, k->h.total);
    const char *pv[] = {sha};
    PGresult *r = NULL;
    if ((rc = hub_exec(c, "SELECT 1 FROM hub_photos WHERE sha256 = $1", 1, pv, &r, err)))
        return rc;
    int have_photo = PQntuples(r) == 1;
    PQclear(r);
    if (have_photo) {
        k->have = k->h.total;
        k->complete = 1;
        return BASIRA_OK;
    }
    const char *vals[] = {nid, sha};
    if ((rc = hub_exec(c,
                       "SELECT coalesce(sum(length(data)), 0) FROM hub_upload_chunks WHERE "
                       "node_id = $1 AND sha256 = $2",
                       2, vals, &r, err)))
        return rc;
    k->have = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (k->h.data_len && off == k->have && k->have + (int64_t)k->h.data_len <= k->h.total) {
        snprintf(soff, sizeof soff, "%" PRId64, off);
        const char *iv[] = {nid, sha, soff, (const char *)k->h.data};
        int lens[] = {0, 0, 0, (int)k->h.data_len};
        int fmts[] = {0, 0, 0, 1};
        r = PQexecParams(c,
                         "INSERT INTO hub_upload_chunks(node_id, sha256, off, data) VALUES($1, "
                         "$2, $3::bigint, $4)",
                         4, NULL, iv, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = basira_error_setm(err, BASIRA_E_STORE, N_("hub database error: %s"),
                                   PQresultErrorMessage(r));
        PQclear(r);
        if (rc)
            return rc;
        k->have += (int64_t)k->h.data_len;
    }
    if (k->have < k->h.total)
        return BASIRA_OK;
    /* Complete: assembled and checked by PostgreSQL itself, then the chunks go. */
    const char *av[] = {nid, sha, mime, stotal};
    if ((rc = hub_exec(c,
                       "INSERT INTO hub_photos(sha256, mime, bytes, data) SELECT $2, $3, $4::int, "
                       "string_agg(data, ''::bytea ORDER BY off) FROM hub_upload_chunks WHERE "
                       "node_id = $1 AND sha256 = $2 HAVING encode(sha256(string_agg(data, "
                       "''::bytea ORDER BY off)), 'hex') = $2 ON CONFLICT DO NOTHING RETURNING 1",
                       4, av, &r, err)))
        return rc;
    int stored = PQntuples(r) == 1;
    PQclear(r);
    if ((rc = hub_exec(c, "DELETE FROM hub_upload_chunks WHERE node_id = $1 AND sha256 = $2", 2,
                       vals, NULL, err)))
        return rc;
    if (!stored) {
        /* Damaged on the way: the chunks are dropped (committed), the node starts again. */
        k->have = 0;
        return BASIRA_OK;
    }
    k->complete = 1;
    return BASIRA_OK;
}

basira_code basira_hub_chunk(basira_hub *hub, const char *node, const void *signed_bytes,
                             size_t signed_len, const char *sig_hex, json_t **answer,
                             basira_error *err)
{
    *answer = NULL;
    chunk_ctx k = {node, sig_hex, signed_bytes, signed_len, {{0}, {0}, 0, 0, NULL, 0}, 0, 0};
    basira_code rc = basira_hub_chunk_parse(signed_bytes, signed_len, node, &k.h, err);
    if (!rc)
        rc = hub_tx(hub, chunk_tx, &k, err);
    if (rc)
        return rc;
    *answer = json_pack("{s:I, s:b}", "have", (json_int_t)k.have, "complete", k.complete);
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

typedef struct original_ctx {
    const char *node, *sig;
    const void *bytes;
    size_t len;
    const json_t *body;
    int stored;
} original_ctx;

static basira_code original_tx(PGconn *c, void *ctx, basira_error *err)
{
    original_ctx *o = ctx;
    char nid[24], iid[24];
    basira_code rc = hub_node_verify(c, o->node, o->bytes, o->len, o->sig, nid, err);
    if (rc)
        return rc;
    snprintf(iid, sizeof iid, "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(o->body, "image_id")));
    const char *vals[] = {nid, iid, json_string_value(json_object_get(o->body, "sha256"))};
    PGresult *r = NULL;
    if ((rc = hub_exec(c,
                       "UPDATE hub_images SET original_sha256 = $3 WHERE node_id = $1 AND "
                       "image_id = $2::bigint AND photo_sha256 IS NOT NULL AND EXISTS(SELECT 1 "
                       "FROM hub_photos WHERE sha256 = $3) RETURNING 1",
                       3, vals, &r, err)))
        return rc;
    o->stored = PQntuples(r) == 1;
    PQclear(r);
    if (!o->stored) {
        /* The photo was erased meanwhile (or never came): its original is not kept either. */
        const char *pv[] = {vals[2]};
        rc = hub_exec(c,
                      "DELETE FROM hub_photos p WHERE p.sha256 = $1 AND NOT EXISTS(SELECT 1 FROM "
                      "hub_images x WHERE x.photo_sha256 = p.sha256 OR x.original_sha256 = "
                      "p.sha256)",
                      1, pv, NULL, err);
    }
    return rc;
}

basira_code basira_hub_original(basira_hub *hub, const char *node, const void *signed_bytes,
                                size_t signed_len, const char *sig_hex, const json_t *body,
                                json_t **answer, basira_error *err)
{
    *answer = NULL;
    const json_t *iid = json_object_get(body, "image_id");
    if (!json_is_integer(iid) || json_integer_value(iid) < 1 ||
        !hub_hex64(json_object_get(body, "sha256")) ||
        strcmp(json_string_value(json_object_get(body, "node")) ?: "", node ? node : ""))
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("an original is {\"node\", \"image_id\", \"sha256\"}"));
    original_ctx o = {node, sig_hex, signed_bytes, signed_len, body, 0};
    basira_code rc = hub_tx(hub, original_tx, &o, err);
    if (rc)
        return rc;
    *answer = json_pack("{s:b}", "stored", o.stored);
    return *answer ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}
