/*
 * indicators.c - the programme's indicators from the hub's synced cases
 * (definitions: docs/indicators.md). One query reads a row per case with what
 * the indicators need; the figures are computed here, per group.
 *
 * Intervals: Wilson 95% for proportions (basira_wilson, src/eval), the exact
 * order-statistic 95% interval of a median (binomial ranks; none under 6
 * observations), percentiles by linear interpolation (numpy's default).
 */
#include "basira/hub_indicators.h"
#include "basira/eval.h"
#include "core/i18n.h"
#include "hub_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const basira_hub_indicator_def defs[BASIRA_IND_COUNT] = {
    {BASIRA_IND_DAYS_TO_REFERRAL, "days_to_referral", N_("Time from first visit to referral"),
     "days", BASIRA_IND_QUANTILES, "order_statistic"},
    {BASIRA_IND_DAYS_TO_REPLY, "days_to_reply",
     N_("Time from first visit to the dermatologist's reply"), "days", BASIRA_IND_QUANTILES,
     "order_statistic"},
    {BASIRA_IND_HIGH_RISK_TRIAGED, "high_risk_triaged",
     N_("High-risk lesions correctly triaged (final category)"), "proportion",
     BASIRA_IND_PROPORTION, "wilson"},
    {BASIRA_IND_HIGH_RISK_TRIAGED_AI, "high_risk_triaged_ai",
     N_("High-risk lesions correctly triaged (AI category)"), "proportion", BASIRA_IND_PROPORTION,
     "wilson"},
    {BASIRA_IND_PPV_HIGH, "referral_ppv_high", N_("Referral relevance, high risk (PPV)"),
     "proportion", BASIRA_IND_PROPORTION, "wilson"},
    {BASIRA_IND_PPV_MEDIUM, "referral_ppv_medium", N_("Referral relevance, medium risk (PPV)"),
     "proportion", BASIRA_IND_PROPORTION, "wilson"},
    {BASIRA_IND_PPV_LOW, "referral_ppv_low", N_("Referral relevance, low risk (PPV)"), "proportion",
     BASIRA_IND_PROPORTION, "wilson"},
    {BASIRA_IND_FOLLOW_UP_ON_TIME, "follow_up_on_time", N_("Medium-risk follow-ups done on time"),
     "proportion", BASIRA_IND_PROPORTION, "wilson"},
    {BASIRA_IND_CASES_PER_GP_WEEK, "cases_per_gp_week", N_("Cases per week per GP"),
     "cases/GP/week", BASIRA_IND_RATE, NULL},
    {BASIRA_IND_REPLIES_PER_DERM_WEEK, "replies_per_dermatologist_week",
     N_("Replies per week per dermatologist"), "replies/dermatologist/week", BASIRA_IND_RATE, NULL},
    {BASIRA_IND_REVIEW_MINUTES, "review_minutes", N_("Dermatologist's review time"), "minutes",
     BASIRA_IND_QUANTILES, "order_statistic"},
    {BASIRA_IND_COST_PER_HIGH_RISK, "cost_per_high_risk_detected",
     N_("Cost per high-risk case detected"), "currency", BASIRA_IND_RATE, NULL},
};

const basira_hub_indicator_def *basira_hub_indicator_defs(void)
{
    return defs;
}

static const char *const by_names[] = {"none",      "clinic", "week",    "month",
                                       "phototype", "sex",    "age_band"};

basira_code basira_hub_group_by_parse(const char *s, basira_hub_group_by *out, basira_error *err)
{
    for (int i = 0; i <= BASIRA_BY_AGE_BAND; i++)
        if (!s || !strcmp(s, by_names[i])) {
            *out = s ? (basira_hub_group_by)i : BASIRA_BY_NONE;
            return BASIRA_OK;
        }
    return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                             N_("--by is none, clinic, week, month, phototype, sex or age_band"));
}

