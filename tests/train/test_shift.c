/* Tests of the camera and clinic shifts: each operation's effect, sizes, and the same
 * output for the same seed (training) or always (shift-check). */
#include "basira/train.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

#define W 40
#define H 30

static void fill(uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x);
            p[0] = (uint8_t)(((x / 4 + y / 4) % 2) ? 200 : 40); /* a checkerboard */
            p[1] = (uint8_t)(x * 6);
            p[2] = (uint8_t)(y * 8);
        }
}

static double variance(const uint8_t *rgb, int w, int h, int ch)
{
    double s = 0, ss = 0;
    for (int i = 0; i < w * h; i++) {
        s += rgb[3 * i + ch];
        ss += (double)rgb[3 * i + ch] * rgb[3 * i + ch];
    }
    s /= w * h;
    return ss / (w * h) - s * s;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d += abs((int)a[i] - (int)b[i]);
    return d / (double)n;
}

static void test_blur(void)
{
    static uint8_t a[3 * W * H], b[3 * W * H], flat[3 * W * H];
    basira_error err;
    fill(a, W, H);
    CHECK_EQ_INT(basira_rgb_blur(a, W, H, 1.5, b, &err), BASIRA_OK);
    CHECK(variance(b, W, H, 0) < 0.8 * variance(a, W, H, 0)); /* the checkerboard softens */
    CHECK_EQ_INT(basira_rgb_blur(a, W, H, 0, b, &err), BASIRA_OK);
    CHECK(!memcmp(a, b, sizeof a)); /* sigma 0: unchanged */
    memset(flat, 123, sizeof flat);
    CHECK_EQ_INT(basira_rgb_blur(flat, W, H, 2.0, b, &err), BASIRA_OK);
    CHECK(!memcmp(flat, b, sizeof flat)); /* a flat image stays flat */
    CHECK_EQ_INT(basira_rgb_blur(a, W, H, -1, b, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_jpeg(void)
{
    static uint8_t a[3 * W * H], b[3 * W * H], c[3 * W * H];
    basira_error err;
    fill(a, W, H);
    CHECK_EQ_INT(basira_rgb_jpeg(a, W, H, 40, b, &err), BASIRA_OK);
    double d40 = mean_abs_diff(a, b, sizeof a);
    CHECK_EQ_INT(basira_rgb_jpeg(a, W, H, 95, c, &err), BASIRA_OK);
    double d95 = mean_abs_diff(a, c, sizeof a);
    CHECK(d40 > 0.5 && d40 < 40); /* changed, still the same picture */
    CHECK(d95 < d40);             /* higher quality, closer */
    CHECK_EQ_INT(basira_rgb_jpeg(a, W, H, 0, b, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_colour(void)
{
    static uint8_t a[3 * W * H], b[3 * W * H];
    fill(a, W, H);
    const double one[3] = {1, 1, 1}, warm[3] = {1.2, 1.0, 0.5};
    basira_rgb_colour(a, W, H, one, 1.0, b);
    CHECK(!memcmp(a, b, sizeof a));
    basira_rgb_colour(a, W, H, warm, 1.0, b);
    int ok = 1;
    for (int i = 0; i < W * H; i++) {
        ok &= b[3 * i] >= a[3 * i] && b[3 * i + 1] == a[3 * i + 1];
        ok &= abs((int)b[3 * i + 2] - (int)lround(a[3 * i + 2] * 0.5)) <= 1;
    }
    CHECK(ok);
    basira_rgb_colour(a, W, H, one, 0.5, b); /* gamma < 1 brightens mid-tones */
    CHECK(b[3 * (5 * W + 5) + 1] > a[3 * (5 * W + 5) + 1]);
}

static void test_rotate(void)
{
    static uint8_t a[3 * W * W], b[3 * W * W], c[3 * W * W];
    fill(a, W, W);
    basira_rgb_rotate(a, W, W, 0, b);
    CHECK(!memcmp(a, b, sizeof a));
    /* 90 degrees on a square matches the exact quarter turn (either direction). */
    basira_rgb_rotate(a, W, W, 90, b);
    basira_rgb_rot90(a, W, W, c);
    double d1 = mean_abs_diff(b, c, sizeof a);
    basira_rgb_rotate(a, W, W, -90, b);
    double d2 = mean_abs_diff(b, c, sizeof a);
    CHECK(d1 < 0.5 || d2 < 0.5);
    basira_rgb_rotate(a, W, W, 30, b);
    CHECK(mean_abs_diff(a, b, sizeof a) > 5);
}

static void test_shift_apply(void)
{
    static uint8_t a[3 * 200 * 150];
    fill(a, 200, 150);
    basira_error err;
    for (int k = 0; k < BASIRA_SHIFT_COUNT; k++) {
        uint8_t *o1 = NULL, *o2 = NULL;
        int w1, h1, w2, h2;
        CHECK_EQ_INT(basira_shift_apply(k, a, 200, 150, &o1, &w1, &h1, &err), BASIRA_OK);
        CHECK_EQ_INT(basira_shift_apply(k, a, 200, 150, &o2, &w2, &h2, &err), BASIRA_OK);
        CHECK(w1 == w2 && h1 == h2 && !memcmp(o1, o2, 3 * (size_t)w1 * h1)); /* deterministic */
        if (k == BASIRA_SHIFT_SQUASH)
            CHECK(w1 == 150 && h1 == 150);
        else if (k == BASIRA_SHIFT_SCALE)
            CHECK(w1 == 140 && h1 == 105);
        else if (k == BASIRA_SHIFT_UPRIGHT) {
            /* Portrait, pixel for pixel the quarter turn of the training augmentation. */
            CHECK(w1 == 150 && h1 == 200);
            static uint8_t turned[3 * 200 * 150];
            basira_rgb_rot90(a, 200, 150, turned);
            CHECK(!memcmp(o1, turned, sizeof turned));
        } else
            CHECK(w1 == 200 && h1 == 150);
        if (k == BASIRA_SHIFT_NONE)
            CHECK(!memcmp(o1, a, sizeof a));
        else if (w1 == 200)
            CHECK_MSG(memcmp(o1, a, sizeof a) != 0, "shift %s changed nothing",
                      basira_shift_name(k));
        CHECK_EQ_INT(basira_shift_from_name(basira_shift_name(k)), k);
        free(o1);
        free(o2);
    }
    CHECK_EQ_INT(basira_shift_from_name("fog"), -1);
    CHECK_EQ_INT(basira_shift_from_name("color"), BASIRA_SHIFT_COLOUR);
}

static void test_shift_augment(void)
{
    enum { S = 48 };
    static uint8_t a[3 * S * S], b[3 * S * S], c[3 * S * S];
    basira_error err;
    int changed = 0, same_seed_same = 1;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        fill(a, S, S);
        memcpy(b, a, sizeof a);
        memcpy(c, a, sizeof a);
        CHECK_EQ_INT(basira_shift_augment(b, S, S, seed, &err), BASIRA_OK);
        CHECK_EQ_INT(basira_shift_augment(c, S, S, seed, &err), BASIRA_OK);
        same_seed_same &= !memcmp(b, c, sizeof b);
        changed += memcmp(a, b, sizeof a) != 0;
        CHECK_EQ_INT(basira_shift_augment(c, S, S, seed + 1000, &err), BASIRA_OK);
    }
    CHECK(same_seed_same);
    CHECK_EQ_INT(changed, 20); /* the colour and illumination draw always applies */
    /* The shift mode parses and draws wider crops than dermoscopy. */
    basira_augment_mode m;
    CHECK_EQ_INT(basira_augment_parse("shift", &m, &err), BASIRA_OK);
    CHECK_EQ_INT(m, BASIRA_AUGMENT_SHIFT);
    double min_area = 1;
    for (uint64_t seed = 1; seed < 200; seed++) {
        basira_augment_params p;
        basira_augment_sample(BASIRA_AUGMENT_SHIFT, 100, 100, seed, &p);
        double area = p.crop_w * p.crop_h / 1e4;
        if (area < min_area)
            min_area = area;
    }
    CHECK(min_area < 0.5);
}

int main(void)
{
    RUN(test_blur);
    RUN(test_jpeg);
    RUN(test_colour);
    RUN(test_rotate);
    RUN(test_shift_apply);
    RUN(test_shift_augment);
    return test_summary();
}
