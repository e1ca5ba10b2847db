/*
 * certify_pdf.c - the certification report as a multi-page A4 PDF (cairo + Pango).
 *
 * Same approach as the referral letter (src/export/pdf.c): Pango shapes the text
 * (Arabic joined, right to left, Latin figures and codes isolated inside it), cairo
 * embeds the fonts, and the language is chosen per document from the compiled
 * catalogue (core/catalog.h), not from the process locale. Unlike the letter the
 * report is as long as it needs: text flows onto new pages.
 */
#include <cairo-pdf.h>
#include <cairo.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <string.h>

#include "basira/certify.h"
#include "core/catalog.h"
#include "core/i18n.h"
#include "export/layout.h"

#define PAGE_W 595.276
#define PAGE_H 841.890
#define MARGIN 42.0
#define BODY_W (PAGE_W - 2 * MARGIN)

typedef struct doc {
    cairo_t *cr;
    const basira_catalog *cat;
    int rtl;
    double y;
} doc;

static const char *tr(const doc *d, const char *msgid) __attribute__((format_arg(2)));
static const char *tr(const doc *d, const char *msgid)
{
    return basira_catalog_tr(d->cat, msgid);
}

static void ensure(doc *d, double h)
{
    if (d->y + h > PAGE_H - MARGIN) {
        cairo_show_page(d->cr);
        d->y = MARGIN;
    }
}

/* Text in the column [x, x + w) (mirrored for right-to-left), at d->y; returns its height. */
static double text(doc *d, const char *s, double x, double w, double size, int bold)
{
    PangoLayout *l = basira_pdf_layout(d->cr, d->rtl, size, bold);
    if (!l)
        return 0;
    pango_layout_set_width(l, (int)(w * PANGO_SCALE));
    pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(l, d->rtl ? PANGO_ALIGN_RIGHT : PANGO_ALIGN_LEFT);
    pango_layout_set_text(l, s, -1);
    int lw, lh;
    pango_layout_get_size(l, &lw, &lh);
    double h = (double)lh / PANGO_SCALE;
    double px = d->rtl ? PAGE_W - x - w : x;
    cairo_move_to(d->cr, px, d->y);
    pango_cairo_show_layout(d->cr, l);
    g_object_unref(l);
    return h;
}

static void para(doc *d, const char *s, double size, int bold)
{
    ensure(d, size * 1.6);
    d->y += text(d, s, MARGIN, BODY_W, size, bold) + 2.0;
}

static void heading(doc *d, const char *s)
{
    d->y += 8.0;
    ensure(d, 40.0);
    para(d, s, 12.5, 1);
}

/* A row of cells at the given column starts (fractions of the body width). */
static void row(doc *d, const char *const *cells, int n, const double *start, int bold)
{
    ensure(d, 14.0);
    double h = 0;
    for (int i = 0; i < n; i++) {
        double x0 = MARGIN + start[i] * BODY_W;
        double x1 = MARGIN + (i + 1 < n ? start[i + 1] : 1.0) * BODY_W;
        double hh = text(d, cells[i], x0, x1 - x0 - 3.0, 8.0, bold);
        if (hh > h)
            h = hh;
    }
    d->y += h + 1.5;
}

