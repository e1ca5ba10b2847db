/*
 * test_budget.c - what a photo may cost: PNG text chunks (zTXt bombs), the memory
 * a decode needs (refused past the limit, shared budget), the decoding deadline.
 *
 * Test images are generated here with libvips, or byte by byte for hostile files.
 */
#include "basira/image.h"
#include "test.h"
#include "png_chunks.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <zlib.h>

#include <vips/vips.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* A w x h noisy colour image (so that encoders cannot make it trivially small). */
static VipsImage *noise(int w, int h)
{
    VipsImage *n = NULL, *u = NULL, *three = NULL;
    CHECK(!vips_gaussnoise(&n, w, h, "mean", 128.0, "sigma", 30.0, NULL));
    CHECK(!vips_cast_uchar(n, &u, NULL));
    VipsImage *bands[3] = {u, u, u};
    CHECK(!vips_bandjoin(bands, &three, 3, NULL));
    g_object_unref(n);
    g_object_unref(u);
    return three;
}

static blob png_of(VipsImage *im, int interlace)
{
    blob b = {NULL, 0};
    void *mem = NULL;
    CHECK(!vips_pngsave_buffer(im, &mem, &b.len, "interlace", interlace, NULL));
    b.data = mem;
    return b;
}

static void test_png_text_chunks(void)
{
    VipsImage *im = noise(96, 96);
    blob png = png_of(im, 0);
    g_object_unref(im);
    basira_image *ref = NULL, *img = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, NULL, &ref, &err), BASIRA_OK);

    /* A few ordinary text chunks (what cameras and editors write): removed, pixels kept. */
    const char text[] = "Software\0GIMP 2.10";
    blob t = with_chunks(&png, "tEXt", (const unsigned char *)text, sizeof text - 1, 3);
    CHECK_EQ_INT(basira_image_load_buffer(t.data, t.len, NULL, &img, &err), BASIRA_OK);
    CHECK(img && ref && basira_image_width(img) == basira_image_width(ref) &&
          !memcmp(basira_image_pixels(img), basira_image_pixels(ref),
                  (size_t)basira_image_width(ref) * basira_image_height(ref) * 3));
    basira_image_free(img);
    img = NULL;
    g_free(t.data);

    /* More text chunks than the documented limit. */
    t = with_chunks(&png, "tEXt", (const unsigned char *)text, sizeof text - 1,
                    BASIRA_PNG_MAX_TEXT_CHUNKS + 1);
    CHECK_EQ_INT(basira_image_load_buffer(t.data, t.len, NULL, &img, &err),
                 BASIRA_E_IMAGE_TOO_LARGE);
    CHECK(strstr(err.message, "text") != NULL);
    g_free(t.data);

    /* The bomb: ten zTXt chunks of 50 MB of zeros each (520 KB of file). Refused,
     * within 2 s of CPU (it took 22 s in the node before). */
    size_t n = 0;
    unsigned char *z = ztxt_payload((size_t)50 << 20, &n);
    t = with_chunks(&png, "zTXt", z, n, 10);
    double c0 = cpu_seconds();
    CHECK_EQ_INT(basira_image_load_buffer(t.data, t.len, NULL, &img, &err),
                 BASIRA_E_IMAGE_TOO_LARGE);
    double used = cpu_seconds() - c0;
    fprintf(stderr, "zTXt bomb (%zu KB): refused after %.3f s of CPU\n", t.len / 1024, used);
    CHECK_MSG(used < 2.0, "%.2f s of CPU", used);
    g_free(t.data);

    /* One small zTXt (inflates to 4 KB): fine. */
    free(z);
    z = ztxt_payload(4096, &n);
    t = with_chunks(&png, "zTXt", z, n, 1);
    CHECK_EQ_INT(basira_image_load_buffer(t.data, t.len, NULL, &img, &err), BASIRA_OK);
    basira_image_free(img);
    img = NULL;
    g_free(t.data);
    free(z);

    /* A chunk whose length runs past the end: left to the decoder, refused as damaged. */
    t = with_chunks(&png, "tEXt", (const unsigned char *)text, sizeof text - 1, 1);
    put32(t.data + 33, 0x7fffffffu);
    CHECK(basira_image_load_buffer(t.data, t.len, NULL, &img, &err) != BASIRA_OK);
    g_free(t.data);

    basira_image_free(ref);
    g_free(png.data);
}

