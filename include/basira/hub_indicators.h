/*
 * hub_indicators.h - the programme's indicators, computed at the hub from the
 * synced cases (docs/indicators.md has each definition: numerator,
 * denominator, period, unit, interval).
 *
 * Every indicator is attributed to the case's first visit (the case's
 * created_at at its clinic); a group is a clinic, an ISO week, a month, a
 * phototype group, a sex or an age band of those cases, after the filters.
 * The first group is always "all" (the filtered cases together).
 */
#ifndef BASIRA_HUB_INDICATORS_H
#define BASIRA_HUB_INDICATORS_H

#include <stdint.h>

#include "basira/error.h"
#include "basira/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum basira_hub_indicator_id {
    BASIRA_IND_DAYS_TO_REFERRAL = 0, /* quantiles, days */
    BASIRA_IND_DAYS_TO_REPLY,        /* quantiles, days */
    BASIRA_IND_HIGH_RISK_TRIAGED,    /* proportion: final category high among positives */
    BASIRA_IND_HIGH_RISK_TRIAGED_AI, /* proportion: AI category high among positives */
    BASIRA_IND_PPV_HIGH,             /* proportion: positives among replied high cases */
    BASIRA_IND_PPV_MEDIUM,
    BASIRA_IND_PPV_LOW,
    BASIRA_IND_FOLLOW_UP_ON_TIME,     /* proportion: medium-risk follow-ups done by due + grace */
    BASIRA_IND_CASES_PER_GP_WEEK,     /* rate */
    BASIRA_IND_REPLIES_PER_DERM_WEEK, /* rate */
    BASIRA_IND_REVIEW_MINUTES,        /* quantiles, minutes */
    BASIRA_IND_COST_PER_HIGH_RISK,    /* rate: currency per high-risk case detected */
    BASIRA_IND_COUNT
} basira_hub_indicator_id;

typedef enum basira_hub_indicator_kind {
    BASIRA_IND_QUANTILES,  /* value = median, lo/hi its 95% order-statistic interval, p90 */
    BASIRA_IND_PROPORTION, /* value = k/n, lo/hi its Wilson 95% interval */
    BASIRA_IND_RATE,       /* value = numerator / denominator, no interval */
} basira_hub_indicator_kind;

typedef struct basira_hub_indicator_def {
    basira_hub_indicator_id id;
    const char *code; /* stable identifier, e.g. "days_to_referral" */
    const char *name; /* English name, marked N_() (translate with _()) */
    const char *unit; /* "days", "minutes", "proportion", "cases/GP/week", "currency" */
    basira_hub_indicator_kind kind;
    const char *interval; /* "order_statistic", "wilson" or NULL */
} basira_hub_indicator_def;

/* The definitions, indexed by basira_hub_indicator_id (BASIRA_IND_COUNT of them). */
const basira_hub_indicator_def *basira_hub_indicator_defs(void);

typedef struct basira_hub_indicator_value {
    long n;           /* observations (denominator of a proportion or rate) */
    long k;           /* numerator of a proportion */
    double value;     /* NaN when undefined (n == 0, no cost parameters) */
    double lo, hi;    /* 95% interval; NaN for rates and when too few observations */
    double p90;       /* quantiles only; NaN otherwise */
    double numerator; /* rates: the total (cases, replies, cost) */
} basira_hub_indicator_value;

typedef struct basira_hub_indicator_group {
    char key[72]; /* "all", a clinic, "2026-W49", "2026-12", "light", "female", "40-59" */
    long cases;
    basira_hub_indicator_value v[BASIRA_IND_COUNT];
} basira_hub_indicator_group;

typedef struct basira_hub_indicators {
    size_t n_groups;
    basira_hub_indicator_group *groups; /* groups[0] is "all" */
} basira_hub_indicators;

/* Cost parameters (one currency): what each step costs the programme. */
typedef struct basira_hub_costs {
    char currency[16];
    double per_case;         /* a case seen at a clinic with the app */
    double per_review;       /* a dermatologist's remote review (each reply) */
    double per_biopsy;       /* a case whose latest reply plans a biopsy */
    double per_urgent_visit; /* a case whose latest reply plans an urgent visit */
} basira_hub_costs;

