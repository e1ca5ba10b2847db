/*
 * stats.c - the elementary statistics of evaluation: Wilson intervals, DeLong AUC,
 * calibration error, temperature scaling and the triage operating point.
 *
 * Everything here is pure computation on arrays, so that each piece can be
 * checked against a reference implementation (tests/eval/).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "core/i18n.h"
#include "eval_internal.h"

/* Two-sided 95% normal quantile. */
#define Z95 1.959963984540054

basira_code basira_wilson(long k, long n, basira_proportion *out, basira_error *err)
{
    if (!out || n < 0 || k < 0 || k > n)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("a proportion needs 0 <= successes <= total (got %ld of %ld)"), k,
                                n);
    out->k = k;
    out->n = n;
    if (n == 0) {
        out->value = out->lo = out->hi = NAN;
        return BASIRA_OK;
    }
    double nn = (double)n, p = (double)k / nn, z2 = Z95 * Z95;
    double denom = 1.0 + z2 / nn;
    double centre = (p + z2 / (2.0 * nn)) / denom;
    double half = Z95 * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
    out->value = p;
    /* At k = 0 and k = n the exact bound is 0 or 1; rounding must not leave 1e-17. */
    out->lo = k == 0 ? 0.0 : fmax(0.0, centre - half);
    out->hi = k == n ? 1.0 : fmin(1.0, centre + half);
    return BASIRA_OK;
}

typedef struct scored {
    double v;
    size_t i;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored *)a)->v, y = ((const scored *)b)->v;
    return (x > y) - (x < y);
}

double basira_eval_rank_key(double x)
{
    /*
     * Scores are float32 network outputs: two photos the model cannot tell apart
     * still differ in the last bits (a collapsed model gave 0.437274292 +- 1e-9 for
     * every image, and its AUC came out 0.52 in one program and 0.40 in another,
     * decided by rounding noise). Ranking on 6 significant digits makes such scores
     * the ties they are, while keeping genuinely different small probabilities
     * (1e-9 vs 2e-9) apart, which an absolute rounding would not.
     */
    if (x == 0.0 || !isfinite(x))
        return x;
    int e;
    double m = frexp(x, &e); /* x = m * 2^e, 0.5 <= |m| < 1 */
    /* 2^20 ~ 1e6: keep 20 significant bits of the mantissa. */
    return ldexp(round(m * 1048576.0) / 1048576.0, e);
}

/*
 * Midranks (1-based, ties get the mean of the ranks they span) of x[0..n) into
 * rank[0..n). work has room for n entries.
 */
void basira_eval_midranks(const double *x, size_t n, double *rank, scored *work)
{
    for (size_t i = 0; i < n; i++) {
        work[i].v = basira_eval_rank_key(x[i]);
        work[i].i = i;
    }
    qsort(work, n, sizeof *work, cmp_scored);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && work[j].v == work[i].v)
            j++;
        /* ranks i+1 .. j share their mean */
        double r = 0.5 * (double)(i + 1 + j);
        for (size_t t = i; t < j; t++)
            rank[work[t].i] = r;
        i = j;
    }
}

static double sample_variance(const double *x, size_t n)
{
    double mean = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    return ss / (double)(n - 1);
}

