/*
 * intake.c - every photo that is not a plain phone JPEG, through libvips: PNG, WebP,
 * HEIC (in the basira-decode helper), TIFF, GIF, and JPEGs with an ICC profile, in
 * grey or CMYK, or with an odd EXIF block; enlarging; JPEG encoding.
 *
 * load.c has checked the bytes; here the header is read with libvips, held to the
 * same limits (intake_check_header), then the pixels are decoded small: shrink
 * while decoding (JPEG DCT scaling, WebP scaled decoding), colour conversion and
 * the final resize line by line, and only the small result is held in memory.
 */
#include "basira/image.h"
#include "core/i18n.h"
#include "intake_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>
#include <vips/vector.h> /* vips_vector_set_enabled: vips.h leaves it out */

/* ---- libvips set-up, once per process ------------------------------------ */

/*
 * libvips prints warnings (e.g. "premature end of JPEG file") through GLib's
 * logger on stderr. Basira reports every problem itself as an error value, so
 * these are dropped rather than shown to the person using the program.
 */
static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                      gpointer user)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)user;
}

static void init_vips_once(void)
{
    /*
     * vips_init() may already have been called by the program (VIPS_INIT in
     * main): calling it again is harmless. It is called here so that the
     * library also works when the host program never initialised libvips.
     */
    if (vips_init("basira") != 0)
        return; /* reported by ensure_vips() */
    /*
     * The operation cache keeps recent results (and their pixel buffers) alive
     * to speed up repeated identical calls, which Basira never makes: a server
     * receiving thousands of photos would see its memory grow. Disable it.
     */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /*
     * libvips compiles its resampling and colour loops at run time with liborc.
     * Debian 12's liborc 0.4.33 corrupts its code-memory list when two threads
     * compile at once: `basira train` (two decode workers) died with SIGSEGV in
     * orc_code_allocate_codemem under vips_reduce, and a server resizing two
     * uploads at once is exposed the same way (test_intake_threads). With the
     * operation cache off every resize compiles afresh, so the race is frequent.
     * The plain C loops are slower (their share of a triage was not isolated:
     * bench/triage_cold times the whole path); a crashed node costs every request
     * in flight.
     */
    vips_vector_set_enabled(FALSE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      quiet_log, NULL);
}

/* Written once under pthread_once and read-only afterwards. */
static pthread_once_t vips_once = PTHREAD_ONCE_INIT;

static basira_code ensure_vips(basira_error *err)
{
    pthread_once(&vips_once, init_vips_once);
    /* Returns at once when libvips is started; fails again if it could not be. */
    if (vips_init("basira") != 0)
        return basira_error_setm(err, BASIRA_E_INTERNAL,
                                 N_("the image library could not be started"));
    return BASIRA_OK;
}

/* ---- helpers over libvips ----------------------------------------------------- */

/*
 * Only the decoders of the formats a phone or a clinic camera produces are
 * accepted. libvips can also hand a file to ImageMagick, PDF or SVG loaders
 * (large attack surface, and nothing a photo of a lesion needs); the loader that
 * would be used is looked up first and anything else is "not an image".
 * GIF is let through only so that an animated GIF gets the precise
 * "several frames" answer; a still GIF is a valid, if poor, photo.
 */
static int loader_allowed(const char *loader)
{
    static const char *const allowed[] = {
        "VipsForeignLoadJpeg", "VipsForeignLoadPng",   "VipsForeignLoadWebp", "VipsForeignLoadHeif",
        "VipsForeignLoadTiff", "VipsForeignLoadNsgif", "VipsForeignLoadGif",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!strncmp(loader, allowed[i], strlen(allowed[i])))
            return 1;
    return 0;
}

static void unref(VipsImage **im)
{
    if (*im) {
        g_object_unref(*im);
        *im = NULL;
    }
}

/* The EXIF orientation, 1 (upright) when absent or unreadable. */
static int orientation(VipsImage *im)
{
    int o = 1;
    if (vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &o))
        o = 1;
    return o;
}

