/*
 * test_drift_year.c - a simulated year of three clinics (issue 14): cases made
 * from held-out HAM10000 photos (the model's test split) run through the whole
 * pipeline, with injected drift:
 *   "camera"  from week CAST_WEEK its camera gives every photo a warm colour cast;
 *   "darker"  from week DARK_WEEK its population shifts to darker skin (a
 *             skin-darkening transform of the photo);
 *   "stable"  stays as it is.
 * The reference is built from validation-split photos, as
 * `basira hub monitor-reference` would. Model outputs are computed once per
 * photo and variant (cached in memory); weeks are simulated time (timestamps,
 * no sleeping). The monitor must flag each drifted clinic within 4 weeks of its
 * drift and never raise an alert for the stable one.
 *
 * Then recalibration under the change-control plan: from week 30 the darker clinic's
 * new catchment area brings DRIFT_YEAR_DARK_PER_WEEK cases a week (48), each a distinct
 * held-out photo, half of them adjudicated. Its adjudicated cases of weeks 30-41 fit the
 * temperature and malignant bias (basira_fit_temperature_bias, the code of `basira
 * recalibrate`) and the thresholds; the ECE of P(malignant) (15 bins, bootstrap 95%
 * interval) is measured on its cases of weeks 42-51, none used for the fit. Asserted:
 * at least 200 adjudicated cases (30 malignant) to fit, ECE after < 0.05 and below
 * before, sensitivity kept >= 0.90, and the stable clinic's monitor output unchanged when
 * the candidate runs at the darker clinic only.
 *
 * Sizes (environment, for the bench): DRIFT_YEAR_NREF reference photos (120),
 * DRIFT_YEAR_NPOOL test photos per variant (60), DRIFT_YEAR_PER_WEEK cases per
 * clinic and week (10), DRIFT_YEAR_DARK_PER_WEEK (48), DRIFT_YEAR_OUT a file for the
 * monitor's JSON, DRIFT_YEAR_RECAL_OUT one for the darker clinic's fitting and later cases.
 */
#include <time.h>

#include "basira/drift.h"
#include "basira/eval.h"
#include "basira/image.h"
#include "basira/triage.h"
#include "test.h"

#define WEEKS 52
#define CAST_WEEK 20
#define DARK_WEEK 30
#define FIT_WEEK 42   /* the darker clinic's recalibration is fitted on weeks 30-41 */
#define T0 1767571200 /* Monday 2026-01-05 00:00 UTC */
#define MAX_IMAGES 4096

typedef struct photo {
    char id[32];
    char dx[16];
    char site[32];
} photo;

static photo meta[12000];
static int n_meta;

static int is_malignant(const char *dx)
{
    return !strcmp(dx, "mel") || !strcmp(dx, "bcc") || !strcmp(dx, "akiec");
}

static int load_meta(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f)
        return -1;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    while (n_meta < 12000 && fgets(line, sizeof line, f)) {
        char *cols[8] = {0};
        int k = 0;
        for (char *p = line, *tok; k < 8 && (tok = strsep(&p, ",\r\n"));)
            cols[k++] = tok;
        if (k < 7)
            continue;
        photo *m = &meta[n_meta++];
        snprintf(m->id, sizeof m->id, "%s", cols[1]);
        snprintf(m->dx, sizeof m->dx, "%s", cols[2]);
        snprintf(m->site, sizeof m->site, "%s", cols[6]);
    }
    fclose(f);
    return 0;
}

static const photo *find_meta(const char *id)
{
    for (int i = 0; i < n_meta; i++)
        if (!strcmp(meta[i].id, id))
            return &meta[i];
    return NULL;
}

/* The image ids of a split CSV (lesion_id,image_id), at most max. */
static int load_split(const char *path, char ids[][32], int max)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int n = 0;
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ',');
        if (!c)
            continue;
        c[strcspn(c, "\r\n")] = '\0';
        snprintf(ids[n++], 32, "%s", c + 1);
    }
    fclose(f);
    return n;
}

enum { ORIGINAL = 0, CAST = 1, DARK = 2 };

/* The model's classes, in its order (the keys of a result's probabilities). */
static const char *const ham_codes[] = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};

static unsigned char clamp(double v)
{
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
}