basira_code basira_auc_delong(const double *scores, const int *positive, size_t n, basira_auc *out,
                              basira_error *err)
{
    if (!out || (n && (!scores || !positive)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("AUC: missing scores"));
    out->value = out->lo = out->hi = out->variance = NAN;
    out->n_pos = out->n_neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(scores[i]))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("AUC: score %zu is not a finite number"), i);
        if (positive[i])
            out->n_pos++;
        else
            out->n_neg++;
    }
    size_t m = (size_t)out->n_pos, k = (size_t)out->n_neg;
    if (m == 0 || k == 0)
        return BASIRA_OK; /* undefined: reported as null */

    /*
     * Fast DeLong (Sun & Xu, IEEE SPL 2014): with midranks tx within the positives,
     * ty within the negatives and tz over both, the placement values of DeLong's
     * structural components are (tz - tx) / k for positives and 1 - (tz - ty) / m
     * for negatives, which costs three sorts instead of m x k comparisons.
     */
    double *x = malloc(sizeof(double) * 3 * n);
    scored *work = malloc(sizeof(scored) * n);
    if (!x || !work) {
        free(x);
        free(work);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    double *z = x + n, *rank = x + 2 * n;
    size_t ip = 0, in = m;
    for (size_t i = 0; i < n; i++) {
        if (positive[i])
            z[ip++] = scores[i];
        else
            z[in++] = scores[i];
    }
    basira_eval_midranks(z, n, rank, work);      /* tz */
    basira_eval_midranks(z, m, x, work);         /* tx into x[0..m) */
    basira_eval_midranks(z + m, k, x + m, work); /* ty into x[m..n) */
    double sum_pos_rank = 0.0;
    for (size_t i = 0; i < m; i++)
        sum_pos_rank += rank[i];
    double dm = (double)m, dk = (double)k;
    out->value = sum_pos_rank / (dm * dk) - (dm + 1.0) / (2.0 * dk);
    /* Structural components, overwriting the within-group ranks. */
    for (size_t i = 0; i < m; i++)
        x[i] = (rank[i] - x[i]) / dk;
    for (size_t j = m; j < n; j++)
        x[j] = 1.0 - (rank[j] - x[j]) / dm;
    if (m >= 2 && k >= 2) {
        out->variance = sample_variance(x, m) / dm + sample_variance(x + m, k) / dk;
        double se = sqrt(fmax(out->variance, 0.0));
        out->lo = fmax(0.0, out->value - Z95 * se);
        out->hi = fmin(1.0, out->value + Z95 * se);
    }
    free(x);
    free(work);
    return BASIRA_OK;
}

void basira_eval_sort_ties(const double *x, size_t n, size_t *order, unsigned char *gstart,
                           scored *work)
{
    for (size_t i = 0; i < n; i++) {
        work[i].v = basira_eval_rank_key(x[i]);
        work[i].i = i;
    }
    qsort(work, n, sizeof *work, cmp_scored);
    for (size_t t = 0; t < n; t++) {
        order[t] = work[t].i;
        gstart[t] = t == 0 || work[t].v != work[t - 1].v;
    }
}

double basira_eval_auc_weighted(const size_t *order, const unsigned char *gstart, size_t n,
                                const int *positive, const unsigned *w)
{
    /*
     * Mann-Whitney on a resample given as multiplicities: walking the scores upwards,
     * each tie group's positives beat every negative below and half of those tied.
     */
    double num = 0.0, neg_below = 0.0, pos_total = 0.0, wp = 0.0, wn = 0.0;
    for (size_t t = 0; t <= n; t++) {
        if (t == n || gstart[t]) {
            num += wp * (neg_below + 0.5 * wn);
            neg_below += wn;
            pos_total += wp;
            wp = wn = 0.0;
            if (t == n)
                break;
        }
        size_t i = order[t];
        if (positive[i])
            wp += w[i];
        else
            wn += w[i];
    }
    if (pos_total == 0.0 || neg_below == 0.0)
        return NAN;
    return num / (pos_total * neg_below);
}

