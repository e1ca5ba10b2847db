/*
 * load.c - a clinician's photo in, a clean 8-bit sRGB image out: the checks, in order.
 *
 * The order of the checks matters for safety: everything that can be decided
 * without decoding pixels (byte size, format, header dimensions, page count) is
 * decided first, so a hostile file is refused before it can cost memory or time.
 * Only then are pixels decoded, shrunk while loading (JPEG DCT scaling): a 48 MP
 * photo is never held at full size in memory.
 *
 * The common phone photo (a JPEG in sRGB) is decoded with libjpeg directly
 * (jpeg.c), exactly as libvips would; everything else goes through libvips
 * (intake.c). A program linked without libvips (`basira-triage`, novips.c) refuses
 * those others, and runs `basira triage` for them instead (triage_main.c).
 */
#include "basira/image.h"
#include "core/i18n.h"
#include "core/memory.h"
#include "intake_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MAX_FILE_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_PIXELS ((uint64_t)100000000)
#define DEFAULT_MIN_SIDE 64
#define DEFAULT_MAX_SIDE 1024
#define DEFAULT_MAX_DECODE_BYTES ((size_t)256 << 20)
#define DEFAULT_MAX_SECONDS 20.0
/* How much of a file basira_image_file_reads_without_vips() reads. */
#define PROBE_PREFIX_BYTES ((size_t)1 << 20)

/* ---- options ---------------------------------------------------------------- */

void basira_intake_options_default(basira_intake_options *opts)
{
    if (!opts)
        return;
    opts->max_file_bytes = DEFAULT_MAX_FILE_BYTES;
    opts->max_pixels = DEFAULT_MAX_PIXELS;
    opts->min_side = DEFAULT_MIN_SIDE;
    opts->max_side = DEFAULT_MAX_SIDE;
    opts->max_decode_bytes = DEFAULT_MAX_DECODE_BYTES;
    opts->max_seconds = DEFAULT_MAX_SECONDS;
    opts->budget = NULL;
    opts->decode_helper = NULL;
}

static basira_code resolve_options(const basira_intake_options *in, basira_intake_options *o,
                                   basira_error *err)
{
    basira_intake_options_default(o);
    if (!in)
        return BASIRA_OK;
    if (in->min_side < 0 || in->max_side < 0)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("image size limits must not be negative"));
    if (in->max_file_bytes)
        o->max_file_bytes = in->max_file_bytes;
    if (in->max_pixels)
        o->max_pixels = in->max_pixels;
    if (in->min_side)
        o->min_side = in->min_side;
    if (in->max_side)
        o->max_side = in->max_side;
    if (in->max_decode_bytes)
        o->max_decode_bytes = in->max_decode_bytes;
    if (in->max_seconds < 0 || in->max_seconds != in->max_seconds)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the decoding time limit must not be negative"));
    if (in->max_seconds > 0)
        o->max_seconds = in->max_seconds;
    o->budget = in->budget;
    o->decode_helper = in->decode_helper;
    if (o->budget && o->max_decode_bytes > basira_decode_budget_total(o->budget))
        o->max_decode_bytes = basira_decode_budget_total(o->budget);
    if (o->max_side > INTAKE_MAX_SIDE_LIMIT)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("the largest allowed image side is %d pixels"),
                                 INTAKE_MAX_SIDE_LIMIT);
    return BASIRA_OK;
}

/* ---- the header's limits ---------------------------------------------------------- */

