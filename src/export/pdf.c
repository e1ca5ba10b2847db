/*
 * pdf.c - the one-page A4 referral letter (cairo PDF surface + Pango).
 *
 * Pango shapes the text with HarfBuzz, so Arabic letters join correctly and
 * mixed Arabic/Latin runs (a patient reference, a model version) follow the
 * Unicode bidirectional algorithm. For Arabic the whole page is mirrored: the
 * context's base direction is right to left, paragraphs are right-aligned and
 * the photo sits on the left. cairo embeds (subsets of) the fonts it uses, so
 * the letter prints the same on any machine.
 *
 * Every block of text has a bounded number of lines (Pango ellipsizes the
 * rest): whatever the case holds, the letter stays on one page.
 */
#include "basira/json.h"
#include "basira/export.h"
#include "basira/image.h"
#include "basira/paths.h"
#include "core/i18n.h"
#include "core/catalog.h"
#include "export/layout.h"
#include "export/util.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_W 595.276 /* A4 in points */
#define PAGE_H 841.890
#define MARGIN 42.0
#define PHOTO_BOX 170.0 /* the photo fits in a square this size */
#define PDF_MAX_BYTES (64u << 20)

typedef struct pdf_out {
    unsigned char *buf;
    size_t len, cap;
    int failed;
} pdf_out;