basira_code basira_calibration_compute(const double *conf, const int *hit, size_t n,
                                       basira_calibration *out, basira_error *err)
{
    if (!out || (n && (!conf || !hit)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("calibration: missing data"));
    double sum_conf[BASIRA_EVAL_ECE_BINS] = {0}, sum_hit[BASIRA_EVAL_ECE_BINS] = {0};
    memset(out, 0, sizeof *out);
    out->n = (long)n;
    for (int b = 0; b < BASIRA_EVAL_ECE_BINS; b++) {
        out->bins[b].lo = (double)b / BASIRA_EVAL_ECE_BINS;
        out->bins[b].hi = (double)(b + 1) / BASIRA_EVAL_ECE_BINS;
    }
    for (size_t i = 0; i < n; i++) {
        double c = conf[i];
        if (!(c >= 0.0 && c <= 1.0))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("calibration: confidence %zu is not in [0, 1]"), i);
        /* Bins are (lo, hi]: a confidence of exactly 1/15 belongs to the first bin. */
        int b = (int)ceil(c * BASIRA_EVAL_ECE_BINS) - 1;
        if (b < 0)
            b = 0;
        if (b >= BASIRA_EVAL_ECE_BINS)
            b = BASIRA_EVAL_ECE_BINS - 1;
        out->bins[b].n++;
        sum_conf[b] += c;
        sum_hit[b] += hit[i] ? 1.0 : 0.0;
    }
    out->ece = n ? 0.0 : NAN;
    out->mce = n ? 0.0 : NAN;
    for (int b = 0; b < BASIRA_EVAL_ECE_BINS; b++) {
        basira_calibration_bin *bin = &out->bins[b];
        if (!bin->n) {
            bin->mean_conf = bin->frac_positive = NAN;
            continue;
        }
        bin->mean_conf = sum_conf[b] / (double)bin->n;
        bin->frac_positive = sum_hit[b] / (double)bin->n;
        double gap = fabs(bin->frac_positive - bin->mean_conf);
        out->ece += (double)bin->n / (double)n * gap;
        out->mce = fmax(out->mce, gap);
    }
    return BASIRA_OK;
}

void basira_eval_softmax(const double *logits, size_t n, int k, double temperature, double *probs)
{
    for (size_t i = 0; i < n; i++) {
        const double *z = logits + i * (size_t)k;
        double *p = probs + i * (size_t)k;
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < k; c++)
            mx = fmax(mx, z[c] / temperature);
        for (int c = 0; c < k; c++) {
            p[c] = exp(z[c] / temperature - mx);
            s += p[c];
        }
        for (int c = 0; c < k; c++)
            p[c] /= s;
    }
}

/*
 * Minimum of a unimodal f on [a, b] by golden-section search to width tol, without
 * derivatives or step-size tuning; the midpoint of the last bracket.
 */
typedef double (*unimodal_fn)(const void *ctx, double x);

static double golden_min(unimodal_fn f, const void *ctx, double a, double b, double tol)
{
    const double gr = 0.6180339887498949;
    double c = b - gr * (b - a), d = a + gr * (b - a);
    double fc = f(ctx, c), fd = f(ctx, d);
    while (b - a > tol) {
        if (fc < fd) {
            b = d;
            d = c;
            fd = fc;
            c = b - gr * (b - a);
            fc = f(ctx, c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + gr * (b - a);
            fd = f(ctx, d);
        }
    }
    return 0.5 * (a + b);
}

/* Mean negative log-likelihood of softmax(logits / T). */
static double nll_at(const double *logits, const int *labels, size_t n, int k, double t)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *z = logits + i * (size_t)k;
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < k; c++)
            mx = fmax(mx, z[c] / t);
        for (int c = 0; c < k; c++)
            s += exp(z[c] / t - mx);
        total += mx + log(s) - z[labels[i]] / t;
    }
    return total / (double)n;
}

typedef struct temp_ctx {
    const double *logits;
    const int *labels;
    size_t n;
    int k;
} temp_ctx;

static double temp_nll(const void *ctx, double log_t)
{
    const temp_ctx *x = ctx;
    return nll_at(x->logits, x->labels, x->n, x->k, exp(log_t));
}

