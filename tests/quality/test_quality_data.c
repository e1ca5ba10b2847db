/*
 * test_quality_data.c - the quality gate and the skin tone on real photos.
 *
 * Proves the calibration of quality.c on ../shared/data:
 *   - HAM10000 dermoscopy images as they are: >= 97% accepted;
 *   - Fitzpatrick17k clinical photos as they are: >= 90% accepted;
 *   - the same images strongly degraded, each degradation separately: >= 95% rejected
 *     (Gaussian blur sigma 3 px at 200 px width; every pixel value x0.25 or x4 with
 *     clipping; a saturated white disc of radius 15% of the width);
 *   - skin tone: Spearman correlation between ITA and the Fitzpatrick type is negative.
 * A fixed subset (every 4th image; every 16th in sanitizer builds) keeps CI fast;
 * BASIRA_QUALITY_FULL=1 runs every image.
 * BASIRA_QUALITY_FEATURES=1 also prints the distribution of each measurement.
 */
#include "basira/image.h"
#include "basira/quality.h"
#include "quality/analysis.h"
#include "test.h"

#include <dirent.h>
#include <math.h>

enum { DEG_NONE, DEG_BLUR, DEG_DARK, DEG_BRIGHT, DEG_GLARE, DEG_COUNT };
static const char *const deg_names[DEG_COUNT] = {"as is", "blur sigma 3@200px", "exposure x0.25",
                                                 "exposure x4", "white disc r=15%"};

typedef struct tally {
    int n, loaded;
    int accepted[DEG_COUNT]; /* per degradation: passed the gate */
    int failed_by[DEG_COUNT][BASIRA_QUALITY_MAX_CHECKS];
    const char *codes[BASIRA_QUALITY_MAX_CHECKS];
    int n_codes;
} tally;

/* Gaussian blur of packed RGB, separable, edges clamped. */
static void gaussian_blur(uint8_t *px, int w, int h, double sigma)
{
    int r = (int)ceil(3 * sigma);
    double *k = malloc((size_t)(2 * r + 1) * sizeof *k), sum = 0;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = exp(-(i * i) / (2 * sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= sum;
    float *tmp = malloc((size_t)w * h * 3 * sizeof *tmp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    s += k[i + r] * px[((size_t)y * w + xx) * 3 + c];
                }
                tmp[((size_t)y * w + x) * 3 + c] = (float)s;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    s += k[i + r] * tmp[((size_t)yy * w + x) * 3 + c];
                }
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)lround(s > 255 ? 255 : s);
            }
    free(tmp);
    free(k);
}

static void degrade(int kind, uint8_t *px, int w, int h, unsigned seed)
{
    size_t n = (size_t)w * h * 3;
    switch (kind) {
    case DEG_BLUR:
        gaussian_blur(px, w, h, 3.0 * w / 200.0);
        break;
    case DEG_DARK:
    case DEG_BRIGHT:
        for (size_t i = 0; i < n; i++) {
            double v = px[i] * (kind == DEG_DARK ? 0.25 : 4.0);
            px[i] = (uint8_t)(v > 255 ? 255 : lround(v));
        }
        break;
    case DEG_GLARE: {
        /* Radius 15% of the width, centre anywhere the disc fits inside the picture. */
        double r = 0.15 * w;
        int cx = (int)r + (int)(seed % (unsigned)(w - 2 * r > 1 ? w - 2 * r : 1));
        int cy = (int)r + (int)((seed / 7) % (unsigned)(h - 2 * r > 1 ? h - 2 * r : 1));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                    memset(px + ((size_t)y * w + x) * 3, 255, 3);
        break;
    }
    default:
        break;
    }
}

static int code_index(tally *t, const char *code)
{
    for (int i = 0; i < t->n_codes; i++)
        if (!strcmp(t->codes[i], code))
            return i;
    t->codes[t->n_codes] = code;
    return t->n_codes++;
}

