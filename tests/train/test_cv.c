/* Tests of the cross-validation arithmetic: grouped stratified folds, merged groupings,
 * the fold-wise threshold rule, mean and sd. */
#include "basira/train.h"
#include "test.h"

#include <math.h>

#define N 600

static void test_kfold(void)
{
    static int label[N], group[N], fold[N], fold2[N];
    /* 3 classes (60% / 30% / 10%), groups of 1 to 4 images of one class. */
    int g = 0;
    for (int i = 0; i < N;) {
        int size = 1 + g % 4, lab = g % 10 < 6 ? 0 : g % 10 < 9 ? 1 : 2;
        for (int j = 0; j < size && i < N; j++, i++) {
            label[i] = lab;
            group[i] = g;
        }
        g++;
    }
    basira_error err;
    for (int k = 2; k <= 5; k++) {
        CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, k, 7, fold, &err), BASIRA_OK);
        /* No group in two folds. */
        int ok = 1;
        for (int i = 1; i < N; i++)
            if (group[i] == group[i - 1] && fold[i] != fold[i - 1])
                ok = 0;
        CHECK(ok);
        /* Every fold holds about 1/k of every class. */
        for (int c = 0; c < 3; c++) {
            int total = 0, count[5] = {0};
            for (int i = 0; i < N; i++)
                if (label[i] == c) {
                    total++;
                    CHECK(fold[i] >= 0 && fold[i] < k);
                    count[fold[i]]++;
                }
            for (int f = 0; f < k; f++)
                CHECK_MSG(fabs(count[f] - (double)total / k) <= 5,
                          "k %d class %d fold %d: %d of %d", k, c, f, count[f], total);
        }
        /* Same seed, same folds; another seed, other folds. */
        CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, k, 7, fold2, &err), BASIRA_OK);
        CHECK(!memcmp(fold, fold2, sizeof fold));
        CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, k, 8, fold2, &err), BASIRA_OK);
        CHECK(memcmp(fold, fold2, sizeof fold) != 0);
    }
    CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, 1, 7, fold, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, 65, 7, fold, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    label[3] = 9;
    CHECK_EQ_INT(basira_kfold_groups(N, label, 3, group, g, 5, 7, fold, &err),
                 BASIRA_E_INVALID_ARGUMENT);
}

static void test_union(void)
{
    /* Lesions {0,1} {2} {3,4} {5}; near-duplicates link 1 with 2 and 4 with 5; 6 alone. */
    const int lesion[7] = {0, 0, 1, 2, 2, 3, 4}, dup[7] = {-1, 7, 7, 3, 9, 9, -1};
    int out[7], n = 0;
    basira_error err;
    CHECK_EQ_INT(basira_groups_union(7, lesion, dup, out, &n, &err), BASIRA_OK);
    CHECK_EQ_INT(n, 3);
    const int want[7] = {0, 0, 0, 1, 1, 1, 2};
    CHECK(!memcmp(out, want, sizeof want));
    CHECK_EQ_INT(basira_groups_union(7, lesion, NULL, out, &n, &err), BASIRA_OK);
    CHECK_EQ_INT(n, 5);
    CHECK(out[0] == out[1] && out[1] != out[2] && out[3] == out[4] && out[6] == 4);
}

static void test_threshold(void)
{
    /* Two folds of 20 malignant cases each; fold 1's malignant scores lower. */
    double p[80];
    int mal[80], fold[80];
    for (int i = 0; i < 40; i++) {
        fold[i] = i / 20;
        mal[i] = 1;
        p[i] = (fold[i] ? 0.30 : 0.50) + 0.02 * (i % 20);
    }
    for (int i = 40; i < 80; i++) {
        fold[i] = (i - 40) / 20;
        mal[i] = 0;
        p[i] = 0.01 * (i - 40);
    }
    double per[2], t;
    basira_error err;
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 0.95, 1.0, per, &t, &err), BASIRA_OK);
    /* ceil(0.95 x 20) = 19 kept: the 19th highest score is the second lowest. */
    CHECK_NEAR(per[0], 0.52, 2e-6);
    CHECK_NEAR(per[1], 0.32, 2e-6);
    CHECK_NEAR(t, 0.32, 2e-6);
    /* At the shipped threshold every fold keeps at least 95% of its malignant cases. */
    for (int f = 0; f < 2; f++) {
        int kept = 0;
        for (int i = 0; i < 40; i++)
            kept += fold[i] == f && p[i] >= t;
        CHECK(kept >= 19);
    }
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 0.95, 0.5, per, &t, &err), BASIRA_OK);
    CHECK_NEAR(t, 0.16, 2e-6);
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 1.0, 1.0, per, &t, &err), BASIRA_OK);
    CHECK_NEAR(t, 0.30, 2e-6);
    /* A fold without a malignant case: no threshold. */
    for (int i = 20; i < 40; i++)
        mal[i] = 0;
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 0.95, 1.0, per, &t, &err), BASIRA_OK);
    CHECK(isnan(t) && isnan(per[1]) && !isnan(per[0]));
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 0.95, 1.5, per, &t, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    fold[3] = 2;
    CHECK_EQ_INT(basira_cv_threshold(p, mal, fold, 80, 2, 0.95, 1.0, per, &t, &err),
                 BASIRA_E_INVALID_ARGUMENT);
}

static void test_mean_sd(void)
{
    const double v[4] = {1, 2, 3, NAN};
    double m, s;
    basira_mean_sd(v, 4, &m, &s);
    CHECK_NEAR(m, 2.0, 1e-12);
    CHECK_NEAR(s, 1.0, 1e-12);
    basira_mean_sd(v, 1, &m, &s);
    CHECK(m == 1.0 && isnan(s));
    basira_mean_sd(v + 3, 1, &m, &s);
    CHECK(isnan(m) && isnan(s));
}

int main(void)
{
    RUN(test_kfold);
    RUN(test_union);
    RUN(test_threshold);
    RUN(test_mean_sd);
    return test_summary();
}
