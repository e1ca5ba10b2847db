/*
 * certify.c - per-group figures, the gap between groups, the comparison with the
 * parent model, agreement with adjudicated labels, and the verdict on each criterion.
 *
 * A "group" is a phototype (recorded Fitzpatrick type, else the ITA category measured
 * on the photo); a "lesion type" is the recorded class. The triage test is positive
 * when P(malignant) reaches the medium threshold (high + medium: the patient is
 * referred), so sensitivity is the share of malignant lesions referred and
 * specificity the share of benign ones kept in primary care.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basira/certify.h"
#include "basira/eval.h"
#include "core/i18n.h"

#define MAX_GROUPS 64
#define MAX_LISTED 200 /* false negatives / positives named per group */
/* Resamplings of the ECE's noise, "ece_if_calibrated" (the same seed: the same report). */
#define CERTIFY_ECE_REPS 1000
#define CERTIFY_ECE_SEED 20261203u

void basira_certify_options_default(basira_certify_options *o)
{
    o->medium_threshold = 0.5;
    o->bootstrap = 1000;
    o->seed = 20261122;
    o->min_group_n = 30;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *prop(long k, long n)
{
    basira_proportion p;
    if (basira_wilson(k, n, &p, NULL))
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:I, s:I}", "value", num(p.value), "lo", num(p.lo), "hi",
                     num(p.hi), "k", (json_int_t)k, "n", (json_int_t)n);
}

/* Scores and truth of the cases idx[0..m) (truth from the adjudicated label when adj). */
static void gather(const basira_certify_case *c, const size_t *idx, size_t m, int adj, double *p,
                   int *y)
{
    for (size_t t = 0; t < m; t++) {
        p[t] = c[idx[t]].p_malignant;
        y[t] = adj ? c[idx[t]].adjudicated_malignant : c[idx[t]].malignant;
    }
}

/* The figures of one set of cases; *auc_out gets its AUC (NaN when undefined). */
static basira_code metrics(const basira_certify_case *c, const size_t *idx, size_t m, int adj,
                           double thr, json_t **out, double *auc_out, basira_error *err)
{
    *out = NULL;
    double *p = malloc(sizeof(double) * (m ? m : 1));
    int *y = malloc(sizeof(int) * (m ? m : 1));
    if (!p || !y) {
        free(p);
        free(y);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    gather(c, idx, m, adj, p, y);
    long tp = 0, fn = 0, tn = 0, fp = 0;
    json_t *fns = json_array(), *fps = json_array();
    for (size_t t = 0; t < m; t++) {
        int pos = p[t] >= thr;
        const char *id = c[idx[t]].id ? c[idx[t]].id : "";
        if (y[t] && pos)
            tp++;
        else if (y[t]) {
            if (fn++ < MAX_LISTED)
                json_array_append_new(fns, json_string(id));
        } else if (pos) {
            if (fp++ < MAX_LISTED)
                json_array_append_new(fps, json_string(id));
        } else
            tn++;
    }
    basira_auc auc;
    basira_calibration cal;
    basira_calibration_noise noise;
    basira_code rc = basira_auc_delong(p, y, m, &auc, err);
    if (!rc)
        rc = basira_calibration_compute(p, y, m, &cal, err);
    /* What a calibrated model would show on these cases: an ECE is read against that. */
    if (!rc)
        rc = basira_calibration_noise_compute(p, y, m, CERTIFY_ECE_REPS, CERTIFY_ECE_SEED, &noise,
                                              err);
    free(p);
    free(y);
    if (rc) {
        json_decref(fns);
        json_decref(fps);
        return rc;
    }
    json_t *bins = json_array();
    for (int b = 0; b < BASIRA_EVAL_ECE_BINS; b++)
        json_array_append_new(bins, json_pack("{s:f, s:f, s:I, s:o, s:o}", "lo", cal.bins[b].lo,
                                              "hi", cal.bins[b].hi, "n", (json_int_t)cal.bins[b].n,
                                              "mean_conf", num(cal.bins[b].mean_conf),
                                              "frac_positive", num(cal.bins[b].frac_positive)));
    *auc_out = auc.value;
    *out = json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:o, s:o, s:o, s:o, s:I, s:I}", "n",
        (json_int_t)m, "n_malignant", (json_int_t)(tp + fn), "sensitivity", prop(tp, tp + fn),
        "specificity", prop(tn, tn + fp), "ppv", prop(tp, tp + fp), "npv", prop(tn, tn + fn), "auc",
        "value", num(auc.value), "lo", num(auc.lo), "hi", num(auc.hi), "ece", num(cal.ece),
        "reliability", bins, "false_negatives", fns, "false_positives", fps, "n_false_negatives",
        (json_int_t)fn, "n_false_positives", (json_int_t)fp);
    if (!*out)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (json_object_set_new(*out, "ece_if_calibrated",
                            json_pack("{s:o, s:o, s:o, s:i}", "mean", num(noise.null_mean), "p95",
                                      num(noise.null_p95), "p_value", num(noise.p_value), "reps",
                                      noise.reps)))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return BASIRA_OK;
}

