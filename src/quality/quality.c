/*
 * quality.c - the photo quality gate.
 *
 * Each check compares one measurement (analysis.c) with a limit. The limits are
 * physical statements about the photo, calibrated on the HAM10000 and
 * Fitzpatrick17k images (tests/quality/test_quality_data.c prints the rates):
 * they accept the real photos as they are and refuse the same photos once
 * blurred, under- or over-exposed or covered by a reflection.
 */
#include "basira/quality.h"
#include "analysis.h"
#include "core/i18n.h"

#include <string.h>

/*
 * The limits, measured at the working size (longer side 200 px). The figures in
 * brackets are percentiles measured on every 4th image of HAM10000 (1766) and
 * Fitzpatrick17k (715), as they are and degraded (tests/quality/test_quality_data.c).
 *
 * MIN_SHORT_SIDE: fewer than 80 px across the shorter side of the photo as
 *   taken leaves too few pixels on a lesion of a few millimetres for the
 *   classifier (128 px input). [Fitzpatrick thumbnails: 1st pct 76, 3rd pct 84.]
 * MIN_LAPLACIAN_VAR: variance of the Laplacian of luma. Sharp photos have edges
 *   (lesion border, skin texture, hair) with luma steps of several levels
 *   between neighbours; a Gaussian blur of sigma 3 px at 200 px flattens them
 *   by more than an order of magnitude. [Sharp: 1st pct 10.1 HAM, 12.3
 *   Fitzpatrick; blurred: 99th pct 1.6 HAM, 6.8 Fitzpatrick.]
 * MIN_BRIGHT_P99: even the brightest 1% of the photo below 70/255 (27% of full
 *   scale) means the picture is too dark to show colour and texture. [As is:
 *   1st pct 173 HAM, 158 Fitzpatrick; pixel values x0.25: at most 64.]
 * MAX_CLIPPED_FRAC: more than half of the pixels with a channel at 250+ means
 *   most of the picture is burnt to white and its colour is lost. [As is: 99th
 *   pct 0.33 HAM, 0.30 Fitzpatrick; values x4: 1st pct 0.89 HAM, 0.54 Fitzpatrick.]
 * MAX_GLARE_FRAC: saturated white blobs covering more than 3% of the photo: a
 *   reflection hides that skin. [As is: 99th pct 0 HAM, 97th pct 0.018
 *   Fitzpatrick; white disc of radius 15% of the width: 1st pct 0.043.]
 * MIN_Y_RANGE: less than 24 luma levels between the 2nd and 98th percentiles:
 *   a washed-out picture (fogged lens, haze). [As is: 1st pct 38 HAM, 55 Fitzpatrick.]
 * MAX_CAST_DIST: mean chromaticity further than 40 units of a*b* from that of
 *   skin (a* 15, b* 18): coloured lamp, wrong white balance or a filter. [As is:
 *   99th pct 30 HAM, 29 Fitzpatrick.]
 * MIN_LESION_CONTRAST: a lesion region differing from the surrounding skin by
 *   less than Delta E 5 (a couple of just-noticeable differences) is noise in
 *   skin, not a lesion. [As is: 1st pct 7.7 HAM, 7.3 Fitzpatrick.]
 * MAX_LESION_BORDER: more than 55% of the lesion's outline on the picture's
 *   edge: the lesion runs out of the frame on more than one side (a lesion cut
 *   by one edge only has at most about half of its outline there). [As is: 99th
 *   pct 0.46 HAM, 0.57 Fitzpatrick, whose atlas photos often show a whole
 *   region of skin disease.]
 * MIN_LESION_AREA: a lesion region smaller than 0.3% of the picture is a speck
 *   (about 9 x 9 px of 200 x 150): the photo was taken from too far away.
 *   [As is: 1st pct 0.011 HAM, 0.021 Fitzpatrick.]
 */
#define MIN_SHORT_SIDE 80
#define MIN_LAPLACIAN_VAR 7.0
#define MIN_BRIGHT_P99 70.0
#define MAX_CLIPPED_FRAC 0.50
#define MAX_GLARE_FRAC 0.03
#define MIN_Y_RANGE 24.0
#define MAX_CAST_DIST 40.0
#define MIN_LESION_CONTRAST 5.0
#define MAX_LESION_BORDER 0.55
#define MIN_LESION_AREA 0.003

/*
 * The instruction of each check, for the person holding the phone. Kept as msgids
 * so that the clinic node can say them in each user's language
 * (basira_quality_advice); the report itself holds them in the process's language.
 */
static const struct {
    const char *code;
    const char *msgid;
} advice[] = {
    {"resolution",
     N_("The photo has too few pixels: use the phone's camera at full resolution, not a "
        "screenshot or a preview sent by a messaging app.")},
    {"blur",
     N_("The photo is blurred: hold the phone still, tap the lesion on the screen to focus, "
        "then take the photo again.")},
    {"underexposed",
     N_("The photo is too dark: move to daylight or switch on the room light (not the "
        "flash).")},
    {"overexposed",
     N_("The photo is too bright: avoid direct sunlight and the flash; use even, indirect "
        "light.")},
    {"glare", N_("A reflection hides part of the skin: switch off the flash and tilt the phone "
                 "slightly to avoid the shine.")},
    {"low_contrast",
     N_("The photo is washed out: clean the camera lens and take the photo in good, even "
        "light.")},
    {"colour_cast",
     N_("The colours are wrong: take the photo in daylight, not under coloured lamps, and "
        "switch off any filter.")},
    {"no_lesion", N_("No lesion can be seen: put the lesion in the middle of the picture and move "
                     "closer.")},
    {"lesion_cut_off",
     N_("The lesion is cut off at the edge: step back a little so that the whole lesion and "
        "some skin around it are in the picture.")},
    {"lesion_too_small",
     N_("The lesion is too small in the picture: move closer (about 10 cm) and focus on "
        "it.")},
};

