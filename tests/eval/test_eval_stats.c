/*
 * test_eval_stats.c - the elementary statistics against known values.
 *
 * Reference values: Wilson intervals from Newcombe, Stat. Med. 17:857 (1998),
 * Table I (method 3); DeLong AUC and variance from the original O(m n) definition
 * (DeLong et al. 1988) computed with numpy (script in the comment of test_delong),
 * which is an independent check of the fast midrank algorithm.
 */
#include <stdint.h>

#include "basira/eval.h"
#include "eval/eval_internal.h"
#include "test.h"

static void test_wilson_newcombe(void)
{
    /* Newcombe (1998) Table I: 81/263, 15/148, 0/20, 1/29. */
    static const struct {
        long k, n;
        double lo, hi;
    } ref[] = {{81, 263, 0.2553, 0.3662},
               {15, 148, 0.0624, 0.1605},
               {0, 20, 0.0, 0.1611},
               {1, 29, 0.0061, 0.1718}};
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        basira_proportion p;
        CHECK_EQ_INT(basira_wilson(ref[i].k, ref[i].n, &p, NULL), BASIRA_OK);
        CHECK_NEAR(p.value, (double)ref[i].k / ref[i].n, 1e-12);
        CHECK_NEAR(p.lo, ref[i].lo, 6e-5);
        CHECK_NEAR(p.hi, ref[i].hi, 6e-5);
    }
}

static void test_wilson_edges(void)
{
    basira_proportion p;
    /* 0/n: lower bound exactly 0; n/n: upper bound exactly 1, symmetric to 0/n. */
    CHECK_EQ_INT(basira_wilson(0, 10, &p, NULL), BASIRA_OK);
    CHECK(p.lo == 0.0);
    double hi0 = p.hi;
    CHECK_NEAR(hi0, 0.27753279, 1e-6); /* z^2 / (n + z^2) */
    CHECK_EQ_INT(basira_wilson(10, 10, &p, NULL), BASIRA_OK);
    CHECK(p.hi == 1.0);
    CHECK_NEAR(p.lo, 1.0 - hi0, 1e-12);
    /* n = 1 */
    CHECK_EQ_INT(basira_wilson(1, 1, &p, NULL), BASIRA_OK);
    CHECK_NEAR(p.lo, 0.20654931, 1e-6);
    /* symmetric: 5/10 centred on 0.5 */
    CHECK_EQ_INT(basira_wilson(5, 10, &p, NULL), BASIRA_OK);
    CHECK_NEAR(p.lo + p.hi, 1.0, 1e-12);
    CHECK_NEAR(p.lo, 0.23659309, 1e-6);
    /* n = 0: undefined, not 0 and not an error */
    CHECK_EQ_INT(basira_wilson(0, 0, &p, NULL), BASIRA_OK);
    CHECK(isnan(p.value) && isnan(p.lo) && isnan(p.hi));
    /* hostile */
    basira_error err;
    CHECK_EQ_INT(basira_wilson(3, 2, &p, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "3") != NULL);
    CHECK_EQ_INT(basira_wilson(-1, 2, &p, NULL), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_wilson(1, -2, &p, NULL), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_wilson(1, 2, NULL, NULL), BASIRA_E_INVALID_ARGUMENT);
}

