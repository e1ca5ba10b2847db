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

#endif