/* Orientations 2..8 (mirrored or turned) must be undone by vips_autorot(). */
static int needs_rotation(VipsImage *im)
{
    int o = orientation(im);
    return o >= 2 && o <= 8;
}

/* EXIF orientations 5..8 turn the picture by 90 degrees: width and height swap. */
static int orientation_swaps(VipsImage *im)
{
    int o = orientation(im);
    return o >= 5 && o <= 8;
}

/*
 * Whatever came out of the decoder (grey, 16-bit, CMYK, alpha, odd
 * interpretations) -> 3-band 8-bit sRGB. Transparent areas are composited on
 * white, the way a viewer shows them to the clinician.
 */
static int to_srgb8(VipsImage *in, VipsImage **out)
{
    VipsImage *cur = in, *next = NULL;
    g_object_ref(cur);
    VipsInterpretation interp = vips_image_guess_interpretation(cur);
    if (interp != VIPS_INTERPRETATION_sRGB || cur->BandFmt != VIPS_FORMAT_UCHAR) {
        if (!vips_colourspace_issupported(cur))
            goto fail;
        if (vips_colourspace(cur, &next, VIPS_INTERPRETATION_sRGB, "source_space", interp, NULL))
            goto fail;
        unref(&cur);
        cur = next;
        next = NULL;
    }
    if (vips_image_hasalpha(cur)) {
        double white[3] = {255, 255, 255};
        VipsArrayDouble *bg = vips_array_double_new(white, 3);
        int r = vips_flatten(cur, &next, "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (r)
            goto fail;
        unref(&cur);
        cur = next;
        next = NULL;
    }
    if (cur->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(cur, &next, NULL))
            goto fail;
        unref(&cur);
        cur = next;
        next = NULL;
    }
    if (cur->Bands > 3) {
        if (vips_extract_band(cur, &next, 0, "n", 3, NULL))
            goto fail;
        unref(&cur);
        cur = next;
        next = NULL;
    } else if (cur->Bands == 1) {
        VipsImage *three[3] = {cur, cur, cur};
        if (vips_bandjoin(three, &next, 3, NULL))
            goto fail;
        unref(&cur);
        cur = next;
        next = NULL;
    }
    if (cur->Bands != 3)
        goto fail;
    *out = cur;
    return 0;
fail:
    unref(&cur);
    return -1;
}

/* ---- the processing deadline ---------------------------------------------------- */

typedef struct deadline_watch {
    struct timespec at; /* CLOCK_MONOTONIC */
    int expired;
} deadline_watch;

/*
 * libvips emits "eval" as it computes an image (it was asked to with
 * vips_image_set_progress()); past the deadline the computation is killed and
 * the write that drives it fails.
 */
static void on_eval(VipsImage *im, VipsProgress *progress, void *user)
{
    (void)progress;
    deadline_watch *w = user;
    if (!w->expired && intake_past(&w->at)) {
        w->expired = 1;
        vips_image_set_kill(im, TRUE);
    }
}

static void watch(VipsImage *im, deadline_watch *w)
{
    if (!w)
        return;
    vips_image_set_progress(im, TRUE);
    g_signal_connect(im, "eval", G_CALLBACK(on_eval), w);
}

static basira_code too_slow(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_LIMIT,
                             N_("the photo took too long to decode and was refused; send it as the "
                                "camera took it"));
}

/*
 * Compute a 3-band uchar VipsImage into a new basira_image. The pixels stay in the
 * buffer libvips computed them into (no copy: a 12 MP photo's 1024 px version is
 * 2-3 MB, and every copy of it costs page faults at start-up).
 */
