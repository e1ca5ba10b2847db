/*
 * indicators_pdf.c - the dashboard's PDF export: every indicator of the
 * groups (value, 95% interval, n) and, when there are several groups, a plot
 * of the value across them (with the interval as a band), in French, Arabic
 * (right to left) or English. cairo + pango through the project's layout
 * helper (src/export/layout.h), as the referral letter and the certification
 * report are made.
 */
#include "basira/hub_indicators.h"
#include "core/i18n.h"
#include "export/layout.h"

#include <cairo-pdf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_W 595.0
#define PAGE_H 842.0
#define MARGIN 50.0
#define PLOT_H 90.0

typedef struct pdf_page {
    cairo_t *cr;
    int rtl;
    double y;
} pdf_page;

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int length)
{
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS
                                                      : CAIRO_STATUS_WRITE_ERROR;
}

/* One line of text across the column at p->y; advances p->y. */
static void line(pdf_page *p, const char *text, double size, int bold)
{
    PangoLayout *l = basira_pdf_layout(p->cr, p->rtl, size, bold);
    if (!l)
        return;
    pango_layout_set_width(l, (int)((PAGE_W - 2 * MARGIN) * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(l, p->rtl ? PANGO_ALIGN_RIGHT : PANGO_ALIGN_LEFT);
    pango_layout_set_text(l, text, -1);
    int w, h;
    pango_layout_get_size(l, &w, &h);
    cairo_move_to(p->cr, MARGIN, p->y);
    pango_cairo_show_layout(p->cr, l);
    p->y += (double)h / PANGO_SCALE + 2;
    g_object_unref(l);
}

static void need(pdf_page *p, double h)
{
    if (p->y + h > PAGE_H - MARGIN) {
        cairo_show_page(p->cr);
        p->y = MARGIN;
    }
}

static void figure(char *buf, size_t n, const basira_hub_indicator_def *d,
                   const basira_hub_indicator_value *v)
{
    if (!isfinite(v->value))
        snprintf(buf, n, "—  (n = %ld)", v->n);
    else if (d->kind == BASIRA_IND_PROPORTION)
        snprintf(buf, n,
                 isfinite(v->lo) ? "%.1f\u202f%%  [%.1f, %.1f]  (%ld / %ld)" : "%.1f\u202f%%",
                 100 * v->value, 100 * v->lo, 100 * v->hi, v->k, v->n);
    else if (d->kind == BASIRA_IND_QUANTILES && isfinite(v->lo))
        snprintf(buf, n, "%.2f  [%.2f, %.2f]  p90 %.2f  (n = %ld)", v->value, v->lo, v->hi, v->p90,
                 v->n);
    else if (d->kind == BASIRA_IND_QUANTILES)
        snprintf(buf, n, "%.2f  p90 %.2f  (n = %ld)", v->value, v->p90, v->n);
    else
        snprintf(buf, n, "%.2f  (n = %ld)", v->value, v->n);
}

/* The value of indicator i across groups 1..n-1, with its interval as a band. */
static void plot(pdf_page *p, const basira_hub_indicators *ind, int i)
{
    size_t n = ind->n_groups - 1;
    double top = p->y, left = MARGIN + 30, width = PAGE_W - 2 * MARGIN - 40, max = 0;
    for (size_t g = 1; g <= n; g++) {
        const basira_hub_indicator_value *v = &ind->groups[g].v[i];
        max = fmax(max, isfinite(v->hi) ? v->hi : isfinite(v->value) ? v->value : 0);
    }
    max = basira_hub_indicator_defs()[i].kind == BASIRA_IND_PROPORTION ? 1.0
          : max > 0                                                    ? max * 1.1
                                                                       : 1.0;
    cairo_t *cr = p->cr;
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 0.5);
    cairo_rectangle(cr, left, top, width, PLOT_H);
    cairo_stroke(cr);
    /* Groups run with the reading direction: right to left in Arabic. */
#define X(g) (p->rtl ? left + width - (width * ((g)-0.5) / n) : left + width * ((g)-0.5) / n)
#define Y(v) (top + PLOT_H - PLOT_H * (v) / max)
    cairo_set_source_rgba(cr, 0.04, 0.31, 0.42, 0.25);
    cairo_set_line_width(cr, 6);
    for (size_t g = 1; g <= n; g++) {
        const basira_hub_indicator_value *v = &ind->groups[g].v[i];
        if (isfinite(v->lo) && isfinite(v->hi)) {
            cairo_move_to(cr, X(g), Y(v->lo));
            cairo_line_to(cr, X(g), Y(v->hi));
            cairo_stroke(cr);
        }
    }
    cairo_set_source_rgb(cr, 0.04, 0.31, 0.42);
    cairo_set_line_width(cr, 1.5);
    int drawing = 0;
    for (size_t g = 1; g <= n; g++) {
        const basira_hub_indicator_value *v = &ind->groups[g].v[i];
        if (!isfinite(v->value)) {
            drawing = 0;
            continue;
        }
        if (drawing)
            cairo_line_to(cr, X(g), Y(v->value));
        else
            cairo_move_to(cr, X(g), Y(v->value));
        drawing = 1;
    }
    cairo_stroke(cr);
    for (size_t g = 1; g <= n; g++) {
        const basira_hub_indicator_value *v = &ind->groups[g].v[i];
        if (isfinite(v->value)) {
            cairo_arc(cr, X(g), Y(v->value), 2.5, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
    /* Axis labels: the scale's top and the first and last groups. */
    PangoLayout *l = basira_pdf_layout(cr, 0, 7, 0);
    if (l) {
        char top_label[32];
        snprintf(top_label, sizeof top_label, "%.3g", max);
        pango_layout_set_text(l, top_label, -1);
        cairo_move_to(cr, MARGIN, top);
        pango_cairo_show_layout(cr, l);
        size_t ends[2] = {1, n};
        for (int e = 0; e < 2; e++) {
            pango_layout_set_text(l, ind->groups[ends[e]].key, -1);
            cairo_move_to(cr, X(ends[e]) - 20, top + PLOT_H + 2);
            pango_cairo_show_layout(cr, l);
        }
        g_object_unref(l);
    }
#undef X
#undef Y
    p->y = top + PLOT_H + 16;
}

basira_code basira_hub_indicators_pdf(const basira_hub_indicators *ind, const char *subtitle,
                                      const char *(*name)(const char *msgid, void *ctx), void *ctx,
                                      int rtl, unsigned char **out, size_t *len, basira_error *err)
{
    *out = NULL;
    *len = 0;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    cairo_surface_t *surf = cairo_pdf_surface_create_for_stream(to_file, f, PAGE_W, PAGE_H);
    cairo_t *cr = cairo_create(surf);
    pdf_page p = {cr, rtl, MARGIN};
    const basira_hub_indicator_def *defs = basira_hub_indicator_defs();
#define TR(s) (name ? name(s, ctx) : (s))
    cairo_set_source_rgb(cr, 0, 0, 0);
    line(&p, TR(N_("The programme's indicators")), 16, 1);
    if (subtitle && *subtitle)
        line(&p, subtitle, 9, 0);
    p.y += 6;
    for (int i = 0; i < BASIRA_IND_COUNT; i++) {
        need(&p, 40 + (ind->n_groups > 2 ? PLOT_H + 16 : 0));
        cairo_set_source_rgb(cr, 0, 0, 0);
        line(&p, TR(defs[i].name), 11, 1);
        /* Every group in words when there are few; "all" and the plot otherwise. */
        size_t shown = ind->n_groups > 2 ? 1 : ind->n_groups;
        for (size_t g = 0; g < shown; g++) {
            char fig[160], text[256];
            figure(fig, sizeof fig, &defs[i], &ind->groups[g].v[i]);
            const char *key = ind->groups[g].key;
            snprintf(text, sizeof text, "%s — %s", strcmp(key, "all") ? key : TR(N_("all")), fig);
            line(&p, text, 9, 0);
        }
        if (ind->n_groups > 2)
            plot(&p, ind, i);
        p.y += 4;
    }
#undef TR
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    cairo_status_t st = cairo_surface_status(surf);
    cairo_surface_destroy(surf);
    int bad = fclose(f);
    if (st != CAIRO_STATUS_SUCCESS || bad) {
        free(buf);
        return basira_error_setm(err, BASIRA_E_INTERNAL, N_("the PDF could not be produced: %s"),
                                 cairo_status_to_string(st));
    }
    *out = (unsigned char *)buf;
    *len = n;
    return BASIRA_OK;
}