/* "YYYY-MM-DDTHH:MM:SSZ" (how nodes write times) to Unix time; 0 when absent or malformed. */
static int64_t iso_time(const char *s)
{
    int y, mo, d, h, mi, se;
    char z = 0;
    if (!s || strlen(s) != 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z' ||
        y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return 0;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    return (int64_t)timegm(&tm);
}

static int date_ok(const char *s)
{
    int y, m, d;
    char extra;
    return s && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3 && m >= 1 &&
           m <= 12 && d >= 1 && d <= 31;
}

static int category_of(const char *s)
{
    if (!s)
        return -1;
    return !strcmp(s, "high") ? 2 : !strcmp(s, "medium") ? 1 : !strcmp(s, "low") ? 0 : -1;
}

static const char *phototype_group(const char *tone)
{
    static const char *const map[][2] = {{"very_light", "light"},    {"light", "light"},
                                         {"intermediate", "medium"}, {"tan", "medium"},
                                         {"brown", "dark"},          {"dark", "dark"}};
    for (size_t i = 0; tone && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(tone, map[i][0]))
            return map[i][1];
    return "unknown";
}

static const char *age_band(const char *age)
{
    if (!age || !*age)
        return "unknown";
    int a = atoi(age);
    return a < 18 ? "0-17" : a < 40 ? "18-39" : a < 60 ? "40-59" : a < 80 ? "60-79" : "80+";
}

/* One case as the indicators see it (texts point into the query's result). */
typedef struct ind_case {
    const char *clinic, *sex, *phototype, *age_band, *gp, *replies;
    char week[12], month[8], date[11];
    int64_t visit, referral_at, follow_up_due, next_visit, first_reply;
    int category, ai_category, reference, plan_biopsy, plan_urgent;
} ind_case;

/*
 * One row per case; set-based (one aggregate per table, joined) rather than a
 * subquery per case and table: 20 000 cases in 1.2 s against 5.6 s
 * (bench/hub/run_indicators, EXPLAIN ANALYZE).
 */
#define CASE_ROWS                                                                                  \
    "WITH d AS (SELECT node_id, case_id, (array_agg(decision->>'decided_by' ORDER BY seq))[1] AS " \
    "gp, (array_agg(decision->>'decided_at' ORDER BY seq) FILTER (WHERE "                          \
    "coalesce(decision->>'referral', 'none') <> 'none'))[1] AS referral_at, "                      \
    "(array_agg(decision->>'follow_up' ORDER BY seq DESC))[1] AS follow_up FROM hub_decisions "    \
    "GROUP BY node_id, case_id), "                                                                 \
    "i AS (SELECT DISTINCT ON (node_id, case_id) node_id, case_id, "                               \
    "result->'skin_tone'->>'category' AS tone FROM hub_images WHERE result->'skin_tone' IS NOT "   \
    "NULL ORDER BY node_id, case_id, image_id), "                                                  \
    "r AS (SELECT r.node_id, r.case_id, extract(epoch FROM min(r.created_at))::bigint AS "         \
    "first_at, (array_agg(r.plan ORDER BY r.id DESC))[1] AS plan, string_agg(r.author || ' ' || "  \
    "coalesce(extract(epoch FROM r.created_at - v.first_opened_at)::bigint::text, '-'), ',' "      \
    "ORDER BY r.id) AS list FROM hub_replies r LEFT JOIN hub_case_views v ON v.node_id = "         \
    "r.node_id AND v.case_id = r.case_id AND v.username = r.author GROUP BY r.node_id, "           \
    "r.case_id), "                                                                                 \
    "o AS (SELECT DISTINCT ON (node_id, case_id) node_id, case_id, histology FROM hub_outcomes "   \
    "ORDER BY node_id, case_id, id DESC) "                                                         \
    "SELECT n.name, c.age::text, c.sex, c.category, c.ai_category, c.created_at, i.tone, d.gp, "   \
    "d.referral_at, d.follow_up, (SELECT min(c2.created_at) FROM hub_cases c2 WHERE c2.node_id = " \
    "c.node_id AND c2.patient_ref = c.patient_ref AND c2.created_at > c.created_at), r.first_at, " \
    "r.plan, o.histology, r.list FROM hub_cases c JOIN hub_nodes n ON n.id = c.node_id "           \
    "LEFT JOIN d ON d.node_id = c.node_id AND d.case_id = c.case_id "                              \
    "LEFT JOIN i ON i.node_id = c.node_id AND i.case_id = c.case_id "                              \
    "LEFT JOIN r ON r.node_id = c.node_id AND r.case_id = c.case_id "                              \
    "LEFT JOIN o ON o.node_id = c.node_id AND o.case_id = c.case_id"

static const char *col(PGresult *r, int i, int j)
{
    return PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
}

static void read_case(PGresult *r, int i, ind_case *c)
{
    memset(c, 0, sizeof *c);
    c->clinic = col(r, i, 0);
    c->age_band = age_band(col(r, i, 1));
    c->sex = col(r, i, 2) ? col(r, i, 2) : "unknown";
    c->category = category_of(col(r, i, 3));
    c->ai_category = category_of(col(r, i, 4));
    c->visit = iso_time(col(r, i, 5));
    c->phototype = phototype_group(col(r, i, 6));
    c->gp = col(r, i, 7);
    c->referral_at = iso_time(col(r, i, 8));
    c->follow_up_due = iso_time(col(r, i, 9));
    c->next_visit = iso_time(col(r, i, 10));
    c->first_reply = col(r, i, 11) ? strtoll(col(r, i, 11), NULL, 10) : 0;
    const char *plan = col(r, i, 12), *histology = col(r, i, 13);
    c->replies = col(r, i, 14);
    c->plan_biopsy = plan && !strcmp(plan, "biopsy");
    c->plan_urgent = plan && !strcmp(plan, "urgent_visit");
    /* The reference: histology when recorded, else the latest reply's plan, else unknown. */
    if (histology)
        c->reference = !strcmp(histology, "malignant");
    else if (plan)
        c->reference = c->plan_biopsy || c->plan_urgent;
    else
        c->reference = -1;
    if (c->visit) {
        time_t t = (time_t)c->visit;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(c->week, sizeof c->week, "%G-W%V", &tm);
        strftime(c->month, sizeof c->month, "%Y-%m", &tm);
        strftime(c->date, sizeof c->date, "%Y-%m-%d", &tm);
    } else {
        snprintf(c->week, sizeof c->week, "unknown");
        snprintf(c->month, sizeof c->month, "unknown");
    }
}

static const char *key_of(const ind_case *c, basira_hub_group_by by)
{
    switch (by) {
    case BASIRA_BY_CLINIC:
        return c->clinic;
    case BASIRA_BY_WEEK:
        return c->week;
    case BASIRA_BY_MONTH:
        return c->month;
    case BASIRA_BY_PHOTOTYPE:
        return c->phototype;
    case BASIRA_BY_SEX:
        return c->sex;
    case BASIRA_BY_AGE_BAND:
        return c->age_band;
    default:
        return "all";
    }
}

static int kept(const ind_case *c, const basira_hub_indicator_query *q)
{
    if ((q->from || q->to) && !c->visit)
        return 0;
    return (!q->from || strcmp(c->date, q->from) >= 0) && (!q->to || strcmp(c->date, q->to) <= 0) &&
           (!q->clinic || !strcmp(c->clinic, q->clinic)) && (!q->sex || !strcmp(c->sex, q->sex)) &&
           (!q->phototype || !strcmp(c->phototype, q->phototype)) &&
           (!q->age_band || !strcmp(c->age_band, q->age_band));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static double percentile(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    return lo + 1 < n ? v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]) : v[n - 1];
}

