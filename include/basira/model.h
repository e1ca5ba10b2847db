/*
 * model.h - turning a photo into the network's input, identically in training
 * and in use. Preprocessing parameters are stored in the model file so that a
 * model always sees what it was trained on.
 *
 * Steps: optional colour constancy (Shades of Gray, Minkowski p = 6: removes the
 * colour cast of the light and camera, which differs between clinics), resize
 * of the whole image to input_w x input_h (aspect not kept: the lesion is never
 * cropped away), scale to [0,1], per-channel normalisation (x - mean) / std,
 * output planar CHW float32.
 */
#ifndef BASIRA_MODEL_H
#define BASIRA_MODEL_H

#include <jansson.h>

#include "basira/error.h"
#include "basira/image.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum basira_colour_constancy {
    BASIRA_CC_NONE = 0,
    BASIRA_CC_SHADES_OF_GRAY = 1,
} basira_colour_constancy;

typedef struct basira_preprocess {
    int input_w, input_h;
    float mean[3], std[3];
    basira_colour_constancy colour_constancy;
} basira_preprocess;

/* 128x128, ImageNet-like mean/std, Shades of Gray. */
void basira_preprocess_default(basira_preprocess *p);

/* {"input_size":[w,h], "mean":[..], "std":[..], "colour_constancy":"shades_of_gray"|"none"} */
basira_code basira_preprocess_from_json(const json_t *j, basira_preprocess *out, basira_error *err);
json_t *basira_preprocess_to_json(const basira_preprocess *p);

/* Colour constancy in place on packed RGB (3*w*h bytes). */
void basira_colour_constancy_apply(basira_colour_constancy cc, unsigned char *rgb, int w, int h);

/* img -> chw[3][input_h][input_w] normalised floats. */
basira_code basira_preprocess_image(const basira_preprocess *p, const basira_image *img,
                                    float *chw, basira_error *err);

/* Same from packed RGB already at input_w x input_h (used after augmentation in training). */
void basira_preprocess_rgb(const basira_preprocess *p, const unsigned char *rgb, float *chw);

#ifdef __cplusplus
}
#endif
#endif
