/*
 * paired.c - comparing two models on the same cases, and two raters on the same cases.
 *
 *   - basira_auc_delong_paired(): DeLong, DeLong & Clarke-Pearson (Biometrics 44:837,
 *     1988), the test for two correlated AUCs. Both models score the same lesions, so
 *     their AUCs are correlated and the variance of the difference is
 *     Var(A) + Var(B) - 2 Cov(A, B), each term from the structural components
 *     (placement values) of the positives and of the negatives. Computed with the fast
 *     midrank algorithm as in stats.c.
 *   - basira_cohen_kappa(): agreement of two labelings beyond chance, with the
 *     large-sample standard error of Cohen (1960).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "core/i18n.h"
#include "eval/eval_internal.h"

#define Z95 1.959963984540054

/*
 * Structural components of scores: positives (in input order) into v[0..m), negatives
 * into v[m..n). rank, z: n doubles; work: n scored. Returns the AUC.
 */
static double components(const double *scores, const int *positive, size_t n, size_t m, double *v,
                         double *z, double *rank, scored *work)
{
    size_t k = n - m, ip = 0, in = m;
    for (size_t i = 0; i < n; i++) {
        if (positive[i])
            z[ip++] = scores[i];
        else
            z[in++] = scores[i];
    }
    basira_eval_midranks(z, n, rank, work);
    basira_eval_midranks(z, m, v, work);
    basira_eval_midranks(z + m, k, v + m, work);
    double dm = (double)m, dk = (double)k, sum = 0.0;
    for (size_t i = 0; i < m; i++)
        sum += rank[i];
    for (size_t i = 0; i < m; i++)
        v[i] = (rank[i] - v[i]) / dk;
    for (size_t j = m; j < n; j++)
        v[j] = 1.0 - (rank[j] - v[j]) / dm;
    return sum / (dm * dk) - (dm + 1.0) / (2.0 * dk);
}

/* Sample covariance of x and y (n >= 2). */
static double covariance(const double *x, const double *y, size_t n)
{
    double mx = 0.0, my = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++)
        s += (x[i] - mx) * (y[i] - my);
    return s / (double)(n - 1);
}

basira_code basira_auc_delong_paired(const double *a, const double *b, const int *positive,
                                     size_t n, basira_auc_comparison *out, basira_error *err)
{
    if (!out || (n && (!a || !b || !positive)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("AUC: missing scores"));
    out->auc_a = out->auc_b = out->difference = out->lo = out->hi = NAN;
    out->se = out->z = out->p_value = NAN;
    out->n_pos = out->n_neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("AUC: score %zu is not a finite number"), i);
        if (positive[i])
            out->n_pos++;
        else
            out->n_neg++;
    }
    size_t m = (size_t)out->n_pos, k = (size_t)out->n_neg;
    if (m == 0 || k == 0)
        return BASIRA_OK;
    double *buf = malloc(sizeof(double) * 4 * n);
    scored *work = malloc(basira_eval_scored_size() * n);
    if (!buf || !work) {
        free(buf);
        free(work);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    double *va = buf, *vb = buf + n, *z = buf + 2 * n, *rank = buf + 3 * n;
    out->auc_a = components(a, positive, n, m, va, z, rank, work);
    out->auc_b = components(b, positive, n, m, vb, z, rank, work);
    out->difference = out->auc_a - out->auc_b;
    if (m >= 2 && k >= 2) {
        double dm = (double)m, dk = (double)k;
        double var =
            (covariance(va, va, m) + covariance(vb, vb, m) - 2 * covariance(va, vb, m)) / dm +
            (covariance(va + m, va + m, k) + covariance(vb + m, vb + m, k) -
             2 * covariance(va + m, vb + m, k)) /
                dk;
        out->se = sqrt(fmax(var, 0.0));
        out->lo = out->difference - Z95 * out->se;
        out->hi = out->difference + Z95 * out->se;
        if (out->se > 0) {
            out->z = out->difference / out->se;
            out->p_value = erfc(fabs(out->z) / sqrt(2.0));
        } else {
            /* identical components: no difference can be detected */
            out->z = 0.0;
            out->p_value = out->difference == 0.0 ? 1.0 : 0.0;
        }
    }
    free(buf);
    free(work);
    return BASIRA_OK;
}

basira_code basira_cohen_kappa(const int *r1, const int *r2, size_t n, int k, basira_kappa *out,
                               basira_error *err)
{
    if (!out || k < 1 || k > BASIRA_EVAL_MAX_CLASSES || (n && (!r1 || !r2)))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("kappa: invalid arguments"));
    out->kappa = out->lo = out->hi = out->observed = out->expected = NAN;
    out->n = (long)n;
    long m1[BASIRA_EVAL_MAX_CLASSES] = {0}, m2[BASIRA_EVAL_MAX_CLASSES] = {0}, agree = 0;
    for (size_t i = 0; i < n; i++) {
        if (r1[i] < 0 || r1[i] >= k || r2[i] < 0 || r2[i] >= k)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("kappa: rating %zu is out of range"), i);
        m1[r1[i]]++;
        m2[r2[i]]++;
        agree += r1[i] == r2[i];
    }
    if (n == 0)
        return BASIRA_OK;
    double dn = (double)n, pe = 0.0;
    for (int c = 0; c < k; c++)
        pe += ((double)m1[c] / dn) * ((double)m2[c] / dn);
    out->observed = (double)agree / dn;
    out->expected = pe;
    if (pe >= 1.0)
        return BASIRA_OK; /* both raters used one category only: kappa undefined */
    out->kappa = (out->observed - pe) / (1.0 - pe);
    double se = sqrt(out->observed * (1.0 - out->observed) / (dn * (1.0 - pe) * (1.0 - pe)));
    out->lo = fmax(-1.0, out->kappa - Z95 * se);
    out->hi = fmin(1.0, out->kappa + Z95 * se);
    return BASIRA_OK;
}
