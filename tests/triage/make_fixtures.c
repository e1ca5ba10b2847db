/*
 * make_fixtures.c - writes what the `basira triage` tests need into a folder:
 *   tiny.safetensors  a small random classifier with the HAM10000 classes
 *   photo.jpg         a synthetic photo of skin with a dark lesion
 *   flat.jpg          a uniform grey picture (fails the quality gate: nothing in focus)
 *   garbage.jpg       bytes that are not an image
 * Usage: make_fixtures OUTDIR
 */
#include "basira/image.h"
#include "tiny_model.h"

#include <math.h>
#include <stdio.h>

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "make_fixtures: cannot write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) ? -1 : 0;
}

static int write_jpeg(const char *dir, const char *name, const unsigned char *rgb, int w, int h)
{
    basira_image *img = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    basira_error err;
    if (basira_image_from_rgb(rgb, w, h, &img, &err) ||
        basira_image_encode_jpeg(img, 92, &buf, &len, &err)) {
        fprintf(stderr, "make_fixtures: %s: %s\n", name, err.message);
        basira_image_free(img);
        return -1;
    }
    int rc = write_file(dir, name, buf, len);
    free(buf);
    basira_image_free(img);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_fixtures OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char path[4096];
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    tiny_model_opts o;
    tiny_model_opts_default(&o);
    basira_error err;
    if (tiny_model_save(&o, path, &err)) {
        fprintf(stderr, "make_fixtures: model: %s\n", err.message);
        return 1;
    }
    const int w = 300, h = 225;
    unsigned char *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return 1;
    unsigned s = 12345;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            s = s * 1103515245u + 12345u;
            int noise = (int)((s >> 16) % 24) - 12;
            double dx = (x - w / 2.0) / (w / 5.0), dy = (y - h / 2.0) / (h / 6.0);
            int in = dx * dx + dy * dy + 0.3 * sin(x * 0.2) * cos(y * 0.15) < 1.0;
            int base[3] = {in ? 90 : 205, in ? 55 : 155, in ? 45 : 135};
            for (int c = 0; c < 3; c++) {
                int v = base[c] + noise + (in ? (x * 7 + y * 3) % 25 : 0);
                rgb[3 * ((size_t)y * w + x) + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    int rc = write_jpeg(dir, "photo.jpg", rgb, w, h);
    memset(rgb, 128, (size_t)w * h * 3);
    rc |= write_jpeg(dir, "flat.jpg", rgb, w, h);
    free(rgb);
    static const char garbage[] = "this file is not a photo\n";
    rc |= write_file(dir, "garbage.jpg", garbage, sizeof garbage - 1);
    return rc ? 1 : 0;
}