static void transform(unsigned char *rgb, size_t n, int variant)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = rgb + 3 * i;
        if (variant == CAST) { /* warm cast: more red, less blue */
            p[0] = clamp(p[0] * 1.0 + 30.0);
            p[2] = clamp(p[2] * 0.78);
        } else if (variant == DARK) { /* darker, browner skin */
            p[0] = clamp(p[0] * 0.62);
            p[1] = clamp(p[1] * 0.50);
            p[2] = clamp(p[2] * 0.42);
        }
    }
}

/* One photo through the pipeline as a drift case (without clinic and time). */
static int analyse(basira_pipeline *pipe, const json_t *classes, const char *dir, const photo *m,
                   int variant, basira_drift_case *c, int *dx)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ham10000/images/%s.jpg", dir, m->id);
    basira_intake_options io;
    basira_intake_options_default(&io);
    basira_image *img = NULL, *moved = NULL;
    basira_error e;
    if (basira_image_load_file(path, &io, &img, &e))
        return -1;
    int w = basira_image_width(img), h = basira_image_height(img);
    size_t n = (size_t)w * (size_t)h;
    unsigned char *rgb = malloc(3 * n);
    memcpy(rgb, basira_image_pixels(img), 3 * n);
    basira_image_free(img);
    transform(rgb, n, variant);
    uint8_t *jpg = NULL;
    size_t jlen = 0;
    int rc = -1;
    if (!basira_image_from_rgb(rgb, w, h, &moved, &e) &&
        !basira_image_encode_jpeg(moved, 92, &jpg, &jlen, &e)) {
        basira_triage_request req = {NULL, 0, BASIRA_PHOTO_DERMOSCOPIC, 1};
        json_t *res = NULL;
        if (!basira_pipeline_run_buffer(pipe, jpg, jlen, &req, &res, &e)) {
            memset(c, 0, sizeof *c);
            if (basira_drift_case_from_result(res, classes, c)) {
                snprintf(c->photo_kind, sizeof c->photo_kind, "dermoscopy");
                snprintf(c->body_site, sizeof c->body_site, "%s", m->site);
                c->outcome = is_malignant(m->dx);
                *dx = -1;
                for (int q = 0; q < 7; q++)
                    if (!strcmp(m->dx, ham_codes[q]))
                        *dx = q;
                rc = *dx >= 0 ? 0 : -1;
            }
            json_decref(res);
        }
    }
    free(jpg);
    basira_image_free(moved);
    free(rgb);
    return rc;
}

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    int x = v ? atoi(v) : def;
    return x < lo ? lo : x > hi ? hi : x;
}

static unsigned long long rng = 0x2545F4914F6CDD1Dull;
static unsigned next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

/* The recalibration of one clinic: temperature (multi-class NLL), then malignant bias. */
typedef struct recal {
    double t, bias;
} recal;

/* P(malignant) of case c after the recalibration r (r NULL: as the model gave it). */
static double p_mal_after(const basira_drift_case *c, const int *mal, int k, const recal *r)
{
    double lp[BASIRA_DRIFT_MAX_CLASSES], p[BASIRA_DRIFT_MAX_CLASSES], pm = 0.0;
    for (int j = 0; j < k; j++)
        lp[j] = log(fmax((double)c->probs[j], 1e-30));
    basira_eval_softmax(lp, 1, k, r ? r->t : 1.0, p);
    basira_eval_shift_malignant(p, k, mal, r ? r->bias : 0.0);
    for (int j = 0; j < k; j++)
        pm += mal[j] ? p[j] : 0.0;
    return fmin(1.0, fmax(0.0, pm));
}

/*
 * ECE of P(malignant) (binary, not top-label): 15 equal-width bins of P(malignant),
 * sum over bins of n_b / n x |share malignant - mean P(malignant)| (basira_calibration,
 * the figure of `basira evaluate` and of the monitor), with a percentile bootstrap 95%
 * interval (2000 resamples of the cases, fixed seed).
 */
typedef struct ece_ci {
    double ece, lo, hi;
    size_t n;
} ece_ci;

