/*
 * monitor.c - the drift reference of a model and the weekly monitor of each
 * clinic against it (the tests and thresholds are described in basira/drift.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basira/drift.h"
#include "basira/eval.h"
#include "core/i18n.h"

#define WEEK_S 604800
#define MONDAY_OFFSET_S 345600 /* 1970-01-01 was a Thursday; 1970-01-05 a Monday */
#define MAX_TESTS 64
#define WINDOW_WEEKS 4

/* The categorical fields of a case, by name. */
static const char *cat_value(const basira_drift_case *c, int f)
{
    switch (f) {
    case 0:
        return c->skin_tone;
    case 1:
        return c->photo_kind;
    case 2:
        return c->body_site;
    default:
        return c->scored ? c->category : "";
    }
}
static const char *const cat_names[] = {"skin_tone", "photo_kind", "body_site", "risk_category"};
#define N_CAT 4

/* The continuous fields: 0 risk index, 1 P(malignant), 2..4 mean R G B, 5 brightness, 6.. probs. */
static const char *const cont_names[] = {"risk_index", "p_malignant", "mean_r",
                                         "mean_g",     "mean_b",      "brightness"};
#define N_CONT 6
/* Class probabilities below this are one value for the drift tests (test_continuous). */
#define PROB_FLOOR 0.01

static int cont_value(const basira_drift_case *c, int f, double *v)
{
    if (f <= 1) {
        if (!c->scored)
            return 0;
        *v = f == 0 ? c->risk_index : c->p_mal;
        return 1;
    }
    if (f <= 5) {
        if (!c->has_image_stats)
            return 0;
        *v = f == 5 ? c->brightness : c->mean_rgb[f - 2];
        return 1;
    }
    if (!c->scored || f - N_CONT >= c->num_classes)
        return 0;
    *v = c->probs[f - N_CONT];
    return 1;
}

static int64_t week_of(int64_t ts)
{
    int64_t s = ts - MONDAY_OFFSET_S;
    return s >= 0 ? s / WEEK_S : -((-s + WEEK_S - 1) / WEEK_S);
}

static json_t *week_date(int64_t week)
{
    time_t t = (time_t)(week * WEEK_S + MONDAY_OFFSET_S);
    struct tm tm;
    char buf[16];
    if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%d", &tm))
        return json_null();
    return json_string(buf);
}

/* ---- the reference ------------------------------------------------------------- */

static json_t *shares_of(const basira_drift_case *cases, size_t n, int f)
{
    json_t *counts = json_object();
    long total = 0;
    for (size_t i = 0; i < n && counts; i++) {
        const char *v = cat_value(&cases[i], f);
        if (!v[0])
            continue;
        json_t *old = json_object_get(counts, v);
        json_object_set_new(counts, v, json_integer(old ? json_integer_value(old) + 1 : 1));
        total++;
    }
    json_t *shares = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(counts, key, val)
    {
        json_object_set_new(shares, key,
                            json_real((double)json_integer_value(val) / (double)total));
    }
    json_decref(counts);
    return shares;
}

int basira_drift_reference_outcome(const json_t *ref, const char *diagnosis)
{
    size_t i;
    json_t *v;
    if (!diagnosis || !diagnosis[0])
        return -1;
    json_array_foreach(json_object_get(ref, "malignant"), i,
                       v) if (json_is_string(v) &&
                              !strcmp(json_string_value(v), diagnosis)) return 1;
    json_array_foreach(json_object_get(ref, "classes"), i,
                       v) if (json_is_string(v) &&
                              !strcmp(json_string_value(v), diagnosis)) return 0;
    return -1;
}

