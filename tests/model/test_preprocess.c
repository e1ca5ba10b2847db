/* test_preprocess.c - colour constancy, normalisation, CHW layout, JSON of the parameters. */
#include "basira/model.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

/* Deterministic pseudo-random bytes (xorshift), so the tests never depend on rand(). */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* A textured, roughly skin-coloured image with a darker "lesion" in the middle. */
static unsigned char *make_skin(int w, int h, uint32_t seed)
{
    unsigned char *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int noise = (int)(rng_next(&seed) % 40) - 20;
            int dx = x - w / 2, dy = y - h / 2;
            int lesion = dx * dx + dy * dy < (w * h) / 16;
            int base[3] = {190, 140, 120};
            if (lesion) {
                base[0] = 110;
                base[1] = 70;
                base[2] = 60;
            }
            for (int c = 0; c < 3; c++) {
                int v = base[c] + noise;
                rgb[3 * (y * w + x) + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return rgb;
}

static double minkowski6(const unsigned char *rgb, size_t npix, int c)
{
    double acc = 0;
    for (size_t i = 0; i < npix; i++) {
        double x = rgb[3 * i + c] / 255.0;
        acc += pow(x, 6);
    }
    return 255.0 * pow(acc / npix, 1.0 / 6);
}

static void test_default(void)
{
    basira_preprocess p;
    basira_preprocess_default(&p);
    CHECK_EQ_INT(p.input_w, 128);
    CHECK_EQ_INT(p.input_h, 128);
    CHECK_NEAR(p.mean[0], 0.485, 1e-6);
    CHECK_NEAR(p.std[2], 0.225, 1e-6);
    CHECK(p.colour_constancy == BASIRA_CC_SHADES_OF_GRAY);
}

/* A uniform coloured image becomes grey with the luminance it had (Rec. 709 weights). */
static void test_cc_known_values(void)
{
    unsigned char rgb[4 * 4 * 3];
    for (int i = 0; i < 16; i++) {
        rgb[3 * i] = 200;
        rgb[3 * i + 1] = 100;
        rgb[3 * i + 2] = 50;
    }
    double lum = 0.2126 * 200 + 0.7152 * 100 + 0.0722 * 50; /* 117.65 */
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, rgb, 4, 4);
    for (int i = 0; i < 16; i++)
        for (int c = 0; c < 3; c++)
            CHECK_EQ_INT(rgb[3 * i + c], (int)lround(lum));

    /* NONE leaves pixels untouched. */
    unsigned char keep[3] = {10, 20, 30};
    basira_colour_constancy_apply(BASIRA_CC_NONE, keep, 1, 1);
    CHECK(keep[0] == 10 && keep[1] == 20 && keep[2] == 30);

    /* A black image stays black (no division by zero). */
    unsigned char black[2 * 2 * 3] = {0};
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, black, 2, 2);
    for (int i = 0; i < 12; i++)
        CHECK_EQ_INT(black[i], 0);

    /* A single dead channel is not blown up beyond the gain cap (x4 before scaling). */
    unsigned char dead[2 * 3] = {200, 200, 0, 100, 100, 0};
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, dead, 2, 1);
    CHECK_EQ_INT(dead[2], 0);
    CHECK_EQ_INT(dead[5], 0);
}

/* A colour cast of the light (per-channel gain) is removed: the corrected photo with and
 * without the cast are nearly identical, and the channels' Minkowski means are balanced. */
static void test_cc_removes_cast(void)
{
    const int w = 64, h = 48;
    size_t npix = (size_t)w * h;
    unsigned char *ref = make_skin(w, h, 12345);
    unsigned char *cast = malloc(npix * 3);
    static const double gain[3] = {1.25, 0.95, 0.70}; /* warm tungsten-like light */
    for (size_t i = 0; i < npix; i++)
        for (int c = 0; c < 3; c++) {
            double v = ref[3 * i + c] * gain[c];
            cast[3 * i + c] = (unsigned char)(v > 255 ? 255 : v + 0.5);
        }
    double before_r = minkowski6(cast, npix, 0), before_b = minkowski6(cast, npix, 2);
    CHECK(before_r / before_b > 1.5); /* the cast is strong */

    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, ref, w, h);
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, cast, w, h);
    double m[3];
    for (int c = 0; c < 3; c++)
        m[c] = minkowski6(cast, npix, c);
    CHECK_MSG(fabs(m[0] / m[2] - 1) < 0.03 && fabs(m[1] / m[2] - 1) < 0.03,
              "after CC: %.1f %.1f %.1f", m[0], m[1], m[2]);
    double diff = 0;
    for (size_t i = 0; i < npix * 3; i++)
        diff += fabs((double)ref[i] - cast[i]);
    diff /= (double)(npix * 3);
    CHECK_MSG(diff < 3.0, "mean abs difference %.2f", diff);
    free(ref);
    free(cast);
}

