/*
 * test_intake.c - image intake: formats, orientation, colour, metadata, limits, errors.
 *
 * Every test image is generated here with the libvips C API (or byte by byte for
 * hostile files), so nothing binary needs to be committed.
 */
#include "basira/image.h"
#include "test.h"

#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vips/vips.h>

/* ---- helpers ---------------------------------------------------------------- */

/* A w x h sRGB uchar image: a gradient with a red square in the top-left corner. */
static VipsImage *pattern(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            int red = x < w / 4 && y < h / 4;
            p[0] = red ? 220 : (uint8_t)(60 + 120 * x / w);
            p[1] = red ? 20 : (uint8_t)(60 + 120 * y / h);
            p[2] = red ? 20 : 120;
        }
    VipsImage *im =
        vips_image_new_from_memory_copy(px, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    free(px);
    return im;
}

typedef struct blob {
    void *data;
    size_t len;
} blob;

static void blob_free(blob *b)
{
    g_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int load(const blob *b, basira_image **img, basira_error *err)
{
    return basira_image_load_buffer(b->data, b->len, NULL, img, err);
}

/* Mean of a w x h block of one channel. */
static double block_mean(const basira_image *img, int x0, int y0, int bw, int bh, int c)
{
    const uint8_t *px = basira_image_pixels(img);
    int w = basira_image_width(img);
    double s = 0;
    for (int y = y0; y < y0 + bh; y++)
        for (int x = x0; x < x0 + bw; x++)
            s += px[((size_t)y * w + x) * 3 + c];
    return s / (bw * bh);
}

static int contains(const void *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    const uint8_t *h = hay;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(h + i, needle, m))
            return 1;
    return 0;
}

static uint32_t crc32_(const uint8_t *d, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= d[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static size_t png_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t n)
{
    out[0] = n >> 24, out[1] = n >> 16, out[2] = n >> 8, out[3] = n;
    memcpy(out + 4, type, 4);
    if (n)
        memcpy(out + 8, data, n);
    uint32_t c = crc32_(out + 4, n + 4);
    out[8 + n] = c >> 24, out[9 + n] = c >> 16, out[10 + n] = c >> 8, out[11 + n] = c;
    return 12 + n;
}

/* ---- formats ------------------------------------------------------------------ */

static void check_pattern_loaded(const char *what, const blob *b, int w, int h, double tol)
{
    basira_image *img = NULL;
    basira_error err;
    int rc = load(b, &img, &err);
    CHECK_MSG(rc == BASIRA_OK, "%s: %s", what, rc ? err.message : "");
    if (rc)
        return;
    CHECK_EQ_INT(basira_image_width(img), w);
    CHECK_EQ_INT(basira_image_height(img), h);
    CHECK_EQ_INT(basira_image_original_width(img), w);
    /* The red corner is red, the rest is not. */
    CHECK_MSG(block_mean(img, 4, 4, 8, 8, 0) > 220 - tol, "%s red corner R", what);
    CHECK_MSG(block_mean(img, 4, 4, 8, 8, 1) < 20 + tol, "%s red corner G", what);
    CHECK_MSG(block_mean(img, w - 12, h - 12, 8, 8, 2) > 120 - tol &&
                  block_mean(img, w - 12, h - 12, 8, 8, 2) < 120 + tol,
              "%s blue of the far corner", what);
    basira_image_free(img);
}

static void test_formats(void)
{
    VipsImage *im = pattern(160, 120);
    blob b = {0};
    CHECK(!vips_jpegsave_buffer(im, &b.data, &b.len, "Q", 95, NULL));
    check_pattern_loaded("jpeg", &b, 160, 120, 12);
    blob_free(&b);
    CHECK(!vips_pngsave_buffer(im, &b.data, &b.len, NULL));
    check_pattern_loaded("png", &b, 160, 120, 1);
    blob_free(&b);
    CHECK(!vips_webpsave_buffer(im, &b.data, &b.len, "lossless", TRUE, NULL));
    check_pattern_loaded("webp", &b, 160, 120, 1);
    blob_free(&b);
    CHECK(!vips_tiffsave_buffer(im, &b.data, &b.len, NULL));
    check_pattern_loaded("tiff", &b, 160, 120, 1);
    blob_free(&b);
    /* AVIF (HEIF container, AV1) encoded here. */
    if (!vips_heifsave_buffer(im, &b.data, &b.len, "Q", 95, "compression",
                              VIPS_FOREIGN_HEIF_COMPRESSION_AV1, NULL)) {
        check_pattern_loaded("avif", &b, 160, 120, 25);
        blob_free(&b);
    } else {
        CHECK_MSG(0, "no AVIF encoder: %s", vips_error_buffer());
        vips_error_clear();
    }
    /*
     * HEIC (HEVC) as phones write it: the committed 24 x 16 seed of the fuzzer
     * (encoding HEVC here would pull libx265 into the test, whose encoder keeps
     * allocations LeakSanitizer reports).
     */
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (src) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fuzz/corpus/intake/seed.heic", src);
        basira_intake_options o;
        basira_intake_options_default(&o);
        o.min_side = 8;
        basira_image *img = NULL, *ref = NULL;
        basira_error err;
        CHECK_EQ_INT(basira_image_load_file(path, &o, &img, &err), BASIRA_OK);
        /* The same pixels saved losslessly as seed.png. */
        snprintf(path, sizeof path, "%s/fuzz/corpus/intake/seed.png", src);
        CHECK_EQ_INT(basira_image_load_file(path, &o, &ref, &err), BASIRA_OK);
        if (img && ref) {
            CHECK_EQ_INT(basira_image_width(img), 24);
            CHECK_EQ_INT(basira_image_height(img), 16);
            for (int c = 0; c < 3; c++)
                CHECK_NEAR(block_mean(img, 0, 0, 24, 16, c), block_mean(ref, 0, 0, 24, 16, c), 12);
        }
        basira_image_free(img);
        basira_image_free(ref);
    } else {
        CHECK_MSG(0, "BASIRA_SOURCE_DIR not set: cannot find the HEIC seed");
    }
    g_object_unref(im);
}

