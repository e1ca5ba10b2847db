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
 * Then recalibration: the darker clinic's adjudicated photos are split in two;
 * a temperature is fitted on the first half (basira_fit_temperature, the code of
 * `basira calibrate`) and the ECE of P(malignant) measured on the second half,
 * before and after (printed; ECE on a few dozen photos is too noisy to assert a
 * bound on, the bench runs it with more).
 *
 * Sizes (environment, for the bench): DRIFT_YEAR_NREF reference photos (120),
 * DRIFT_YEAR_NPOOL test photos per variant (60), DRIFT_YEAR_PER_WEEK cases per
 * clinic and week (10), DRIFT_YEAR_OUT a file for the monitor's JSON.
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
                   int variant, basira_drift_case *c)
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
                rc = 0;
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

/* ECE of P(malignant) of cases[idx[0..n)] after temperature t (probabilities re-tempered). */
static double ece_at(const basira_drift_case *cs, const size_t *idx, size_t n, const int *mal,
                     int k, double t)
{
    double *conf = malloc(n * sizeof *conf);
    int *hit = malloc(n * sizeof *hit);
    for (size_t i = 0; i < n; i++) {
        const basira_drift_case *c = &cs[idx[i]];
        double lp[BASIRA_DRIFT_MAX_CLASSES], p[BASIRA_DRIFT_MAX_CLASSES], pm = 0.0;
        for (int j = 0; j < k; j++)
            lp[j] = log(fmax((double)c->probs[j], 1e-12));
        basira_eval_softmax(lp, 1, k, t, p);
        for (int j = 0; j < k; j++)
            pm += mal[j] ? p[j] : 0.0;
        conf[i] = fmin(1.0, fmax(0.0, pm));
        hit[i] = c->outcome == 1;
    }
    basira_calibration cal;
    double ece = basira_calibration_compute(conf, hit, n, &cal, NULL) ? NAN : cal.ece;
    free(conf);
    free(hit);
    return ece;
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
    static const char *const ham[] = {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"};
    for (k = 0; k < 7; k++) {
        codes[k] = ham[k];
        mal[k] = is_malignant(ham[k]);
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
        if (m && !analyse(pipe, classes, dir, m, ORIGINAL, &refc[nr]))
            nr++;
    }
    json_t *ref = NULL;
    CHECK(basira_drift_reference_build(refc, (size_t)nr, codes, mal, k, model, &ref, &e) ==
          BASIRA_OK);
    basira_drift_case *pool[3];
    int np[3] = {0, 0, 0};
    for (int v = 0; v < 3; v++) {
        pool[v] = calloc((size_t)npool, sizeof *pool[v]);
        for (int i = 0; i < npool; i++) {
            const photo *m = find_meta(tst[(size_t)i * (size_t)nt / (size_t)npool]);
            if (m && !analyse(pipe, classes, dir, m, v, &pool[v][np[v]]))
                np[v]++;
        }
    }
    double cpu_s = (double)(clock() - t_start) / CLOCKS_PER_SEC;
    fprintf(stderr, "analysed %d reference + %d x 3 pool photos in %.1f s CPU, %ld s wall\n", nr,
            np[0], cpu_s, (long)(time(NULL) - w_start));
    /* The year: per clinic and week, per_week cases drawn from its pool; half adjudicated. */
    static const char *const clinic[3] = {"camera", "darker", "stable"};
    size_t ncase = (size_t)3 * WEEKS * (size_t)per_week;
    basira_drift_case *cs = calloc(ncase, sizeof *cs);
    size_t n = 0;
    for (int w = 0; w < WEEKS; w++)
        for (int cl = 0; cl < 3; cl++)
            for (int i = 0; i < per_week; i++) {
                int v = cl == 0 && w >= CAST_WEEK   ? CAST
                        : cl == 1 && w >= DARK_WEEK ? DARK
                                                    : ORIGINAL;
                int pick = (int)(next() % (unsigned)np[v]);
                cs[n] = pool[v][pick];
                snprintf(cs[n].clinic, sizeof cs[n].clinic, "%s", clinic[cl]);
                cs[n].ts = T0 + (int64_t)w * 604800 + (int64_t)i * 7200 + cl * 60;
                if (next() % 2)
                    cs[n].outcome = -1;
                n++;
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

    /*
     * Recalibration on the darker clinic's adjudicated photos after its drift: each
     * distinct photo once (the year draws them repeatedly), fitted on one half and
     * measured on the other. Labels for the fit: the most likely class on the
     * outcome's side (only malignant / benign is adjudicated).
     */
    size_t m = (size_t)np[DARK], half = m / 2;
    size_t *idx = malloc((m ? m : 1) * sizeof *idx);
    for (size_t j = 0; j < m; j++)
        idx[j] = j;
    double *lp = malloc((half ? half : 1) * (size_t)k * sizeof *lp);
    int *lab = malloc((half ? half : 1) * sizeof *lab);
    for (size_t j = 0; j < half; j++) {
        const basira_drift_case *cc = &pool[DARK][j];
        int best = -1;
        for (int q = 0; q < k; q++) {
            lp[j * (size_t)k + (size_t)q] = log(fmax((double)cc->probs[q], 1e-12));
            if (mal[q] == (cc->outcome == 1) && (best < 0 || cc->probs[q] > cc->probs[best]))
                best = q;
        }
        lab[j] = best;
    }
    double t = 1.0;
    CHECK(basira_fit_temperature(lp, lab, half, k, &t, NULL, NULL, &e) == BASIRA_OK);
    double ece_orig = ece_at(pool[ORIGINAL], idx, (size_t)np[ORIGINAL], mal, k, 1.0);
    double before = ece_at(pool[DARK], idx + half, m - half, mal, k, 1.0);
    double after = ece_at(pool[DARK], idx + half, m - half, mal, k, t);
    fprintf(stderr,
            "darker clinic recalibration: temperature %.3f fitted on %zu photos; ECE of "
            "P(malignant) on the other %zu: %.4f before, %.4f after (the same photos without "
            "the drift: %.4f on %d)\n",
            t, half, m - half, before, after, ece_orig, np[ORIGINAL]);
    CHECK(t > 0.05 && t < 20.0 && isfinite(after));
    free(lp);
    free(lab);
    free(idx);
    json_decref(out);
    free(cs);
    for (int v = 0; v < 3; v++)
        free(pool[v]);
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