/* Phototypes in their natural order (I < II < ... < VI), other values after, by name. */
static int group_rank(const char *g)
{
    static const char *const roman[] = {"I", "II", "III", "IV", "V", "VI"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(g, roman[i]))
            return i;
    return 6;
}

static int cmp_names(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int rx = group_rank(x), ry = group_rank(y);
    return rx != ry ? rx - ry : strcmp(x, y);
}

typedef struct partition {
    const char *name[MAX_GROUPS];
    size_t *idx[MAX_GROUPS];
    size_t count[MAX_GROUPS];
    int n;
} partition;

static void partition_free(partition *pt)
{
    for (int g = 0; g < pt->n; g++)
        free(pt->idx[g]);
}

/* Split the cases by group (by_type 0) or lesion type (1); NULL values form "unknown". */
static basira_code partition_cases(const basira_certify_case *c, size_t n, int by_type,
                                   partition *pt, basira_error *err)
{
    memset(pt, 0, sizeof *pt);
    for (size_t i = 0; i < n; i++) {
        const char *v = by_type ? c[i].lesion_type : c[i].group;
        if (!v || !*v)
            v = "unknown";
        int g = 0;
        while (g < pt->n && strcmp(pt->name[g], v))
            g++;
        if (g == pt->n) {
            if (pt->n == MAX_GROUPS)
                return basira_error_set(err, BASIRA_E_FORMAT,
                                        _("more than %d different groups: is the right column "
                                          "named?"),
                                        MAX_GROUPS);
            pt->name[pt->n++] = v;
        }
    }
    qsort(pt->name, (size_t)pt->n, sizeof pt->name[0], cmp_names);
    for (int g = 0; g < pt->n; g++)
        if (!(pt->idx[g] = malloc(sizeof(size_t) * (n ? n : 1)))) {
            partition_free(pt);
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
    for (size_t i = 0; i < n; i++) {
        const char *v = by_type ? c[i].lesion_type : c[i].group;
        if (!v || !*v)
            v = "unknown";
        for (int g = 0; g < pt->n; g++)
            if (!strcmp(pt->name[g], v)) {
                pt->idx[g][pt->count[g]++] = i;
                break;
            }
    }
    return BASIRA_OK;
}

static basira_code partition_json(const basira_certify_case *c, const partition *pt, double thr,
                                  long min_n, double *auc, json_t **out, basira_error *err)
{
    *out = json_array();
    for (int g = 0; g < pt->n; g++) {
        json_t *m = NULL;
        basira_code rc = metrics(c, pt->idx[g], pt->count[g], 0, thr, &m, &auc[g], err);
        if (rc) {
            json_decref(*out);
            *out = NULL;
            return rc;
        }
        json_object_set_new(m, "value", json_string(pt->name[g]));
        json_object_set_new(m, "small", json_boolean((long)pt->count[g] < min_n));
        json_array_append_new(*out, m);
    }
    return BASIRA_OK;
}

/* xorshift64*: the bootstrap's own seeded generator (no global state). */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Best minus worst AUC among the eligible groups, with a percentile bootstrap interval:
 * each replicate resamples every eligible group within its malignant and its benign
 * cases (so each keeps its size and mix) and recomputes the gap.
 */
static basira_code group_gap(const basira_certify_case *c, const partition *pt, const double *auc,
                             long min_n, const basira_certify_options *o, json_t **out,
                             basira_error *err)
{
    int elig[MAX_GROUPS], ne = 0;
    double best = -INFINITY, worst = INFINITY;
    int ib = -1, iw = -1;
    size_t maxn = 1;
    for (int g = 0; g < pt->n; g++) {
        if ((long)pt->count[g] < min_n || !isfinite(auc[g]) || !strcmp(pt->name[g], "unknown"))
            continue;
        elig[ne++] = g;
        if (auc[g] > best)
            best = auc[g], ib = g;
        if (auc[g] < worst)
            worst = auc[g], iw = g;
        if (pt->count[g] > maxn)
            maxn = pt->count[g];
    }
    if (ne < 2) {
        *out = json_pack("{s:n, s:n, s:n, s:i, s:s}", "value", "lo", "hi", "groups", ne, "note",
                         "fewer than two groups large enough");
        return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    double gap = best - worst, lo = NAN, hi = NAN;
    int B = o->bootstrap;
    if (B > 0) {
        double *reps = malloc(sizeof(double) * (size_t)B);
        double *p = malloc(sizeof(double) * maxn);
        int *y = malloc(sizeof(int) * maxn);
        size_t *pos = malloc(sizeof(size_t) * maxn), *neg = malloc(sizeof(size_t) * maxn);
        if (!reps || !p || !y || !pos || !neg) {
            free(reps), free(p), free(y), free(pos), free(neg);
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
        uint64_t s = o->seed * 0x9E3779B97F4A7C15ULL + 1;
        int nrep = 0;
        for (int b = 0; b < B; b++) {
            double hi_b = -INFINITY, lo_b = INFINITY;
            int ok = 1;
            for (int e = 0; e < ne && ok; e++) {
                int g = elig[e];
                size_t np = 0, nn = 0, m = pt->count[g];
                for (size_t t = 0; t < m; t++) {
                    size_t i = pt->idx[g][t];
                    if (c[i].malignant)
                        pos[np++] = i;
                    else
                        neg[nn++] = i;
                }
                for (size_t t = 0; t < np; t++) {
                    p[t] = c[pos[next_rand(&s) % np]].p_malignant;
                    y[t] = 1;
                }
                for (size_t t = 0; t < nn; t++) {
                    p[np + t] = c[neg[next_rand(&s) % nn]].p_malignant;
                    y[np + t] = 0;
                }
                basira_auc a;
                if (basira_auc_delong(p, y, m, &a, NULL) || !isfinite(a.value)) {
                    ok = 0;
                    break;
                }
                hi_b = fmax(hi_b, a.value);
                lo_b = fmin(lo_b, a.value);
            }
            if (ok)
                reps[nrep++] = hi_b - lo_b;
        }
        if (nrep > 0) {
            qsort(reps, (size_t)nrep, sizeof *reps, cmp_double);
            lo = reps[(size_t)floor(0.025 * (nrep - 1))];
            hi = reps[(size_t)ceil(0.975 * (nrep - 1))];
        }
        free(reps), free(p), free(y), free(pos), free(neg);
    }
    *out = json_pack("{s:f, s:o, s:o, s:s, s:s, s:i, s:i, s:s}", "value", gap, "lo", num(lo), "hi",
                     num(hi), "best", pt->name[ib], "worst", pt->name[iw], "groups", ne,
                     "bootstrap", B, "method", "stratified percentile bootstrap");
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

static basira_code parent_json(const basira_certify_case *c, size_t n, json_t **out,
                               basira_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(c[i].p_parent))
            return BASIRA_OK; /* no parent (or not scored on every case): no comparison */
    if (n == 0)
        return BASIRA_OK;
    double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
    int *y = malloc(sizeof(int) * n);
    if (!a || !b || !y) {
        free(a), free(b), free(y);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = c[i].p_malignant;
        b[i] = c[i].p_parent;
        y[i] = c[i].malignant;
    }
    basira_auc_comparison cmp;
    basira_code rc = basira_auc_delong_paired(a, b, y, n, &cmp, err);
    free(a), free(b), free(y);
    if (rc)
        return rc;
    *out = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "auc_model", num(cmp.auc_a),
                     "auc_parent", num(cmp.auc_b), "difference", num(cmp.difference), "lo",
                     num(cmp.lo), "hi", num(cmp.hi), "z", num(cmp.z), "p_value", num(cmp.p_value),
                     "method", "DeLong test for two correlated AUCs");
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

/* Kappa of recorded vs adjudicated lesion types and malignancy; figures against adjudication. */
static basira_code adjudication_json(const basira_certify_case *c, size_t n, double thr,
                                     json_t **out, basira_error *err)
{
    *out = NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += c[i].adjudicated_type != NULL;
    if (m == 0)
        return BASIRA_OK;
    size_t *idx = malloc(sizeof(size_t) * m);
    int *r1 = malloc(sizeof(int) * m), *r2 = malloc(sizeof(int) * m);
    int *m1 = malloc(sizeof(int) * m), *m2 = malloc(sizeof(int) * m);
    const char *codes[BASIRA_EVAL_MAX_CLASSES];
    int k = 0;
    basira_code rc = BASIRA_OK;
    if (!idx || !r1 || !r2 || !m1 || !m2) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    size_t t = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!c[i].adjudicated_type)
            continue;
        const char *pair[2] = {c[i].lesion_type ? c[i].lesion_type : "", c[i].adjudicated_type};
        int *dst[2] = {&r1[t], &r2[t]};
        for (int w = 0; w < 2; w++) {
            int g = 0;
            while (g < k && strcmp(codes[g], pair[w]))
                g++;
            if (g == k) {
                if (k == BASIRA_EVAL_MAX_CLASSES) {
                    rc = basira_error_set(err, BASIRA_E_FORMAT,
                                          _("more than %d lesion types in the adjudicated labels"),
                                          BASIRA_EVAL_MAX_CLASSES);
                    break;
                }
                codes[k++] = pair[w];
            }
            *dst[w] = g;
        }
        m1[t] = c[i].malignant;
        m2[t] = c[i].adjudicated_malignant;
        idx[t++] = i;
    }
    basira_kappa kt, km;
    json_t *scored = NULL;
    double auc;
    if (rc || (rc = basira_cohen_kappa(r1, r2, m, k < 1 ? 1 : k, &kt, err)) ||
        (rc = basira_cohen_kappa(m1, m2, m, 2, &km, err)) ||
        (rc = metrics(c, idx, m, 1, thr, &scored, &auc, err)))
        goto done;
    *out = json_pack("{s:I, s:{s:o, s:o, s:o, s:o}, s:{s:o, s:o, s:o, s:o}, s:o}", "n",
                     (json_int_t)m, "kappa_lesion_type", "value", num(kt.kappa), "lo", num(kt.lo),
                     "hi", num(kt.hi), "observed_agreement", num(kt.observed), "kappa_malignant",
                     "value", num(km.kappa), "lo", num(km.lo), "hi", num(km.hi),
                     "observed_agreement", num(km.observed), "scored_against_adjudicated", scored);
    if (!*out)
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
done:
    free(idx), free(r1), free(r2), free(m1), free(m2);
    return rc;
}

/* ---- criteria ---------------------------------------------------------------------- */

static int compare(double x, const char *op, double v)
{
    if (!isfinite(x))
        return 0; /* fail closed: a figure that cannot be computed does not pass */
    if (!strcmp(op, ">="))
        return x >= v;
    if (!strcmp(op, ">"))
        return x > v;
    if (!strcmp(op, "<="))
        return x <= v;
    return x < v;
}

/* The statistic of metric in a metrics object (group, overall). */
static double pick(const json_t *m, const char *metric, const char *stat)
{
    const json_t *e = json_object_get(m, metric);

    if (json_is_number(e))
        return strcmp(stat, "value") ? NAN : json_number_value(e);
    const char *key = !strcmp(stat, "lower") ? "lo" : !strcmp(stat, "upper") ? "hi" : "value";
    const json_t *x = json_object_get(e, key);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *const group_metrics[] = {"sensitivity", "specificity", "ppv",
                                            "npv",         "auc",         "ece"};

static int is_group_metric(const char *m)
{
    for (size_t i = 0; i < sizeof group_metrics / sizeof group_metrics[0]; i++)
        if (!strcmp(m, group_metrics[i]))
            return 1;
    return 0;
}

static json_t *evidence(const char *where, long n, double observed)
{
    return json_pack("{s:s, s:I, s:o}", "where", where, "n", (json_int_t)n, "observed",
                     num(observed));
}

static basira_code judge(const json_t *crit, size_t i, const json_t *report, long min_n,
                         json_t **out, int *pass, basira_error *err)
{
    const char *id = json_string_value(json_object_get(crit, "id"));
    const char *metric = json_string_value(json_object_get(crit, "metric"));
    const char *stat = json_string_value(json_object_get(crit, "statistic"));
    const char *scope = json_string_value(json_object_get(crit, "scope"));
    const char *op = json_string_value(json_object_get(crit, "op"));
    const json_t *jv = json_object_get(crit, "value");
    if (!stat)
        stat = "value";
    if (!scope)
        scope = "overall";
    if (!metric || !op || !json_is_number(jv) ||
        (strcmp(op, ">=") && strcmp(op, ">") && strcmp(op, "<=") && strcmp(op, "<")) ||
        (strcmp(stat, "value") && strcmp(stat, "lower") && strcmp(stat, "upper")) ||
        (strcmp(scope, "overall") && strcmp(scope, "each_group")))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("criterion %zu: needs \"metric\", \"op\" (>=, >, <=, <) and a "
                                  "numeric \"value\"; \"statistic\" is value, lower or upper, "
                                  "\"scope\" overall or each_group"),
                                i + 1);
    int grp = is_group_metric(metric);
    if (!grp && strcmp(metric, "auc_gap") && strcmp(metric, "auc_vs_parent") &&
        strcmp(metric, "kappa"))
        return basira_error_set(err, BASIRA_E_FORMAT, _("criterion %zu: unknown metric '%s'"),
                                i + 1, metric);
    if (!grp && !strcmp(scope, "each_group"))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("criterion %zu: %s is one figure, not one per group"), i + 1,
                                metric);
    double v = json_number_value(jv);
    json_t *ev = json_array();
    int ok = 1;
    if (grp && !strcmp(scope, "each_group")) {
        size_t g;
        json_t *gr;
        int checked = 0;
        json_array_foreach(json_object_get(report, "groups"), g, gr)
        {
            long gn = (long)json_integer_value(json_object_get(gr, "n"));
            const char *name = json_string_value(json_object_get(gr, "value"));
            if (gn < min_n || !name || !strcmp(name, "unknown"))
                continue;
            double x = pick(gr, metric, stat);
            checked++;
            ok &= compare(x, op, v);
            json_array_append_new(ev, evidence(name, gn, x));
        }
        if (!checked)
            ok = 0; /* nothing was shown to meet the criterion */
    } else if (grp) {
        const json_t *ov = json_object_get(report, "overall");
        double x = pick(ov, metric, stat);
        ok = compare(x, op, v);
        json_array_append_new(
            ev, evidence("overall", (long)json_integer_value(json_object_get(ov, "n")), x));
    } else {
        const json_t *src =
            !strcmp(metric, "auc_gap") ? json_object_get(report, "group_gap")
            : !strcmp(metric, "auc_vs_parent")
                ? json_object_get(report, "parent")
                : json_object_get(json_object_get(report, "adjudication"), "kappa_malignant");
        const char *vk = !strcmp(metric, "auc_vs_parent") ? "difference" : "value";
        const char *key = !strcmp(stat, "lower") ? "lo" : !strcmp(stat, "upper") ? "hi" : vk;
        const json_t *x = json_object_get(src, key);
        double xv = json_is_number(x) ? json_number_value(x) : NAN;
        ok = compare(xv, op, v);
        json_array_append_new(
            ev, evidence(metric, (long)json_integer_value(json_object_get(report, "n")), xv));
    }
    *pass = ok;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:b, s:o}", "id", id ? id : metric, "metric",
                     metric, "statistic", stat, "scope", scope, "op", op, "value", v, "pass", ok,
                     "evidence", ev);
    return *out ? BASIRA_OK : basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

