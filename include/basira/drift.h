/*
 * drift.h - drift monitoring of a deployed model: what the clinics' cases look
 * like, week by week, against the model's validation reference.
 *
 * Pure computation (no database): src/hub/monitor.c reads the hub's cases into
 * basira_drift_case rows and calls basira_drift_monitor; tests and the
 * simulated-year bench feed it directly.
 *
 * The reference (basira_drift_reference_build, a JSON document shipped next to
 * the model: models/basira-derm/drift-reference.json) holds the validation
 * set's category shares (skin tone, photo kind, body site, risk category), its
 * quality-gate failure rate and samples of every continuous value (risk index,
 * each class's softmax probability, mean colour and brightness of the photo).
 *
 * Per clinic and week the monitor runs one family of tests and corrects them
 * together (Bonferroni):
 *   categorical shares    chi-square goodness of fit against the reference shares,
 *                         with the population stability index (PSI) as effect size;
 *   quality failure rate  exact binomial test against the reference rate;
 *   continuous values     two-sample Kolmogorov-Smirnov against the reference
 *                         sample, PSI on the reference's deciles; the softmax
 *                         probabilities are tested one class at a time (the
 *                         "black-box shift detection" of Rabanser et al. 2019);
 *   calibration           once outcomes arrive (4-week window): ECE of P(malignant),
 *                         the observed : expected ratio and its z test.
 * A week is "alert" when some corrected p < 0.001, "watch" when some corrected
 * p < 0.01 or a PSI reaches 0.25 on a week with at least 50 cases (PSI bands:
 * < 0.1 stable, 0.1-0.25 moderate, >= 0.25 significant); weeks with fewer than
 * BASIRA_DRIFT_MIN_CASES cases are "insufficient" and raise nothing.
 */
#ifndef BASIRA_DRIFT_H
#define BASIRA_DRIFT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_DRIFT_MAX_CLASSES 16
#define BASIRA_DRIFT_MIN_CASES 8
#define BASIRA_DRIFT_ALPHA_ALERT 0.001
#define BASIRA_DRIFT_ALPHA_WATCH 0.01

typedef enum basira_drift_level {
    BASIRA_DRIFT_NONE = 0,
    BASIRA_DRIFT_WATCH = 1,
    BASIRA_DRIFT_ALERT = 2,
} basira_drift_level;

const char *basira_drift_level_name(basira_drift_level l);

/* One analysed photo of a case, as the monitor sees it. Strings are codes ("" = unknown). */
typedef struct basira_drift_case {
    char clinic[65];
    int64_t ts;          /* when the case was seen, seconds since the epoch (UTC) */
    int quality_ok;      /* 1: passed the quality gate */
    int scored;          /* 1: probs, p_mal, risk_index and category hold */
    char skin_tone[24];  /* the result's skin_tone.category */
    char photo_kind[24]; /* dermoscopy, clinical ... */
    char body_site[32];
    char category[16]; /* low, medium, high */
    int num_classes;
    float probs[BASIRA_DRIFT_MAX_CLASSES];
    double p_mal;
    double risk_index;
    int has_image_stats;
    double mean_rgb[3]; /* mean of each channel, 0..255 */
    double brightness;  /* mean luma (Rec. 601), 0..255 */
    int outcome;        /* -1 unknown, 0 benign, 1 malignant (dermatologist or histology) */
} basira_drift_case;

/* ---- statistics (each checked against hand-computed values in tests/drift) ---- */

/*
 * Population stability index sum_i (a_i - e_i) ln(a_i / e_i) of the shares
 * actual against expected (k entries each, summing to 1); shares below 1e-4 are
 * taken as 1e-4 so that an empty bin counts without being infinite.
 */
double basira_drift_psi(const double *expected, const double *actual, int k);
/* "stable" (< 0.1), "moderate" (< 0.25), "significant". */
const char *basira_drift_psi_band(double psi);

/* Upper tail Q(chi2 >= x) of the chi-square distribution with dof degrees of freedom. */
double basira_drift_chi2_sf(double x, int dof);

/*
 * Chi-square goodness of fit of counts (k entries) against expected shares.
 * Categories whose expected count is below 5 (Cochran's rule) are pooled into
 * one so that a rare category seen once does not decide the test. *stat, *dof, *p.
 */
basira_code basira_drift_chi2_gof(const long *counts, const double *expected, int k, double *stat,
                                  int *dof, double *p, basira_error *err);

/* Kolmogorov distribution's upper tail Q_KS(lambda) = 2 sum (-1)^(j-1) exp(-2 j^2 lambda^2). */
double basira_drift_ks_q(double lambda);

/*
 * Two-sample Kolmogorov-Smirnov: D = sup |F_a - F_b| and its asymptotic p
 * (Q_KS((sqrt(m) + 0.12 + 0.11 / sqrt(m)) D), m = na nb / (na + nb)). The
 * arrays are not modified. BASIRA_E_INVALID_ARGUMENT for an empty sample.
 */
basira_code basira_drift_ks2(const double *a, size_t na, const double *b, size_t nb, double *d,
                             double *p, basira_error *err);

/* Exact two-sided binomial p of k successes in n at rate p: twice the tail on k's side, at most 1.
 */
double basira_drift_binomial_p2(long k, long n, double p);

/* Two-sided p of a standard normal z. */
double basira_drift_normal_p2(double z);

/* ---- reference and monitor ----------------------------------------------------- */

/*
 * The reference document of the validation cases (their clinic and ts are not
 * used). codes / malignant: the model's classes and which count as malignant
 * (num_classes). model: the
 * model's identity object {name, version, sha256} (borrowed). New reference.
 */
basira_code basira_drift_reference_build(const basira_drift_case *cases, size_t n,
                                         const char *const *codes, const int *malignant,
                                         int num_classes, const json_t *model, json_t **out,
                                         basira_error *err);

/* The outcome a diagnosis code means under ref: 1 a malignant class, 0 another class, -1 unknown.
 */
int basira_drift_reference_outcome(const json_t *ref, const char *diagnosis);

/* Check a reference document's shape (what the monitor will read). BASIRA_E_FORMAT. */
basira_code basira_drift_reference_check(const json_t *ref, basira_error *err);

/*
 * Per clinic and week (weeks start on Monday 00:00 UTC), the statistics of its
 * cases against the reference: a JSON array, one object per clinic (sorted by
 * name) {"clinic", "alert" (highest level of its last 4 weeks with data),
 * "first_alert_week", "weeks": [{"week_start", "n", "alert", "reasons",
 * "input", "output", "calibration"}]}. New reference in *out.
 */
basira_code basira_drift_monitor(const json_t *ref, const basira_drift_case *cases, size_t n,
                                 json_t **out, basira_error *err);

/*
 * Read a triage result document (status, quality, skin_tone, probabilities,
 * risk, image_stats) into c, the classes in the order of classes (a JSON array
 * of codes, the reference's). Leaves clinic, ts, photo_kind, body_site and
 * outcome to the caller. Returns 0 for a result without an analysis (status
 * "error"), 1 otherwise.
 */
int basira_drift_case_from_result(const json_t *result, const json_t *classes,
                                  basira_drift_case *c);

/* Mean colour and brightness of packed RGB (w*h pixels) into c->mean_rgb, c->brightness. */
void basira_drift_image_stats(const unsigned char *rgb, int w, int h, basira_drift_case *c);

#ifdef __cplusplus
}
#endif
#endif