static basira_code vips_to_image(VipsImage *im, basira_image **out, basira_code decode_code,
                                 deadline_watch *dw, basira_error *err)
{
    size_t size = 0;
    watch(im, dw);
    void *mem = vips_image_write_to_memory(im, &size);
    if (!mem) {
        vips_error_clear();
        if (dw && dw->expired)
            return too_slow(err);
        if (decode_code == BASIRA_E_CORRUPT)
            return basira_error_setm(err, BASIRA_E_CORRUPT,
                                     N_("the photo is damaged or incomplete (perhaps the transfer "
                                        "was interrupted); send it again"));
        return basira_error_set(err, decode_code, NULL);
    }
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    basira_image *img = NULL;
    if (w <= 0 || h <= 0 || size != (size_t)w * (size_t)h * 3) {
        g_free(mem);
        return basira_error_setm(err, BASIRA_E_INTERNAL,
                                 N_("unexpected pixel layout from decoder"));
    }
    img = calloc(1, sizeof *img);
    if (!img) {
        g_free(mem);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    img->rgb = mem;
    img->release = g_free;
    img->width = img->orig_width = w;
    img->height = img->orig_height = h;
    *out = img;
    return BASIRA_OK;
}

static int is_loader(const char *loader, const char *prefix)
{
    return !strncmp(loader, prefix, strlen(prefix));
}

/* Replace *cur by next (taking ownership); returns the status of the step. */
static int step(VipsImage **cur, VipsImage *next, int status)
{
    if (status)
        return status;
    g_object_unref(*cur);
    *cur = next;
    return 0;
}

/*
 * Decode the pixels, small. The order is chosen so the big image is only ever
 * streamed top to bottom: shrink while decoding (JPEG DCT scaling, WebP scaled
 * decoding), colour conversion and the final resize are line by line, and only
 * the small result is held in memory. The EXIF rotation, which needs the whole
 * image, is applied last, on the small copy.
 *
 * fail_on=truncated: libjpeg only *warns* about a truncated file and fills the
 * missing part with grey; a half-received photo must be refused, not analysed.
 * (vips_thumbnail_buffer() would be the one-call way, but in libvips 8.14 it
 * does not pass fail_on to the loader, so truncated JPEGs went through.)
 */
static basira_code decode(const void *data, size_t len, const char *loader, int w, int h,
                          int max_side, deadline_watch *dw, basira_image **out, basira_error *err)
{
    int longest = w > h ? w : h;
    VipsImage *im = NULL;
    if (is_loader(loader, "VipsForeignLoadJpeg") && longest > max_side)
        im = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                        VIPS_FAIL_ON_TRUNCATED, "shrink",
                                        intake_jpeg_shrink(longest, max_side), NULL);
    else if (is_loader(loader, "VipsForeignLoadWebp") && longest > max_side)
        im = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                        VIPS_FAIL_ON_TRUNCATED, "scale", (double)max_side / longest,
                                        NULL);
    else
        im = vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                        VIPS_FAIL_ON_TRUNCATED, NULL);
    if (!im)
        goto corrupt;

    /*
     * An embedded ICC profile (wide-gamut phones, CMYK scans) says what the
     * numbers mean: convert them to sRGB with it. A damaged profile is ignored
     * (the pixels are then read as if untagged) rather than losing the photo.
     */
    if (vips_image_get_typeof(im, VIPS_META_ICC_NAME)) {
        VipsImage *next = NULL;
        if (vips_icc_transform(im, &next, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_RELATIVE,
                               NULL) == 0)
            step(&im, next, 0);
        else
            vips_error_clear();
    }
    int cur_longest = vips_image_get_width(im) > vips_image_get_height(im)
                          ? vips_image_get_width(im)
                          : vips_image_get_height(im);
    if (cur_longest > max_side) {
        VipsImage *next = NULL;
        /* Two statements: the order of evaluation of a call's arguments is unspecified,
         * so `step(&im, next, vips_resize(im, &next, ...))` could pass next before
         * vips_resize set it (clang does; found by fuzz_intake with a large AVIF). */
        int r = vips_resize(im, &next, (double)max_side / cur_longest, NULL);
        if (step(&im, next, r))
            goto corrupt;
    }
    VipsImage *rgb = NULL;
    if (to_srgb8(im, &rgb)) {
        unref(&im);
        vips_error_clear();
        return basira_error_setm(err, BASIRA_E_NOT_AN_IMAGE,
                                 N_("the colours of this image cannot be interpreted; send an "
                                    "ordinary colour photo"));
    }
    unref(&im);
    basira_code rc;
    if (!needs_rotation(rgb)) {
        /* Upright already (most photos): decode straight into the result. A damaged
         * file shows itself here. */
        rc = vips_to_image(rgb, out, BASIRA_E_CORRUPT, dw, err);
        unref(&rgb);
        return rc;
    }
    /* Decode now (a damaged file shows itself here), then turn the small copy. */
    watch(rgb, dw);
    VipsImage *mem = vips_image_copy_memory(rgb);
    unref(&rgb);
    if (!mem) {
        if (dw->expired) {
            vips_error_clear();
            return too_slow(err);
        }
        goto corrupt;
    }
    VipsImage *upright = NULL;
    if (vips_autorot(mem, &upright, NULL)) {
        unref(&mem);
        goto corrupt;
    }
    unref(&mem);
    rc = vips_to_image(upright, out, BASIRA_E_CORRUPT, NULL, err);
    unref(&upright);
    return rc;
