/*
 * analysis.c - per-pixel planes, lesion segmentation and the quality measurements.
 *
 * The lesion is found the way a clinician looks at a photo: the skin at the
 * edges of the picture is the reference, and the lesion is the region that
 * differs from it by being darker or differently coloured (redder, browner,
 * bluer). That difference is one "lesion-contrast" value per pixel; Otsu's
 * method splits it in two and the largest connected region is the lesion.
 * Lighter-only differences (reflections, scales) are not counted as lesion.
 */
#include "analysis.h"
#include "core/i18n.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- colour --------------------------------------------------------------------- */

static double srgb_to_linear(double c)
{
    return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
}

static double lab_f(double t)
{
    const double d = 6.0 / 29.0;
    return t > d * d * d ? cbrt(t) : t / (3 * d * d) + 4.0 / 29.0;
}

/* lab_f() tabulated on [0, 1] (X, Y, Z of sRGB colours never exceed 1), linearly interpolated. */
#define LAB_LUT 4096

static void lab_lut_init(float *lut)
{
    for (int i = 0; i <= LAB_LUT; i++)
        lut[i] = (float)lab_f((double)i / LAB_LUT);
}

static inline float lab_f_lut(const float *lut, float t)
{
    float p = t * LAB_LUT;
    if (p <= 0)
        return lut[0];
    if (p >= LAB_LUT)
        return lut[LAB_LUT];
    int i = (int)p;
    float frac = p - (float)i;
    return lut[i] + (lut[i + 1] - lut[i]) * frac;
}

static void lab_from_linear_fast(const float *lut, float r, float g, float b, float *L, float *A,
                                 float *B)
{
    float x = (0.4124564f * r + 0.3575761f * g + 0.1804375f * b) / 0.95047f;
    float y = 0.2126729f * r + 0.7151522f * g + 0.0721750f * b;
    float z = (0.0193339f * r + 0.1191920f * g + 0.9503041f * b) / 1.08883f;
    float fx = lab_f_lut(lut, x), fy = lab_f_lut(lut, y), fz = lab_f_lut(lut, z);
    *L = 116 * fy - 16;
    *A = 500 * (fx - fy);
    *B = 200 * (fy - fz);
}

static void lab_from_linear(double r, double g, double b, float *L, float *A, float *B)
{
    /* IEC 61966-2-1 sRGB -> XYZ, normalised by the D65 white (0.95047, 1, 1.08883). */
    double x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
    double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    double z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883;
    double fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    *L = (float)(116 * fy - 16);
    *A = (float)(500 * (fx - fy));
    *B = (float)(200 * (fy - fz));
}

void basira_srgb_to_lab(uint8_t r8, uint8_t g8, uint8_t b8, float *L, float *A, float *B)
{
    lab_from_linear(srgb_to_linear(r8 / 255.0), srgb_to_linear(g8 / 255.0),
                    srgb_to_linear(b8 / 255.0), L, A, B);
}

/* ---- small helpers ------------------------------------------------------------------ */

/*
 * p-th quantile (0..1) of the values v[i] in [lo, hi] where use is NULL or
 * use[i]; a histogram of 2048 bins (resolution (hi - lo) / 2048) instead of a
 * sort: this runs several times per photo.
 */
double basira_qa_quantile(const float *v, const uint8_t *use, int n, float lo, float hi, double p)
{
    enum { BINS = 2048 };
    int hist[BINS] = {0};
    long total = 0;
    double scale = BINS / (double)(hi - lo);
    for (int i = 0; i < n; i++) {
        if (use && !use[i])
            continue;
        int b = (int)((v[i] - lo) * scale);
        b = b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
        hist[b]++;
        total++;
    }
    if (!total)
        return 0;
    double want = p * (double)(total - 1);
    long acc = 0;
    for (int b = 0; b < BINS; b++) {
        acc += hist[b];
        if ((double)acc > want)
            return lo + (b + 0.5) / scale;
    }
    return hi;
}

/*
 * Connected components (4-neighbour) of mask; labels[i] = component id + 1 or 0.
 * Returns the number of components and fills sizes (caller frees). stack has n entries.
 */
