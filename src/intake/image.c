/*
 * image.c - the decoded photo (packed 8-bit RGB) and its resizing, without libvips.
 *
 * Downsizing, the only resizing a photo's path needs (the quality gate at 200 px,
 * the models at 128 to 224 px), is libvips' own arithmetic (resample.c), so that
 * programs without libvips (`basira-triage`) size photos exactly as the clinic
 * node does. Enlarging a picture smaller than its target is left to libvips
 * (intake_vips_enlarge, intake.c).
 */
#include "basira/image.h"
#include "core/i18n.h"
#include "intake_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the image object ------------------------------------------------------- */

static basira_code image_alloc(int w, int h, basira_image **out, basira_error *err)
{
    if (w <= 0 || h <= 0 || (size_t)w > SIZE_MAX / 3 / (size_t)h)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("invalid image size %d x %d"),
                                 w, h);
    basira_image *img = calloc(1, sizeof *img);
    if (!img)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    img->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!img->rgb) {
        free(img);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    img->width = img->orig_width = w;
    img->height = img->orig_height = h;
    *out = img;
    return BASIRA_OK;
}

void basira_image_free(basira_image *img)
{
    if (!img)
        return;
    if (img->release)
        img->release(img->rgb);
    else
        free(img->rgb);
    free(img);
}

int basira_image_width(const basira_image *img)
{
    return img ? img->width : 0;
}

int basira_image_height(const basira_image *img)
{
    return img ? img->height : 0;
}

const uint8_t *basira_image_pixels(const basira_image *img)
{
    return img ? img->rgb : NULL;
}

int basira_image_original_width(const basira_image *img)
{
    return img ? img->orig_width : 0;
}

int basira_image_original_height(const basira_image *img)
{
    return img ? img->orig_height : 0;
}

basira_code basira_image_from_rgb(const uint8_t *rgb, int width, int height, basira_image **out,
                                  basira_error *err)
{
    if (!out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (!rgb)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("no pixels given"));
    basira_code rc = image_alloc(width, height, out, err);
    if (rc)
        return rc;
    memcpy((*out)->rgb, rgb, (size_t)width * (size_t)height * 3);
    return BASIRA_OK;
}

/* ---- resizing --------------------------------------------------------------------- */

/* Wrap a malloc()ed result of resample.c as an image (taking it). */
static basira_code adopt(uint8_t *px, int w, int h, const basira_image *from, basira_image **out,
                         basira_error *err)
{
    basira_image *img = calloc(1, sizeof *img);
    if (!img) {
        free(px);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    img->rgb = px;
    img->width = w;
    img->height = h;
    img->orig_width = from->orig_width;
    img->orig_height = from->orig_height;
    *out = img;
    return BASIRA_OK;
}

/*
 * Downsizing, the way vips_resize() does it: a box shrink by the largest whole
 * factor that leaves at least a further x2 (averaging every source pixel, so no
 * aliasing), then a Lanczos-3 reduce for the rest (intake_shrink_reduce). Through
 * libvips 8.14, vips_resize() put a threaded tile cache between the two steps,
 * which on a 1000 x 750 photo made it over 3 times slower than the steps
 * themselves (bench/resize); resample.c computes the steps' very bytes (tests/
 * intake/test_resample.c). Rounding can leave the result one pixel off, so the
 * exact size is then cut or padded by repeating the edge (vips_gravity, extend
 * copy).
 */
basira_code basira_image_resize(const basira_image *img, int width, int height, basira_image **out,
                                basira_error *err)
{
    if (!img || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    if (width <= 0 || height <= 0 || width > INTAKE_MAX_SIDE_LIMIT ||
        height > INTAKE_MAX_SIDE_LIMIT)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("invalid image size %d x %d"),
                                 width, height);
    double hs = (double)width / img->width, vs = (double)height / img->height;
    if (hs > 1 || vs > 1)
        return intake_vips_enlarge(img, width, height, hs, vs, out, err);
    uint8_t *px = NULL, *fit = NULL;
    int w = 0, h = 0;
    if (intake_shrink_reduce(img->rgb, img->width, img->height, hs, vs, &px, &w, &h))
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("the image could not be resized"));
    if (w != width || h != height) {
        int r = intake_extend_copy(px, w, h, width, height, &fit);
        free(px);
        if (r)
            return basira_error_setm(err, BASIRA_E_INTERNAL, N_("the image could not be resized"));
        px = fit;
    }
    return adopt(px, width, height, img, out, err);
}
