/*
 * test_scene.c - the "does this photo show skin at all" refusal (src/quality/scene.c).
 *
 * Pictures that are not photos of skin, rendered here with cairo + pango: a text
 * document, an application screenshot, a blank wall, a black screen, each also
 * after a JPEG round trip (as a phone would send it). Each must be refused.
 * A synthetic skin patch with a lesion must pass. With ../shared/data (argument:
 * every Nth image, BASIRA_SCENE_FULL=1 for all) the HAM10000 and Fitzpatrick17k
 * photos are assessed: the number wrongly refused is printed and must stay <= 0.2%.
 */
#include "basira/image.h"
#include "basira/quality.h"
#include "test.h"

#include <cairo.h>
#include <dirent.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Packed RGB of a cairo RGB24 surface. */
static basira_image *from_surface(cairo_surface_t *s)
{
    cairo_surface_flush(s);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *d = cairo_image_surface_get_data(s);
    uint8_t *rgb = malloc(3 * (size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t p;
            memcpy(&p, d + (size_t)y * stride + 4 * x, 4);
            rgb[3 * ((size_t)y * w + x)] = (uint8_t)(p >> 16);
            rgb[3 * ((size_t)y * w + x) + 1] = (uint8_t)(p >> 8);
            rgb[3 * ((size_t)y * w + x) + 2] = (uint8_t)p;
        }
    basira_image *img = NULL;
    basira_error e;
    CHECK(basira_image_from_rgb(rgb, w, h, &img, &e) == BASIRA_OK);
    free(rgb);
    return img;
}

static void text(cairo_t *cr, double x, double y, double width, const char *font, const char *s)
{
    PangoLayout *l = pango_cairo_create_layout(cr);
    PangoFontDescription *fd = pango_font_description_from_string(font);
    pango_layout_set_font_description(l, fd);
    pango_layout_set_width(l, (int)(width * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD);
    pango_layout_set_text(l, s, -1);
    cairo_move_to(cr, x, y);
    pango_cairo_show_layout(cr, l);
    pango_font_description_free(fd);
    g_object_unref(l);
}

static const char *const lorem =
    "Compte rendu de consultation. Le patient se présente pour un contrôle annuel. "
    "Antécédents : aucun. Traitement en cours : aucun. Examen clinique sans particularité. "
    "Conclusion : revoir dans un an. Signature du médecin, cachet et date.";

/* A page of text: a letter photographed or scanned. */
static basira_image *render_document(void)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 850, 1100);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 0.98, 0.98, 0.97);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, 60, 50, 730, "Sans Bold 28", "Cabinet médical — Ordonnance");
    for (int k = 0; k < 6; k++)
        text(cr, 60, 140 + k * 150, 730, "Serif 16", lorem);
    cairo_destroy(cr);
    basira_image *img = from_surface(s);
    cairo_surface_destroy(s);
    return img;
}

/* A phone app screenshot: status bar, coloured header, list rows, a blue button. */
static basira_image *render_screenshot(void)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 720, 1280);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.13, 0.37, 0.75);
    cairo_rectangle(cr, 0, 0, 720, 160);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    text(cr, 30, 60, 660, "Sans Bold 30", "Messages  12:45");
    for (int k = 0; k < 8; k++) {
        cairo_set_source_rgb(cr, 0.85, 0.85, 0.87);
        cairo_rectangle(cr, 0, 260 + k * 120, 720, 2);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.2 + 0.08 * k, 0.6, 0.3);
        cairo_arc(cr, 70, 200 + k * 120, 36, 0, 2 * M_PI);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        text(cr, 130, 175 + k * 120, 560, "Sans 20", "Rendez-vous confirmé pour jeudi");
    }
    cairo_set_source_rgb(cr, 0.0, 0.48, 1.0);
    cairo_rectangle(cr, 60, 1160, 600, 80);
    cairo_fill(cr);
    cairo_destroy(cr);
    basira_image *img = from_surface(s);
    cairo_surface_destroy(s);
    return img;
}

/* Deterministic noise in [-a, a]. */
static double noise(uint32_t *st, double a)
{
    *st = *st * 1664525u + 1013904223u;
    return ((*st >> 8) / 16777216.0 * 2 - 1) * a;
}