/*
 * The EXIF orientation is applied: an upright photo (1, or no tag) is decoded as it
 * is, a turned one is turned back. The pattern's red block is at its top-left.
 */
static void test_orientation(void)
{
    static const struct {
        int tag, swap;
        int red_right, red_bottom; /* where the red block must end up */
    } cases[] = {{1, 0, 0, 0}, {3, 0, 1, 1}, {6, 1, 1, 0}, {8, 1, 0, 1}};
    VipsImage *im = pattern(200, 120);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        VipsImage *tagged = NULL;
        CHECK(!vips_copy(im, &tagged, NULL));
        vips_image_set_int(tagged, VIPS_META_ORIENTATION, cases[k].tag);
        blob b = {0};
        CHECK(!vips_jpegsave_buffer(tagged, &b.data, &b.len, "Q", 95, NULL));
        basira_image *img = NULL;
        basira_error err;
        CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
        if (img) {
            int w = cases[k].swap ? 120 : 200, h = cases[k].swap ? 200 : 120;
            CHECK_EQ_INT(basira_image_width(img), w);
            CHECK_EQ_INT(basira_image_height(img), h);
            CHECK_EQ_INT(basira_image_original_width(img), w);
            CHECK_EQ_INT(basira_image_original_height(img), h);
            int rx = cases[k].red_right ? w - 12 : 4, ry = cases[k].red_bottom ? h - 12 : 4;
            CHECK_MSG(block_mean(img, rx, ry, 8, 8, 0) > 200, "orientation %d: red block missing",
                      cases[k].tag);
            /* The red block alone has green 20; the gradient elsewhere has 60 or more. */
            CHECK_MSG(block_mean(img, rx, ry, 8, 8, 1) < 40, "orientation %d: not the red block",
                      cases[k].tag);
            CHECK_MSG(block_mean(img, cases[k].red_right ? 4 : w - 12, ry, 8, 8, 1) > 50,
                      "orientation %d: red block mirrored", cases[k].tag);
            basira_image_free(img);
        }
        blob_free(&b);
        g_object_unref(tagged);
    }
    g_object_unref(im);
}

