/*
 * augment.c - random augmentation of packed RGB images for training.
 *
 * Dermoscopy images have no "up": a lesion looks the same flipped or turned by
 * a quarter, so flips and 90-degree rotations (half turns only, for a non-square
 * image) are free extra data. Random
 * resized crops teach scale and position invariance; brightness, contrast,
 * saturation and (a little) hue jitter imitate different dermatoscopes and
 * lighting. Hue moves stay small because colour itself is diagnostic (blue-white
 * veil, red vascular lesions).
 *
 * Geometry is done in one pass: every output pixel is mapped back through the
 * rotation, the flips and the crop to a source position sampled bilinearly, so
 * the image is resampled once. Colour changes are all linear in RGB and are
 * composed into one 3x3 matrix plus offset per image.
 */
#include "basira/train.h"
#include "core/i18n.h"
#include "train/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

basira_code basira_augment_parse(const char *s, basira_augment_mode *out, basira_error *err)
{
    if (!s || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!strcmp(s, "none"))
        *out = BASIRA_AUGMENT_NONE;
    else if (!strcmp(s, "light"))
        *out = BASIRA_AUGMENT_LIGHT;
    else if (!strcmp(s, "dermoscopy"))
        *out = BASIRA_AUGMENT_DERMOSCOPY;
    else if (!strcmp(s, "modality"))
        *out = BASIRA_AUGMENT_MODALITY;
    else if (!strcmp(s, "shift"))
        *out = BASIRA_AUGMENT_SHIFT;
    else
        return basira_error_set(
            err, BASIRA_E_INVALID_ARGUMENT,
            _("unknown augmentation '%s' (expected none, light, dermoscopy, modality or shift)"),
            s);
    return BASIRA_OK;
}

void basira_augment_identity(int src_w, int src_h, basira_augment_params *p)
{
    memset(p, 0, sizeof *p);
    p->crop_w = src_w;
    p->crop_h = src_h;
    p->brightness = p->contrast = p->saturation = 1.0;
}

/* Random resized crop: area share in [smin, 1], aspect ratio in [amin, amax] (log-uniform). */
static void sample_crop(uint64_t *rs, int w, int h, double smin, double amin, double amax,
                        basira_augment_params *p)
{
    double area = basira_rng_range(rs, smin, 1.0) * w * h;
    double ratio = exp(basira_rng_range(rs, log(amin), log(amax)));
    double cw = sqrt(area * ratio), ch = sqrt(area / ratio);
    if (cw > w)
        cw = w;
    if (ch > h)
        ch = h;
    p->crop_w = cw;
    p->crop_h = ch;
    p->crop_x = basira_rng_range(rs, 0.0, w - cw);
    p->crop_y = basira_rng_range(rs, 0.0, h - ch);
}

void basira_augment_sample(basira_augment_mode mode, int src_w, int src_h, uint64_t seed,
                           basira_augment_params *p)
{
    basira_augment_identity(src_w, src_h, p);
    uint64_t rs = seed;
    switch (mode) {
    case BASIRA_AUGMENT_NONE:
        break;
    case BASIRA_AUGMENT_LIGHT:
        sample_crop(&rs, src_w, src_h, 0.8, 0.9, 1.0 / 0.9, p);
        p->flip_h = (int)basira_rng_below(&rs, 2);
        p->flip_v = (int)basira_rng_below(&rs, 2);
        p->brightness = basira_rng_range(&rs, 0.9, 1.1);
        p->contrast = basira_rng_range(&rs, 0.9, 1.1);
        p->saturation = basira_rng_range(&rs, 0.9, 1.1);
        break;
    case BASIRA_AUGMENT_DERMOSCOPY:
    case BASIRA_AUGMENT_SHIFT:
        /* Other cameras frame the lesion larger or smaller and store other aspects
         * (ISIC 2017 squashed every photo to a square): shift draws a wider range. */
        if (mode == BASIRA_AUGMENT_SHIFT)
            sample_crop(&rs, src_w, src_h, 0.35, 9.0 / 16.0, 16.0 / 9.0, p);
        else
            sample_crop(&rs, src_w, src_h, 0.6, 3.0 / 4.0, 4.0 / 3.0, p);
        p->flip_h = (int)basira_rng_below(&rs, 2);
        p->flip_v = (int)basira_rng_below(&rs, 2);
        p->rot90 = (int)basira_rng_below(&rs, 4);
        p->brightness = basira_rng_range(&rs, 0.8, 1.2);
        p->contrast = basira_rng_range(&rs, 0.8, 1.2);
        p->saturation = basira_rng_range(&rs, 0.8, 1.2);
        p->hue = basira_rng_range(&rs, -0.02, 0.02);
        break;
    case BASIRA_AUGMENT_MODALITY:
        /* The photo-kind detector must not learn the sources' trivial cues (sharpness,
         * JPEG noise, one dataset's white balance): wide crops, strong colour jitter,
         * blur and noise, so only the look of the skin and the optics remain. */
        sample_crop(&rs, src_w, src_h, 0.3, 3.0 / 4.0, 4.0 / 3.0, p);
        p->flip_h = (int)basira_rng_below(&rs, 2);
        p->flip_v = (int)basira_rng_below(&rs, 2);
        p->rot90 = (int)basira_rng_below(&rs, 4);
        p->brightness = basira_rng_range(&rs, 0.7, 1.3);
        p->contrast = basira_rng_range(&rs, 0.7, 1.3);
        p->saturation = basira_rng_range(&rs, 0.7, 1.3);
        p->hue = basira_rng_range(&rs, -0.05, 0.05);
        p->blur = (int)basira_rng_below(&rs, 3);
        p->noise = basira_rng_below(&rs, 2) ? basira_rng_range(&rs, 0.0, 12.0) : 0.0;
        p->noise_seed = basira_rng_next(&rs);
        break;
    }
    /* A quarter turn maps a 4:3 crop onto a 4:3 output stretched by 16:9: for a
     * non-square image keep only the half turn (the flips already give it). The draw
     * itself is kept, so square images see the same random stream as before. */
    if (src_w != src_h)
        p->rot90 &= 2;
}

