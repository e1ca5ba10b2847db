/*
 * safetensors.h - internal: a generic reader and writer of the safetensors format.
 *
 * The format (https://github.com/huggingface/safetensors):
 *   8 bytes   N, little-endian unsigned 64-bit: length of the header
 *   N bytes   UTF-8 JSON object: tensor name -> {"dtype": "F32", "shape": [..],
 *             "data_offsets": [begin, end]} (offsets relative to the byte buffer that
 *             follows the header), plus an optional "__metadata__": {string: string}
 *   rest      the byte buffer: every tensor's bytes, little-endian, C order
 *
 * Model files come from outside (a clinic imports a model from a USB stick or a
 * download), so the reader treats every byte as hostile: it checks everything the
 * format promises and returns BASIRA_E_MODEL with a message that names the tensor
 * and the rule broken. It never trusts a length before comparing it with the size
 * of what was actually read.
 *
 * The writer follows the reference implementation byte for byte where it matters to
 * other readers: tensors sorted by name, offsets contiguous from 0, header padded
 * with spaces to a multiple of 8 so the data that follows is 8-byte aligned.
 */
#ifndef BASIRA_NN_SAFETENSORS_H
#define BASIRA_NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "basira/error.h"

/* Largest header the reader accepts: the reference implementation's limit (100 MB). */
#define NN_ST_MAX_HEADER ((uint64_t)100000000)
/* Most dimensions a tensor may have (the engine uses at most 4). */
#define NN_ST_MAX_DIMS 8

typedef enum nn_st_dtype {
    NN_ST_BOOL,
    NN_ST_U8,
    NN_ST_I8,
    NN_ST_F8_E4M3,
    NN_ST_F8_E5M2,
    NN_ST_I16,
    NN_ST_U16,
    NN_ST_F16,
    NN_ST_BF16,
    NN_ST_I32,
    NN_ST_U32,
    NN_ST_F32,
    NN_ST_F64,
    NN_ST_I64,
    NN_ST_U64,
    NN_ST_DTYPE_COUNT_
} nn_st_dtype;

/* Name as written in the header ("F32") and size in bytes of one element. */
const char *nn_st_dtype_name(nn_st_dtype t);
size_t nn_st_dtype_size(nn_st_dtype t);

typedef struct nn_st_tensor {
    const char *name; /* owned by the nn_st_file */
    nn_st_dtype dtype;
    int ndim;
    int64_t shape[NN_ST_MAX_DIMS];
    size_t numel;
    const unsigned char *data; /* points into the file's buffer; not aligned */
    size_t nbytes;
} nn_st_tensor;

typedef struct nn_st_file nn_st_file;

/*
 * Parse a whole safetensors file held in memory. The buffer is borrowed: it must
 * outlive the nn_st_file. Every rule of the format is checked (see safetensors.c).
 */
basira_code nn_st_parse(const void *buf, size_t len, nn_st_file **out, basira_error *err);

/* Read a file (into memory owned by the result) and parse it. */
basira_code nn_st_read_file(const char *path, nn_st_file **out, basira_error *err);

void nn_st_free(nn_st_file *f);

/* Tensors in the order of their data (ascending offsets). */
size_t nn_st_count(const nn_st_file *f);
const nn_st_tensor *nn_st_at(const nn_st_file *f, size_t i);
/* The tensor of that name, or NULL. */
const nn_st_tensor *nn_st_find(const nn_st_file *f, const char *name);

/* "__metadata__" (an object of string values, never NULL; borrowed), and one value or NULL. */
const json_t *nn_st_metadata(const nn_st_file *f);
const char *nn_st_meta_get(const nn_st_file *f, const char *key);

/*
 * Convert a tensor to float32 into dst (numel floats). F32, F16, BF16 and F64 are
 * converted; any other dtype gives BASIRA_E_MODEL naming the tensor.
 */
basira_code nn_st_to_f32(const nn_st_tensor *t, float *dst, basira_error *err);

/* ---- writer ---------------------------------------------------------------- */

typedef struct nn_st_writer nn_st_writer;

nn_st_writer *nn_st_writer_new(void);
void nn_st_writer_free(nn_st_writer *w);

/*
 * Add a float32 tensor. The name is copied; data is borrowed until the writer has
 * written (it is read only then). Duplicate or empty names give BASIRA_E_INVALID_ARGUMENT.
 */
basira_code nn_st_writer_add_f32(nn_st_writer *w, const char *name, const int64_t *shape, int ndim,
                                 const float *data, basira_error *err);

/*
 * Add a tensor stored in half precision (F16): the floats are converted when the file is
 * written (round to nearest, ties to even; data borrowed as above). A value that is not
 * finite or beyond +-NN_ST_F16_MAX gives BASIRA_E_LIMIT and adds nothing.
 */
#define NN_ST_F16_MAX 65504.0f
basira_code nn_st_writer_add_f16(nn_st_writer *w, const char *name, const int64_t *shape, int ndim,
                                 const float *data, basira_error *err);
/* IEEE half of a float, rounded to nearest even (beyond the range: infinity). */
uint16_t nn_st_f32_to_f16(float f);
/* n little-endian halves at le -> float32, exactly (half.c; F16C where the processor has it). */
void nn_half_to_f32(const unsigned char *le, float *dst, size_t n);

/* Set a "__metadata__" entry (both strings copied; a second set replaces the value). */
basira_code nn_st_writer_set_meta(nn_st_writer *w, const char *key, const char *value,
                                  basira_error *err);

/* Write the file into a malloc'd buffer (free()). */
basira_code nn_st_writer_to_buffer(const nn_st_writer *w, unsigned char **buf, size_t *len,
                                   basira_error *err);

/*
 * Write to path atomically: to "<path>.tmp", fsync, rename over path, fsync the
 * folder. A reader never sees half a file, even after a power cut.
 */
basira_code nn_st_writer_save(const nn_st_writer *w, const char *path, basira_error *err);

#endif