/* ---- the report ------------------------------------------------------------------------ */

basira_code basira_certify_run(const basira_certify_case *c, size_t n,
                               const basira_certify_options *o, const json_t *criteria,
                               json_t **report, int *all_pass, basira_error *err)
{
    *report = NULL;
    *all_pass = 0;
    const json_t *list = json_object_get(criteria, "criteria");
    if (!json_is_object(criteria) || !json_is_array(list))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the acceptance criteria must be an object with a "
                                  "\"criteria\" array"));
    long min_n = o->min_group_n;
    const json_t *jm = json_object_get(criteria, "min_group_n");
    if (jm) {
        if (!json_is_integer(jm) || json_integer_value(jm) < 1)
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("\"min_group_n\" must be a positive whole number"));
        min_n = (long)json_integer_value(jm);
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(c[i].p_malignant) || c[i].p_malignant < 0 || c[i].p_malignant > 1)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("case %zu: the malignant probability is not in [0, 1]"), i);

    partition groups, types;
    size_t *all = malloc(sizeof(size_t) * (n ? n : 1));
    if (!all)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++)
        all[i] = i;
    json_t *doc = NULL, *overall = NULL, *gj = NULL, *tj = NULL, *gap = NULL, *par = NULL,
           *adj = NULL;
    double auc_all, auc_g[MAX_GROUPS], auc_t[MAX_GROUPS];
    basira_code rc = partition_cases(c, n, 0, &groups, err);
    if (rc) {
        free(all);
        return rc;
    }
    if ((rc = partition_cases(c, n, 1, &types, err))) {
        partition_free(&groups);
        free(all);
        return rc;
    }
    double thr = o->medium_threshold;
    if ((rc = metrics(c, all, n, 0, thr, &overall, &auc_all, err)) ||
        (rc = partition_json(c, &groups, thr, min_n, auc_g, &gj, err)) ||
        (rc = partition_json(c, &types, thr, min_n, auc_t, &tj, err)) ||
        (rc = group_gap(c, &groups, auc_g, min_n, o, &gap, err)) ||
        (rc = parent_json(c, n, &par, err)) || (rc = adjudication_json(c, n, thr, &adj, err)))
        goto done;
    doc = json_pack("{s:I, s:f, s:I, s:O, s:O, s:O, s:O, s:o, s:o}", "n", (json_int_t)n,
                    "threshold", thr, "min_group_n", (json_int_t)min_n, "overall", overall,
                    "groups", gj, "lesion_types", tj, "group_gap", gap, "parent",
                    par ? json_incref(par) : json_null(), "adjudication",
                    adj ? json_incref(adj) : json_null());
    if (!doc) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    json_t *verdicts = json_array();
    json_object_set_new(doc, "criteria", verdicts);
    int every = json_array_size(list) > 0;
    size_t i;
    json_t *crit;
    json_array_foreach(list, i, crit)
    {
        json_t *v;
        int pass = 0;
        if ((rc = judge(crit, i, doc, min_n, &v, &pass, err)))
            goto done;
        json_array_append_new(verdicts, v);
        every &= pass;
    }
    json_object_set_new(doc, "pass", json_boolean(every));
    *all_pass = every;
    *report = doc;
    doc = NULL;
done:
    json_decref(doc);
    json_decref(overall);
    json_decref(gj);
    json_decref(tj);
    json_decref(gap);
    json_decref(par);
    json_decref(adj);
    partition_free(&groups);
    partition_free(&types);
    free(all);
    return rc;
}
