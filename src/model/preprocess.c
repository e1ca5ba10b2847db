/*
 * preprocess.c - a photo to the classifier's input tensor (see include/basira/model.h).
 *
 * The same code runs in training (engineer "train" calls basira_preprocess_rgb on
 * augmented crops) and in use (basira_preprocess_image), so the network always sees
 * pixels prepared the same way. Any change here changes what every stored model
 * expects: the parameters are therefore stored in the model file, never implied.
 */
#include "basira/model.h"
#include "basira/rgb.h"
#include "core/i18n.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest input side we accept from a model file; keeps the tensor small and bounded. */
#define PREPROCESS_MAX_SIDE 1024
#define PREPROCESS_MIN_SIDE 8

/*
 * Limits on the colour-constancy gains. A nearly black channel (a photo taken under
 * a strongly coloured light, or a synthetic image) would otherwise get a gain of
 * hundreds and turn sensor noise into a saturated colour. Four times is far beyond
 * any real white-balance error of a phone camera, so genuine casts are still removed.
 */
#define CC_GAIN_MIN 0.25
#define CC_GAIN_MAX 4.0

void basira_preprocess_default(basira_preprocess *p)
{
    if (!p)
        return;
    /* ImageNet statistics: the usual starting point, kept for models fine-tuned from them. */
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float std[3] = {0.229f, 0.224f, 0.225f};
    p->input_w = 128;
    p->input_h = 128;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->colour_constancy = BASIRA_CC_SHADES_OF_GRAY;
}

/* ---- JSON ------------------------------------------------------------------ */

static int json_side(const json_t *v, int *out)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t s = json_integer_value(v);
    if (s < PREPROCESS_MIN_SIDE || s > PREPROCESS_MAX_SIDE)
        return -1;
    *out = (int)s;
    return 0;
}

static int json_triple(const json_t *v, float out[3])
{
    if (!json_is_array(v) || json_array_size(v) != 3)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_number(x))
            return -1;
        double d = json_number_value(x);
        if (!isfinite(d) || fabs(d) > 1e6)
            return -1;
        out[i] = (float)d;
    }
    return 0;
}

basira_code basira_preprocess_from_json(const json_t *j, basira_preprocess *out, basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!json_is_object(j))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model preprocessing: expected a JSON object"));
    basira_preprocess p;
    /* "input_size": 128 (square) or [w, h]. */
    const json_t *size = json_object_get(j, "input_size");
    if (json_is_integer(size)) {
        if (json_side(size, &p.input_w))
            goto bad_size;
        p.input_h = p.input_w;
    } else if (json_is_array(size) && json_array_size(size) == 2) {
        if (json_side(json_array_get(size, 0), &p.input_w) ||
            json_side(json_array_get(size, 1), &p.input_h))
            goto bad_size;
    } else {
        goto bad_size;
    }
    if (json_triple(json_object_get(j, "mean"), p.mean))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model preprocessing: \"mean\" must be an array of 3 numbers"));
    if (json_triple(json_object_get(j, "std"), p.std) || !(p.std[0] > 0) || !(p.std[1] > 0) ||
        !(p.std[2] > 0))
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model preprocessing: \"std\" must be an array of 3 positive numbers"));
    const char *cc = json_string_value(json_object_get(j, "colour_constancy"));
    if (cc && !strcmp(cc, "shades_of_gray"))
        p.colour_constancy = BASIRA_CC_SHADES_OF_GRAY;
    else if (cc && !strcmp(cc, "none"))
        p.colour_constancy = BASIRA_CC_NONE;
    else
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model preprocessing: \"colour_constancy\" must be "
                                  "\"shades_of_gray\" or \"none\""));
    *out = p;
    return BASIRA_OK;
bad_size:
    return basira_error_set(err, BASIRA_E_MODEL,
                            _("model preprocessing: \"input_size\" must be a side or [width, "
                              "height] between %d and %d pixels"),
                            PREPROCESS_MIN_SIDE, PREPROCESS_MAX_SIDE);
}