/* Median, p90 and the exact order-statistic 95% interval of the median of v[0..n). */
static void quantiles(double *v, size_t n, basira_hub_indicator_value *out)
{
    out->n = (long)n;
    out->value = out->lo = out->hi = out->p90 = NAN;
    if (!n)
        return;
    qsort(v, n, sizeof *v, cmp_double);
    out->value = percentile(v, n, 0.5);
    out->p90 = percentile(v, n, 0.9);
    /* The largest rank l with P(B <= l - 1) <= 0.025, B ~ Binomial(n, 1/2): [x(l), x(n+1-l)]. */
    double cdf = 0;
    size_t l = 0;
    for (size_t i = 0; i < n; i++) {
        cdf += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) -
                   (double)n * log(2.0));
        if (cdf > 0.025)
            break;
        l = i + 1;
    }
    if (l >= 1) {
        out->lo = v[l - 1];
        out->hi = v[n - l];
    }
}

static basira_code proportion(long k, long n, basira_hub_indicator_value *out, basira_error *err)
{
    basira_proportion p;
    basira_code rc = basira_wilson(k, n, &p, err);
    if (rc)
        return rc;
    out->k = k;
    out->n = n;
    out->value = p.value;
    out->lo = p.lo;
    out->hi = p.hi;
    return BASIRA_OK;
}

static void rate(double num, long den, basira_hub_indicator_value *out)
{
    out->numerator = num;
    out->n = den;
    out->value = den > 0 ? num / (double)den : NAN;
}

/* Distinct non-NULL texts of names[0..n) (sorted in place). */
static long distinct(const char **names, size_t n)
{
    qsort(names, n, sizeof *names, cmp_str);
    long d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || strcmp(names[i], names[i - 1]);
    return d;
}

typedef struct scratch {
    double *a, *b, *c;
    const char **gps, **derms;
    char *text;
} scratch;

/* Weeks the workload of a group is spread over (docs/indicators.md). */
static double group_weeks(const basira_hub_indicator_query *q, const char *key, double span)
{
    if (q->by == BASIRA_BY_WEEK)
        return 1.0;
    int y, m;
    if (q->by == BASIRA_BY_MONTH && sscanf(key, "%4d-%2d", &y, &m) == 2) {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return (days[m - 1] + (m == 2 && leap)) / 7.0;
    }
    return span;
}