static cairo_status_t pdf_write(void *closure, const unsigned char *data, unsigned int length)
{
    pdf_out *o = closure;
    if (o->failed)
        return CAIRO_STATUS_WRITE_ERROR;
    if (length > PDF_MAX_BYTES - o->len) {
        o->failed = 1;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    if (o->len + length > o->cap) {
        size_t cap = o->cap ? o->cap : 65536;
        while (cap < o->len + length)
            cap *= 2;
        unsigned char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->failed = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, length);
    o->len += length;
    return CAIRO_STATUS_SUCCESS;
}

typedef struct page {
    cairo_t *cr;
    const basira_catalog *cat;
    const char *lang;
    int rtl;
    double y;     /* next free line, from the top */
    double limit; /* nothing is drawn below this (the disclaimer's box) */
} page;

/* format_arg: the translation of a printf format is checked against its msgid. */
static const char *tr(const page *p, const char *msgid) __attribute__((format_arg(2)));
static const char *tr(const page *p, const char *msgid)
{
    return basira_catalog_tr(p->cat, msgid);
}

/*
 * Draw text (Pango markup when markup is set) in the band [x, x + w) starting
 * at p->y when y < 0, else at y. At most max_lines lines, the rest ellipsized.
 * Returns the height used.
 *
 * Lines sit on a fixed grid (LINE_PITCH x size) rather than on each font's own
 * line height: Noto Sans Arabic's ascent and descent are far taller than Noto
 * Sans's (room for stacked marks), and with them an Arabic letter would be a
 * third longer than the same French one and no longer fit on the page.
 */
#define LINE_PITCH 1.62
static double text_at(page *p, const char *text, int markup, double x, double y, double w,
                      double size, int bold, int max_lines, int align_center)
{
    double top = y < 0 ? p->y : y, pitch = size * LINE_PITCH;
    if (top + pitch > p->limit)
        return 0; /* never draw over the disclaimer */
    PangoLayout *layout = basira_pdf_layout(p->cr, p->rtl, size, bold);
    if (!layout)
        return 0;
    PangoContext *ctx = pango_layout_get_context(layout);
    const PangoFontDescription *fd = pango_layout_get_font_description(layout);
    PangoFontMetrics *fm = pango_context_get_metrics(ctx, fd, NULL);
    int font_h = fm ? pango_font_metrics_get_height(fm) : 0;
    if (fm)
        pango_font_metrics_unref(fm);
    if (font_h > 0)
        pango_layout_set_line_spacing(layout, (float)(pitch * PANGO_SCALE / font_h));
    pango_layout_set_width(layout, (int)(w * PANGO_SCALE));
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    pango_layout_set_height(layout, -max_lines);
    pango_layout_set_alignment(layout, align_center ? PANGO_ALIGN_CENTER
                                       : p->rtl     ? PANGO_ALIGN_RIGHT
                                                    : PANGO_ALIGN_LEFT);
    if (markup)
        pango_layout_set_markup(layout, text, -1);
    else
        pango_layout_set_text(layout, text, -1);
    int lines = pango_layout_get_line_count(layout);
    /* Place the first baseline on the grid, whatever the font's ascent. */
    double baseline = (double)pango_layout_get_baseline(layout) / PANGO_SCALE;
    cairo_move_to(p->cr, x, top + size * 1.15 - baseline);
    pango_cairo_show_layout(p->cr, layout);
    g_object_unref(layout);
    return lines * pitch;
}

/* A paragraph across the text column; advances p->y. */
static void para(page *p, const char *text, int markup, double x, double w, double size, int bold,
                 int max_lines)
{
    p->y += text_at(p, text, markup, x, -1, w, size, bold, max_lines, 0);
}

/* "<b>label</b> value" with both escaped; value NULL or "" shows a dash. */
static void field(page *p, double x, double w, const char *label, const char *value, int max_lines)
{
    /*
     * The value is a bidi isolate (FSI ... PDI): a Latin body site or a phone
     * number keeps its own order inside an Arabic line, and an Arabic note
     * inside a French one.
     */
    char *m =
        g_markup_printf_escaped("<b>%s</b> \u2068%s\u2069", label, value && *value ? value : "—");
    para(p, m, 1, x, w, 9.5, 0, max_lines);
    g_free(m);
}

static void section(page *p, double x, double w, const char *title)
{
    p->y += 9.0;
    double h = text_at(p, title, 0, x, -1, w, 11.5, 1, 1, 0);
    p->y += h;
    cairo_set_source_rgb(p->cr, 0.55, 0.62, 0.70);
    cairo_set_line_width(p->cr, 0.6);
    cairo_move_to(p->cr, x, p->y);
    cairo_line_to(p->cr, x + w, p->y);
    cairo_stroke(p->cr);
    cairo_set_source_rgb(p->cr, 0.08, 0.09, 0.11);
    p->y += 4.0;
}

/* The display value of a yes/no/unknown history answer. */
static const char *tristate(const page *p, const json_t *v)
{
    if (json_is_true(v))
        return tr(p, N_("yes"));
    if (json_is_false(v))
        return tr(p, N_("no"));
    return tr(p, N_("not asked"));
}

static const char *sex_name(const page *p, const char *sex)
{
    if (!sex)
        return tr(p, N_("unknown"));
    if (!strcmp(sex, "female"))
        return tr(p, N_("female"));
    if (!strcmp(sex, "male"))
        return tr(p, N_("male"));
    if (!strcmp(sex, "other"))
        return tr(p, N_("other"));
    return tr(p, N_("unknown"));
}

static const char *category_name(const page *p, const char *cat)
{
    if (!cat)
        return tr(p, N_("not assessed"));
    if (!strcmp(cat, "high"))
        return tr(p, N_("High risk"));
    if (!strcmp(cat, "medium"))
        return tr(p, N_("Medium risk"));
    return tr(p, N_("Low risk"));
}

/* The same sentences as src/triage (same msgids), in the letter's language. */
static const char *category_action(const page *p, const char *cat)
{
    if (cat && !strcmp(cat, "low"))
        return tr(p, N_("Advice to the patient and routine surveillance; consult again if the "
                        "lesion changes, bleeds or grows."));
    if (cat && !strcmp(cat, "medium"))
        return tr(p, N_("Scheduled follow-up or remote review by a dermatologist."));
    return tr(p, N_("Priority referral to a dermatologist."));
}

static const char *referral_name(const page *p, const char *r)
{
    if (r && !strcmp(r, "requested"))
        return tr(p, N_("referral requested"));
    if (r && !strcmp(r, "sent"))
        return tr(p, N_("referral sent"));
    if (r && !strcmp(r, "completed"))
        return tr(p, N_("referral completed"));
    return tr(p, N_("no referral"));
}

/*
 * The body sites the web app records as codes ("upper arm left"), in the
 * letter's language; anything else is the clinician's own text, kept as typed.
 */
static const char *site_name(const page *p, const char *site)
{
    static const struct {
        const char *code, *name;
    } sites[] = {
        {"head", N_("head")},
        {"neck", N_("neck")},
        {"chest", N_("chest")},
        {"abdomen", N_("abdomen")},
        {"back", N_("back")},
        {"scalp", N_("scalp")},
        {"face", N_("face")},
        {"palms soles", N_("palms / soles")},
        {"nails", N_("nails")},
        {"genital", N_("genital area")},
        {"upper arm right", N_("right upper arm")},
        {"upper arm left", N_("left upper arm")},
        {"forearm hand right", N_("right forearm / hand")},
        {"forearm hand left", N_("left forearm / hand")},
        {"thigh right", N_("right thigh")},
        {"thigh left", N_("left thigh")},
        {"leg foot right", N_("right leg / foot")},
        {"leg foot left", N_("left leg / foot")},
    };
    if (!site || !*site)
        return tr(p, N_("unknown"));
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++)
        if (!strcmp(site, sites[i].code))
            return tr(p, sites[i].name);
    return site;
}