json_t *basira_preprocess_to_json(const basira_preprocess *p)
{
    if (!p)
        return NULL;
    const char *cc = p->colour_constancy == BASIRA_CC_SHADES_OF_GRAY ? "shades_of_gray" : "none";
    return json_pack("{s:[i,i], s:[f,f,f], s:[f,f,f], s:s}", "input_size", p->input_w, p->input_h,
                     "mean", (double)p->mean[0], (double)p->mean[1], (double)p->mean[2], "std",
                     (double)p->std[0], (double)p->std[1], (double)p->std[2], "colour_constancy",
                     cc);
}

/* ---- colour constancy ------------------------------------------------------ */

/*
 * Shades of Gray (Finlayson & Trezzi 2004) with p = 6: the illuminant of each channel
 * is estimated by its Minkowski-6 mean, which sits between the grey-world mean (p = 1)
 * and white-patch max (p = inf) and is the best single setting reported for dermoscopy
 * (Barata et al. 2015, used by ISIC challenge winners). Gains map the estimate to grey;
 * they are then scaled together so the mean luminance (Rec. 709 weights) of the photo
 * does not change: colour constancy must correct the hue of the light, not the exposure,
 * which the quality gate judges separately.
 *
 * Writes gains[3]; all 1 when the image carries no usable colour (black, or cc NONE).
 */
static void cc_gains(basira_colour_constancy cc, const unsigned char *rgb, size_t npix,
                     double gains[3])
{
    gains[0] = gains[1] = gains[2] = 1.0;
    if (cc != BASIRA_CC_SHADES_OF_GRAY || !rgb || npix == 0)
        return;
    double pow6[256];
    for (int v = 0; v < 256; v++) {
        double x = v / 255.0, x2 = x * x;
        pow6[v] = x2 * x2 * x2;
    }
    double acc[3] = {0, 0, 0}, sum[3] = {0, 0, 0};
    for (size_t i = 0; i < npix; i++) {
        for (int c = 0; c < 3; c++) {
            unsigned char v = rgb[3 * i + (size_t)c];
            acc[c] += pow6[v];
            sum[c] += v;
        }
    }
    double m[3], grey = 0;
    for (int c = 0; c < 3; c++) {
        m[c] = pow(acc[c] / (double)npix, 1.0 / 6.0);
        grey += m[c] / 3.0;
    }
    if (!(grey > 1e-6))
        return; /* black image: nothing to correct */
    static const double lum[3] = {0.2126, 0.7152, 0.0722};
    double lum_in = 0, lum_out = 0;
    for (int c = 0; c < 3; c++) {
        double g = m[c] > 1e-6 ? grey / m[c] : CC_GAIN_MAX;
        if (g < CC_GAIN_MIN)
            g = CC_GAIN_MIN;
        if (g > CC_GAIN_MAX)
            g = CC_GAIN_MAX;
        gains[c] = g;
        lum_in += lum[c] * sum[c];
        lum_out += lum[c] * sum[c] * g;
    }
    if (lum_out > 0) {
        double s = lum_in / lum_out;
        for (int c = 0; c < 3; c++)
            gains[c] *= s;
    }
}

static inline unsigned char apply_gain(unsigned char v, double g)
{
    double x = v * g + 0.5;
    if (x <= 0)
        return 0;
    if (x >= 255)
        return 255;
    return (unsigned char)x;
}

void basira_colour_constancy_apply(basira_colour_constancy cc, unsigned char *rgb, int w, int h)
{
    if (!rgb || w <= 0 || h <= 0 || cc != BASIRA_CC_SHADES_OF_GRAY)
        return;
    size_t npix = (size_t)w * (size_t)h;
    double g[3];
    cc_gains(cc, rgb, npix, g);
    for (size_t i = 0; i < npix; i++)
        for (int c = 0; c < 3; c++)
            rgb[3 * i + (size_t)c] = apply_gain(rgb[3 * i + (size_t)c], g[c]);
}

/* ---- normalisation ---------------------------------------------------------- */

