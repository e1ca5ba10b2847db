/*
 * eval.h - how good is a model, honestly: metrics with 95% confidence intervals,
 * calibration, and the choice of the triage operating point.
 *
 * Every figure Basira reports about a model comes with its uncertainty, because a
 * test set of a few hundred lesions cannot tell 90% from 94% sensitivity, and a
 * clinic deciding whether to trust the tool must see that. Methods:
 *   - proportions (accuracy, sensitivity, specificity, PPV, NPV): Wilson score
 *     interval (correct near 0 and 1 where the textbook Wald interval is not);
 *   - one AUC (one class vs rest, malignant vs benign): DeLong's variance with the
 *     fast midrank algorithm (Sun & Xu 2014), normal interval clipped to [0, 1];
 *   - statistics without a closed-form variance (balanced accuracy, mean one-vs-rest
 *     AUC): seeded bootstrap, resampling within each true class (stratified) so
 *     every replicate keeps the class mix, percentile interval;
 *   - calibration: expected calibration error (ECE) over 15 equal-width bins of the
 *     top-class confidence, and the same for the malignant probability;
 *   - temperature scaling fitted by minimising the negative log-likelihood.
 * An undefined statistic (no positives, an empty group) is NaN in the C structs and
 * null in JSON, never a made-up number.
 *
 * Scores are probabilities as produced by the model (rows summing to 1).
 */
#ifndef BASIRA_EVAL_H
#define BASIRA_EVAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "basira/csv.h"
#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most classes a model may have (same bound as basira_pipeline_predict). */
#define BASIRA_EVAL_MAX_CLASSES 32
/* Bins of the calibration error and the reliability diagram. */
#define BASIRA_EVAL_ECE_BINS 15

/* ---- elementary statistics ------------------------------------------------- */

/* A proportion k/n with its Wilson 95% interval; value, lo, hi are NaN when n == 0. */
typedef struct basira_proportion {
    long k, n;
    double value, lo, hi;
} basira_proportion;

/* Wilson score 95% interval of k successes out of n (0 <= k <= n). */
basira_code basira_wilson(long k, long n, basira_proportion *out, basira_error *err);

/* An AUC with its 95% interval (NaN when undefined) and the numbers it rests on. */
typedef struct basira_auc {
    double value, lo, hi; /* value NaN when positives or negatives are missing */
    double variance;      /* DeLong variance; NaN when it needs >= 2 of each */
    long n_pos, n_neg;
} basira_auc;

/*
 * AUC of scores[i] for separating positive[i] != 0 from the rest, ties counted 1/2
 * (Mann-Whitney with midranks), with DeLong's variance and 95% interval.
 */
basira_code basira_auc_delong(const double *scores, const int *positive, size_t n, basira_auc *out,
                              basira_error *err);

/* One bin of a reliability diagram. */
typedef struct basira_calibration_bin {
    double lo, hi;        /* confidence range (lo, hi] (the first bin includes 0) */
    long n;               /* samples in the bin */
    double mean_conf;     /* mean predicted probability (NaN when empty) */
    double frac_positive; /* observed frequency: accuracy, or share of positives (NaN when empty) */
} basira_calibration_bin;

typedef struct basira_calibration {
    double ece; /* sum over bins of n_b/N * |frac_positive - mean_conf|; NaN when N == 0 */
    double mce; /* largest |frac_positive - mean_conf| over non-empty bins */
    long n;
    basira_calibration_bin bins[BASIRA_EVAL_ECE_BINS];
} basira_calibration;

/*
 * Expected calibration error of confidences conf[i] in [0, 1] against outcomes
 * hit[i] (1 = the event happened: top class correct, or lesion malignant).
 */
basira_code basira_calibration_compute(const double *conf, const int *hit, size_t n,
                                       basira_calibration *out, basira_error *err);

