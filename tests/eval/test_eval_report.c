/*
 * test_eval_report.c - the labelled set, the JSON report, the printed report,
 * the reliability diagram and the CSV reader, on small sets whose figures are
 * known by hand, and on hostile input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <unistd.h>

#include "basira/eval.h"
#include "test.h"

static const char *const codes3[] = {"mel", "nv", "bkl"};
static const int mal3[] = {1, 0, 0};

static double jnum(const json_t *o, const char *path)
{
    /* "a.b.c" lookup of a number; NaN when missing or null. */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_is_number(cur) ? json_number_value(cur) : NAN;
}

static const json_t *jget(const json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return cur;
}

/* Every number in a JSON tree is finite (jansson cannot even hold NaN; check nothing was lost). */
static int all_finite(const json_t *j)
{
    size_t i;
    const char *k;
    const json_t *v;
    if (json_is_real(j))
        return isfinite(json_real_value(j));
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) if (!v || !all_finite(v)) return 0;
    }
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, v) if (!v || !all_finite(v)) return 0;
    }
    return 1;
}

/* 10 images: rows are (label, p_mel, p_nv, p_bkl). Predicted = argmax. */
static basira_eval_set *small_set(void)
{
    static const float rows[10][4] = {
        {0, 0.7f, 0.2f, 0.1f},   {0, 0.6f, 0.3f, 0.1f}, {0, 0.3f, 0.6f, 0.1f}, /* mel: 2/3 */
        {1, 0.1f, 0.8f, 0.1f},   {1, 0.2f, 0.7f, 0.1f}, {1, 0.5f, 0.4f, 0.1f}, /* nv: 2/3 */
        {1, 0.05f, 0.9f, 0.05f},                                               /* nv */
        {2, 0.1f, 0.2f, 0.7f},   {2, 0.2f, 0.1f, 0.7f}, {2, 0.1f, 0.6f, 0.3f}, /* bkl: 2/3 */
    };
    basira_eval_set *s;
    if (basira_eval_set_new(3, codes3, mal3, &s, NULL))
        return NULL;
    static const char *const sex[10] = {"male",   "female", "male", "female", "male",
                                        "female", NULL,     "male", "female", "male"};
    static const char *const lesion[10] = {"L1", "L1", "L2", "L3", "L4",
                                           "L5", "L6", "L7", "L7", "L8"};
    for (int i = 0; i < 10; i++) {
        size_t idx;
        float p[3] = {rows[i][1], rows[i][2], rows[i][3]};
        if (basira_eval_set_add(s, (int)rows[i][0], p, &idx, NULL) ||
            basira_eval_set_set_attr(s, idx, "sex", sex[i], NULL) ||
            basira_eval_set_set_attr(s, idx, "lesion_id", lesion[i], NULL)) {
            basira_eval_set_free(s);
            return NULL;
        }
    }
    return s;
}