corrupt:
    unref(&im);
    vips_error_clear();
    return basira_error_setm(err, BASIRA_E_CORRUPT,
                             N_("the photo is damaged or incomplete (perhaps the transfer was "
                                "interrupted); send it again"));
}

/* ---- loading ------------------------------------------------------------------ */

/* HEIF: decoded by the memory-limited helper process (decode_helper.c). */
static basira_code decode_outside(const void *data, size_t len, const basira_intake_options *o,
                                  int w, int h, int swap, size_t cost,
                                  const struct timespec *deadline, basira_image **out,
                                  basira_error *err)
{
    intake_helper_result res = {.rgb = NULL};
    basira_code rc = intake_helper_decode(data, len, o, w, h, swap, cost, deadline, &res, err);
    if (rc)
        return rc;
    basira_image *img = calloc(1, sizeof *img);
    if (!img) {
        free(res.rgb);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    img->rgb = res.rgb;
    img->width = res.width;
    img->height = res.height;
    *out = img;
    return BASIRA_OK;
}

/* Everything after the checks on the bytes: header, limits, budget, pixels. */
static basira_code load_checked(const void *data, size_t len, const basira_intake_options *o,
                                basira_image **out, basira_error *err)
{
    const char *loader = vips_foreign_find_load_buffer(data, len);
    if (!loader || !loader_allowed(loader)) {
        vips_error_clear();
        return basira_error_setm(err, BASIRA_E_NOT_AN_IMAGE,
                                 N_("this is not a photo Basira can read; send a JPEG, PNG, WebP, "
                                    "HEIC or TIFF image"));
    }

    /* Header only: nothing is decoded until pixels are asked for. */
    VipsImage *head =
        vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!head) {
        vips_error_clear();
        return basira_error_setm(err, BASIRA_E_CORRUPT,
                                 N_("the photo is damaged or incomplete (perhaps the transfer was "
                                    "interrupted); send it again"));
    }
    int w = vips_image_get_width(head), h = vips_image_get_height(head);
    int pages = vips_image_get_n_pages(head);
    int swap = orientation_swaps(head);
    int page_height = vips_image_get_page_height(head);
    int interlaced = 0;
    if (vips_image_get_typeof(head, "interlaced") &&
        vips_image_get_int(head, "interlaced", &interlaced))
        interlaced = 0;
    int bands = vips_image_get_bands(head);
    int sample = (int)vips_format_sizeof(vips_image_get_format(head));
    unref(&head);
    intake_header hd = {.loader = loader,
                        .width = w,
                        .height = h,
                        .pages = pages,
                        .page_height = page_height,
                        .bands = bands,
                        .bytes_per_sample = sample,
                        .interlaced = interlaced};
    size_t cost = 0;
    basira_code hrc = intake_check_header(&hd, o, &cost, err);
    if (hrc)
        return hrc;

    deadline_watch dw = {{0, 0}, 0};
    intake_deadline_in(o->max_seconds, &dw.at);
    basira_code rc = intake_budget_acquire(o->budget, cost, &dw.at, err);
    if (rc)
        return rc;
    if (is_loader(loader, "VipsForeignLoadHeif") && o->decode_helper != intake_in_process)
        rc = decode_outside(data, len, o, w, h, swap, cost, &dw.at, out, err);
    else
        rc = decode(data, len, loader, w, h, o->max_side, &dw, out, err);
    intake_budget_release(o->budget, cost);
    if (rc)
        return rc;
    (*out)->orig_width = swap ? h : w;
    (*out)->orig_height = swap ? w : h;
    return BASIRA_OK;
}