/*
 * How much of an ECE is sampling noise. On a few hundred cases a perfectly calibrated
 * model still shows an ECE of several points (each of the 15 bins holds a few dozen), so
 * an ECE alone cannot say whether a model is miscalibrated. Consistency resampling
 * (Broecker and Smith 2007), reps times from seed (the same seed, the same figures): every
 * outcome drawn from its own predicted probability, the ECE of what a calibrated model
 * would show on these n predictions. null_mean and null_p95 are its mean and 95th
 * percentile; p_value = (1 + #{null ECE >= observed}) / (reps + 1), small when the
 * observed miscalibration is beyond that noise. (A bootstrap of the cases is no help: the
 * ECE is biased upwards and resampling adds to the bias.)
 */
typedef struct basira_calibration_noise {
    double ece; /* observed */
    double null_mean, null_p95, p_value;
    int reps;
} basira_calibration_noise;
basira_code basira_calibration_noise_compute(const double *conf, const int *hit, size_t n, int reps,
                                             uint64_t seed, basira_calibration_noise *out,
                                             basira_error *err);

/*
 * Temperature scaling: the T > 0 minimising the mean negative log-likelihood of
 * softmax(logits / T) for the labels (n rows of k logits, labels in [0, k)).
 * Log-probabilities work as logits (softmax is shift-invariant), so a model that
 * already has a temperature T0 is recalibrated to T0 * T. Searched in [0.05, 20].
 * nll_before (T = 1) and nll_after may be NULL.
 */
basira_code basira_fit_temperature(const double *logits, const int *labels, size_t n, int k,
                                   double *temperature, double *nll_before, double *nll_after,
                                   basira_error *err);

/*
 * Binary recalibration of the malignant probability by a bias on its log-odds: the b in
 * [-8, 8] minimising the mean negative log-likelihood of sigmoid(logit(p_mal[i]) + b)
 * for the outcomes malignant[i] (1 = malignant). Convex in b; p_mal is clipped to
 * [1e-6, 1 - 1e-6]. This is what a change of prevalence or a systematic shift of the
 * malignant classes' scores needs, and what one temperature cannot give. nll_before
 * (b = 0) and nll_after may be NULL.
 */
basira_code basira_fit_malignant_bias(const double *p_mal, const int *malignant, size_t n,
                                      double *bias, double *nll_before, double *nll_after,
                                      basira_error *err);

/*
 * Platt scaling of the malignant probability: the slope a in [BASIRA_EVAL_MIN_SLOPE,
 * BASIRA_EVAL_MAX_SLOPE] and the bias b in [-8, 8] minimising the mean negative
 * log-likelihood of sigmoid(a * logit(p_mal[i]) + b) for the outcomes malignant[i].
 * Jointly convex (a logistic regression on one feature): nested golden-section searches,
 * outer on a, inner on b. What a bias alone cannot give: a model whose P(malignant) is
 * too timid at both ends (a > 1) or too confident (a < 1). The map is monotone, so the
 * ranking (AUC) is unchanged. nll_before (a = 1, b = 0) and nll_after may be NULL.
 */
#define BASIRA_EVAL_MIN_SLOPE 0.25
#define BASIRA_EVAL_MAX_SLOPE 4.0
basira_code basira_fit_malignant_platt(const double *p_mal, const int *malignant, size_t n,
                                       double *slope, double *bias, double *nll_before,
                                       double *nll_after, basira_error *err);

/*
 * Binary recalibration of P(malignant) by the model's own two parameters: the temperature
 * T in [0.05, 20] and the bias b in [-8, 8] minimising the mean binary negative
 * log-likelihood of P'(malignant) = sum over the malignant classes (class_malignant[c])
 * of softmax(logits / T), its odds times e^b, against malignant[i]. Log-probabilities
 * work as logits. Nested golden-section searches (outer on log T, inner on b, convex).
 * What a clinic's triage needs calibrated is P(malignant), not the top class; with a
 * few hundred adjudicated cases two parameters are what the data can carry.
 */
basira_code basira_fit_temperature_bias(const double *logits, const int *class_malignant, int k,
                                        const int *malignant, size_t n, double *temperature,
                                        double *bias, double *nll_before, double *nll_after,
                                        basira_error *err);

/*
 * One probability row of k classes with the odds of P(malignant) times e^bias (the
 * malignant classes' probabilities times e^bias, renormalised), as the classifier does
 * with a model's "malignant_bias".
 */
