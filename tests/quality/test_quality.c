/*
 * test_quality.c - the quality gate and the skin tone on synthetic photos whose
 * defects are known: each defect must trip its own check, a good photo none.
 */
#include "basira/quality.h"
#include "quality/analysis.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

typedef struct scene {
    int w, h;
    uint8_t skin[3];
    uint8_t lesion[3];
    double lx, ly, lr; /* lesion centre and radius, as fractions of the width */
    int hair;          /* draw dark hairs */
    unsigned seed;
} scene;

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static uint8_t clamp8(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
}

/*
 * Skin with texture (pores, fine lines: +-12 levels of smooth-ish noise at 2 px
 * scale) and a round lesion with a soft 2 px edge, like a sharp phone photo.
 */
static uint8_t *render(const scene *sc)
{
    int w = sc->w, h = sc->h;
    uint8_t *px = malloc((size_t)w * h * 3);
    unsigned s = sc->seed ? sc->seed : 1;
    double cx = sc->lx * w, cy = sc->ly * w, r = sc->lr * w;
    double scale = w / 200.0; /* texture scales with the picture */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* Noise on a 200 px grid, so that it looks the same at every size. */
            unsigned cell = (unsigned)(x / scale) * 7919u + (unsigned)(y / scale) * 104729u + s;
            double t =
                10 * sin(x / (1.3 * scale)) * cos(y / (1.7 * scale)) + (rnd(&cell) % 9) - 4.0;
            double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
            double inside = d < r - 2 * scale   ? 1
                            : d > r + 2 * scale ? 0
                                                : (r + 2 * scale - d) / (4 * scale);
            if (sc->lr <= 0)
                inside = 0;
            for (int c = 0; c < 3; c++) {
                double v = sc->skin[c] * (1 - inside) + sc->lesion[c] * inside + t;
                px[((size_t)y * w + x) * 3 + c] = clamp8(v);
            }
        }
    if (sc->hair) {
        for (int k = 0; k < 12; k++) {
            double x0 = rnd(&s) % w, slope = ((int)(rnd(&s) % 200) - 100) / 100.0;
            for (int y = 0; y < h; y++) {
                int x = (int)(x0 + slope * y);
                for (int dx = 0; dx < (int)(1 + scale); dx++)
                    if (x + dx >= 0 && x + dx < w)
                        memset(px + ((size_t)y * w + x + dx) * 3, 30, 3);
            }
        }
    }
    return px;
}

static basira_image *make(const scene *sc)
{
    uint8_t *px = render(sc);
    basira_image *img = NULL;
    basira_error err;
    CHECK(!basira_image_from_rgb(px, sc->w, sc->h, &img, &err));
    free(px);
    return img;
}

static const basira_quality_check *find(const basira_quality_report *r, const char *code)
{
    for (int i = 0; i < r->n_checks; i++)
        if (!strcmp(r->checks[i].code, code))
            return &r->checks[i];
    return NULL;
}

/* The report fails exactly on `code` (and possibly on the codes listed in also). */
static void expect_failure(const char *what, basira_image *img, const char *code, const char *also)
{
    basira_quality_report r;
    basira_error err;
    CHECK_EQ_INT(basira_quality_assess(img, &r, &err), BASIRA_OK);
    CHECK_MSG(!r.ok, "%s: accepted", what);
    const basira_quality_check *c = find(&r, code);
    CHECK_MSG(c && !c->passed, "%s: check %s passed (value %g, limit %g)", what, code,
              c ? c->value : -1, c ? c->threshold : -1);
    for (int i = 0; i < r.n_checks; i++) {
        if (r.checks[i].passed || !strcmp(r.checks[i].code, code))
            continue;
        CHECK_MSG(also && strstr(also, r.checks[i].code), "%s: unexpected failure of %s (%g)", what,
                  r.checks[i].code, r.checks[i].value);
    }
    basira_image_free(img);
}

static const scene good = {200, 150, {215, 170, 145}, {110, 70, 50}, 0.5, 0.375, 0.12, 0, 7};

