/*
 * report.c - every metric of a basira_eval_set, as one JSON document.
 *
 * The JSON is the single source of truth: the text/Markdown report and the
 * reliability diagram are drawn from it, so what a person reads and what a
 * script parses can never disagree.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "core/i18n.h"
#include "eval_internal.h"

void basira_eval_options_default(basira_eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->medium_threshold = -1.0;
    o->high_threshold = -1.0;
    o->bootstrap = 1000;
    o->seed = 20261122;
    o->small_group_n = 30;
}

static json_t *prop_json(const basira_proportion *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "value", basira_eval_json_num(p->value));
    json_object_set_new(j, "lo", basira_eval_json_num(p->lo));
    json_object_set_new(j, "hi", basira_eval_json_num(p->hi));
    json_object_set_new(j, "k", json_integer(p->k));
    json_object_set_new(j, "n", json_integer(p->n));
    return j;
}

static json_t *prop_of(long k, long n)
{
    basira_proportion p;
    basira_wilson(k, n, &p, NULL);
    return prop_json(&p);
}

static json_t *auc_json(const basira_auc *a)
{
    json_t *j = json_object();
    json_object_set_new(j, "value", basira_eval_json_num(a->value));
    json_object_set_new(j, "lo", basira_eval_json_num(a->lo));
    json_object_set_new(j, "hi", basira_eval_json_num(a->hi));
    json_object_set_new(j, "n_pos", json_integer(a->n_pos));
    json_object_set_new(j, "n_neg", json_integer(a->n_neg));
    json_object_set_new(j, "ci_method", json_string("delong"));
    return j;
}

static json_t *calibration_json(const basira_calibration *c)
{
    json_t *j = json_object(), *bins = json_array();
    json_object_set_new(j, "ece", basira_eval_json_num(c->ece));
    json_object_set_new(j, "mce", basira_eval_json_num(c->mce));
    json_object_set_new(j, "n", json_integer(c->n));
    for (int b = 0; b < BASIRA_EVAL_ECE_BINS; b++) {
        const basira_calibration_bin *x = &c->bins[b];
        json_array_append_new(bins, json_pack("{s:f, s:f, s:I, s:o, s:o}", "lo", x->lo, "hi", x->hi,
                                              "n", (json_int_t)x->n, "confidence",
                                              basira_eval_json_num(x->mean_conf), "observed",
                                              basira_eval_json_num(x->frac_positive)));
    }
    json_object_set_new(j, "bins", bins);
    return j;
}

/* Everything computed once per sample of a view. */
typedef struct view {
    const basira_eval_set *s;
    int k;
    size_t n;
    const double **p; /* probability rows */
    int *label;
    int *pred;   /* argmax */
    double *pm;  /* malignant probability */
    int *is_mal; /* truth malignant */
} view;

static void view_free(view *v)
{
    free(v->p);
    free(v->label);
    free(v->pred);
    free(v->pm);
    free(v->is_mal);
}

static basira_code view_init(view *v, const basira_eval_set *s, const size_t *idx, size_t n,
                             basira_error *err)
{
    memset(v, 0, sizeof *v);
    v->s = s;
    v->k = basira_eval_set_num_classes(s);
    v->n = n;
    size_t m = n ? n : 1;
    v->p = malloc(sizeof(*v->p) * m);
    v->label = malloc(sizeof(int) * m);
    v->pred = malloc(sizeof(int) * m);
    v->pm = malloc(sizeof(double) * m);
    v->is_mal = malloc(sizeof(int) * m);
    if (!v->p || !v->label || !v->pred || !v->pm || !v->is_mal) {
        view_free(v);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t t = 0; t < n; t++) {
        size_t i = idx ? idx[t] : t;
        v->p[t] = basira_eval_set_probs(s, i, &v->label[t]);
        int best = 0;
        for (int c = 1; c < v->k; c++)
            if (v->p[t][c] > v->p[t][best])
                best = c;
        v->pred[t] = best;
        v->pm[t] = basira_eval_set_p_malignant(s, i);
        v->is_mal[t] = basira_eval_set_class_malignant(s, v->label[t]);
    }
    return BASIRA_OK;
}