static int components(const uint8_t *mask, int w, int h, int *labels, int *stack, int **sizes_out)
{
    int n = w * h, count = 0, cap = 64;
    int *sizes = malloc((size_t)cap * sizeof *sizes);
    if (!sizes)
        return -1;
    memset(labels, 0, (size_t)n * sizeof *labels);
    for (int s = 0; s < n; s++) {
        if (!mask[s] || labels[s])
            continue;
        if (count == cap) {
            int *grown = realloc(sizes, (size_t)cap * 2 * sizeof *sizes);
            if (!grown) {
                free(sizes);
                return -1;
            }
            sizes = grown;
            cap *= 2;
        }
        int top = 0, size = 0;
        stack[top++] = s;
        labels[s] = count + 1;
        while (top) {
            int i = stack[--top], x = i % w, y = i / w;
            size++;
            const int nb[4] = {x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1,
                               y < h - 1 ? i + w : -1};
            for (int k = 0; k < 4; k++) {
                int j = nb[k];
                if (j >= 0 && mask[j] && !labels[j]) {
                    labels[j] = count + 1;
                    stack[top++] = j;
                }
            }
        }
        sizes[count++] = size;
    }
    *sizes_out = sizes;
    return count;
}

/* ---- working image -------------------------------------------------------------------- */

void basira_qa_work_free(basira_qa_work *w)
{
    if (!w)
        return;
    free(w->Y); /* one block holds every plane */
    memset(w, 0, sizeof *w);
}

/*
 * A dermoscope's image is a disc of skin on a black background. Those black
 * corners are neither skin nor lesion: dark pixels (L* < 12) connected to the
 * image border are marked outside the field of view.
 */
static void field_of_view(basira_qa_work *w, int *stack)
{
    int n = w->n, top = 0;
    for (int i = 0; i < n; i++)
        w->valid[i] = 1;
    for (int x = 0; x < w->w; x++) {
        int edges[2] = {x, (w->h - 1) * w->w + x};
        for (int k = 0; k < 2; k++)
            if (w->valid[edges[k]] && w->L[edges[k]] < 12)
                w->valid[edges[k]] = 0, stack[top++] = edges[k];
    }
    for (int y = 0; y < w->h; y++) {
        int edges[2] = {y * w->w, y * w->w + w->w - 1};
        for (int k = 0; k < 2; k++)
            if (w->valid[edges[k]] && w->L[edges[k]] < 12)
                w->valid[edges[k]] = 0, stack[top++] = edges[k];
    }
    while (top) {
        int i = stack[--top], x = i % w->w, y = i / w->w;
        const int nb[4] = {x > 0 ? i - 1 : -1, x < w->w - 1 ? i + 1 : -1, y > 0 ? i - w->w : -1,
                           y < w->h - 1 ? i + w->w : -1};
        for (int k = 0; k < 4; k++) {
            int j = nb[k];
            if (j >= 0 && w->valid[j] && w->L[j] < 12) {
                w->valid[j] = 0;
                stack[top++] = j;
            }
        }
    }
}

/* Otsu's threshold of v over the pixels where use[i]; values in [0, vmax]. */
static double otsu(const float *v, const uint8_t *use, int n, double vmax)
{
    enum { BINS = 256 };
    double hist[BINS] = {0}, total = 0, sum = 0;
    if (vmax <= 0)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!use[i])
            continue;
        int b = (int)(v[i] / vmax * (BINS - 1));
        b = b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
        hist[b]++;
        total++;
        sum += b;
    }
    double w0 = 0, sum0 = 0, best = -1;
    int best_t = 0;
    for (int t = 0; t < BINS; t++) {
        w0 += hist[t];
        sum0 += t * hist[t];
        double w1 = total - w0;
        if (w0 == 0 || w1 == 0)
            continue;
        double m0 = sum0 / w0, m1 = (sum - sum0) / w1;
        double between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (between > best)
            best = between, best_t = t;
    }
    return (best_t + 0.5) / (BINS - 1) * vmax;
}