/* Optional: one measurement per image, for the calibration printout. */
typedef struct featlog {
    int n, cap;
    basira_qa_features *f[DEG_COUNT];
} featlog;

static void run_image(const char *path, tally *t, featlog *fl)
{
    basira_image *img = NULL;
    basira_error err;
    t->n++;
    if (basira_image_load_file(path, NULL, &img, &err)) {
        /* An image intake refuses counts as not accepted and is not degraded. */
        return;
    }
    t->loaded++;
    int w = basira_image_width(img), h = basira_image_height(img);
    size_t n = (size_t)w * h * 3;
    uint8_t *px = malloc(n);
    for (int d = 0; d < DEG_COUNT; d++) {
        memcpy(px, basira_image_pixels(img), n);
        degrade(d, px, w, h, (unsigned)t->n * 2654435761u);
        basira_image *dimg = NULL;
        CHECK(!basira_image_from_rgb(px, w, h, &dimg, &err));
        if (!dimg)
            continue;
        /* These photos are small: the loaded image is the photo as taken (no shrink). */
        basira_quality_report rep;
        CHECK(!basira_quality_assess(dimg, &rep, &err));
        if (rep.ok)
            t->accepted[d]++;
        for (int c = 0; c < rep.n_checks; c++)
            if (!rep.checks[c].passed)
                t->failed_by[d][code_index(t, rep.checks[c].code)]++;
        if (fl && fl->n < fl->cap) {
            basira_qa_work wk;
            if (!basira_qa_work_init(dimg, &wk, &err)) {
                basira_qa_features_compute(dimg, &wk, &fl->f[d][fl->n]);
                basira_qa_work_free(&wk);
            }
        }
        basira_image_free(dimg);
    }
    if (fl && fl->n < fl->cap)
        fl->n++;
    free(px);
    basira_image_free(img);
}

/* ---- data sets ------------------------------------------------------------------ */

typedef struct csv_row {
    char id[80];
    int fitz; /* Fitzpatrick type 1..6, -1 unknown; 0 for HAM */
} csv_row;

/* First column (and for Fitzpatrick the second) of metadata.csv, header skipped. */
static int read_ids(const char *csv, int fitz_column, csv_row **rows_out)
{
    FILE *f = fopen(csv, "r");
    if (!f)
        return -1;
    char line[1024];
    int n = 0, cap = 1024;
    csv_row *rows = malloc((size_t)cap * sizeof *rows);
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        free(rows);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *c1 = strtok(line, ",\r\n");
        char *c2 = strtok(NULL, ",\r\n");
        if (!c1 || !c2)
            continue;
        if (n == cap)
            rows = realloc(rows, (size_t)(cap *= 2) * sizeof *rows);
        /* HAM: lesion_id,image_id,...; Fitzpatrick: md5hash,fitzpatrick_scale,... */
        snprintf(rows[n].id, sizeof rows[n].id, "%s", fitz_column ? c1 : c2);
        rows[n].fitz = fitz_column ? atoi(c2) : 0;
        n++;
    }
    fclose(f);
    *rows_out = rows;
    return n;
}

