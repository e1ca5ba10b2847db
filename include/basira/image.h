/*
 * image.h - image intake: a clinician's photo in, a clean sRGB image out.
 *
 * Every photo enters Basira through here. Decoding is done by libvips (JPEG,
 * PNG, WebP, HEIC/HEIF, TIFF); EXIF orientation is applied; embedded ICC
 * profiles are honoured and pixels converted to sRGB; large photos are shrunk
 * while loading so that a 48 MP picture never costs hundreds of MB; and every
 * piece of metadata (GPS, serial numbers, capture times, EXIF/XMP/IPTC, ICC) is
 * dropped: a basira_image holds only pixels.
 *
 * Bad input always gives an error code, never a crash: empty, truncated or
 * corrupt files, non-images, images too small, decompression bombs (limits on
 * bytes and on pixels checked from the header before decoding), and files with
 * several pages or frames.
 *
 * Only the JPEG, PNG, WebP, HEIF, TIFF and GIF decoders of libvips are used
 * (a still GIF is accepted; animated ones are "multipage_image"); anything that
 * libvips would hand to ImageMagick, PDF or SVG loaders is "not_an_image".
 * libvips is started on first use (pthread_once) with its operation cache
 * disabled, so the library works without VIPS_INIT in main() and memory stays
 * bounded; libvips warnings are not printed. Functions are thread-safe.
 */
#ifndef BASIRA_IMAGE_H
#define BASIRA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An 8-bit sRGB image, 3 interleaved channels (R,G,B), rows top to bottom. Opaque. */
typedef struct basira_image basira_image;

/*
 * A memory budget shared by concurrent decodes (the clinic node makes one, sized
 * to the machine). Each decode reserves what its header says it will need
 * (see max_decode_bytes) and waits, up to its deadline, while others hold the
 * rest. Thread-safe.
 */
typedef struct basira_decode_budget basira_decode_budget;

/* Budget size for this machine: 1/16 of physical memory, within 48..160 MiB. */
#define BASIRA_DECODE_BUDGET_MIN ((size_t)48 << 20)
#define BASIRA_DECODE_BUDGET_MAX ((size_t)160 << 20)
size_t basira_decode_budget_default_bytes(void);
/* bytes 0: basira_decode_budget_default_bytes(). */
basira_code basira_decode_budget_new(size_t bytes, basira_decode_budget **out, basira_error *err);
void basira_decode_budget_free(basira_decode_budget *b);
size_t basira_decode_budget_total(const basira_decode_budget *b);
/*
 * Reserve bytes of the budget for something else that holds memory (or release
 * them), waiting at most seconds; BASIRA_E_LIMIT ("busy") when it cannot.
 * Decodes do this themselves.
 */
basira_code basira_decode_budget_reserve(basira_decode_budget *b, size_t bytes, double seconds,
                                         basira_error *err);
void basira_decode_budget_release(basira_decode_budget *b, size_t bytes);
/* Bytes reserved right now by decodes in progress (tests, monitoring). */
size_t basira_decode_budget_in_use(basira_decode_budget *b);

/*
 * Documented limits on PNG text chunks (tEXt, zTXt, iTXt; metadata that is
 * dropped anyway): at most 32 of them, 1 MiB in all, and none inflating to more
 * than 1 MiB. A PNG past them is image_too_large; the others lose their text
 * chunks before decoding.
 */
#define BASIRA_PNG_MAX_TEXT_CHUNKS 32
#define BASIRA_PNG_MAX_TEXT_BYTES (1 << 20)