static basira_code segment(basira_qa_work *w, int *labels, int *stack, float *scratch)
{
    int n = w->n;
    /* Skin reference: median colour of the valid pixels of the outer frame (10% each side). */
    int band = (w->w < w->h ? w->w : w->h) / 10;
    if (band < 1)
        band = 1;
    float *fl = scratch, *tmp = scratch + n;
    uint8_t *frame = w->lesion; /* borrowed until the lesion mask is written */
    int m = 0;
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++) {
            int i = y * w->w + x;
            frame[i] =
                w->valid[i] && (x < band || y < band || x >= w->w - band || y >= w->h - band);
            m += frame[i];
        }
    double Lr = basira_qa_quantile(w->L, frame, n, 0, 100, 0.5),
           ar = basira_qa_quantile(w->A, frame, n, -128, 128, 0.5),
           br = basira_qa_quantile(w->B, frame, n, -128, 128, 0.5);
    memset(w->lesion, 0, (size_t)n);
    if (m < 10)
        return BASIRA_OK;
    /* Lesion contrast: colour distance from skin, counting lightness only when darker. */
    float *c = fl;
    double cmax = 0;
    for (int i = 0; i < n; i++) {
        double dl = Lr - w->L[i];
        if (dl < 0)
            dl = 0;
        double da = w->A[i] - ar, db = w->B[i] - br;
        c[i] = (float)sqrt(dl * dl + da * da + db * db);
        if (w->valid[i] && c[i] > cmax)
            cmax = c[i];
    }
    double t = otsu(c, w->valid, n, cmax);
    uint8_t *mask = (uint8_t *)tmp; /* n bytes fit in n floats */
    for (int i = 0; i < n; i++)
        mask[i] = w->valid[i] && c[i] > t;
    int *sizes = NULL;
    int count = components(mask, w->w, w->h, labels, stack, &sizes);
    if (count < 0)
        return BASIRA_E_NOMEM;
    int best = -1;
    for (int k = 0; k < count; k++)
        if (best < 0 || sizes[k] > sizes[best])
            best = k;
    if (best >= 0)
        for (int i = 0; i < n; i++)
            w->lesion[i] = labels[i] == best + 1;
    free(sizes);
    return BASIRA_OK;
}