static const char *role_name(const page *p, const char *role)
{
    if (role && !strcmp(role, "gp"))
        return tr(p, N_("general practitioner"));
    if (role && !strcmp(role, "nurse"))
        return tr(p, N_("nurse"));
    if (role && !strcmp(role, "dermatologist"))
        return tr(p, N_("dermatologist"));
    return tr(p, N_("clinician"));
}

/*
 * What the decision means for the patient, consistent with its referral: a high
 * category the clinician chose not to refer says so (the reason follows), never
 * "priority referral" next to "no referral".
 */
static const char *decision_action(const page *p, const char *cat, const char *referral)
{
    int referred = referral && strcmp(referral, "none");
    if (cat && !strcmp(cat, "high") && !referred)
        return tr(p, N_("High risk, not referred by the clinician: see the reason."));
    if (referred)
        return referral_name(p, referral);
    return category_action(p, cat);
}

/*
 * The referring clinician: who decided last (the letter states their decision),
 * else who recorded the case. role is NULL when unknown.
 */
static void referrer(const json_t *c, const char **who, const char **role)
{
    const json_t *d = json_object_get(c, "decision");
    *who = json_is_object(d) ? ex_str(d, "decided_by") : NULL;
    *role = json_is_object(d) ? ex_str(d, "role") : NULL;
    if (!*who) {
        *who = ex_str(c, "created_by");
        *role = NULL;
    }
}

/* "2026-11-22T10:00:00Z" -> "2026-11-22" (the date part of an ISO time; "—" if malformed). */
static void date_part(const char *iso, char out[11])
{
    size_t n = iso ? strspn(iso, "0123456789-") : 0;
    if (n >= 10) {
        memcpy(out, iso, 10);
        out[10] = '\0';
    } else {
        snprintf(out, 11, "—");
    }
}

/*
 * Display name of a class code in the letter's language, from the bundled class
 * list (models/ham10000-classes.json); falls back to the name stored with the
 * result (the node's language at analysis time), then to the code.
 */
static const char *class_name(const page *p, const json_t *classes, const json_t *cand)
{
    const char *code = ex_str(cand, "code");
    size_t i;
    json_t *c;
    json_array_foreach(classes, i, c)
    {
        const char *cc = ex_str(c, "code");
        if (code && cc && !strcmp(cc, code)) {
            const char *n = ex_str(json_object_get(c, "names"), p->lang);
            if (n && *n)
                return n;
        }
    }
    const char *n = ex_str(cand, "name");
    return n && *n ? n : code ? code : "?";
}

