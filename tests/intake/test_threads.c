/*
 * test_threads.c - intake used from several threads at once, as the server (one
 * thread per upload) and `basira train` (decode workers) use it.
 *
 * Why: Debian 12's liborc corrupts its code memory when two threads compile a
 * libvips loop at the same time; `basira train` died with SIGSEGV in
 * orc_code_allocate_codemem under vips_reduce. Intake turns liborc off
 * (intake.c, init_vips_once). Without that line this test crashed (SIGSEGV or a
 * corrupted heap) within 3 to 25 s on the 2-core machine; with it every resize of
 * every thread gives the pixels a single thread gives.
 */
#include "basira/image.h"
#include "test.h"

#include <pthread.h>
#include <stdint.h>

enum { THREADS = 4, ROUNDS = 3000, SRC_W = 211, SRC_H = 157 };

/* Output sides: many different ones, so every call builds (compiles) new loops. */
static const int sides[] = {17, 32, 48, 64, 96, 128, 40, 56, 72, 100, 23, 61};
#define NSIDES (int)(sizeof sides / sizeof sides[0])

typedef struct {
    const basira_image *src;
    const uint64_t *want; /* per side: pixel checksum from one thread */
    int index;
    int failures;
} worker_arg;

static uint64_t checksum(const basira_image *img)
{
    const uint8_t *p = basira_image_pixels(img);
    size_t n = 3 * (size_t)basira_image_width(img) * (size_t)basira_image_height(img);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int resize_sum(const basira_image *src, int side, uint64_t *sum)
{
    basira_error err = {0};
    basira_image *out = NULL;
    if (basira_image_resize(src, side, side, &out, &err) != BASIRA_OK)
        return -1;
    *sum = checksum(out);
    basira_image_free(out);
    return 0;
}

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int r = 0; r < ROUNDS; r++) {
        int s = (r + a->index * 5) % NSIDES;
        uint64_t sum = 0;
        if (resize_sum(a->src, sides[s], &sum) || sum != a->want[s])
            a->failures++;
    }
    return NULL;
}

static void test_concurrent_resize(void)
{
    uint8_t *rgb = malloc(3 * SRC_W * SRC_H);
    CHECK(rgb != NULL);
    if (!rgb)
        return;
    for (int y = 0; y < SRC_H; y++)
        for (int x = 0; x < SRC_W; x++)
            for (int c = 0; c < 3; c++)
                rgb[3 * (y * SRC_W + x) + c] = (uint8_t)((x * (c + 1) + y * 3 + (x ^ y)) & 0xff);
    basira_image *src = NULL;
    basira_error err = {0};
    CHECK(basira_image_from_rgb(rgb, SRC_W, SRC_H, &src, &err) == BASIRA_OK);
    free(rgb);
    if (!src)
        return;

    uint64_t want[NSIDES];
    for (int s = 0; s < NSIDES; s++)
        CHECK(resize_sum(src, sides[s], &want[s]) == 0);

    pthread_t t[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){.src = src, .want = want, .index = i};
        CHECK(pthread_create(&t[i], NULL, worker, &args[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += args[i].failures;
    }
    CHECK_EQ_INT(failures, 0);
    basira_image_free(src);
}

int main(void)
{
    RUN(test_concurrent_resize);
    return test_summary();
}