/* Pixels encoded in Display P3 with the profile embedded come back in sRGB. */
static void test_icc(void)
{
    uint8_t px[96 * 96 * 3];
    for (size_t i = 0; i < sizeof px; i += 3)
        px[i] = 200, px[i + 1] = 40, px[i + 2] = 40;
    VipsImage *im = vips_image_new_from_memory_copy(px, sizeof px, 96, 96, 3, VIPS_FORMAT_UCHAR);
    VipsImage *p3 = NULL;
    CHECK(!vips_icc_transform(im, &p3, "p3", "input_profile", "srgb", "embedded", TRUE, NULL));
    blob b = {0};
    CHECK(p3 && !vips_pngsave_buffer(p3, &b.data, &b.len, NULL));
    /* Raw P3 values differ from the sRGB ones: without the profile the colour would be wrong. */
    VipsImage *raw = vips_image_new_from_buffer(b.data, b.len, "", NULL);
    double *v = NULL;
    int n = 0;
    CHECK(raw && !vips_getpoint(raw, &v, &n, 5, 5, NULL) && n >= 3);
    if (v && n >= 3)
        CHECK_MSG(fabs(v[0] - 200) > 8 || fabs(v[1] - 40) > 8, "P3 encoding %g %g %g", v[0], v[1],
                  v[2]);
    g_free(v);
    basira_image *img = NULL;
    basira_error err;
    CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_NEAR(block_mean(img, 10, 10, 20, 20, 0), 200, 4);
        CHECK_NEAR(block_mean(img, 10, 10, 20, 20, 1), 40, 4);
        CHECK_NEAR(block_mean(img, 10, 10, 20, 20, 2), 40, 4);
        basira_image_free(img);
    }
    if (raw)
        g_object_unref(raw);
    blob_free(&b);
    g_object_unref(p3);
    g_object_unref(im);
}

/* Grey, 16-bit, CMYK and transparent images all come out as 3-band 8-bit sRGB. */
static void test_colour_layouts(void)
{
    basira_image *img = NULL;
    basira_error err;
    blob b = {0};

    /* Greyscale 8-bit. */
    VipsImage *grey = NULL, *t = NULL;
    CHECK(!vips_black(&t, 80, 80, NULL));
    CHECK(!vips_linear1(t, &grey, 1, 90, "uchar", TRUE, NULL));
    g_object_unref(t);
    CHECK(!vips_pngsave_buffer(grey, &b.data, &b.len, NULL));
    CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 0), 90, 1);
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 1), 90, 1);
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 2), 90, 1);
        basira_image_free(img);
        img = NULL;
    }
    blob_free(&b);
    g_object_unref(grey);

    /* 16-bit RGB: 65535 is full scale. */
    VipsImage *rgb16 = NULL, *c = NULL;
    double v16[3] = {65535, 32768, 0}, ones[3] = {0, 0, 0};
    CHECK(!vips_black(&t, 80, 80, "bands", 3, NULL));
    CHECK(!vips_linear(t, &c, ones, v16, 3, NULL));
    g_object_unref(t);
    CHECK(!vips_cast_ushort(c, &rgb16, NULL));
    g_object_unref(c);
    rgb16->Type = VIPS_INTERPRETATION_RGB16;
    CHECK(!vips_pngsave_buffer(rgb16, &b.data, &b.len, NULL));
    CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 0), 255, 1);
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 1), 128, 1);
        CHECK_NEAR(block_mean(img, 0, 0, 80, 80, 2), 0, 1);
        basira_image_free(img);
        img = NULL;
    }
    blob_free(&b);
    g_object_unref(rgb16);

    /* RGBA: fully transparent pixels are shown on white, opaque ones keep their colour. */
    uint8_t rgba[80 * 80 * 4];
    for (int i = 0; i < 80 * 80; i++) {
        int opaque = (i % 80) < 40;
        rgba[4 * i] = 10, rgba[4 * i + 1] = 100, rgba[4 * i + 2] = 10;
        rgba[4 * i + 3] = opaque ? 255 : 0;
    }
    VipsImage *a = vips_image_new_from_memory_copy(rgba, sizeof rgba, 80, 80, 4, VIPS_FORMAT_UCHAR);
    CHECK(!vips_pngsave_buffer(a, &b.data, &b.len, NULL));
    CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_NEAR(block_mean(img, 0, 0, 40, 80, 1), 100, 1);
        CHECK_NEAR(block_mean(img, 40, 0, 40, 80, 0), 255, 1);
        CHECK_NEAR(block_mean(img, 40, 0, 40, 80, 2), 255, 1);
        basira_image_free(img);
        img = NULL;
    }
    blob_free(&b);
    g_object_unref(a);

    /* CMYK JPEG with its profile: converted back to (about) the original colour. */
    uint8_t px[80 * 80 * 3];
    for (size_t i = 0; i < sizeof px; i += 3)
        px[i] = 180, px[i + 1] = 120, px[i + 2] = 90;
    VipsImage *s = vips_image_new_from_memory_copy(px, sizeof px, 80, 80, 3, VIPS_FORMAT_UCHAR);
    VipsImage *cmyk = NULL;
    CHECK(!vips_icc_transform(s, &cmyk, "cmyk", "input_profile", "srgb", "embedded", TRUE, NULL));
    CHECK(cmyk && cmyk->Bands == 4);
    CHECK(cmyk && !vips_jpegsave_buffer(cmyk, &b.data, &b.len, "Q", 98, NULL));
    CHECK_EQ_INT(load(&b, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_NEAR(block_mean(img, 10, 10, 40, 40, 0), 180, 12);
        CHECK_NEAR(block_mean(img, 10, 10, 40, 40, 1), 120, 12);
        CHECK_NEAR(block_mean(img, 10, 10, 40, 40, 2), 90, 12);
        basira_image_free(img);
    }
    blob_free(&b);
    if (cmyk)
        g_object_unref(cmyk);
    g_object_unref(s);
}

