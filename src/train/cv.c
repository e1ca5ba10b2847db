/*
 * cv.c - the arithmetic of `basira cv`: merged groupings, the fold-wise threshold
 * rule and mean +- sd over folds. The folds themselves come from basira_kfold_groups()
 * (split.c, the same stratified assignment as the train/validation/test split).
 *
 * Why the lowest fold-wise threshold: a threshold fitted on one set of lesions meets
 * a different mix of lesions in use (another clinic, another camera). The folds are
 * five such mixes. The largest threshold that keeps 95% sensitivity on fold f is t_f;
 * taking min_f t_f keeps 95% on every one of them, so the target survives the spread
 * between folds by construction; the margin lowers it further for shifts the folds do
 * not show. Its price is specificity, which is reported on every fold.
 */
#include "basira/train.h"
#include "core/i18n.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int find_root(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Link every item to the first item seen with the same id. */
static basira_code link_ids(size_t n, const int *ids, int *parent, basira_error *err)
{
    int max = -1;
    for (size_t i = 0; i < n; i++)
        if (ids[i] > max)
            max = ids[i];
    if (max < 0)
        return BASIRA_OK;
    int *first = malloc(((size_t)max + 1) * sizeof *first);
    if (!first)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (int v = 0; v <= max; v++)
        first[v] = -1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0)
            continue;
        if (first[ids[i]] < 0) {
            first[ids[i]] = (int)i;
            continue;
        }
        int a = find_root(parent, (int)i), b = find_root(parent, first[ids[i]]);
        if (a != b)
            parent[a > b ? a : b] = a < b ? a : b;
    }
    free(first);
    return BASIRA_OK;
}

basira_code basira_groups_union(size_t n, const int *a, const int *b, int *out, int *n_out,
                                basira_error *err)
{
    if ((n && (!a || !out)) || !n_out || n > (size_t)INT32_MAX)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int *parent = malloc((n ? n : 1) * sizeof *parent);
    if (!parent)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++)
        parent[i] = (int)i;
    basira_code rc = link_ids(n, a, parent, err);
    if (!rc && b)
        rc = link_ids(n, b, parent, err);
    if (rc) {
        free(parent);
        return rc;
    }
    /* Number the components in order of their first item (the root is the smallest). */
    int next = 0;
    for (size_t i = 0; i < n; i++) {
        int r = find_root(parent, (int)i);
        out[i] = r == (int)i ? next++ : out[r];
    }
    *n_out = next;
    free(parent);
    return BASIRA_OK;
}

static int cmp_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a > b ? -1 : a < b;
}

basira_code basira_cv_threshold(const double *p, const int *malignant, const int *fold, size_t n,
                                int k, double target, double margin, double *per_fold,
                                double *threshold, basira_error *err)
{
    if ((n && (!p || !malignant || !fold)) || k < 1 || !threshold || !(target > 0) ||
        !(target <= 1) || !(margin > 0) || !(margin <= 1))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the sensitivity target must be in (0, 1] and the margin in "
                                  "(0, 1]"));
    for (size_t i = 0; i < n; i++)
        if (fold[i] < 0 || fold[i] >= k || !(p[i] >= 0 && p[i] <= 1))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("case %zu: fold or probability out of range"), i);
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    double lowest = INFINITY;
    for (int f = 0; f < k; f++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (fold[i] == f && malignant[i])
                s[m++] = p[i];
        double t = NAN;
        if (m) {
            qsort(s, m, sizeof *s, cmp_desc);
            /* Keeping ceil(target x M) malignant cases at or above t: t is the score of the
             * last one needed, rounded down to 1e-6 (stored as text, it must not lose it). */
            size_t need = (size_t)ceil(target * (double)m - 1e-9);
            if (need < 1)
                need = 1;
            t = floor(s[need - 1] * 1e6) / 1e6;
        }
        if (per_fold)
            per_fold[f] = t;
        lowest = isnan(t) || isnan(lowest) ? NAN : (t < lowest ? t : lowest);
    }
    free(s);
    *threshold = isnan(lowest) ? NAN : floor(lowest * margin * 1e6) / 1e6;
    return BASIRA_OK;
}

void basira_mean_sd(const double *v, size_t n, double *mean, double *sd)
{
    double sum = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            sum += v[i];
            m++;
        }
    double mu = m ? sum / (double)m : NAN;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            ss += (v[i] - mu) * (v[i] - mu);
    if (mean)
        *mean = mu;
    if (sd)
        *sd = m >= 2 ? sqrt(ss / (double)(m - 1)) : NAN;
}
