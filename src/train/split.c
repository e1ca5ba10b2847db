/*
 * split.c - train/validation/test split BY GROUP, stratified by label.
 *
 * Several photos of one lesion (or one patient) are near-duplicates: if one
 * lands in training and another in the test set, the test measures memory, not
 * skill, and the figures are inflated. So whole groups are assigned to parts.
 * Within each label stratum the groups are visited in a seeded random order
 * (largest first, so the small ones can fine-tune the balance at the end) and
 * each goes to the part that is furthest below its target share of images.
 */
#include "basira/train.h"
#include "core/i18n.h"
#include "train/rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t basira_seed_mix(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t s = seed ^ 0x243F6A8885A308D3ULL;
    uint64_t x = basira_rng_next(&s);
    s = x ^ (a * 0x9E3779B97F4A7C15ULL);
    x = basira_rng_next(&s);
    s = x ^ (b * 0xC2B2AE3D27D4EB4FULL);
    return basira_rng_next(&s);
}

typedef struct group_info {
    int id;
    int label; /* most common label of its items */
    size_t size;
    uint64_t rank; /* random order */
} group_info;

static int cmp_group(const void *a, const void *b)
{
    const group_info *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

typedef struct item_key {
    int group, label;
} item_key;

static int cmp_item(const void *a, const void *b)
{
    const item_key *x = a, *y = b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    return x->label < y->label ? -1 : x->label > y->label;
}

#define MAX_PARTS 64

/* The split into np parts of the given fractions (checked by the callers). */
static basira_code split_parts(size_t n, const int *label, int n_labels, const int *group,
                               int n_groups, int np, const double *fractions, uint64_t seed,
                               int *part, basira_error *err)
{
    if (n == 0)
        return BASIRA_OK;
    for (size_t i = 0; i < n; i++) {
        if (label[i] < 0 || label[i] >= n_labels)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("item %zu has label %d outside 0..%d"), i, label[i],
                                    n_labels - 1);
        if (group && (group[i] < 0 || group[i] >= n_groups))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("item %zu has group %d outside 0..%d"), i, group[i],
                                    n_groups - 1);
    }

    item_key *items = malloc(n * sizeof *items);
    group_info *groups = calloc((size_t)n_groups, sizeof *groups);
    int *group_part = malloc((size_t)n_groups * sizeof *group_part);
    if (!items || !groups || !group_part) {
        free(items);
        free(groups);
        free(group_part);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        items[i].group = group ? group[i] : (int)i;
        items[i].label = label[i];
    }
    qsort(items, n, sizeof *items, cmp_item);

    /* Size and majority label of each group (ties: the smaller label index). */
    uint64_t rs = seed;
    int ng = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, best_count = 0;
        int best_label = items[i].label;
        while (j < n && items[j].group == items[i].group) {
            size_t k = j;
            while (k < n && items[k].group == items[j].group && items[k].label == items[j].label)
                k++;
            if (k - j > best_count) {
                best_count = k - j;
                best_label = items[j].label;
            }
            j = k;
        }
        groups[ng].id = items[i].group;
        groups[ng].label = best_label;
        groups[ng].size = j - i;
        ng++;
        i = j;
    }
    /* Random ranks drawn in group-id order, so they depend only on the seed and the groups. */
    for (int g = 0; g < ng; g++)
        groups[g].rank = basira_rng_next(&rs);
    qsort(groups, (size_t)ng, sizeof *groups, cmp_group);

    for (int g = 0; g < ng;) {
        int h = g;
        size_t total = 0;
        while (h < ng && groups[h].label == groups[g].label)
            total += groups[h++].size;
        double assigned[MAX_PARTS] = {0};
        for (int k = g; k < h; k++) {
            int best = -1;
            double best_deficit = 0;
            for (int p = 0; p < np; p++) {
                if (fractions[p] <= 0)
                    continue;
                double deficit = fractions[p] * (double)total - assigned[p];
                if (best < 0 || deficit > best_deficit) {
                    best = p;
                    best_deficit = deficit;
                }
            }
            group_part[groups[k].id] = best;
            assigned[best] += (double)groups[k].size;
        }
        g = h;
    }
    for (size_t i = 0; i < n; i++)
        part[i] = group_part[group ? group[i] : (int)i];
    free(items);
    free(groups);
    free(group_part);
    return BASIRA_OK;
}

static basira_code check_input(size_t n, const int *label, int n_labels, const int *group,
                               int *n_groups, const void *out, basira_error *err)
{
    if ((n && (!label || !out)) || n_labels <= 0 || n > (size_t)INT32_MAX)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!group)
        *n_groups = (int)n;
    if (*n_groups < 0 || (n && *n_groups == 0))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    return BASIRA_OK;
}

basira_code basira_split_groups(size_t n, const int *label, int n_labels, const int *group,
                                int n_groups, const double fractions[3], uint64_t seed, int *part,
                                basira_error *err)
{
    basira_code rc = check_input(n, label, n_labels, group, &n_groups, part, err);
    if (rc)
        return rc;
    if (!fractions)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    double fsum = 0;
    for (int p = 0; p < 3; p++) {
        if (!(fractions[p] >= 0))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("split fractions must not be negative"));
        fsum += fractions[p];
    }
    if (fabs(fsum - 1.0) > 1e-6)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("split fractions must sum to 1 (they sum to %g)"), fsum);
    return split_parts(n, label, n_labels, group, n_groups, 3, fractions, seed, part, err);
}

basira_code basira_kfold_groups(size_t n, const int *label, int n_labels, const int *group,
                                int n_groups, int k, uint64_t seed, int *fold, basira_error *err)
{
    basira_code rc = check_input(n, label, n_labels, group, &n_groups, fold, err);
    if (rc)
        return rc;
    if (k < 2 || k > MAX_PARTS)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the number of folds must be from 2 to %d"), MAX_PARTS);
    double fractions[MAX_PARTS];
    for (int f = 0; f < k; f++)
        fractions[f] = 1.0 / k;
    /* Another stream of the seed than the train/validation/test split's. */
    return split_parts(n, label, n_labels, group, n_groups, k, fractions,
                       basira_seed_mix(seed, 0x4b464f4c44ULL, (uint64_t)k), fold, err);
}

basira_code basira_split_parse(const char *s, double fractions[3], basira_error *err)
{
    if (!s || !fractions)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    const char *p = s;
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v >= 0 && v <= 1) || (i < 2 && *end != ',') || (i == 2 && *end))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("invalid split '%s': expected three fractions "
                                      "train,validation,test such as 0.70,0.15,0.15"),
                                    s);
        fractions[i] = v;
        sum += v;
        p = end + 1;
    }
    if (fabs(sum - 1.0) > 1e-6)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("invalid split '%s': the fractions must sum to 1"), s);
    if (fractions[0] <= 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("invalid split '%s': the training part cannot be empty"), s);
    return BASIRA_OK;
}