/*
 * A JPEG carrying an EXIF block with GPS coordinates and a camera serial, and a
 * comment: once through intake and basira_image_encode_jpeg none of it remains.
 */
static void test_metadata_stripped(void)
{
    VipsImage *im = pattern(120, 100);
    blob b = {0};
    CHECK(!vips_jpegsave_buffer(im, &b.data, &b.len, "Q", 90, "strip", TRUE, NULL));
    /* EXIF (little-endian TIFF): IFD0 { Make="SecretCam-SN4711", GPSInfo -> GPS IFD { N } }. */
    static const uint8_t tiff[] = {
        'I',  'I',  42,  0,   8,   0,   0,   0,                     /* header, IFD0 at 8 */
        2,    0,                                                    /* 2 entries */
        0x0f, 0x01, 2,   0,   17,  0,   0,   0,   38,  0,   0,   0, /* Make, ASCII[17] at 38 */
        0x25, 0x88, 4,   0,   1,   0,   0,   0,   56,  0,   0,   0, /* GPSInfo IFD at 56 */
        0,    0,    0,   0,                                         /* no next IFD */
        'S',  'e',  'c', 'r', 'e', 't', 'C', 'a', 'm', '-', 'S', 'N',
        '4',  '7',  '1', '1', 0,   0,   1,   0,                     /* GPS IFD: 1 entry */
        0x01, 0x00, 2,   0,   2,   0,   0,   0,   'N', 0,   0,   0, /* GPSLatitudeRef "N" */
        0,    0,    0,   0,
    };
    const char comment[] = "GPS 33.5731N 7.5898W patient-home";
    size_t exif_len = 6 + sizeof tiff, com_len = sizeof comment - 1;
    size_t n = b.len + 4 + exif_len + 4 + com_len;
    uint8_t *j = malloc(n), *p = j;
    memcpy(p, b.data, 2), p += 2; /* SOI */
    *p++ = 0xff, *p++ = 0xe1, *p++ = (uint8_t)((exif_len + 2) >> 8), *p++ = (uint8_t)(exif_len + 2);
    memcpy(p, "Exif\0\0", 6), p += 6;
    memcpy(p, tiff, sizeof tiff), p += sizeof tiff;
    *p++ = 0xff, *p++ = 0xfe, *p++ = (uint8_t)((com_len + 2) >> 8), *p++ = (uint8_t)(com_len + 2);
    memcpy(p, comment, com_len), p += com_len;
    memcpy(p, (uint8_t *)b.data + 2, b.len - 2), p += b.len - 2;
    CHECK_EQ_INT(p - j, n);
    /* The crafted file really carries the metadata, as libvips reads it. */
    VipsImage *h = vips_image_new_from_buffer(j, n, "", NULL);
    CHECK(h && vips_image_get_typeof(h, VIPS_META_EXIF_NAME));
    CHECK(contains(j, n, "SecretCam") && contains(j, n, "33.5731"));
    if (h)
        g_object_unref(h);

    basira_image *img = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_load_buffer(j, n, NULL, &img, &err), BASIRA_OK);
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (img) {
        CHECK_EQ_INT(basira_image_encode_jpeg(img, 90, &out, &out_len, &err), BASIRA_OK);
        CHECK(out && out_len > 100);
        CHECK(out && out[0] == 0xff && out[1] == 0xd8);
        CHECK(!contains(out, out_len, "Exif"));
        CHECK(!contains(out, out_len, "SecretCam"));
        CHECK(!contains(out, out_len, "33.5731"));
        CHECK(!contains(out, out_len, "ICC_PROFILE"));
        CHECK(!contains(out, out_len, "http://ns.adobe.com/xap")); /* XMP */
        /* And the result is a valid JPEG showing the same picture. */
        basira_image *back = NULL;
        CHECK_EQ_INT(basira_image_load_buffer(out, out_len, NULL, &back, &err), BASIRA_OK);
        if (back) {
            CHECK(block_mean(back, 4, 4, 8, 8, 0) > 200);
            basira_image_free(back);
        }
        free(out);
        out = NULL;
        CHECK_EQ_INT(basira_image_encode_jpeg(img, 0, &out, &out_len, &err),
                     BASIRA_E_INVALID_ARGUMENT);
        CHECK(out == NULL && out_len == 0);
        basira_image_free(img);
    }
    free(out);
    free(j);
    blob_free(&b);
    g_object_unref(im);
}