basira_code intake_check_header(const intake_header *hd, const basira_intake_options *o,
                                size_t *cost, basira_error *err)
{
    int w = hd->width, h = hd->height;
    if (hd->pages > 1 || (hd->page_height > 0 && hd->page_height < h))
        return basira_error_setm(err, BASIRA_E_MULTIPAGE,
                                 N_("the file holds %d images or frames; send a single photo"),
                                 hd->pages > 1 ? hd->pages : h / hd->page_height);
    if (w <= 0 || h <= 0)
        return basira_error_setm(err, BASIRA_E_CORRUPT,
                                 N_("the photo is damaged or incomplete (perhaps the transfer was "
                                    "interrupted); send it again"));
    if ((uint64_t)w * (uint64_t)h > o->max_pixels)
        return basira_error_setm(err, BASIRA_E_IMAGE_TOO_LARGE,
                                 N_("the image has too many pixels (%d x %d, the limit is %llu "
                                    "million); send the photo as the camera took it"),
                                 w, h, (unsigned long long)(o->max_pixels / 1000000));
    if (w < o->min_side || h < o->min_side)
        return basira_error_setm(err, BASIRA_E_IMAGE_TOO_SMALL,
                                 N_("the photo is too small (%d x %d pixels, at least %d x %d are "
                                    "needed); take it again with the phone's camera"),
                                 w, h, o->min_side, o->min_side);
    *cost = intake_decode_cost(hd->loader, w, h, hd->bands, hd->bytes_per_sample, hd->interlaced,
                               o->max_side);
    if (*cost > o->max_decode_bytes)
        return basira_error_setm(
            err, BASIRA_E_IMAGE_TOO_LARGE,
            N_("decoding this image (%d x %d pixels, stored in a format that "
               "is decoded whole) would need about %zu MB, more than the %zu "
               "MB allowed; send the photo as the camera took it, or a smaller "
               "copy"),
            w, h, *cost >> 20, o->max_decode_bytes >> 20);
    return BASIRA_OK;
}

/* ---- the common phone JPEG, without libvips ------------------------------------------ */