static double jnum(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* "0.912 [0.871, 0.944]" or a dash when undefined. */
static void fmt_ci(const json_t *m, char *buf, size_t n)
{
    double v = jnum(m, "value"), lo = jnum(m, "lo"), hi = jnum(m, "hi");
    if (!isfinite(v))
        snprintf(buf, n, "—");
    else if (!isfinite(lo))
        snprintf(buf, n, "\u2066%.3f\u2069", v);
    else
        snprintf(buf, n, "\u2066%.3f [%.3f, %.3f]\u2069", v, lo, hi);
}

static void table(doc *d, const json_t *groups, const char *first)
{
    static const double cols[] = {0.0, 0.16, 0.24, 0.42, 0.60, 0.78, 0.90};
    const char *head[] = {first,
                          tr(d, N_("n (malignant)")),
                          tr(d, N_("sensitivity")),
                          tr(d, N_("specificity")),
                          tr(d, N_("AUC")),
                          tr(d, N_("ECE")),
                          tr(d, N_("FN / FP"))};
    row(d, head, 7, cols, 1);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        char c1[64], c2[64], c3[64], c4[64], c5[32], c6[64];
        snprintf(c1, sizeof c1, "%lld (%lld)",
                 (long long)json_integer_value(json_object_get(g, "n")),
                 (long long)json_integer_value(json_object_get(g, "n_malignant")));
        fmt_ci(json_object_get(g, "sensitivity"), c2, sizeof c2);
        fmt_ci(json_object_get(g, "specificity"), c3, sizeof c3);
        fmt_ci(json_object_get(g, "auc"), c4, sizeof c4);
        double ece = jnum(g, "ece"), ece0 = jnum(json_object_get(g, "ece_if_calibrated"), "mean");
        if (isfinite(ece) && isfinite(ece0))
            snprintf(c5, sizeof c5, "\u2066%.3f (%.3f)\u2069", ece, ece0);
        else
            snprintf(c5, sizeof c5, isfinite(ece) ? "%.3f" : "—", ece);
        snprintf(c6, sizeof c6, "%lld / %lld",
                 (long long)json_integer_value(json_object_get(g, "n_false_negatives")),
                 (long long)json_integer_value(json_object_get(g, "n_false_positives")));
        const char *name = json_string_value(json_object_get(g, "value"));
        char nm[96];
        snprintf(nm, sizeof nm, "\u2068%s\u2069%s", name ? name : "?",
                 json_is_true(json_object_get(g, "small")) ? " *" : "");
        const char *cells[] = {nm, c1, c2, c3, c4, c5, c6};
        row(d, cells, 7, cols, 0);
    }
    para(d, tr(d, N_("* fewer cases than the criteria require: shown, not judged.")), 7.5, 0);
    para(d,
         tr(d, N_("ECE (in brackets: the ECE a perfectly calibrated model shows on the same "
                  "cases, on average; a few hundred cases give several points by chance alone).")),
         7.5, 0);
}

/* The reliability diagram of the overall malignant probability. */
static void reliability(doc *d, const json_t *bins)
{
    const double S = 170.0;
    ensure(d, S + 30.0);
    double x0 = d->rtl ? PAGE_W - MARGIN - S : MARGIN + 20.0, y0 = d->y + S;
    cairo_t *cr = d->cr;
    cairo_set_line_width(cr, 0.6);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_rectangle(cr, x0, d->y, S, S);
    cairo_stroke(cr);
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x0 + S, d->y);
    cairo_stroke(cr);
    size_t i;
    json_t *b;
    cairo_set_source_rgb(cr, 0.12, 0.36, 0.65);
    json_array_foreach(bins, i, b)
    {
        double lo = jnum(b, "lo"), hi = jnum(b, "hi"), f = jnum(b, "frac_positive");
        if (!isfinite(f))
            continue;
        cairo_rectangle(cr, x0 + lo * S + 1, y0 - f * S, (hi - lo) * S - 2, f * S);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.08, 0.09, 0.11);
    d->y = y0 + 4.0;
    para(d,
         tr(d, N_("Bars: observed share of malignant lesions per bin of predicted "
                  "probability; diagonal: perfect calibration.")),
         7.5, 0);
}

static void listing(doc *d, const json_t *groups)
{
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const char *keys[2] = {"false_negatives", "false_positives"};
        const char *names[2] = {tr(d, N_("false negatives")), tr(d, N_("false positives"))};
        for (int k = 0; k < 2; k++) {
            const json_t *a = json_object_get(g, keys[k]);
            if (!json_array_size(a))
                continue;
            char buf[4096];
            size_t used =
                (size_t)snprintf(buf, sizeof buf, "\u2068%s\u2069 — %s: \u2066",
                                 json_string_value(json_object_get(g, "value")), names[k]);
            size_t j;
            json_t *id;
            json_array_foreach(a, j, id)
            {
                if (used + 80 >= sizeof buf) {
                    used += (size_t)snprintf(buf + used, sizeof buf - used, " …");
                    break;
                }
                used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", j ? ", " : "",
                                         json_string_value(id));
            }
            snprintf(buf + used, sizeof buf - used, "\u2069");
            para(d, buf, 7.5, 0);
        }
    }
}

