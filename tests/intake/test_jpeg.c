/*
 * test_jpeg.c - the plain phone JPEG, decoded without libvips (jpeg.c, load.c),
 * against libvips' own decoding of the same file, byte for byte.
 *
 * The reference is what intake did with libvips before jpeg.c existed: the JPEG
 * loader with DCT shrink-on-load and fail_on=truncated, vips_resize() down to the
 * longest side allowed, then vips_autorot() on the small copy. Files: textured
 * photos of phone sizes, baseline and progressive, 4:2:0 and 4:4:4, each EXIF
 * orientation; the files jpeg.c must leave to libvips (grey, CMYK, an ICC
 * profile); truncated and damaged files.
 */
#include "../../src/intake/intake_internal.h"
#include "basira/image.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <vips/vector.h> /* vips_vector_set_enabled: vips.h leaves it out */

static VipsImage *texture(int w, int h)
{
    /* Gradients and noise: every DCT block carries detail. */
    VipsImage *xy = NULL, *x = NULL, *y = NULL, *bands[3] = {NULL, NULL, NULL};
    VipsImage *joined = NULL, *out = NULL;
    if (!vips_xyz(&xy, w, h, NULL) && !vips_extract_band(xy, &x, 0, NULL) &&
        !vips_extract_band(xy, &y, 1, NULL) && !vips_linear1(x, &bands[0], 255.0 / w, 0, NULL) &&
        !vips_linear1(y, &bands[1], 255.0 / h, 0, NULL) &&
        !vips_gaussnoise(&bands[2], w, h, "mean", 128.0, "sigma", 40.0, NULL) &&
        !vips_bandjoin(bands, &joined, 3, NULL))
        vips_cast_uchar(joined, &out, NULL);
    VipsImage *all[] = {xy, x, y, bands[0], bands[1], bands[2], joined};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i])
            g_object_unref(all[i]);
    return out;
}

/* libvips' decoding chain, as intake.c ran it for every JPEG before jpeg.c. */
static uint8_t *vips_reference(const void *data, size_t len, int max_side, int *w, int *h)
{
    VipsImage *head = vips_image_new_from_buffer(data, len, "", NULL);
    if (!head)
        return NULL;
    int hw = vips_image_get_width(head), hh = vips_image_get_height(head);
    g_object_unref(head);
    int longest = hw > hh ? hw : hh;
    int shrink = longest > max_side ? intake_jpeg_shrink(longest, max_side) : 1;
    VipsImage *im =
        vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                   VIPS_FAIL_ON_TRUNCATED, "shrink", shrink, NULL);
    if (!im)
        return NULL;
    int cl = vips_image_get_width(im) > vips_image_get_height(im) ? vips_image_get_width(im)
                                                                  : vips_image_get_height(im);
    if (cl > max_side) {
        VipsImage *next = NULL;
        if (vips_resize(im, &next, (double)max_side / cl, NULL)) {
            g_object_unref(im);
            return NULL;
        }
        g_object_unref(im);
        im = next;
    }
    VipsImage *mem = vips_image_copy_memory(im), *up = NULL;
    g_object_unref(im);
    if (!mem || vips_autorot(mem, &up, NULL)) {
        if (mem)
            g_object_unref(mem);
        return NULL;
    }
    g_object_unref(mem);
    size_t n = 0;
    uint8_t *px = vips_image_write_to_memory(up, &n);
    *w = vips_image_get_width(up);
    *h = vips_image_get_height(up);
    g_object_unref(up);
    return px;
}

static void parity(const char *what, void *data, size_t len)
{
    intake_jpeg_info info;
    CHECK_MSG(intake_jpeg_probe(data, len, &info) == 1, "%s: not decoded by jpeg.c", what);
    basira_image *img = NULL;
    basira_error err;
    CHECK_MSG(basira_image_load_buffer(data, len, NULL, &img, &err) == BASIRA_OK, "%s: %s", what,
              err.message);
    int rw = 0, rh = 0;
    uint8_t *ref = vips_reference(data, len, 1024, &rw, &rh);
    CHECK_MSG(ref != NULL, "%s: libvips failed: %s", what, vips_error_buffer());
    vips_error_clear();
    if (img && ref) {
        CHECK_MSG(basira_image_width(img) == rw && basira_image_height(img) == rh,
                  "%s: %dx%d, libvips %dx%d", what, basira_image_width(img),
                  basira_image_height(img), rw, rh);
        if (basira_image_width(img) == rw && basira_image_height(img) == rh) {
            size_t n = (size_t)rw * rh * 3, diff = 0;
            const uint8_t *p = basira_image_pixels(img);
            for (size_t i = 0; i < n; i++)
                diff += p[i] != ref[i];
            CHECK_MSG(diff == 0, "%s: %zu of %zu bytes differ from libvips", what, diff, n);
        }
    }
    g_free(ref);
    basira_image_free(img);
}

static void test_phone_sizes(void)
{
    const int sizes[][2] = {{4000, 3000}, {3024, 4032}, {2592, 1944}, {4624, 3472},
                            {1801, 1351}, {1024, 768},  {640, 480},   {8000, 1000}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        VipsImage *im = texture(sizes[s][0], sizes[s][1]);
        CHECK(im != NULL);
        if (!im)
            continue;
        for (int v = 0; v < 3; v++) {
            void *buf = NULL;
            size_t len = 0;
            /* baseline 4:2:0, progressive, baseline 4:4:4 */
            int r = v == 0 ? vips_jpegsave_buffer(im, &buf, &len, "Q", 90, NULL)
                    : v == 1
                        ? vips_jpegsave_buffer(im, &buf, &len, "Q", 90, "interlace", TRUE, NULL)
                        : vips_jpegsave_buffer(im, &buf, &len, "Q", 90, "subsample_mode",
                                               VIPS_FOREIGN_SUBSAMPLE_OFF, NULL);
            CHECK(r == 0);
            char what[64];
            snprintf(what, sizeof what, "%dx%d variant %d", sizes[s][0], sizes[s][1], v);
            if (!r)
                parity(what, buf, len);
            g_free(buf);
        }
        g_object_unref(im);
    }
}

