/* test_triage_rules.c - categories, safety rules, history parsing, site configuration. */
#include "basira/triage.h"
#include "test.h"

#include <math.h>

#include <unistd.h>

static void test_categories(void)
{
    /* Thresholds apply to the malignant probability, inclusive at the boundary. */
    CHECK(basira_triage_decide(0.50, 0.40, 0.08, NULL, 1) == BASIRA_RISK_HIGH);
    CHECK(basira_triage_decide(0.40, 0.40, 0.08, NULL, 1) == BASIRA_RISK_HIGH);
    CHECK(basira_triage_decide(0.39, 0.40, 0.08, NULL, 1) == BASIRA_RISK_MEDIUM);
    CHECK(basira_triage_decide(0.08, 0.40, 0.08, NULL, 1) == BASIRA_RISK_MEDIUM);
    CHECK(basira_triage_decide(0.079, 0.40, 0.08, NULL, 1) == BASIRA_RISK_LOW);
    CHECK(basira_triage_decide(0.0, 0.40, 0.08, NULL, 1) == BASIRA_RISK_LOW);
    /* Site thresholds move the boundaries. */
    CHECK(basira_triage_decide(0.30, 0.25, 0.05, NULL, 1) == BASIRA_RISK_HIGH);
    CHECK(basira_triage_decide(0.06, 0.25, 0.05, NULL, 1) == BASIRA_RISK_MEDIUM);
    CHECK_STR(basira_risk_category_code(BASIRA_RISK_LOW), "low");
    CHECK_STR(basira_risk_category_code(BASIRA_RISK_MEDIUM), "medium");
    CHECK_STR(basira_risk_category_code(BASIRA_RISK_HIGH), "high");
    CHECK_STR(basira_risk_category_code((basira_risk_category)7), "high");
}

/* Rule 1: change, bleeding, rapid growth -> at least medium; itching alone does not. */
static void test_history_rule(void)
{
    basira_history h;
    unsigned raised;
    const char *items[] = {"changed", "bleeding", "growth"};
    for (int i = 0; i < 3; i++) {
        basira_history_init(&h);
        basira_error err;
        CHECK_EQ_INT(basira_history_parse(items[i], &h, &err), BASIRA_OK);
        CHECK(basira_triage_decide_ex(0.01, 0.4, 0.08, &h, 1, &raised) == BASIRA_RISK_MEDIUM);
        CHECK(raised == BASIRA_TRIAGE_RAISED_HISTORY);
        /* never lowers a high */
        CHECK(basira_triage_decide_ex(0.9, 0.4, 0.08, &h, 1, &raised) == BASIRA_RISK_HIGH);
        CHECK(raised == 0);
        CHECK(basira_triage_decide_ex(0.1, 0.4, 0.08, &h, 1, &raised) == BASIRA_RISK_MEDIUM);
        CHECK(raised == 0);
    }
    basira_history_init(&h);
    h.itching = 1;
    CHECK(basira_triage_decide_ex(0.01, 0.4, 0.08, &h, 1, &raised) == BASIRA_RISK_LOW);
    CHECK(raised == 0);
    /* "not asked" (-1) and "no" (0) do not raise */
    basira_history_init(&h);
    CHECK(basira_triage_decide(0.01, 0.4, 0.08, &h, 1) == BASIRA_RISK_LOW);
    h.changed = h.bleeding = h.rapid_growth = 0;
    CHECK(basira_triage_decide(0.01, 0.4, 0.08, &h, 1) == BASIRA_RISK_LOW);
}

