/*
 * analysis.h - internal: the measurements behind the quality gate and the skin tone.
 *
 * Everything is measured on a copy of the photo resampled so that its longer
 * side is exactly BASIRA_QA_WORK_SIDE pixels. Sharpness, blob sizes and
 * framing then mean the same thing whether the photo came from a 48 MP phone
 * or a 150 px atlas thumbnail, and thresholds do not depend on megapixels.
 */
#ifndef BASIRA_QUALITY_ANALYSIS_H
#define BASIRA_QUALITY_ANALYSIS_H

#include <stdint.h>

#include "basira/error.h"
#include "basira/image.h"
#include "basira/quality.h"

#define BASIRA_QA_WORK_SIDE 200

typedef struct basira_qa_work {
    int w, h, n;
    float *Y;         /* luma (Rec. 601 on gamma-encoded values), 0..255 */
    float *L, *A, *B; /* CIELAB, D65 */
    uint8_t *maxc;    /* max(R, G, B) */
    uint8_t *minc;    /* min(R, G, B) */
    uint8_t *valid;   /* 1 = inside the field of view (not a dermoscope's black vignette) */
    uint8_t *lesion;  /* 1 = the lesion region (largest connected region found) */
} basira_qa_work;

typedef struct basira_qa_features {
    int orig_short_side;    /* shorter side of the photo as taken */
    double laplacian_var;   /* variance of the Laplacian of Y */
    double bright_p99;      /* 99th percentile of max(R,G,B): how bright the brightest parts are */
    double clipped_frac;    /* share of pixels with a channel >= 250 */
    double glare_frac;      /* share of the image in near-white, colourless blobs */
    double y_range;         /* 98th - 2nd percentile of Y */
    double cast_dist;       /* distance of the mean (a*, b*) from the skin chromaticity */
    double lesion_contrast; /* colour difference (Delta E) lesion / surrounding skin */
    double lesion_area;     /* share of the field of view covered by the lesion region */
    double lesion_border;   /* share of the lesion's outline lying on the image border */
} basira_qa_features;

/* Resample to the working size and compute every per-pixel plane and the lesion mask. */
basira_code basira_qa_work_init(const basira_image *img, basira_qa_work *w, basira_error *err);
void basira_qa_work_free(basira_qa_work *w);

/* All measurements of the quality gate. */
void basira_qa_features_compute(const basira_image *img, const basira_qa_work *w,
                                basira_qa_features *f);

/* The skin tone from the measurements of one photo (skin_tone.c). */
basira_code basira_skin_tone_from_work(const basira_qa_work *w, basira_skin_tone *out,
                                       basira_error *err);

/* Whether the photo shows skin at all (scene.c). */
void basira_scene_from_work(const basira_image *img, const basira_qa_work *w, basira_scene *out);

/* p-th quantile (0..1) of v[i] in [lo, hi] over i where use[i] (use NULL = all); 0 if none. */
double basira_qa_quantile(const float *v, const uint8_t *use, int n, float lo, float hi, double p);

/* sRGB 8-bit -> CIELAB (D65). */
void basira_srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, float *L, float *A, float *B);

#endif