static void test_report_known_values(void)
{
    basira_eval_set *s = small_set();
    CHECK(s != NULL);
    if (!s)
        return;
    basira_eval_options o;
    basira_eval_options_default(&o);
    o.bootstrap = 200;
    o.medium_threshold = 0.25;
    o.high_threshold = 0.55;
    const char *by[] = {"sex"};
    o.breakdowns = by;
    o.n_breakdowns = 1;
    json_t *r;
    basira_error err;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_OK);
    if (!r) {
        basira_eval_set_free(s);
        return;
    }
    CHECK_EQ_INT(jnum(r, "n"), 10);
    CHECK_EQ_INT(jnum(r, "n_malignant"), 3);
    /* Correct: mel 2, nv 3 (0.5/0.4 row is wrong), bkl 2 -> 7/10. */
    CHECK_EQ_INT(jnum(r, "accuracy.k"), 7);
    CHECK_NEAR(jnum(r, "accuracy.value"), 0.7, 1e-12);
    CHECK_NEAR(jnum(r, "accuracy.lo"), 0.39677, 1e-4); /* Wilson 7/10 */
    /* Balanced: (2/3 + 3/4 + 2/3) / 3 */
    CHECK_NEAR(jnum(r, "balanced_accuracy.value"), (2.0 / 3 + 0.75 + 2.0 / 3) / 3, 1e-12);
    CHECK(jnum(r, "balanced_accuracy.lo") <= jnum(r, "balanced_accuracy.value"));
    CHECK(jnum(r, "balanced_accuracy.hi") >= jnum(r, "balanced_accuracy.value"));
    /* Confusion row mel = [2, 1, 0]; column mel has the nv image predicted mel. */
    const json_t *m = jget(r, "confusion.matrix");
    CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(m, 0), 0)), 2);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(m, 0), 1)), 1);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(m, 1), 0)), 1);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_array_get(m, 2), 1)), 1);
    /* mel: TP 2, FN 1, FP 1, TN 6 */
    const json_t *mel = json_array_get(json_object_get(r, "per_class"), 0);
    CHECK_EQ_INT(jnum(mel, "sensitivity.k"), 2);
    CHECK_EQ_INT(jnum(mel, "sensitivity.n"), 3);
    CHECK_EQ_INT(jnum(mel, "specificity.k"), 6);
    CHECK_EQ_INT(jnum(mel, "specificity.n"), 7);
    CHECK_EQ_INT(jnum(mel, "ppv.n"), 3);
    CHECK_EQ_INT(jnum(mel, "npv.k"), 6);
    /* mel scores: pos {0.7,0.6,0.3}, neg {0.1,0.2,0.5,0.05,0.1,0.2,0.1}: 7 + 6 + 5.5... by hand */
    /* 0.7 > all 7; 0.6 > all 7; 0.3 > 6 (not 0.5) -> 20 / 21 */
    CHECK_NEAR(jnum(mel, "auc.value"), 20.0 / 21.0, 1e-6);
    /* Malignant AUC equals the mel AUC here (one malignant class). */
    CHECK_NEAR(jnum(r, "auc_malignant.value"), 20.0 / 21.0, 1e-6);
    /* Triage: p_mel >= 0.55 high: 0.7, 0.6 (mel) ; medium >= 0.25: 0.3 (mel), 0.5 (nv) */
    CHECK_EQ_INT(jnum(r, "triage.table.high.malignant"), 2);
    CHECK_EQ_INT(jnum(r, "triage.table.high.benign"), 0);
    CHECK_EQ_INT(jnum(r, "triage.table.medium.malignant"), 1);
    CHECK_EQ_INT(jnum(r, "triage.table.medium.benign"), 1);
    CHECK_EQ_INT(jnum(r, "triage.table.low.benign"), 6);
    CHECK_NEAR(jnum(r, "triage.sensitivity.value"), 1.0, 1e-12);
    CHECK_NEAR(jnum(r, "triage.specificity.value"), 6.0 / 7.0, 1e-12);
    CHECK_NEAR(jnum(r, "triage.ppv_high.value"), 1.0, 1e-12);
    /* Calibration sections exist with 15 bins. */
    CHECK_EQ_INT(json_array_size(jget(r, "calibration.top_class.bins")), 15);
    CHECK(isfinite(jnum(r, "calibration.malignant.ece")));
    /* Breakdown by sex: female, male, unknown (the one image without sex). */
    const json_t *bd = jget(r, "breakdowns.sex");
    CHECK_EQ_INT(json_array_size(bd), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(bd, 0), "value")), "female");
    CHECK_STR(json_string_value(json_object_get(json_array_get(bd, 2), "value")), "unknown");
    CHECK_EQ_INT(jnum(json_array_get(bd, 2), "n"), 1);
    CHECK_EQ_INT(jnum(json_array_get(bd, 0), "n") + jnum(json_array_get(bd, 1), "n"), 9);
    CHECK(json_is_true(json_object_get(json_array_get(bd, 0), "small")));
    /* The unknown group has no malignant lesion: its AUC is null, not NaN. */
    CHECK(json_is_null(jget(json_array_get(bd, 2), "auc_malignant.value")));
    /* JSON output never contains NaN or Infinity. */
    CHECK(all_finite(r));
    char *txt = json_dumps(r, JSON_COMPACT);
    CHECK(txt && !strstr(txt, "NaN") && !strstr(txt, "Infinity"));
    free(txt);

    /* Same seed -> same bootstrap interval; other seed -> (almost surely) another. */
    json_t *r2, *r3;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r2, NULL), BASIRA_OK);
    o.seed = 1;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r3, NULL), BASIRA_OK);
    CHECK(jnum(r, "auc_mean_ovr.lo") == jnum(r2, "auc_mean_ovr.lo"));
    CHECK(jnum(r, "balanced_accuracy.lo") != jnum(r3, "balanced_accuracy.lo") ||
          jnum(r, "balanced_accuracy.hi") != jnum(r3, "balanced_accuracy.hi") ||
          jnum(r, "auc_mean_ovr.lo") != jnum(r3, "auc_mean_ovr.lo"));
    json_decref(r2);
    json_decref(r3);

    /* Printed reports. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ_INT(basira_eval_report_print(r, 1, f, NULL), BASIRA_OK);
    fclose(f);
    CHECK(strstr(buf, "# Evaluation report") != NULL);
    CHECK(strstr(buf, "| mel ") != NULL);
    CHECK(strstr(buf, "Breakdown by sex") != NULL);
    CHECK(strstr(buf, "0.700 [0.397, 0.892] (7/10)") != NULL);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK_EQ_INT(basira_eval_report_print(r, 0, f, NULL), BASIRA_OK);
    fclose(f);
    CHECK(strstr(buf, "Triage (medium if P(malignant) >= 0.2500, high if >= 0.5500)") != NULL);
    CHECK(strstr(buf, "small group") != NULL);
    free(buf);

    /* Reliability diagram. */
    char path[] = "/tmp/basira_eval_svg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_INT(
        basira_eval_reliability_svg(jget(r, "calibration.top_class"), "a<b & c", path, NULL),
        BASIRA_OK);
    f = fopen(path, "r");
    char svg[8192] = {0};
    size_t got = f ? fread(svg, 1, sizeof svg - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(got > 100);
    CHECK(strstr(svg, "<svg") && strstr(svg, "</svg>") && strstr(svg, "ECE = "));
    CHECK(strstr(svg, "a&lt;b &amp; c") != NULL);
    unlink(path);
    CHECK_EQ_INT(basira_eval_reliability_svg(jget(r, "calibration.top_class"), NULL,
                                             "/nonexistent-dir/x.svg", &err),
                 BASIRA_E_IO);
    CHECK(strstr(err.message, "/nonexistent-dir/x.svg") != NULL);
    CHECK_EQ_INT(basira_eval_reliability_svg(r, NULL, path, NULL), BASIRA_E_INVALID_ARGUMENT);
    json_decref(r);
    basira_eval_set_free(s);
}