basira_code basira_fit_temperature(const double *logits, const int *labels, size_t n, int k,
                                   double *temperature, double *nll_before, double *nll_after,
                                   basira_error *err)
{
    if (!temperature || !logits || !labels || k < 2)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("temperature scaling needs logits of at least 2 classes"));
    if (n == 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("temperature scaling needs at least one labelled image"));
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("temperature scaling: label %d of row %zu is out of range"),
                                    labels[i], i);
        for (int c = 0; c < k; c++)
            if (!isfinite(logits[i * (size_t)k + c]))
                return basira_error_set(
                    err, BASIRA_E_INVALID_ARGUMENT,
                    _("temperature scaling: logit %d of row %zu is not a finite number"), c, i);
    }
    /*
     * The NLL is convex in 1/T (a log-sum-exp of linear functions minus a linear
     * one), hence unimodal in log T: a golden-section search on log T converges to
     * the global minimum without derivatives or step-size tuning.
     */
    temp_ctx tc = {logits, labels, n, k};
    *temperature = exp(golden_min(temp_nll, &tc, log(0.05), log(20.0), 1e-7));
    if (nll_before)
        *nll_before = nll_at(logits, labels, n, k, 1.0);
    if (nll_after)
        *nll_after = nll_at(logits, labels, n, k, *temperature);
    return BASIRA_OK;
}

static double clip_p(double p)
{
    return fmin(1.0 - 1e-6, fmax(1e-6, p));
}

/* The binary NLL of sigmoid(a * logit(p) + b), p clipped to [1e-6, 1 - 1e-6]. */
static double platt_nll(const double *p_mal, const int *malignant, size_t n, double a, double b)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = clip_p(p_mal[i]), z = a * log(p / (1.0 - p)) + b;
        /* -log sigmoid(z) = log(1 + e^-z), written to stay finite for large |z| */
        double y = malignant[i] ? z : -z;
        total += y > 0 ? log1p(exp(-y)) : -y + log1p(exp(y));
    }
    return total / (double)n;
}

/* The bias alone: slope 1 (exact: 1.0 * x is x). */
static double bias_nll(const double *p_mal, const int *malignant, size_t n, double b)
{
    return platt_nll(p_mal, malignant, n, 1.0, b);
}

typedef struct bias_ctx {
    const double *p_mal;
    const int *malignant;
    size_t n;
} bias_ctx;

static double bias_nll_fn(const void *ctx, double b)
{
    const bias_ctx *x = ctx;
    return bias_nll(x->p_mal, x->malignant, x->n, b);
}

/* What a binary recalibration needs: probabilities in [0, 1] and both outcomes present. */
static basira_code check_binary(const double *p_mal, const int *malignant, size_t n,
                                basira_error *err)
{
    if (!p_mal || !malignant)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(p_mal[i]) || p_mal[i] < 0.0 || p_mal[i] > 1.0)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("malignant bias: probability of row %zu is not in [0, 1]"),
                                    i);
        pos += malignant[i] != 0;
    }
    /* With one side missing the likelihood has no minimum: the bias would run to the bound. */
    if (pos == 0 || pos == n)
        return basira_error_set(
            err, BASIRA_E_INVALID_ARGUMENT,
            _("malignant bias: the fit needs both malignant and benign outcomes"));
    return BASIRA_OK;
}

basira_code basira_fit_malignant_bias(const double *p_mal, const int *malignant, size_t n,
                                      double *bias, double *nll_before, double *nll_after,
                                      basira_error *err)
{
    if (!bias)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_code rc = check_binary(p_mal, malignant, n, err);
    if (rc)
        return rc;
    /* Convex in b (a sum of softplus of affine functions): golden-section search. */
    bias_ctx bc = {p_mal, malignant, n};
    *bias = golden_min(bias_nll_fn, &bc, -8.0, 8.0, 1e-7);
    if (nll_before)
        *nll_before = bias_nll(p_mal, malignant, n, 0.0);
    if (nll_after)
        *nll_after = bias_nll(p_mal, malignant, n, *bias);
    return BASIRA_OK;
}

