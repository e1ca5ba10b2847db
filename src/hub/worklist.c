/*
 * worklist.c - what the dermatologists and auditors read at the hub: the
 * worklist across clinics, one case, photos, the nodes' chains; and replies.
 *
 * Worklist order: category (high, medium, low, none), then AI risk index
 * (highest first), then waiting time (oldest first). A case leaves the top of
 * the list once it has a reply.
 */
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *text_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *json_col(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    json_t *j = json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, NULL);
    return j ? j : json_null();
}

static json_t *int_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

static json_t *real_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_real(strtod(PQgetvalue(r, row, col), NULL));
}

#define CASE_SELECT                                                                                \
    "SELECT n.name, c.case_id, c.patient_ref, c.age, c.sex, c.body_site, c.category, "             \
    "c.ai_category, c.ai_risk_index, c.status, c.created_at, c.received_at, "                      \
    "extract(epoch FROM now() - c.received_at)::bigint, "                                          \
    "(SELECT count(*) FROM hub_images i WHERE i.node_id = c.node_id AND i.case_id = c.case_id "    \
    "AND i.photo_sha256 IS NOT NULL), "                                                            \
    "(SELECT count(*) FROM hub_decisions d WHERE d.node_id = c.node_id AND d.case_id = "           \
    "c.case_id), "                                                                                 \
    "(SELECT json_build_object('id', r.id, 'diagnosis', r.diagnosis, 'plan', r.plan, "             \
    "'message', r.message, 'author', r.author, 'replied_at', r.created_at) FROM hub_replies r "    \
    "WHERE r.node_id = c.node_id AND r.case_id = c.case_id ORDER BY r.id DESC LIMIT 1), "          \
    "(SELECT i.photo_sha256 FROM hub_images i WHERE i.node_id = c.node_id AND i.case_id = "        \
    "c.case_id AND i.photo_sha256 IS NOT NULL ORDER BY i.image_id DESC LIMIT 1), "                 \
    "c.history, c.consent "                                                                        \
    "FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id "

static json_t *case_row(PGresult *r, int i)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "node", json_string(PQgetvalue(r, i, 0)));
    json_object_set_new(o, "case_id", int_or_null(r, i, 1));
    json_object_set_new(o, "patient_ref", text_or_null(r, i, 2));
    json_object_set_new(o, "age", int_or_null(r, i, 3));
    json_object_set_new(o, "sex", text_or_null(r, i, 4));
    json_object_set_new(o, "body_site", text_or_null(r, i, 5));
    json_object_set_new(o, "category", text_or_null(r, i, 6));
    json_object_set_new(o, "ai_category", text_or_null(r, i, 7));
    json_object_set_new(o, "risk_index", real_or_null(r, i, 8));
    json_object_set_new(o, "status", text_or_null(r, i, 9));
    json_object_set_new(o, "created_at", text_or_null(r, i, 10));
    json_object_set_new(o, "received_at", text_or_null(r, i, 11));
    json_object_set_new(o, "waiting_s", int_or_null(r, i, 12));
    json_object_set_new(o, "photos", int_or_null(r, i, 13));
    json_object_set_new(o, "decisions", int_or_null(r, i, 14));
    json_object_set_new(o, "reply", json_col(r, i, 15));
    json_object_set_new(o, "thumbnail", text_or_null(r, i, 16));
    json_object_set_new(o, "history", json_col(r, i, 17));
    json_object_set_new(o, "consent", json_col(r, i, 18));
    return o;
}

basira_code basira_hub_cases(basira_hub *hub, json_t **out, basira_error *err)
{
    PGresult *r = NULL;
    basira_code rc = hub_query(
        hub,
        CASE_SELECT "ORDER BY CASE c.category WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN "
                    "'low' THEN 2 ELSE 3 END, c.ai_risk_index DESC NULLS LAST, "
                    "c.received_at, n.name, c.case_id",
        0, NULL, &r, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(r); i++)
        json_array_append_new(arr, case_row(r, i));
    PQclear(r);
    *out = arr;
    return arr ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

basira_code basira_hub_case_get(basira_hub *hub, const char *node, int64_t case_id, json_t **out,
                                basira_error *err)
{
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    const char *vals[] = {node, cid};
    PGresult *r = NULL;
    basira_code rc = hub_query(hub, CASE_SELECT "WHERE n.name = $1 AND c.case_id = $2::bigint", 2,
                               vals, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %s/%" PRId64 " at the hub"),
                                 node, case_id);
    }
    json_t *o = case_row(r, 0);
    PQclear(r);
    if (!o)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    static const char *const lists[][2] = {
        {"images",
         "SELECT coalesce(json_agg(json_build_object('image_id', i.image_id, 'kind', "
         "i.kind, 'created_at', i.created_at, 'result', i.result, 'photo', "
         "i.photo_sha256, 'bytes', p.bytes, 'original_bytes', i.original_bytes, 'original', "
         "i.original_sha256, 'original_requested_by', i.original_requested_by) ORDER BY "
         "i.image_id), '[]') FROM hub_images i JOIN hub_nodes n ON n.id = i.node_id "
         "LEFT JOIN hub_photos p ON p.sha256 = i.photo_sha256 WHERE n.name = $1 AND "
         "i.case_id = $2::bigint"},
        {"decisions", "SELECT coalesce(json_agg(d.decision || jsonb_build_object('seq', d.seq) "
                      "ORDER BY d.seq), '[]') FROM hub_decisions d JOIN hub_nodes n ON n.id = "
                      "d.node_id WHERE n.name = $1 AND d.case_id = $2::bigint"},
        {"replies", "SELECT coalesce(json_agg(json_build_object('id', r.id, 'diagnosis', "
                    "r.diagnosis, 'plan', r.plan, 'message', r.message, 'author', r.author, "
                    "'replied_at', r.created_at) ORDER BY r.id), '[]') FROM hub_replies r JOIN "
                    "hub_nodes n ON n.id = r.node_id WHERE n.name = $1 AND r.case_id = $2::bigint"},
        {"earlier_cases",
         "SELECT coalesce(json_agg(json_build_object('case_id', o.case_id, 'category', "
         "o.category, 'created_at', o.created_at, 'body_site', o.body_site) ORDER BY o.case_id), "
         "'[]') FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id JOIN hub_cases o ON "
         "o.node_id = c.node_id AND o.patient_ref = c.patient_ref AND o.case_id <> c.case_id "
         "WHERE n.name = $1 AND c.case_id = $2::bigint"},
    };
    for (size_t k = 0; !rc && k < sizeof lists / sizeof lists[0]; k++) {
        if (!(rc = hub_query(hub, lists[k][1], 2, vals, &r, err))) {
            json_object_set_new(o, lists[k][0], json_col(r, 0, 0));
            PQclear(r);
        }
    }
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return BASIRA_OK;
}