static basira_code compute_group(const ind_case *cs, size_t n, const char *key,
                                 const basira_hub_indicator_query *q, double span, scratch *s,
                                 basira_hub_indicator_group *g, basira_error *err)
{
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s", key);
    for (int i = 0; i < BASIRA_IND_COUNT; i++) {
        g->v[i].value = g->v[i].lo = g->v[i].hi = g->v[i].p90 = NAN;
        g->v[i].numerator = NAN;
    }
    size_t na = 0, nb = 0, nc = 0, ngp = 0, nderm = 0;
    long pos = 0, pos_hi = 0, pos_hi_ai = 0, ppv_n[3] = {0}, ppv_k[3] = {0}, fu_n = 0, fu_k = 0;
    long replies = 0, gp_cases = 0, detected = 0, biopsies = 0, urgent = 0;
    int64_t as_of = q->as_of ? q->as_of : (int64_t)time(NULL);
    int64_t grace = (int64_t)(q->grace_days > 0 ? q->grace_days : 14) * 86400;
    size_t text_at = 0;
    for (size_t i = 0; i < n; i++) {
        const ind_case *c = &cs[i];
        if (strcmp(key, "all") && strcmp(key_of(c, q->by), key))
            continue;
        g->cases++;
        if (c->visit && c->referral_at >= c->visit)
            s->a[na++] = (double)(c->referral_at - c->visit) / 86400.0;
        if (c->visit && c->first_reply >= c->visit)
            s->b[nb++] = (double)(c->first_reply - c->visit) / 86400.0;
        if (c->reference == 1) {
            pos++;
            pos_hi += c->category == 2;
            pos_hi_ai += c->ai_category == 2;
        }
        if (c->reference >= 0 && c->category >= 0) {
            ppv_n[c->category]++;
            ppv_k[c->category] += c->reference;
        }
        if (c->category == 1 && c->follow_up_due && c->follow_up_due + grace <= as_of) {
            fu_n++;
            fu_k += c->next_visit && c->next_visit <= c->follow_up_due + grace;
        }
        if (c->gp) {
            s->gps[ngp++] = c->gp;
            gp_cases++;
        }
        detected += c->category == 2 && c->reference == 1;
        biopsies += c->plan_biopsy;
        urgent += c->plan_urgent;
        /* The replies: "author review_seconds|-" joined by ',' (usernames have neither). */
        if (c->replies) {
            size_t len = strlen(c->replies);
            char *t = s->text + text_at;
            memcpy(t, c->replies, len + 1);
            text_at += len + 1;
            for (char *save = NULL, *rp = strtok_r(t, ",", &save); rp;
                 rp = strtok_r(NULL, ",", &save)) {
                char *sp = strchr(rp, ' ');
                if (!sp)
                    continue;
                *sp = '\0';
                replies++;
                s->derms[nderm++] = rp;
                if (sp[1] != '-' && strtoll(sp + 1, NULL, 10) >= 0)
                    s->c[nc++] = (double)strtoll(sp + 1, NULL, 10) / 60.0;
            }
        }
    }
    basira_hub_indicator_value *v = g->v;
    quantiles(s->a, na, &v[BASIRA_IND_DAYS_TO_REFERRAL]);
    quantiles(s->b, nb, &v[BASIRA_IND_DAYS_TO_REPLY]);
    quantiles(s->c, nc, &v[BASIRA_IND_REVIEW_MINUTES]);
    basira_code rc;
    if ((rc = proportion(pos_hi, pos, &v[BASIRA_IND_HIGH_RISK_TRIAGED], err)) ||
        (rc = proportion(pos_hi_ai, pos, &v[BASIRA_IND_HIGH_RISK_TRIAGED_AI], err)) ||
        (rc = proportion(ppv_k[2], ppv_n[2], &v[BASIRA_IND_PPV_HIGH], err)) ||
        (rc = proportion(ppv_k[1], ppv_n[1], &v[BASIRA_IND_PPV_MEDIUM], err)) ||
        (rc = proportion(ppv_k[0], ppv_n[0], &v[BASIRA_IND_PPV_LOW], err)) ||
        (rc = proportion(fu_k, fu_n, &v[BASIRA_IND_FOLLOW_UP_ON_TIME], err)))
        return rc;
    double weeks = group_weeks(q, key, span);
    long gps = distinct(s->gps, ngp), derms = distinct(s->derms, nderm);
    rate((double)gp_cases, gps, &v[BASIRA_IND_CASES_PER_GP_WEEK]);
    v[BASIRA_IND_CASES_PER_GP_WEEK].value /= weeks;
    rate((double)replies, derms, &v[BASIRA_IND_REPLIES_PER_DERM_WEEK]);
    v[BASIRA_IND_REPLIES_PER_DERM_WEEK].value /= weeks;
    if (q->costs) {
        const basira_hub_costs *k = q->costs;
        rate((double)g->cases * k->per_case + (double)replies * k->per_review +
                 (double)biopsies * k->per_biopsy + (double)urgent * k->per_urgent_visit,
             detected, &v[BASIRA_IND_COST_PER_HIGH_RISK]);
    } else {
        v[BASIRA_IND_COST_PER_HIGH_RISK].n = detected;
    }
    return BASIRA_OK;
}