static void test_auc_ties(void)
{
    /* By hand: 0.9 beats 4 negatives, 0.8 beats 3 and ties 1, 0.4 beats 3: 10.5 / 12. */
    const double s[] = {0.9, 0.8, 0.4, 0.8, 0.3, 0.2, 0.1};
    const int y[] = {1, 1, 1, 0, 0, 0, 0};
    basira_auc a;
    CHECK_EQ_INT(basira_auc_delong(s, y, 7, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 10.5 / 12.0, 1e-12);
    CHECK_EQ_INT(a.n_pos, 3);
    CHECK_EQ_INT(a.n_neg, 4);
    /* All tied: 0.5, with zero variance. */
    const double t[] = {0.5, 0.5, 0.5, 0.5};
    const int yt[] = {1, 0, 1, 0};
    CHECK_EQ_INT(basira_auc_delong(t, yt, 4, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 0.5, 1e-12);
    CHECK_NEAR(a.variance, 0.0, 1e-15);
    /* Perfect separation and its mirror. */
    const double p[] = {0.9, 0.8, 0.2, 0.1};
    const int yp[] = {1, 1, 0, 0}, yn[] = {0, 0, 1, 1};
    CHECK_EQ_INT(basira_auc_delong(p, yp, 4, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 1.0, 1e-12);
    CHECK(a.hi <= 1.0);
    CHECK_EQ_INT(basira_auc_delong(p, yn, 4, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 0.0, 1e-12);
    CHECK(a.lo >= 0.0);
}

static void test_auc_undefined(void)
{
    const double s[] = {0.1, 0.2, 0.3};
    const int all_pos[] = {1, 1, 1}, one_pos[] = {0, 1, 0};
    basira_auc a;
    /* One class only: undefined, not an error. */
    CHECK_EQ_INT(basira_auc_delong(s, all_pos, 3, &a, NULL), BASIRA_OK);
    CHECK(isnan(a.value) && isnan(a.lo) && isnan(a.hi));
    CHECK_EQ_INT(basira_auc_delong(s, all_pos, 0, &a, NULL), BASIRA_OK);
    CHECK(isnan(a.value));
    /* A single positive: AUC defined, variance needs two of each. */
    CHECK_EQ_INT(basira_auc_delong(s, one_pos, 3, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 0.5, 1e-12);
    CHECK(isnan(a.variance) && isnan(a.lo));
    /* NaN score: an error naming it. */
    const double bad[] = {0.1, NAN, 0.3};
    basira_error err;
    CHECK_EQ_INT(basira_auc_delong(bad, one_pos, 3, &a, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "1") != NULL);
}

/*
 * Reference (numpy 1.24, /tmp script kept here for the record):
 *   rng = np.random.default_rng(7); m, n = 23, 31
 *   pos = np.round(rng.normal(0.65, 0.2, m), 2); neg = np.round(rng.normal(0.45, 0.2, n), 2)
 *   P[i][j] = 1 if pos[i] > neg[j], 0.5 if equal, else 0
 *   auc = P.mean(); var = P.mean(1).var(ddof=1)/m + P.mean(0).var(ddof=1)/n
 */
static void test_delong_reference(void)
{
    static const double pos[] = {0.65, 0.71, 0.60, 0.47, 0.56, 0.45, 0.66, 0.92,
                                 0.55, 0.53, 0.75, 0.72, 0.67, 0.46, 0.64, 0.79,
                                 0.38, 0.56, 0.27, 0.39, 0.28, 0.60, 0.40};
    static const double neg[] = {0.50, 0.48, 0.41, -0.05, 0.34, 0.44, 0.47, 0.14, 0.35, 0.25, 0.29,
                                 0.66, 0.29, 0.44, 0.63,  0.33, 0.43, 0.47, 0.46, 0.20, 0.47, 0.72,
                                 0.14, 0.62, 0.47, 0.32,  0.85, 0.60, 0.21, 0.46, 0.57};
    enum { M = sizeof pos / sizeof pos[0], N = sizeof neg / sizeof neg[0] };
    double s[M + N];
    int y[M + N];
    /* Interleave so the algorithm cannot rely on positives coming first. */
    size_t a = 0, b = 0, t = 0;
    while (a < M || b < N) {
        if (a < M && (t % 2 == 0 || b >= N)) {
            s[t] = pos[a++];
            y[t++] = 1;
        } else {
            s[t] = neg[b++];
            y[t++] = 0;
        }
    }
    basira_auc r;
    CHECK_EQ_INT(basira_auc_delong(s, y, M + N, &r, NULL), BASIRA_OK);
    CHECK_NEAR(r.value, 0.716690042076, 1e-10);
    CHECK_NEAR(r.variance, 0.00507552465618, 1e-12);
    CHECK_NEAR(r.lo, 0.577056883549, 1e-9);
    CHECK_NEAR(r.hi, 0.856323200602, 1e-9);
}

/* Deterministic uniform numbers for synthetic sets (splitmix64). */
static double unif(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static double normal(uint64_t *x)
{
    double u = unif(x), v = unif(x);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void test_ece_perfect_and_known(void)
{
    enum { N = 200000 };
    double *conf = malloc(sizeof(double) * N);
    int *hit = malloc(sizeof(int) * N);
    uint64_t seed = 42;
    for (int i = 0; i < N; i++) {
        conf[i] = unif(&seed);
        hit[i] = unif(&seed) < conf[i];
    }
    basira_calibration c;
    CHECK_EQ_INT(basira_calibration_compute(conf, hit, N, &c, NULL), BASIRA_OK);
    CHECK_MSG(c.ece < 0.005, "ECE of a calibrated set: %g", c.ece);
    CHECK_EQ_INT(c.n, N);
    long total = 0;
    for (int b = 0; b < BASIRA_EVAL_ECE_BINS; b++)
        total += c.bins[b].n;
    CHECK_EQ_INT(total, N);
    /* Overconfident: every confidence 0.9, 60% right -> ECE = MCE = 0.3 exactly. */
    for (int i = 0; i < 10; i++) {
        conf[i] = 0.9;
        hit[i] = i < 6;
    }
    CHECK_EQ_INT(basira_calibration_compute(conf, hit, 10, &c, NULL), BASIRA_OK);
    CHECK_NEAR(c.ece, 0.3, 1e-12);
    CHECK_NEAR(c.mce, 0.3, 1e-12);
    CHECK_EQ_INT(c.bins[13].n, 10); /* 0.9 is in (13/15, 14/15] */
    CHECK(isnan(c.bins[0].mean_conf));
    /* Edges: 0 goes to the first bin, 1 to the last, 1/15 to the first. */
    conf[0] = 0.0;
    conf[1] = 1.0;
    conf[2] = 1.0 / 15.0;
    CHECK_EQ_INT(basira_calibration_compute(conf, hit, 3, &c, NULL), BASIRA_OK);
    CHECK_EQ_INT(c.bins[0].n, 2);
    CHECK_EQ_INT(c.bins[14].n, 1);
    /* Two bins: (0.2: 1 of 2 right) and (0.8: 2 of 2 right): (2*0.3 + 2*0.2) / 4 = 0.25 */
    const double cf[] = {0.2, 0.2, 0.8, 0.8};
    const int h[] = {1, 0, 1, 1};
    CHECK_EQ_INT(basira_calibration_compute(cf, h, 4, &c, NULL), BASIRA_OK);
    CHECK_NEAR(c.ece, 0.25, 1e-12);
    /* Empty: undefined. Out of range: error. */
    CHECK_EQ_INT(basira_calibration_compute(cf, h, 0, &c, NULL), BASIRA_OK);
    CHECK(isnan(c.ece));
    conf[0] = 1.5;
    CHECK_EQ_INT(basira_calibration_compute(conf, hit, 3, &c, NULL), BASIRA_E_INVALID_ARGUMENT);
    conf[0] = NAN;
    CHECK_EQ_INT(basira_calibration_compute(conf, hit, 3, &c, NULL), BASIRA_E_INVALID_ARGUMENT);
    free(conf);
    free(hit);
}

static void test_temperature_recovers(void)
{
    /* Labels drawn from softmax(z / 2): the NLL-optimal temperature on z is 2. */
    enum { N = 20000, K = 4 };
    double *z = malloc(sizeof(double) * N * K), p[K];
    int *y = malloc(sizeof(int) * N);
    uint64_t seed = 7;
    const double t_true = 2.0;
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < K; c++)
            z[i * K + c] = 3.0 * normal(&seed);
        basira_eval_softmax(z + i * K, 1, K, t_true, p);
        double u = unif(&seed), acc = 0.0;
        y[i] = K - 1;
        for (int c = 0; c < K; c++) {
            acc += p[c];
            if (u < acc) {
                y[i] = c;
                break;
            }
        }
    }
    double t, before, after;
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, K, &t, &before, &after, NULL), BASIRA_OK);
    CHECK_MSG(fabs(t - t_true) < 0.08, "fitted T = %g", t);
    CHECK(after < before);
    /* Overconfident set the other way: labels from softmax(z / 0.5) give T near 0.5. */
    for (int i = 0; i < N; i++) {
        basira_eval_softmax(z + i * K, 1, K, 0.5, p);
        double u = unif(&seed), acc = 0.0;
        y[i] = K - 1;
        for (int c = 0; c < K; c++) {
            acc += p[c];
            if (u < acc) {
                y[i] = c;
                break;
            }
        }
    }
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, K, &t, NULL, NULL, NULL), BASIRA_OK);
    CHECK_MSG(fabs(t - 0.5) < 0.03, "fitted T = %g", t);
    /* Softmax-invariance: log-probabilities at T0 = 1.5 refit to 2 / 1.5. */
    for (int i = 0; i < N; i++) {
        basira_eval_softmax(z + i * K, 1, K, 1.5, z + i * K);
        for (int c = 0; c < K; c++)
            z[i * K + c] = log(z[i * K + c]);
    }
    double t2;
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, K, &t2, NULL, NULL, NULL), BASIRA_OK);
    CHECK_NEAR(t2 * 1.5, t, 1e-4);
    /* Hostile input. */
    basira_error err;
    CHECK_EQ_INT(basira_fit_temperature(z, y, 0, K, &t, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    y[3] = K;
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, K, &t, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "3") != NULL);
    y[3] = 0;
    z[5] = INFINITY;
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, K, &t, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_fit_temperature(z, y, N, 1, &t, NULL, NULL, NULL),
                 BASIRA_E_INVALID_ARGUMENT);
    free(z);
    free(y);
}