/* Rule 2: a photo that failed the quality gate never yields low. */
static void test_quality_rule(void)
{
    unsigned raised;
    CHECK(basira_triage_decide_ex(0.01, 0.4, 0.08, NULL, 0, &raised) == BASIRA_RISK_MEDIUM);
    CHECK(raised == BASIRA_TRIAGE_RAISED_QUALITY);
    CHECK(basira_triage_decide_ex(0.2, 0.4, 0.08, NULL, 0, &raised) == BASIRA_RISK_MEDIUM);
    CHECK(raised == 0);
    CHECK(basira_triage_decide_ex(0.6, 0.4, 0.08, NULL, 0, &raised) == BASIRA_RISK_HIGH);
    /* both rules: history raises first, quality has nothing left to do */
    basira_history h;
    basira_history_init(&h);
    h.bleeding = 1;
    CHECK(basira_triage_decide_ex(0.01, 0.4, 0.08, &h, 0, &raised) == BASIRA_RISK_MEDIUM);
    CHECK(raised == BASIRA_TRIAGE_RAISED_HISTORY);
}

/* Rule 3: a probability that is not a number fails safe. */
static void test_invalid_probability(void)
{
    unsigned raised;
    CHECK(basira_triage_decide_ex(NAN, 0.4, 0.08, NULL, 1, &raised) == BASIRA_RISK_HIGH);
    CHECK(raised & BASIRA_TRIAGE_RAISED_INVALID);
    CHECK(basira_triage_decide(INFINITY, 0.4, 0.08, NULL, 1) == BASIRA_RISK_HIGH);
}

