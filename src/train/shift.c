/*
 * shift.c - what another camera or clinic does to a dermoscopy photo, as image
 * operations: for training (--augment shift, random) and for checking a model
 * (`basira shift-check`, fixed and deterministic).
 *
 * A model that saw only one clinic's dermatoscopes learns its optics: the framing
 * (how large the lesion is in the photo), the stored aspect (ISIC 2017 kept its
 * photos as 256x256 squares, stretching 4:3 photos by 4/3), the sharpness, the JPEG
 * compression of the phone or archive, and the colour of the light. Each of these is
 * one operation here. The geometric part of the training augmentation (crop scale
 * and aspect, flips, quarter turns) is in augment.c; this file adds free rotation and
 * the pixel-level changes, applied after it.
 */
#include "basira/image.h"
#include "basira/train.h"
#include "core/i18n.h"
#include "train/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const shift_names[BASIRA_SHIFT_COUNT] = {
    "none", "squash", "blur", "jpeg", "colour", "scale", "rotate", "upright",
};

const char *basira_shift_name(basira_shift_kind k)
{
    return k >= 0 && k < BASIRA_SHIFT_COUNT ? shift_names[k] : "?";
}

int basira_shift_from_name(const char *s)
{
    for (int k = 0; s && k < BASIRA_SHIFT_COUNT; k++)
        if (!strcmp(s, shift_names[k]))
            return k;
    if (s && !strcmp(s, "color"))
        return BASIRA_SHIFT_COLOUR;
    return -1;
}

static inline uint8_t clamp_u8(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5 > 255 ? 255 : v + 0.5);
}

basira_code basira_rgb_blur(const uint8_t *src, int w, int h, double sigma, uint8_t *dst,
                            basira_error *err)
{
    if (!src || !dst || w <= 0 || h <= 0 || !(sigma >= 0 && sigma <= 50))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    int r = (int)ceil(3 * sigma);
    if (r == 0) {
        memcpy(dst, src, 3 * (size_t)w * h);
        return BASIRA_OK;
    }
    double *kern = malloc((size_t)(2 * r + 1) * sizeof *kern);
    double *tmp = malloc(3 * (size_t)w * h * sizeof *tmp);
    if (!kern || !tmp) {
        free(kern);
        free(tmp);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    double sum = 0;
    for (int i = -r; i <= r; i++)
        sum += kern[i + r] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        kern[i] /= sum;
    /* Separable: rows into tmp, then columns into dst; borders clamped. */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                    v += kern[i + r] * src[3 * ((size_t)y * w + xx) + c];
                }
                tmp[3 * ((size_t)y * w + x) + c] = v;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
                    v += kern[i + r] * tmp[3 * ((size_t)yy * w + x) + c];
                }
                dst[3 * ((size_t)y * w + x) + c] = clamp_u8(v);
            }
    free(kern);
    free(tmp);
    return BASIRA_OK;
}

basira_code basira_rgb_jpeg(const uint8_t *src, int w, int h, int quality, uint8_t *dst,
                            basira_error *err)
{
    if (!src || !dst || w <= 0 || h <= 0 || quality < 1 || quality > 100)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_image *img = NULL, *back = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    basira_code rc = basira_image_from_rgb(src, w, h, &img, err);
    if (!rc)
        rc = basira_image_encode_jpeg(img, quality, &buf, &len, err);
    if (!rc) {
        basira_intake_options io;
        basira_intake_options_default(&io);
        io.min_side = 1;
        rc = basira_image_load_buffer(buf, len, &io, &back, err);
    }
    if (!rc && (basira_image_width(back) != w || basira_image_height(back) != h))
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("JPEG round trip changed the size"));
    if (!rc)
        memcpy(dst, basira_image_pixels(back), 3 * (size_t)w * h);
    free(buf);
    basira_image_free(img);
    basira_image_free(back);
    return rc;
}

void basira_rgb_colour(const uint8_t *src, int w, int h, const double gain[3], double gamma,
                       uint8_t *dst)
{
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0 * gain[c];
            x = x < 0 ? 0 : x > 1 ? 1 : x;
            lut[c][v] = clamp_u8(255.0 * pow(x, gamma));
        }
    for (size_t i = 0; i < (size_t)w * h; i++)
        for (int c = 0; c < 3; c++)
            dst[3 * i + c] = lut[c][src[3 * i + c]];
}

/* Mirror a coordinate into [0, n - 1] (reflection without repeating the edge pixel). */
static double mirror(double v, int n)
{
    if (n == 1)
        return 0;
    double period = 2.0 * (n - 1);
    v = fmod(fabs(v), period);
    return v > n - 1 ? period - v : v;
}

void basira_rgb_rotate(const uint8_t *src, int w, int h, double degrees, uint8_t *dst)
{
    double th = degrees * M_PI / 180.0, c = cos(th), s = sin(th);
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* The output pixel taken back through the inverse rotation. */
            double dx = x - cx, dy = y - cy;
            double sx = mirror(cx + c * dx + s * dy, w), sy = mirror(cy - s * dx + c * dy, h);
            int x0 = (int)sx, y0 = (int)sy;
            int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
            double fx = sx - x0, fy = sy - y0;
            for (int ch = 0; ch < 3; ch++) {
                double a = src[3 * ((size_t)y0 * w + x0) + ch],
                       b = src[3 * ((size_t)y0 * w + x1) + ch];
                double d = src[3 * ((size_t)y1 * w + x0) + ch],
                       e = src[3 * ((size_t)y1 * w + x1) + ch];
                double top = a + (b - a) * fx, bot = d + (e - d) * fx;
                dst[3 * ((size_t)y * w + x) + ch] = clamp_u8(top + (bot - top) * fy);
            }
        }
}

