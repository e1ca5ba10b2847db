/* Tests of the augmentation: exact geometry, shapes, value ranges, determinism per seed. */
#include "basira/train.h"
#include "test.h"

#define W 37
#define H 23

static void fill_pattern(uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x);
            p[0] = (uint8_t)(x * 7 + y);
            p[1] = (uint8_t)(y * 11);
            p[2] = (uint8_t)((x * y) & 0xff);
        }
}

static void test_exact_moves(void)
{
    static uint8_t a[3 * W * H], b[3 * W * H], c[3 * W * H], d[3 * W * H], e[3 * W * H];
    fill_pattern(a, W, H);
    basira_rgb_flip_h(a, W, H, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(!memcmp(b, a + 3 * (W - 1), 3)); /* first pixel of b is the last of a's first row */
    basira_rgb_flip_h(b, W, H, c);
    CHECK(!memcmp(a, c, sizeof a)); /* flip twice = identity */
    basira_rgb_flip_v(a, W, H, b);
    basira_rgb_flip_v(b, W, H, c);
    CHECK(!memcmp(a, c, sizeof a));
    CHECK(!memcmp(b, a + 3 * W * (H - 1), 3 * W));
    /* Four quarter turns = identity; two = flip h + flip v. */
    basira_rgb_rot90(a, W, H, b); /* H x W */
    basira_rgb_rot90(b, H, W, c);
    basira_rgb_rot90(c, W, H, d);
    basira_rgb_rot90(d, H, W, e);
    CHECK(!memcmp(a, e, sizeof a));
    basira_rgb_flip_h(a, W, H, d);
    basira_rgb_flip_v(d, W, H, e);
    CHECK(!memcmp(c, e, sizeof a));
    /* Clockwise: the bottom-left pixel of a becomes the top-left of the turned image. */
    CHECK(!memcmp(b, a + 3 * W * (H - 1), 3));
}

/* basira_augment_apply with pure geometry reproduces the exact moves pixel for pixel. */
static void test_apply_geometry(void)
{
    enum { S = 24 };
    static uint8_t a[3 * S * S], b[3 * S * S], ref[3 * S * S];
    fill_pattern(a, S, S);
    basira_error err;
    basira_augment_params p;
    basira_augment_identity(S, S, &p);
    CHECK_EQ_INT(basira_augment_apply(&p, a, S, S, b, S, S, &err), BASIRA_OK);
    CHECK(!memcmp(a, b, sizeof a));
    p.flip_h = 1;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    basira_rgb_flip_h(a, S, S, ref);
    CHECK(!memcmp(ref, b, sizeof a));
    basira_augment_identity(S, S, &p);
    p.flip_v = 1;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    basira_rgb_flip_v(a, S, S, ref);
    CHECK(!memcmp(ref, b, sizeof a));
    basira_augment_identity(S, S, &p);
    p.rot90 = 1;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    basira_rgb_rot90(a, S, S, ref);
    CHECK(!memcmp(ref, b, sizeof a));
    /* A crop of the right half at its own size is a copy of those pixels. */
    basira_augment_identity(S, S, &p);
    p.crop_x = S / 2;
    p.crop_w = S / 2;
    static uint8_t half[3 * S * S / 2];
    basira_augment_apply(&p, a, S, S, half, S / 2, S, &err);
    int same = 1;
    for (int y = 0; y < S; y++)
        same &= !memcmp(half + 3 * y * (S / 2), a + 3 * (y * S + S / 2), 3 * (S / 2));
    CHECK(same);
    /* Out-of-range parameters are refused. */
    p.crop_x = S;
    CHECK_EQ_INT(basira_augment_apply(&p, a, S, S, b, S, S, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_augment_identity(S, S, &p);
    p.rot90 = 4;
    CHECK_EQ_INT(basira_augment_apply(&p, a, S, S, b, S, S, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_augment_apply(&p, a, 0, S, b, S, S, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_colour(void)
{
    enum { S = 16 };
    static uint8_t a[3 * S * S], b[3 * S * S];
    basira_error err;
    basira_augment_params p;
    /* Grey stays grey under saturation and hue changes. */
    for (int i = 0; i < S * S; i++)
        a[3 * i] = a[3 * i + 1] = a[3 * i + 2] = (uint8_t)(i % 200 + 20);
    basira_augment_identity(S, S, &p);
    p.saturation = 1.4;
    p.hue = 0.1;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    int max_dev = 0;
    for (int i = 0; i < 3 * S * S; i++)
        max_dev = abs(a[i] - b[i]) > max_dev ? abs(a[i] - b[i]) : max_dev;
    CHECK_MSG(max_dev <= 1, "grey moved by %d", max_dev);
    /* Brightness 2 doubles (and clips); saturation 0 gives grey. */
    for (int i = 0; i < S * S; i++) {
        a[3 * i] = 100;
        a[3 * i + 1] = 20;
        a[3 * i + 2] = 200;
    }
    basira_augment_identity(S, S, &p);
    p.brightness = 2.0;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    CHECK_EQ_INT(b[0], 200);
    CHECK_EQ_INT(b[1], 40);
    CHECK_EQ_INT(b[2], 255);
    basira_augment_identity(S, S, &p);
    p.saturation = 0.0;
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    CHECK(abs(b[0] - b[1]) <= 1 && abs(b[1] - b[2]) <= 1);
    CHECK(abs(b[0] - (int)(0.299 * 100 + 0.587 * 20 + 0.114 * 200 + 0.5)) <= 1);
    /* Contrast 0 flattens the image to its mean grey. */
    basira_augment_identity(S, S, &p);
    p.contrast = 0.0;
    fill_pattern(a, S, S);
    basira_augment_apply(&p, a, S, S, b, S, S, &err);
    int flat = 1;
    for (int i = 3; i < 3 * S * S; i++)
        flat &= b[i] == b[0];
    CHECK(flat);
}

static void test_sampling(void)
{
    enum { SW = 160, SH = 160, D = 128 };
    static uint8_t src[3 * SW * SH], o1[3 * D * D], o2[3 * D * D];
    fill_pattern(src, SW, SH);
    basira_error err;
    int seen_rot[4] = {0}, seen_fh = 0, seen_hue = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        basira_augment_params p, q;
        basira_augment_sample(BASIRA_AUGMENT_DERMOSCOPY, SW, SH, seed, &p);
        basira_augment_sample(BASIRA_AUGMENT_DERMOSCOPY, SW, SH, seed, &q);
        CHECK(!memcmp(&p, &q, sizeof p)); /* same seed, same draw */
        double area = p.crop_w * p.crop_h / (SW * SH), ratio = p.crop_w / p.crop_h;
        CHECK_MSG(area >= 0.6 - 1e-9 && area <= 1.0 + 1e-9, "area %g", area);
        CHECK_MSG(ratio >= 0.75 - 1e-9 && ratio <= 4.0 / 3.0 + 1e-9, "ratio %g", ratio);
        CHECK(p.crop_x >= 0 && p.crop_x + p.crop_w <= SW + 1e-9);
        CHECK(p.crop_y >= 0 && p.crop_y + p.crop_h <= SH + 1e-9);
        CHECK(p.brightness >= 0.8 && p.brightness <= 1.2 && p.contrast >= 0.8 &&
              p.contrast <= 1.2 && p.saturation >= 0.8 && p.saturation <= 1.2);
        CHECK(fabs(p.hue) <= 0.02);
        seen_rot[p.rot90]++;
        seen_fh += p.flip_h;
        seen_hue += p.hue != 0;
        if (seed <= 20) {
            CHECK_EQ_INT(basira_augment_apply(&p, src, SW, SH, o1, D, D, &err), BASIRA_OK);
            basira_augment_apply(&q, src, SW, SH, o2, D, D, &err);
            CHECK(!memcmp(o1, o2, sizeof o1));
        }
    }
    for (int r = 0; r < 4; r++)
        CHECK(seen_rot[r] > 60);
    CHECK(seen_fh > 150 && seen_fh < 250);
    CHECK(seen_hue > 390);
    /* Different seeds differ; "none" is the identity; "light" never rotates. */
    basira_augment_params p1, p2;
    basira_augment_sample(BASIRA_AUGMENT_DERMOSCOPY, SW, SH, 1, &p1);
    basira_augment_sample(BASIRA_AUGMENT_DERMOSCOPY, SW, SH, 2, &p2);
    CHECK(memcmp(&p1, &p2, sizeof p1) != 0);
    basira_augment_sample(BASIRA_AUGMENT_NONE, SW, SH, 9, &p1);
    basira_augment_identity(SW, SH, &p2);
    CHECK(!memcmp(&p1, &p2, sizeof p1));
    for (uint64_t seed = 1; seed < 50; seed++) {
        basira_augment_sample(BASIRA_AUGMENT_LIGHT, SW, SH, seed, &p1);
        CHECK(p1.rot90 == 0 && p1.hue == 0 && p1.crop_w * p1.crop_h >= 0.8 * SW * SH - 1e-6);
    }
    /* A 4:3 image is turned by half turns only (a quarter turn would stretch it 16:9);
     * both half-turn states occur, in every mode that rotates. */
    for (int mode = 0; mode < 3; mode++) {
        basira_augment_mode am = mode == 0   ? BASIRA_AUGMENT_DERMOSCOPY
                                 : mode == 1 ? BASIRA_AUGMENT_SHIFT
                                             : BASIRA_AUGMENT_MODALITY;
        int rot[4] = {0};
        for (uint64_t seed = 1; seed <= 200; seed++) {
            basira_augment_sample(am, 200, 150, seed, &p1);
            rot[p1.rot90]++;
        }
        CHECK_MSG(rot[1] == 0 && rot[3] == 0 && rot[0] > 50 && rot[2] > 50,
                  "mode %d: rotations %d %d %d %d", mode, rot[0], rot[1], rot[2], rot[3]);
    }
    basira_augment_mode m;
    basira_error err2;
    CHECK_EQ_INT(basira_augment_parse("dermoscopy", &m, &err2), BASIRA_OK);
    CHECK_EQ_INT(m, BASIRA_AUGMENT_DERMOSCOPY);
    CHECK_EQ_INT(basira_augment_parse("heavy", &m, &err2), BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err2.message, "heavy") != NULL);
}

/* Sum of squared differences between horizontal neighbours: high-frequency energy. */
static double edge_energy(const uint8_t *rgb, int w, int h)
{
    double e = 0;
    for (int y = 0; y < h; y++)
        for (int x = 1; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double d = rgb[3 * (y * w + x) + c] - rgb[3 * (y * w + x - 1) + c];
                e += d * d;
            }
    return e;
}

/* The photo-kind detector's augmentation: wide crops, strong colour, blur and noise. */
static void test_modality_mode(void)
{
    enum { S = 64 };
    static uint8_t src[3 * S * S], a[3 * S * S], b[3 * S * S];
    fill_pattern(src, S, S);
    basira_augment_mode m;
    basira_error err;
    CHECK_EQ_INT(basira_augment_parse("modality", &m, &err), BASIRA_OK);
    CHECK_EQ_INT(m, BASIRA_AUGMENT_MODALITY);
    int blurred = 0, noisy = 0, small = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        basira_augment_params p, q;
        basira_augment_sample(BASIRA_AUGMENT_MODALITY, S, S, seed, &p);
        basira_augment_sample(BASIRA_AUGMENT_MODALITY, S, S, seed, &q);
        CHECK(!memcmp(&p, &q, sizeof p));
        CHECK(p.blur >= 0 && p.blur <= 2 && p.noise >= 0 && p.noise <= 12);
        double area = p.crop_w * p.crop_h / (S * S);
        CHECK(area >= 0.3 - 1e-9 && area <= 1 + 1e-9);
        blurred += p.blur > 0;
        noisy += p.noise > 0;
        small += area < 0.6;
        if (seed <= 10) {
            CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, a, S, S, &err), BASIRA_OK);
            CHECK_EQ_INT(basira_augment_apply(&q, src, S, S, b, S, S, &err), BASIRA_OK);
            CHECK(!memcmp(a, b, sizeof a)); /* noise too is drawn from the seed */
        }
    }
    CHECK(blurred > 150 && noisy > 100 && small > 50);
    /* Blur removes detail; noise adds it; out-of-range values are refused. */
    basira_augment_params p;
    basira_augment_identity(S, S, &p);
    CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, a, S, S, &err), BASIRA_OK);
    double sharp = edge_energy(a, S, S);
    p.blur = 2;
    CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, b, S, S, &err), BASIRA_OK);
    CHECK(edge_energy(b, S, S) < 0.8 * sharp);
    p.blur = 0;
    p.noise = 12;
    p.noise_seed = 7;
    CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, b, S, S, &err), BASIRA_OK);
    CHECK(edge_energy(b, S, S) > sharp);
    p.blur = 4;
    CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, b, S, S, &err), BASIRA_E_INVALID_ARGUMENT);
    p.blur = 0;
    p.noise = 40;
    CHECK_EQ_INT(basira_augment_apply(&p, src, S, S, b, S, S, &err), BASIRA_E_INVALID_ARGUMENT);
}

int main(void)
{
    RUN(test_modality_mode);
    RUN(test_exact_moves);
    RUN(test_apply_geometry);
    RUN(test_colour);
    RUN(test_sampling);
    return test_summary();
}