void basira_eval_shift_malignant(double *probs, int k, const int *malignant, double bias);
/*
 * One probability row with P(malignant) = p mapped to sigmoid(slope * logit(p) + bias):
 * the malignant classes scaled by p'/p, the others by (1 - p')/(1 - p), so the ranking
 * within each side is kept. slope 1 is exactly basira_eval_shift_malignant(); a row with
 * p = 0 or 1 is left as it is (a monotone map keeps the ends).
 */
void basira_eval_map_malignant(double *probs, int k, const int *malignant, double slope,
                               double bias);

/* softmax(logits / T) for n rows of k, into probs (may alias logits). */
void basira_eval_softmax(const double *logits, size_t n, int k, double temperature, double *probs);

/* ---- triage operating point ---------------------------------------------------- */

typedef struct basira_operating_point_options {
    double target_sensitivity; /* share of malignant lesions at medium or high, e.g. 0.95 */
    double high_specificity;   /* share of benign lesions below high, e.g. 0.90 */
    int conservative;          /* 1: require the Wilson lower bound of the sensitivity >= target */
} basira_operating_point_options;

void basira_operating_point_options_default(basira_operating_point_options *o);

typedef struct basira_operating_point {
    double medium_threshold;            /* p_malignant >= medium -> at least medium */
    double high_threshold;              /* p_malignant >= high -> high (high >= medium) */
    basira_proportion sensitivity;      /* on the fitting data, high + medium among malignant */
    basira_proportion specificity;      /* low among benign */
    basira_proportion high_specificity; /* below high among benign */
} basira_operating_point;

/*
 * Choose the thresholds on a validation set of malignant probabilities p_mal[i]
 * with truth malignant[i]. Medium: the largest threshold that keeps at least
 * target_sensitivity of the malignant lesions at medium or above (counted as the
 * ceiling of target x M lesions, comparison inclusive, value rounded down to 1e-6
 * so that storing it as text never loses a lesion). High: the smallest threshold at
 * or above medium that leaves at most (1 - high_specificity) of the benign lesions
 * at high, i.e. an urgent referral only for a small, specific group.
 */
basira_code basira_choose_operating_point(const double *p_mal, const int *malignant, size_t n,
                                          const basira_operating_point_options *o,
                                          basira_operating_point *out, basira_error *err);

/* ---- a labelled set of predictions ---------------------------------------------- */

/* Predictions of one model on a set of images, with each image's truth and metadata. Opaque. */
typedef struct basira_eval_set basira_eval_set;

/* codes[k]: class codes; malignant[k]: 1 for malignant or pre-malignant classes. */
basira_code basira_eval_set_new(int num_classes, const char *const *codes, const int *malignant,
                                basira_eval_set **out, basira_error *err);
void basira_eval_set_free(basira_eval_set *s);

/* Index of a class code, or -1. */
int basira_eval_set_class_index(const basira_eval_set *s, const char *code);
size_t basira_eval_set_size(const basira_eval_set *s);
int basira_eval_set_num_classes(const basira_eval_set *s);

/*
 * Add one prediction: label in [0, num_classes), probs[num_classes] finite, >= 0
 * (renormalised to sum 1). Returns its index through *index (may be NULL).
 */
basira_code basira_eval_set_add(basira_eval_set *s, int label, const float *probs, size_t *index,
                                basira_error *err);

/* Attach a metadata value (e.g. "sex" = "female") to sample index. NULL/"" value = unknown. */
basira_code basira_eval_set_set_attr(basira_eval_set *s, size_t index, const char *name,
                                     const char *value, basira_error *err);

/* Probabilities of sample i (borrowed, num_classes doubles) and its label. */
const double *basira_eval_set_probs(const basira_eval_set *s, size_t i, int *label);

/*
 * Lesion-level set: samples sharing the value of attribute `name` (e.g. lesion_id)
 * are merged, probabilities averaged, other attributes taken from the first one.
 * Samples without a value stay alone. Different labels within one group are an
 * error (BASIRA_E_FORMAT): the data set contradicts itself.
 */
basira_code basira_eval_set_group(const basira_eval_set *s, const char *name, basira_eval_set **out,
                                  basira_error *err);

