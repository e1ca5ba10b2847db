/*
 * pixels.h - Clean Pixel Data for devices the data steward knows: rules that blank the
 * rectangles where a given device burns text into its images (pixels.c).
 */
#ifndef BASIRA_DEID_PIXELS_H
#define BASIRA_DEID_PIXELS_H

#include "basira/error.h"
#include "deid/dcm.h"

#define DEID_MAX_PIXEL_RULES 64
#define DEID_MAX_RECTS 8

typedef struct deid_pixel_rule {
    char manufacturer[65], model[65]; /* (0008,0070), (0008,1090), compared exactly */
    int rows, cols;                   /* the image size the rectangles are for */
    int n_rects;
    long rect[DEID_MAX_RECTS][4]; /* x, y, width, height in pixels */
} deid_pixel_rule;

typedef struct deid_pixel_rules {
    int n;
    deid_pixel_rule r[DEID_MAX_PIXEL_RULES];
} deid_pixel_rules;

/* One rule per line: MANUFACTURER|MODEL|ROWSxCOLS|x,y,w,h[;x,y,w,h...]; '#' comments. */
basira_code deid_pixel_rules_load(const char *path, deid_pixel_rules *out, basira_error *err);
/* The rule for the device and size of the data set, or NULL. */
const deid_pixel_rule *deid_pixel_rules_match(const deid_pixel_rules *rules, deid_node *ds);
/* Blank the rule's rectangles in every frame. */
basira_code deid_pixel_rule_apply(const deid_pixel_rule *r, deid_dcm *d, basira_error *err);

#endif
