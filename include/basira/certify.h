/*
 * certify.h - the report a national body signs before a model is used: how the
 * model does in every phototype group and for every lesion type on a labelled local
 * test set, judged against acceptance criteria written down in advance.
 *
 * The statistics come from src/eval (Wilson intervals, DeLong AUC and its paired
 * test, calibration, Cohen's kappa); this module groups the cases, measures the gap
 * between groups with a stratified bootstrap, checks each criterion and says which
 * evidence decided it. It fails closed: a criterion whose figure cannot be computed
 * (no group large enough, no positives) fails, and an unknown metric in the criteria
 * file is an error, never a pass.
 *
 * Criteria file (JSON):
 *   {"min_group_n": 30,
 *    "criteria": [
 *      {"id": "sens", "metric": "sensitivity", "statistic": "lower",
 *       "scope": "each_group", "op": ">=", "value": 0.85},
 *      {"id": "auc", "metric": "auc", "scope": "each_group", "op": ">=", "value": 0.80},
 *      {"id": "gap", "metric": "auc_gap", "op": "<=", "value": 0.05},
 *      {"id": "ece", "metric": "ece", "op": "<=", "value": 0.05}]}
 * metric: sensitivity, specificity, ppv, npv, auc, ece (of the malignant probability),
 *   auc_gap (best minus worst group AUC among groups with n >= min_group_n),
 *   auc_vs_parent (AUC of the model minus the parent's), kappa (adjudicated vs recorded);
 * statistic: value (default), lower or upper (95% interval bound);
 * scope: overall (default) or each_group (every phototype group with n >= min_group_n;
 *   no such group fails the criterion); op: ">=", ">", "<=", "<".
 */
#ifndef BASIRA_CERTIFY_H
#define BASIRA_CERTIFY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One labelled test case as the model (and optionally its parent) scored it. */
typedef struct basira_certify_case {
    const char *id;               /* image name, listed among false negatives / positives */
    const char *group;            /* phototype group ("I".."VI" or an ITA category); NULL unknown */
    const char *lesion_type;      /* recorded class code */
    int malignant;                /* recorded truth: 1 malignant or pre-malignant */
    double p_malignant;           /* calibrated P(malignant) of the model */
    double p_parent;              /* of the parent model; NaN when there is none */
    const char *adjudicated_type; /* adjudicated class code; NULL when not reviewed */
    int adjudicated_malignant;    /* its truth; ignored when adjudicated_type is NULL */
} basira_certify_case;

typedef struct basira_certify_options {
    double medium_threshold; /* triage positive: p_malignant >= medium (high + medium) */
    int bootstrap;           /* replicates of the group-gap interval (0: none) */
    uint64_t seed;
    long min_group_n; /* default when the criteria do not say; 30 */
} basira_certify_options;

void basira_certify_options_default(basira_certify_options *o);

/*
 * Compute the report of n cases against the criteria (see above) into *report (new
 * reference): {"n", "threshold", "overall": {...}, "groups": [...], "lesion_types": [...],
 * "group_gap": {...}, "parent": {...}|null, "adjudication": {...}|null,
 * "criteria": [{"id", "metric", ..., "pass", "evidence": [...]}], "pass"}.
 * Each group entry: value, n, n_malignant, small, sensitivity, specificity, ppv, npv
 * ({value, lo, hi, k, n}), auc ({value, lo, hi}), ece, reliability (bins),
 * false_negatives and false_positives (image names).
 * *all_pass is 1 when every criterion passes (and there is at least one).
 * Errors: BASIRA_E_FORMAT for a malformed criteria file (message names the entry),
 * BASIRA_E_INVALID_ARGUMENT for non-finite probabilities, BASIRA_E_NOMEM.
 */
basira_code basira_certify_run(const basira_certify_case *cases, size_t n,
                               const basira_certify_options *o, const json_t *criteria,
                               json_t **report, int *all_pass, basira_error *err);

/* Identity of what was certified, printed on the PDF. */
typedef struct basira_certify_identity {
    const char *model_name, *model_version, *model_sha256;
    const char *parent_sha256; /* NULL: no parent */
    const char *manifest_sha256;
    const char *date; /* ISO 8601 */
} basira_certify_identity;

/*
 * Write the report as a PDF at path in lang "fr", "ar" (right to left) or "en":
 * identity, verdict, each criterion with its evidence, per-group and per-lesion-type
 * tables, the reliability diagram, the comparison with the parent, the agreement with
 * the adjudicated labels, false negatives and false positives.
 */
basira_code basira_certify_pdf(const json_t *report, const basira_certify_identity *id,
                               const char *lang, const char *path, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