basira_code basira_hub_photo(basira_hub *hub, const char *sha256_hex, unsigned char **data,
                             size_t *len, char mime[32], basira_error *err)
{
    PGconn *c = NULL;
    basira_code rc = hub_conn_get(hub, &c, err);
    if (rc)
        return rc;
    const char *vals[] = {sha256_hex};
    PGresult *r = PQexecParams(c, "SELECT mime, data FROM hub_photos WHERE sha256 = $1", 1, NULL,
                               vals, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = basira_error_setm(err, BASIRA_E_STORE, N_("hub database error: %s"),
                               PQresultErrorMessage(r));
    else if (PQntuples(r) != 1)
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no such photo at the hub"));
    else if (!(*data = malloc((size_t)PQgetlength(r, 0, 1) + 1)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (!rc) {
        *len = (size_t)PQgetlength(r, 0, 1);
        memcpy(*data, PQgetvalue(r, 0, 1), *len);
        snprintf(mime, 32, "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    hub_conn_put(hub, c);
    return rc;
}

static int text_ok(const char *s, size_t max)
{
    if (!s)
        return 1;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            return 0;
    return n <= max;
}

basira_code basira_hub_reply(basira_hub *hub, const basira_hub_reply_new *rp, int64_t *id,
                             basira_error *err)
{
    static const char *const plans[] = {"urgent_visit", "biopsy", "follow_up", "reassure"};
    int ok = 0;
    for (size_t i = 0; rp->plan && i < 4; i++)
        ok |= !strcmp(rp->plan, plans[i]);
    if (!ok)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("plan must be urgent_visit, biopsy, follow_up or reassure"));
    if (!text_ok(rp->diagnosis, 200) || !text_ok(rp->message, 2000))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the diagnosis is at most 200 characters and the message at "
                                    "most 2000"));
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRId64, rp->case_id);
    const char *vals[] = {rp->node, cid, rp->diagnosis, rp->plan, rp->message, rp->author};
    PGresult *r = NULL;
    basira_code rc =
        hub_query(hub,
                  "INSERT INTO hub_replies(node_id, case_id, diagnosis, plan, message, "
                  "author) SELECT c.node_id, c.case_id, $3, $4, $5, $6 FROM hub_cases c "
                  "JOIN hub_nodes n ON n.id = c.node_id WHERE n.name = $1 AND c.case_id "
                  "= $2::bigint RETURNING id",
                  6, vals, &r, err);
    if (rc)
        return rc;
    if (PQntuples(r) != 1)
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %s/%" PRId64 " at the hub"),
                               rp->node, rp->case_id);
    else if (id)
        *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

basira_code basira_hub_nodes(basira_hub *hub, json_t **out, basira_error *err)
{
    PGresult *r = NULL;
    basira_code rc =
        hub_query(hub,
                  "SELECT n.name, n.public_key IS NOT NULL, n.last_seq, (SELECT count(*) FROM "
                  "hub_audit a WHERE a.node_id = n.id), n.audit_head, n.audit_ok, n.audit_error, "
                  "n.last_seen, n.reply_acked FROM hub_nodes n ORDER BY n.name",
                  0, NULL, &r, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(r); i++)
        json_array_append_new(
            arr,
            json_pack("{s:s, s:b, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "node", PQgetvalue(r, i, 0),
                      "enrolled", PQgetvalue(r, i, 1)[0] == 't', "last_seq", int_or_null(r, i, 2),
                      "audit_entries", int_or_null(r, i, 3), "audit_head", text_or_null(r, i, 4),
                      "audit_ok", PQgetvalue(r, i, 5)[0] == 't', "audit_error",
                      text_or_null(r, i, 6), "last_seen", text_or_null(r, i, 7), "reply_acked",
                      int_or_null(r, i, 8)));
    PQclear(r);
    *out = arr;
    return arr ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}
