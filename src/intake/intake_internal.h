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

#endif
