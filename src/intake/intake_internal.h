/*
 * intake_internal.h - internal to the intake module: decode budgets and the
 * checks made on a file before libvips reads it.
 */
#ifndef BASIRA_INTAKE_INTERNAL_H
#define BASIRA_INTAKE_INTERNAL_H

#include "basira/image.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Memory a decode of this file needs, estimated from its header (loader name,
 * dimensions, bands, bytes per sample, interlaced/progressive), in bytes.
 */
size_t intake_decode_cost(const char *loader, int w, int h, int bands, int bytes_per_sample,
                          int interlaced, int max_side);

/* Take bytes of the budget (b may be NULL: no-op), waiting until deadline (CLOCK_MONOTONIC). */
basira_code intake_budget_acquire(basira_decode_budget *b, size_t bytes,
                                  const struct timespec *deadline, basira_error *err);
void intake_budget_release(basira_decode_budget *b, size_t bytes);
/* *t = now + seconds on CLOCK_MONOTONIC. */
void intake_deadline_in(double seconds, struct timespec *t);

/*
 * For a PNG: refuse more text than BASIRA_PNG_MAX_TEXT_* allow, and when it holds
 * text chunks, return in *copy (malloc'd) the file without them. *copy stays NULL
 * when the input is not a PNG or has no text chunk.
 */
basira_code intake_png_strip_text(const uint8_t *data, size_t len, uint8_t **copy, size_t *copy_len,
                                  basira_error *err);

/*
 * HEIF decoding in a separate process (decode_helper.c, decode_main.c).
 *
 * Protocol: the parent runs `basira-decode <max_file_bytes> <max_pixels> <min_side>
 * <max_side> <max_decode_bytes> <max_milliseconds> <memory_limit>` with a socket as its
 * stdin and stdout, writes the file and shuts its side for writing; the helper
 * answers one intake_helper_header, then (code 0 only) width*height*3 RGB bytes.
 */
#define INTAKE_HELPER_MAGIC 0x42534431u /* "BSD1" */
/* What the helper may use beyond the decode cost of the header: libvips, libheif,
 * the codec and its threads, the file itself. */
#define INTAKE_HELPER_BASE_BYTES ((size_t)512 << 20)

typedef struct intake_helper_header {
    uint32_t magic;
    int32_t code; /* basira_code */
    int32_t width, height, orig_width, orig_height;
} intake_helper_header;

/* A pixel buffer decoded by the helper: width*height*3 bytes, malloc'd. */
typedef struct intake_helper_result {
    int width, height, orig_width, orig_height;
    uint8_t *rgb;
} intake_helper_result;

/*
 * Pass as basira_intake_options.decode_helper to decode HEIF in this process (only
 * the helper program does: it is the memory-limited process).
 */
extern const char intake_in_process[];

/*
 * Decode a HEIF file (whose header said w x h, turned by swap) in the helper
 * named by o->decode_helper, within the deadline; cost is the header's estimate.
 */
basira_code intake_helper_decode(const void *data, size_t len, const basira_intake_options *o,
                                 int w, int h, int swap, size_t cost,
                                 const struct timespec *deadline, intake_helper_result *res,
                                 basira_error *err);

/* resample.c: libvips 8.14's downsizing of packed 8-bit RGB, byte for byte, without
 * libvips. Results are malloc()ed; each returns 0, or -1 (no memory, bad factor). */
int intake_shrinkv(const uint8_t *in, int w, int h, int vshrink, int ceil_size, uint8_t **out,
                   int *out_h);
int intake_shrinkh(const uint8_t *in, int w, int h, int hshrink, int ceil_size, uint8_t **out,
                   int *out_w);
int intake_reducev(const uint8_t *in, int w, int h, double vshrink, double gap, uint8_t **out,
                   int *out_h);
int intake_reduceh(const uint8_t *in, int w, int h, double hshrink, double gap, uint8_t **out,
                   int *out_w);
/* vips_resize(in, scale hscale, vscale) for scales <= 1. */
int intake_resize_down(const uint8_t *in, int w, int h, double hscale, double vscale, uint8_t **out,
                       int *out_w, int *out_h);
/* vips_shrink() by the whole part of 1 / (2 scale), then vips_reduce() for the rest. */
int intake_shrink_reduce(const uint8_t *in, int w, int h, double hs, double vs, uint8_t **out,
                         int *out_w, int *out_h);
/* vips_gravity(north-west, extend copy) to ow x oh. */
int intake_extend_copy(const uint8_t *in, int w, int h, int ow, int oh, uint8_t **out);
/* vips_autorot() for EXIF orientation 1..8. */
int intake_autorot(const uint8_t *in, int w, int h, int orientation, uint8_t **out, int *out_w,
                   int *out_h);

/* Hard ceiling on an image side (max_side, resize targets): one image must stay a few
 * tens of MB at most. */
#define INTAKE_MAX_SIDE_LIMIT 8192

/* The decoded photo (image.c). */
struct basira_image {
    int width, height;
    int orig_width, orig_height;
    uint8_t *rgb;               /* 3*width*height bytes, owned */
    void (*release)(void *rgb); /* how rgb is freed (libvips' g_free); NULL: free() */
};

/* What a decoder's header says, for the limits every photo is held to (load.c). */
typedef struct intake_header {
    const char *loader; /* libvips' loader name for the format, for intake_decode_cost */
    int width, height, pages, page_height, bands, bytes_per_sample, interlaced;
} intake_header;

/* Pages, size, pixel count and decoding cost against the options; *cost: the bytes
 * decoding will take from the shared budget. */
basira_code intake_check_header(const intake_header *hd, const basira_intake_options *o,
                                size_t *cost, basira_error *err);

/* Whether the deadline (CLOCK_MONOTONIC) has passed (budget.c). */
int intake_past(const struct timespec *t);

/* jpeg.c: the common phone JPEG, decoded with libjpeg exactly as libvips would. */
typedef struct intake_jpeg_info {
    int width, height; /* as stored (before the orientation) */
    int interlaced;    /* progressive */
    int orientation;   /* EXIF, 1..8 */
} intake_jpeg_info;

/* libvips' test for a JPEG: the start-of-image marker then 0xFF. */
int intake_jpeg_is_jpeg(const uint8_t *data, size_t len);
/* 1 when this file is decoded here (3 components to RGB, no ICC profile, a plain
 * EXIF orientation or none), filling *info; 0 when it is libvips' to decode. */
int intake_jpeg_probe(const uint8_t *data, size_t len, intake_jpeg_info *info);
/* Decode at 1/shrink (1, 2, 4, 8), sizes rounded down; not turned. */
basira_code intake_jpeg_decode(const uint8_t *data, size_t len, int shrink,
                               const struct timespec *deadline, uint8_t **rgb, int *width,
                               int *height, basira_error *err);
/* The JPEG DCT scaling for a longest side and a target (1, 2, 4 or 8). */
int intake_jpeg_shrink(int longest, int target);

/* Provided by intake.c (libvips) or, in a program without libvips, by novips.c:
 * every other photo (options resolved, bytes checked), and enlarging. */
basira_code intake_vips_load(const void *data, size_t len, const basira_intake_options *o,
                             basira_image **out, basira_error *err);
basira_code intake_vips_enlarge(const basira_image *img, int width, int height, double hs,
                                double vs, basira_image **out, basira_error *err);

#endif
