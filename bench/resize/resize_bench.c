/*
 * resize_bench.c - Basira's downsizing (basira_image_resize: vips_shrink then
 * vips_reduce) against libvips' one-call vips_resize(), on the sizes the triage
 * pipeline uses: a 12 MP photo decoded at 1/4 scale (1000 x 750) to the quality
 * gate's 200 x 150 and the model's 128 x 128, and a HAM10000-sized 200 x 150 to
 * 128 x 128. Same process, same pixels, alternating runs; prints one JSON line per
 * size: {"bench":"resize","size","basira_ms","vips_resize_ms","ratio","max_diff"}
 * (medians; ratio > 1 = Basira faster; max_diff in levels of 255).
 *   resize_bench [REPEATS]
 */
#include "basira/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <vips/vips.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Skin-like texture with a darker disc: not a flat image that any filter gets right. */
static uint8_t *photo(int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    if (!px)
        return NULL;
    unsigned s = 12345;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            int noise = (int)((s >> 16) % 17) - 8;
            double dx = x - w / 2.0, dy = y - h / 2.0;
            int in = dx * dx + dy * dy < (w / 6.0) * (w / 6.0);
            int base[3] = {in ? 110 : 215, in ? 70 : 170, in ? 50 : 145};
            for (int c = 0; c < 3; c++) {
                int v = base[c] + noise + ((x / 7 + y / 5) % 3) * 4;
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    return px;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 15;
    if (repeats < 1 || repeats > 1000 || VIPS_INIT(argv[0]))
        return 2;
    vips_cache_set_max(0);
    static const int cases[][4] = {
        {1000, 750, 200, 150}, {1000, 750, 128, 128}, {200, 150, 128, 128}};
    int status = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int sw = cases[k][0], sh = cases[k][1], w = cases[k][2], h = cases[k][3];
        uint8_t *px = photo(sw, sh);
        basira_image *img = NULL;
        basira_error err;
        if (!px || basira_image_from_rgb(px, sw, sh, &img, &err)) {
            free(px);
            return 1;
        }
        VipsImage *src =
            vips_image_new_from_memory(px, (size_t)sw * sh * 3, sw, sh, 3, VIPS_FORMAT_UCHAR);
        double *tb = calloc((size_t)repeats, sizeof *tb), *tv = calloc((size_t)repeats, sizeof *tv);
        int max_diff = 0;
        for (int r = 0; r < repeats && tb && tv && src; r++) {
            double t0 = now_ms();
            basira_image *out = NULL;
            if (basira_image_resize(img, w, h, &out, &err))
                status = 1;
            double t1 = now_ms();
            VipsImage *ref = NULL;
            size_t n = 0;
            uint8_t *mem = NULL;
            if (!vips_resize(src, &ref, (double)w / sw, "vscale", (double)h / sh, NULL))
                mem = vips_image_write_to_memory(ref, &n);
            double t2 = now_ms();
            tb[r] = t1 - t0, tv[r] = t2 - t1;
            if (out && mem && n == (size_t)w * h * 3) {
                const uint8_t *q = basira_image_pixels(out);
                for (size_t i = 0; i < n; i++) {
                    int d = abs((int)q[i] - (int)mem[i]);
                    max_diff = d > max_diff ? d : max_diff;
                }
            }
            g_free(mem);
            if (ref)
                g_object_unref(ref);
            basira_image_free(out);
        }
        if (tb && tv && src) {
            double b = median(tb, repeats), v = median(tv, repeats);
            printf("{\"bench\":\"resize\",\"size\":\"%dx%d->%dx%d\",\"basira_ms\":%.2f,"
                   "\"vips_resize_ms\":%.2f,\"ratio\":%.2f,\"max_diff\":%d}\n",
                   sw, sh, w, h, b, v, v / b, max_diff);
        }
        free(tb);
        free(tv);
        if (src)
            g_object_unref(src);
        basira_image_free(img);
        free(px);
    }
    vips_shutdown();
    return status;
}