/* ---- errors ------------------------------------------------------------------ */

static void expect(const char *what, const void *data, size_t len, basira_code want)
{
    basira_image *img = (basira_image *)1;
    basira_error err;
    basira_error_clear(&err);
    int rc = basira_image_load_buffer(data, len, NULL, &img, &err);
    CHECK_MSG(rc == (int)want, "%s: got %s (%s), want %s", what, basira_code_name(rc), err.message,
              basira_code_name(want));
    if (rc)
        CHECK_MSG(img == NULL, "%s: output set on error", what);
    if (rc) {
        CHECK_MSG(err.code == (basira_code)rc && err.message[0], "%s: no message", what);
    }
    basira_image_free(rc ? NULL : img);
}

static void test_errors(void)
{
    expect("zero bytes", "", 0, BASIRA_E_EMPTY_FILE);

    uint8_t noise[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof noise; i++)
        s = s * 1103515245u + 12345u, noise[i] = (uint8_t)(s >> 16);
    expect("random bytes", noise, sizeof noise, BASIRA_E_NOT_AN_IMAGE);
    const char text[] = "patient,age\nA,42\nThis is a text file, not a photo.\n";
    expect("text", text, sizeof text - 1, BASIRA_E_NOT_AN_IMAGE);
    const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"500\" height=\"500\">"
                       "<rect width=\"500\" height=\"500\"/></svg>";
    expect("svg", svg, sizeof svg - 1, BASIRA_E_NOT_AN_IMAGE);

    /* Truncated JPEG and PNG of a detailed picture: half the bytes. */
    VipsImage *n = NULL, *u = NULL;
    CHECK(!vips_gaussnoise(&n, 300, 200, "mean", 128.0, "sigma", 40.0, NULL));
    CHECK(!vips_cast_uchar(n, &u, NULL));
    blob b = {0};
    CHECK(!vips_jpegsave_buffer(u, &b.data, &b.len, NULL));
    expect("whole jpeg", b.data, b.len, BASIRA_OK);
    expect("truncated jpeg", b.data, b.len / 2, BASIRA_E_CORRUPT);
    expect("jpeg header only", b.data, 200, BASIRA_E_CORRUPT);
    blob_free(&b);
    CHECK(!vips_pngsave_buffer(u, &b.data, &b.len, NULL));
    expect("whole png", b.data, b.len, BASIRA_OK);
    expect("truncated png", b.data, b.len / 2, BASIRA_E_CORRUPT);
    /* A flipped byte inside the compressed data: the CRC no longer matches. */
    ((uint8_t *)b.data)[b.len / 2] ^= 0x5a;
    expect("damaged png", b.data, b.len, BASIRA_E_CORRUPT);
    blob_free(&b);

    /* Too small. */
    VipsImage *small = pattern(40, 30);
    CHECK(!vips_pngsave_buffer(small, &b.data, &b.len, NULL));
    expect("40x30", b.data, b.len, BASIRA_E_IMAGE_TOO_SMALL);
    blob_free(&b);
    g_object_unref(small);

    /* Decompression bomb: a valid PNG header claiming 100000 x 100000 pixels. */
    uint8_t bomb[128], *p = bomb;
    memcpy(p, "\x89PNG\r\n\x1a\n", 8), p += 8;
    uint8_t ihdr[13] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0};
    p += png_chunk(p, "IHDR", ihdr, 13);
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    p += png_chunk(p, "IDAT", idat, sizeof idat);
    p += png_chunk(p, "IEND", NULL, 0);
    expect("png bomb", bomb, (size_t)(p - bomb), BASIRA_E_IMAGE_TOO_LARGE);

    /* Animated GIF and WebP, multi-page TIFF: two 64x64 frames stacked. */
    VipsImage *two = NULL, *pat = pattern(64, 128);
    CHECK(!vips_copy(pat, &two, NULL));
    vips_image_set_int(two, VIPS_META_PAGE_HEIGHT, 64);
    vips_image_set_int(two, VIPS_META_N_PAGES, 2);
    CHECK(!vips_gifsave_buffer(two, &b.data, &b.len, NULL));
    expect("animated gif", b.data, b.len, BASIRA_E_MULTIPAGE);
    blob_free(&b);
    CHECK(!vips_webpsave_buffer(two, &b.data, &b.len, NULL));
    expect("animated webp", b.data, b.len, BASIRA_E_MULTIPAGE);
    blob_free(&b);
    CHECK(!vips_tiffsave_buffer(two, &b.data, &b.len, NULL));
    expect("multi-page tiff", b.data, b.len, BASIRA_E_MULTIPAGE);
    blob_free(&b);
    /* A still GIF is fine. */
    CHECK(!vips_gifsave_buffer(pat, &b.data, &b.len, NULL));
    expect("still gif", b.data, b.len, BASIRA_OK);
    blob_free(&b);
    g_object_unref(two);
    g_object_unref(pat);

    /* Limits from the options. */
    VipsImage *ok = pattern(200, 150);
    CHECK(!vips_pngsave_buffer(ok, &b.data, &b.len, NULL));
    basira_intake_options o;
    basira_intake_options_default(&o);
    CHECK_EQ_INT(o.max_file_bytes, 64u << 20);
    CHECK_EQ_INT(o.min_side, 64);
    basira_image *img = NULL;
    basira_error err;
    o.max_file_bytes = b.len - 1;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err), BASIRA_E_IMAGE_TOO_LARGE);
    basira_intake_options_default(&o);
    o.max_pixels = 200 * 150 - 1;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err), BASIRA_E_IMAGE_TOO_LARGE);
    basira_intake_options_default(&o);
    o.min_side = 151;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err), BASIRA_E_IMAGE_TOO_SMALL);
    o.min_side = -1;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, NULL, NULL, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_image_load_buffer(NULL, 10, NULL, &img, &err), BASIRA_E_INVALID_ARGUMENT);
    /* Shrink on load to max_side, no enlargement. */
    basira_intake_options_default(&o);
    o.max_side = 100;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_EQ_INT(basira_image_width(img), 100);
        CHECK_EQ_INT(basira_image_height(img), 75);
        CHECK_EQ_INT(basira_image_original_width(img), 200);
        CHECK_EQ_INT(basira_image_original_height(img), 150);
        basira_image_free(img);
        img = NULL;
    }
    o.max_side = 1000;
    CHECK_EQ_INT(basira_image_load_buffer(b.data, b.len, &o, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_EQ_INT(basira_image_width(img), 200);
        basira_image_free(img);
    }
    blob_free(&b);
    g_object_unref(ok);
    g_object_unref(u);
    g_object_unref(n);
}