/* Formats decoded whole cost memory by pixels; streamed ones do not. */
static void test_decode_cost_limit(void)
{
    VipsImage *im = noise(1200, 1200);
    blob b[5];
    void *m = NULL;
    CHECK(!vips_jpegsave_buffer(im, &m, &b[0].len, "Q", 80, NULL));
    b[0].data = m;
    CHECK(!vips_jpegsave_buffer(im, &m, &b[1].len, "Q", 80, "interlace", TRUE, NULL));
    b[1].data = m;
    b[2] = png_of(im, 0);
    b[3] = png_of(im, 1);
    CHECK(!vips_gifsave_buffer(im, &m, &b[4].len, NULL));
    b[4].data = m;
    g_object_unref(im);
    const char *names[5] = {"baseline JPEG", "progressive JPEG", "PNG", "interlaced PNG", "GIF"};
    const int streamed[5] = {1, 0, 1, 0, 0};
    basira_intake_options o;
    basira_intake_options_default(&o);
    /* Streamed 1200 x 1200: about 26 MB; decoded whole: 31 to 35 MB. */
    o.max_decode_bytes = (size_t)30 << 20;
    for (int i = 0; i < 5; i++) {
        basira_image *img = NULL;
        basira_error err;
        basira_code rc = basira_image_load_buffer(b[i].data, b[i].len, &o, &img, &err);
        CHECK_MSG(rc == (streamed[i] ? BASIRA_OK : BASIRA_E_IMAGE_TOO_LARGE), "%s: %s", names[i],
                  err.message);
        if (!streamed[i])
            CHECK_MSG(strstr(err.message, "MB") != NULL, "%s", err.message);
        basira_image_free(img);
        img = NULL;
        /* The default limit (256 MiB) lets every one of them through. */
        CHECK_MSG(basira_image_load_buffer(b[i].data, b[i].len, NULL, &img, &err) == BASIRA_OK,
                  "%s: %s", names[i], err.message);
        basira_image_free(img);
        g_free(b[i].data);
    }
}

static void test_deadline(void)
{
    VipsImage *im = noise(2000, 2000);
    blob png = png_of(im, 0);
    g_object_unref(im);
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.max_seconds = 0.001;
    basira_image *img = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, &o, &img, &err), BASIRA_E_LIMIT);
    CHECK(strstr(err.message, "too long") != NULL);
    CHECK(img == NULL);
    o.max_seconds = -1;
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, &o, &img, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    o.max_seconds = 0; /* default */
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, &o, &img, &err), BASIRA_OK);
    basira_image_free(img);
    g_free(png.data);
}

/* ---- the shared budget --------------------------------------------------------- */

typedef struct job {
    const blob *b;
    basira_intake_options *o;
    basira_code rc;
    size_t peak_seen;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    basira_image *img = NULL;
    basira_error err;
    j->rc = basira_image_load_buffer(j->b->data, j->b->len, j->o, &img, &err);
    size_t used = basira_decode_budget_in_use(j->o->budget);
    if (used > j->peak_seen)
        j->peak_seen = used;
    basira_image_free(img);
    return NULL;
}

static void test_budget_shared(void)
{
    basira_decode_budget *bud = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_decode_budget_new(0, &bud, &err), BASIRA_OK);
    size_t total = basira_decode_budget_total(bud);
    CHECK(total >= BASIRA_DECODE_BUDGET_MIN && total <= BASIRA_DECODE_BUDGET_MAX);
    CHECK_EQ_INT(basira_decode_budget_in_use(bud), 0);
    basira_decode_budget_free(bud);

    /* A budget that fits one 2000 x 2000 interlaced PNG at a time: four of them all succeed,
     * one after the other, and the budget never shows more than it holds. */
    VipsImage *im = noise(2000, 2000);
    blob png = png_of(im, 1);
    g_object_unref(im);
    CHECK_EQ_INT(basira_decode_budget_new((size_t)60 << 20, &bud, &err), BASIRA_OK);
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.budget = bud;
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){&png, &o, BASIRA_E_INTERNAL, 0};
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].rc, BASIRA_OK);
        CHECK(jobs[i].peak_seen <= basira_decode_budget_total(bud));
    }
    CHECK_EQ_INT(basira_decode_budget_in_use(bud), 0);

    /* With the budget held, a decode waits until its deadline, then says the node is busy. */
    CHECK_EQ_INT(basira_decode_budget_reserve(bud, basira_decode_budget_total(bud), 1.0, &err),
                 BASIRA_OK);
    o.max_seconds = 0.2;
    basira_image *img = NULL;
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, &o, &img, &err), BASIRA_E_LIMIT);
    CHECK(strstr(err.message, "busy") != NULL);
    basira_decode_budget_release(bud, basira_decode_budget_total(bud));
    o.max_seconds = 0;
    CHECK_EQ_INT(basira_image_load_buffer(png.data, png.len, &o, &img, &err), BASIRA_OK);
    basira_image_free(img);
    basira_decode_budget_free(bud);
    g_free(png.data);
}

int main(void)
{
    if (VIPS_INIT("test_budget"))
        return 1;
    RUN(test_png_text_chunks);
    RUN(test_decode_cost_limit);
    RUN(test_deadline);
    RUN(test_budget_shared);
    vips_shutdown();
    return test_summary();
}