/* The span of the period in weeks: --from..--to, else first to last visit; at least one. */
static double period_weeks(const ind_case *cs, size_t n, const basira_hub_indicator_query *q)
{
    int64_t lo = 0, hi = 0;
    char buf[24];
    if (q->from && q->to) {
        snprintf(buf, sizeof buf, "%sT00:00:00Z", q->from);
        lo = iso_time(buf);
        snprintf(buf, sizeof buf, "%sT00:00:00Z", q->to);
        hi = iso_time(buf) + 86400;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!cs[i].visit)
                continue;
            lo = !lo || cs[i].visit < lo ? cs[i].visit : lo;
            hi = cs[i].visit > hi ? cs[i].visit : hi;
        }
        hi += 86400;
    }
    double w = (double)(hi - lo) / (7.0 * 86400.0);
    return w >= 1.0 ? w : 1.0;
}

static basira_code compute(PGresult *r, const basira_hub_indicator_query *q,
                           basira_hub_indicators *out, basira_error *err)
{
    int rows = PQntuples(r);
    size_t n = 0, text = 1;
    ind_case *cs = calloc((size_t)rows + 1, sizeof *cs);
    const char **keys = calloc((size_t)rows + 1, sizeof *keys);
    if (!cs || !keys) {
        free(cs);
        free(keys);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (int i = 0; i < rows; i++) {
        read_case(r, i, &cs[n]);
        if (kept(&cs[n], q)) {
            text += cs[n].replies ? strlen(cs[n].replies) + 1 : 0;
            n++;
        }
    }
    /* The groups: "all" first, then the distinct keys in order. */
    size_t nk = 0;
    for (size_t i = 0; q->by != BASIRA_BY_NONE && i < n; i++)
        keys[nk++] = key_of(&cs[i], q->by);
    qsort(keys, nk, sizeof *keys, cmp_str);
    size_t ng = 0;
    for (size_t i = 0; i < nk; i++)
        if (i == 0 || strcmp(keys[i], keys[i - 1]))
            keys[ng++] = keys[i];
    scratch s = {calloc(n + 1, sizeof(double)), calloc(n + 1, sizeof(double)),
                 calloc(text, sizeof(double)),  calloc(n + 1, sizeof(char *)),
                 calloc(text, sizeof(char *)),  malloc(text)};
    out->groups = calloc(ng + 1, sizeof *out->groups);
    basira_code rc = s.a && s.b && s.c && s.gps && s.derms && s.text && out->groups
                         ? BASIRA_OK
                         : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    double span = period_weeks(cs, n, q);
    for (size_t i = 0; !rc && i <= ng; i++)
        rc = compute_group(cs, n, i ? keys[i - 1] : "all", q, span, &s, &out->groups[i], err);
    out->n_groups = rc ? 0 : ng + 1;
    free(s.a);
    free(s.b);
    free(s.c);
    free(s.gps);
    free(s.derms);
    free(s.text);
    free(cs);
    free(keys);
    return rc;
}

basira_code basira_hub_indicators_compute(basira_hub *hub, const basira_hub_indicator_query *q,
                                          basira_hub_indicators *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    if ((q->from && !date_ok(q->from)) || (q->to && !date_ok(q->to)))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("--from and --to are dates YYYY-MM-DD"));
    PGresult *r = NULL;
    basira_code rc = hub_query(hub, CASE_ROWS, 0, NULL, &r, err);
    if (rc)
        return rc;
    rc = compute(r, q, out, err);
    PQclear(r);
    if (rc)
        basira_hub_indicators_free(out);
    return rc;
}

void basira_hub_indicators_free(basira_hub_indicators *ind)
{
    if (!ind)
        return;
    free(ind->groups);
    ind->groups = NULL;
    ind->n_groups = 0;
}