static void test_files(void)
{
    basira_image *img = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_load_file("/nonexistent/photo.jpg", NULL, &img, &err),
                 BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "/nonexistent/photo.jpg") != NULL);
    CHECK_EQ_INT(basira_image_load_file("/tmp", NULL, &img, &err), BASIRA_E_IO);
    char path[] = "/tmp/basira-intake-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK_EQ_INT(basira_image_load_file(path, NULL, &img, &err), BASIRA_E_EMPTY_FILE);
    VipsImage *im = pattern(100, 80);
    blob b = {0};
    CHECK(!vips_pngsave_buffer(im, &b.data, &b.len, NULL));
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    close(fd);
    CHECK_EQ_INT(basira_image_load_file(path, NULL, &img, &err), BASIRA_OK);
    if (img) {
        CHECK_EQ_INT(basira_image_width(img), 100);
        basira_image_free(img);
        img = NULL;
    }
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.max_file_bytes = 10;
    CHECK_EQ_INT(basira_image_load_file(path, &o, &img, &err), BASIRA_E_IMAGE_TOO_LARGE);
    unlink(path);
    blob_free(&b);
    g_object_unref(im);
}

/* ---- memory: a 48 MP JPEG is shrunk while it is decoded ------------------------ */

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/*
 * The 8000 x 6000 JPEG is made in a child process, before this process starts
 * libvips (forking a process whose libvips threads run is unsafe), so that the
 * memory it takes to encode it does not hide the memory taken to load it here.
 */
