/*
 * triage.c - from calibrated probabilities to a triage category, and the safety rules
 * laid on top of the model.
 *
 * The model only sees one photo. What it cannot see, or cannot be trusted with, is
 * handled here by rules that can only make a decision MORE cautious, never less:
 *
 *  1. Patient-reported change, bleeding or rapid growth -> at least "medium".
 *     Evolution is the strongest single warning sign of melanoma (the "E" of ABCDE and
 *     the major criterion of the Glasgow 7-point checklist); bleeding suggests
 *     ulceration (nodular melanoma, basal or squamous cell carcinoma); rapid growth is
 *     the hallmark of nodular melanoma and of squamous cell carcinoma, which is not
 *     among the HAM10000 training classes at all. A benign-looking photo does not
 *     outweigh these histories, so such a lesion is always looked at by a clinician.
 *     Itching alone is common in benign lesions and does not raise the category.
 *
 *  2. A photo that failed the quality gate never yields "low". If a health worker
 *     insists on scoring it (--force), a blurred or badly exposed photo may hide the
 *     very features that make a lesion suspicious, so a reassuring answer cannot be
 *     trusted: "low" becomes "medium" (remote review). High stays high.
 *
 *  3. A probability that is not a number (a numerical fault) is treated as "high":
 *     when the system is broken it must fail towards a human look, not away from it.
 *
 * Every result also carries the model identity and the decision-support sentence
 * (pipeline.c), so that a decision can always be traced to the model that made it.
 */
#include "basira/json.h"
#include "basira/triage.h"
#include "core/i18n.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *basira_risk_category_code(basira_risk_category c)
{
    switch (c) {
    case BASIRA_RISK_HIGH:
        return "high";
    case BASIRA_RISK_MEDIUM:
        return "medium";
    case BASIRA_RISK_LOW:
        return "low";
    }
    return "high"; /* an out-of-range value is a bug: say the cautious thing */
}

const char *basira_risk_action_msgid(basira_risk_category c)
{
    switch (c) {
    case BASIRA_RISK_LOW:
        return N_("Advice to the patient and routine surveillance; consult again if the lesion "
                  "changes, bleeds or grows.");
    case BASIRA_RISK_MEDIUM:
        return N_("Scheduled follow-up or remote review by a dermatologist.");
    case BASIRA_RISK_HIGH:
        break;
    }
    return N_("Priority referral to a dermatologist.");
}

const char *basira_risk_action(basira_risk_category c)
{
    return _(basira_risk_action_msgid(c));
}

const char *basira_disclaimer_msgid(void)
{
    return N_("Decision support, not a diagnosis: a qualified clinician must confirm every "
              "decision.");
}

const char *basira_disclaimer(void)
{
    return _(basira_disclaimer_msgid());
}

void basira_history_init(basira_history *h)
{
    if (!h)
        return;
    h->changed = -1;
    h->bleeding = -1;
    h->rapid_growth = -1;
    h->itching = -1;
    h->duration_months = -1;
}

basira_code basira_history_parse(const char *list, basira_history *h, basira_error *err)
{
    if (!list || !h)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    static const struct {
        const char *word;
        size_t field; /* offset in basira_history */
    } words[] = {
        {"changed", offsetof(basira_history, changed)},
        {"change", offsetof(basira_history, changed)},
        {"bleeding", offsetof(basira_history, bleeding)},
        {"growth", offsetof(basira_history, rapid_growth)},
        {"rapid_growth", offsetof(basira_history, rapid_growth)},
        {"itching", offsetof(basira_history, itching)},
    };
    basira_history out = *h;
    const char *p = list;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(p - start);
        int found = 0;
        if (n == 4 && !strncmp(start, "none", 4)) {
            out.changed = out.bleeding = out.rapid_growth = out.itching = 0;
            found = 1;
        }
        for (size_t i = 0; !found && i < sizeof words / sizeof words[0]; i++) {
            if (strlen(words[i].word) == n && !strncmp(start, words[i].word, n)) {
                *(int *)((char *)&out + words[i].field) = 1;
                found = 1;
            }
        }
        if (!found)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("unknown history item '%.*s' (expected changed, bleeding, "
                                      "growth, itching or none)"),
                                    (int)(n > 64 ? 64 : n), start);
    }
    *h = out;
    return BASIRA_OK;
}

void basira_triage_config_default(basira_triage_config *cfg)
{
    if (!cfg)
        return;
    cfg->high_threshold = -1;
    cfg->medium_threshold = -1;
}