const char *basira_quality_advice(const char *code)
{
    for (size_t i = 0; code && i < sizeof advice / sizeof advice[0]; i++)
        if (!strcmp(advice[i].code, code))
            return advice[i].msgid;
    return NULL;
}

static void add(basira_quality_report *r, const char *code, double value, double threshold,
                int passed)
{
    const char *message = basira_quality_advice(code);
    if (r->n_checks >= BASIRA_QUALITY_MAX_CHECKS)
        return;
    basira_quality_check *c = &r->checks[r->n_checks++];
    c->code = code;
    c->value = value;
    c->threshold = threshold;
    c->passed = passed;
    c->message = message ? _(message) : "";
    c->msgid = message ? message : "";
    if (!passed)
        r->ok = 0;
}

/* The report of the quality gate from the measurements of one photo. */
static void report_from_work(const basira_image *img, const basira_qa_work *w,
                             basira_quality_report *out)
{
    memset(out, 0, sizeof *out);
    basira_qa_features f;
    basira_qa_features_compute(img, w, &f);

    out->ok = 1;
    add(out, "resolution", f.orig_short_side, MIN_SHORT_SIDE, f.orig_short_side >= MIN_SHORT_SIDE);
    add(out, "blur", f.laplacian_var, MIN_LAPLACIAN_VAR, f.laplacian_var >= MIN_LAPLACIAN_VAR);
    add(out, "underexposed", f.bright_p99, MIN_BRIGHT_P99, f.bright_p99 >= MIN_BRIGHT_P99);
    add(out, "overexposed", f.clipped_frac, MAX_CLIPPED_FRAC, f.clipped_frac <= MAX_CLIPPED_FRAC);
    add(out, "glare", f.glare_frac, MAX_GLARE_FRAC, f.glare_frac <= MAX_GLARE_FRAC);
    add(out, "low_contrast", f.y_range, MIN_Y_RANGE, f.y_range >= MIN_Y_RANGE);
    add(out, "colour_cast", f.cast_dist, MAX_CAST_DIST, f.cast_dist <= MAX_CAST_DIST);
    int lesion = f.lesion_contrast >= MIN_LESION_CONTRAST;
    add(out, "no_lesion", f.lesion_contrast, MIN_LESION_CONTRAST, lesion);
    /* Without a lesion, the framing of the lesion cannot be judged: not reported as failed. */
    add(out, "lesion_cut_off", f.lesion_border, MAX_LESION_BORDER,
        !lesion || f.lesion_border <= MAX_LESION_BORDER);
    add(out, "lesion_too_small", f.lesion_area, MIN_LESION_AREA,
        !lesion || f.lesion_area >= MIN_LESION_AREA);
}

basira_code basira_quality_assess(const basira_image *img, basira_quality_report *out,
                                  basira_error *err)
{
    return basira_photo_assess(img, out, NULL, err);
}

/*
 * Both analyses of a photo work on the same resampled copy and per-pixel planes
 * (analysis.c), which cost more than the checks themselves: make them once.
 */
basira_code basira_photo_assess(const basira_image *img, basira_quality_report *quality,
                                basira_skin_tone *tone, basira_error *err)
{
    return basira_photo_assess_scene(img, quality, tone, NULL, err);
}

basira_code basira_photo_assess_scene(const basira_image *img, basira_quality_report *quality,
                                      basira_skin_tone *tone, basira_scene *scene,
                                      basira_error *err)
{
    if (!img || !quality)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    memset(quality, 0, sizeof *quality);
    basira_qa_work w;
    basira_code rc = basira_qa_work_init(img, &w, err);
    if (rc)
        return rc;
    report_from_work(img, &w, quality);
    if (tone)
        rc = basira_skin_tone_from_work(&w, tone, err);
    if (scene)
        basira_scene_from_work(img, &w, scene);
    basira_qa_work_free(&w);
    return rc;
}

json_t *basira_quality_report_json(const basira_quality_report *r)
{
    if (!r)
        return NULL;
    json_t *checks = json_array();
    if (!checks)
        return NULL;
    for (int i = 0; i < r->n_checks && i < BASIRA_QUALITY_MAX_CHECKS; i++) {
        const basira_quality_check *c = &r->checks[i];
        json_t *o = json_pack("{s:s, s:f, s:f, s:b, s:s}", "code", c->code ? c->code : "", "value",
                              c->value, "threshold", c->threshold, "passed", c->passed, "message",
                              c->message ? c->message : "");
        if (!o || json_array_append_new(checks, o)) {
            json_decref(checks);
            return NULL;
        }
    }
    return json_pack("{s:b, s:o}", "ok", r->ok, "checks", checks);
}