static void test_orientations(void)
{
    VipsImage *im = texture(1600, 1200);
    for (int o = 1; im && o <= 8; o++) {
        VipsImage *tagged = NULL;
        CHECK(!vips_copy(im, &tagged, NULL));
        if (!tagged)
            continue;
        vips_image_set_int(tagged, VIPS_META_ORIENTATION, o);
        void *buf = NULL;
        size_t len = 0;
        CHECK(!vips_jpegsave_buffer(tagged, &buf, &len, "Q", 92, NULL));
        char what[32];
        snprintf(what, sizeof what, "orientation %d", o);
        if (buf)
            parity(what, buf, len);
        /* The original size is the upright photo's. */
        basira_image *img = NULL;
        basira_error err;
        if (buf && basira_image_load_buffer(buf, len, NULL, &img, &err) == BASIRA_OK) {
            CHECK_EQ_INT(basira_image_original_width(img), o >= 5 ? 1200 : 1600);
            basira_image_free(img);
        }
        g_free(buf);
        g_object_unref(tagged);
    }
    if (im)
        g_object_unref(im);
}

/* What jpeg.c must leave to libvips, and still load (through intake.c). */
static void test_left_to_libvips(void)
{
    VipsImage *im = texture(800, 600), *grey = NULL, *cmyk = NULL;
    CHECK(im && !vips_colourspace(im, &grey, VIPS_INTERPRETATION_B_W, NULL));
    CHECK(im && !vips_icc_export(im, &cmyk, "output_profile", "cmyk", NULL));
    struct {
        const char *what;
        VipsImage *img;
        const char *profile;
    } cases[] = {{"grey", grey, NULL}, {"cmyk", cmyk, NULL}, {"icc", im, "srgb"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (!cases[k].img)
            continue;
        void *buf = NULL;
        size_t len = 0;
        int r = cases[k].profile ? vips_jpegsave_buffer(cases[k].img, &buf, &len, "profile",
                                                        cases[k].profile, NULL)
                                 : vips_jpegsave_buffer(cases[k].img, &buf, &len, NULL);
        CHECK_MSG(r == 0, "%s: %s", cases[k].what, vips_error_buffer());
        vips_error_clear();
        if (r)
            continue;
        intake_jpeg_info info;
        CHECK_MSG(intake_jpeg_probe(buf, len, &info) == 0, "%s: taken by jpeg.c", cases[k].what);
        basira_image *img = NULL;
        basira_error err;
        CHECK_MSG(basira_image_load_buffer(buf, len, NULL, &img, &err) == BASIRA_OK, "%s: %s",
                  cases[k].what, err.message);
        basira_image_free(img);
        g_free(buf);
    }
    VipsImage *all[] = {im, grey, cmyk};
    for (size_t i = 0; i < 3; i++)
        if (all[i])
            g_object_unref(all[i]);
}

/* Cut short or damaged: refused as damaged, as libvips refuses it; never a crash. */
static void test_damaged(void)
{
    VipsImage *im = texture(2000, 1500);
    void *buf = NULL;
    size_t len = 0;
    CHECK(im && !vips_jpegsave_buffer(im, &buf, &len, "Q", 90, NULL));
    for (int cut = 1; buf && cut <= 9; cut++) {
        size_t n = len * (size_t)cut / 10;
        basira_image *img = NULL;
        basira_error err;
        basira_code rc = basira_image_load_buffer(buf, n, NULL, &img, &err);
        CHECK_MSG(rc == BASIRA_E_CORRUPT, "cut at %d0%%: code %d", cut, (int)rc);
        int rw, rh;
        uint8_t *ref = vips_reference(buf, n, 1024, &rw, &rh);
        CHECK_MSG(ref == NULL, "cut at %d0%%: libvips accepted it", cut);
        vips_error_clear();
        g_free(ref);
        basira_image_free(img);
    }
    /* Bytes flipped in the middle of the entropy-coded data: whatever libvips says
     * (decoded with warnings, or refused), Basira says the same. */
    for (int k = 0; buf && k < 20; k++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        for (int j = 0; j < 8; j++)
            copy[len / 3 + (size_t)(k * 977 + j * 131) % (len / 2)] ^= 0x5A;
        basira_image *img = NULL;
        basira_error err;
        basira_code rc = basira_image_load_buffer(copy, len, NULL, &img, &err);
        int rw = 0, rh = 0;
        uint8_t *ref = vips_reference(copy, len, 1024, &rw, &rh);
        vips_error_clear();
        CHECK_MSG((rc == BASIRA_OK) == (ref != NULL), "damage %d: Basira %d, libvips %s", k,
                  (int)rc, ref ? "decoded" : "refused");
        if (rc == BASIRA_OK && ref)
            CHECK_MSG(!memcmp(basira_image_pixels(img), ref, (size_t)rw * rh * 3),
                      "damage %d: pixels differ", k);
        g_free(ref);
        basira_image_free(img);
        free(copy);
    }
    g_free(buf);
    if (im)
        g_object_unref(im);
}

int main(void)
{
    if (VIPS_INIT("test_jpeg"))
        return 1;
    vips_vector_set_enabled(FALSE); /* as intake.c runs libvips */
    vips_cache_set_max(0);
    RUN(test_phone_sizes);
    RUN(test_orientations);
    RUN(test_left_to_libvips);
    RUN(test_damaged);
    vips_shutdown();
    return test_summary();
}
