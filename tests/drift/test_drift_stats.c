/*
 * test_drift_stats.c - the drift tests against hand-computed values (closed forms
 * of the chi-square tail for even degrees of freedom, the Kolmogorov series, PSI
 * by hand), and the weekly monitor on synthetic clinics.
 */
#include "basira/drift.h"
#include "test.h"

static void test_psi(void)
{
    double e[2] = {0.5, 0.5}, a[2] = {0.7, 0.3};
    /* 0.2 ln 1.4 - 0.2 ln 0.6 */
    CHECK_NEAR(basira_drift_psi(e, a, 2), 0.16945957207744072, 1e-12);
    CHECK_NEAR(basira_drift_psi(e, e, 2), 0.0, 1e-15);
    /* An empty bin counts at 1e-4, never infinite. */
    double z[2] = {1.0, 0.0};
    CHECK(isfinite(basira_drift_psi(e, z, 2)) && basira_drift_psi(e, z, 2) > 1.0);
    CHECK_STR(basira_drift_psi_band(0.05), "stable");
    CHECK_STR(basira_drift_psi_band(0.1), "moderate");
    CHECK_STR(basira_drift_psi_band(0.2499), "moderate");
    CHECK_STR(basira_drift_psi_band(0.25), "significant");
}

static void test_chi2(void)
{
    /* Even dof: Q = exp(-x/2) sum_{k < dof/2} (x/2)^k / k!. */
    CHECK_NEAR(basira_drift_chi2_sf(2.0, 4), 0.7357588823428847, 1e-10);
    CHECK_NEAR(basira_drift_chi2_sf(10.0, 6), 0.12465201948308113, 1e-10);
    /* dof 1: erfc(sqrt(x/2)); the 95% quantile. */
    CHECK_NEAR(basira_drift_chi2_sf(3.841458820694124, 1), 0.05, 1e-10);
    CHECK_NEAR(basira_drift_chi2_sf(0.0, 3), 1.0, 0);
    long c[2] = {30, 10};
    double e[2] = {0.5, 0.5}, stat, p;
    int dof;
    CHECK(basira_drift_chi2_gof(c, e, 2, &stat, &dof, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(stat, 10.0, 1e-12);
    CHECK_EQ_INT(dof, 1);
    CHECK_NEAR(p, 0.0015654022580025488, 1e-10);
    /* Expected 10, 6, 4: the last pooled alone (Cochran: expected < 5). */
    long c3[3] = {14, 2, 4};
    double e3[3] = {0.5, 0.3, 0.2};
    CHECK(basira_drift_chi2_gof(c3, e3, 3, &stat, &dof, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(stat, 1.6 + 16.0 / 6.0, 1e-12);
    CHECK_EQ_INT(dof, 2);
    CHECK_NEAR(p, 0.1184418290138037, 1e-9); /* dof 2: exp(-x/2) */
    /* Expected 16, 2, 2: the two rare ones pooled (expected 4, seen 10). */
    long c4[3] = {10, 5, 5};
    double e4[3] = {0.8, 0.1, 0.1};
    CHECK(basira_drift_chi2_gof(c4, e4, 3, &stat, &dof, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(stat, 2.25 + 9.0, 1e-12);
    CHECK_EQ_INT(dof, 1);
    CHECK_NEAR(p, 0.0007962301575908114, 1e-10);
    /* Exact binomial: 5 of 25 at 5% (upper tail), 0 of 25 at 20% (lower), 3 of 10 at 50%. */
    CHECK_NEAR(basira_drift_binomial_p2(5, 25, 0.05), 0.014329895805173156, 1e-12);
    CHECK_NEAR(basira_drift_binomial_p2(0, 25, 0.2), 0.007555786372591443, 1e-12);
    CHECK_NEAR(basira_drift_binomial_p2(3, 10, 0.5), 0.34375, 1e-12);
    CHECK_NEAR(basira_drift_binomial_p2(1, 10, 0.0), 0.0, 0);
    /* Failure paths. */
    long neg[2] = {-1, 3};
    CHECK(basira_drift_chi2_gof(neg, e, 2, &stat, &dof, &p, NULL) == BASIRA_E_INVALID_ARGUMENT);
    double zero[2] = {0, 0};
    CHECK(basira_drift_chi2_gof(c, zero, 2, &stat, &dof, &p, NULL) == BASIRA_E_INVALID_ARGUMENT);
}

static void test_ks(void)
{
    double a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, d, p;
    CHECK(basira_drift_ks2(a, 3, b, 3, &d, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(d, 1.0, 1e-15);
    CHECK_NEAR(p, 0.03262165165202117, 1e-10);
    /* Ties across the samples: D = 0.6 at x = 4 (F_a = 1, F_b = 0.4). */
    double a2[4] = {4, 1, 3, 2}, b2[5] = {7, 3, 4, 5, 6};
    CHECK(basira_drift_ks2(a2, 4, b2, 5, &d, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(d, 0.6, 1e-12);
    CHECK_NEAR(p, 0.25870469671266844, 1e-9);
    CHECK(a2[0] == 4 && b2[0] == 7); /* inputs untouched */
    CHECK(basira_drift_ks2(a, 3, a, 3, &d, &p, NULL) == BASIRA_OK);
    CHECK_NEAR(d, 0.0, 0);
    CHECK_NEAR(p, 1.0, 0);
    CHECK(basira_drift_ks2(a, 0, b, 3, &d, &p, NULL) == BASIRA_E_INVALID_ARGUMENT);
    CHECK_NEAR(basira_drift_normal_p2(1.959963984540054), 0.05, 1e-12);
}

/* A deterministic generator (xorshift) for synthetic clinics. */
static double uni(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void synth(basira_drift_case *c, const char *clinic, int64_t ts, int dark,
                  double brightness_shift, unsigned long long *s)
{
    memset(c, 0, sizeof *c);
    snprintf(c->clinic, sizeof c->clinic, "%s", clinic);
    c->ts = ts;
    c->quality_ok = uni(s) > 0.05;
    c->scored = 1;
    double u = uni(s);
    snprintf(c->skin_tone, sizeof c->skin_tone, "%s",
             dark ? (u < 0.7 ? "brown" : "dark") : (u < 0.6 ? "light" : "intermediate"));
    snprintf(c->photo_kind, sizeof c->photo_kind, "dermoscopy");
    snprintf(c->body_site, sizeof c->body_site, "%s", uni(s) < 0.5 ? "back" : "arm");
    c->num_classes = 2;
    c->p_mal = uni(s) * uni(s);
    c->probs[0] = (float)(1.0 - c->p_mal);
    c->probs[1] = (float)c->p_mal;
    c->risk_index = floor(c->p_mal * 100.0);
    snprintf(c->category, sizeof c->category, "%s",
             c->p_mal >= 0.4 ? "high" : (c->p_mal >= 0.06 ? "medium" : "low"));
    c->has_image_stats = 1;
    for (int ch = 0; ch < 3; ch++)
        c->mean_rgb[ch] = 150.0 + 20.0 * uni(s) + brightness_shift;
    c->brightness = 0.299 * c->mean_rgb[0] + 0.587 * c->mean_rgb[1] + 0.114 * c->mean_rgb[2];
    c->outcome = uni(s) < c->p_mal;
}

static void test_monitor(void)
{
    enum { NREF = 400, WEEKS = 8, PER = 25 };
    static basira_drift_case ref_cases[NREF], cases[3 * WEEKS * PER];
    unsigned long long s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < NREF; i++)
        synth(&ref_cases[i], "", 0, 0, 0.0, &s);
    const char *codes[2] = {"benign", "malignant"};
    const int mal[2] = {0, 1};
    json_t *model = json_pack("{s:s}", "sha256", "00");
    json_t *ref = NULL;
    CHECK(basira_drift_reference_build(ref_cases, NREF, codes, mal, 2, model, &ref, NULL) ==
          BASIRA_OK);
    CHECK(basira_drift_reference_check(ref, NULL) == BASIRA_OK);
    CHECK_EQ_INT(basira_drift_reference_outcome(ref, "malignant"), 1);
    CHECK_EQ_INT(basira_drift_reference_outcome(ref, "benign"), 0);
    CHECK_EQ_INT(basira_drift_reference_outcome(ref, "psoriasis"), -1);
    CHECK_EQ_INT(basira_drift_reference_outcome(ref, NULL), -1);
    /* 2026-01-05 is a Monday. */
    const int64_t t0 = 1767571200;
    size_t n = 0;
    for (int w = 0; w < WEEKS; w++)
        for (int i = 0; i < PER; i++) {
            int64_t ts = t0 + w * 604800 + i * 3600;
            synth(&cases[n++], "stable", ts, 0, 0.0, &s);
            synth(&cases[n++], "darker", ts, w >= 2, 0.0, &s);
            synth(&cases[n++], "camera", ts, 0, w >= 3 ? -25.0 : 0.0, &s);
        }
    json_t *out = NULL;
    CHECK(basira_drift_monitor(ref, cases, n, &out, NULL) == BASIRA_OK);
    CHECK_EQ_INT(json_array_size(out), 3);
    size_t i;
    json_t *c;
    json_array_foreach(out, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "clinic"));
        const char *level = json_string_value(json_object_get(c, "alert"));
        const char *first = json_string_value(json_object_get(c, "first_alert_week"));
        json_t *weeks = json_object_get(c, "weeks");
        CHECK_EQ_INT(json_array_size(weeks), WEEKS);
        CHECK_STR(json_string_value(json_object_get(json_array_get(weeks, 0), "week_start")),
                  "2026-01-05");
        if (!strcmp(name, "stable")) {
            /* Never an alert; a chance "watch" (p < 0.01 a week) is what watch is for. */
            CHECK(strcmp(level, "alert"));
            CHECK(first == NULL);
        } else if (!strcmp(name, "darker")) {
            CHECK_STR(level, "alert");
            CHECK_STR(first, "2026-01-19");
            json_t *w2 = json_array_get(weeks, 2);
            CHECK_STR(json_string_value(json_object_get(w2, "alert")), "alert");
            CHECK(json_number_value(json_object_get(
                      json_object_get(json_object_get(w2, "input"), "skin_tone"), "psi")) > 0.25);
        } else {
            CHECK_STR(name, "camera");
            CHECK_STR(level, "alert");
            CHECK_STR(first, "2026-01-26");
        }
    }
    json_decref(out);
    /* Too few cases in a week: insufficient, never an alert. */
    CHECK(basira_drift_monitor(ref, cases + 1, 3, &out, NULL) == BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(json_array_get(out, 0), "weeks"), 0), "alert")),
              "insufficient");
    json_decref(out);
    /* A malformed reference is refused. */
    json_t *bad = json_deep_copy(ref);
    json_object_set_new(bad, "quality_fail_rate", json_real(2.0));
    CHECK(basira_drift_monitor(bad, cases, n, &out, NULL) == BASIRA_E_FORMAT);
    json_object_set_new(bad, "format", json_string("x"));
    CHECK(basira_drift_reference_check(bad, NULL) == BASIRA_E_FORMAT);
    json_decref(bad);
    CHECK(basira_drift_reference_build(ref_cases, 3, codes, mal, 2, model, &bad, NULL) ==
          BASIRA_E_INVALID_ARGUMENT);
    json_decref(ref);
    json_decref(model);
}

/* A third class whose probability is always under 1%: how far under is not drift. */
static void add_rare(basira_drift_case *c, double p)
{
    c->num_classes = 3;
    c->probs[2] = (float)p;
}

static int has_reason(const json_t *week, const char *r)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(week, "reasons"), i, v)
    {
        if (!strcmp(json_string_value(v), r))
            return 1;
    }
    return 0;
}

static void test_monitor_probability_floor(void)
{
    enum { NREF = 300, WEEKS = 4, PER = 20 };
    static basira_drift_case ref_cases[NREF], cases[2 * WEEKS * PER];
    unsigned long long s = 0x243F6A8885A308D3ull;
    for (int i = 0; i < NREF; i++) {
        synth(&ref_cases[i], "", 0, 0, 0.0, &s);
        add_rare(&ref_cases[i], 1e-4 + 5e-3 * uni(&s));
    }
    const char *codes[3] = {"benign", "malignant", "rare"};
    const int mal[3] = {0, 1, 0};
    json_t *model = json_pack("{s:s}", "sha256", "00");
    json_t *ref = NULL, *out = NULL;
    CHECK(basira_drift_reference_build(ref_cases, NREF, codes, mal, 3, model, &ref, NULL) ==
          BASIRA_OK);
    const int64_t t0 = 1767571200;
    size_t n = 0;
    for (int w = 0; w < WEEKS; w++)
        for (int i = 0; i < PER; i++) {
            int64_t ts = t0 + w * 604800 + i * 3600;
            /* "tiny": every rare probability a thousand times smaller than the reference's. */
            synth(&cases[n], "tiny", ts, 0, 0.0, &s);
            add_rare(&cases[n++], 1e-7 * uni(&s));
            /* "appears": from week 2 the rare class is really there. */
            synth(&cases[n], "appears", ts, 0, 0.0, &s);
            add_rare(&cases[n++], w >= 2 ? 0.2 + 0.3 * uni(&s) : 1e-4 + 5e-3 * uni(&s));
        }
    CHECK(basira_drift_monitor(ref, cases, n, &out, NULL) == BASIRA_OK);
    size_t i;
    json_t *c;
    json_array_foreach(out, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "clinic"));
        json_t *weeks = json_object_get(c, "weeks");
        if (!strcmp(name, "tiny")) {
            for (size_t w = 0; w < json_array_size(weeks); w++) {
                json_t *wk = json_array_get(weeks, w);
                CHECK(!has_reason(wk, "prob:rare"));
                json_t *rare = json_object_get(
                    json_object_get(json_object_get(wk, "output"), "softmax"), "rare");
                /* Both samples are all at the floor: no difference at all, raw means kept. */
                CHECK_NEAR(json_number_value(json_object_get(rare, "ks_d")), 0.0, 1e-12);
                CHECK(json_number_value(json_object_get(rare, "mean")) < 1e-6);
                CHECK(json_number_value(json_object_get(rare, "reference_mean")) > 1e-3);
            }
        } else {
            CHECK_STR(name, "appears");
            CHECK(!has_reason(json_array_get(weeks, 1), "prob:rare"));
            CHECK(has_reason(json_array_get(weeks, 2), "prob:rare"));
            CHECK_STR(json_string_value(json_object_get(json_array_get(weeks, 2), "alert")),
                      "alert");
        }
    }
    json_decref(out);
    json_decref(ref);
    json_decref(model);
}

/* The mean colour and brightness of a photo: against sums in double, on odd sizes and on
 * the extremes (all 0, all 255). */
static void test_image_stats(void)
{
    int sizes[][2] = {{1, 1}, {3, 7}, {1000, 750}, {257, 129}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        size_t n = (size_t)w * h;
        unsigned char *rgb = malloc(3 * n);
        if (!rgb)
            return;
        for (int fillv = -1; fillv <= 255; fillv += 128) { /* noise, 127, 255 */
            unsigned s = 7u + (unsigned)k;
            for (size_t i = 0; i < 3 * n; i++) {
                s = s * 1103515245u + 12345u;
                rgb[i] = fillv < 0 ? (unsigned char)(s >> 24) : (unsigned char)fillv;
            }
            double ref[3] = {0, 0, 0};
            for (size_t i = 0; i < n; i++)
                for (int c = 0; c < 3; c++)
                    ref[c] += rgb[3 * i + c];
            basira_drift_case dc;
            memset(&dc, 0, sizeof dc);
            basira_drift_image_stats(rgb, w, h, &dc);
            CHECK(dc.has_image_stats);
            for (int c = 0; c < 3; c++)
                CHECK_MSG(dc.mean_rgb[c] == ref[c] / (double)n,
                          "%dx%d channel %d: %.17g, not %.17g", w, h, c, dc.mean_rgb[c],
                          ref[c] / (double)n);
            CHECK_NEAR(dc.brightness,
                       0.299 * dc.mean_rgb[0] + 0.587 * dc.mean_rgb[1] + 0.114 * dc.mean_rgb[2],
                       1e-12);
        }
        free(rgb);
    }
    basira_drift_case none;
    memset(&none, 0, sizeof none);
    basira_drift_image_stats(NULL, 0, 0, &none);
    CHECK(!none.has_image_stats);
}

int main(void)
{
    RUN(test_psi);
    RUN(test_chi2);
    RUN(test_ks);
    RUN(test_monitor);
    RUN(test_monitor_probability_floor);
    RUN(test_image_stats);
    return test_summary();
}