static void test_good_photo(void)
{
    basira_image *img = make(&good);
    basira_quality_report r;
    basira_error err;
    CHECK_EQ_INT(basira_quality_assess(img, &r, &err), BASIRA_OK);
    CHECK(r.ok);
    CHECK_EQ_INT(r.n_checks, 10);
    const char *codes[] = {
        "resolution",   "blur",        "underexposed", "overexposed",    "glare",
        "low_contrast", "colour_cast", "no_lesion",    "lesion_cut_off", "lesion_too_small"};
    for (int i = 0; i < 10; i++) {
        const basira_quality_check *c = find(&r, codes[i]);
        CHECK_MSG(c && c->passed, "%s (value %g, limit %g)", codes[i], c ? c->value : -1,
                  c ? c->threshold : -1);
        CHECK(c && c->message && c->message[0]);
    }
    /* The lesion region found is the drawn disc: pi*0.12^2*200/150 = 6.0% of the picture. */
    const basira_quality_check *area = find(&r, "lesion_too_small");
    CHECK(area && fabs(area->value - 0.060) < 0.015);

    json_t *j = basira_quality_report_json(&r);
    CHECK(j && json_is_true(json_object_get(j, "ok")));
    json_t *checks = json_object_get(j, "checks");
    CHECK(json_is_array(checks) && json_array_size(checks) == 10);
    json_t *c0 = json_array_get(checks, 0);
    CHECK(json_is_string(json_object_get(c0, "code")) &&
          json_is_number(json_object_get(c0, "value")) &&
          json_is_number(json_object_get(c0, "threshold")) &&
          json_is_boolean(json_object_get(c0, "passed")) &&
          json_is_string(json_object_get(c0, "message")));
    json_decref(j);
    basira_image_free(img);
}

/* The same scene at 4x the pixels: same verdict, focus measure of the same order. */
static void test_scale_invariance(void)
{
    scene big = good;
    big.w = 800, big.h = 600;
    basira_image *a = make(&good), *b = make(&big);
    basira_quality_report ra, rb;
    basira_error err;
    CHECK(!basira_quality_assess(a, &ra, &err));
    CHECK(!basira_quality_assess(b, &rb, &err));
    CHECK(ra.ok && rb.ok);
    double fa = find(&ra, "blur")->value, fb = find(&rb, "blur")->value;
    CHECK_MSG(fb > fa / 2 && fb < fa * 2, "focus %g at 200 px, %g at 800 px", fa, fb);
    basira_image_free(a);
    basira_image_free(b);
}

static basira_image *transformed(const scene *sc, double mul, double add, int blur_px)
{
    uint8_t *px = render(sc);
    size_t n = (size_t)sc->w * sc->h * 3;
    for (size_t i = 0; i < n; i++)
        px[i] = clamp8(px[i] * mul + add);
    basira_image *img = NULL, *small = NULL, *back = NULL;
    basira_error err;
    CHECK(!basira_image_from_rgb(px, sc->w, sc->h, &img, &err));
    free(px);
    if (blur_px) {
        /* Down and up again: detail finer than blur_px pixels is gone. */
        CHECK(!basira_image_resize(img, sc->w / blur_px, sc->h / blur_px, &small, &err));
        CHECK(small && !basira_image_resize(small, sc->w, sc->h, &back, &err));
        basira_image_free(small);
        basira_image_free(img);
        img = back;
    }
    return img;
}

static void test_defects(void)
{
    expect_failure("blurred", transformed(&good, 1, 0, 8), "blur", "low_contrast");
    expect_failure("dark", transformed(&good, 0.25, 0, 0), "underexposed", "low_contrast blur");
    expect_failure("bright", transformed(&good, 4, 0, 0), "overexposed",
                   "glare low_contrast blur no_lesion colour_cast");
    expect_failure("washed out", transformed(&good, 0.08, 150, 0), "low_contrast",
                   "blur no_lesion colour_cast");

    /* A white disc of radius 15% of the width beside the lesion. */
    uint8_t *px = render(&good);
    for (int y = 0; y < good.h; y++)
        for (int x = 0; x < good.w; x++)
            if ((x - 40) * (x - 40) + (y - 75) * (y - 75) <= 30 * 30)
                memset(px + ((size_t)y * good.w + x) * 3, 255, 3);
    basira_image *img = NULL;
    basira_error err;
    CHECK(!basira_image_from_rgb(px, good.w, good.h, &img, &err));
    free(px);
    expect_failure("glare", img, "glare", NULL);

    /* Blue light. */
    scene blue = good;
    blue.skin[0] = 120, blue.skin[1] = 150, blue.skin[2] = 230;
    blue.lesion[0] = 40, blue.lesion[1] = 50, blue.lesion[2] = 120;
    expect_failure("blue cast", make(&blue), "colour_cast", NULL);

    /* Only skin. */
    scene bare = good;
    bare.lr = 0;
    expect_failure("no lesion", make(&bare), "no_lesion", "low_contrast");

    /* A lesion larger than the picture, running out of it at the bottom and both sides. */
    scene cut = good;
    cut.lx = 0.5, cut.ly = 0.85, cut.lr = 0.6;
    expect_failure("cut off", make(&cut), "lesion_cut_off", NULL);

    /* A speck far away. */
    scene speck = good;
    speck.lr = 0.02;
    expect_failure("speck", make(&speck), "lesion_too_small", "low_contrast");

    /* Too few pixels in the photo as taken. */
    scene tiny = good;
    tiny.w = 72, tiny.h = 54;
    expect_failure("tiny", make(&tiny), "resolution", NULL);
}