static void print_tally(const char *name, const tally *t)
{
    fprintf(stderr, "%s: %d images, %d loaded by intake\n", name, t->n, t->loaded);
    for (int d = 0; d < DEG_COUNT; d++) {
        double rate = d == DEG_NONE ? (double)t->accepted[d] / t->n
                                    : 1.0 - (double)t->accepted[d] / t->loaded;
        fprintf(stderr, "  %-20s %s %6.2f%% (%d/%d)   failed checks:", deg_names[d],
                d == DEG_NONE ? "accepted" : "rejected", 100 * rate,
                d == DEG_NONE ? t->accepted[d] : t->loaded - t->accepted[d],
                d == DEG_NONE ? t->n : t->loaded);
        for (int c = 0; c < t->n_codes; c++)
            if (t->failed_by[d][c])
                fprintf(stderr, " %s=%d", t->codes[c], t->failed_by[d][c]);
        fputc('\n', stderr);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_features(const char *name, const featlog *fl)
{
    static const char *const fn[] = {"short_side", "lap_var",   "bright_p99", "clipped",
                                     "glare",      "y_range",   "cast",       "les_contrast",
                                     "les_area",   "les_border"};
    double *v = malloc((size_t)fl->n * sizeof *v);
    for (int d = 0; d < DEG_COUNT; d++) {
        fprintf(stderr, "%s [%s] percentiles 1/3/5/50/95/97/99:\n", name, deg_names[d]);
        for (int k = 0; k < 10; k++) {
            for (int i = 0; i < fl->n; i++) {
                const basira_qa_features *f = &fl->f[d][i];
                const double all[] = {f->orig_short_side, f->laplacian_var,   f->bright_p99,
                                      f->clipped_frac,    f->glare_frac,      f->y_range,
                                      f->cast_dist,       f->lesion_contrast, f->lesion_area,
                                      f->lesion_border};
                v[i] = all[k];
            }
            qsort(v, (size_t)fl->n, sizeof *v, cmp_double);
            fprintf(stderr, "  %-13s", fn[k]);
            const double ps[] = {0.01, 0.03, 0.05, 0.5, 0.95, 0.97, 0.99};
            for (int p = 0; p < 7; p++)
                fprintf(stderr, " %9.4g", fl->n ? v[(int)(ps[p] * (fl->n - 1))] : 0.0);
            fputc('\n', stderr);
        }
    }
    free(v);
}

static featlog *featlog_new(int cap)
{
    if (!getenv("BASIRA_QUALITY_FEATURES"))
        return NULL;
    featlog *fl = calloc(1, sizeof *fl);
    fl->cap = cap;
    for (int d = 0; d < DEG_COUNT; d++)
        fl->f[d] = calloc((size_t)cap, sizeof(basira_qa_features));
    return fl;
}

static void featlog_free(featlog *fl)
{
    if (!fl)
        return;
    for (int d = 0; d < DEG_COUNT; d++)
        free(fl->f[d]);
    free(fl);
}

/* Spearman rank correlation (average ranks for ties). */
static void ranks(const double *x, int n, double *r)
{
    int *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 1; i < n; i++) { /* insertion sort by value: n is a few thousand */
        int k = idx[i], j = i - 1;
        while (j >= 0 && x[idx[j]] > x[k])
            idx[j + 1] = idx[j], j--;
        idx[j + 1] = k;
    }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]])
            j++;
        for (int k = i; k <= j; k++)
            r[idx[k]] = 0.5 * (i + j) + 1;
        i = j + 1;
    }
    free(idx);
}

