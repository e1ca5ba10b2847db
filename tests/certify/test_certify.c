/*
 * test_certify.c - the certification report on synthetic cases whose figures are
 * known by construction, the paired DeLong test against its O(m n) definition, Cohen's
 * kappa against a textbook example, the verdict of each kind of criterion (including
 * failing closed), and the PDF in the three languages.
 */
#include <stdint.h>
#include <unistd.h>

#include "basira/certify.h"
#include "basira/eval.h"
#include "test.h"

/* Cohen (1960)-style example: 2 raters, 50 cases, table [[20, 5], [10, 15]]: kappa 0.4. */
static void test_kappa(void)
{
    int a[50], b[50], n = 0;
    for (int i = 0; i < 20; i++, n++)
        a[n] = 0, b[n] = 0;
    for (int i = 0; i < 5; i++, n++)
        a[n] = 0, b[n] = 1;
    for (int i = 0; i < 10; i++, n++)
        a[n] = 1, b[n] = 0;
    for (int i = 0; i < 15; i++, n++)
        a[n] = 1, b[n] = 1;
    basira_kappa k;
    CHECK_EQ_INT(basira_cohen_kappa(a, b, 50, 2, &k, NULL), BASIRA_OK);
    /* po = 0.7, pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 */
    CHECK_NEAR(k.observed, 0.7, 1e-12);
    CHECK_NEAR(k.expected, 0.5, 1e-12);
    CHECK_NEAR(k.kappa, 0.4, 1e-12);
    CHECK(k.lo < 0.4 && k.hi > 0.4 && k.lo > 0.0);
    /* one category only: undefined, not 1 */
    int z[3] = {0, 0, 0};
    CHECK_EQ_INT(basira_cohen_kappa(z, z, 3, 2, &k, NULL), BASIRA_OK);
    CHECK(isnan(k.kappa));
    int bad[1] = {5};
    CHECK_EQ_INT(basira_cohen_kappa(bad, z, 1, 2, &k, NULL), BASIRA_E_INVALID_ARGUMENT);
}

/* Structural components by their definition (DeLong 1988), O(m n). */
static void slow_components(const double *s, const int *y, int n, double *v10, double *v01, int *m,
                            int *k)
{
    *m = *k = 0;
    for (int i = 0; i < n; i++) {
        if (!y[i])
            continue;
        double acc = 0;
        int cnt = 0;
        for (int j = 0; j < n; j++)
            if (!y[j]) {
                acc += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
                cnt++;
            }
        v10[(*m)++] = acc / cnt;
    }
    for (int j = 0; j < n; j++) {
        if (y[j])
            continue;
        double acc = 0;
        int cnt = 0;
        for (int i = 0; i < n; i++)
            if (y[i]) {
                acc += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
                cnt++;
            }
        v01[(*k)++] = acc / cnt;
    }
}

static double cov(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, s = 0;
    for (int i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++)
        s += (x[i] - mx) * (y[i] - my);
    return s / (n - 1);
}

static void test_delong_paired(void)
{
    enum { N = 60 };
    double a[N], b[N];
    int y[N];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0;
        y[i] = i % 3 == 0;
        a[i] = 0.5 * u + 0.4 * y[i];
        b[i] = round((0.7 * u + 0.2 * y[i]) * 20) / 20; /* ties */
    }
    basira_auc_comparison c;
    CHECK_EQ_INT(basira_auc_delong_paired(a, b, y, N, &c, NULL), BASIRA_OK);
    double va10[N], va01[N], vb10[N], vb01[N];
    int m, k;
    slow_components(a, y, N, va10, va01, &m, &k);
    slow_components(b, y, N, vb10, vb01, &m, &k);
    double aa = 0, ab = 0;
    for (int i = 0; i < m; i++)
        aa += va10[i], ab += vb10[i];
    CHECK_NEAR(c.auc_a, aa / m, 1e-12);
    CHECK_NEAR(c.auc_b, ab / m, 1e-12);
    double var = (cov(va10, va10, m) + cov(vb10, vb10, m) - 2 * cov(va10, vb10, m)) / m +
                 (cov(va01, va01, k) + cov(vb01, vb01, k) - 2 * cov(va01, vb01, k)) / k;
    CHECK_NEAR(c.se, sqrt(var), 1e-12);
    CHECK_NEAR(c.z, (c.auc_a - c.auc_b) / sqrt(var), 1e-9);
    CHECK(c.p_value > 0 && c.p_value < 1);
    CHECK(c.lo < c.difference && c.difference < c.hi);
    /* a model against itself: no difference, p = 1 */
    CHECK_EQ_INT(basira_auc_delong_paired(a, a, y, N, &c, NULL), BASIRA_OK);
    CHECK_NEAR(c.difference, 0.0, 1e-15);
    CHECK_NEAR(c.p_value, 1.0, 1e-12);
    a[3] = NAN;
    CHECK_EQ_INT(basira_auc_delong_paired(a, b, y, N, &c, NULL), BASIRA_E_INVALID_ARGUMENT);
}

