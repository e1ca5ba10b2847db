/*
 * test_resample.c - resample.c against libvips itself, byte for byte.
 *
 * The models were calibrated on pixels libvips 8.14 made; resample.c claims to
 * make the same ones without libvips. Each operation is run both ways on
 * textured images (a gradient, sharp edges and noise, so that every tap of every
 * mask matters and the clipping at 0 and 255 is reached) over many sizes and
 * factors, and every byte must agree.
 */
#include "../../src/intake/intake_internal.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <vips/vector.h> /* vips_vector_set_enabled: vips.h leaves it out */

/* A deterministic textured image: gradients, a hard-edged disc, noise. */
static uint8_t *texture(int w, int h, unsigned seed)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    unsigned s = seed * 2654435761u + 1;
    for (int y = 0; p && y < h; y++)
        for (int x = 0; x < w; x++)
            for (int b = 0; b < 3; b++) {
                s = s * 1103515245u + 12345u;
                int v = (x * 255 / (w > 1 ? w - 1 : 1) + y * (b + 1) * 7) & 255;
                int dx = x - w / 2, dy = y - h / 3;
                if (dx * dx + dy * dy < (w * w) / 16)
                    v = b == 0 ? 255 : 0; /* saturated: the Lanczos lobes overshoot */
                if ((x / 3 + y / 5) % 7 == 0)
                    v = (int)((s >> 16) & 255);
                p[((size_t)y * w + x) * 3 + b] = (uint8_t)v;
            }
    return p;
}

static VipsImage *wrap(const uint8_t *p, int w, int h)
{
    return vips_image_new_from_memory(p, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
}

/* Compare a libvips result with ours; frees both. */
static void same(VipsImage *ref, uint8_t *ours, int ow, int oh, const char *what, int w, int h,
                 double f1, double f2)
{
    CHECK_MSG(ref != NULL, "%s %dx%d %.4f %.4f: libvips failed: %s", what, w, h, f1, f2,
              vips_error_buffer());
    CHECK_MSG(ours != NULL, "%s %dx%d %.4f %.4f: resample.c failed", what, w, h, f1, f2);
    if (ref && ours) {
        int rw = vips_image_get_width(ref), rh = vips_image_get_height(ref);
        CHECK_MSG(rw == ow && rh == oh, "%s %dx%d %.4f %.4f: %dx%d, libvips %dx%d", what, w, h, f1,
                  f2, ow, oh, rw, rh);
        size_t n = 0;
        uint8_t *rp = rw == ow && rh == oh ? vips_image_write_to_memory(ref, &n) : NULL;
        if (rp) {
            size_t diff = 0, first = n;
            for (size_t i = 0; i < n; i++)
                if (rp[i] != ours[i]) {
                    diff++;
                    if (first == n)
                        first = i;
                }
            CHECK_MSG(diff == 0,
                      "%s %dx%d %.4f %.4f: %zu of %zu bytes differ (first at %zu: %d, libvips %d)",
                      what, w, h, f1, f2, diff, n, first, first < n ? ours[first] : -1,
                      first < n ? rp[first] : -1);
        }
        g_free(rp);
    }
    if (ref)
        g_object_unref(ref);
    free(ours);
    vips_error_clear();
}

static const int sizes[][2] = {{64, 64},   {97, 61},    {200, 150},  {256, 171},  {333, 250},
                               {640, 480}, {750, 1000}, {1000, 750}, {1008, 756}, {1296, 972}};

static void test_shrink_box(void)
{
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *in = texture(w, h, (unsigned)s);
        VipsImage *vin = wrap(in, w, h);
        for (int f = 1; f <= 9; f += (f < 4 ? 1 : 4)) {
            for (int ceil_size = 0; ceil_size <= 1; ceil_size++) {
                VipsImage *ref = NULL;
                uint8_t *o = NULL;
                int oh = 0, ow = 0;
                if (vips_shrinkv(vin, &ref, f, "ceil", ceil_size, NULL))
                    ref = NULL;
                if (intake_shrinkv(in, w, h, f, ceil_size, &o, &oh))
                    o = NULL;
                same(ref, o, w, oh, "shrinkv", w, h, f, ceil_size);
                ref = NULL;
                o = NULL;
                if (vips_shrinkh(vin, &ref, f, "ceil", ceil_size, NULL))
                    ref = NULL;
                if (intake_shrinkh(in, w, h, f, ceil_size, &o, &ow))
                    o = NULL;
                same(ref, o, ow, h, "shrinkh", w, h, f, ceil_size);
            }
        }
        g_object_unref(vin);
        free(in);
    }
}

