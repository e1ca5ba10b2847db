/*
 * http_indicators.c - the dashboard's API: the indicators of
 * basira_hub_indicators_compute as JSON or CSV, filtered by the query string.
 */
#include "http_indicators.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basira/hub_indicators.h"
#include "core/i18n.h"

typedef struct lang_ctx {
    const basira_translator *tr;
    const char *lang;
} lang_ctx;

static const char *translate(const char *msgid, void *ctx)
{
    const lang_ctx *l = ctx;
    return basira_translate(l->tr, l->lang, msgid);
}

/* A query-string value; "" counts as absent (the dashboard's "all"). */
static const char *arg(struct MHD_Connection *c, const char *k)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
    return v && *v ? v : NULL;
}

basira_code hub_http_indicators(basira_hub *hub, struct MHD_Connection *c, const char *suffix,
                                const basira_translator *tr, char **body, size_t *len,
                                const char **type, basira_error *err)
{
    *body = NULL;
    *len = 0;
    int format = !strcmp(suffix, "")       ? 0
                 : !strcmp(suffix, ".csv") ? 1
                 : !strcmp(suffix, ".pdf") ? 2
                                           : -1;
    static const char *const types[] = {"application/json", "text/csv; charset=utf-8",
                                        "application/pdf"};
    if (format < 0)
        return basira_error_setm(err, BASIRA_E_NOT_FOUND, N_("no such resource"));
    *type = types[format];
    basira_hub_indicator_query q = {0};
    basira_hub_costs costs;
    int have = 0;
    basira_code rc = basira_hub_group_by_parse(arg(c, "by"), &q.by, err);
    if (!rc)
        rc = basira_hub_costs_get(hub, &costs, &have, err);
    if (rc)
        return rc;
    q.costs = have ? &costs : NULL;
    q.from = arg(c, "from"), q.to = arg(c, "to"), q.clinic = arg(c, "clinic");
    q.sex = arg(c, "sex"), q.phototype = arg(c, "phototype"), q.age_band = arg(c, "age_band");
    q.as_of = (int64_t)time(NULL);
    const char *as_of = arg(c, "as_of");
    if (as_of) {
        struct tm tm = {0};
        const char *end = strptime(as_of, "%Y-%m-%d", &tm);
        if (!end || *end)
            return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                     N_("--from and --to are dates YYYY-MM-DD"));
        q.as_of = (int64_t)timegm(&tm) + 86399;
    }
    lang_ctx l = {tr, basira_language_negotiate(
                          arg(c, "lang"),
                          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language"),
                          basira_language())};
    basira_hub_indicators ind;
    if ((rc = basira_hub_indicators_compute(hub, &q, &ind, err)))
        return rc;
    if (format == 1) {
        rc = basira_hub_indicators_csv(&ind, translate, &l, body, len, err);
    } else if (format == 2) {
        char sub[512], filters[300];
        snprintf(filters, sizeof filters, "%s %s %s %s", q.clinic ? q.clinic : "",
                 q.sex ? q.sex : "", q.phototype ? q.phototype : "", q.age_band ? q.age_band : "");
        basira_msg m;
        basira_msg_set(&m, N_("groups: %s · first visits from %s to %s · filters: %s"),
                       arg(c, "by") ? arg(c, "by") : "none", q.from ? q.from : "…",
                       q.to ? q.to : "…", filters);
        basira_msg_text(&m, tr, l.lang, sub, sizeof sub);
        rc = basira_hub_indicators_pdf(&ind, sub, translate, &l, !strcmp(l.lang, "ar"),
                                       (unsigned char **)body, len, err);
    } else {
        json_t *groups = basira_hub_indicators_json(&ind, translate, &l);
        json_t *doc = groups ? json_pack("{s:o, s:b}", "groups", groups, "costs", have) : NULL;
        *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        *len = *body ? strlen(*body) : 0;
        rc = *body ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_hub_indicators_free(&ind);
    return rc;
}