basira_code basira_drift_reference_build(const basira_drift_case *cases, size_t n,
                                         const char *const *codes, const int *malignant,
                                         int num_classes, const json_t *model, json_t **out,
                                         basira_error *err)
{
    if (!out || (n && !cases) || !codes || !malignant || num_classes < 2 ||
        num_classes > BASIRA_DRIFT_MAX_CLASSES)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (n < BASIRA_DRIFT_MIN_CASES)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("a drift reference needs at least %d cases (got %zu)"),
                                 BASIRA_DRIFT_MIN_CASES, n);
    json_t *ref = json_pack("{s:s, s:i, s:I}", "format", "basira-drift-reference", "version", 1,
                            "n", (json_int_t)n);
    json_t *classes = json_array(), *shares = json_object(), *samples = json_object();
    json_t *mal = json_array();
    if (!ref || !classes || !shares || !samples || !mal ||
        json_object_set_new(ref, "malignant", mal))
        goto oom;
    for (int k = 0; k < num_classes; k++) {
        json_array_append_new(classes, json_string(codes[k]));
        if (malignant[k])
            json_array_append_new(mal, json_string(codes[k]));
    }
    long failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += !cases[i].quality_ok;
    for (int f = 0; f < N_CAT; f++)
        json_object_set_new(shares, cat_names[f], shares_of(cases, n, f));
    for (int f = 0; f < N_CONT + num_classes; f++) {
        json_t *arr = json_array();
        double v;
        for (size_t i = 0; i < n && arr; i++)
            if (cont_value(&cases[i], f, &v))
                json_array_append_new(arr, json_real(v));
        char name[96];
        if (f < N_CONT)
            snprintf(name, sizeof name, "%s", cont_names[f]);
        else
            snprintf(name, sizeof name, "prob:%s", codes[f - N_CONT]);
        if (!arr || json_object_set_new(samples, name, arr))
            goto oom;
    }
    if (json_object_set_new(ref, "classes", classes) ||
        json_object_set_new(ref, "quality_fail_rate", json_real((double)failed / (double)n)) ||
        json_object_set_new(ref, "shares", shares) ||
        json_object_set_new(ref, "samples", samples) ||
        json_object_set(ref, "model", model ? (json_t *)model : json_null()))
        goto oom_ref;
    *out = ref;
    return BASIRA_OK;
oom:
    json_decref(classes);
    json_decref(shares);
    json_decref(samples);
oom_ref:
    json_decref(ref);
    return basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

basira_code basira_drift_reference_check(const json_t *ref, basira_error *err)
{
    const char *format = json_string_value(json_object_get(ref, "format"));
    json_t *classes = json_object_get(ref, "classes"), *shares = json_object_get(ref, "shares");
    json_t *samples = json_object_get(ref, "samples");
    json_t *qf = json_object_get(ref, "quality_fail_rate");
    if (!format || strcmp(format, "basira-drift-reference") ||
        json_integer_value(json_object_get(ref, "version")) != 1)
        return basira_error_setm(err, BASIRA_E_FORMAT, N_("not a Basira drift reference"));
    if (!json_is_array(classes) || json_array_size(classes) < 2 ||
        json_array_size(classes) > BASIRA_DRIFT_MAX_CLASSES || !json_is_object(shares) ||
        !json_is_object(samples) || !json_is_number(qf) || json_number_value(qf) < 0.0 ||
        json_number_value(qf) > 1.0)
        return basira_error_setm(err, BASIRA_E_FORMAT,
                                 N_("drift reference: classes, shares, samples or "
                                    "quality_fail_rate missing or invalid"));
    for (int f = 0; f < N_CAT; f++) {
        json_t *s = json_object_get(shares, cat_names[f]);
        const char *key;
        json_t *v;
        if (!json_is_object(s))
            return basira_error_setm(err, BASIRA_E_FORMAT, N_("drift reference: no shares of %s"),
                                     cat_names[f]);
        json_object_foreach(s, key, v) if (
            !json_is_number(v) ||
            json_number_value(v) <
                0.0) return basira_error_setm(err, BASIRA_E_FORMAT,
                                              N_("drift reference: share %s of %s is not a number"),
                                              key, cat_names[f]);
    }
    const char *key;
    json_t *arr;
    json_object_foreach(samples, key, arr)
    {
        size_t i;
        json_t *v;
        if (!json_is_array(arr))
            return basira_error_setm(err, BASIRA_E_FORMAT,
                                     N_("drift reference: sample %s is not an array"), key);
        json_array_foreach(arr, i, v) if (
            !json_is_number(v) ||
            !isfinite(json_number_value(
                v))) return basira_error_setm(err, BASIRA_E_FORMAT,
                                              N_("drift reference: sample %s holds a non-number"),
                                              key);
    }
    return BASIRA_OK;
}