static void criteria(doc *d, const json_t *list)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        char buf[1024];
        int pass = json_is_true(json_object_get(c, "pass"));
        size_t used =
            (size_t)snprintf(buf, sizeof buf, "%s  \u2066%s: %s (%s) %s %g\u2069 — ",
                             pass ? tr(d, N_("PASS")) : tr(d, N_("FAIL")),
                             json_string_value(json_object_get(c, "id")),
                             json_string_value(json_object_get(c, "metric")),
                             json_string_value(json_object_get(c, "statistic")),
                             json_string_value(json_object_get(c, "op")), jnum(c, "value"));
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(c, "evidence"), j, e)
        {
            if (used + 64 >= sizeof buf)
                break;
            double x = jnum(e, "observed");
            char val[32];
            snprintf(val, sizeof val, isfinite(x) ? "%.3f" : "—", x);
            /* one isolate per item: group, n and figure stay together in an Arabic line */
            used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\u2066%s (n=%lld): %s\u2069",
                                     j ? "; " : "", json_string_value(json_object_get(e, "where")),
                                     (long long)json_integer_value(json_object_get(e, "n")), val);
        }
        if (!json_array_size(json_object_get(c, "evidence")))
            snprintf(buf + used, sizeof buf - used, "%s", tr(d, N_("no group large enough")));
        cairo_set_source_rgb(d->cr, pass ? 0.05 : 0.70, pass ? 0.45 : 0.08, 0.10);
        para(d, buf, 8.5, 0);
        cairo_set_source_rgb(d->cr, 0.08, 0.09, 0.11);
    }
}