basira_code basira_qa_work_init(const basira_image *img, basira_qa_work *w, basira_error *err)
{
    memset(w, 0, sizeof *w);
    int iw = basira_image_width(img), ih = basira_image_height(img);
    if (iw <= 0 || ih <= 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int ww, wh;
    if (iw >= ih) {
        ww = BASIRA_QA_WORK_SIDE;
        wh = (int)lround((double)ih * BASIRA_QA_WORK_SIDE / iw);
    } else {
        wh = BASIRA_QA_WORK_SIDE;
        ww = (int)lround((double)iw * BASIRA_QA_WORK_SIDE / ih);
    }
    if (ww < 8 || wh < 8)
        return basira_error_set(err, BASIRA_E_IMAGE_TOO_SMALL,
                                _("the image is too narrow to be assessed (%d x %d pixels)"), iw,
                                ih);
    basira_image *small = NULL;
    basira_code rc = BASIRA_OK;
    if (ww != iw || wh != ih) {
        rc = basira_image_resize(img, ww, wh, &small, err);
        if (rc)
            return rc;
    }
    const uint8_t *px = basira_image_pixels(small ? small : img);
    size_t n = (size_t)ww * wh;
    /* 4 float planes + 4 byte planes in one allocation. */
    float *block = malloc(n * (4 * sizeof(float) + 4));
    if (!block) {
        basira_image_free(small);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    w->w = ww, w->h = wh, w->n = (int)n;
    w->Y = block, w->L = block + n, w->A = block + 2 * n, w->B = block + 3 * n;
    uint8_t *bytes = (uint8_t *)(block + 4 * n);
    w->maxc = bytes, w->minc = bytes + n, w->valid = bytes + 2 * n, w->lesion = bytes + 3 * n;
    float lin[256], lut[LAB_LUT + 1];
    for (int v = 0; v < 256; v++)
        lin[v] = (float)srgb_to_linear(v / 255.0);
    lab_lut_init(lut);
    for (size_t i = 0; i < n; i++) {
        uint8_t r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
        w->Y[i] = 0.299f * r + 0.587f * g + 0.114f * b;
        lab_from_linear_fast(lut, lin[r], lin[g], lin[b], &w->L[i], &w->A[i], &w->B[i]);
        uint8_t mx = r > g ? r : g, mn = r < g ? r : g;
        w->maxc[i] = mx > b ? mx : b;
        w->minc[i] = mn < b ? mn : b;
    }
    basira_image_free(small);

    int *labels = malloc(n * sizeof *labels), *stack = malloc(n * sizeof *stack);
    float *scratch = malloc(2 * n * sizeof *scratch);
    if (!labels || !stack || !scratch) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    } else {
        field_of_view(w, stack);
        rc = segment(w, labels, stack, scratch);
        if (rc)
            basira_error_set(err, rc, NULL);
    }
    free(labels);
    free(stack);
    free(scratch);
    if (rc)
        basira_qa_work_free(w);
    return rc;
}

/* ---- measurements ------------------------------------------------------------------------ */

/*
 * Glare: a specular reflection of the flash or the sun saturates the sensor, so
 * all three channels are at (or next to) full scale: min(R, G, B) >= 245.
 * White that is not saturated (paper, sheets, scales, pale skin) is not glare;
 * on the Fitzpatrick17k atlas photos the looser "near-white, colourless" rule
 * flagged 5% of good photos for their white backgrounds. Isolated bright pixels
 * are texture or noise; what hides skin is a blob, so only blobs of at least
 * 0.1% of the image count.
 */
static double glare_fraction(const basira_qa_work *w)
{
    int n = w->n;
    uint8_t *mask = malloc((size_t)n);
    int *labels = malloc((size_t)n * sizeof *labels), *stack = malloc((size_t)n * sizeof *stack);
    double frac = 0;
    if (mask && labels && stack) {
        for (int i = 0; i < n; i++)
            mask[i] = w->minc[i] >= 245;
        int *sizes = NULL;
        int count = components(mask, w->w, w->h, labels, stack, &sizes);
        int min_blob = n / 1000 > 4 ? n / 1000 : 4;
        long total = 0;
        for (int k = 0; k < count; k++)
            if (sizes[k] >= min_blob)
                total += sizes[k];
        if (count >= 0)
            free(sizes);
        frac = (double)total / n;
    }
    free(mask);
    free(labels);
    free(stack);
    return frac;
}

void basira_qa_features_compute(const basira_image *img, const basira_qa_work *w,
                                basira_qa_features *f)
{
    memset(f, 0, sizeof *f);
    int n = w->n, ww = w->w, wh = w->h;
    int ow = basira_image_original_width(img), oh = basira_image_original_height(img);
    f->orig_short_side = ow < oh ? ow : oh;

    /* Focus: variance of the 4-neighbour Laplacian of luma over the interior. */
    double s = 0, s2 = 0;
    long m = 0;
    for (int y = 1; y < wh - 1; y++)
        for (int x = 1; x < ww - 1; x++) {
            int i = y * ww + x;
            double lap = 4.0 * w->Y[i] - w->Y[i - 1] - w->Y[i + 1] - w->Y[i - ww] - w->Y[i + ww];
            s += lap, s2 += lap * lap, m++;
        }
    if (m)
        f->laplacian_var = s2 / m - (s / m) * (s / m);

    /* Integer-valued max(R,G,B): an exact histogram. */
    long hist[256] = {0}, clipped = 0;
    for (int i = 0; i < n; i++) {
        hist[w->maxc[i]]++;
        clipped += w->maxc[i] >= 250;
    }
    long acc = 0;
    for (int v = 0; v < 256; v++) {
        acc += hist[v];
        if (acc > 0.99 * (n - 1)) {
            f->bright_p99 = v;
            break;
        }
    }
    f->clipped_frac = (double)clipped / n;
    f->y_range = basira_qa_quantile(w->Y, NULL, n, 0, 256, 0.98) -
                 basira_qa_quantile(w->Y, NULL, n, 0, 256, 0.02);

    f->glare_frac = glare_fraction(w);

    /* Colour cast: mean chromaticity of the whole photo vs typical skin (a* 15, b* 18). */
    double sa = 0, sb = 0;
    for (int i = 0; i < n; i++)
        sa += w->A[i], sb += w->B[i];
    sa /= n, sb /= n;
    f->cast_dist = sqrt((sa - 15) * (sa - 15) + (sb - 18) * (sb - 18));

    /* Framing. */
    long area = 0, valid = 0, on_border = 0, outline = 0;
    double lsum[3] = {0}, ssum[3] = {0};
    long skin = 0;
    for (int y = 0; y < wh; y++)
        for (int x = 0; x < ww; x++) {
            int i = y * ww + x;
            valid += w->valid[i];
            if (!w->valid[i])
                continue;
            if (!w->lesion[i]) {
                ssum[0] += w->L[i], ssum[1] += w->A[i], ssum[2] += w->B[i], skin++;
                continue;
            }
            area++;
            lsum[0] += w->L[i], lsum[1] += w->A[i], lsum[2] += w->B[i];
            int edge = x == 0 || y == 0 || x == ww - 1 || y == wh - 1;
            int boundary = edge || !w->lesion[i - 1] || !w->lesion[i + 1] || !w->lesion[i - ww] ||
                           !w->lesion[i + ww];
            outline += boundary;
            on_border += edge;
        }
    if (area && skin) {
        double d2 = 0;
        for (int k = 0; k < 3; k++) {
            double d = lsum[k] / area - ssum[k] / skin;
            d2 += d * d;
        }
        f->lesion_contrast = sqrt(d2);
    }
    f->lesion_area = valid ? (double)area / valid : 0;
    f->lesion_border = outline ? (double)on_border / outline : 0;
}