typedef struct platt_ctx {
    const double *p_mal;
    const int *malignant;
    size_t n;
    double a; /* the slope of the inner search */
} platt_ctx;

static double platt_inner(const void *ctx, double b)
{
    const platt_ctx *x = ctx;
    return platt_nll(x->p_mal, x->malignant, x->n, x->a, b);
}

/* The best bias at slope a (into *b), and its NLL. */
static double platt_best_bias(const platt_ctx *base, double a, double *b)
{
    platt_ctx c = *base;
    c.a = a;
    *b = golden_min(platt_inner, &c, -8.0, 8.0, 1e-8);
    return platt_nll(c.p_mal, c.malignant, c.n, a, *b);
}

static double platt_outer(const void *ctx, double a)
{
    double b;
    return platt_best_bias(ctx, a, &b);
}

basira_code basira_fit_malignant_platt(const double *p_mal, const int *malignant, size_t n,
                                       double *slope, double *bias, double *nll_before,
                                       double *nll_after, basira_error *err)
{
    if (!slope || !bias)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_code rc = check_binary(p_mal, malignant, n, err);
    if (rc)
        return rc;
    /* min over b is convex in a (partial minimisation of a jointly convex function). */
    platt_ctx pc = {p_mal, malignant, n, 1.0};
    *slope = golden_min(platt_outer, &pc, BASIRA_EVAL_MIN_SLOPE, BASIRA_EVAL_MAX_SLOPE, 1e-7);
    double after = platt_best_bias(&pc, *slope, bias);
    if (nll_before)
        *nll_before = platt_nll(p_mal, malignant, n, 1.0, 0.0);
    if (nll_after)
        *nll_after = after;
    return BASIRA_OK;
}

/* P(malignant) of every row at temperature t, into pm. */
static void p_mal_at(const double *logits, const int *cm, int k, size_t n, double t, double *pm)
{
    double p[BASIRA_EVAL_MAX_CLASSES];
    for (size_t i = 0; i < n; i++) {
        basira_eval_softmax(logits + i * (size_t)k, 1, k, t, p);
        pm[i] = 0.0;
        for (int c = 0; c < k; c++)
            pm[i] += cm[c] ? p[c] : 0.0;
        pm[i] = fmin(1.0, pm[i]);
    }
}

/* min over b of the binary NLL at temperature t (the best b into *b). */
static double best_bias_at(const double *logits, const int *cm, int k, const int *malignant,
                           size_t n, double t, double *pm, double *b)
{
    p_mal_at(logits, cm, k, n, t, pm);
    if (basira_fit_malignant_bias(pm, malignant, n, b, NULL, NULL, NULL))
        return INFINITY;
    return bias_nll(pm, malignant, n, *b);
}

typedef struct joint_ctx {
    const double *logits;
    const int *cm;
    int k;
    const int *malignant;
    size_t n;
    double *pm; /* scratch */
} joint_ctx;

static double joint_nll(const void *ctx, double log_t)
{
    const joint_ctx *x = ctx;
    double b;
    return best_bias_at(x->logits, x->cm, x->k, x->malignant, x->n, exp(log_t), x->pm, &b);
}