static void test_invalid(void)
{
    basira_quality_report r;
    basira_skin_tone t;
    basira_error err;
    CHECK_EQ_INT(basira_quality_assess(NULL, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(err.message[0]);
    basira_image *img = make(&good);
    CHECK_EQ_INT(basira_quality_assess(img, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_skin_tone_estimate(NULL, &t, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_skin_tone_estimate(img, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_image_free(img);
    /* A 400 x 1 strip cannot be assessed: an error, not a crash. */
    uint8_t strip[400 * 3] = {0};
    CHECK(!basira_image_from_rgb(strip, 400, 1, &img, &err));
    CHECK_EQ_INT(basira_quality_assess(img, &r, &err), BASIRA_E_IMAGE_TOO_SMALL);
    basira_image_free(img);
    CHECK(basira_quality_report_json(NULL) == NULL);
    CHECK(basira_skin_tone_json(NULL) == NULL);
}

static double ita_of(const uint8_t rgb[3])
{
    float L, a, b;
    basira_srgb_to_lab(rgb[0], rgb[1], rgb[2], &L, &a, &b);
    return atan((L - 50) / b) * 180 / M_PI;
}

static void test_skin_tone(void)
{
    /* CIELAB of known colours (D65): white, mid grey, the sRGB red primary. */
    float L, a, b;
    basira_srgb_to_lab(255, 255, 255, &L, &a, &b);
    CHECK_NEAR(L, 100, 0.01);
    CHECK_NEAR(a, 0, 0.01);
    CHECK_NEAR(b, 0, 0.01);
    basira_srgb_to_lab(119, 119, 119, &L, &a, &b);
    CHECK_NEAR(L, 50.0, 0.3);
    basira_srgb_to_lab(255, 0, 0, &L, &a, &b);
    CHECK_NEAR(L, 53.24, 0.05);
    CHECK_NEAR(a, 80.09, 0.1);
    CHECK_NEAR(b, 67.20, 0.1);

    /* Light, intermediate-to-tan and dark skin, each with hairs over it. */
    const uint8_t skins[][3] = {{235, 200, 180}, {200, 150, 115}, {150, 100, 70}, {85, 55, 40}};
    double prev = 1e9;
    for (size_t k = 0; k < sizeof skins / sizeof skins[0]; k++) {
        scene sc = good;
        memcpy(sc.skin, skins[k], 3);
        sc.lesion[0] = skins[k][0] / 3, sc.lesion[1] = skins[k][1] / 3,
        sc.lesion[2] = skins[k][2] / 3;
        sc.hair = 1;
        basira_image *img = make(&sc);
        basira_skin_tone t;
        basira_error err;
        CHECK_EQ_INT(basira_skin_tone_estimate(img, &t, &err), BASIRA_OK);
        double want = ita_of(skins[k]);
        CHECK_MSG(fabs(t.ita - want) < 4, "skin %zu: ITA %.1f, expected %.1f", k, t.ita, want);
        CHECK_EQ_INT(t.category, basira_skin_tone_category_from_ita(want));
        CHECK(t.skin_fraction > 0.3 && t.skin_fraction < 0.95);
        CHECK(t.ita < prev); /* darker skin, lower ITA */
        prev = t.ita;
        json_t *j = basira_skin_tone_json(&t);
        CHECK(j && json_is_number(json_object_get(j, "ita")));
        CHECK_STR(json_string_value(json_object_get(j, "category")),
                  basira_skin_tone_category_code(t.category));
        json_decref(j);
        basira_image_free(img);
    }

    /* Nothing but a grey card: no skin, unknown tone. */
    scene grey = good;
    grey.skin[0] = grey.skin[1] = grey.skin[2] = 128;
    grey.lr = 0;
    basira_image *img = make(&grey);
    basira_skin_tone t;
    basira_error err;
    CHECK_EQ_INT(basira_skin_tone_estimate(img, &t, &err), BASIRA_OK);
    CHECK_EQ_INT(t.category, BASIRA_TONE_UNKNOWN);
    CHECK(t.skin_fraction < 0.05);
    basira_image_free(img);

    /* Category limits of quality.h. */
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(60), BASIRA_TONE_VERY_LIGHT);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(55), BASIRA_TONE_LIGHT);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(41.5), BASIRA_TONE_LIGHT);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(41), BASIRA_TONE_INTERMEDIATE);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(28), BASIRA_TONE_TAN);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(10), BASIRA_TONE_BROWN);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(-30), BASIRA_TONE_DARK);
    CHECK_EQ_INT(basira_skin_tone_category_from_ita(NAN), BASIRA_TONE_UNKNOWN);
    CHECK_STR(basira_skin_tone_category_code(BASIRA_TONE_INTERMEDIATE), "intermediate");
    CHECK_STR(basira_skin_tone_category_code((basira_skin_tone_category)42), "unknown");
}

