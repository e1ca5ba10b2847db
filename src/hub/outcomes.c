/*
 * outcomes.c - what the indicators need beyond the synced cases: histology
 * outcomes, each dermatologist's first opening of a case (the start of the
 * review time) and the programme's cost parameters (hub_settings "costs").
 */
#include "basira/hub_indicators.h"
#include "core/i18n.h"
#include "hub_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The case's rows are found by the node's name; BASIRA_E_NOT_FOUND when no row was written. */
static basira_code one_case_row(basira_hub *hub, const char *sql, const char *node, int64_t case_id,
                                int n, const char *a, const char *b, basira_error *err)
{
    char cid[24];
    snprintf(cid, sizeof cid, "%" PRId64, case_id);
    const char *vals[] = {node ? node : "", cid, a, b};
    PGresult *r = NULL;
    basira_code rc = hub_query(hub, sql, n, vals, &r, err);
    if (!rc && PQntuples(r) != 1)
        rc = basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no case %s/%" PRId64 " at the hub"),
                               node ? node : "", case_id);
    PQclear(r);
    return rc;
}

basira_code basira_hub_outcome(basira_hub *hub, const char *node, int64_t case_id,
                               const char *histology, const char *by, basira_error *err)
{
    if (!histology || (strcmp(histology, "malignant") && strcmp(histology, "benign")))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("histology must be malignant or benign"));
    if (!by || !*by)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("an outcome needs the name of who recorded it"));
    return one_case_row(
        hub,
        "INSERT INTO hub_outcomes(node_id, case_id, histology, recorded_by) "
        "SELECT c.node_id, c.case_id, $3, $4 FROM hub_cases c JOIN hub_nodes n ON "
        "n.id = c.node_id WHERE n.name = $1 AND c.case_id = $2::bigint RETURNING id",
        node, case_id, 4, histology, by, err);
}

basira_code basira_hub_case_opened(basira_hub *hub, const char *node, int64_t case_id,
                                   const char *user, basira_error *err)
{
    /* An opening already recorded keeps its time (the review started then); no row is rewritten. */
    return one_case_row(
        hub,
        "WITH k AS (SELECT c.node_id, c.case_id FROM hub_cases c JOIN hub_nodes n ON "
        "n.id = c.node_id WHERE n.name = $1 AND c.case_id = $2::bigint), ins AS "
        "(INSERT INTO hub_case_views(node_id, case_id, username) SELECT node_id, "
        "case_id, $3 FROM k ON CONFLICT DO NOTHING) SELECT 1 FROM k",
        node, case_id, 3, user ? user : "", NULL, err);
}

basira_code basira_hub_costs_parse(const char *json_text, basira_hub_costs *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = json_text ? json_loads(json_text, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("cost parameters are a JSON object {\"currency\", "
                                    "\"per_case\", \"per_review\", \"per_biopsy\", "
                                    "\"per_urgent_visit\"}"));
    }
    static const char *const keys[] = {"per_case", "per_review", "per_biopsy", "per_urgent_visit"};
    double *dst[] = {&out->per_case, &out->per_review, &out->per_biopsy, &out->per_urgent_visit};
    basira_code rc = BASIRA_OK;
    const json_t *cur = json_object_get(j, "currency");
    if (cur && (!json_is_string(cur) || json_string_length(cur) >= sizeof out->currency))
        rc = basira_error_setm(err, BASIRA_E_FORMAT,
                               N_("the currency is a text of at most 15 characters"));
    else
        snprintf(out->currency, sizeof out->currency, "%s", cur ? json_string_value(cur) : "");
    for (size_t i = 0; !rc && i < 4; i++) {
        const json_t *v = json_object_get(j, keys[i]);
        if (!v)
            continue;
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < 0)
            rc = basira_error_setm(err, BASIRA_E_FORMAT,
                                   N_("the cost parameter %s must be a number of at least 0"),
                                   keys[i]);
        else
            *dst[i] = d;
    }
    json_decref(j);
    return rc;
}

basira_code basira_hub_costs_get(basira_hub *hub, basira_hub_costs *out, int *found,
                                 basira_error *err)
{
    *found = 0;
    memset(out, 0, sizeof *out);
    PGresult *r = NULL;
    basira_code rc = hub_query(hub, "SELECT value::text FROM hub_settings WHERE key = 'costs'", 0,
                               NULL, &r, err);
    if (!rc && PQntuples(r) == 1) {
        rc = basira_hub_costs_parse(PQgetvalue(r, 0, 0), out, err);
        *found = !rc;
    }
    PQclear(r);
    return rc;
}

basira_code basira_hub_costs_set(basira_hub *hub, const basira_hub_costs *c, basira_error *err)
{
    json_t *j = json_pack("{s:s, s:f, s:f, s:f, s:f}", "currency", c->currency, "per_case",
                          c->per_case, "per_review", c->per_review, "per_biopsy", c->per_biopsy,
                          "per_urgent_visit", c->per_urgent_visit);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    const char *vals[] = {text};
    basira_code rc = hub_query(hub,
                               "INSERT INTO hub_settings(key, value) VALUES('costs', $1::jsonb) ON "
                               "CONFLICT(key) DO UPDATE SET value = $1::jsonb, updated_at = now()",
                               1, vals, NULL, err);
    free(text);
    return rc;
}