/* Shift every row's malignant odds by e^bias (basira_eval_shift_malignant). */
basira_code basira_eval_set_apply_malignant_bias(basira_eval_set *s, double bias,
                                                 basira_error *err);
/* Map every row's P(malignant) by sigmoid(slope * logit(p) + bias) (basira_eval_map_malignant). */
basira_code basira_eval_set_apply_malignant_map(basira_eval_set *s, double slope, double bias,
                                                basira_error *err);
/* Replace every probability row by softmax(log(p) / T): recalibration by temperature. */
basira_code basira_eval_set_apply_temperature(basira_eval_set *s, double temperature,
                                              basira_error *err);

/* Summed probability of the malignant classes of sample i. */
double basira_eval_set_p_malignant(const basira_eval_set *s, size_t i);

/* ---- the report ------------------------------------------------------------------- */

typedef struct basira_eval_options {
    double medium_threshold, high_threshold; /* < 0: no triage section */
    int bootstrap;                           /* replicates; 0 = none (CI null) */
    uint64_t seed;                           /* of the bootstrap */
    const char *const *breakdowns;           /* attribute names to break down by */
    int n_breakdowns;
    long small_group_n; /* groups with fewer samples (or < 10 of either truth) are flagged */
} basira_eval_options;

/* Thresholds unset, 1000 bootstrap replicates, seed 20261122, small groups < 30. */
void basira_eval_options_default(basira_eval_options *o);

/*
 * Compute every metric of the set into a JSON document (new reference):
 *   {"n", "classes": [...], "accuracy": {value,lo,hi,k,n}, "balanced_accuracy": {...},
 *    "confusion": {"labels": [...], "matrix": [[...]]} (rows truth, columns predicted),
 *    "per_class": [{"code","n","sensitivity","specificity","ppv","npv","auc"}],
 *    "auc_malignant", "auc_mean_ovr", "calibration": {"top_class", "malignant"},
 *    "triage": {...}, "breakdowns": {"sex": [{"value","n","small",...}]}, "methods": {...}}
 */
basira_code basira_eval_report(const basira_eval_set *s, const basira_eval_options *o, json_t **out,
                               basira_error *err);

/* Human-readable report (localised headings) of a JSON report, plain text or Markdown. */
basira_code basira_eval_report_print(const json_t *report, int markdown, FILE *f,
                                     basira_error *err);

/* Reliability diagram (SVG) of a "calibration" entry of a report ({"bins": [...], "ece"}). */
basira_code basira_eval_reliability_svg(const json_t *calibration, const char *title,
                                        const char *path, basira_error *err);

/* Age band used in breakdowns: "<30", "30-49", "50-69", ">=70", or NULL when unknown. */
const char *basira_eval_age_band(const char *age);

/* ---- paired comparisons (paired.c) ---------------------------------------------- */

/* Two correlated AUCs (model a and model b scored on the same cases). */
typedef struct basira_auc_comparison {
    double auc_a, auc_b;
    double difference, lo, hi; /* auc_a - auc_b with its 95% interval */
    double se, z, p_value;     /* two-sided DeLong test; NaN when undefined */
    long n_pos, n_neg;
} basira_auc_comparison;

/*
 * DeLong's test for two correlated AUCs (DeLong et al. 1988): a[i] and b[i] are the
 * scores of the two models on case i, positive[i] its truth. Undefined values are NaN
 * (no positives or negatives; the variance needs >= 2 of each).
 */
basira_code basira_auc_delong_paired(const double *a, const double *b, const int *positive,
                                     size_t n, basira_auc_comparison *out, basira_error *err);

/* Agreement of two raters beyond chance. */
typedef struct basira_kappa {
    double kappa, lo, hi;      /* Cohen's kappa with its asymptotic 95% interval */
    double observed, expected; /* agreement observed and expected by chance */
    long n;
} basira_kappa;

/* Cohen's kappa of ratings r1[i], r2[i] in [0, k); NaN when chance agreement is 1. */
basira_code basira_cohen_kappa(const int *r1, const int *r2, size_t n, int k, basira_kappa *out,
                               basira_error *err);

/* ---- CSV: the label files are read with basira_csv (basira/csv.h) ---- */

#ifdef __cplusplus
}
#endif
#endif