/* passes x a separable [1 2 1]/4 blur, edges clamped. */
static basira_code blur_passes(uint8_t *rgb, int w, int h, int passes, basira_error *err)
{
    if (passes <= 0)
        return BASIRA_OK;
    uint8_t *tmp = malloc(3 * (size_t)w * (size_t)h);
    if (!tmp)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (int k = 0; k < passes; k++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int xa = x > 0 ? x - 1 : x, xb = x + 1 < w ? x + 1 : x;
                for (int c = 0; c < 3; c++)
                    tmp[3 * ((size_t)y * w + x) + c] =
                        (uint8_t)((rgb[3 * ((size_t)y * w + xa) + c] +
                                   2 * rgb[3 * ((size_t)y * w + x) + c] +
                                   rgb[3 * ((size_t)y * w + xb) + c] + 2) >>
                                  2);
            }
        for (int y = 0; y < h; y++) {
            int ya = y > 0 ? y - 1 : y, yb = y + 1 < h ? y + 1 : y;
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    rgb[3 * ((size_t)y * w + x) + c] =
                        (uint8_t)((tmp[3 * ((size_t)ya * w + x) + c] +
                                   2 * tmp[3 * ((size_t)y * w + x) + c] +
                                   tmp[3 * ((size_t)yb * w + x) + c] + 2) >>
                                  2);
        }
    }
    free(tmp);
    return BASIRA_OK;
}

/* Uniform noise in [-amp, amp] on every channel, drawn from seed. */
static void add_noise(uint8_t *rgb, size_t n, double amp, uint64_t seed)
{
    if (!(amp > 0))
        return;
    uint64_t rs = seed;
    for (size_t i = 0; i < n; i++) {
        double v = rgb[i] + basira_rng_range(&rs, -amp, amp);
        rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5 > 255 ? 255 : v + 0.5);
    }
}

static void mat3_mul(const double a[9], const double b[9], double out[9])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            out[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
}

static void mat3_inverse(const double m[9], double out[9])
{
    double c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8],
           c02 = m[3] * m[7] - m[4] * m[6];
    double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
    out[0] = c00 / det;
    out[1] = (m[2] * m[7] - m[1] * m[8]) / det;
    out[2] = (m[1] * m[5] - m[2] * m[4]) / det;
    out[3] = c01 / det;
    out[4] = (m[0] * m[8] - m[2] * m[6]) / det;
    out[5] = (m[2] * m[3] - m[0] * m[5]) / det;
    out[6] = c02 / det;
    out[7] = (m[1] * m[6] - m[0] * m[7]) / det;
    out[8] = (m[0] * m[4] - m[1] * m[3]) / det;
}