static double ece_of(const double *pm, const int *y, const size_t *pick, size_t n, double *buf,
                     int *ybuf)
{
    for (size_t i = 0; i < n; i++) {
        buf[i] = pm[pick ? pick[i] : i];
        ybuf[i] = y[pick ? pick[i] : i];
    }
    basira_calibration cal;
    return basira_calibration_compute(buf, ybuf, n, &cal, NULL) ? NAN : cal.ece;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ece_ci ece_bootstrap(const double *pm, const int *y, size_t n)
{
    enum { B = 2000 };
    ece_ci r = {.ece = NAN, .lo = NAN, .hi = NAN, .n = n};
    double *buf = malloc((n ? n : 1) * sizeof *buf), *reps = malloc(B * sizeof *reps);
    int *ybuf = malloc((n ? n : 1) * sizeof *ybuf);
    size_t *pick = malloc((n ? n : 1) * sizeof *pick);
    if (n && buf && reps && ybuf && pick) {
        unsigned long long s = 0x9E3779B97F4A7C15ull;
        r.ece = ece_of(pm, y, NULL, n, buf, ybuf);
        for (int b = 0; b < B; b++) {
            for (size_t i = 0; i < n; i++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                pick[i] = (size_t)((s >> 11) % n);
            }
            reps[b] = ece_of(pm, y, pick, n, buf, ybuf);
        }
        qsort(reps, B, sizeof *reps, cmp_double);
        r.lo = reps[B / 40];
        r.hi = reps[B - 1 - B / 40];
    }
    free(buf);
    free(reps);
    free(ybuf);
    free(pick);
    return r;
}

/* ECE (with interval) of cases cs[idx[0..n)] after r, their outcomes from truth. */
static ece_ci clinic_ece(const basira_drift_case *cs, const size_t *idx, size_t n, const int *truth,
                         const int *mal, int k, const recal *r)
{
    double *pm = malloc((n ? n : 1) * sizeof *pm);
    int *y = malloc((n ? n : 1) * sizeof *y);
    ece_ci e = {.ece = NAN, .lo = NAN, .hi = NAN, .n = n};
    if (pm && y) {
        for (size_t i = 0; i < n; i++) {
            pm[i] = p_mal_after(&cs[idx[i]], mal, k, r);
            y[i] = truth[idx[i]];
        }
        e = ece_bootstrap(pm, y, n);
    }
    free(pm);
    free(y);
    return e;
}

/* Sensitivity (Wilson) at medium or above of cases idx[0..n) after r, at threshold medium. */
static basira_proportion clinic_sensitivity(const basira_drift_case *cs, const size_t *idx,
                                            size_t n, const int *truth, const int *mal, int k,
                                            const recal *r, double medium)
{
    long hit = 0, pos = 0;
    for (size_t i = 0; i < n; i++)
        if (truth[idx[i]]) {
            pos++;
            hit += p_mal_after(&cs[idx[i]], mal, k, r) >= medium;
        }
    basira_proportion p;
    basira_wilson(hit, pos, &p, NULL);
    return p;
}

/*
 * What `basira recalibrate` (basira calibrate --malignant-bias) does, on the fitting
 * cases fit[0..n): temperature and bias together on the binary likelihood of
 * P(malignant) against the dermatologists' diagnoses (malignant / benign), then the
 * thresholds (medium keeps 95% of the malignant lesions, high 90% specificity). The
 * command then re-predicts and refits the bias alone, exact for the written model; with
 * one view (no TTA) that refit changes nothing, which is the case of these probabilities.
 */
static int fit_recal(const basira_drift_case *cs, const size_t *fit, size_t n, const int *dx,
                     const int *mal, int k, recal *r, basira_operating_point *op, double *t_multi)
{
    double *lp = malloc((n ? n : 1) * (size_t)k * sizeof *lp), *pm = malloc((n ? n : 1) * 8);
    int *lab = malloc((n ? n : 1) * sizeof *lab), *ism = malloc((n ? n : 1) * sizeof *ism);
    basira_error e;
    int rc = -1;
    r->t = 1.0;
    r->bias = 0.0;
    if (lp && pm && lab && ism) {
        for (size_t i = 0; i < n; i++) {
            for (int q = 0; q < k; q++)
                lp[i * (size_t)k + (size_t)q] = log(fmax((double)cs[fit[i]].probs[q], 1e-30));
            lab[i] = dx[fit[i]];
            ism[i] = mal[lab[i]];
        }
        /* For comparison, the temperature alone on the diagnoses (`recalibrate --no-bias`). */
        if (basira_fit_temperature(lp, lab, n, k, t_multi, NULL, NULL, &e))
            *t_multi = NAN;
        if (!basira_fit_temperature_bias(lp, mal, k, ism, n, &r->t, &r->bias, NULL, NULL, &e)) {
            for (size_t i = 0; i < n; i++)
                pm[i] = p_mal_after(&cs[fit[i]], mal, k, r);
            basira_operating_point_options o;
            basira_operating_point_options_default(&o);
            rc = basira_choose_operating_point(pm, ism, n, &o, op, &e) ? -1 : 0;
        }
    }
    free(lp);
    free(pm);
    free(lab);
    free(ism);
    return rc;
}

/*
 * Recalibration of the darker clinic (change-control plan, docs/change-control.md): fitted
 * on its adjudicated cases of weeks DARK_WEEK..FIT_WEEK-1 (what the hub holds when the
 * data steward starts the change), staged to that clinic alone from week FIT_WEEK, and
 * measured on its later cases (weeks FIT_WEEK..51, none used for the fit) against their
 * outcome. The stable clinic keeps the current model: its monitor output must not move.
 */
static void recalibrate_darker(const basira_drift_case *cs, size_t n, const int *src,
                               const int *week, const basira_drift_case *dpool, const int *ddx,
                               const int *mal, int k, const json_t *ref, const json_t *out)
{
    size_t *fit = malloc((n ? n : 1) * sizeof *fit), *later = malloc((n ? n : 1) * sizeof *later);
    int *truth = malloc((n ? n : 1) * sizeof *truth);
    size_t nf = 0, nl = 0, nfm = 0;
    for (size_t i = 0; fit && later && i < n; i++) {
        if (src[i] < 0 || !cs[i].scored)
            continue;
        truth[src[i]] = dpool[src[i]].outcome == 1; /* the pool keeps every photo's truth */
        if (week[i] < FIT_WEEK && cs[i].outcome >= 0) {
            fit[nf++] = (size_t)src[i];
            nfm += cs[i].outcome == 1;
        } else if (week[i] >= FIT_WEEK) {
            later[nl++] = (size_t)src[i];
        }
    }
    /* For the bench: the darker clinic's cases, fit or later, with their outcome and probs. */
    const char *dump = getenv("DRIFT_YEAR_RECAL_OUT");
    FILE *df = dump ? fopen(dump, "w") : NULL;
    for (size_t i = 0; df && i < nf + nl; i++) {
        const basira_drift_case *c = &dpool[i < nf ? fit[i] : later[i - nf]];
        fprintf(df, "%s,%d,%d", i < nf ? "fit" : "later", c->outcome,
                ddx[i < nf ? fit[i] : later[i - nf]]);
        for (int j = 0; j < k; j++)
            fprintf(df, ",%.9g", (double)c->probs[j]);
        fputc('\n', df);
    }
    if (df)
        fclose(df);
    recal r, t_only;
    basira_operating_point op;
    CHECK_MSG(nf >= 200 && nfm >= 30,
              "%zu adjudicated cases (%zu malignant) to fit: the plan "
              "asks for 200 (30)",
              nf, nfm);
    double t_multi = NAN;
    CHECK(fit_recal(dpool, fit, nf, ddx, mal, k, &r, &op, &t_multi) == 0);
    t_only.t = t_multi;
    t_only.bias = 0.0;
    ece_ci before = clinic_ece(dpool, later, nl, truth, mal, k, NULL);
    ece_ci temp = clinic_ece(dpool, later, nl, truth, mal, k, &t_only);
    ece_ci after = clinic_ece(dpool, later, nl, truth, mal, k, &r);
    /* Before: the category the current model gave (its thresholds as the pipeline ran). */
    long hit = 0, pos = 0;
    for (size_t i = 0; i < nl; i++)
        if (truth[later[i]]) {
            pos++;
            hit += strcmp(dpool[later[i]].category, "low") != 0;
        }
    basira_proportion s_before;
    basira_wilson(hit, pos, &s_before, NULL);
    basira_proportion s_after =
        clinic_sensitivity(dpool, later, nl, truth, mal, k, &r, op.medium_threshold);
    fprintf(stderr,
            "darker clinic recalibration on %zu adjudicated cases (%zu malignant) of weeks "
            "%d-%d: temperature x %.3f, malignant bias %+.3f, medium %.4f high %.4f\n"
            "  ECE of P(malignant) on its %zu later cases (weeks %d-%d): %.4f [%.4f, %.4f] "
            "before, %.4f [%.4f, %.4f] temperature only (x %.3f), %.4f [%.4f, %.4f] after\n"
            "  sensitivity (medium or high) on them: %.3f [%.3f, %.3f] (%ld/%ld) before, "
            "%.3f [%.3f, %.3f] (%ld/%ld) after\n",
            nf, nfm, DARK_WEEK, FIT_WEEK - 1, r.t, r.bias, op.medium_threshold, op.high_threshold,
            nl, FIT_WEEK, WEEKS - 1, before.ece, before.lo, before.hi, temp.ece, temp.lo, temp.hi,
            t_multi, after.ece, after.lo, after.hi, s_before.value, s_before.lo, s_before.hi,
            s_before.k, s_before.n, s_after.value, s_after.lo, s_after.hi, s_after.k, s_after.n);
    CHECK_MSG(nl >= 200, "only %zu later cases to measure the recalibration on", nl);
    CHECK_MSG(after.ece < 0.05, "ECE after recalibration %.4f, not under 0.05", after.ece);
    CHECK_MSG(after.ece < before.ece, "ECE %.4f after, %.4f before", after.ece, before.ece);
    CHECK_MSG(s_after.value >= 0.90, "sensitivity after recalibration %.3f", s_after.value);

    /*
     * The release reaches the darker clinic only: from FIT_WEEK its results carry the
     * candidate's probabilities, P(malignant), risk index and category. The stable
     * clinic's monitor output (every week's statistics) must be exactly what it was.
     */
    basira_drift_case *moved = malloc((n ? n : 1) * sizeof *moved);
    CHECK(moved != NULL);
    if (!moved)
        goto done;
    memcpy(moved, cs, n * sizeof *moved);
    for (size_t i = 0; i < n; i++) {
        basira_drift_case *c = &moved[i];
        if (src[i] < 0 || week[i] < FIT_WEEK || !c->scored)
            continue;
        double lp[BASIRA_DRIFT_MAX_CLASSES], p[BASIRA_DRIFT_MAX_CLASSES];
        for (int j = 0; j < k; j++)
            lp[j] = log(fmax((double)c->probs[j], 1e-30));
        basira_eval_softmax(lp, 1, k, r.t, p);
        basira_eval_shift_malignant(p, k, mal, r.bias);
        c->p_mal = 0.0;
        for (int j = 0; j < k; j++) {
            c->probs[j] = (float)p[j];
            c->p_mal += mal[j] ? p[j] : 0.0;
        }
        c->risk_index = floor(100.0 * c->p_mal + 0.5);
        snprintf(c->category, sizeof c->category, "%s",
                 c->p_mal >= op.high_threshold     ? "high"
                 : c->p_mal >= op.medium_threshold ? "medium"
                                                   : "low");
    }
    json_t *out2 = NULL;
    basira_error e;
    CHECK(basira_drift_monitor(ref, moved, n, &out2, &e) == BASIRA_OK);
    int same = 0;
    for (size_t a = 0; a < json_array_size(out); a++)
        for (size_t b = 0; b < json_array_size(out2); b++) {
            const json_t *x = json_array_get(out, a), *y = json_array_get(out2, b);
            if (!strcmp(json_string_value(json_object_get(x, "clinic")), "stable") &&
                !strcmp(json_string_value(json_object_get(y, "clinic")), "stable"))
                same = json_equal(x, y);
        }
    CHECK_MSG(same, "the stable clinic's monitor output changed with the darker clinic's release");
    json_decref(out2);
    free(moved);
done:
    free(fit);
    free(later);
    free(truth);
}

static void test_year(void)
{
    REQUIRE_DATA(dir);
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (!src)
        TEST_SKIP("BASIRA_SOURCE_DIR not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/ham10000/metadata.csv", dir);
    if (load_meta(path))
        TEST_SKIP("no HAM10000 metadata in %s", dir);
    int nref = env_int("DRIFT_YEAR_NREF", 120, 20, MAX_IMAGES);
    int npool = env_int("DRIFT_YEAR_NPOOL", 60, 20, MAX_IMAGES);
    int per_week = env_int("DRIFT_YEAR_PER_WEEK", 10, BASIRA_DRIFT_MIN_CASES, 500);
    /* The darker clinic's weekly cases once its new catchment area joins (week DARK_WEEK). */
    int dark_per_week = env_int("DRIFT_YEAR_DARK_PER_WEEK", 48, BASIRA_DRIFT_MIN_CASES, 200);
    static char val[MAX_IMAGES][32], tst[MAX_IMAGES][32];
    snprintf(path, sizeof path, "%s/models/basira-derm/split-val.csv", src);
    int nv = load_split(path, val, MAX_IMAGES);
    snprintf(path, sizeof path, "%s/models/basira-derm/split-test.csv", src);
    int nt = load_split(path, tst, MAX_IMAGES);
    CHECK(nv >= nref && nt >= npool);
    if (nv < nref || nt < npool)
        return;
    snprintf(path, sizeof path, "%s/models/basira-derm.safetensors", src);
    basira_pipeline *pipe = NULL;
    basira_error e;
    CHECK(basira_pipeline_new(path, NULL, &pipe, &e) == BASIRA_OK);
    if (!pipe)
        return;
    json_t *model = basira_pipeline_model_json(pipe);
    /* The classes of the model, in its order (the keys of a result's probabilities). */
    const char *codes[BASIRA_DRIFT_MAX_CLASSES];
    int mal[BASIRA_DRIFT_MAX_CLASSES], k = 0;
    for (k = 0; k < 7; k++) {
        codes[k] = ham_codes[k];
        mal[k] = is_malignant(ham_codes[k]);
    }
    json_t *classes = json_array();
    for (int j = 0; j < k; j++)
        json_array_append_new(classes, json_string(codes[j]));

    clock_t t_start = clock();
    time_t w_start = time(NULL);
    basira_drift_case *refc = calloc((size_t)nref, sizeof *refc);
    int nr = 0;
    /* Every photo of a stride through the split, so that all classes come in. */
    for (int i = 0; i < nref; i++) {
        const photo *m = find_meta(val[(size_t)i * (size_t)nv / (size_t)nref]);
        int dx;
        if (m && !analyse(pipe, classes, dir, m, ORIGINAL, &refc[nr], &dx))
            nr++;
    }
    json_t *ref = NULL;
    CHECK(basira_drift_reference_build(refc, (size_t)nr, codes, mal, k, model, &ref, &e) ==
          BASIRA_OK);
    /*
     * Pools of photos per variant. The darker clinic's new patients are each a distinct
     * photo (its adjudicated cases fit the recalibration, its later cases measure it):
     * its pool has one photo per case after the drift, the others are drawn with
     * replacement from npool photos.
     */
    int nwant[3] = {npool, npool, (WEEKS - DARK_WEEK) * dark_per_week};
    CHECK_MSG(nwant[DARK] <= nt, "%d darker cases need as many test photos (%d)", nwant[DARK], nt);
    if (nwant[DARK] > nt)
        nwant[DARK] = nt;
    basira_drift_case *pool[3];
    int *pool_dx[3];
    int np[3] = {0, 0, 0};
    for (int v = 0; v < 3; v++) {
        pool[v] = calloc((size_t)nwant[v], sizeof *pool[v]);
        pool_dx[v] = calloc((size_t)nwant[v], sizeof *pool_dx[v]);
        for (int i = 0; i < nwant[v]; i++) {
            const photo *m = find_meta(tst[(size_t)i * (size_t)nt / (size_t)nwant[v]]);
            if (m && !analyse(pipe, classes, dir, m, v, &pool[v][np[v]], &pool_dx[v][np[v]]))
                np[v]++;
        }
    }
    double cpu_s = (double)(clock() - t_start) / CLOCKS_PER_SEC;
    fprintf(stderr, "analysed %d reference + %d + %d + %d pool photos in %.1f s CPU, %ld s wall\n",
            nr, np[ORIGINAL], np[CAST], np[DARK], cpu_s, (long)(time(NULL) - w_start));
    /*
     * The year: per clinic and week, its cases; half of them adjudicated (a dermatologist's
     * diagnosis reaches the hub). src[] keeps each darker case's photo in its pool.
     */
    static const char *const clinic[3] = {"camera", "darker", "stable"};
    size_t ncase = (size_t)3 * WEEKS * (size_t)(per_week + dark_per_week);
    basira_drift_case *cs = calloc(ncase, sizeof *cs);
    int *photo_of = calloc(ncase, sizeof *photo_of), *week = calloc(ncase, sizeof *week);
    size_t n = 0;
    int next_dark = 0;
    /* The darker clinic's new patients come in a random order (the split is sorted). */
    int *order = calloc((size_t)np[DARK] + 1, sizeof *order);
    for (int i = 0; i < np[DARK]; i++)
        order[i] = i;
    for (int i = np[DARK] - 1; i > 0; i--) {
        int j = (int)(next() % (unsigned)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int w = 0; w < WEEKS; w++)
        for (int cl = 0; cl < 3; cl++) {
            int dark = cl == 1 && w >= DARK_WEEK;
            for (int i = 0; i < (dark ? dark_per_week : per_week); i++) {
                int v = cl == 0 && w >= CAST_WEEK ? CAST : dark ? DARK : ORIGINAL;
                if (dark && next_dark >= np[DARK])
                    break;
                int pick = dark ? order[next_dark++] : (int)(next() % (unsigned)np[v]);
                cs[n] = pool[v][pick];
                photo_of[n] = dark ? pick : -1;
                week[n] = w;
                snprintf(cs[n].clinic, sizeof cs[n].clinic, "%s", clinic[cl]);
                cs[n].ts = T0 + (int64_t)w * 604800 + (int64_t)i * 3600 + cl * 60;
                if (next() % 2)
                    cs[n].outcome = -1;
                n++;
            }
        }
    json_t *out = NULL;
    CHECK(basira_drift_monitor(ref, cs, n, &out, &e) == BASIRA_OK);
    const char *dump = getenv("DRIFT_YEAR_OUT");
    if (dump && out)
        json_dump_file(out, dump, JSON_INDENT(1));
    size_t i;
    json_t *c;
    json_array_foreach(out, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "clinic"));
        json_t *weeks = json_object_get(c, "weeks");
        int first = -1, alerts = 0, watches = 0;
        size_t wi;
        json_t *wk;
        json_array_foreach(weeks, wi, wk)
        {
            const char *lvl = json_string_value(json_object_get(wk, "alert"));
            if (!strcmp(lvl, "alert")) {
                alerts++;
                if (first < 0)
                    first = (int)wi;
            }
            watches += !strcmp(lvl, "watch");
        }
        int onset = !strcmp(name, "camera") ? CAST_WEEK : !strcmp(name, "darker") ? DARK_WEEK : -1;
        int before = 0; /* alerts before the drift began: false alarms */
        json_array_foreach(weeks, wi, wk) before +=
            (onset < 0 || (int)wi < onset) &&
            !strcmp(json_string_value(json_object_get(wk, "alert")), "alert");
        fprintf(stderr,
                "%-7s first alert week %d (drift from %d), %d alert weeks, %d watch "
                "weeks, %d alerts before the drift\n",
                name, first, onset, alerts, watches, before);
        if (onset < 0) {
            CHECK_MSG(alerts == 0, "the stable clinic was flagged %d times", alerts);
        } else {
            CHECK_MSG(first >= onset && first < onset + 4, "%s: first alert week %d, drift at %d",
                      name, first, onset);
            CHECK_MSG(before == 0, "%s: %d alerts before its drift", name, before);
        }
    }
    CHECK_EQ_INT(json_array_size(out), 3);

    recalibrate_darker(cs, n, photo_of, week, pool[DARK], pool_dx[DARK], mal, k, ref, out);
    json_decref(out);
    free(cs);
    free(photo_of);
    free(order);
    free(week);
    for (int v = 0; v < 3; v++) {
        free(pool[v]);
        free(pool_dx[v]);
    }
    free(refc);
    json_decref(ref);
    json_decref(classes);
    json_decref(model);
    basira_pipeline_free(pipe);
}

int main(void)
{
    RUN(test_year);
    return test_summary();
}