/* A plain surface photographed: one colour, a light gradient and sensor noise. */
static basira_image *render_wall(double r, double g, double b, double amp)
{
    int w = 640, h = 480;
    uint8_t *px = malloc(3 * (size_t)w * h);
    uint32_t st = 7;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double shade = 0.85 + 0.15 * x / w;
            double c[3] = {r, g, b};
            for (int k = 0; k < 3; k++) {
                double v = c[k] * shade + noise(&st, amp);
                px[3 * ((size_t)y * w + x) + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    basira_image *img = NULL;
    basira_error e;
    CHECK(basira_image_from_rgb(px, w, h, &img, &e) == BASIRA_OK);
    free(px);
    return img;
}

/* Skin (light or dark) with a brown lesion in the middle and noise. */
static basira_image *render_skin(double r, double g, double b)
{
    int w = 400, h = 300;
    uint8_t *px = malloc(3 * (size_t)w * h);
    uint32_t st = 11;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double d = hypot(x - w / 2.0, y - h / 2.0) / 60.0, t = d < 1 ? 1 - d * d : 0;
            double c[3] = {r * (1 - 0.6 * t), g * (1 - 0.7 * t), b * (1 - 0.75 * t)};
            for (int k = 0; k < 3; k++) {
                double v = c[k] + noise(&st, 6);
                px[3 * ((size_t)y * w + x) + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    basira_image *img = NULL;
    basira_error e;
    CHECK(basira_image_from_rgb(px, w, h, &img, &e) == BASIRA_OK);
    free(px);
    return img;
}

/* A picture photographed by a phone: warm light, uneven lighting and sensor noise. */
static basira_image *photographed(basira_image *img)
{
    int w = basira_image_width(img), h = basira_image_height(img);
    const uint8_t *src = basira_image_pixels(img);
    uint8_t *px = malloc(3 * (size_t)w * h);
    uint32_t st = 3;
    const double tint[3] = {1.0, 0.96, 0.88};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++) {
                size_t i = 3 * ((size_t)y * w + x) + k;
                double v = src[i] * tint[k] * (0.8 + 0.2 * y / h) + noise(&st, 8);
                px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    basira_image *out = NULL;
    basira_error e;
    CHECK(basira_image_from_rgb(px, w, h, &out, &e) == BASIRA_OK);
    free(px);
    basira_image_free(img);
    return out;
}

/* The same picture after a JPEG round trip at quality q. */
static basira_image *jpeg_round_trip(const basira_image *img, int q)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    basira_error e;
    basira_image *out = NULL;
    basira_intake_options o;
    basira_intake_options_default(&o);
    CHECK(basira_image_encode_jpeg(img, q, &buf, &len, &e) == BASIRA_OK);
    CHECK(basira_image_load_buffer(buf, len, &o, &out, &e) == BASIRA_OK);
    free(buf);
    return out;
}

static int shows_skin(const basira_image *img, const char *what)
{
    basira_scene s;
    basira_error e;
    CHECK(basira_scene_assess(img, &s, &e) == BASIRA_OK);
    printf("  %-28s skin %.3f flat %.3f field %.3f contrast %.1f colour %.3f bright %.3f -> %s\n",
           what, s.skin_fraction, s.flat_fraction, s.field_fraction, s.lesion_contrast,
           s.colour_fraction, s.bright_fraction, s.shows_skin ? "shows skin" : "refused");
    /* The same verdict from the combined assessment the pipeline uses. */
    basira_quality_report q;
    basira_scene s2;
    CHECK(basira_photo_assess_scene(img, &q, NULL, &s2, &e) == BASIRA_OK);
    CHECK(s2.shows_skin == s.shows_skin && s2.skin_fraction == s.skin_fraction);
    return s.shows_skin;
}

static void test_rendered_refused(void)
{
    struct {
        const char *name;
        basira_image *img;
    } neg[] = {
        {"document", render_document()},
        {"photographed screenshot", photographed(render_screenshot())},
        {"screenshot", render_screenshot()},
        {"white wall", render_wall(235, 235, 230, 4)},
        {"grey wall", render_wall(150, 152, 155, 5)},
        {"blue wall", render_wall(90, 130, 190, 5)},
        {"black screen", render_wall(3, 3, 3, 1)},
    };
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++) {
        CHECK_MSG(!shows_skin(neg[i].img, neg[i].name), "%s passed as skin", neg[i].name);
        basira_image *j = jpeg_round_trip(neg[i].img, 75);
        char what[64];
        snprintf(what, sizeof what, "%s (JPEG 75)", neg[i].name);
        CHECK_MSG(!shows_skin(j, what), "%s passed as skin", what);
        basira_image_free(j);
        basira_image_free(neg[i].img);
    }
}

static void test_skin_passes(void)
{
    const double tones[][3] = {{230, 190, 170}, {200, 150, 120}, {140, 95, 70}, {80, 55, 40}};
    for (size_t i = 0; i < sizeof tones / sizeof tones[0]; i++) {
        basira_image *img = render_skin(tones[i][0], tones[i][1], tones[i][2]);
        char what[64];
        snprintf(what, sizeof what, "skin tone %zu", i + 1);
        CHECK_MSG(shows_skin(img, what), "%s refused", what);
        basira_image_free(img);
    }
    basira_scene s;
    basira_error e;
    CHECK(basira_scene_assess(NULL, &s, &e) == BASIRA_E_INVALID_ARGUMENT);
    json_t *j = basira_scene_json(&s);
    CHECK(j == NULL || json_is_object(j));
    json_decref(j);
}

/* Every step-th image of a folder: how many are refused (printed, with the features' minimum). */
static void count_folder(const char *dir, int step, const char *label)
{
    DIR *d = opendir(dir);
    if (!d) {
        CHECK_MSG(0, "cannot open %s", dir);
        return;
    }
    struct dirent *de;
    int n = 0, k = 0, refused = 0;
    double min_skin = 1, max_flat = 0;
    basira_intake_options o;
    basira_intake_options_default(&o);
    o.min_side = 8;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || k++ % step)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        basira_image *img = NULL;
        basira_error e;
        if (basira_image_load_file(path, &o, &img, &e))
            continue;
        basira_scene s;
        if (basira_scene_assess(img, &s, &e) == BASIRA_OK) {
            n++;
            refused += !s.shows_skin;
            if (!s.shows_skin || s.skin_fraction < 0.02) {
                printf("    %s: %s (skin %.3f flat %.3f field %.3f contrast %.1f colour %.3f "
                       "bright %.3f)\n",
                       s.shows_skin ? "little skin colour" : "refused", de->d_name, s.skin_fraction,
                       s.flat_fraction, s.field_fraction, s.lesion_contrast, s.colour_fraction,
                       s.bright_fraction);
            }
            min_skin = s.skin_fraction < min_skin ? s.skin_fraction : min_skin;
            max_flat = s.flat_fraction > max_flat ? s.flat_fraction : max_flat;
        }
        basira_image_free(img);
    }
    closedir(d);
    printf("  %s: %d photos, %d refused (min skin fraction %.3f, max flat fraction %.3f)\n", label,
           n, refused, min_skin, max_flat);
    CHECK(n > 0);
    CHECK_MSG(refused * 500 <= n, "%s: %d of %d photos refused", label, refused, n);
}

static void test_real_photos(const char *data, int step)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ham10000/images", data);
    count_folder(dir, step, "HAM10000 (dermoscopic)");
    snprintf(dir, sizeof dir, "%s/fitzpatrick17k/images", data);
    count_folder(dir, step, "Fitzpatrick17k (clinical)");
}

/* No argument: the rendered pictures. "data N": every Nth real photo (DATA test). */
int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "data")) {
        REQUIRE_DATA(data);
        int step = atoi(argv[2]);
        const char *full = getenv("BASIRA_SCENE_FULL");
        if ((full && !strcmp(full, "1")) || step < 1)
            step = 1;
        int before = test_failures_;
        test_real_photos(data, step);
        fprintf(stderr, "%s test_real_photos\n", test_failures_ == before ? "ok  " : "FAIL");
        return test_summary();
    }
    RUN(test_rendered_refused);
    RUN(test_skin_passes);
    return test_summary();
}