/*
 * 3 groups: "II" 40 cases (10 malignant), "V" 40 (10 malignant), "unknown" 5.
 * In II every malignant is referred (p 0.9) and 3 benign are (p 0.6); in V 8 of 10
 * malignant are referred, the two missed have p 0.1; benign p 0.2.
 */
#define NC 85
static basira_certify_case cases[NC];
static char ids[NC][16];

static void make_cases(void)
{
    for (int i = 0; i < NC; i++) {
        basira_certify_case *c = &cases[i];
        snprintf(ids[i], sizeof ids[i], "IMG_%02d", i);
        c->id = ids[i];
        c->p_parent = NAN;
        int g = i < 40 ? 0 : i < 80 ? 1 : 2, j = i < 40 ? i : i - 40;
        c->group = g == 0 ? "II" : g == 1 ? "V" : NULL;
        c->malignant = g < 2 ? j < 10 : i % 2;
        c->lesion_type = c->malignant ? "mel" : "nv";
        if (g == 0)
            c->p_malignant = c->malignant ? 0.9 : j < 13 ? 0.6 : 0.2;
        else if (g == 1)
            c->p_malignant = c->malignant ? (j < 8 ? 0.8 : 0.1) : 0.2 + 0.001 * j;
        else
            c->p_malignant = 0.5;
        c->p_parent = 0.5 + (c->malignant ? 0.1 : -0.1) * ((i % 4) ? 1 : -1);
    }
}

static json_t *criteria_of(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    CHECK(j != NULL);
    return j;
}

static const json_t *group(const json_t *r, const char *name)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(r, "groups"), i, g)
    {
        if (!strcmp(json_string_value(json_object_get(g, "value")), name))
            return g;
    }
    return NULL;
}

static double at(const json_t *o, const char *a, const char *b)
{
    const json_t *x = json_object_get(json_object_get(o, a), b);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static void test_report_figures(void)
{
    make_cases();
    basira_certify_options o;
    basira_certify_options_default(&o);
    o.medium_threshold = 0.5;
    o.bootstrap = 200;
    json_t *crit = criteria_of("{\"min_group_n\": 30, \"criteria\": []}");
    json_t *r = NULL;
    int pass = 1;
    CHECK_EQ_INT(basira_certify_run(cases, NC, &o, crit, &r, &pass, NULL), BASIRA_OK);
    CHECK(!pass); /* no criteria: nothing was shown, not certified */
    const json_t *ii = group(r, "II"), *v = group(r, "V"), *u = group(r, "unknown");
    CHECK(ii && v && u);
    /* phototypes in their order, unknown last */
    CHECK(!strcmp(json_string_value(
                      json_object_get(json_array_get(json_object_get(r, "groups"), 0), "value")),
                  "II"));
    CHECK_NEAR(at(ii, "sensitivity", "value"), 1.0, 1e-12);
    CHECK_NEAR(at(ii, "specificity", "value"), 27.0 / 30.0, 1e-12);
    CHECK_NEAR(at(ii, "ppv", "value"), 10.0 / 13.0, 1e-12);
    CHECK_NEAR(at(ii, "npv", "value"), 1.0, 1e-12);
    CHECK_NEAR(at(v, "sensitivity", "value"), 0.8, 1e-12);
    CHECK_NEAR(at(v, "specificity", "value"), 1.0, 1e-12);
    CHECK(at(v, "sensitivity", "lo") < 0.8 && at(v, "sensitivity", "lo") > 0.4);
    CHECK_NEAR(at(ii, "auc", "value"), 1.0, 1e-12);
    /* V: the two missed (0.1) rank below every benign (>= 0.2): AUC = 8/10 */
    CHECK_NEAR(at(v, "auc", "value"), 0.8, 1e-12);
    CHECK(json_is_true(json_object_get(u, "small")));
    CHECK_EQ_INT((int)json_array_size(json_object_get(v, "false_negatives")), 2);
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(v, "false_negatives"), 0)),
                  "IMG_48"));
    CHECK_EQ_INT((int)json_array_size(json_object_get(ii, "false_positives")), 3);
    CHECK_EQ_INT((int)json_array_size(json_object_get(v, "false_positives")), 0);
    /* gap between II and V (unknown excluded): 0.2, bootstrap interval around it */
    const json_t *gap = json_object_get(r, "group_gap");
    CHECK_NEAR(at(r, "group_gap", "value"), 0.2, 1e-12);
    CHECK(!strcmp(json_string_value(json_object_get(gap, "worst")), "V"));
    CHECK(at(r, "group_gap", "lo") <= 0.2 && at(r, "group_gap", "hi") >= 0.2);
    CHECK(at(r, "group_gap", "hi") > at(r, "group_gap", "lo"));
    /* lesion types: mel has no benign cases, so no specificity and no AUC (null) */
    const json_t *lt = json_object_get(r, "lesion_types");
    CHECK_EQ_INT((int)json_array_size(lt), 2);
    CHECK(json_is_object(json_object_get(r, "parent")));
    CHECK(json_is_null(json_object_get(r, "adjudication")));
    /* reliability bins of the overall malignant probability sum to n */
    size_t i;
    json_t *b;
    long tot = 0;
    json_array_foreach(json_object_get(json_object_get(r, "overall"), "reliability"), i, b) tot +=
        (long)json_integer_value(json_object_get(b, "n"));
    CHECK_EQ_INT((int)tot, NC);
    /* Every ECE comes with what a calibrated model would show on the same cases. */
    const json_t *noise = json_object_get(json_object_get(r, "overall"), "ece_if_calibrated");
    CHECK(at(json_object_get(r, "overall"), "ece_if_calibrated", "mean") > 0 &&
          json_integer_value(json_object_get(noise, "reps")) == 1000);
    double pv = at(json_object_get(r, "overall"), "ece_if_calibrated", "p_value");
    CHECK(pv > 0 && pv <= 1);
    CHECK(at(ii, "ece_if_calibrated", "p95") >= at(ii, "ece_if_calibrated", "mean"));
    json_decref(r);
    json_decref(crit);
}