static json_t *load_classes(void)
{
    char path[4096];
    basira_error ignored;
    if (basira_data_file("models/ham10000-classes.json", path, sizeof path, &ignored))
        return NULL;
    json_t *j = NULL;
    basira_json_read_file(path, (size_t)1 << 20, &j, NULL, &ignored);
    if (!json_is_array(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Decode the photo into a cairo surface, with a re-encoded JPEG attached so the PDF stays small. */
static basira_code photo_surface(const unsigned char *photo, size_t len, cairo_surface_t **out,
                                 basira_error *err)
{
    basira_intake_options opts;
    basira_intake_options_default(&opts);
    opts.max_side = 640; /* 170 pt at ~270 dpi: sharp on paper, small in the file */
    basira_image *img = NULL;
    basira_code rc = basira_image_load_buffer(photo, len, &opts, &img, err);
    if (rc)
        return rc;
    int w = basira_image_width(img), h = basira_image_height(img);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(s)) {
        cairo_surface_destroy(s);
        basira_image_free(img);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    cairo_surface_flush(s);
    unsigned char *dst = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    const uint8_t *src = basira_image_pixels(img);
    for (int yy = 0; yy < h; yy++) {
        uint32_t *row = (uint32_t *)(void *)(dst + (size_t)yy * (size_t)stride);
        const uint8_t *sp = src + (size_t)yy * (size_t)w * 3;
        for (int xx = 0; xx < w; xx++)
            row[xx] = ((uint32_t)sp[3 * xx] << 16) | ((uint32_t)sp[3 * xx + 1] << 8) |
                      (uint32_t)sp[3 * xx + 2];
    }
    cairo_surface_mark_dirty(s);
    uint8_t *jpeg = NULL;
    size_t jlen = 0;
    basira_error jerr;
    /* Without the JPEG, cairo stores the pixels losslessly: bigger, still correct. */
    if (!basira_image_encode_jpeg(img, 88, &jpeg, &jlen, &jerr) &&
        cairo_surface_set_mime_data(s, CAIRO_MIME_TYPE_JPEG, jpeg, jlen, free, jpeg))
        free(jpeg);
    basira_image_free(img);
    *out = s;
    return BASIRA_OK;
}

/* Draw the photo in the box at (x, y), keeping its proportions. Returns the height used. */
static double draw_photo(page *p, cairo_surface_t *s, double x, double y)
{
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    double scale = fmin(PHOTO_BOX / w, PHOTO_BOX / h);
    double dw = w * scale, dh = h * scale;
    cairo_save(p->cr);
    cairo_translate(p->cr, x + (PHOTO_BOX - dw) / 2, y);
    cairo_scale(p->cr, scale, scale);
    cairo_set_source_surface(p->cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(p->cr), CAIRO_FILTER_GOOD);
    cairo_paint(p->cr);
    cairo_restore(p->cr);
    cairo_set_source_rgb(p->cr, 0.55, 0.62, 0.70);
    cairo_set_line_width(p->cr, 0.6);
    cairo_rectangle(p->cr, x + (PHOTO_BOX - dw) / 2, y, dw, dh);
    cairo_stroke(p->cr);
    cairo_set_source_rgb(p->cr, 0.08, 0.09, 0.11);
    return dh;
}

/* Risk gauge 0..100 with a marker, green to red; mirrored in right-to-left letters. */
static void draw_gauge(page *p, double x, double w, double index)
{
    double h = 9.0, y = p->y + 2.0;
    cairo_pattern_t *g = cairo_pattern_create_linear(p->rtl ? x + w : x, 0, p->rtl ? x : x + w, 0);
    cairo_pattern_add_color_stop_rgb(g, 0.0, 0.20, 0.60, 0.30);
    cairo_pattern_add_color_stop_rgb(g, 0.5, 0.95, 0.70, 0.15);
    cairo_pattern_add_color_stop_rgb(g, 1.0, 0.80, 0.15, 0.15);
    cairo_rectangle(p->cr, x, y, w, h);
    cairo_set_source(p->cr, g);
    cairo_fill(p->cr);
    cairo_pattern_destroy(g);
    double f = fmin(fmax(index / 100.0, 0.0), 1.0);
    double mx = p->rtl ? x + w - f * w : x + f * w;
    cairo_set_source_rgb(p->cr, 0.05, 0.05, 0.05);
    cairo_set_line_width(p->cr, 2.0);
    cairo_move_to(p->cr, mx, y - 3.0);
    cairo_line_to(p->cr, mx, y + h + 3.0);
    cairo_stroke(p->cr);
    cairo_set_source_rgb(p->cr, 0.08, 0.09, 0.11);
    p->y = y + h + 6.0;
}

static void draw_letter(page *p, const json_t *c, cairo_surface_t *photo,
                        const basira_report_info *info, const json_t *classes)
{
    const double full_w = PAGE_W - 2 * MARGIN;
    char buf[512];
    char date[11];

    /* The disclaimer's box at the foot of the page: everything else stays above it. */
    double box_h = 44.0, box_y = PAGE_H - MARGIN - box_h - 14.0;
    p->limit = box_y - 4.0;

    /* Header: the clinic, then the letter's title and date. */
    p->y = MARGIN;
    const char *clinic = info && info->clinic_name && *info->clinic_name ? info->clinic_name : NULL;
    char *iso_text = g_strdup_printf("\u2068%s\u2069", clinic ? clinic : tr(p, N_("Clinic")));
    para(p, iso_text, 0, MARGIN, full_w, 14, 1, 1);
    g_free(iso_text);
    const char *lines[2] = {info ? info->clinic_address : NULL, info ? info->clinic_contact : NULL};
    for (int i = 0; i < 2; i++) {
        if (lines[i] && *lines[i]) {
            iso_text = g_strdup_printf("\u2068%s\u2069", lines[i]);
            para(p, iso_text, 0, MARGIN, full_w, 9.5, 0, 1);
            g_free(iso_text);
        }
    }
    p->y += 8.0;
    para(p, tr(p, N_("Referral letter: skin lesion")), 0, MARGIN, full_w, 17, 1, 1);
    int64_t now = info && info->generated_at > 0 ? info->generated_at : (int64_t)time(NULL);
    char iso[32];
    ex_iso_time(now, iso, sizeof iso);
    date_part(iso, date);
    json_t *idv = json_object_get(c, "id");
    char *m = g_markup_printf_escaped(
        "<b>%s</b> %s    <b>%s</b> %lld", tr(p, N_("Date:")), date, tr(p, N_("Case:")),
        json_is_integer(idv) ? (long long)json_integer_value(idv) : 0LL);
    para(p, m, 1, MARGIN, full_w, 10, 0, 1);
    g_free(m);
    /* Who writes to whom. */
    field(p, MARGIN, full_w, tr(p, N_("To:")),
          info && info->addressee && *info->addressee ? info->addressee
                                                      : tr(p, N_("Dermatology department")),
          1);
    const char *who = NULL, *role = NULL;
    referrer(c, &who, &role);
    const char *contact = info && info->clinic_contact && *info->clinic_contact
                              ? info->clinic_contact
                              : tr(p, N_("through the clinic"));
    char *ref = g_strdup_printf("\u2068%s\u2069 (%s) — %s \u2068%s\u2069", who ? who : "?",
                                role_name(p, role), tr(p, N_("contact:")), contact);
    field(p, MARGIN, full_w, tr(p, N_("Referring clinician:")), ref, 2);
    g_free(ref);

    /* Patient and history in the text column, the photo beside them. */
    double col_w = full_w - PHOTO_BOX - 14.0;
    double text_x = p->rtl ? MARGIN + PHOTO_BOX + 14.0 : MARGIN;
    double photo_x = p->rtl ? MARGIN : PAGE_W - MARGIN - PHOTO_BOX;
    section(p, text_x, col_w, tr(p, N_("Patient")));
    double photo_y = p->y;
    field(p, text_x, col_w, tr(p, N_("Pseudonymous reference:")), ex_str(c, "patient_ref"), 1);
    json_t *age = json_object_get(c, "age");
    if (json_is_integer(age))
        snprintf(buf, sizeof buf, tr(p, N_("%lld years")), (long long)json_integer_value(age));
    else
        snprintf(buf, sizeof buf, "%s", tr(p, N_("unknown")));
    field(p, text_x, col_w, tr(p, N_("Age:")), buf, 1);
    field(p, text_x, col_w, tr(p, N_("Sex:")), sex_name(p, ex_str(c, "sex")), 1);
    field(p, text_x, col_w, tr(p, N_("Body site:")), site_name(p, ex_str(c, "body_site")), 2);
    date_part(ex_str(c, "created_at"), date);
    field(p, text_x, col_w, tr(p, N_("Seen on:")), date, 1);

    section(p, text_x, col_w, tr(p, N_("History")));
    const json_t *h = json_object_get(c, "history");
    field(p, text_x, col_w, tr(p, N_("Recently changed:")),
          tristate(p, json_object_get(h, "changed")), 1);
    field(p, text_x, col_w, tr(p, N_("Bleeding:")), tristate(p, json_object_get(h, "bleeding")), 1);
    field(p, text_x, col_w, tr(p, N_("Rapid growth:")),
          tristate(p, json_object_get(h, "rapid_growth")), 1);
    field(p, text_x, col_w, tr(p, N_("Itching:")), tristate(p, json_object_get(h, "itching")), 1);
    double months = ex_num(h, "duration_months");
    if (isfinite(months) && months >= 0 && months < 1e6)
        snprintf(buf, sizeof buf, tr(p, N_("%.1f months")), months);
    else
        snprintf(buf, sizeof buf, "%s", tr(p, N_("unknown")));
    field(p, text_x, col_w, tr(p, N_("Present for:")), buf, 1);

    double photo_h = 0;
    if (photo)
        photo_h = draw_photo(p, photo, photo_x, photo_y);
    else
        photo_h = text_at(p, tr(p, N_("No photo was analysed for this case.")), 0, photo_x, photo_y,
                          PHOTO_BOX, 9.5, 0, 3, 1);
    if (p->y < photo_y + photo_h)
        p->y = photo_y + photo_h;

    /* The AI assessment. */
    section(p, MARGIN, full_w, tr(p, N_("Photo analysis (AI)")));
    const json_t *res = ex_report_result(c);
    const json_t *risk = json_object_get(res, "risk");
    double index = ex_num(risk, "index");
    const char *ai_cat = ex_str(risk, "category");
    if (res && isfinite(index)) {
        snprintf(buf, sizeof buf, "%.0f / 100", fmin(fmax(index, 0), 100));
        field(p, MARGIN, full_w, tr(p, N_("Risk index:")), buf, 1);
        draw_gauge(p, MARGIN, full_w * 0.5, index);
        field(p, MARGIN, full_w, tr(p, N_("Category:")), category_name(p, ai_cat), 1);
        /* Once a clinician has decided, only their decision says what to do. */
        if (!json_is_object(json_object_get(c, "decision"))) {
            field(p, MARGIN, full_w, tr(p, N_("Recommended action:")), category_action(p, ai_cat),
                  2);
            /* The non-neoplastic primary-care rule (issue 11): same msgid as src/triage. */
            if (json_is_true(json_object_get(json_object_get(res, "primary_care"), "applies")))
                field(p, MARGIN, full_w, tr(p, N_("Primary care:")),
                      tr(p, N_("Probably inflammatory or infectious, not a tumour: manage in "
                               "primary care, and refer to a dermatologist if it is not better in "
                               "4 weeks (2 weeks if it bleeds, grows or the patient is "
                               "immunosuppressed).")),
                      2);
        }
        para(p, tr(p, N_("Most likely conditions:")), 0, MARGIN, full_w, 9.5, 1, 1);
        size_t i;
        json_t *cand;
        json_array_foreach(json_object_get(res, "candidates"), i, cand)
        {
            if (i >= 3)
                break;
            double pr = ex_num(cand, "probability");
            snprintf(buf, sizeof buf, "%zu. \u2068%s\u2069 — %.0f%s%%", i + 1,
                     class_name(p, classes, cand),
                     isfinite(pr) ? fmin(fmax(pr, 0), 1) * 100.0 : 0.0,
                     !strcmp(p->lang, "fr") ? "\u202f" : " ");
            para(p, buf, 0, MARGIN + 10, full_w - 10, 9.5, 0, 1);
        }
        const json_t *model = json_object_get(res, "model");
        const char *sha = ex_str(model, "sha256");
        snprintf(buf, sizeof buf, "%s %s (SHA-256 %.16s…)",
                 ex_str(model, "name") ? ex_str(model, "name") : "?",
                 ex_str(model, "version") ? ex_str(model, "version") : "?", sha ? sha : "?");
        field(p, MARGIN, full_w, tr(p, N_("Model:")), buf, 1);
        /* Which kind of photo it was scored as (issue 11), and whether the user said otherwise. */
        const json_t *mod = json_object_get(res, "modality");
        const char *kind = ex_str(mod, "kind");
        if (kind) {
            snprintf(buf, sizeof buf, "%s%s",
                     tr(p, !strcmp(kind, "dermoscopic") ? N_("dermoscopic")
                                                        : N_("clinical (no dermatoscope)")),
                     json_is_true(json_object_get(mod, "disagreement"))
                         ? tr(p, N_(" (the declared kind differed)"))
                         : "");
            field(p, MARGIN, full_w, tr(p, N_("Photo kind:")), buf, 1);
        }
    } else {
        para(p, tr(p, N_("No analysis result is available for this case.")), 0, MARGIN, full_w, 9.5,
             0, 2);
    }

    /* The clinicians' decisions: the latest in full, the earlier ones one line each. */
    section(p, MARGIN, full_w, tr(p, N_("Clinician's decision")));
    const json_t *d = json_object_get(c, "decision");
    const char *outcome = ex_str(d, "outcome");
    if (json_is_object(d) && outcome) {
        const char *dcat = ex_str(d, "category");
        if (!strcmp(outcome, "accepted"))
            snprintf(buf, sizeof buf, "%s", tr(p, N_("AI category accepted")));
        else
            snprintf(buf, sizeof buf, "%s", tr(p, N_("AI category overridden")));
        field(p, MARGIN, full_w, tr(p, N_("Decision:")), buf, 1);
        field(p, MARGIN, full_w, tr(p, N_("Final category:")), category_name(p, dcat), 1);
        field(p, MARGIN, full_w, tr(p, N_("Action:")),
              decision_action(p, dcat, ex_str(d, "referral")), 2);
        if (ex_str(d, "reason") && *ex_str(d, "reason"))
            field(p, MARGIN, full_w, tr(p, N_("Reason:")), ex_str(d, "reason"), 3);
        if (ex_str(d, "note") && *ex_str(d, "note"))
            field(p, MARGIN, full_w, tr(p, N_("Clinician's note:")), ex_str(d, "note"), 3);
        field(p, MARGIN, full_w, tr(p, N_("Referral:")), referral_name(p, ex_str(d, "referral")),
              1);
        if (ex_str(d, "follow_up")) {
            date_part(ex_str(d, "follow_up"), date);
            field(p, MARGIN, full_w, tr(p, N_("Follow-up on:")), date, 1);
        }
        date_part(ex_str(d, "decided_at"), date);
        snprintf(buf, sizeof buf, "\u2068%s\u2069 (%s), %s",
                 ex_str(d, "decided_by") ? ex_str(d, "decided_by") : "?",
                 role_name(p, ex_str(d, "role")), date);
        field(p, MARGIN, full_w, tr(p, N_("Decided by:")), buf, 1);
        const json_t *ds = json_object_get(c, "decisions");
        size_t n = json_array_size(ds);
        if (n > 1) {
            para(p, tr(p, N_("Earlier decisions (kept, never overwritten):")), 0, MARGIN, full_w,
                 9.5, 1, 1);
            size_t first = n > 5 ? n - 5 : 0; /* the four before the latest */
            for (size_t i = first; i + 1 < n; i++) {
                const json_t *e = json_array_get(ds, i);
                const char *er = ex_str(e, "reason");
                date_part(ex_str(e, "decided_at"), date);
                char *line = g_strdup_printf(
                    "%s \u2068%s\u2069 (%s): %s, %s%s\u2068%s\u2069", date,
                    ex_str(e, "decided_by") ? ex_str(e, "decided_by") : "?",
                    role_name(p, ex_str(e, "role")), category_name(p, ex_str(e, "category")),
                    referral_name(p, ex_str(e, "referral")), er && *er ? " — " : "",
                    er && *er ? er : "");
                para(p, line, 0, MARGIN + 10, full_w - 10, 9, 0, 2);
                g_free(line);
            }
        }
    } else {
        para(p, tr(p, N_("No clinician decision has been recorded yet.")), 0, MARGIN, full_w, 9.5,
             0, 2);
    }

    /* The disclaimer, boxed at the foot of the page, always on this page. */
    p->limit = PAGE_H;
    cairo_set_source_rgb(p->cr, 0.93, 0.95, 0.98);
    cairo_rectangle(p->cr, MARGIN, box_y, full_w, box_h);
    cairo_fill(p->cr);
    cairo_set_source_rgb(p->cr, 0.08, 0.09, 0.11);
    text_at(p,
            tr(p, N_("Decision support, not a diagnosis: a qualified clinician must confirm every "
                     "decision.")),
            0, MARGIN + 8, box_y + 7, full_w - 16, 10.5, 1, 2, 0);
    snprintf(buf, sizeof buf, tr(p, N_("Generated by Basira %s")), basira_version());
    text_at(p, buf, 0, MARGIN, PAGE_H - MARGIN - 10.0, full_w, 8, 0, 1, 0);
}

basira_code basira_case_report_image(const json_t *case_json, int64_t *image_id, basira_error *err)
{
    if (!image_id)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *image_id = 0;
    if (!json_is_object(case_json))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("the case is not a JSON object"));
    const json_t *img = ex_report_image(case_json);
    if (img && json_is_true(json_object_get(img, "photo_stored")))
        *image_id = (int64_t)json_integer_value(json_object_get(img, "id"));
    return BASIRA_OK;
}

basira_code basira_report_pdf(const json_t *case_json, const unsigned char *photo, size_t photo_len,
                              const char *lang, const basira_report_info *clinic,
                              unsigned char **pdf, size_t *pdf_len, basira_error *err)
{
    if (!pdf || !pdf_len)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *pdf = NULL;
    *pdf_len = 0;
    if (!json_is_object(case_json))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("the case is not a JSON object"));
    if (!lang || (strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en")))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("unknown language '%s': use fr, ar or en"), lang ? lang : "");
    basira_catalog *cat = NULL;
    basira_code rc = basira_catalog_open(lang, &cat, err);
    if (rc)
        return rc;
    cairo_surface_t *img = NULL;
    if (photo && photo_len && (rc = photo_surface(photo, photo_len, &img, err))) {
        basira_catalog_free(cat);
        return rc;
    }
    json_t *classes = load_classes();
    pdf_out out = {0};
    cairo_surface_t *surf = cairo_pdf_surface_create_for_stream(pdf_write, &out, PAGE_W, PAGE_H);
    cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_TITLE,
                                   basira_catalog_tr(cat, N_("Referral letter: skin lesion")));
    cairo_pdf_surface_set_metadata(surf, CAIRO_PDF_METADATA_CREATOR, "Basira");
    cairo_t *cr = cairo_create(surf);
    page p = {cr, cat, lang, !strcmp(lang, "ar"), MARGIN, PAGE_H};
    cairo_set_source_rgb(cr, 0.08, 0.09, 0.11);
    draw_letter(&p, case_json, img, clinic, classes);
    cairo_show_page(cr);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    if (!st)
        st = cairo_surface_status(surf);
    cairo_surface_destroy(surf);
    if (img)
        cairo_surface_destroy(img);
    json_decref(classes);
    basira_catalog_free(cat);
    if (out.failed || st) {
        free(out.buf);
        if (out.failed && out.len + 1 >= PDF_MAX_BYTES)
            return basira_error_set(err, BASIRA_E_LIMIT, _("the letter would be too large"));
        if (out.failed)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        return basira_error_set(err, BASIRA_E_INTERNAL, _("the PDF could not be produced: %s"),
                                cairo_status_to_string(st));
    }
    *pdf = out.buf;
    *pdf_len = out.len;
    return BASIRA_OK;
}