static int has_malignant_classes(const view *v)
{
    for (int c = 0; c < v->k; c++)
        if (basira_eval_set_class_malignant(v->s, c))
            return 1;
    return 0;
}

/* Mean recall over the classes present; NaN when none. */
static double balanced_accuracy(const long *per_class_n, const long *per_class_hit, int k)
{
    double s = 0.0;
    int present = 0;
    for (int c = 0; c < k; c++)
        if (per_class_n[c]) {
            s += (double)per_class_hit[c] / (double)per_class_n[c];
            present++;
        }
    return present ? s / present : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's default (linear) percentile of sorted v[0..n). */
static double quantile(const double *v, size_t n, double q)
{
    if (!n)
        return NAN;
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static json_t *ci_json(double value, double *reps, size_t nrep, const char *method)
{
    size_t m = 0;
    for (size_t r = 0; r < nrep; r++)
        if (isfinite(reps[r]))
            reps[m++] = reps[r];
    if (m)
        qsort(reps, m, sizeof *reps, cmp_double);
    /* Fewer than 100 usable replicates cannot place a 2.5% tail. */
    int ok = m >= 100;
    return json_pack("{s:o, s:o, s:o, s:s, s:I}", "value", basira_eval_json_num(value), "lo",
                     basira_eval_json_num(ok ? quantile(reps, m, 0.025) : NAN), "hi",
                     basira_eval_json_num(ok ? quantile(reps, m, 0.975) : NAN), "ci_method", method,
                     "replicates", (json_int_t)m);
}

/*
 * Seeded bootstrap, resampling within each true class so that each replicate has
 * the same class counts (a replicate without melanoma would have no melanoma AUC).
 * Each score column is sorted once; a replicate is a vector of multiplicities, so
 * its AUCs cost O(n) each instead of a sort (1000 replicates of 1500 images x 8
 * columns in well under a second).
 * Fills reps_bacc, reps_mauc (mean one-vs-rest AUC), reps_malauc [B] each.
 */
static basira_code bootstrap(const view *v, int B, uint64_t seed, double *reps_bacc,
                             double *reps_mauc, double *reps_malauc, basira_error *err)
{
    size_t n = v->n;
    int k = v->k, mal = has_malignant_classes(v);
    int ncol = k + (mal ? 1 : 0);
    size_t *by_class = malloc(sizeof(size_t) * n);
    size_t *order = malloc(sizeof(size_t) * n * (size_t)ncol);
    unsigned char *gstart = malloc(n * (size_t)ncol);
    int *pos = malloc(sizeof(int) * n * (size_t)ncol);
    double *sc = malloc(sizeof(double) * n);
    unsigned *w = malloc(sizeof(unsigned) * n);
    scored *work = malloc(basira_eval_scored_size() * n);
    basira_code rc = BASIRA_OK;
    if (!by_class || !order || !gstart || !pos || !sc || !w || !work) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    size_t start[BASIRA_EVAL_MAX_CLASSES + 1] = {0}, fill[BASIRA_EVAL_MAX_CLASSES];
    long cnt[BASIRA_EVAL_MAX_CLASSES] = {0};
    for (size_t i = 0; i < n; i++)
        cnt[v->label[i]]++;
    for (int c = 0; c < k; c++)
        start[c + 1] = start[c] + (size_t)cnt[c];
    memcpy(fill, start, sizeof fill);
    for (size_t i = 0; i < n; i++)
        by_class[fill[v->label[i]]++] = i;
    for (int c = 0; c < ncol; c++) {
        int *pc = pos + (size_t)c * n;
        for (size_t i = 0; i < n; i++) {
            sc[i] = c < k ? v->p[i][c] : v->pm[i];
            pc[i] = c < k ? v->label[i] == c : v->is_mal[i];
        }
        basira_eval_sort_ties(sc, n, order + (size_t)c * n, gstart + (size_t)c * n, work);
    }

    basira_rng rng;
    basira_rng_seed(&rng, seed);
    for (int r = 0; r < B; r++) {
        memset(w, 0, sizeof(unsigned) * n);
        for (int c = 0; c < k; c++)
            for (long t = 0; t < cnt[c]; t++)
                w[by_class[start[c] + basira_rng_below(&rng, (uint64_t)cnt[c])]]++;
        long hit[BASIRA_EVAL_MAX_CLASSES] = {0};
        for (size_t i = 0; i < n; i++)
            if (v->pred[i] == v->label[i])
                hit[v->label[i]] += w[i];
        reps_bacc[r] = balanced_accuracy(cnt, hit, k);
        double sum = 0.0;
        int defined = 0;
        for (int c = 0; c < k; c++) {
            double a = basira_eval_auc_weighted(order + (size_t)c * n, gstart + (size_t)c * n, n,
                                                pos + (size_t)c * n, w);
            if (isfinite(a)) {
                sum += a;
                defined++;
            }
        }
        reps_mauc[r] = defined ? sum / defined : NAN;
        reps_malauc[r] =
            mal ? basira_eval_auc_weighted(order + (size_t)k * n, gstart + (size_t)k * n, n,
                                           pos + (size_t)k * n, w)
                : NAN;
    }
done:
    free(by_class);
    free(order);
    free(gstart);
    free(pos);
    free(sc);
    free(w);
    free(work);
    return rc;
}

static json_t *triage_json(const view *v, double medium, double high)
{
    long tab[3][2] = {{0}}; /* [low, medium, high][benign, malignant] */
    for (size_t i = 0; i < v->n; i++) {
        int cat = v->pm[i] >= high ? 2 : v->pm[i] >= medium ? 1 : 0;
        tab[cat][v->is_mal[i] ? 1 : 0]++;
    }
    long nm = tab[0][1] + tab[1][1] + tab[2][1], nb = tab[0][0] + tab[1][0] + tab[2][0];
    json_t *t = json_object(), *table = json_object();
    static const char *const names[3] = {"low", "medium", "high"};
    for (int c = 0; c < 3; c++)
        json_object_set_new(table, names[c],
                            json_pack("{s:I, s:I}", "malignant", (json_int_t)tab[c][1], "benign",
                                      (json_int_t)tab[c][0]));
    json_object_set_new(t, "thresholds", json_pack("{s:f, s:f}", "medium", medium, "high", high));
    json_object_set_new(t, "table", table);
    json_object_set_new(t, "sensitivity", prop_of(tab[1][1] + tab[2][1], nm));
    json_object_set_new(t, "specificity", prop_of(tab[0][0], nb));
    json_object_set_new(t, "ppv_high", prop_of(tab[2][1], tab[2][0] + tab[2][1]));
    json_object_set_new(t, "npv_low", prop_of(tab[0][0], tab[0][0] + tab[0][1]));
    json_object_set_new(t, "sensitivity_high", prop_of(tab[2][1], nm));
    json_object_set_new(t, "referred",
                        prop_of(tab[1][0] + tab[1][1] + tab[2][0] + tab[2][1], (long)v->n));
    return t;
}

/* Metrics of one view. full = the whole set (confusion, per class, calibration, bootstrap). */
static basira_code metrics(const view *v, const basira_eval_options *o, int full, json_t **out,
                           basira_error *err)
{
    int k = v->k;
    long *conf = calloc((size_t)k * (size_t)k, sizeof(long));
    double *tmp = malloc(sizeof(double) * (v->n ? v->n : 1));
    int *hit = malloc(sizeof(int) * (v->n ? v->n : 1));
    json_t *j = json_object();
    basira_code rc = BASIRA_OK;
    if (!conf || !tmp || !hit || !j) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    long cnt[BASIRA_EVAL_MAX_CLASSES] = {0}, ok[BASIRA_EVAL_MAX_CLASSES] = {0}, correct = 0;
    long nm = 0;
    for (size_t i = 0; i < v->n; i++) {
        conf[v->label[i] * k + v->pred[i]]++;
        cnt[v->label[i]]++;
        ok[v->label[i]] += v->pred[i] == v->label[i];
        correct += v->pred[i] == v->label[i];
        nm += v->is_mal[i];
    }
    json_object_set_new(j, "n", json_integer((json_int_t)v->n));
    json_object_set_new(j, "n_malignant", json_integer(nm));
    json_object_set_new(j, "n_benign", json_integer((json_int_t)v->n - nm));
    json_object_set_new(j, "accuracy", prop_of(correct, (long)v->n));
    double bacc = balanced_accuracy(cnt, ok, k);

    basira_auc mal_auc = {NAN, NAN, NAN, NAN, 0, 0};
    if (has_malignant_classes(v) && (rc = basira_auc_delong(v->pm, v->is_mal, v->n, &mal_auc, err)))
        goto done;

    if (!full) {
        json_object_set_new(j, "balanced_accuracy",
                            json_pack("{s:o}", "value", basira_eval_json_num(bacc)));
        json_object_set_new(j, "auc_malignant", auc_json(&mal_auc));
        if (o->medium_threshold >= 0.0 && o->high_threshold >= 0.0)
            json_object_set_new(j, "triage",
                                triage_json(v, o->medium_threshold, o->high_threshold));
        goto done;
    }

    /* Confusion matrix and per-class figures. */
    json_t *labels = json_array(), *matrix = json_array(), *per = json_array();
    double auc_sum = 0.0;
    int auc_defined = 0;
    for (int c = 0; c < k; c++) {
        json_array_append_new(labels, json_string(basira_eval_set_class_code(v->s, c)));
        json_t *row = json_array();
        long tp = conf[c * k + c], fn = 0, fp = 0;
        for (int d = 0; d < k; d++) {
            json_array_append_new(row, json_integer(conf[c * k + d]));
            if (d != c) {
                fn += conf[c * k + d];
                fp += conf[d * k + c];
            }
        }
        json_array_append_new(matrix, row);
        long tn = (long)v->n - tp - fn - fp;
        for (size_t i = 0; i < v->n; i++) {
            tmp[i] = v->p[i][c];
            hit[i] = v->label[i] == c;
        }
        basira_auc a;
        if ((rc = basira_auc_delong(tmp, hit, v->n, &a, err)))
            goto done;
        if (isfinite(a.value)) {
            auc_sum += a.value;
            auc_defined++;
        }
        json_t *pc = json_object();
        json_object_set_new(pc, "code", json_string(basira_eval_set_class_code(v->s, c)));
        json_object_set_new(pc, "malignant",
                            json_boolean(basira_eval_set_class_malignant(v->s, c)));
        json_object_set_new(pc, "n", json_integer(cnt[c]));
        json_object_set_new(pc, "sensitivity", prop_of(tp, tp + fn));
        json_object_set_new(pc, "specificity", prop_of(tn, tn + fp));
        json_object_set_new(pc, "ppv", prop_of(tp, tp + fp));
        json_object_set_new(pc, "npv", prop_of(tn, tn + fn));
        json_object_set_new(pc, "auc", auc_json(&a));
        json_array_append_new(per, pc);
    }
    json_object_set_new(j, "confusion",
                        json_pack("{s:o, s:o, s:s}", "labels", labels, "matrix", matrix, "layout",
                                  "rows=truth, columns=predicted"));
    json_object_set_new(j, "per_class", per);
    double mean_auc = auc_defined ? auc_sum / auc_defined : NAN;

    /* Bootstrap intervals of the statistics without a closed form. */
    double *reps = NULL;
    int B = v->n ? o->bootstrap : 0;
    if (B > 0) {
        reps = malloc(sizeof(double) * 3 * (size_t)B);
        if (!reps) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto done;
        }
        if ((rc = bootstrap(v, B, o->seed, reps, reps + B, reps + 2 * B, err))) {
            free(reps);
            goto done;
        }
    }
    json_object_set_new(j, "balanced_accuracy",
                        ci_json(bacc, reps, (size_t)B, "stratified_bootstrap_percentile"));
    json_object_set_new(
        j, "auc_mean_ovr",
        ci_json(mean_auc, reps ? reps + B : NULL, (size_t)B, "stratified_bootstrap_percentile"));
    json_object_set_new(j, "auc_malignant", auc_json(&mal_auc));
    json_object_set_new(j, "auc_malignant_bootstrap",
                        ci_json(mal_auc.value, reps ? reps + 2 * B : NULL, (size_t)B,
                                "stratified_bootstrap_percentile"));
    free(reps);

    /* Calibration: top-class confidence, and the malignant probability. */
    basira_calibration cal;
    for (size_t i = 0; i < v->n; i++) {
        tmp[i] = fmin(1.0, v->p[i][v->pred[i]]);
        hit[i] = v->pred[i] == v->label[i];
    }
    if ((rc = basira_calibration_compute(tmp, hit, v->n, &cal, err)))
        goto done;
    json_t *calib = json_object();
    json_object_set_new(calib, "top_class", calibration_json(&cal));
    if (has_malignant_classes(v)) {
        if ((rc = basira_calibration_compute(v->pm, v->is_mal, v->n, &cal, err))) {
            json_decref(calib);
            goto done;
        }
        json_object_set_new(calib, "malignant", calibration_json(&cal));
    }
    double brier = 0.0, nll = 0.0;
    for (size_t i = 0; i < v->n; i++) {
        for (int c = 0; c < k; c++) {
            double y = v->label[i] == c ? 1.0 : 0.0;
            brier += (v->p[i][c] - y) * (v->p[i][c] - y);
        }
        nll -= log(fmax(v->p[i][v->label[i]], 1e-30));
    }
    json_object_set_new(calib, "brier", basira_eval_json_num(v->n ? brier / (double)v->n : NAN));
    json_object_set_new(calib, "nll", basira_eval_json_num(v->n ? nll / (double)v->n : NAN));
    json_object_set_new(j, "calibration", calib);
    if (o->medium_threshold >= 0.0 && o->high_threshold >= 0.0)
        json_object_set_new(j, "triage", triage_json(v, o->medium_threshold, o->high_threshold));
done:
    free(conf);
    free(tmp);
    free(hit);
    if (rc) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return BASIRA_OK;
}

/* Order of group names: age bands youngest first, then alphabetical. */
static int band_rank(const char *v)
{
    static const char *const bands[] = {"<30", "30-49", "50-69", ">=70"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, bands[i]))
            return i;
    return 4;
}