static void test_lesion_grouping(void)
{
    basira_eval_set *s = small_set(), *g;
    if (!s)
        return;
    CHECK_EQ_INT(basira_eval_set_group(s, "lesion_id", &g, NULL), BASIRA_OK);
    /* L1 (2 images), L2..L6, L7 (2 images), L8 -> 8 lesions. */
    CHECK_EQ_INT(basira_eval_set_size(g), 8);
    int label;
    const double *p = basira_eval_set_probs(g, 0, &label); /* L1 sorts first */
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(label, 0);
        CHECK_NEAR(p[0], 0.65, 1e-6);
        CHECK_NEAR(p[1], 0.25, 1e-6);
    }
    basira_eval_set_free(g);
    /* A lesion whose images carry different labels is a data error. */
    basira_error err;
    CHECK_EQ_INT(basira_eval_set_set_attr(s, 3, "lesion_id", "L1", NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_eval_set_group(s, "lesion_id", &g, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "L1") != NULL);
    CHECK_EQ_INT(basira_eval_set_group(s, "nope", &g, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_eval_set_free(s);
}

static void test_hostile_and_degenerate(void)
{
    basira_eval_set *s;
    basira_error err;
    const char *dup[] = {"a", "a"};
    CHECK_EQ_INT(basira_eval_set_new(2, dup, NULL, &s, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_eval_set_new(1, codes3, NULL, &s, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_eval_set_new(BASIRA_EVAL_MAX_CLASSES + 1, codes3, NULL, &s, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_eval_set_new(3, codes3, mal3, &s, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_eval_set_class_index(s, "nv"), 1);
    CHECK_EQ_INT(basira_eval_set_class_index(s, "xx"), -1);
    float p[3] = {0.2f, 0.3f, 0.5f};
    CHECK_EQ_INT(basira_eval_set_add(s, 3, p, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_eval_set_add(s, -1, p, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    p[1] = NAN;
    CHECK_EQ_INT(basira_eval_set_add(s, 0, p, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    p[1] = -0.1f;
    CHECK_EQ_INT(basira_eval_set_add(s, 0, p, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    float z[3] = {0, 0, 0};
    CHECK_EQ_INT(basira_eval_set_add(s, 0, z, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_eval_set_set_attr(s, 0, "sex", "x", &err), BASIRA_E_INVALID_ARGUMENT);

    /* Empty set: a report full of nulls, not a crash, not NaN. */
    json_t *r;
    basira_eval_options o;
    basira_eval_options_default(&o);
    o.medium_threshold = 0.1;
    o.high_threshold = 0.5;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_OK);
    if (r) {
        CHECK_EQ_INT(jnum(r, "n"), 0);
        CHECK(json_is_null(jget(r, "accuracy.value")));
        CHECK(json_is_null(jget(r, "auc_malignant.value")));
        CHECK(json_is_null(jget(r, "calibration.top_class.ece")));
        CHECK(all_finite(r));
        FILE *f = fopen("/dev/null", "w");
        CHECK_EQ_INT(basira_eval_report_print(r, 0, f, NULL), BASIRA_OK);
        fclose(f);
        json_decref(r);
    }
    /* Only one class present: per-class and malignant AUCs are null. */
    float q[3] = {0.1f, 0.8f, 0.1f};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(basira_eval_set_add(s, 1, q, NULL, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_OK);
    if (r) {
        CHECK(json_is_null(jget(r, "auc_malignant.value")));
        CHECK(json_is_null(jget(r, "auc_mean_ovr.value")));
        CHECK(json_is_null(jget(json_array_get(json_object_get(r, "per_class"), 1), "auc.value")));
        CHECK_NEAR(jnum(r, "accuracy.value"), 1.0, 1e-12);
        CHECK(json_is_null(jget(r, "triage.sensitivity.value")));
        json_decref(r);
    }
    /* Bad options. */
    o.high_threshold = 0.05; /* below medium */
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    o.high_threshold = -1;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    o.medium_threshold = -1;
    o.bootstrap = -3;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    o.bootstrap = 0;
    const char *by[] = {"skin_tone"};
    o.breakdowns = by;
    o.n_breakdowns = 1;
    CHECK_EQ_INT(basira_eval_report(s, &o, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "skin_tone") != NULL);
    CHECK_EQ_INT(basira_eval_set_apply_temperature(s, 0.0, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_eval_set_free(s);
    basira_eval_set_free(NULL);
}

static void test_temperature_on_set(void)
{
    basira_eval_set *s;
    CHECK_EQ_INT(basira_eval_set_new(3, codes3, mal3, &s, NULL), BASIRA_OK);
    float p[3] = {0.7f, 0.2f, 0.1f};
    CHECK_EQ_INT(basira_eval_set_add(s, 0, p, NULL, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_eval_set_apply_temperature(s, 2.0, NULL), BASIRA_OK);
    const double *q = basira_eval_set_probs(s, 0, NULL);
    /* softmax(log p / 2) = sqrt(p) / sum sqrt(p) */
    double d = sqrt(0.7) + sqrt(0.2) + sqrt(0.1);
    CHECK_NEAR(q[0], sqrt(0.7) / d, 1e-6);
    CHECK_NEAR(q[2], sqrt(0.1) / d, 1e-6);
    CHECK_NEAR(basira_eval_set_p_malignant(s, 0), sqrt(0.7) / d, 1e-6);
    basira_eval_set_free(s);
}

static void test_age_band(void)
{
    CHECK_STR(basira_eval_age_band("5"), "<30");
    CHECK_STR(basira_eval_age_band("29.9"), "<30");
    CHECK_STR(basira_eval_age_band("30.0"), "30-49");
    CHECK_STR(basira_eval_age_band("49"), "30-49");
    CHECK_STR(basira_eval_age_band("50"), "50-69");
    CHECK_STR(basira_eval_age_band("70"), ">=70");
    CHECK_STR(basira_eval_age_band("85.0\r"), ">=70");
    CHECK(basira_eval_age_band("") == NULL);
    CHECK(basira_eval_age_band("unknown") == NULL);
    CHECK(basira_eval_age_band("-4") == NULL);
    CHECK(basira_eval_age_band("nan") == NULL);
    CHECK(basira_eval_age_band("40abc") == NULL);
    CHECK(basira_eval_age_band(NULL) == NULL);
}

static void test_csv(void)
{
    basira_csv *c;
    basira_error err;
    const char *ok =
        "\xEF\xBB\xBFimage_id,dx,note\r\nA,mel,\"has, comma\"\r\n\r\nB,nv,\"say \"\"hi\"\"\"\n"
        "C,bkl,\"two\nlines\"\nD,,\n";
    CHECK_EQ_INT(basira_csv_parse(ok, strlen(ok), &c, &err), BASIRA_OK);
    if (c) {
        CHECK_EQ_INT(basira_csv_rows(c), 4);
        CHECK_EQ_INT(basira_csv_cols(c), 3);
        CHECK_EQ_INT(basira_csv_column(c, "image_id"), 0);
        CHECK_EQ_INT(basira_csv_column(c, "dx"), 1);
        CHECK_EQ_INT(basira_csv_column(c, "missing"), -1);
        CHECK_STR(basira_csv_header(c, 2), "note");
        CHECK(basira_csv_header(c, 3) == NULL);
        CHECK_STR(basira_csv_cell(c, 0, 2), "has, comma");
        CHECK_STR(basira_csv_cell(c, 1, 2), "say \"hi\"");
        CHECK_STR(basira_csv_cell(c, 2, 2), "two\nlines");
        CHECK_STR(basira_csv_cell(c, 3, 1), "");
        CHECK_STR(basira_csv_cell(c, 3, 2), "");
        CHECK(basira_csv_cell(c, 4, 0) == NULL);
        CHECK(basira_csv_cell(c, 0, 3) == NULL);
        basira_csv_free(c);
    }
    /* Header only: zero rows. No trailing newline: fine. */
    CHECK_EQ_INT(basira_csv_parse("a,b", 3, &c, NULL), BASIRA_OK);
    CHECK_EQ_INT(basira_csv_rows(c), 0);
    basira_csv_free(c);
    static const struct {
        const char *text;
        basira_code code;
        const char *needle;
    } bad[] = {
        {"a,b\n1,\"2\n", BASIRA_E_FORMAT, "line 2"},
        {"a,b\n1,2,3\n", BASIRA_E_FORMAT, "3 fields"},
        {"a,b\n1\n", BASIRA_E_FORMAT, "line 2"},
        {"a,b\n1,\"2\"x\n", BASIRA_E_FORMAT, "quote"},
        {"a,b\n1,2\"x\n", BASIRA_E_FORMAT, "quote"},
        /* One reader for train and eval since issue 18: no header is "empty_file". */
        {"", BASIRA_E_EMPTY_FILE, "header"},
        {"\n\n", BASIRA_E_EMPTY_FILE, "header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = NULL;
        CHECK_EQ_INT(basira_csv_parse(bad[i].text, strlen(bad[i].text), &c, &err), bad[i].code);
        CHECK(c == NULL);
        CHECK_MSG(strstr(err.message, bad[i].needle) != NULL, "case %zu: %s", i, err.message);
    }
    const char nul[] = {'a', ',', 'b', '\n', '1', '\0', ',', '2', '\n'};
    CHECK_EQ_INT(basira_csv_parse(nul, sizeof nul, &c, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, "NUL") != NULL);
    CHECK_EQ_INT(basira_csv_read_file("/nonexistent/labels.csv", &c, &err), BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "/nonexistent/labels.csv") != NULL);
    CHECK_EQ_INT(basira_csv_read_file("/dev/null", &c, &err), BASIRA_E_EMPTY_FILE);
}

/* The real HAM10000 metadata parses with the expected shape (skips without the data). */
static void test_csv_real(void)
{
    const char *d = test_data_dir();
    if (!d) {
        fprintf(stderr, "  (no ../shared/data: real CSV check skipped)\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ham10000/metadata.csv", d);
    basira_csv *c;
    basira_error err;
    CHECK_EQ_INT(basira_csv_read_file(path, &c, &err), BASIRA_OK);
    if (!c)
        return;
    CHECK_EQ_INT(basira_csv_rows(c), 7064);
    int dx = basira_csv_column(c, "dx");
    CHECK(dx >= 0);
    long mel = 0;
    for (size_t i = 0; i < basira_csv_rows(c); i++)
        mel += !strcmp(basira_csv_cell(c, i, dx), "mel");
    CHECK_EQ_INT(mel, 702);
    basira_csv_free(c);
}

int main(void)
{
    RUN(test_report_known_values);
    RUN(test_lesion_grouping);
    RUN(test_hostile_and_degenerate);
    RUN(test_temperature_on_set);
    RUN(test_age_band);
    RUN(test_csv);
    RUN(test_csv_real);
    return test_summary();
}