/*
 * Colour constancy and normalisation in one pass, without a copy of the pixels: the
 * gains are computed first, then each corrected byte (rounded and clamped exactly as
 * basira_colour_constancy_apply does, so both paths give identical tensors) goes
 * through a 256-entry table of (v/255 - mean) / std per channel.
 */
void basira_preprocess_rgb(const basira_preprocess *p, const unsigned char *rgb, float *chw)
{
    if (!p || !rgb || !chw || p->input_w <= 0 || p->input_h <= 0)
        return;
    size_t npix = (size_t)p->input_w * (size_t)p->input_h;
    double g[3];
    cc_gains(p->colour_constancy, rgb, npix, g);
    for (int c = 0; c < 3; c++) {
        float table[256];
        float inv_std = p->std[c] != 0 ? 1.0f / p->std[c] : 1.0f;
        for (int v = 0; v < 256; v++) {
            unsigned char cv = apply_gain((unsigned char)v, g[c]);
            table[v] = ((float)cv / 255.0f - p->mean[c]) * inv_std;
        }
        float *plane = chw + (size_t)c * npix;
        for (size_t i = 0; i < npix; i++)
            plane[i] = table[rgb[3 * i + (size_t)c]];
    }
}

int basira_preprocess_turns(int iw, int ih, int w, int h)
{
    return w != h && iw != ih && (iw > ih) != (w > h);
}

basira_code basira_preprocess_fit(const basira_image *img, int w, int h, basira_image **out,
                                  basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (!img || w <= 0 || h <= 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("preprocessing: missing image or invalid size"));
    int iw = basira_image_width(img), ih = basira_image_height(img);
    if (!basira_preprocess_turns(iw, ih, w, h))
        return basira_image_resize(img, w, h, out, err);
    /* Clockwise: the turned photo is ih wide and iw high. */
    const uint8_t *src = basira_image_pixels(img);
    uint8_t *px = malloc(3 * (size_t)iw * (size_t)ih);
    if (!src || !px) {
        free(px);
        return basira_error_set(err, src ? BASIRA_E_NOMEM : BASIRA_E_INVALID_ARGUMENT, NULL);
    }
    basira_rgb_rot90(src, iw, ih, px);
    basira_image *turned = NULL;
    basira_code rc = basira_image_from_rgb(px, ih, iw, &turned, err);
    free(px);
    if (rc)
        return rc;
    if (ih == w && iw == h) {
        *out = turned;
        return BASIRA_OK;
    }
    rc = basira_image_resize(turned, w, h, out, err);
    basira_image_free(turned);
    return rc;
}

basira_code basira_preprocess_image(const basira_preprocess *p, const basira_image *img, float *chw,
                                    basira_error *err)
{
    if (!p || !img || !chw)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("preprocessing: missing parameters, image or output"));
    if (p->input_w < PREPROCESS_MIN_SIDE || p->input_h < PREPROCESS_MIN_SIDE ||
        p->input_w > PREPROCESS_MAX_SIDE || p->input_h > PREPROCESS_MAX_SIDE ||
        !(p->std[0] > 0 && p->std[1] > 0 && p->std[2] > 0))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("preprocessing: invalid input size or standard deviation"));
    int w = basira_image_width(img), h = basira_image_height(img);
    if (w <= 0 || h <= 0 || !basira_image_pixels(img))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("preprocessing: empty image"));
    if (w == p->input_w && h == p->input_h) {
        basira_preprocess_rgb(p, basira_image_pixels(img), chw);
        return BASIRA_OK;
    }
    /*
     * The whole photo is resized (aspect not kept) rather than centre-cropped: a lesion
     * near the edge of a phone photo must never be cut away. The network is trained on
     * the same distortion (a portrait photo for a landscape input is turned first).
     */
    basira_image *small = NULL;
    basira_code rc = basira_preprocess_fit(img, p->input_w, p->input_h, &small, err);
    if (rc)
        return rc;
    basira_preprocess_rgb(p, basira_image_pixels(small), chw);
    basira_image_free(small);
    return BASIRA_OK;
}
