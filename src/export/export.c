/*
 * export.c - the open export of cases: CSV (RFC 4180) and JSON.
 *
 * A clinic must be able to leave Basira with its data: the columns are
 * documented in docs/export.md and never reordered (new ones are appended).
 * Cells that a spreadsheet would run as a formula (starting with = + - @, or a
 * tab/carriage return that some programs strip first) get a leading apostrophe:
 * a patient reference or a note typed as "=HYPERLINK(...)" must stay text.
 * Numbers written by Basira itself (ages, probabilities) are never negative,
 * so the rule never changes a real number.
 */
#include "basira/export.h"
#include "core/i18n.h"
#include "export/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One CSV cell, quoted when needed (RFC 4180), formula-safe. NULL = empty cell. */
static void cell(sbuf *b, const char *v, int last)
{
    if (v && *v) {
        int danger = strchr("=+-@\t\r", v[0]) != NULL;
        int quote = danger || strpbrk(v, ",\"\r\n") != NULL;
        if (quote)
            put(b, "\"", 1);
        if (danger)
            put(b, "'", 1);
        for (const char *s = v; *s; s++) {
            put(b, s, 1);
            if (*s == '"')
                put(b, "\"", 1); /* a quote inside a quoted cell is doubled */
        }
        if (quote)
            put(b, "\"", 1);
    }
    put(b, last ? "\r\n" : ",", last ? 2 : 1);
}

/* A number with prec digits after the point (fixed) or prec significant digits (general). */
static void num_cell(sbuf *b, double v, int prec, int general)
{
    char t[64];
    if (isfinite(v)) {
        snprintf(t, sizeof t, general ? "%.*g" : "%.*f", prec, v);
        cell(b, t, 0);
    } else {
        cell(b, NULL, 0);
    }
}

static const char *tristate(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : NULL;
}

/* The columns, in order (docs/export.md describes each). */
static const char *const columns[] = {"case_id",
                                      "patient_ref",
                                      "age",
                                      "sex",
                                      "body_site",
                                      "status",
                                      "created_at",
                                      "created_by",
                                      "updated_at",
                                      "consent_care",
                                      "consent_research",
                                      "history_changed",
                                      "history_bleeding",
                                      "history_itching",
                                      "history_duration_months",
                                      "ai_risk_index",
                                      "ai_category",
                                      "top1_code",
                                      "top1_probability",
                                      "top2_code",
                                      "top2_probability",
                                      "top3_code",
                                      "top3_probability",
                                      "skin_tone",
                                      "model_name",
                                      "model_version",
                                      "decision_outcome",
                                      "final_category",
                                      "decision_reason",
                                      "referral",
                                      "decided_by",
                                      "decided_at"};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static void csv_row(sbuf *b, const json_t *c)
{
    char t[64];
    json_t *v = json_object_get(c, "id");
    if (json_is_integer(v)) {
        snprintf(t, sizeof t, "%lld", (long long)json_integer_value(v));
        cell(b, t, 0);
    } else {
        cell(b, NULL, 0);
    }
    cell(b, ex_str(c, "patient_ref"), 0);
    v = json_object_get(c, "age");
    if (json_is_integer(v)) {
        snprintf(t, sizeof t, "%lld", (long long)json_integer_value(v));
        cell(b, t, 0);
    } else {
        cell(b, NULL, 0);
    }
    cell(b, ex_str(c, "sex"), 0);
    cell(b, ex_str(c, "body_site"), 0);
    cell(b, ex_str(c, "status"), 0);
    cell(b, ex_str(c, "created_at"), 0);
    cell(b, ex_str(c, "created_by"), 0);
    cell(b, ex_str(c, "updated_at"), 0);
    const json_t *k = json_object_get(c, "consent");
    cell(b, tristate(json_object_get(k, "care")), 0);
    cell(b, tristate(json_object_get(k, "research")), 0);
    const json_t *h = json_object_get(c, "history");
    cell(b, tristate(json_object_get(h, "changed")), 0);
    cell(b, tristate(json_object_get(h, "bleeding")), 0);
    cell(b, tristate(json_object_get(h, "itching")), 0);
    num_cell(b, ex_num(h, "duration_months"), 6, 1);
    /* The worklist summary has ai_risk_index; a full case also has the result. */
    const json_t *res = ex_report_result(c);
    double idx = ex_num(c, "ai_risk_index");
    if (!isfinite(idx))
        idx = ex_num(json_object_get(res, "risk"), "index");
    num_cell(b, idx, 0, 0);
    const char *ai = ex_str(c, "ai_risk");
    cell(b, ai ? ai : ex_str(json_object_get(res, "risk"), "category"), 0);
    const json_t *cands = json_object_get(res, "candidates");
    for (size_t i = 0; i < 3; i++) {
        const json_t *cd = json_array_get(cands, i);
        cell(b, ex_str(cd, "code"), 0);
        num_cell(b, ex_num(cd, "probability"), 4, 0);
    }
    cell(b, ex_str(json_object_get(res, "skin_tone"), "category"), 0);
    cell(b, ex_str(json_object_get(res, "model"), "name"), 0);
    cell(b, ex_str(json_object_get(res, "model"), "version"), 0);
    const json_t *d = json_object_get(c, "decision");
    cell(b, ex_str(d, "outcome"), 0);
    cell(b, ex_final_category(c), 0);
    cell(b, ex_str(d, "reason"), 0);
    cell(b, ex_str(d, "referral"), 0);
    cell(b, ex_str(d, "decided_by"), 0);
    cell(b, ex_str(d, "decided_at"), 1);
}

const char *basira_export_content_type(const char *format)
{
    if (format && !strcmp(format, "csv"))
        return "text/csv; charset=utf-8; header=present";
    if (format && !strcmp(format, "json"))
        return "application/json; charset=utf-8";
    return NULL;
}

basira_code basira_export_cases(const json_t *cases_array, const char *format, char **out,
                                size_t *out_len, basira_error *err)
{
    if (!out || !out_len)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    *out_len = 0;
    if (!json_is_array(cases_array))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the cases to export must be a JSON array"));
    if (!basira_export_content_type(format))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("unknown export format '%s': use csv or json"),
                                format ? format : "");
    if (!strcmp(format, "json")) {
        char now[32];
        ex_iso_time((int64_t)time(NULL), now, sizeof now);
        json_t *doc = json_pack("{s:s, s:i, s:s, s:O}", "format", "basira-cases", "version", 1,
                                "exported_at", now, "cases", cases_array);
        char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
        json_decref(doc);
        if (!text)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        *out = text;
        *out_len = strlen(text);
        return BASIRA_OK;
    }
    sbuf b = {0};
    for (size_t i = 0; i < N_COLUMNS; i++)
        cell(&b, columns[i], i + 1 == N_COLUMNS);
    size_t i;
    json_t *c;
    json_array_foreach(cases_array, i, c)
    {
        if (json_is_object(c))
            csv_row(&b, c);
    }
    if (b.oom) {
        free(b.p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    *out = b.p;
    *out_len = b.len;
    return BASIRA_OK;
}