/* Brightness, contrast (around the mean grey level), saturation and hue as one affine map. */
static void colour_jitter(const basira_augment_params *p, uint8_t *rgb, size_t npix)
{
    if (p->brightness == 1.0 && p->contrast == 1.0 && p->saturation == 1.0 && p->hue == 0.0)
        return;
    double mean = 0;
    for (size_t i = 0; i < npix; i++)
        mean += 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
    mean = npix ? mean / (double)npix * p->brightness : 0;

    /* Saturation: grey + s * (c - grey). */
    const double gr[3] = {0.299, 0.587, 0.114};
    double sat[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            sat[i * 3 + j] = (1.0 - p->saturation) * gr[j] + (i == j ? p->saturation : 0.0);
    /* Hue: rotate the chroma plane (I, Q) of YIQ; grey (Y only) is left alone. */
    static const double yiq[9] = {0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312};
    double yiq_inv[9], rot[9], t[9], hue[9], m[9];
    mat3_inverse(yiq, yiq_inv);
    double th = 2.0 * M_PI * p->hue;
    const double r[9] = {1, 0, 0, 0, cos(th), -sin(th), 0, sin(th), cos(th)};
    memcpy(rot, r, sizeof rot);
    mat3_mul(rot, yiq, t);
    mat3_mul(yiq_inv, t, hue);
    mat3_mul(hue, sat, m);
    double k = p->contrast * p->brightness;
    for (int i = 0; i < 9; i++)
        m[i] *= k;
    /* Grey maps to grey through both matrices, so the contrast offset is the same on R, G, B. */
    double off = (1.0 - p->contrast) * mean;
    for (size_t i = 0; i < npix; i++) {
        double c0 = rgb[3 * i], c1 = rgb[3 * i + 1], c2 = rgb[3 * i + 2];
        for (int ch = 0; ch < 3; ch++) {
            double v = m[ch * 3] * c0 + m[ch * 3 + 1] * c1 + m[ch * 3 + 2] * c2 + off;
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            rgb[3 * i + ch] = (uint8_t)(v + 0.5 > 255 ? 255 : v + 0.5);
        }
    }
}

basira_code basira_augment_apply(const basira_augment_params *p, const uint8_t *src, int src_w,
                                 int src_h, uint8_t *dst, int dst_w, int dst_h, basira_error *err)
{
    if (!p || !src || !dst || src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!(p->crop_w > 0 && p->crop_h > 0 && p->crop_x >= 0 && p->crop_y >= 0 &&
          p->crop_x + p->crop_w <= src_w + 1e-9 && p->crop_y + p->crop_h <= src_h + 1e-9) ||
        p->rot90 < 0 || p->rot90 > 3 || !(p->brightness >= 0) || !(p->contrast >= 0) ||
        !(p->saturation >= 0) || !(fabs(p->hue) <= 0.5) || p->blur < 0 || p->blur > 3 ||
        !(p->noise >= 0 && p->noise <= 32))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("augmentation parameters out of range"));
    for (int oy = 0; oy < dst_h; oy++) {
        for (int ox = 0; ox < dst_w; ox++) {
            /* Normalised output position, taken back through rotation then flips. */
            double u = (ox + 0.5) / dst_w, v = (oy + 0.5) / dst_h;
            for (int k = 0; k < p->rot90; k++) {
                double t = u;
                u = v;
                v = 1.0 - t;
            }
            if (p->flip_v)
                v = 1.0 - v;
            if (p->flip_h)
                u = 1.0 - u;
            double x = p->crop_x + u * p->crop_w - 0.5, y = p->crop_y + v * p->crop_h - 0.5;
            x = x < 0 ? 0 : x > src_w - 1 ? src_w - 1 : x;
            y = y < 0 ? 0 : y > src_h - 1 ? src_h - 1 : y;
            int x0 = (int)x, y0 = (int)y;
            int x1 = x0 + 1 < src_w ? x0 + 1 : x0, y1 = y0 + 1 < src_h ? y0 + 1 : y0;
            double fx = x - x0, fy = y - y0;
            const uint8_t *a = src + 3 * ((size_t)y0 * src_w + x0);
            const uint8_t *b = src + 3 * ((size_t)y0 * src_w + x1);
            const uint8_t *c = src + 3 * ((size_t)y1 * src_w + x0);
            const uint8_t *d = src + 3 * ((size_t)y1 * src_w + x1);
            uint8_t *o = dst + 3 * ((size_t)oy * dst_w + ox);
            for (int ch = 0; ch < 3; ch++) {
                double top = a[ch] + (b[ch] - a[ch]) * fx;
                double bot = c[ch] + (d[ch] - c[ch]) * fx;
                o[ch] = (uint8_t)(top + (bot - top) * fy + 0.5);
            }
        }
    }
    colour_jitter(p, dst, (size_t)dst_w * dst_h);
    basira_code rc = blur_passes(dst, dst_w, dst_h, p->blur, err);
    if (rc)
        return rc;
    add_noise(dst, 3 * (size_t)dst_w * dst_h, p->noise, p->noise_seed);
    return BASIRA_OK;
}
