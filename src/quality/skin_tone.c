/*
 * skin_tone.c - Individual Typology Angle of the healthy skin around the lesion.
 *
 * ITA = atan((L* - 50) / b*) * 180 / pi (Chardon et al. 1991), on CIELAB D65.
 * Only healthy skin counts: the lesion (from the framing segmentation, widened
 * by 2 px so its blurred edge is excluded), hair (dark thin structures: pixels
 * much darker than the closing of their neighbourhood), pixels outside the
 * dermoscope's field of view, and shadows and highlights (outside the 10th-90th
 * percentiles of L* of the remaining pixels). The median L* and median b* of
 * what is left are robust to the few pixels those rules miss.
 */
#include "analysis.h"
#include "basira/quality.h"
#include "core/i18n.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Less healthy skin than this share of the picture gives no reliable tone. */
#define MIN_SKIN_FRACTION 0.05
/* Hair: at least 10 L* units darker than the 7x7 closing around it. */
#define HAIR_DEPTH 10.0f
#define HAIR_WINDOW 3 /* half-width of the closing window */

basira_skin_tone_category basira_skin_tone_category_from_ita(double ita)
{
    if (isnan(ita))
        return BASIRA_TONE_UNKNOWN;
    if (ita > 55)
        return BASIRA_TONE_VERY_LIGHT;
    if (ita > 41)
        return BASIRA_TONE_LIGHT;
    if (ita > 28)
        return BASIRA_TONE_INTERMEDIATE;
    if (ita > 10)
        return BASIRA_TONE_TAN;
    if (ita > -30)
        return BASIRA_TONE_BROWN;
    return BASIRA_TONE_DARK;
}

const char *basira_skin_tone_category_code(basira_skin_tone_category c)
{
    static const char *const codes[] = {"unknown", "very_light", "light", "intermediate",
                                        "tan",     "brown",      "dark"};
    if ((int)c < 0 || (size_t)c >= sizeof codes / sizeof codes[0])
        return "unknown";
    return codes[c];
}

json_t *basira_skin_tone_json(const basira_skin_tone *t)
{
    if (!t)
        return NULL;
    return json_pack("{s:f, s:s}", "ita", isfinite(t->ita) ? t->ita : 0.0, "category",
                     basira_skin_tone_category_code(t->category));
}

/* Separable max (dilate=1) or min filter of half-width r. */
static void filter_1d(const float *in, float *out, int w, int h, int r, int horizontal, int dilate)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float best = in[y * w + x];
            for (int k = -r; k <= r; k++) {
                int xx = horizontal ? x + k : x, yy = horizontal ? y : y + k;
                if (xx < 0 || yy < 0 || xx >= w || yy >= h)
                    continue;
                float v = in[yy * w + xx];
                if (dilate ? v > best : v < best)
                    best = v;
            }
            out[y * w + x] = best;
        }
}

basira_code basira_skin_tone_estimate(const basira_image *img, basira_skin_tone *out,
                                      basira_error *err)
{
    if (!img || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_qa_work w;
    basira_code rc = basira_qa_work_init(img, &w, err);
    if (rc)
        return rc;
    rc = basira_skin_tone_from_work(&w, out, err);
    basira_qa_work_free(&w);
    return rc;
}

basira_code basira_skin_tone_from_work(const basira_qa_work *wp, basira_skin_tone *out,
                                       basira_error *err)
{
    memset(out, 0, sizeof *out);
    out->category = BASIRA_TONE_UNKNOWN;
    const basira_qa_work w = *wp; /* a shallow copy: the planes stay the caller's */
    basira_code rc = BASIRA_OK;
    int n = w.n, ww = w.w, wh = w.h;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    uint8_t *use = malloc((size_t)n);
    if (!a || !b || !use) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    /* Closing of L* (dilate then erode): hair and other thin dark lines disappear in it. */
    filter_1d(w.L, a, ww, wh, HAIR_WINDOW, 1, 1);
    filter_1d(a, b, ww, wh, HAIR_WINDOW, 0, 1);
    filter_1d(b, a, ww, wh, HAIR_WINDOW, 1, 0);
    filter_1d(a, b, ww, wh, HAIR_WINDOW, 0, 0);
    /* Candidates: valid, not lesion (widened by 2 px), not hair, skin-like chromaticity. */
    int m = 0;
    for (int y = 0; y < wh; y++)
        for (int x = 0; x < ww; x++) {
            int i = y * ww + x, near_lesion = 0;
            for (int dy = -2; dy <= 2 && !near_lesion; dy++)
                for (int dx = -2; dx <= 2; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx >= 0 && yy >= 0 && xx < ww && yy < wh && w.lesion[yy * ww + xx]) {
                        near_lesion = 1;
                        break;
                    }
                }
            int hair = b[i] - w.L[i] >= HAIR_DEPTH;
            /*
             * Skin of every type is yellowish-red: b* well above 0 (melanin,
             * carotene, blood). Grey, blue or green pixels (dressings, clothes,
             * backgrounds) are not skin.
             */
            int skin_like = w.B[i] > 4 && w.A[i] > -2 && w.L[i] > 5;
            use[i] = w.valid[i] && !near_lesion && !hair && skin_like;
            m += use[i];
        }
    out->skin_fraction = 0;
    if (m == 0)
        goto done;
    /* Shadows and highlights: keep the 10th..90th percentiles of L* of the candidates. */
    double lo = basira_qa_quantile(w.L, use, n, 0, 100, 0.10);
    double hi = basira_qa_quantile(w.L, use, n, 0, 100, 0.90);
    m = 0;
    for (int i = 0; i < n; i++) {
        use[i] = use[i] && w.L[i] >= lo && w.L[i] <= hi;
        m += use[i];
    }
    out->skin_fraction = (double)m / n;
    if (m == 0)
        goto done;
    double L = basira_qa_quantile(w.L, use, n, 0, 100, 0.5);
    double B = basira_qa_quantile(w.B, use, n, 0, 128, 0.5);
    /* b* > 0 for every candidate, so B > 0 and the formula is defined. */
    if (B < 1e-3)
        B = 1e-3;
    out->ita = atan((L - 50.0) / B) * 180.0 / M_PI;
    if (out->skin_fraction >= MIN_SKIN_FRACTION)
        out->category = basira_skin_tone_category_from_ita(out->ita);
done:
    free(a);
    free(b);
    free(use);
    return rc;
}