static int cmp_group(const char *a, const char *b)
{
    int ra = band_rank(a), rb = band_rank(b);
    return ra != rb ? ra - rb : strcmp(a, b);
}

/* Per-group metrics of one metadata column. */
static basira_code breakdown(const basira_eval_set *s, const char *name,
                             const basira_eval_options *o, json_t **out, basira_error *err)
{
    int a = basira_eval_set_attr_index(s, name);
    if (a < 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("cannot break down by '%s': no such metadata column"), name);
    size_t n = basira_eval_set_size(s);
    const char **vals = calloc(n ? n : 1, sizeof(char *));
    size_t *idx = malloc(sizeof(size_t) * (n ? n : 1));
    json_t *arr = json_array();
    basira_code rc = BASIRA_OK;
    if (!vals || !idx || !arr) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    /* Distinct values, sorted so the report is stable; unknown last. */
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        const char *x = basira_eval_set_attr(s, a, i);
        if (!x)
            continue;
        size_t t = 0;
        while (t < nv && strcmp(vals[t], x))
            t++;
        if (t == nv)
            vals[nv++] = x;
    }
    for (size_t t = 1; t < nv; t++)
        for (size_t u = t; u > 0 && cmp_group(vals[u - 1], vals[u]) > 0; u--) {
            const char *sw = vals[u];
            vals[u] = vals[u - 1];
            vals[u - 1] = sw;
        }
    for (size_t t = 0; t <= nv; t++) {
        const char *want = t < nv ? vals[t] : NULL;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const char *x = basira_eval_set_attr(s, a, i);
            if (want ? x && !strcmp(x, want) : !x)
                idx[m++] = i;
        }
        if (!m)
            continue;
        view v;
        json_t *g = NULL;
        if ((rc = view_init(&v, s, idx, m, err)))
            goto done;
        rc = metrics(&v, o, 0, &g, err);
        int has_mal = has_malignant_classes(&v);
        view_free(&v);
        if (rc)
            goto done;
        long nm = (long)json_integer_value(json_object_get(g, "n_malignant"));
        int small = (long)m < o->small_group_n || (has_mal && (nm < 10 || (long)m - nm < 10));
        json_object_set_new(g, "value", want ? json_string(want) : json_string("unknown"));
        json_object_set_new(g, "small", json_boolean(small));
        json_array_append_new(arr, g);
    }