/* ---- one week of one clinic ---------------------------------------------------- */

/* The tests of a week, Bonferroni-corrected together once all are known. */
typedef struct family {
    json_t *obj[MAX_TESTS];
    double p[MAX_TESTS];
    char name[MAX_TESTS][96];
    int n;
} family;

static void family_add(family *fam, json_t *obj, double p, const char *name)
{
    if (fam->n >= MAX_TESTS || !obj)
        return;
    json_object_set_new(obj, "p", json_real(p));
    fam->obj[fam->n] = obj;
    fam->p[fam->n] = p;
    snprintf(fam->name[fam->n], sizeof fam->name[0], "%s", name);
    fam->n++;
}

/* Categorical field f of the week's cases against the reference shares. */
static json_t *test_categorical(const json_t *ref_shares, const basira_drift_case *const *wk,
                                size_t n, int f, family *fam, double *psi_out, basira_error *err)
{
    enum { MAXC = 64 };
    const char *keys[MAXC];
    double e[MAXC], a[MAXC];
    long cnt[MAXC];
    int k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ref_shares, key, v)
    {
        if (k == MAXC)
            break;
        keys[k] = key;
        e[k] = json_number_value(v);
        cnt[k++] = 0;
    }
    long total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *val = cat_value(wk[i], f);
        if (!val[0])
            continue;
        int j = 0;
        while (j < k && strcmp(keys[j], val))
            j++;
        if (j == k) {
            if (k == MAXC)
                continue;
            keys[k] = val;
            e[k] = 0.0;
            cnt[k++] = 0;
        }
        cnt[j]++;
        total++;
    }
    json_t *o = json_object(), *shares = json_object();
    if (!o || !shares) {
        json_decref(o);
        json_decref(shares);
        return NULL;
    }
    json_object_set_new(o, "n", json_integer(total));
    double etot = 0.0;
    for (int j = 0; j < k; j++)
        etot += e[j];
    /* Nothing to compare with (the reference does not know this field): no test. */
    if (total == 0 || k == 0 || !(etot > 0.0)) {
        json_decref(shares);
        return o;
    }
    for (int j = 0; j < k; j++) {
        a[j] = (double)cnt[j] / (double)total;
        json_object_set_new(shares, keys[j], json_real(a[j]));
    }
    double stat, p;
    int dof;
    if (basira_drift_chi2_gof(cnt, e, k, &stat, &dof, &p, err)) {
        json_decref(shares);
        json_decref(o);
        return NULL;
    }
    double psi = basira_drift_psi(e, a, k);
    *psi_out = psi;
    json_object_set_new(o, "shares", shares);
    json_object_set_new(o, "psi", json_real(psi));
    json_object_set_new(o, "band", json_string(basira_drift_psi_band(psi)));
    json_object_set_new(o, "chi2", json_real(stat));
    json_object_set_new(o, "dof", json_integer(dof));
    family_add(fam, json_incref(o), p, cat_names[f]); /* the family holds its own reference */
    return o;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* PSI of sample b on the deciles of sample a (sorted). */
static double psi_deciles(const double *a_sorted, size_t na, const double *b, size_t nb)
{
    double edges[9], e[10] = {0}, s[10] = {0};
    for (int q = 0; q < 9; q++)
        edges[q] = a_sorted[(size_t)((q + 1) * (double)na / 10.0) < na
                                ? (size_t)((q + 1) * (double)na / 10.0)
                                : na - 1];
    for (size_t i = 0; i < na; i++) {
        int q = 0;
        while (q < 9 && a_sorted[i] > edges[q])
            q++;
        e[q] += 1.0 / (double)na;
    }
    for (size_t i = 0; i < nb; i++) {
        int q = 0;
        while (q < 9 && b[i] > edges[q])
            q++;
        s[q] += 1.0 / (double)nb;
    }
    return basira_drift_psi(e, s, 10);
}