static double spearman(const double *x, const double *y, int n)
{
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    ranks(x, n, rx);
    ranks(y, n, ry);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++)
        mx += rx[i], my += ry[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

int main(int argc, char **argv)
{
    REQUIRE_DATA(data);
    int full = getenv("BASIRA_QUALITY_FULL") && !strcmp(getenv("BASIRA_QUALITY_FULL"), "1");
    /* argv[1]: take every n-th image (sanitizer builds use a smaller subset). */
    int step = full ? 1 : argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 4;
    char path[4096];

    /* HAM10000. */
    csv_row *ham = NULL;
    snprintf(path, sizeof path, "%s/ham10000/metadata.csv", data);
    int n_ham = read_ids(path, 0, &ham);
    CHECK(n_ham > 1000);
    tally th = {0};
    featlog *flh = featlog_new(n_ham / step + 1);
    for (int i = 0; i < n_ham; i += step) {
        snprintf(path, sizeof path, "%s/ham10000/images/%s.jpg", data, ham[i].id);
        run_image(path, &th, flh);
    }
    print_tally("HAM10000", &th);
    if (flh)
        print_features("HAM10000", flh);
    featlog_free(flh);

    /* Fitzpatrick17k, with the skin tone of each photo. */
    csv_row *fz = NULL;
    snprintf(path, sizeof path, "%s/fitzpatrick17k/metadata.csv", data);
    int n_fz = read_ids(path, 1, &fz);
    CHECK(n_fz > 500);
    tally tf = {0};
    featlog *flf = featlog_new(n_fz / step + 1);
    double *ita = calloc((size_t)n_fz, sizeof *ita), *type = calloc((size_t)n_fz, sizeof *type);
    int n_tone = 0, unknown_tone = 0;
    int table[7][7] = {{0}}; /* [category][fitzpatrick type] */
    for (int i = 0; i < n_fz; i += step) {
        snprintf(path, sizeof path, "%s/fitzpatrick17k/images/%s.jpg", data, fz[i].id);
        run_image(path, &tf, flf);
        if (fz[i].fitz < 1 || fz[i].fitz > 6)
            continue;
        basira_image *img = NULL;
        basira_error err;
        if (basira_image_load_file(path, NULL, &img, &err))
            continue;
        basira_skin_tone tone;
        CHECK(!basira_skin_tone_estimate(img, &tone, &err));
        basira_image_free(img);
        if (tone.category == BASIRA_TONE_UNKNOWN) {
            unknown_tone++;
            continue;
        }
        table[tone.category][fz[i].fitz]++;
        ita[n_tone] = tone.ita;
        type[n_tone] = fz[i].fitz;
        n_tone++;
    }
    print_tally("Fitzpatrick17k", &tf);
    if (flf)
        print_features("Fitzpatrick17k", flf);
    featlog_free(flf);

    double rho = spearman(ita, type, n_tone);
    fprintf(stderr, "Skin tone: %d photos of known Fitzpatrick type (%d without enough skin)\n",
            n_tone, unknown_tone);
    fprintf(stderr, "Spearman(ITA, Fitzpatrick type) = %.3f\n", rho);
    fprintf(stderr, "  ITA category \\ type     I    II   III    IV     V    VI\n");
    for (int c = 1; c <= 6; c++) {
        fprintf(stderr, "  %-20s", basira_skin_tone_category_code((basira_skin_tone_category)c));
        for (int k = 1; k <= 6; k++)
            fprintf(stderr, " %5d", table[c][k]);
        fputc('\n', stderr);
    }
    for (int k = 1; k <= 6; k++) {
        double s = 0;
        int m = 0;
        for (int i = 0; i < n_tone; i++)
            if ((int)type[i] == k)
                s += ita[i], m++;
        fprintf(stderr, "  mean ITA of type %d: %6.1f (%d photos)\n", k, m ? s / m : 0.0, m);
    }

    /* The floors of the issue. */
    double ham_acc = (double)th.accepted[DEG_NONE] / th.n;
    double fz_acc = (double)tf.accepted[DEG_NONE] / tf.n;
    if (step <= 4) {
        CHECK_MSG(th.n >= (full ? 7000 : 1500), "HAM subset %d", th.n);
        CHECK_MSG(tf.n >= (full ? 2800 : 700), "Fitzpatrick subset %d", tf.n);
    }
    CHECK_MSG(ham_acc >= 0.97, "HAM accepted %.4f", ham_acc);
    CHECK_MSG(fz_acc >= 0.90, "Fitzpatrick accepted %.4f", fz_acc);
    for (int d = DEG_BLUR; d < DEG_COUNT; d++) {
        double rh = 1.0 - (double)th.accepted[d] / th.loaded;
        double rf = 1.0 - (double)tf.accepted[d] / tf.loaded;
        CHECK_MSG(rh >= 0.95, "HAM %s rejected %.4f", deg_names[d], rh);
        CHECK_MSG(rf >= 0.95, "Fitzpatrick %s rejected %.4f", deg_names[d], rf);
    }
    CHECK_MSG(n_tone >= 2000 / step, "only %d skin tones", n_tone);
    CHECK_MSG(rho <= -0.2, "Spearman %.3f", rho);
    free(ita);
    free(type);
    free(ham);
    free(fz);
    return test_summary();
}