static int verdict(const char *criteria, int *pass, json_t **rep)
{
    json_t *crit = criteria_of(criteria);
    basira_certify_options o;
    basira_certify_options_default(&o);
    o.medium_threshold = 0.5;
    o.bootstrap = 50;
    basira_error err;
    int rc = basira_certify_run(cases, NC, &o, crit, rep, pass, &err);
    json_decref(crit);
    return rc;
}

static void test_criteria(void)
{
    make_cases();
    json_t *r;
    int pass;
    /* per-group Wilson lower bound of sensitivity: II passes (10/10: lo 0.72), V does not */
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"id\": \"s\", \"metric\": \"sensitivity\", "
                         "\"statistic\": \"lower\", \"scope\": \"each_group\", \"op\": \">=\", "
                         "\"value\": 0.6}]}",
                         &pass, &r),
                 BASIRA_OK);
    CHECK(!pass);
    const json_t *c0 = json_array_get(json_object_get(r, "criteria"), 0);
    CHECK(json_is_false(json_object_get(c0, "pass")));
    CHECK_EQ_INT((int)json_array_size(json_object_get(c0, "evidence")), 2); /* II and V */
    json_decref(r);
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"metric\": \"sensitivity\", \"scope\": "
                         "\"each_group\", \"op\": \">=\", \"value\": 0.8}, {\"metric\": "
                         "\"auc_gap\", \"op\": \"<=\", \"value\": 0.25}, {\"metric\": \"auc\", "
                         "\"op\": \">\", \"value\": 0.5}]}",
                         &pass, &r),
                 BASIRA_OK);
    CHECK(pass);
    json_decref(r);
    /* fail closed: no group reaches min_group_n -> the per-group criterion fails */
    CHECK_EQ_INT(verdict("{\"min_group_n\": 100, \"criteria\": [{\"metric\": \"auc\", "
                         "\"scope\": \"each_group\", \"op\": \">=\", \"value\": 0.0}]}",
                         &pass, &r),
                 BASIRA_OK);
    CHECK(!pass);
    json_decref(r);
    /* kappa without adjudicated labels cannot be shown: fails */
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"metric\": \"kappa\", \"op\": \">=\", \"value\": "
                         "0}]}",
                         &pass, &r),
                 BASIRA_OK);
    CHECK(!pass);
    json_decref(r);
    /* malformed criteria are errors, never a pass */
    r = NULL;
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"metric\": \"accuracy!\", \"op\": \">=\", "
                         "\"value\": 0}]}",
                         &pass, &r),
                 BASIRA_E_FORMAT);
    CHECK(r == NULL && !pass);
    CHECK_EQ_INT(
        verdict("{\"criteria\": [{\"metric\": \"auc\", \"op\": \"=>\", \"value\": 0}]}", &pass, &r),
        BASIRA_E_FORMAT);
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"metric\": \"auc_gap\", \"scope\": \"each_group\", "
                         "\"op\": \"<=\", \"value\": 1}]}",
                         &pass, &r),
                 BASIRA_E_FORMAT);
    CHECK_EQ_INT(verdict("{\"criteria\": {}}", &pass, &r), BASIRA_E_FORMAT);
    CHECK_EQ_INT(verdict("{\"min_group_n\": -3, \"criteria\": []}", &pass, &r), BASIRA_E_FORMAT);
    /* a probability outside [0, 1] is refused */
    cases[5].p_malignant = NAN;
    CHECK_EQ_INT(verdict("{\"criteria\": []}", &pass, &r), BASIRA_E_INVALID_ARGUMENT);
    make_cases();
}