/* Mean luminance is kept on a textured image (no clipping at these levels). */
static void test_cc_keeps_luminance(void)
{
    const int w = 40, h = 30;
    size_t npix = (size_t)w * h;
    unsigned char *img = make_skin(w, h, 777);
    double before = 0, after = 0;
    for (size_t i = 0; i < npix; i++)
        before += 0.2126 * img[3 * i] + 0.7152 * img[3 * i + 1] + 0.0722 * img[3 * i + 2];
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, img, w, h);
    for (size_t i = 0; i < npix; i++)
        after += 0.2126 * img[3 * i] + 0.7152 * img[3 * i + 1] + 0.0722 * img[3 * i + 2];
    CHECK_NEAR(after / npix, before / npix, 0.6);
    free(img);
}

/* Planar CHW, row-major, (v/255 - mean)/std. */
static void test_layout_chw(void)
{
    basira_preprocess p;
    basira_preprocess_default(&p);
    p.input_w = 5;
    p.input_h = 3;
    p.colour_constancy = BASIRA_CC_NONE;
    p.mean[0] = 0.5f;
    p.mean[1] = 0.0f;
    p.mean[2] = 0.25f;
    p.std[0] = 0.25f;
    p.std[1] = 1.0f;
    p.std[2] = 0.5f;
    unsigned char rgb[5 * 3 * 3];
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++)
            for (int c = 0; c < 3; c++)
                rgb[3 * (y * 5 + x) + c] = (unsigned char)(17 * (y * 5 + x) + 60 * c);
    float chw[3 * 15];
    basira_preprocess_rgb(&p, rgb, chw);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 5; x++) {
                float want = (rgb[3 * (y * 5 + x) + c] / 255.0f - p.mean[c]) / p.std[c];
                if (fabsf(chw[c * 15 + y * 5 + x] - want) > 1e-5f)
                    bad++;
            }
    CHECK_EQ_INT(bad, 0);
    /* Extremes: 255 with mean .5 std .25 -> 2; 0 -> -2. */
    unsigned char ext[2 * 3] = {255, 0, 0, 0, 0, 0};
    p.input_w = 2;
    p.input_h = 1;
    float out[6];
    basira_preprocess_rgb(&p, ext, out);
    CHECK_NEAR(out[0], 2.0, 1e-6);
    CHECK_NEAR(out[1], -2.0, 1e-6);
}

/* The fused path equals colour constancy followed by plain normalisation. */
static void test_fused_equals_two_steps(void)
{
    const int w = 16, h = 12;
    unsigned char *img = make_skin(w, h, 99);
    basira_preprocess p;
    basira_preprocess_default(&p);
    p.input_w = w;
    p.input_h = h;
    float *a = malloc(sizeof(float) * 3 * w * h), *b = malloc(sizeof(float) * 3 * w * h);
    basira_preprocess_rgb(&p, img, a);
    basira_colour_constancy_apply(BASIRA_CC_SHADES_OF_GRAY, img, w, h);
    p.colour_constancy = BASIRA_CC_NONE;
    basira_preprocess_rgb(&p, img, b);
    int same = 1;
    for (int i = 0; i < 3 * w * h; i++)
        if (a[i] != b[i])
            same = 0;
    CHECK(same);
    free(a);
    free(b);
    free(img);
}

static void test_json(void)
{
    basira_error err;
    basira_preprocess p, q;
    basira_preprocess_default(&p);
    p.input_w = 96;
    p.input_h = 64;
    p.colour_constancy = BASIRA_CC_NONE;
    json_t *j = basira_preprocess_to_json(&p);
    CHECK(j != NULL);
    CHECK_EQ_INT(basira_preprocess_from_json(j, &q, &err), BASIRA_OK);
    CHECK_EQ_INT(q.input_w, 96);
    CHECK_EQ_INT(q.input_h, 64);
    CHECK(q.colour_constancy == BASIRA_CC_NONE);
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(q.mean[c], p.mean[c], 1e-6);
        CHECK_NEAR(q.std[c], p.std[c], 1e-6);
    }
    json_decref(j);

    /* A single integer means a square input. */
    j = json_loads("{\"input_size\":128,\"mean\":[0.5,0.5,0.5],\"std\":[0.2,0.2,0.2],"
                   "\"colour_constancy\":\"shades_of_gray\"}",
                   0, NULL);
    CHECK_EQ_INT(basira_preprocess_from_json(j, &q, &err), BASIRA_OK);
    CHECK(q.input_w == 128 && q.input_h == 128 && q.colour_constancy == BASIRA_CC_SHADES_OF_GRAY);
    json_decref(j);

    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"input_size\":0,\"mean\":[0,0,0],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":100000,\"mean\":[0,0,0],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":\"128\",\"mean\":[0,0,0],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":[128],\"mean\":[0,0,0],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":128,\"mean\":[0,0],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":128,\"mean\":[0,0,\"x\"],\"std\":[1,1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":128,\"mean\":[0,0,0],\"std\":[1,0,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":128,\"mean\":[0,0,0],\"std\":[1,-1,1],\"colour_constancy\":\"none\"}",
        "{\"input_size\":128,\"mean\":[0,0,0],\"std\":[1,1,1],\"colour_constancy\":\"grey\"}",
        "{\"input_size\":128,\"mean\":[0,0,0],\"std\":[1,1,1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        basira_error_clear(&err);
        basira_code rc = basira_preprocess_from_json(b, &q, &err);
        CHECK_MSG(rc == BASIRA_E_MODEL && err.message[0], "accepted %s", bad[i]);
        json_decref(b);
    }
    CHECK_EQ_INT(basira_preprocess_from_json(NULL, &q, &err), BASIRA_E_MODEL);
}

