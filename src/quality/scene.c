/*
 * scene.c - does the photo show skin at all? A document, a screenshot, a blank
 * wall or a room is refused before any model scores it (issue 11): a model
 * asked about a picture of a form still answers with a risk, and that answer
 * means nothing.
 *
 * Two measurements on the 200 px working copy (analysis.c), inside the field of
 * view (a dermatoscope's black corners are left out):
 *   skin_fraction  share of pixels whose CIELAB colour is one skin (or a skin
 *                  lesion) can have: lightness 8..98, a* >= 4 (some red), chroma
 *                  >= 6, hue angle between -20 and 85 degrees. Paper, print,
 *                  interface greys, blue and green UI colours and most walls fall
 *                  outside; every skin tone of Fitzpatrick17k types I-VI falls inside.
 *   flat_fraction  share of pixels in areas of exactly one colour (3x3 luma range
 *                  <= 1 and chroma within 1): rendered pages and screens have large
 *                  flat areas; a photo of skin has sensor noise and texture.
 * A photo is refused when less than SKIN_MIN of its field of view looks like skin,
 * or when more than FLAT_MAX of it is perfectly flat, or when there is almost no
 * field of view (a black screen). The limits are far from what any photo of
 * HAM10000 or Fitzpatrick17k measures (see docs/modality.md): a wrong refusal
 * costs a retake, a wrong pass costs a meaningless score, and both are rare.
 *
 * What it cannot see: a beige wall, a face or a whole body photographed from afar,
 * a photo of skin without any lesion, a printed photo of skin. Those pass.
 */
#include "analysis.h"
#include "basira/quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SKIN_MIN 0.02           /* at least this share of the field of view has skin colours */
#define FLAT_MAX 0.70           /* at most this share of the picture is perfectly flat */
#define FIELD_MIN 0.10          /* at least this share of the picture is not black border */
#define CONTRAST_MIN 8.0        /* with less skin colour: a lesion (Delta E) must stand out */
#define FLAT_LOW_SKIN_MAX 0.30  /* ... and the picture must not be flat */
#define BRIGHT_LOW_SKIN_MAX 0.5 /* ... nor mostly paper-white (L* > 85) */

static int skin_colour(float L, float a, float b)
{
    if (L < 8 || L > 98 || a < 4)
        return 0;
    double chroma = sqrt((double)a * a + (double)b * b);
    if (chroma < 6)
        return 0;
    double hue = atan2(b, a) * 180.0 / M_PI;
    return hue >= -20 && hue <= 85;
}

/* The rule (see the top of this file). */
static int scene_verdict(const basira_scene *s)
{
    if (s->field_fraction < FIELD_MIN || s->flat_fraction > FLAT_MAX)
        return 0;
    if (s->skin_fraction >= SKIN_MIN)
        return 1;
    /* Hardly any skin colour: a photo of skin under an odd light still shows a lesion
     * that stands out; a plain wall or a rendered page does not, or is flat. */
    return s->lesion_contrast >= CONTRAST_MIN && s->flat_fraction <= FLAT_LOW_SKIN_MAX &&
           s->bright_fraction <= BRIGHT_LOW_SKIN_MAX;
}

void basira_scene_from_work(const basira_image *img, const basira_qa_work *w, basira_scene *out)
{
    memset(out, 0, sizeof *out);
    basira_qa_features f;
    basira_qa_features_compute(img, w, &f);
    out->lesion_contrast = f.lesion_contrast;
    long valid = 0, skin = 0, flat = 0, colour = 0, bright = 0;
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++) {
            int i = y * w->w + x;
            if (w->valid[i]) {
                valid++;
                skin += skin_colour(w->L[i], w->A[i], w->B[i]);
                colour += hypotf(w->A[i], w->B[i]) >= 6.0f;
                bright += w->L[i] > 85.0f;
            }
            if (x == 0 || y == 0 || x == w->w - 1 || y == w->h - 1)
                continue;
            float lo = w->Y[i], hi = w->Y[i];
            int same = 1;
            for (int dy = -1; dy <= 1 && same; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int j = i + dy * w->w + dx;
                    lo = w->Y[j] < lo ? w->Y[j] : lo;
                    hi = w->Y[j] > hi ? w->Y[j] : hi;
                    if (fabsf(w->A[j] - w->A[i]) > 1 || fabsf(w->B[j] - w->B[i]) > 1) {
                        same = 0;
                        break;
                    }
                }
            flat += same && hi - lo <= 1.0f;
        }
    int inner = (w->w - 2) * (w->h - 2);
    out->field_fraction = w->n ? (double)valid / w->n : 0;
    out->skin_fraction = valid ? (double)skin / valid : 0;
    out->colour_fraction = valid ? (double)colour / valid : 0;
    out->bright_fraction = valid ? (double)bright / valid : 0;
    out->flat_fraction = inner > 0 ? (double)flat / inner : 0;
    out->shows_skin = scene_verdict(out);
}

basira_code basira_scene_assess(const basira_image *img, basira_scene *out, basira_error *err)
{
    if (!img || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    basira_qa_work w;
    basira_code rc = basira_qa_work_init(img, &w, err);
    if (rc)
        return rc;
    basira_scene_from_work(img, &w, out);
    basira_qa_work_free(&w);
    return BASIRA_OK;
}

json_t *basira_scene_json(const basira_scene *s)
{
    if (!s)
        return NULL;
    return json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "shows_skin", s->shows_skin, "skin_fraction",
                     s->skin_fraction, "colour_fraction", s->colour_fraction, "flat_fraction",
                     s->flat_fraction, "field_fraction", s->field_fraction, "lesion_contrast",
                     s->lesion_contrast);
}