static void test_adjudication_and_parent(void)
{
    make_cases();
    /* the dermatologist re-labels 4 of the V benign cases as melanoma */
    for (int i = 0; i < NC; i++) {
        cases[i].adjudicated_type = cases[i].lesion_type;
        cases[i].adjudicated_malignant = cases[i].malignant;
    }
    for (int i = 60; i < 64; i++) {
        cases[i].adjudicated_type = "mel";
        cases[i].adjudicated_malignant = 1;
    }
    json_t *r;
    int pass;
    CHECK_EQ_INT(verdict("{\"criteria\": [{\"metric\": \"kappa\", \"op\": \">=\", \"value\": "
                         "0.8}, {\"metric\": \"auc_vs_parent\", \"statistic\": \"lower\", \"op\": "
                         "\">\", \"value\": 0}]}",
                         &pass, &r),
                 BASIRA_OK);
    const json_t *adj = json_object_get(r, "adjudication");
    CHECK(json_is_object(adj));
    CHECK_EQ_INT((int)json_integer_value(json_object_get(adj, "n")), NC);
    /* agreement 81/85 */
    CHECK_NEAR(at(adj, "kappa_malignant", "observed_agreement"), 81.0 / 85.0, 1e-12);
    const json_t *sc = json_object_get(adj, "scored_against_adjudicated");
    CHECK_EQ_INT((int)json_integer_value(json_object_get(sc, "n_malignant")),
                 10 + 10 + 2 + 4); /* II, V, unknown (odd of 80..84), re-labelled */
    const json_t *par = json_object_get(r, "parent");
    CHECK(at(r, "parent", "auc_model") > at(r, "parent", "auc_parent"));
    CHECK(json_number_value(json_object_get(par, "p_value")) < 0.05);
    CHECK(pass);
    /* the PDF in each language */
    basira_certify_identity id = {"basira-derm", "1.0.0", "ab12",
                                  "cd34",        "ef56",  "2026-12-01T00:00:00Z"};
    const char *langs[] = {"en", "fr", "ar"};
    for (int l = 0; l < 3; l++) {
        char path[64];
        snprintf(path, sizeof path, "certify-test-%s.pdf", langs[l]);
        CHECK_EQ_INT(basira_certify_pdf(r, &id, langs[l], path, NULL), BASIRA_OK);
        FILE *f = fopen(path, "rb");
        char head[5] = "";
        CHECK(f && fread(head, 1, 4, f) == 4);
        CHECK(!memcmp(head, "%PDF", 4));
        if (f) {
            fseek(f, 0, SEEK_END);
            CHECK(ftell(f) > 5000);
            fclose(f);
        }
        unlink(path);
    }
    CHECK_EQ_INT(basira_certify_pdf(r, &id, "de", "x.pdf", NULL), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_certify_pdf(r, &id, "en", "/nonexistent-dir/x.pdf", NULL), BASIRA_E_IO);
    json_decref(r);
    make_cases();
    for (int i = 0; i < NC; i++)
        cases[i].adjudicated_type = NULL;
}

int main(void)
{
    RUN(test_kappa);
    RUN(test_delong_paired);
    RUN(test_report_figures);
    RUN(test_criteria);
    RUN(test_adjudication_and_parent);
    return test_summary();
}