basira_code basira_fit_temperature_bias(const double *logits, const int *class_malignant, int k,
                                        const int *malignant, size_t n, double *temperature,
                                        double *bias, double *nll_before, double *nll_after,
                                        basira_error *err)
{
    if (!logits || !class_malignant || !malignant || !temperature || !bias || k < 2 ||
        k > BASIRA_EVAL_MAX_CLASSES)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    for (size_t i = 0; i < n * (size_t)k; i++)
        if (!isfinite(logits[i]))
            return basira_error_set(
                err, BASIRA_E_INVALID_ARGUMENT,
                _("temperature scaling: logit %d of row %zu is not a finite number"),
                (int)(i % (size_t)k), i / (size_t)k);
    double *pm = calloc(n ? n : 1, sizeof *pm);
    if (!pm)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    p_mal_at(logits, class_malignant, k, n, 1.0, pm);
    /* Both outcomes present (the fit has no minimum otherwise). */
    basira_code rc = check_binary(pm, malignant, n, err);
    if (rc) {
        free(pm);
        return rc;
    }
    joint_ctx jc = {logits, class_malignant, k, malignant, n, pm};
    *temperature = exp(golden_min(joint_nll, &jc, log(0.05), log(20.0), 1e-6));
    double after = best_bias_at(logits, class_malignant, k, malignant, n, *temperature, pm, bias);
    if (nll_after)
        *nll_after = after;
    if (nll_before) {
        p_mal_at(logits, class_malignant, k, n, 1.0, pm);
        *nll_before = bias_nll(pm, malignant, n, 0.0);
    }
    free(pm);
    return BASIRA_OK;
}

void basira_eval_shift_malignant(double *probs, int k, const int *malignant, double bias)
{
    if (!probs || !malignant || bias == 0.0)
        return;
    double f = exp(bias), s = 0.0;
    for (int c = 0; c < k; c++)
        s += probs[c] *= malignant[c] ? f : 1.0;
    for (int c = 0; s > 0.0 && c < k; c++)
        probs[c] /= s;
}

void basira_eval_map_malignant(double *probs, int k, const int *malignant, double slope,
                               double bias)
{
    if (slope == 1.0) {
        basira_eval_shift_malignant(probs, k, malignant, bias);
        return;
    }
    if (!probs || !malignant)
        return;
    double p = 0.0;
    for (int c = 0; c < k; c++)
        p += malignant[c] ? probs[c] : 0.0;
    if (!(p > 0.0 && p < 1.0))
        return;
    double q = 1.0 / (1.0 + exp(-(slope * log(p / (1.0 - p)) + bias)));
    double fm = q / p, fb = (1.0 - q) / (1.0 - p);
    for (int c = 0; c < k; c++)
        probs[c] *= malignant[c] ? fm : fb;
}

void basira_operating_point_options_default(basira_operating_point_options *o)
{
    o->target_sensitivity = 0.95;
    o->high_specificity = 0.90;
    o->conservative = 0;
}

static int cmp_double_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

