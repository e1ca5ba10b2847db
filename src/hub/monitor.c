/*
 * monitor.c - the drift monitor over the hub's synced cases (the statistics are
 * src/drift's), and the hub's oversight audit trail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/i18n.h"
#include "oversight_internal.h"

basira_code hub_oversight_audit(PGconn *c, const char *actor, const char *action,
                                const char *clinic, const json_t *detail, basira_error *err)
{
    char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    if (detail && !d)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    const char *vals[] = {actor, action, clinic, d};
    basira_code rc = hub_exec(c,
                              "INSERT INTO hub_oversight_audit(actor, action, clinic, detail) "
                              "VALUES($1, $2, $3, $4::jsonb)",
                              4, vals, NULL, err);
    free(d);
    return rc;
}

/* One hub_images row into c; 0 when it holds no analysis (an error result). */
static int from_row(const json_t *ref, PGresult *r, int row, basira_drift_case *c)
{
    memset(c, 0, sizeof *c);
    json_t *res = json_loads(PQgetvalue(r, row, 4), 0, NULL);
    int ok = basira_drift_case_from_result(res, json_object_get(ref, "classes"), c);
    json_decref(res);
    if (!ok)
        return 0;
    snprintf(c->clinic, sizeof c->clinic, "%s", PQgetvalue(r, row, 0));
    c->ts = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    snprintf(c->photo_kind, sizeof c->photo_kind, "%s", PQgetvalue(r, row, 2));
    snprintf(c->body_site, sizeof c->body_site, "%s", PQgetvalue(r, row, 3));
    c->outcome =
        PQgetisnull(r, row, 5) ? -1 : basira_drift_reference_outcome(ref, PQgetvalue(r, row, 5));
    return 1;
}

basira_code basira_hub_drift_cases(basira_hub *hub, const json_t *ref, basira_drift_case **out,
                                   size_t *n, basira_error *err)
{
    *out = NULL;
    *n = 0;
    PGresult *r = NULL;
    basira_code rc = hub_query(
        hub,
        "SELECT n.name, coalesce(i.created_at, 0), coalesce(i.kind, ''), "
        "coalesce(c.body_site, ''), i.result::text, (SELECT rp.diagnosis FROM hub_replies rp "
        "WHERE rp.node_id = i.node_id AND rp.case_id = i.case_id ORDER BY rp.id DESC LIMIT 1) "
        "FROM hub_images i JOIN hub_cases c ON c.node_id = i.node_id AND c.case_id = i.case_id "
        "JOIN hub_nodes n ON n.id = i.node_id WHERE i.result IS NOT NULL "
        "ORDER BY n.name, i.created_at, i.image_id",
        0, NULL, &r, err);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    basira_drift_case *cs = calloc(rows ? (size_t)rows : 1, sizeof *cs);
    if (!cs) {
        PQclear(r);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    size_t m = 0;
    for (int i = 0; i < rows; i++)
        m += (size_t)from_row(ref, r, i, &cs[m]);
    PQclear(r);
    *out = cs;
    *n = m;
    return BASIRA_OK;
}

typedef struct audit_ctx {
    const json_t *clinics;
} audit_ctx;

static basira_code audit_alerts(PGconn *c, void *ctx, basira_error *err)
{
    const audit_ctx *a = ctx;
    size_t i;
    json_t *cl;
    json_array_foreach(a->clinics, i, cl)
    {
        const char *level = json_string_value(json_object_get(cl, "alert"));
        if (!level || !strcmp(level, "none"))
            continue;
        json_t *weeks = json_object_get(cl, "weeks");
        json_t *last = json_array_get(weeks, json_array_size(weeks) - 1);
        json_t *detail = json_pack("{s:s, s:O, s:O, s:O}", "alert", level, "first_alert_week",
                                   json_object_get(cl, "first_alert_week"), "week_start",
                                   json_object_get(last, "week_start"), "reasons",
                                   json_object_get(last, "reasons"));
        if (!detail)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        basira_code rc = hub_oversight_audit(
            c, "monitor", !strcmp(level, "alert") ? "drift_alert" : "drift_watch",
            json_string_value(json_object_get(cl, "clinic")), detail, err);
        json_decref(detail);
        if (rc)
            return rc;
    }
    return BASIRA_OK;
}

basira_code basira_hub_monitor(basira_hub *hub, const json_t *ref, json_t **out, basira_error *err)
{
    *out = NULL;
    basira_code rc = basira_drift_reference_check(ref, err);
    if (rc)
        return rc;
    basira_drift_case *cs = NULL;
    size_t n = 0;
    if ((rc = basira_hub_drift_cases(hub, ref, &cs, &n, err)))
        return rc;
    json_t *res = NULL;
    rc = basira_drift_monitor(ref, cs, n, &res, err);
    free(cs);
    if (rc)
        return rc;
    audit_ctx a = {res};
    /* An alert that cannot be recorded is not reported: fail closed. */
    if ((rc = hub_tx(hub, audit_alerts, &a, err))) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return BASIRA_OK;
}