done:
    free(vals);
    free(idx);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return BASIRA_OK;
}

basira_code basira_eval_report(const basira_eval_set *s, const basira_eval_options *o, json_t **out,
                               basira_error *err)
{
    basira_eval_options def;
    if (!o) {
        basira_eval_options_default(&def);
        o = &def;
    }
    if (!s || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("evaluation: missing data"));
    *out = NULL;
    if (o->bootstrap < 0 || o->bootstrap > 100000)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("bootstrap replicates must be between 0 and 100000"));
    if ((o->medium_threshold >= 0.0) != (o->high_threshold >= 0.0) ||
        (o->medium_threshold >= 0.0 && o->high_threshold < o->medium_threshold))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("triage thresholds: give both, with high >= medium"));
    view v;
    basira_code rc = view_init(&v, s, NULL, basira_eval_set_size(s), err);
    if (rc)
        return rc;
    json_t *j = NULL;
    rc = metrics(&v, o, 1, &j, err);
    view_free(&v);
    if (rc)
        return rc;
    json_t *classes = json_array();
    for (int c = 0; c < basira_eval_set_num_classes(s); c++)
        json_array_append_new(classes,
                              json_pack("{s:s, s:b}", "code", basira_eval_set_class_code(s, c),
                                        "malignant", basira_eval_set_class_malignant(s, c)));
    json_object_set_new(j, "classes", classes);
    if (o->n_breakdowns > 0) {
        json_t *bd = json_object();
        for (int b = 0; b < o->n_breakdowns; b++) {
            json_t *arr = NULL;
            if ((rc = breakdown(s, o->breakdowns[b], o, &arr, err))) {
                json_decref(bd);
                json_decref(j);
                return rc;
            }
            json_object_set_new(bd, o->breakdowns[b], arr);
        }
        json_object_set_new(j, "breakdowns", bd);
    }
    json_object_set_new(
        j, "methods",
        json_pack("{s:s, s:s, s:s, s:{s:i, s:I, s:s, s:s}, s:i, s:s, s:I}", "proportions",
                  "wilson_score_95", "auc", "delong_fast_midrank_95_normal_clipped", "predicted",
                  "argmax_of_probabilities", "bootstrap", "replicates", o->bootstrap, "seed",
                  (json_int_t)o->seed, "resampling", "stratified_by_true_class", "interval",
                  "percentile_95", "ece_bins", BASIRA_EVAL_ECE_BINS, "triage",
                  "p_malignant >= high: high; >= medium: medium; quality gate and patient "
                  "history not applied",
                  "small_group_n", (json_int_t)o->small_group_n));
    *out = j;
    return BASIRA_OK;
}