/* Continuous field f: KS against the reference sample, PSI on its deciles. */
static json_t *test_continuous(const json_t *sample, const basira_drift_case *const *wk, size_t n,
                               int f, const char *name, family *fam, basira_error *err)
{
    size_t na = json_array_size(sample);
    double *a = malloc((na ? na : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
    json_t *o = json_object();
    if (!a || !b || !o) {
        free(a);
        free(b);
        json_decref(o);
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
        return NULL;
    }
    /*
     * A class probability under PROB_FLOOR says "not this class"; how far under is the
     * model's noise, not the population's. Without the floor a week whose ten photos
     * all give vasc 1e-6 where the reference's give 1e-3 raised an alert (KS D 0.76)
     * that no clinician could act on. Floored in both samples, the tie is exact, and
     * a class that really appears (probabilities above 1%) is still seen. The means
     * reported are of the raw values.
     */
    int floored = f >= N_CONT;
    double ref_mean = 0.0;
    for (size_t i = 0; i < na; i++) {
        a[i] = json_number_value(json_array_get(sample, i));
        ref_mean += a[i] / (double)na;
        if (floored && a[i] < PROB_FLOOR)
            a[i] = PROB_FLOOR;
    }
    size_t nb = 0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        if (cont_value(wk[i], f, &b[nb])) {
            sum += b[nb];
            if (floored && b[nb] < PROB_FLOOR)
                b[nb] = PROB_FLOOR;
            nb++;
        }
    json_object_set_new(o, "n", json_integer((json_int_t)nb));
    if (na >= BASIRA_DRIFT_MIN_CASES && nb >= BASIRA_DRIFT_MIN_CASES) {
        double d, p;
        if (basira_drift_ks2(a, na, b, nb, &d, &p, err)) {
            free(a);
            free(b);
            json_decref(o);
            return NULL;
        }
        qsort(a, na, sizeof *a, cmp_double);
        double psi = psi_deciles(a, na, b, nb);
        json_object_set_new(o, "mean", json_real(sum / (double)nb));
        json_object_set_new(o, "reference_mean", json_real(ref_mean));
        json_object_set_new(o, "ks_d", json_real(d));
        json_object_set_new(o, "psi", json_real(psi));
        json_object_set_new(o, "band", json_string(basira_drift_psi_band(psi)));
        family_add(fam, json_incref(o), p, name);
    }
    free(a);
    free(b);
    return o;
}

/* Calibration of P(malignant) on the outcomes of the window. */
static json_t *test_calibration(const basira_drift_case *const *win, size_t n, family *fam,
                                basira_error *err)
{
    double *conf = malloc((n ? n : 1) * sizeof *conf);
    int *hit = malloc((n ? n : 1) * sizeof *hit);
    json_t *o = json_object();
    if (!conf || !hit || !o) {
        free(conf);
        free(hit);
        json_decref(o);
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
        return NULL;
    }
    size_t m = 0;
    double obs = 0.0, exp_ = 0.0, var = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!win[i]->scored || win[i]->outcome < 0)
            continue;
        conf[m] = win[i]->p_mal;
        hit[m] = win[i]->outcome == 1;
        obs += hit[m];
        exp_ += conf[m];
        var += conf[m] * (1.0 - conf[m]);
        m++;
    }
    json_object_set_new(o, "window_weeks", json_integer(WINDOW_WEEKS));
    json_object_set_new(o, "n", json_integer((json_int_t)m));
    if (m > 0) {
        basira_calibration cal;
        if (basira_calibration_compute(conf, hit, m, &cal, err)) {
            free(conf);
            free(hit);
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "ece", json_real(cal.ece));
        json_object_set_new(o, "observed", json_real(obs));
        json_object_set_new(o, "expected", json_real(exp_));
        json_object_set_new(o, "observed_expected",
                            exp_ > 0.0 ? json_real(obs / exp_) : json_null());
        if (m >= BASIRA_DRIFT_MIN_CASES && var > 0.0)
            family_add(fam, json_incref(o), basira_drift_normal_p2((obs - exp_) / sqrt(var)),
                       "calibration");
    }
    free(conf);
    free(hit);
    return o;
}