static char big_path[] = "/tmp/basira-48mp-XXXXXX";

static int make_big_jpeg(void)
{
    int fd = mkstemp(big_path);
    if (fd < 0)
        return -1;
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        VipsImage *k = NULL, *g = NULL;
        int bad = vips_init("test") || vips_black(&k, 8000, 6000, "bands", 3, NULL) ||
                  vips_linear1(k, &g, 1, 140, "uchar", TRUE, NULL) ||
                  vips_jpegsave(g, big_path, "Q", 80, NULL);
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_shrink_on_load_memory(void)
{
    const char *path = big_path;
    long before = max_rss_kb();
    basira_image *img = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_load_file(path, NULL, &img, &err), BASIRA_OK);
    long grew_mb = (max_rss_kb() - before) / 1024;
    fprintf(stderr, "48 MP JPEG: peak RSS grew by %ld MB while loading (full decode: 137 MB)\n",
            grew_mb);
    CHECK_MSG(grew_mb < 60, "peak RSS grew by %ld MB", grew_mb);
    if (img) {
        /* 8000 / 8 = 1000 >= 3/4 of 1024: decoded straight at 1/8 scale, no resize. */
        CHECK_EQ_INT(basira_image_width(img), 1000);
        CHECK_EQ_INT(basira_image_height(img), 750);
        CHECK_EQ_INT(basira_image_original_width(img), 8000);
        CHECK_EQ_INT(basira_image_original_height(img), 6000);
        CHECK_NEAR(block_mean(img, 100, 100, 50, 50, 1), 140, 2);
        basira_image_free(img);
    }
    unlink(path);
}