/*
 * basira_photo_assess() gives exactly what the two separate calls give, on
 * photos that pass and fail, with and without hair, at several sizes, and with
 * or without the tone; a NULL image or report is refused.
 */
static void test_photo_assess(void)
{
    const uint8_t skins[][3] = {{235, 200, 180}, {150, 100, 70}};
    const int widths[] = {200, 640, 1000};
    for (size_t k = 0; k < 2; k++)
        for (size_t s = 0; s < 3; s++)
            for (int hair = 0; hair < 2; hair++) {
                scene sc = good;
                memcpy(sc.skin, skins[k], 3);
                sc.w = widths[s], sc.h = widths[s] * 3 / 4, sc.hair = hair;
                basira_image *img = make(&sc);
                basira_quality_report q1, q2;
                basira_skin_tone t1, t2;
                basira_error err;
                CHECK_EQ_INT(basira_quality_assess(img, &q1, &err), BASIRA_OK);
                CHECK_EQ_INT(basira_skin_tone_estimate(img, &t1, &err), BASIRA_OK);
                CHECK_EQ_INT(basira_photo_assess(img, &q2, &t2, &err), BASIRA_OK);
                CHECK_EQ_INT(q2.ok, q1.ok);
                CHECK_EQ_INT(q2.n_checks, q1.n_checks);
                for (int i = 0; i < q1.n_checks && i < q2.n_checks; i++) {
                    CHECK_STR(q2.checks[i].code, q1.checks[i].code);
                    CHECK(q2.checks[i].value == q1.checks[i].value);
                    CHECK_EQ_INT(q2.checks[i].passed, q1.checks[i].passed);
                }
                CHECK(t2.ita == t1.ita);
                CHECK_EQ_INT(t2.category, t1.category);
                CHECK(t2.skin_fraction == t1.skin_fraction);
                CHECK_EQ_INT(basira_photo_assess(img, &q2, NULL, &err), BASIRA_OK);
                CHECK_EQ_INT(q2.ok, q1.ok);
                basira_image_free(img);
            }
    basira_image *img = make(&good);
    basira_quality_report q;
    basira_error err;
    CHECK_EQ_INT(basira_photo_assess(NULL, &q, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_photo_assess(img, NULL, NULL, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_image_free(img);
    /* A blurred photo: the same failure either way. */
    basira_image *blur = transformed(&good, 1, 0, 8);
    basira_quality_report qa, qb;
    CHECK_EQ_INT(basira_quality_assess(blur, &qa, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_photo_assess(blur, &qb, NULL, &err), BASIRA_OK);
    CHECK(!qa.ok && !qb.ok);
    CHECK(find(&qb, "blur") && !find(&qb, "blur")->passed);
    basira_image_free(blur);
}

int main(void)
{
    RUN(test_good_photo);
    RUN(test_scale_invariance);
    RUN(test_defects);
    RUN(test_invalid);
    RUN(test_skin_tone);
    RUN(test_photo_assess);
    return test_summary();
}
