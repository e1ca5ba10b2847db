/*
 * novips.c - intake's libvips side, for a program linked without libvips.
 *
 * `basira-triage` decodes the common phone JPEG itself (jpeg.c) and never loads
 * libvips, whose hundred shared libraries would cost it a third of its time
 * (issue 17). Any other photo is refused here with a clear message; triage_main.c
 * looks at its photos before it starts and hands a run with such a photo to
 * `basira triage`, so a user never meets this refusal in practice.
 */
#include "basira/image.h"
#include "core/i18n.h"
#include "intake_internal.h"

static basira_code needs_basira(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                             N_("this photo needs the full program: run `basira triage` on it"));
}

basira_code intake_vips_load(const void *data, size_t len, const basira_intake_options *o,
                             basira_image **out, basira_error *err)
{
    (void)data;
    (void)len;
    (void)o;
    *out = NULL;
    return needs_basira(err);
}

basira_code intake_vips_enlarge(const basira_image *img, int width, int height, double hs,
                                double vs, basira_image **out, basira_error *err)
{
    (void)img;
    (void)width;
    (void)height;
    (void)hs;
    (void)vs;
    *out = NULL;
    return needs_basira(err);
}

basira_code basira_image_encode_jpeg(const basira_image *img, int quality, uint8_t **buf,
                                     size_t *len, basira_error *err)
{
    (void)img;
    (void)quality;
    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    return needs_basira(err);
}