basira_code basira_choose_operating_point(const double *p_mal, const int *malignant, size_t n,
                                          const basira_operating_point_options *o,
                                          basira_operating_point *out, basira_error *err)
{
    basira_operating_point_options def;
    if (!o) {
        basira_operating_point_options_default(&def);
        o = &def;
    }
    if (!out || (n && (!p_mal || !malignant)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("operating point: missing data"));
    if (!(o->target_sensitivity > 0.0 && o->target_sensitivity <= 1.0) ||
        !(o->high_specificity >= 0.0 && o->high_specificity <= 1.0))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("operating point: target sensitivity must be in (0, 1] and "
                                  "specificity in [0, 1]"));
    size_t nm = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(p_mal[i] >= 0.0 && p_mal[i] <= 1.0 + 1e-6))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("operating point: probability %zu is not in [0, 1]"), i);
        if (malignant[i])
            nm++;
        else
            nb++;
    }
    if (nm == 0 || nb == 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("cannot choose triage thresholds: the validation set has %zu "
                                  "malignant and %zu benign lesions; both are needed"),
                                nm, nb);
    double *m = malloc(sizeof(double) * n);
    if (!m)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    double *b = m + nm;
    size_t im = 0, ib = 0;
    for (size_t i = 0; i < n; i++) {
        if (malignant[i])
            m[im++] = p_mal[i];
        else
            b[ib++] = p_mal[i];
    }
    qsort(m, nm, sizeof *m, cmp_double_desc);
    qsort(b, nb, sizeof *b, cmp_double_desc);

    /* Smallest count k with k / M >= target, in exact integer terms (no 0.95*M rounding up). */
    long k = (long)ceil(o->target_sensitivity * (double)nm - 1e-9);
    if (k < 1)
        k = 1;
    if (k > (long)nm)
        k = (long)nm;
    if (o->conservative) {
        basira_proportion pr;
        while (k < (long)nm && !basira_wilson(k, (long)nm, &pr, NULL) &&
               pr.lo < o->target_sensitivity)
            k++;
    }
    /* The k-th largest malignant score, rounded down so more, never fewer, are caught. */
    double medium = floor(m[k - 1] * 1e6) / 1e6;
    if (medium > m[k - 1])
        medium = nextafter(m[k - 1], -INFINITY);

    /* High: at most j benign lesions at or above it, so strictly above the (j+1)-th largest. */
    long j = (long)floor((1.0 - o->high_specificity) * (double)nb + 1e-9);
    double high;
    if (j >= (long)nb) {
        high = medium;
    } else {
        double bj = b[j];
        high = (floor(bj * 1e6) + 1.0) / 1e6;
        if (!(high > bj))
            high = nextafter(bj, INFINITY);
    }
    if (high > 1.0)
        high = 1.0; /* a benign lesion at p = 1: no threshold in [0, 1] can exclude it */
    if (high < medium)
        high = medium;
    free(m);

    long caught = 0, low_benign = 0, below_high = 0;
    for (size_t i = 0; i < n; i++) {
        if (malignant[i])
            caught += p_mal[i] >= medium;
        else {
            low_benign += p_mal[i] < medium;
            below_high += p_mal[i] < high;
        }
    }
    out->medium_threshold = medium;
    out->high_threshold = high;
    basira_wilson(caught, (long)nm, &out->sensitivity, NULL);
    basira_wilson(low_benign, (long)nb, &out->specificity, NULL);
    basira_wilson(below_high, (long)nb, &out->high_specificity, NULL);
    return BASIRA_OK;
}

size_t basira_eval_scored_size(void)
{
    return sizeof(scored);
}

json_t *basira_eval_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void basira_rng_seed(basira_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(basira_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t basira_rng_below(basira_rng *r, uint64_t n)
{
    /* Reject the top partial range so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

basira_code basira_calibration_noise_compute(const double *conf, const int *hit, size_t n, int reps,
                                             uint64_t seed, basira_calibration_noise *out,
                                             basira_error *err)
{
    if (!out || reps < 1 || (n && (!conf || !hit)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    memset(out, 0, sizeof *out);
    out->reps = reps;
    basira_calibration cal;
    basira_code rc = basira_calibration_compute(conf, hit, n, &cal, err);
    if (rc)
        return rc;
    out->ece = cal.ece;
    if (n == 0) {
        out->null_mean = out->null_p95 = out->p_value = NAN;
        return BASIRA_OK;
    }
    double *null = malloc(sizeof(double) * (size_t)reps);
    int *h = malloc(sizeof(int) * n);
    if (!null || !h) {
        free(null);
        free(h);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_rng r;
    basira_rng_seed(&r, seed);
    long above = 0;
    double sum = 0.0;
    for (int k = 0; !rc && k < reps; k++) {
        /* u < p with u uniform in [0, 1): an outcome with the predicted probability. */
        for (size_t i = 0; i < n; i++)
            h[i] = (double)basira_rng_below(&r, (uint64_t)1 << 53) * 0x1p-53 < conf[i];
        rc = basira_calibration_compute(conf, h, n, &cal, err);
        null[k] = cal.ece;
        sum += cal.ece;
        above += cal.ece >= out->ece;
    }
    if (!rc) {
        qsort(null, (size_t)reps, sizeof *null, cmp_double_asc);
        out->null_mean = sum / reps;
        out->null_p95 = null[(size_t)ceil(0.95 * (reps - 1))];
        out->p_value = (1.0 + (double)above) / (reps + 1.0);
    }
    free(null);
    free(h);
    return rc;
}