typedef struct basira_intake_options {
    size_t max_file_bytes; /* refuse larger files; 0 = default (64 MiB) */
    uint64_t max_pixels;   /* refuse larger width*height in the header; 0 = default (100 MP) */
    int min_side;          /* refuse images whose shorter side is smaller; 0 = default (64) */
    int max_side; /* shrink on load so the longer side is at most this; 0 = default (1024) */
    /*
     * Refuse (image_too_large) a photo whose decoding needs more memory than this,
     * estimated from its header; 0 = default (256 MiB), and never more than the
     * budget's size. Streamed formats (baseline JPEG, plain PNG, WebP) cost a few
     * tens of MB at any size; those decoded whole cost, per pixel: GIF 5 bytes,
     * progressive JPEG 2 per channel, interlaced PNG and TIFF one frame, HEIF 4.5.
     * With the node's largest budget (160 MiB) that is about 29 MP for a GIF,
     * 24 MP for a progressive colour JPEG, 40 MP for an interlaced PNG or a TIFF,
     * 30 MP for a HEIF; plain JPEG, PNG and WebP keep the 100 MP pixel limit.
     */
    size_t max_decode_bytes;
    /* Give up (limit_exceeded) when waiting for the budget plus decoding takes longer;
     * 0 = default (20 s). */
    double max_seconds;
    basira_decode_budget *budget; /* shared with other decodes; NULL: none */
    /*
     * HEIC/AVIF photos are decoded by a separate program, basira-decode, in a
     * process whose memory and CPU time are capped: their decoders (libde265,
     * dav1d, aom) allocate frames by the size written in the bitstream, which a
     * hostile file can make far larger than the size its header declares (that
     * intake's limits check). The path of that program; NULL = the value of the
     * BASIRA_DECODE_HELPER environment variable when set, else basira-decode in
     * the folder of the running program; "" = none. Without the program HEIF
     * photos are refused (unsupported, "send a JPEG"); other formats never use it.
     */
    const char *decode_helper;
} basira_intake_options;

/* File name of the HEIF decoding program, installed next to `basira`. */
#define BASIRA_DECODE_HELPER_NAME "basira-decode"

/* Fill opts with the defaults. */
void basira_intake_options_default(basira_intake_options *opts);

/* Load a photo from a file. opts may be NULL (defaults). On success *out must be freed. */
basira_code basira_image_load_file(const char *path, const basira_intake_options *opts,
                                   basira_image **out, basira_error *err);

/* Load a photo from memory (an upload). The buffer is not kept. */
basira_code basira_image_load_buffer(const void *data, size_t len,
                                     const basira_intake_options *opts, basira_image **out,
                                     basira_error *err);

/* Wrap a copy of packed RGB pixels (3*width*height bytes) as an image (tests, synthetic data). */
/*
 * 1 when the photo at path is read without libvips (a plain phone JPEG: three
 * components, no ICC profile, a plain EXIF orientation or none; load.c) and its
 * decoded copy's shorter side has at least min_side pixels, so that every later
 * resize of it is a reduction; 0 otherwise, or when it cannot be read. A program
 * linked without libvips (basira-triage) asks this before it starts.
 */
int basira_image_file_reads_without_vips(const char *path, int min_side);

basira_code basira_image_from_rgb(const uint8_t *rgb, int width, int height, basira_image **out,
                                  basira_error *err);

void basira_image_free(basira_image *img);

int basira_image_width(const basira_image *img);
int basira_image_height(const basira_image *img);
/* Packed RGB, 3*width*height bytes. */
const uint8_t *basira_image_pixels(const basira_image *img);

/* Width and height of the file before shrink-on-load (for reporting resolution). */
int basira_image_original_width(const basira_image *img);
int basira_image_original_height(const basira_image *img);

/*
 * Resample to exactly width x height (bilinear/area as suited), returning a new image.
 * Used by the model's preprocessing and by tests.
 */
basira_code basira_image_resize(const basira_image *img, int width, int height, basira_image **out,
                                basira_error *err);

/* Encode as JPEG (quality 1..100) into a malloc'd buffer; metadata-free. For storage/reports. */
basira_code basira_image_encode_jpeg(const basira_image *img, int quality, uint8_t **buf,
                                     size_t *len, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