/* A centred crop of cw x ch pixels into a new buffer. */
static basira_code crop_centre(const uint8_t *src, int w, int h, int cw, int ch, uint8_t **out,
                               basira_error *err)
{
    uint8_t *o = malloc(3 * (size_t)cw * ch);
    if (!o)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    int x0 = (w - cw) / 2, y0 = (h - ch) / 2;
    for (int y = 0; y < ch; y++)
        memcpy(o + 3 * (size_t)y * cw, src + 3 * ((size_t)(y0 + y) * w + x0), 3 * (size_t)cw);
    *out = o;
    return BASIRA_OK;
}

basira_code basira_shift_apply(basira_shift_kind k, const uint8_t *src, int w, int h, uint8_t **out,
                               int *ow, int *oh, basira_error *err)
{
    if (!src || !out || !ow || !oh || w <= 0 || h <= 0 || k < 0 || k >= BASIRA_SHIFT_COUNT)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (k == BASIRA_SHIFT_SQUASH || k == BASIRA_SHIFT_SCALE) {
        int cw = k == BASIRA_SHIFT_SCALE ? (int)lround(0.7 * w) : (w < h ? w : h);
        int ch = k == BASIRA_SHIFT_SCALE ? (int)lround(0.7 * h) : cw;
        *ow = cw > 0 ? cw : 1;
        *oh = ch > 0 ? ch : 1;
        return crop_centre(src, w, h, *ow, *oh, out, err);
    }
    if (k == BASIRA_SHIFT_UPRIGHT) {
        /* A portrait photo of a landscape-trained model: the model's preprocessing turns
         * it back for a non-square input (basira_preprocess_fit), and squashes it the
         * other way for a square one. */
        uint8_t *o = malloc(3 * (size_t)w * h);
        if (!o)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        basira_rgb_rot90(src, w, h, o);
        *out = o;
        *ow = h;
        *oh = w;
        return BASIRA_OK;
    }
    uint8_t *o = malloc(3 * (size_t)w * h);
    if (!o)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = BASIRA_OK;
    static const double warm[3] = {1.12, 1.0, 0.88};
    switch (k) {
    case BASIRA_SHIFT_BLUR:
        /* 1.5 px at 200 px wide, scaled with the photo: the same softness at any size. */
        rc = basira_rgb_blur(src, w, h, 1.5 * w / 200.0, o, err);
        break;
    case BASIRA_SHIFT_JPEG:
        rc = basira_rgb_jpeg(src, w, h, 40, o, err);
        break;
    case BASIRA_SHIFT_COLOUR:
        basira_rgb_colour(src, w, h, warm, 0.8, o);
        break;
    case BASIRA_SHIFT_ROTATE:
        basira_rgb_rotate(src, w, h, 30.0, o);
        break;
    default:
        memcpy(o, src, 3 * (size_t)w * h);
        break;
    }
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *ow = w;
    *oh = h;
    return BASIRA_OK;
}

basira_code basira_shift_augment(uint8_t *rgb, int w, int h, uint64_t seed, basira_error *err)
{
    if (!rgb || w <= 0 || h <= 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    uint64_t rs = seed;
    /* Every draw is made whether used or not: each image's parameters depend on the seed
     * alone, not on which earlier operations happened to fire. */
    double angle = basira_rng_range(&rs, -45.0, 45.0), u_rot = basira_rng_uniform(&rs);
    double sigma = basira_rng_range(&rs, 0.3, 1.2) * w / 128.0, u_blur = basira_rng_uniform(&rs);
    int quality = 30 + (int)basira_rng_below(&rs, 61), u_jpeg = basira_rng_uniform(&rs) < 0.3;
    double gain[3];
    for (int c = 0; c < 3; c++)
        gain[c] = basira_rng_range(&rs, 0.9, 1.1);
    double gamma = exp(basira_rng_range(&rs, log(0.8), log(1.25)));
    uint8_t *tmp = malloc(3 * (size_t)w * h);
    if (!tmp)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = BASIRA_OK;
    if (u_rot < 0.5) {
        basira_rgb_rotate(rgb, w, h, angle, tmp);
        memcpy(rgb, tmp, 3 * (size_t)w * h);
    }
    if (u_blur < 0.3 && !(rc = basira_rgb_blur(rgb, w, h, sigma, tmp, err)))
        memcpy(rgb, tmp, 3 * (size_t)w * h);
    if (!rc && u_jpeg && !(rc = basira_rgb_jpeg(rgb, w, h, quality, tmp, err)))
        memcpy(rgb, tmp, 3 * (size_t)w * h);
    if (!rc)
        basira_rgb_colour(rgb, w, h, gain, gamma, rgb);
    free(tmp);
    return rc;
}