/* One week: wk[0..n) its cases, win[0..nw) the cases of the calibration window. */
static json_t *monitor_week(const json_t *ref, int64_t week, const basira_drift_case *const *wk,
                            size_t n, const basira_drift_case *const *win, size_t nw,
                            basira_drift_level *level, basira_error *err)
{
    *level = BASIRA_DRIFT_NONE;
    json_t *o = json_object(), *reasons = json_array(), *in = json_object(), *outp = json_object();
    if (!o || !reasons || !in || !outp) {
        json_decref(o);
        json_decref(reasons);
        json_decref(in);
        json_decref(outp);
        return NULL;
    }
    json_object_set_new(o, "week_start", week_date(week));
    json_object_set_new(o, "n", json_integer((json_int_t)n));
    if (n < BASIRA_DRIFT_MIN_CASES) {
        json_object_set_new(o, "alert", json_string("insufficient"));
        json_object_set_new(o, "reasons", reasons);
        json_decref(in);
        json_decref(outp);
        return o;
    }
    family fam;
    memset(&fam, 0, sizeof fam);
    int big_psi = 0;
    basira_code rc = BASIRA_OK;
    /* Input: quality gate. */
    long q[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        q[!wk[i]->quality_ok]++;
    double rate = json_number_value(json_object_get(ref, "quality_fail_rate"));
    double qp = basira_drift_binomial_p2(q[1], (long)n, rate);
    json_t *qo = json_object();
    if (!qo) {
        rc = BASIRA_E_NOMEM;
        goto done;
    }
    json_object_set_new(qo, "value", json_real((double)q[1] / (double)n));
    json_object_set_new(qo, "reference", json_real(rate));
    family_add(&fam, json_incref(qo), qp, "quality_fail_rate");
    json_object_set_new(in, "quality_fail_rate", qo);
    /* Categorical inputs and the risk category (an output). */
    json_t *shares = json_object_get(ref, "shares");
    for (int f = 0; f < N_CAT; f++) {
        double psi = 0.0;
        json_t *t =
            test_categorical(json_object_get(shares, cat_names[f]), wk, n, f, &fam, &psi, err);
        if (!t) {
            rc = BASIRA_E_INTERNAL;
            goto done;
        }
        big_psi |= psi >= 0.25 && n >= 50;
        json_object_set_new(f == 3 ? outp : in, cat_names[f], t);
    }
    /* Continuous values. */
    json_t *samples = json_object_get(ref, "samples"), *classes = json_object_get(ref, "classes");
    json_t *softmax = json_object();
    int k = (int)json_array_size(classes);
    for (int f = 0; softmax && f < N_CONT + k; f++) {
        char name[96];
        if (f < N_CONT)
            snprintf(name, sizeof name, "%s", cont_names[f]);
        else
            snprintf(name, sizeof name, "prob:%s",
                     json_string_value(json_array_get(classes, (size_t)(f - N_CONT))));
        json_t *s = json_object_get(samples, name);
        if (!s)
            continue;
        json_t *t = test_continuous(s, wk, n, f, name, &fam, err);
        if (!t) {
            rc = BASIRA_E_INTERNAL;
            goto done_softmax;
        }
        if (f < 2)
            json_object_set_new(outp, cont_names[f], t);
        else if (f < N_CONT)
            json_object_set_new(in, cont_names[f], t);
        else
            json_object_set_new(softmax, name + 5, t);
    }
    json_object_set_new(outp, "softmax", softmax);
    softmax = NULL;
    json_t *cal = test_calibration(win, nw, &fam, err);
    if (!cal) {
        rc = BASIRA_E_INTERNAL;
        goto done;
    }
    json_object_set_new(o, "calibration", cal);
    /* Bonferroni over the week's family. */
    for (int t = 0; t < fam.n; t++) {
        double adj = fmin(1.0, fam.p[t] * fam.n);
        json_object_set_new(fam.obj[t], "p_adjusted", json_real(adj));
        if (adj < BASIRA_DRIFT_ALPHA_WATCH) {
            json_array_append_new(reasons, json_string(fam.name[t]));
            basira_drift_level l =
                adj < BASIRA_DRIFT_ALPHA_ALERT ? BASIRA_DRIFT_ALERT : BASIRA_DRIFT_WATCH;
            if (l > *level)
                *level = l;
        }
    }
    if (big_psi && *level < BASIRA_DRIFT_WATCH) {
        *level = BASIRA_DRIFT_WATCH;
        json_array_append_new(reasons, json_string("psi"));
    }
    json_object_set_new(o, "tests", json_integer(fam.n));
    goto done;
done_softmax:
    json_decref(softmax);
done:
    for (int t = 0; t < fam.n; t++)
        json_decref(fam.obj[t]);
    json_object_set_new(o, "input", in);
    json_object_set_new(o, "output", outp);
    json_object_set_new(o, "alert", json_string(basira_drift_level_name(*level)));
    json_object_set_new(o, "reasons", reasons);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- all clinics ------------------------------------------------------------------ */

static int cmp_case(const void *x, const void *y)
{
    const basira_drift_case *a = *(const basira_drift_case *const *)x;
    const basira_drift_case *b = *(const basira_drift_case *const *)y;
    int c = strcmp(a->clinic, b->clinic);
    if (c)
        return c;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

/* One clinic: cs[0..n) its cases sorted by time. */
static json_t *monitor_clinic(const json_t *ref, const basira_drift_case *const *cs, size_t n,
                              basira_error *err)
{
    json_t *o = json_pack("{s:s}", "clinic", cs[0]->clinic), *weeks = json_array();
    basira_drift_level levels[4096];
    int nl = 0;
    json_t *first_alert = json_null();
    size_t i = 0;
    while (o && weeks && i < n) {
        int64_t w = week_of(cs[i]->ts);
        size_t j = i;
        while (j < n && week_of(cs[j]->ts) == w)
            j++;
        size_t w0 = i;
        while (w0 > 0 && week_of(cs[w0 - 1]->ts) > w - WINDOW_WEEKS)
            w0--;
        basira_drift_level l;
        json_t *wo = monitor_week(ref, w, cs + i, j - i, cs + w0, j - w0, &l, err);
        if (!wo) {
            json_decref(o);
            json_decref(weeks);
            json_decref(first_alert);
            return NULL;
        }
        if (l == BASIRA_DRIFT_ALERT && json_is_null(first_alert)) {
            json_decref(first_alert);
            first_alert = week_date(w);
        }
        if (j - i >= BASIRA_DRIFT_MIN_CASES && nl < 4096)
            levels[nl++] = l;
        json_array_append_new(weeks, wo);
        i = j;
    }
    if (!o || !weeks) {
        json_decref(o);
        json_decref(weeks);
        json_decref(first_alert);
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
        return NULL;
    }
    basira_drift_level now = BASIRA_DRIFT_NONE;
    for (int t = nl - WINDOW_WEEKS < 0 ? 0 : nl - WINDOW_WEEKS; t < nl; t++)
        if (levels[t] > now)
            now = levels[t];
    json_object_set_new(o, "alert", json_string(basira_drift_level_name(now)));
    json_object_set_new(o, "first_alert_week", first_alert);
    json_object_set_new(o, "cases", json_integer((json_int_t)n));
    json_object_set_new(o, "weeks", weeks);
    return o;
}

basira_code basira_drift_monitor(const json_t *ref, const basira_drift_case *cases, size_t n,
                                 json_t **out, basira_error *err)
{
    if (!out || (n && !cases))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    basira_code rc = basira_drift_reference_check(ref, err);
    if (rc)
        return rc;
    const basira_drift_case **sorted = malloc((n ? n : 1) * sizeof *sorted);
    json_t *arr = json_array();
    if (!sorted || !arr) {
        free(sorted);
        json_decref(arr);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &cases[i];
    qsort(sorted, n, sizeof *sorted, cmp_case);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && !strcmp(sorted[j]->clinic, sorted[i]->clinic))
            j++;
        json_t *c = monitor_clinic(ref, sorted + i, j - i, err);
        if (!c) {
            free(sorted);
            json_decref(arr);
            return err && err->code ? err->code : BASIRA_E_NOMEM;
        }
        json_array_append_new(arr, c);
        i = j;
    }
    free(sorted);
    *out = arr;
    return BASIRA_OK;
}