static void test_history_parse(void)
{
    basira_history h;
    basira_error err;
    basira_history_init(&h);
    CHECK(h.changed == -1 && h.bleeding == -1 && h.rapid_growth == -1 && h.itching == -1);
    CHECK(h.duration_months < 0);
    CHECK_EQ_INT(basira_history_parse("changed, bleeding,growth,itching", &h, &err), BASIRA_OK);
    CHECK(h.changed == 1 && h.bleeding == 1 && h.rapid_growth == 1 && h.itching == 1);
    basira_history_init(&h);
    CHECK_EQ_INT(basira_history_parse("", &h, &err), BASIRA_OK);
    CHECK(h.changed == -1);
    CHECK_EQ_INT(basira_history_parse("none", &h, &err), BASIRA_OK);
    CHECK(h.changed == 0 && h.bleeding == 0 && h.rapid_growth == 0 && h.itching == 0);
    CHECK_EQ_INT(basira_history_parse("rapid_growth", &h, &err), BASIRA_OK);
    CHECK(h.rapid_growth == 1 && h.bleeding == 0);
    /* unknown words are refused and nothing is changed */
    basira_history_init(&h);
    CHECK_EQ_INT(basira_history_parse("changed,bleding", &h, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "bleding") != NULL);
    CHECK(h.changed == -1);
    CHECK_EQ_INT(basira_history_parse("changedx", &h, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_history_parse(NULL, &h, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_config(void)
{
    basira_triage_config cfg;
    basira_error err;
    basira_triage_config_default(&cfg);
    CHECK(cfg.high_threshold < 0 && cfg.medium_threshold < 0);

    json_t *j = json_loads("{\"thresholds\":{\"high\":0.3,\"medium\":0.05}}", 0, NULL);
    CHECK_EQ_INT(basira_triage_config_from_json(j, &cfg, &err), BASIRA_OK);
    CHECK_NEAR(cfg.high_threshold, 0.3, 1e-12);
    CHECK_NEAR(cfg.medium_threshold, 0.05, 1e-12);
    json_decref(j);
    j = json_loads("{\"thresholds\":{\"medium\":0.02}}", 0, NULL);
    CHECK_EQ_INT(basira_triage_config_from_json(j, &cfg, &err), BASIRA_OK);
    CHECK(cfg.high_threshold < 0);
    CHECK_NEAR(cfg.medium_threshold, 0.02, 1e-12);
    json_decref(j);
    j = json_loads("{}", 0, NULL);
    CHECK_EQ_INT(basira_triage_config_from_json(j, &cfg, &err), BASIRA_OK);
    CHECK(cfg.high_threshold < 0 && cfg.medium_threshold < 0);
    json_decref(j);

    static const char *const bad[] = {
        "[]",
        "{\"thresholds\":3}",
        "{\"thresholds\":{\"high\":1.5}}",
        "{\"thresholds\":{\"high\":-0.1}}",
        "{\"thresholds\":{\"high\":\"0.3\"}}",
        "{\"thresholds\":{\"high\":0.1,\"medium\":0.2}}",
        "{\"thresholds\":{\"high\":0}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        basira_triage_config_default(&cfg);
        basira_code rc = basira_triage_config_from_json(b, &cfg, &err);
        CHECK_MSG(rc == BASIRA_E_FORMAT, "accepted %s", bad[i]);
        CHECK(cfg.high_threshold < 0); /* untouched on error */
        json_decref(b);
    }

    /* Files: missing, malformed, valid. */
    char path[] = "/tmp/basira-triage-cfg-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"thresholds\": {\"high\": 0.5,", f);
    fclose(f);
    CHECK_EQ_INT(basira_triage_config_load(path, &cfg, &err), BASIRA_E_FORMAT);
    CHECK(strstr(err.message, path) != NULL);
    f = fopen(path, "w");
    fputs("{\"thresholds\": {\"high\": 0.5, \"medium\": 0.1}}", f);
    fclose(f);
    CHECK_EQ_INT(basira_triage_config_load(path, &cfg, &err), BASIRA_OK);
    CHECK_NEAR(cfg.high_threshold, 0.5, 1e-12);
    unlink(path);
    CHECK_EQ_INT(basira_triage_config_load(path, &cfg, &err), BASIRA_E_NOT_FOUND);
}

static void test_texts(void)
{
    /* Three distinct actions and a disclaimer, never empty. */
    const char *a = basira_risk_action(BASIRA_RISK_LOW),
               *b = basira_risk_action(BASIRA_RISK_MEDIUM),
               *c = basira_risk_action(BASIRA_RISK_HIGH);
    CHECK(a && b && c && *a && *b && *c);
    CHECK(strcmp(a, b) && strcmp(b, c) && strcmp(a, c));
    CHECK(strstr(c, "dermatologist") != NULL);
    CHECK(strstr(basira_disclaimer(), "not a diagnosis") != NULL);
}

/* Rule 4: non-neoplastic and low -> primary care; never above low, never on a broken number. */
static void test_primary_care_rule(void)
{
    const double th = BASIRA_NON_NEOPLASTIC_THRESHOLD;
    CHECK(basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, 0.85, th));
    CHECK(basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, th, th)); /* at the threshold */
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, 0.79, th));
    /* A malignant probability at medium or above is never sent to primary care. */
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, 0.28, 0.28, 0.9, th));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_MEDIUM, 0.05, 0.28, 0.95, th));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_HIGH, 0.05, 0.28, 0.95, th));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, NAN, 0.28, 0.95, th));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, NAN, th));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, 0.95, 0));
    CHECK(!basira_triage_primary_care(BASIRA_RISK_LOW, 0.05, 0.28, 1.0, 1.5));
    /* What decide gives for a bleeding lesion is not low, so the rule does not apply. */
    basira_history h;
    basira_history_init(&h);
    h.bleeding = 1;
    basira_risk_category c = basira_triage_decide(0.05, 0.6, 0.28, &h, 1);
    CHECK(!basira_triage_primary_care(c, 0.05, 0.28, 0.95, th));
    const char *advice = basira_primary_care_advice();
    CHECK(advice && strstr(advice, "4 weeks") && strstr(advice, "primary care"));
    CHECK_EQ_INT(BASIRA_PRIMARY_CARE_WEEKS, 4);
}

int main(void)
{
    RUN(test_categories);
    RUN(test_history_rule);
    RUN(test_quality_rule);
    RUN(test_invalid_probability);
    RUN(test_history_parse);
    RUN(test_config);
    RUN(test_texts);
    RUN(test_primary_care_rule);
    return test_summary();
}