static void test_from_rgb_resize(void)
{
    uint8_t px[40 * 20 * 3];
    for (int i = 0; i < 40 * 20; i++)
        px[3 * i] = (i % 40) < 20 ? 0 : 200, px[3 * i + 1] = 50, px[3 * i + 2] = 100;
    basira_image *img = NULL, *r = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_from_rgb(px, 40, 20, &img, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_image_from_rgb(px, 0, 20, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_image_from_rgb(NULL, 4, 4, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    if (!img)
        return;
    CHECK(!memcmp(basira_image_pixels(img), px, sizeof px));
    const int sizes[][2] = {{128, 128}, {13, 7}, {40, 20}, {333, 101}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        CHECK_EQ_INT(basira_image_resize(img, w, h, &r, &err), BASIRA_OK);
        if (!r)
            continue;
        CHECK_EQ_INT(basira_image_width(r), w);
        CHECK_EQ_INT(basira_image_height(r), h);
        /* Left half stays dark, right half red; the constant channels stay constant. */
        CHECK_NEAR(block_mean(r, 0, 0, w / 5 ? w / 5 : 1, h, 0), 0, 12);
        CHECK_NEAR(block_mean(r, w - (w / 5 ? w / 5 : 1), 0, w / 5 ? w / 5 : 1, h, 0), 200, 12);
        CHECK_NEAR(block_mean(r, 0, 0, w, h, 1), 50, 1);
        basira_image_free(r);
        r = NULL;
    }
    CHECK_EQ_INT(basira_image_resize(img, 0, 10, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_image_resize(img, 100000, 10, &r, &err), BASIRA_E_INVALID_ARGUMENT);
    basira_image_free(img);
}

/*
 * basira_image_resize() downsizes the way vips_resize() does (box shrink, then
 * Lanczos-3), without its slow tile cache: identical pixels down to x1/2, which is
 * every HAM10000 image (200 x 150) going to the model's 128 px and the quality
 * gate's 200 px, and the same picture up to rounding below that.
 */
static void test_resize_matches_vips(void)
{
    const int src[][2] = {{200, 150}, {1000, 750}, {640, 480}};
    const int dst[][2] = {{128, 128}, {200, 150}, {96, 96}, {150, 200}, {300, 40}};
    for (size_t a = 0; a < sizeof src / sizeof src[0]; a++) {
        int sw = src[a][0], sh = src[a][1];
        VipsImage *pat = pattern(sw, sh);
        size_t n = 0;
        uint8_t *px = pat ? vips_image_write_to_memory(pat, &n) : NULL;
        basira_image *img = NULL;
        basira_error err;
        CHECK(px && n == (size_t)sw * sh * 3);
        CHECK_EQ_INT(basira_image_from_rgb(px, sw, sh, &img, &err), BASIRA_OK);
        for (size_t b = 0; img && b < sizeof dst / sizeof dst[0]; b++) {
            int w = dst[b][0], h = dst[b][1];
            double hs = (double)w / sw, vs = (double)h / sh;
            if (hs > 1 || vs > 1)
                continue; /* enlarging is vips_resize() itself */
            basira_image *r = NULL;
            VipsImage *ref = NULL;
            CHECK_EQ_INT(basira_image_resize(img, w, h, &r, &err), BASIRA_OK);
            CHECK(!vips_resize(pat, &ref, hs, "vscale", vs, NULL));
            size_t rn = 0;
            uint8_t *rp = ref ? vips_image_write_to_memory(ref, &rn) : NULL;
            if (r && rp && vips_image_get_width(ref) == w && vips_image_get_height(ref) == h) {
                const uint8_t *q = basira_image_pixels(r);
                int worst = 0;
                double sum = 0;
                for (size_t i = 0; i < rn; i++) {
                    int d = abs((int)q[i] - (int)rp[i]);
                    worst = d > worst ? d : worst;
                    sum += d;
                }
                int exact = hs >= 0.5 && vs >= 0.5;
                CHECK_MSG(exact ? worst == 0 : worst <= 8 && sum / rn < 1.0,
                          "%dx%d -> %dx%d: differs from vips_resize by up to %d (mean %.3f)", sw,
                          sh, w, h, worst, sum / rn);
            }
            g_free(rp);
            if (ref)
                g_object_unref(ref);
            basira_image_free(r);
        }
        basira_image_free(img);
        g_free(px);
        if (pat)
            g_object_unref(pat);
    }
}

int main(void)
{
    int big_ok = make_big_jpeg();
    CHECK(big_ok == 0);
    /* The library starts libvips itself; VIPS_INIT here is only for the helpers above. */
    basira_image *first = NULL;
    basira_error err;
    uint8_t px[64 * 64 * 3] = {0};
    CHECK_EQ_INT(basira_image_from_rgb(px, 64, 64, &first, &err), BASIRA_OK);
    basira_image *r = NULL;
    CHECK_EQ_INT(basira_image_resize(first, 32, 32, &r, &err), BASIRA_OK); /* lazily starts vips */
    basira_image_free(r);
    basira_image_free(first);

    if (big_ok == 0)
        RUN(test_shrink_on_load_memory);
    RUN(test_formats);
    RUN(test_orientation);
    RUN(test_icc);
    RUN(test_colour_layouts);
    RUN(test_metadata_stripped);
    RUN(test_errors);
    RUN(test_files);
    RUN(test_from_rgb_resize);
    RUN(test_resize_matches_vips);
    vips_shutdown();
    return test_summary();
}
