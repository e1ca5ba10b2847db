/*
 * quality.h - is this photo good enough to analyse? And what skin tone surrounds the lesion?
 *
 * basira_quality_assess() measures focus, exposure, glare, contrast, colour cast,
 * resolution and framing of the lesion, compares each to a threshold calibrated
 * on real images, and for each failed check gives a stable code and a short
 * instruction for the person holding the phone, in the user's language.
 *
 * basira_skin_tone_estimate() computes the Individual Typology Angle (ITA) of the
 * healthy skin around the lesion and maps it to the six usual categories.
 *
 * The checks, always reported in this order (codes are stable, for JSON and APIs):
 *   "resolution"       shorter side of the photo as taken, in pixels (>= limit)
 *   "blur"             variance of the Laplacian of luma at 200 px (>= limit)
 *   "underexposed"     99th percentile of max(R,G,B) (>= limit)
 *   "overexposed"      share of pixels with a channel >= 250 (<= limit)
 *   "glare"            share of the photo in saturated white blobs (<= limit)
 *   "low_contrast"     luma range between the 2nd and 98th percentiles (>= limit)
 *   "colour_cast"      distance of the mean a*b* from skin chromaticity (<= limit)
 *   "no_lesion"        Delta E between the lesion region and the skin around it (>= limit)
 *   "lesion_cut_off"   share of the lesion's outline on the picture's edge (<= limit)
 *   "lesion_too_small" share of the picture covered by the lesion region (>= limit)
 * The limits and the data they were calibrated on are explained in src/quality/quality.c.
 * Both functions measure a copy resampled to 200 px on the longer side: a few
 * milliseconds whatever the size of the photo. Thread-safe (no shared state).
 */
#ifndef BASIRA_QUALITY_H
#define BASIRA_QUALITY_H

#include <jansson.h>

#include "basira/error.h"
#include "basira/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BASIRA_QUALITY_MAX_CHECKS 16

typedef struct basira_quality_check {
    const char *code;    /* stable, e.g. "blur", "underexposed", "glare" (static string) */
    double value;        /* the measurement */
    double threshold;    /* the limit it was compared with */
    int passed;          /* 1 if within the limit */
    const char *message; /* localised instruction for the photographer (static string) */
    const char *msgid;   /* the same instruction untranslated: basira_translate() it per request */
} basira_quality_check;

typedef struct basira_quality_report {
    int ok; /* 1 if every check passed */
    int n_checks;
    basira_quality_check checks[BASIRA_QUALITY_MAX_CHECKS];
} basira_quality_report;

/* Measure every check. Fails only on invalid arguments; a bad photo is a report with ok = 0. */
basira_code basira_quality_assess(const basira_image *img, basira_quality_report *out,
                                  basira_error *err);

/*
 * The untranslated instruction (msgid) of a check code ("blur", "glare", ...), for
 * saying it in another language than the process's (basira_translate); NULL when
 * the code is unknown.
 */
const char *basira_quality_advice(const char *code);

/* {"ok": bool, "checks": [{"code","value","threshold","passed","message"}]}. New reference. */
json_t *basira_quality_report_json(const basira_quality_report *r);

typedef enum basira_skin_tone_category {
    BASIRA_TONE_UNKNOWN = 0,
    BASIRA_TONE_VERY_LIGHT,   /* ITA > 55 */
    BASIRA_TONE_LIGHT,        /* 41 < ITA <= 55 */
    BASIRA_TONE_INTERMEDIATE, /* 28 < ITA <= 41 */
    BASIRA_TONE_TAN,          /* 10 < ITA <= 28 */
    BASIRA_TONE_BROWN,        /* -30 < ITA <= 10 */
    BASIRA_TONE_DARK,         /* ITA <= -30 */
} basira_skin_tone_category;

typedef struct basira_skin_tone {
    double ita;                         /* degrees */
    basira_skin_tone_category category; /* UNKNOWN when too little healthy skin was found */
    double skin_fraction;               /* share of the image used as healthy skin */
} basira_skin_tone;

basira_code basira_skin_tone_estimate(const basira_image *img, basira_skin_tone *out,
                                      basira_error *err);

basira_skin_tone_category basira_skin_tone_category_from_ita(double ita);
/* "very_light", "light", "intermediate", "tan", "brown", "dark", "unknown". */
const char *basira_skin_tone_category_code(basira_skin_tone_category c);

/*
 * The quality gate and the skin tone of one photo at once: the same results as
 * basira_quality_assess() followed by basira_skin_tone_estimate(), for about half
 * the work (they share the resampled copy and its colour planes). tone may be NULL.
 * Fails only on invalid arguments, an image too narrow to assess, or no memory.
 */
basira_code basira_photo_assess(const basira_image *img, basira_quality_report *quality,
                                basira_skin_tone *tone, basira_error *err);

/*
 * Does the photo show skin at all (scene.c)? A document, a screenshot, a black screen
 * or a blank wall does not: shows_skin = 0, and triage refuses it before any model
 * scores it. See scene.c for the measurements and what they cannot see.
 */
typedef struct basira_scene {
    int shows_skin;         /* 1 = enough skin colours, not a flat rendered picture */
    double skin_fraction;   /* share of the field of view with skin (or lesion) colours */
    double flat_fraction;   /* share of the picture in perfectly flat areas (pages, screens) */
    double field_fraction;  /* share of the picture inside the field of view */
    double lesion_contrast; /* Delta E of the most distinct region against the rest */
    double colour_fraction; /* share of the field of view with any colour (chroma >= 6) */
    double bright_fraction; /* share of the field of view as light as paper (L* > 85) */
} basira_scene;

basira_code basira_scene_assess(const basira_image *img, basira_scene *out, basira_error *err);

/* basira_photo_assess() plus the scene, from the same resampled copy. scene may be NULL. */
basira_code basira_photo_assess_scene(const basira_image *img, basira_quality_report *quality,
                                      basira_skin_tone *tone, basira_scene *scene,
                                      basira_error *err);

/* {"shows_skin", "skin_fraction", "flat_fraction", "field_fraction", "lesion_contrast"}. */
json_t *basira_scene_json(const basira_scene *s);

/* {"ita": number, "category": code}. New reference. */
json_t *basira_skin_tone_json(const basira_skin_tone *t);

#ifdef __cplusplus
}
#endif
#endif