static int threshold_value(const json_t *th, const char *key, double *out)
{
    const json_t *v = json_object_get(th, key);
    if (!v)
        return 0; /* keep the model's */
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= 0 && d <= 1))
        return -1;
    *out = d;
    return 0;
}

basira_code basira_triage_config_from_json(const json_t *j, basira_triage_config *cfg,
                                           basira_error *err)
{
    if (!cfg)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!json_is_object(j))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("triage configuration: expected a JSON object"));
    basira_triage_config c;
    basira_triage_config_default(&c);
    const json_t *th = json_object_get(j, "thresholds");
    if (th) {
        if (!json_is_object(th) || threshold_value(th, "high", &c.high_threshold) ||
            threshold_value(th, "medium", &c.medium_threshold))
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("triage configuration: \"thresholds\" must be an object "
                                      "with \"high\" and/or \"medium\" numbers from 0 to 1"));
        if (c.high_threshold >= 0 && c.medium_threshold >= 0 &&
            c.medium_threshold > c.high_threshold)
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("triage configuration: the medium threshold (%g) is above "
                                      "the high threshold (%g)"),
                                    c.medium_threshold, c.high_threshold);
        if (c.high_threshold == 0)
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("triage configuration: the high threshold must be above 0"));
    }
    *cfg = c;
    return BASIRA_OK;
}

basira_code basira_triage_config_load(const char *path, basira_triage_config *cfg,
                                      basira_error *err)
{
    if (!path || !cfg)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    json_error_t je;
    json_t *j = NULL;
    basira_error rerr;
    basira_code rc = basira_json_read_file(path, (size_t)1 << 20, &j, &je, &rerr);
    if (rc == BASIRA_E_FORMAT)
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("configuration file %s: invalid JSON at line %d: %s"), path,
                                je.line, je.text);
    if (rc)
        return basira_error_set(err, rc, _("cannot open the configuration file %s"), path);
    rc = basira_triage_config_from_json(j, cfg, err);
    json_decref(j);
    if (rc && err) {
        char msg[BASIRA_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        basira_error_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

basira_risk_category basira_triage_decide_ex(double p, double high, double medium,
                                             const basira_history *history, int quality_ok,
                                             unsigned *raised)
{
    unsigned why = 0;
    basira_risk_category c;
    if (!isfinite(p)) { /* rule 3 */
        c = BASIRA_RISK_HIGH;
        why |= BASIRA_TRIAGE_RAISED_INVALID;
    } else if (p >= high) {
        c = BASIRA_RISK_HIGH;
    } else if (p >= medium) {
        c = BASIRA_RISK_MEDIUM;
    } else {
        c = BASIRA_RISK_LOW;
    }
    /* Rule 1: history of change, bleeding or rapid growth. */
    if (history &&
        (history->changed == 1 || history->bleeding == 1 || history->rapid_growth == 1)) {
        if (c < BASIRA_RISK_MEDIUM) {
            c = BASIRA_RISK_MEDIUM;
            why |= BASIRA_TRIAGE_RAISED_HISTORY;
        }
    }
    /* Rule 2: a failed quality gate never gives "low". */
    if (!quality_ok && c == BASIRA_RISK_LOW) {
        c = BASIRA_RISK_MEDIUM;
        why |= BASIRA_TRIAGE_RAISED_QUALITY;
    }
    if (raised)
        *raised = why;
    return c;
}

basira_risk_category basira_triage_decide(double p, double high, double medium,
                                          const basira_history *history, int quality_ok)
{
    return basira_triage_decide_ex(p, high, medium, history, quality_ok, NULL);
}

/*
 * Rule 4 (issue 11): inflammatory or infectious skin disease is managed in primary care, and a
 * lesion that does not get better is referred. Only a "low" category qualifies, so the rule
 * never overrides rules 1-3 nor a malignant probability at or above medium.
 */
int basira_triage_primary_care(basira_risk_category category, double pmal, double medium,
                               double p_non_neoplastic, double threshold)
{
    return category == BASIRA_RISK_LOW && isfinite(pmal) && pmal < medium &&
           isfinite(p_non_neoplastic) && threshold > 0 && threshold <= 1 &&
           p_non_neoplastic >= threshold;
}

const char *basira_primary_care_advice_msgid(void)
{
    /* BASIRA_PRIMARY_CARE_WEEKS (4) in words; 2 weeks for the warning signs. */
    return N_(
        "Probably inflammatory or infectious, not a tumour: manage in primary care, and refer "
        "to a dermatologist if it is not better in 4 weeks (2 weeks if it bleeds, grows or "
        "the patient is immunosuppressed).");
}

const char *basira_primary_care_advice(void)
{
    return _(basira_primary_care_advice_msgid());
}