basira_code intake_vips_load(const void *data, size_t len, const basira_intake_options *o,
                             basira_image **out, basira_error *err)
{
    basira_code rc = ensure_vips(err);
    if (rc)
        return rc;
    uint8_t *stripped = NULL;
    size_t stripped_len = 0;
    if ((rc = intake_png_strip_text(data, len, &stripped, &stripped_len, err)))
        return rc;
    rc = stripped ? load_checked(stripped, stripped_len, o, out, err)
                  : load_checked(data, len, o, out, err);
    free(stripped);
    return rc;
}

/* ---- enlarging and encoding ---------------------------------------------------------- */

/* A VipsImage viewing the image's pixels (no copy; valid while img lives). */
static VipsImage *wrap(const basira_image *img)
{
    return vips_image_new_from_memory(img->rgb, (size_t)img->width * (size_t)img->height * 3,
                                      img->width, img->height, 3, VIPS_FORMAT_UCHAR);
}

/* Enlarging (a photo smaller than the model's input): vips_resize(), bicubic. */
basira_code intake_vips_enlarge(const basira_image *img, int width, int height, double hs,
                                double vs, basira_image **out, basira_error *err)
{
    basira_code rc = ensure_vips(err);
    if (rc)
        return rc;
    VipsImage *src = wrap(img), *dst = NULL, *resized = NULL;
    if (!src) {
        vips_error_clear();
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    int r = vips_resize(src, &resized, hs, "vscale", vs, NULL);
    if (!r) {
        if (vips_image_get_width(resized) == width && vips_image_get_height(resized) == height) {
            dst = resized;
            resized = NULL;
        } else {
            r = vips_gravity(resized, &dst, VIPS_COMPASS_DIRECTION_NORTH_WEST, width, height,
                             "extend", VIPS_EXTEND_COPY, NULL);
        }
    }
    unref(&resized);
    if (r) {
        unref(&src);
        vips_error_clear();
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("the image could not be resized"));
    }
    rc = vips_to_image(dst, out, BASIRA_E_INTERNAL, NULL, err);
    unref(&dst);
    unref(&src);
    if (!rc) {
        (*out)->orig_width = img->orig_width;
        (*out)->orig_height = img->orig_height;
    }
    return rc;
}

basira_code basira_image_encode_jpeg(const basira_image *img, int quality, uint8_t **buf,
                                     size_t *len, basira_error *err)
{
    if (!img || !buf || !len)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *buf = NULL;
    *len = 0;
    if (quality < 1 || quality > 100)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("JPEG quality must be between 1 and 100, not %d"), quality);
    basira_code rc = ensure_vips(err);
    if (rc)
        return rc;
    VipsImage *src = wrap(img);
    if (!src) {
        vips_error_clear();
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    void *mem = NULL;
    size_t size = 0;
    /* The wrapped image carries no metadata; strip is belt and braces. */
    int r = vips_jpegsave_buffer(src, &mem, &size, "Q", quality, "strip", TRUE, NULL);
    unref(&src);
    if (r || !mem) {
        vips_error_clear();
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("the image could not be encoded"));
    }
    /* Hand back memory the caller frees with free(), not g_free(). */
    *buf = malloc(size);
    if (!*buf) {
        g_free(mem);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memcpy(*buf, mem, size);
    *len = size;
    g_free(mem);
    return BASIRA_OK;
}