/*
 * Parse cost parameters from JSON {"currency", "per_case", "per_review",
 * "per_biopsy", "per_urgent_visit"} (numbers >= 0; absent ones are 0).
 * BASIRA_E_FORMAT naming the bad field.
 */
basira_code basira_hub_costs_parse(const char *json_text, basira_hub_costs *out, basira_error *err);
/* The costs stored at the hub (hub_settings key "costs"); *found 0 when none. */
basira_code basira_hub_costs_get(basira_hub *hub, basira_hub_costs *out, int *found,
                                 basira_error *err);
/* Store the costs at the hub (hub_settings key "costs"). */
basira_code basira_hub_costs_set(basira_hub *hub, const basira_hub_costs *c, basira_error *err);

typedef enum basira_hub_group_by {
    BASIRA_BY_NONE = 0,
    BASIRA_BY_CLINIC,
    BASIRA_BY_WEEK,
    BASIRA_BY_MONTH,
    BASIRA_BY_PHOTOTYPE,
    BASIRA_BY_SEX,
    BASIRA_BY_AGE_BAND,
} basira_hub_group_by;

/* "none"/NULL, "clinic", "week", "month", "phototype", "sex", "age_band". */
basira_code basira_hub_group_by_parse(const char *s, basira_hub_group_by *out, basira_error *err);

typedef struct basira_hub_indicator_query {
    basira_hub_group_by by;
    const char *from, *to; /* YYYY-MM-DD (first visit on or after / on or before), or NULL */
    const char *clinic;    /* filters, NULL for all */
    const char *sex;
    const char *phototype;         /* "light", "medium", "dark", "unknown" */
    const char *age_band;          /* "0-17", "18-39", "40-59", "60-79", "80+", "unknown" */
    const basira_hub_costs *costs; /* NULL: the cost indicator is undefined */
    int64_t as_of;                 /* Unix time follow-ups are judged at; 0: now */
    int grace_days;                /* follow-up grace after its due date; 0: 14 */
} basira_hub_indicator_query;

/* Compute the indicators. Free with basira_hub_indicators_free. */
basira_code basira_hub_indicators_compute(basira_hub *hub, const basira_hub_indicator_query *q,
                                          basira_hub_indicators *out, basira_error *err);
void basira_hub_indicators_free(basira_hub_indicators *ind);

/*
 * The groups as JSON (new reference): [{"key", "cases", "indicators": [{"id",
 * "name", "unit", "n", "value", "k" (proportions), "p90" (quantiles),
 * "numerator" (rates), "interval": {"lo", "hi", "level", "method"} (where the
 * definition has one)}]}]. name(msgid, ctx) translates a definition's name
 * (NULL: English). NULL when memory runs out.
 */
json_t *basira_hub_indicators_json(const basira_hub_indicators *ind,
                                   const char *(*name)(const char *msgid, void *ctx), void *ctx);

/* The same as CSV (RFC 4180, one row per group and indicator); *out malloc'd. */
basira_code basira_hub_indicators_csv(const basira_hub_indicators *ind,
                                      const char *(*name)(const char *msgid, void *ctx), void *ctx,
                                      char **out, size_t *len, basira_error *err);

/*
 * The same as a PDF (*out malloc'd): a title, subtitle (the filters, may be
 * NULL), each indicator's figures and, with more than one group, its plot
 * across the groups. rtl: an Arabic page. BASIRA_E_INTERNAL when cairo fails.
 */
basira_code basira_hub_indicators_pdf(const basira_hub_indicators *ind, const char *subtitle,
                                      const char *(*name)(const char *msgid, void *ctx), void *ctx,
                                      int rtl, unsigned char **out, size_t *len, basira_error *err);

/*
 * Histology of a case, when it is known (after a biopsy or excision):
 * "malignant" or "benign". It takes precedence over the replies as the
 * reference of the high-risk and PPV indicators. BASIRA_E_NOT_FOUND.
 */
basira_code basira_hub_outcome(basira_hub *hub, const char *node, int64_t case_id,
                               const char *histology, const char *by, basira_error *err);

/* A dermatologist opened a case (the start of the review time); the first opening is kept. */
basira_code basira_hub_case_opened(basira_hub *hub, const char *node, int64_t case_id,
                                   const char *user, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