/* A photo lying across a non-square input is turned a quarter turn clockwise, pixel for
 * pixel, then resized; square inputs and photos already lying the same way are not. */
static void test_fit_turns_portrait(void)
{
    CHECK_EQ_INT(basira_preprocess_turns(3, 5, 5, 3), 1);
    CHECK_EQ_INT(basira_preprocess_turns(5, 3, 3, 5), 1);
    CHECK_EQ_INT(basira_preprocess_turns(5, 3, 5, 3), 0);
    CHECK_EQ_INT(basira_preprocess_turns(3, 5, 4, 4), 0); /* square input */
    CHECK_EQ_INT(basira_preprocess_turns(4, 4, 5, 3), 0); /* square photo */
    const int iw = 3, ih = 5;
    unsigned char rgb[3 * 3 * 5];
    for (int i = 0; i < (int)sizeof rgb; i++)
        rgb[i] = (unsigned char)(7 * i + 1);
    basira_image *img = NULL, *out = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_from_rgb(rgb, iw, ih, &img, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_preprocess_fit(img, ih, iw, &out, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_image_width(out), ih);
    CHECK_EQ_INT(basira_image_height(out), iw);
    /* Clockwise: out(x, y) = in(y, ih - 1 - x); the top-left of the result is the
     * bottom-left of the portrait. */
    int bad = 0;
    const uint8_t *o = basira_image_pixels(out);
    for (int y = 0; y < iw; y++)
        for (int x = 0; x < ih; x++)
            for (int c = 0; c < 3; c++)
                bad += o[3 * (y * ih + x) + c] != rgb[3 * ((ih - 1 - x) * iw + y) + c];
    CHECK_EQ_INT(bad, 0);
    basira_image_free(out);
    out = NULL;
    /* Already landscape for a landscape input: only resized, so the same size is a copy. */
    basira_image *land = NULL;
    CHECK_EQ_INT(basira_image_from_rgb(rgb, ih, iw, &land, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_preprocess_fit(land, ih, iw, &out, &err), BASIRA_OK);
    CHECK_EQ_INT(memcmp(basira_image_pixels(out), rgb, sizeof rgb), 0);
    basira_image_free(out);
    basira_image_free(land);
    CHECK_EQ_INT(basira_preprocess_fit(NULL, 5, 3, &out, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(out == NULL);
    CHECK_EQ_INT(basira_preprocess_fit(img, 0, 3, &out, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_preprocess_fit(img, 5, 3, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_image_free(img);
}

/* The model's input of a portrait photo for a 4:3 input is that of the same photo turned
 * by hand: what training (basira_preprocess_fit at its working size) also sees. */
static void test_portrait_preprocess_equals_turned(void)
{
    const int iw = 30, ih = 40;
    unsigned char *px = make_skin(iw, ih, 7), *turned = malloc(3 * (size_t)iw * ih);
    for (int y = 0; y < iw; y++)
        for (int x = 0; x < ih; x++)
            memcpy(turned + 3 * (y * ih + x), px + 3 * ((ih - 1 - x) * iw + y), 3);
    basira_image *a = NULL, *b = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_from_rgb(px, iw, ih, &a, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_image_from_rgb(turned, ih, iw, &b, &err), BASIRA_OK);
    basira_preprocess p;
    basira_preprocess_default(&p);
    p.input_w = 20;
    p.input_h = 15;
    float *fa = malloc(sizeof(float) * 3 * 20 * 15), *fb = malloc(sizeof(float) * 3 * 20 * 15);
    CHECK_EQ_INT(basira_preprocess_image(&p, a, fa, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_preprocess_image(&p, b, fb, &err), BASIRA_OK);
    CHECK_EQ_INT(memcmp(fa, fb, sizeof(float) * 3 * 20 * 15), 0);
    /* A square input never turns: the portrait and its turned copy then differ. */
    p.input_w = p.input_h = 16;
    CHECK_EQ_INT(basira_preprocess_image(&p, a, fa, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_preprocess_image(&p, b, fb, &err), BASIRA_OK);
    CHECK(memcmp(fa, fb, sizeof(float) * 3 * 16 * 16) != 0);
    free(fa);
    free(fb);
    basira_image_free(a);
    basira_image_free(b);
    free(px);
    free(turned);
}

int main(void)
{
    RUN(test_default);
    RUN(test_cc_known_values);
    RUN(test_cc_removes_cast);
    RUN(test_cc_keeps_luminance);
    RUN(test_layout_chw);
    RUN(test_fused_equals_two_steps);
    RUN(test_json);
    RUN(test_fit_turns_portrait);
    RUN(test_portrait_preprocess_equals_turned);
    return test_summary();
}