static void test_reduce_lanczos(void)
{
    const double factors[] = {1.0, 1.0001, 1.25, 1.5,      1.953125, 2.0,
                              2.5, 3.0,    3.7,  5.859375, 7.8125};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *in = texture(w, h, (unsigned)s + 100);
        VipsImage *vin = wrap(in, w, h);
        for (size_t f = 0; f < sizeof factors / sizeof factors[0]; f++)
            for (int g = 0; g <= 1; g++) {
                double fac = factors[f], gap = g ? 2.0 : 0.0;
                if (w / fac < 1 || h / fac < 1)
                    continue;
                VipsImage *ref = NULL;
                uint8_t *o = NULL;
                int oh = 0, ow = 0;
                if (vips_reducev(vin, &ref, fac, "gap", gap, NULL))
                    ref = NULL;
                if (intake_reducev(in, w, h, fac, gap, &o, &oh))
                    o = NULL;
                same(ref, o, w, oh, "reducev", w, h, fac, gap);
                ref = NULL;
                o = NULL;
                if (vips_reduceh(vin, &ref, fac, "gap", gap, NULL))
                    ref = NULL;
                if (intake_reduceh(in, w, h, fac, gap, &o, &ow))
                    o = NULL;
                same(ref, o, ow, h, "reduceh", w, h, fac, gap);
            }
        g_object_unref(vin);
        free(in);
    }
}

/* The two whole operations intake uses: vips_resize (decode to max_side) and
 * shrink + reduce (basira_image_resize: the quality gate's and the models' sizes). */
static void test_resize_paths(void)
{
    const int targets[][2] = {{1024, 768}, {200, 150}, {150, 200}, {128, 128},
                              {160, 120},  {224, 224}, {96, 96},   {300, 40}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *in = texture(w, h, (unsigned)s + 200);
        VipsImage *vin = wrap(in, w, h);
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            double hs = (double)targets[t][0] / w, vs = (double)targets[t][1] / h;
            if (hs > 1 || vs > 1)
                continue;
            VipsImage *ref = NULL;
            uint8_t *o = NULL;
            int ow = 0, oh = 0;
            if (vips_resize(vin, &ref, hs, "vscale", vs, NULL))
                ref = NULL;
            if (intake_resize_down(in, w, h, hs, vs, &o, &ow, &oh))
                o = NULL;
            same(ref, o, ow, oh, "resize", w, h, hs, vs);

            /* shrink_and_reduce as intake.c did it with libvips. */
            int hshrink = (int)(1.0 / (hs * 2)), vshrink = (int)(1.0 / (vs * 2));
            hshrink = hshrink < 1 ? 1 : hshrink;
            vshrink = vshrink < 1 ? 1 : vshrink;
            VipsImage *a = NULL, *b = NULL;
            ref = NULL;
            if (hshrink > 1 || vshrink > 1) {
                if (vips_shrink(vin, &a, hshrink, vshrink, NULL))
                    a = NULL;
                b = a ? vips_image_copy_memory(a) : NULL;
            } else {
                b = vin;
                g_object_ref(b);
            }
            if (b) {
                double hr = vips_image_get_width(b) / (w * hs),
                       vr = vips_image_get_height(b) / (h * vs);
                hr = hr < 1 ? 1 : hr;
                vr = vr < 1 ? 1 : vr;
                if (hr == 1 && vr == 1) {
                    ref = b;
                    g_object_ref(ref);
                } else if (vips_reduce(b, &ref, hr, vr, NULL)) {
                    ref = NULL;
                }
            }
            o = NULL;
            if (intake_shrink_reduce(in, w, h, hs, vs, &o, &ow, &oh))
                o = NULL;
            same(ref, o, ow, oh, "shrink+reduce", w, h, hs, vs);
            if (a)
                g_object_unref(a);
            if (b)
                g_object_unref(b);
        }
        g_object_unref(vin);
        free(in);
    }
}

static void test_autorot_and_extend(void)
{
    int w = 37, h = 23;
    uint8_t *in = texture(w, h, 7);
    VipsImage *vin = wrap(in, w, h);
    for (int o = 1; o <= 8; o++) {
        VipsImage *tagged = NULL, *ref = NULL;
        CHECK(!vips_copy(vin, &tagged, NULL));
        if (!tagged)
            continue;
        vips_image_set_int(tagged, VIPS_META_ORIENTATION, o);
        if (vips_autorot(tagged, &ref, NULL))
            ref = NULL;
        uint8_t *ours = NULL;
        int ow = 0, oh = 0;
        if (intake_autorot(in, w, h, o, &ours, &ow, &oh))
            ours = NULL;
        same(ref, ours, ow, oh, "autorot", w, h, o, 0);
        g_object_unref(tagged);
    }
    const int to[][2] = {{37, 23}, {40, 23}, {37, 30}, {30, 20}, {50, 10}};
    for (size_t t = 0; t < sizeof to / sizeof to[0]; t++) {
        VipsImage *ref = NULL;
        if (vips_gravity(vin, &ref, VIPS_COMPASS_DIRECTION_NORTH_WEST, to[t][0], to[t][1], "extend",
                         VIPS_EXTEND_COPY, NULL))
            ref = NULL;
        uint8_t *ours = NULL;
        if (intake_extend_copy(in, w, h, to[t][0], to[t][1], &ours))
            ours = NULL;
        same(ref, ours, to[t][0], to[t][1], "extend", w, h, to[t][0], to[t][1]);
    }
    g_object_unref(vin);
    free(in);
}

