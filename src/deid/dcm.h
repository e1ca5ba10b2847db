/*
 * dcm.h - the C-callable layer over DCMTK's dcmdata (dcm.cc): read a DICOM file
 * completely into memory, walk and edit its elements, write it back. It knows no
 * profile: what to do with each element is decided in C (deid.c). No home-made DICOM
 * parsing anywhere: every byte is read and written by DCMTK.
 *
 * A node is a DICOM item (the data set, the file meta information, or one item of a
 * sequence); its elements are addressed by index in tag order. Indices shift on
 * removal, so callers that remove walk from the last index down.
 */
#ifndef BASIRA_DEID_DCM_H
#define BASIRA_DEID_DCM_H

#include <stddef.h>
#include <stdint.h>

#include "basira/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct deid_dcm deid_dcm;
typedef struct deid_node deid_node;

typedef struct deid_elem {
    uint16_t group, element;
    char vr[3];      /* "PN", "SQ", ... ("UN" for unknown) */
    int is_string;   /* a character-string VR (value readable as text) */
    int is_sequence; /* SQ (or an undefined-length UN read as a sequence) */
    size_t items;    /* number of items of a sequence */
    size_t length;   /* value length in bytes (0 = empty) */
} deid_elem;

/* Read a whole file (with or without the Part 10 header); any parse error, a
 * truncated file or trailing garbage is BASIRA_E_FORMAT with DCMTK's reason. */
basira_code deid_dcm_load_file(const char *path, deid_dcm **out, basira_error *err);
/* Same from memory (the fuzz target). */
basira_code deid_dcm_load_buffer(const void *data, size_t len, deid_dcm **out, basira_error *err);
void deid_dcm_free(deid_dcm *d);

deid_node *deid_dcm_dataset(deid_dcm *d);
deid_node *deid_dcm_meta(deid_dcm *d); /* NULL when the file had no meta header */

size_t deid_node_count(deid_node *n);
basira_code deid_node_elem(deid_node *n, size_t i, deid_elem *out);
/* The value of a string element as text (multiple values joined by '\'), malloc'd. */
basira_code deid_node_string(deid_node *n, size_t i, char **out, basira_error *err);
/* Item k of the sequence at index i, or NULL. */
deid_node *deid_node_item(deid_node *n, size_t i, size_t k);

basira_code deid_node_remove(deid_node *n, size_t i, basira_error *err);
/* Zero length value; a sequence loses all its items. */
basira_code deid_node_empty(deid_node *n, size_t i, basira_error *err);
basira_code deid_node_set_string(deid_node *n, size_t i, const char *value, basira_error *err);

/* By tag, at the level of n: BASIRA_E_NOT_FOUND when absent or empty. */
basira_code deid_node_get_tag(deid_node *n, uint16_t g, uint16_t e, char **out, basira_error *err);
/* Insert or replace a string element by tag (VR from DCMTK's dictionary). */
basira_code deid_node_put_tag(deid_node *n, uint16_t g, uint16_t e, const char *value,
                              basira_error *err);
/* Append an item {CodeValue, CodingSchemeDesignator, CodeMeaning} to the sequence (g,e),
 * creating it when absent. */
basira_code deid_node_add_code(deid_node *n, uint16_t g, uint16_t e, const char *value,
                               const char *scheme, const char *meaning, basira_error *err);

/*
 * Blank (zero) the rectangle x, y, w, h (pixels, clipped to the image) in every frame and
 * sample of the pixel data. Only native (uncompressed) pixel data with 8, 16 or 32 bits
 * allocated and no chroma subsampling can be cleaned; anything else is BASIRA_E_UNSUPPORTED.
 */
basira_code deid_dcm_blank_rect(deid_dcm *d, long x, long y, long w, long h, basira_error *err);

/* Write the file in its original transfer syntax (pixel data untouched), with a meta
 * header rebuilt from the data set (SOP Class / Instance UIDs updated). */
basira_code deid_dcm_save_file(deid_dcm *d, const char *path, basira_error *err);

#ifdef __cplusplus
}
#endif
#endif