static basira_code load_jpeg(const uint8_t *data, size_t len, const intake_jpeg_info *info,
                             const basira_intake_options *o, basira_image **out, basira_error *err)
{
    /* The same header facts libvips reports for this file. */
    intake_header hd = {.loader = "VipsForeignLoadJpegBuffer",
                        .width = info->width,
                        .height = info->height,
                        .pages = 1,
                        .page_height = info->height,
                        .bands = 3,
                        .bytes_per_sample = 1,
                        .interlaced = info->interlaced};
    size_t cost = 0;
    basira_code rc = intake_check_header(&hd, o, &cost, err);
    if (rc)
        return rc;
    struct timespec deadline;
    intake_deadline_in(o->max_seconds, &deadline);
    if ((rc = intake_budget_acquire(o->budget, cost, &deadline, err)))
        return rc;
    int shrink = intake_jpeg_shrink(info->width > info->height ? info->width : info->height,
                                    o->max_side); /* 1 for a photo within max_side */
    uint8_t *px = NULL;
    int w = 0, h = 0;
    rc = intake_jpeg_decode(data, len, shrink, &deadline, &px, &w, &h, err);
    intake_budget_release(o->budget, cost);
    if (rc)
        return rc;
    int cur_longest = w > h ? w : h;
    if (cur_longest > o->max_side) {
        /* What libvips' vips_resize() would do next (intake.c decode()). */
        uint8_t *small = NULL;
        int sw = 0, sh = 0;
        double scale = (double)o->max_side / cur_longest;
        int r = intake_resize_down(px, w, h, scale, scale, &small, &sw, &sh);
        free(px);
        if (r)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        px = small;
        w = sw;
        h = sh;
    }
    if (info->orientation >= 2 && info->orientation <= 8) {
        /* Turned last, on the small copy (intake.c decode()). */
        uint8_t *turned = NULL;
        int tw = 0, th = 0;
        int r = intake_autorot(px, w, h, info->orientation, &turned, &tw, &th);
        free(px);
        if (r)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        px = turned;
        w = tw;
        h = th;
    }
    basira_image *img = calloc(1, sizeof *img);
    if (!img) {
        free(px);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    int swap = info->orientation >= 5 && info->orientation <= 8;
    img->rgb = px;
    img->width = w;
    img->height = h;
    img->orig_width = swap ? info->height : info->width;
    img->orig_height = swap ? info->width : info->height;
    *out = img;
    return BASIRA_OK;
}

/* ---- loading ------------------------------------------------------------------ */

basira_code basira_image_load_buffer(const void *data, size_t len,
                                     const basira_intake_options *opts, basira_image **out,
                                     basira_error *err)
{
    if (!out || (!data && len))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    basira_intake_options o;
    basira_code rc = resolve_options(opts, &o, err);
    if (rc)
        return rc;
    if (len == 0)
        return basira_error_setm(err, BASIRA_E_EMPTY_FILE,
                                 N_("the file is empty (0 bytes); send the photo again"));
    if (len > o.max_file_bytes)
        return basira_error_setm(err, BASIRA_E_IMAGE_TOO_LARGE,
                                 N_("the file is too large (%zu bytes, the limit is %zu); send the "
                                    "photo as the camera took it"),
                                 len, o.max_file_bytes);
    intake_jpeg_info info;
    if (intake_jpeg_probe(data, len, &info))
        return load_jpeg(data, len, &info, &o, out, err);
    return intake_vips_load(data, len, &o, out, err);
}

basira_code basira_image_load_file(const char *path, const basira_intake_options *opts,
                                   basira_image **out, basira_error *err)
{
    if (!path || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *out = NULL;
    basira_intake_options o;
    basira_code rc = resolve_options(opts, &o, err);
    if (rc)
        return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return basira_error_set(err, errno == ENOENT ? BASIRA_E_NOT_FOUND : BASIRA_E_IO,
                                _("cannot open %s: %s"), path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return basira_error_setm(err, BASIRA_E_IO, N_("%s is not a regular file"), path);
    }
    /* Refuse on the size before reading a single byte. */
    if (st.st_size == 0) {
        fclose(f);
        return basira_error_setm(err, BASIRA_E_EMPTY_FILE,
                                 N_("the file is empty (0 bytes); send the photo again"));
    }
    if ((uint64_t)st.st_size > (uint64_t)o.max_file_bytes) {
        fclose(f);
        return basira_error_setm(err, BASIRA_E_IMAGE_TOO_LARGE,
                                 N_("the file is too large (%zu bytes, the limit is %zu); send the "
                                    "photo as the camera took it"),
                                 (size_t)st.st_size, o.max_file_bytes);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len);
    if (!buf) {
        fclose(f);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    basira_prefault(buf, len);
    size_t got = fread(buf, 1, len, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error || got != len) {
        free(buf);
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot read %s"), path);
    }
    rc = basira_image_load_buffer(buf, len, &o, out, err);
    free(buf);
    return rc;
}

int basira_image_file_reads_without_vips(const char *path, int min_side)
{
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    struct stat st;
    uint8_t *buf = NULL;
    int ok = 0;
    basira_intake_options o;
    basira_intake_options_default(&o);
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 3 ||
        (uint64_t)st.st_size > (uint64_t)o.max_file_bytes)
        goto done;
    /* The header is all the probe reads (its markers end where the pixels start):
     * a prefix is enough; a header longer than it is left to libvips. */
    size_t len = (size_t)st.st_size < PROBE_PREFIX_BYTES ? (size_t)st.st_size : PROBE_PREFIX_BYTES;
    if (!(buf = malloc(len)) || fread(buf, 1, len, f) != len)
        goto done;
    intake_jpeg_info info;
    if (!intake_jpeg_probe(buf, len, &info))
        goto done;
    /* The decoded copy's shorter side (load_jpeg: DCT scaling, then down to max_side). */
    int longest = info.width > info.height ? info.width : info.height;
    int shortest = info.width > info.height ? info.height : info.width;
    int shrink = intake_jpeg_shrink(longest, o.max_side);
    double l = (double)(longest / shrink), s = (double)(shortest / shrink);
    if (l > o.max_side)
        s = s * o.max_side / l;
    ok = s >= min_side;
done:
    free(buf);
    fclose(f);
    return ok;
}