static void body(doc *d, const json_t *r, const basira_certify_identity *id)
{
    char buf[1024];
    para(d, tr(d, N_("Model certification report")), 17.0, 1);
    snprintf(buf, sizeof buf, "%s: \u2066%s %s\u2069", tr(d, N_("Model")),
             id->model_name ? id->model_name : "?", id->model_version ? id->model_version : "");
    para(d, buf, 9.5, 0);
    snprintf(buf, sizeof buf, "%s: \u2066%s\u2069", tr(d, N_("Model SHA-256")),
             id->model_sha256 ? id->model_sha256 : "?");
    para(d, buf, 8.0, 0);
    if (id->parent_sha256) {
        snprintf(buf, sizeof buf, "%s: \u2066%s\u2069", tr(d, N_("Parent model SHA-256")),
                 id->parent_sha256);
        para(d, buf, 8.0, 0);
    }
    snprintf(buf, sizeof buf, "%s: \u2066%s\u2069", tr(d, N_("Test set manifest SHA-256")),
             id->manifest_sha256 ? id->manifest_sha256 : "?");
    para(d, buf, 8.0, 0);
    snprintf(buf, sizeof buf, "%s: \u2066%s\u2069 — %s: \u2066%lld\u2069 — %s: \u2066%.6f\u2069",
             tr(d, N_("Date")), id->date ? id->date : "?", tr(d, N_("cases")),
             (long long)json_integer_value(json_object_get(r, "n")),
             tr(d, N_("referral threshold (medium)")), jnum(r, "threshold"));
    para(d, buf, 8.5, 0);
    int pass = json_is_true(json_object_get(r, "pass"));
    d->y += 6.0;
    cairo_set_source_rgb(d->cr, pass ? 0.05 : 0.70, pass ? 0.45 : 0.08, 0.10);
    para(d,
         pass ? tr(d, N_("Verdict: every acceptance criterion is met."))
              : tr(d, N_("Verdict: NOT certified — at least one acceptance criterion is not met.")),
         12.0, 1);
    cairo_set_source_rgb(d->cr, 0.08, 0.09, 0.11);

    heading(d, tr(d, N_("Acceptance criteria")));
    criteria(d, json_object_get(r, "criteria"));

    heading(d, tr(d, N_("Overall")));
    json_t *ov = json_pack("[O]", json_object_get(r, "overall"));
    json_object_set_new(json_array_get(ov, 0), "value", json_string(tr(d, N_("all"))));
    table(d, ov, tr(d, N_("cases")));
    json_decref(ov);

    heading(d, tr(d, N_("By phototype (Fitzpatrick recorded, else ITA category)")));
    table(d, json_object_get(r, "groups"), tr(d, N_("phototype")));
    const json_t *gap = json_object_get(r, "group_gap");
    if (isfinite(jnum(gap, "value"))) {
        snprintf(buf, sizeof buf, "%s: \u2066%.3f [%.3f, %.3f] (%s − %s)\u2069",
                 /* xgettext:no-c-format */
                 tr(d, N_("AUC gap between the best and the worst group (bootstrap 95% interval)")),
                 jnum(gap, "value"), jnum(gap, "lo"), jnum(gap, "hi"),
                 json_string_value(json_object_get(gap, "best")),
                 json_string_value(json_object_get(gap, "worst")));
    } else
        snprintf(buf, sizeof buf, "%s",
                 tr(d, N_("AUC gap between groups: fewer than two groups large enough.")));
    para(d, buf, 8.5, 0);

    heading(d, tr(d, N_("By lesion type")));
    table(d, json_object_get(r, "lesion_types"), tr(d, N_("lesion type")));

    heading(d, tr(d, N_("Calibration of the malignant probability")));
    reliability(d, json_object_get(json_object_get(r, "overall"), "reliability"));

    const json_t *par = json_object_get(r, "parent");
    if (json_is_object(par)) {
        heading(d, tr(d, N_("Comparison with the parent model")));
        snprintf(buf, sizeof buf, "%s: \u2066%.3f − %.3f = %+.3f [%+.3f, %+.3f], p = %.4f\u2069",
                 tr(d, N_("AUC of the model minus the parent's (DeLong test, same cases)")),
                 jnum(par, "auc_model"), jnum(par, "auc_parent"), jnum(par, "difference"),
                 jnum(par, "lo"), jnum(par, "hi"), jnum(par, "p_value"));
        para(d, buf, 8.5, 0);
    }
    const json_t *adj = json_object_get(r, "adjudication");
    if (json_is_object(adj)) {
        heading(d, tr(d, N_("Agreement with the adjudicated labels")));
        const json_t *kt = json_object_get(adj, "kappa_lesion_type");
        const json_t *km = json_object_get(adj, "kappa_malignant");
        snprintf(buf, sizeof buf,
                 "%s: \u2066%.3f [%.3f, %.3f]\u2069 — %s: \u2066%.3f [%.3f, %.3f]\u2069",
                 tr(d, N_("Cohen's kappa, lesion type")), jnum(kt, "value"), jnum(kt, "lo"),
                 jnum(kt, "hi"), tr(d, N_("malignant or not")), jnum(km, "value"), jnum(km, "lo"),
                 jnum(km, "hi"));
        para(d, buf, 8.5, 0);
        json_t *sc = json_pack("[O]", json_object_get(adj, "scored_against_adjudicated"));
        json_object_set_new(json_array_get(sc, 0), "value", json_string(tr(d, N_("adjudicated"))));
        table(d, sc, tr(d, N_("cases")));
        json_decref(sc);
    }
    heading(d, tr(d, N_("False negatives and false positives")));
    listing(d, json_object_get(r, "groups"));
    d->y += 8.0;
    para(d,
         /* xgettext:no-c-format */
         tr(d, N_("Figures measured on the test set named by the manifest above, with 95% "
                  "intervals (Wilson for proportions, DeLong for AUC). They hold for photos "
                  "like these only.")),
         7.5, 0);
}

basira_code basira_certify_pdf(const json_t *report, const basira_certify_identity *id,
                               const char *lang, const char *path, basira_error *err)
{
    if (!json_is_object(report) || !id || !path || !lang ||
        (strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en")))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("certification PDF: a report, a path and a language (fr, ar, "
                                  "en) are needed"));
    basira_catalog *cat = NULL;
    basira_code rc = basira_catalog_open(lang, &cat, err);
    if (rc)
        return rc;
    cairo_surface_t *surf = cairo_pdf_surface_create(path, PAGE_W, PAGE_H);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 0.08, 0.09, 0.11);
    doc d = {.cr = cr, .cat = cat, .rtl = !strcmp(lang, "ar"), .y = MARGIN};
    if (cairo_status(cr) == CAIRO_STATUS_SUCCESS)
        body(&d, report, id);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surf);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(surf);
    cairo_surface_destroy(surf);
    basira_catalog_free(cat);
    if (st != CAIRO_STATUS_SUCCESS)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                cairo_status_to_string(st));
    return BASIRA_OK;
}