/* Factors past the averaging table (resample.c divides instead). */
static void test_shrink_huge_factor(void)
{
    int w = 12001, h = 9001;
    uint8_t *in = texture(w, 4, 9), *tall = texture(4, h, 10);
    VipsImage *vin = wrap(in, w, 4), *vtall = wrap(tall, 4, h);
    VipsImage *ref = NULL;
    uint8_t *o = NULL;
    int ow = 0, oh = 0;
    if (vips_shrinkh(vin, &ref, 5000, NULL))
        ref = NULL;
    if (intake_shrinkh(in, w, 4, 5000, 0, &o, &ow))
        o = NULL;
    same(ref, o, ow, 4, "shrinkh", w, 4, 5000, 0);
    ref = NULL;
    o = NULL;
    if (vips_shrinkv(vtall, &ref, 4500, NULL))
        ref = NULL;
    if (intake_shrinkv(tall, 4, h, 4500, 0, &o, &oh))
        o = NULL;
    same(ref, o, 4, oh, "shrinkv", 4, h, 4500, 0);
    g_object_unref(vin);
    g_object_unref(vtall);
    free(in);
    free(tall);
}

/* The errors libvips gives for the same inputs. */
/*
 * The rounded average of a box, computed in float a line at a time (resample.c's
 * average_line), against the integer quotient (s + n / 2) / n for every sum s a box of
 * n samples can have: every n up to 64 and some larger ones, the widest factor of the
 * float path (4096) and one past it. The boxes are columns of a shrinkv, the sum of
 * each column set by its values (each row takes up to 255 of what is left). For large
 * n, the sums next to each multiple of n and of n / 2, where a rounding error would
 * show, instead of all of them.
 */
static int check_box_sums(int n, const int *sums, int count)
{
    int w = (count + 2) / 3, bad = 0;
    uint8_t *in = calloc((size_t)w * 3 * n, 1), *o = NULL;
    for (int c = 0; in && c < count; c++) {
        int left = sums[c];
        for (int r = 0; r < n; r++) {
            int v = left > 255 ? 255 : left;
            in[(size_t)r * w * 3 + c] = (uint8_t)v;
            left -= v;
        }
    }
    int oh = 0;
    if (!in || intake_shrinkv(in, w, n, n, 0, &o, &oh) || oh != 1)
        bad = -1;
    for (int c = 0; !bad && c < count; c++)
        if (o[c] != (sums[c] + n / 2) / n) {
            fprintf(stderr, "n %d, sum %d: %d, not %d\n", n, sums[c], o[c], (sums[c] + n / 2) / n);
            bad = 1;
        }
    free(in);
    free(o);
    return bad;
}

static void test_box_average_exact(void)
{
    int big[] = {100, 255, 256, 1000, 3333, 4095, 4096, 4097, 5000};
    int *sums = malloc(sizeof(int) * (255 * 64 + 1 + 256 * 6));
    if (!sums)
        return;
    for (int n = 1; n <= 64; n++) {
        for (int s = 0; s <= 255 * n; s++)
            sums[s] = s;
        CHECK_MSG(check_box_sums(n, sums, 255 * n + 1) == 0, "every sum, n = %d", n);
    }
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        int n = big[i], count = 0;
        for (int k = 0; k <= 255; k++)
            for (int d = -1; d <= 1; d++) {
                int a = k * n + d, b = k * n + n / 2 + d; /* a: sum + n/2 at a multiple */
                if (a - n / 2 >= 0 && a - n / 2 <= 255 * n)
                    sums[count++] = a - n / 2;
                if (b - n / 2 >= 0 && b - n / 2 <= 255 * n)
                    sums[count++] = b - n / 2;
            }
        CHECK_MSG(check_box_sums(n, sums, count) == 0, "sums at the boundaries, n = %d", n);
    }
    free(sums);
}

static void test_refusals(void)
{
    uint8_t px[3 * 4 * 4] = {0}, *o = NULL;
    int n = 0, n2 = 0;
    CHECK(intake_shrinkv(px, 4, 4, 0, 0, &o, &n) == -1);
    CHECK(intake_reducev(px, 4, 4, 0.5, 0, &o, &n) == -1);
    CHECK(intake_reduceh(px, 4, 4, 2.0, 0.5, &o, &n) == -1);          /* gap in (0, 1) */
    CHECK(intake_reduceh(px, 4, 4, 1000.0, 0, &o, &n) == -1);         /* shrinks to nothing */
    CHECK(intake_resize_down(px, 4, 4, 1.5, 1.0, &o, &n, &n2) == -1); /* enlarging */
    CHECK(intake_extend_copy(px, 4, 4, 0, 4, &o) == -1);
}

int main(void)
{
    if (VIPS_INIT("test_resample"))
        return 1;
    /* Basira runs libvips with its liborc code generator off (intake.c says why),
     * so its plain C paths are the reference. */
    vips_vector_set_enabled(FALSE);
    vips_cache_set_max(0);
    RUN(test_shrink_box);
    RUN(test_reduce_lanczos);
    RUN(test_resize_paths);
    RUN(test_autorot_and_extend);
    RUN(test_shrink_huge_factor);
    RUN(test_box_average_exact);
    RUN(test_refusals);
    vips_shutdown();
    return test_summary();
}