static void test_operating_point(void)
{
    enum { N = 3000 };
    double *p = malloc(sizeof(double) * N);
    int *y = malloc(sizeof(int) * N);
    uint64_t seed = 99;
    for (int i = 0; i < N; i++) {
        y[i] = unif(&seed) < 0.2;
        /* Malignant lesions score higher on average, with overlap; rounded to create ties. */
        double x = y[i] ? 0.3 + 0.7 * unif(&seed) * unif(&seed) + 0.2 * unif(&seed)
                        : 0.5 * unif(&seed) * unif(&seed);
        p[i] = round(fmin(1.0, x) * 1000.0) / 1000.0;
    }
    basira_operating_point_options o;
    basira_operating_point_options_default(&o);
    basira_operating_point op;
    CHECK_EQ_INT(basira_choose_operating_point(p, y, N, &o, &op, NULL), BASIRA_OK);
    /* Sensitivity on the fitting data meets the target, recomputed here independently. */
    long nm = 0, caught = 0, nb = 0, fp_high = 0, low_b = 0;
    double next_above = 2.0; /* smallest malignant score above the medium threshold */
    for (int i = 0; i < N; i++) {
        if (y[i]) {
            nm++;
            caught += p[i] >= op.medium_threshold;
            if (p[i] > op.medium_threshold && p[i] < next_above)
                next_above = p[i];
        } else {
            nb++;
            fp_high += p[i] >= op.high_threshold;
            low_b += p[i] < op.medium_threshold;
        }
    }
    CHECK((double)caught / nm >= 0.95);
    CHECK_EQ_INT(caught, op.sensitivity.k);
    CHECK_EQ_INT(nm, op.sensitivity.n);
    CHECK_EQ_INT(low_b, op.specificity.k);
    /* Largest such threshold: raising it to the next malignant score loses the target. */
    long caught_next = 0;
    for (int i = 0; i < N; i++)
        caught_next += y[i] && p[i] >= next_above;
    CHECK((double)caught_next / nm < 0.95);
    CHECK((double)fp_high / nb <= 0.10);
    CHECK(op.high_threshold >= op.medium_threshold);
    CHECK_NEAR(op.high_specificity.value, 1.0 - (double)fp_high / nb, 1e-12);

    /* Conservative: the Wilson lower bound of the sensitivity reaches the target. */
    o.conservative = 1;
    basira_operating_point cons;
    CHECK_EQ_INT(basira_choose_operating_point(p, y, N, &o, &cons, NULL), BASIRA_OK);
    CHECK(cons.medium_threshold <= op.medium_threshold);
    CHECK(cons.sensitivity.lo >= 0.95 || cons.sensitivity.k == cons.sensitivity.n);

    /* Exact small case: 20 malignant scores 0.05..1.00; 95% = 19 of 20 -> threshold 0.10. */
    double q[40];
    int yq[40];
    for (int i = 0; i < 20; i++) {
        q[i] = (i + 1) * 0.05;
        yq[i] = 1;
        q[20 + i] = i * 0.01; /* benign 0.00..0.19 */
        yq[20 + i] = 0;
    }
    o.conservative = 0;
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 40, &o, &op, NULL), BASIRA_OK);
    CHECK_NEAR(op.medium_threshold, 0.10, 1e-6);
    CHECK(op.medium_threshold <= 0.10);
    CHECK_EQ_INT(op.sensitivity.k, 19);
    /* 10% of 20 benign = 2 may be high: above the 3rd largest benign 0.17. */
    CHECK(op.high_threshold > 0.17 && op.high_threshold <= 0.170001 + 1e-12);

    /* Errors: no malignant, no benign, bad target. */
    basira_error err;
    for (int i = 0; i < 40; i++)
        yq[i] = 0;
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 40, &o, &op, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "malignant") != NULL);
    for (int i = 0; i < 40; i++)
        yq[i] = 1;
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 40, &o, &op, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 0, &o, &op, &err), BASIRA_E_INVALID_ARGUMENT);
    o.target_sensitivity = 1.5;
    yq[0] = 0;
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 40, &o, &op, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    o.target_sensitivity = 0.95;
    q[3] = NAN;
    CHECK_EQ_INT(basira_choose_operating_point(q, yq, 40, &o, &op, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    free(p);
    free(y);
}

/* The bootstrap's O(n) AUC on multiplicities equals the plain AUC on the expanded data. */
static void test_weighted_auc_and_ties(void)
{
    enum { N = 200 };
    double s[2 * N];
    int y[2 * N];
    unsigned w[N];
    uint64_t seed = 5;
    for (int i = 0; i < N; i++) {
        y[i] = unif(&seed) < 0.3;
        s[i] = round((unif(&seed) + 0.3 * y[i]) * 20.0) / 20.0; /* many ties */
        w[i] = 1;
    }
    size_t order[N];
    unsigned char gstart[N];
    scored *work = malloc(basira_eval_scored_size() * 2 * N);
    basira_eval_sort_ties(s, N, order, gstart, work);
    basira_auc a;
    CHECK_EQ_INT(basira_auc_delong(s, y, N, &a, NULL), BASIRA_OK);
    CHECK_NEAR(basira_eval_auc_weighted(order, gstart, N, y, w), a.value, 1e-12);
    /* Multiplicity 2 for the first 50 samples = those samples written twice. */
    for (int i = 0; i < 50; i++) {
        w[i] = 2;
        s[N + i] = s[i];
        y[N + i] = y[i];
    }
    CHECK_EQ_INT(basira_auc_delong(s, y, N + 50, &a, NULL), BASIRA_OK);
    CHECK_NEAR(basira_eval_auc_weighted(order, gstart, N, y, w), a.value, 1e-12);
    /* Weight 0 everywhere on one side: undefined. */
    for (int i = 0; i < N; i++)
        w[i] = y[i] ? 0 : 1;
    CHECK(isnan(basira_eval_auc_weighted(order, gstart, N, y, w)));
    /* Float noise is not a ranking: a constant model scores exactly 0.5. */
    for (int i = 0; i < N; i++)
        s[i] = 0.437274292 + 1e-10 * (double)((i * 7919) % 13) * (y[i] ? 1 : -1);
    CHECK_EQ_INT(basira_auc_delong(s, y, N, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 0.5, 1e-12);
    /* ... while genuinely different small probabilities stay apart. */
    const double small[] = {2e-9, 1e-9, 3e-12, 1e-12};
    const int ys[] = {1, 0, 1, 0};
    CHECK_EQ_INT(basira_auc_delong(small, ys, 4, &a, NULL), BASIRA_OK);
    CHECK_NEAR(a.value, 0.75, 1e-12);
    CHECK(basira_eval_rank_key(0.1234567891) == basira_eval_rank_key(0.1234567893));
    CHECK(basira_eval_rank_key(0.5) == 0.5);
    CHECK(basira_eval_rank_key(0.0) == 0.0);
    free(work);
}

/* The malignant bias: a closed form, the shift it stands for, refusals, a joint fit. */
static void test_malignant_bias(void)
{
    /* Every P(malignant) 0.2, half the lesions malignant: sigmoid(logit 0.2 + b) = 0.5. */
    enum { M = 10 };
    double pm[M];
    int y[M];
    for (int i = 0; i < M; i++) {
        pm[i] = 0.2;
        y[i] = i % 2;
    }
    double b, before, after;
    CHECK_EQ_INT(basira_fit_malignant_bias(pm, y, M, &b, &before, &after, NULL), BASIRA_OK);
    CHECK_NEAR(b, log(4.0), 1e-6);
    CHECK_NEAR(after, log(2.0), 1e-9); /* NLL of p = 0.5 */
    CHECK(after < before);
    /* One side only: no minimum, refused; a probability outside [0, 1]: refused. */
    basira_error err;
    int none[M] = {0};
    CHECK_EQ_INT(basira_fit_malignant_bias(pm, none, M, &b, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "both") != NULL);
    pm[3] = 1.5;
    CHECK_EQ_INT(basira_fit_malignant_bias(pm, y, M, &b, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    /* The shift of a row: odds 0.25 / 0.75 times 3 give P(malignant) 0.5. */
    double row[3] = {0.25, 0.45, 0.30};
    const int cm[3] = {1, 0, 0};
    basira_eval_shift_malignant(row, 3, cm, log(3.0));
    CHECK_NEAR(row[0], 0.5, 1e-12);
    CHECK_NEAR(row[1] / row[2], 1.5, 1e-12);
    /* Joint fit: outcomes drawn from the model's P(malignant) at T = 2 with odds x e^0.7. */
    enum { N = 6000, K = 4 };
    double *z = malloc(sizeof(double) * N * K), p[K];
    int *out = malloc(sizeof(int) * N);
    const int mal4[K] = {1, 0, 1, 0};
    uint64_t seed = 11;
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < K; c++)
            z[i * K + c] = 2.5 * normal(&seed);
        basira_eval_softmax(z + i * K, 1, K, 2.0, p);
        basira_eval_shift_malignant(p, K, mal4, 0.7);
        out[i] = unif(&seed) < p[0] + p[2];
    }
    double t;
    CHECK_EQ_INT(basira_fit_temperature_bias(z, mal4, K, out, N, &t, &b, &before, &after, NULL),
                 BASIRA_OK);
    CHECK_MSG(fabs(t - 2.0) < 0.25 && fabs(b - 0.7) < 0.15, "fitted T = %g, b = %g", t, b);
    CHECK(after < before);
    z[7] = NAN;
    CHECK_EQ_INT(basira_fit_temperature_bias(z, mal4, K, out, N, &t, &b, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    free(z);
    free(out);
}

/* Platt scaling: the slope and bias a model's P(malignant) needs are recovered; a slope of 1
 * is exactly the bias alone; the map keeps each side's ratios and the ends. */
static void test_malignant_platt(void)
{
    enum { N = 20000 };
    double *pm = malloc(sizeof(double) * N);
    int *y = malloc(sizeof(int) * N);
    uint64_t seed = 5;
    /* The network says sigmoid(z); the truth is sigmoid(1.8 z - 0.6): too timid, shifted. */
    for (int i = 0; i < N; i++) {
        double z = 2.0 * normal(&seed);
        pm[i] = 1.0 / (1.0 + exp(-z));
        y[i] = unif(&seed) < 1.0 / (1.0 + exp(-(1.8 * z - 0.6)));
    }
    double a, b, before, after;
    CHECK_EQ_INT(basira_fit_malignant_platt(pm, y, N, &a, &b, &before, &after, NULL), BASIRA_OK);
    CHECK_MSG(fabs(a - 1.8) < 0.1 && fabs(b + 0.6) < 0.08, "fitted a = %g, b = %g", a, b);
    CHECK(after < before);
    /* The fit is the minimum: a step in either parameter does not lower the NLL. */
    double b_only, nll_b;
    CHECK_EQ_INT(basira_fit_malignant_bias(pm, y, N, &b_only, NULL, &nll_b, NULL), BASIRA_OK);
    CHECK(after <= nll_b + 1e-12);
    /* Calibrated already: slope 1 and bias 0. */
    for (int i = 0; i < N; i++)
        y[i] = unif(&seed) < pm[i];
    CHECK_EQ_INT(basira_fit_malignant_platt(pm, y, N, &a, &b, NULL, NULL, NULL), BASIRA_OK);
    CHECK_MSG(fabs(a - 1.0) < 0.06 && fabs(b) < 0.06, "fitted a = %g, b = %g", a, b);
    /* Refused as the bias alone is: one outcome only, a probability outside [0, 1]. */
    basira_error err;
    for (int i = 0; i < N; i++)
        y[i] = 1;
    CHECK_EQ_INT(basira_fit_malignant_platt(pm, y, N, &a, &b, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    y[0] = 0;
    pm[1] = -0.1;
    CHECK_EQ_INT(basira_fit_malignant_platt(pm, y, N, &a, &b, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    free(pm);
    free(y);

    /* The map of one row: P(malignant) 0.2 at slope 2, bias 0.5. */
    const int cm[4] = {1, 0, 1, 0};
    double row[4] = {0.05, 0.5, 0.15, 0.3};
    basira_eval_map_malignant(row, 4, cm, 2.0, 0.5);
    double q = 1.0 / (1.0 + exp(-(2.0 * log(0.2 / 0.8) + 0.5)));
    CHECK_NEAR(row[0] + row[2], q, 1e-12);
    CHECK_NEAR(row[2] / row[0], 3.0, 1e-12);
    CHECK_NEAR(row[1] / row[3], 0.5 / 0.3, 1e-12);
    CHECK_NEAR(row[0] + row[1] + row[2] + row[3], 1.0, 1e-12);
    /* Slope 1: bit for bit the bias alone. */
    double r1[4] = {0.05, 0.5, 0.15, 0.3}, r2[4] = {0.05, 0.5, 0.15, 0.3};
    basira_eval_map_malignant(r1, 4, cm, 1.0, 0.7);
    basira_eval_shift_malignant(r2, 4, cm, 0.7);
    CHECK(!memcmp(r1, r2, sizeof r1));
    /* The ends stay: no malignant mass, or nothing else. */
    double r0[4] = {0.0, 0.6, 0.0, 0.4}, rall[4] = {0.7, 0.0, 0.3, 0.0};
    basira_eval_map_malignant(r0, 4, cm, 2.0, 3.0);
    basira_eval_map_malignant(rall, 4, cm, 2.0, -3.0);
    CHECK(r0[0] == 0.0 && r0[1] == 0.6 && rall[0] == 0.7 && rall[1] == 0.0);
}

/* The ECE a calibrated model shows by chance: several points on a few hundred cases, a
 * fraction of one on many; a miscalibrated model stands out of it, a calibrated one not. */
static void test_calibration_noise(void)
{
    enum { N = 20000 };
    double *p = malloc(sizeof(double) * N);
    int *y = malloc(sizeof(int) * N), *ym = malloc(sizeof(int) * N);
    uint64_t seed = 9;
    for (int i = 0; i < N; i++) {
        double z = 1.5 * normal(&seed);
        p[i] = 1.0 / (1.0 + exp(-z));
        y[i] = unif(&seed) < p[i];
        ym[i] = unif(&seed) < 1.0 / (1.0 + exp(-(2.0 * z + 0.5))); /* not what p says */
    }
    basira_calibration_noise a, b, big, mis;
    CHECK_EQ_INT(basira_calibration_noise_compute(p, y, 400, 500, 1, &a, NULL), BASIRA_OK);
    CHECK_MSG(a.null_mean > 0.02 && a.null_mean < 0.08 && a.null_p95 > a.null_mean,
              "n = 400: calibrated ECE %g, p95 %g", a.null_mean, a.null_p95);
    CHECK_MSG(a.p_value > 0.05, "calibrated data flagged: ECE %g, p %g", a.ece, a.p_value);
    CHECK_EQ_INT(basira_calibration_noise_compute(p, y, 400, 500, 1, &b, NULL), BASIRA_OK);
    CHECK(a.null_mean == b.null_mean && a.p_value == b.p_value); /* same seed, same figures */
    CHECK_EQ_INT(basira_calibration_noise_compute(p, y, N, 50, 1, &big, NULL), BASIRA_OK);
    CHECK_MSG(big.null_mean < 0.01, "n = %d: %g", N, big.null_mean);
    CHECK_EQ_INT(basira_calibration_noise_compute(p, ym, 400, 500, 1, &mis, NULL), BASIRA_OK);
    CHECK_MSG(mis.p_value < 0.01 && mis.ece > mis.null_p95, "miscalibrated: ECE %g, p %g", mis.ece,
              mis.p_value);
    basira_calibration_noise e;
    CHECK_EQ_INT(basira_calibration_noise_compute(p, y, 0, 10, 1, &e, NULL), BASIRA_OK);
    CHECK(isnan(e.null_mean) && isnan(e.p_value));
    CHECK_EQ_INT(basira_calibration_noise_compute(p, y, 10, 0, 1, &e, NULL),
                 BASIRA_E_INVALID_ARGUMENT);
    free(p);
    free(y);
    free(ym);
}

int main(void)
{
    RUN(test_wilson_newcombe);
    RUN(test_wilson_edges);
    RUN(test_auc_ties);
    RUN(test_auc_undefined);
    RUN(test_delong_reference);
    RUN(test_ece_perfect_and_known);
    RUN(test_temperature_recovers);
    RUN(test_operating_point);
    RUN(test_weighted_auc_and_ties);
    RUN(test_malignant_bias);
    RUN(test_malignant_platt);
    RUN(test_calibration_noise);
    return test_summary();
}
