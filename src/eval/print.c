/*
 * print.c - the evaluation report for people: plain text for a terminal,
 * Markdown for a file, and the reliability diagram as SVG.
 *
 * Both are drawn from the JSON report (report.c) rather than recomputed, so the
 * numbers a clinician reads are exactly those a script reads.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "core/i18n.h"

#define MAX_COLS 12
#define CELL 64

/* A small table printed as aligned text or as a Markdown table. */
typedef struct table {
    int cols, rows, cap;
    char (*cells)[MAX_COLS][CELL];
} table;

static int table_row(table *t, const char *const *cells, int n)
{
    if (t->rows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        void *c = realloc(t->cells, sizeof(*t->cells) * (size_t)cap);
        if (!c)
            return -1;
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < MAX_COLS; i++)
        snprintf(t->cells[t->rows][i], CELL, "%s", i < n && cells[i] ? cells[i] : "");
    if (n > t->cols)
        t->cols = n;
    t->rows++;
    return 0;
}

/* Display width of UTF-8 text: count code points, not bytes. */
static int width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void table_print(const table *t, int markdown, FILE *f)
{
    int w[MAX_COLS] = {0};
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++)
            if (width(t->cells[r][c]) > w[c])
                w[c] = width(t->cells[r][c]);
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            const char *s = t->cells[r][c];
            int pad = w[c] - width(s);
            fprintf(f, markdown ? "| %s%*s " : "%s%*s  ", s, pad, "");
        }
        fputs(markdown ? "|\n" : "\n", f);
        if (markdown && r == 0) {
            for (int c = 0; c < t->cols; c++) {
                fputs("|", f);
                for (int i = 0; i < w[c] + 2; i++)
                    fputc('-', f);
            }
            fputs("|\n", f);
        }
    }
    fputc('\n', f);
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* "0.812 [0.790, 0.832]" or "n/a". */
static void fmt_ci(char *buf, size_t sz, const json_t *o)
{
    double v = num(o, "value"), lo = num(o, "lo"), hi = num(o, "hi");
    if (!isfinite(v))
        snprintf(buf, sz, "%s", _("n/a"));
    else if (!isfinite(lo) || !isfinite(hi))
        snprintf(buf, sz, "%.3f", v);
    else
        snprintf(buf, sz, "%.3f [%.3f, %.3f]", v, lo, hi);
}

/* "0.812 [0.790, 0.832] (812/1000)" for a proportion. */
static void fmt_prop(char *buf, size_t sz, const json_t *o)
{
    char ci[CELL];
    fmt_ci(ci, sizeof ci, o);
    snprintf(buf, sz, "%s (%lld/%lld)", ci, (long long)json_integer_value(json_object_get(o, "k")),
             (long long)json_integer_value(json_object_get(o, "n")));
}

static void heading(FILE *f, int markdown, const char *text)
{
    if (markdown) {
        fprintf(f, "## %s\n\n", text);
        return;
    }
    fprintf(f, "%s\n", text);
    for (int i = width(text); i > 0; i--)
        fputc('-', f);
    fputc('\n', f);
}

static void line(FILE *f, int markdown, const char *label, const char *value)
{
    fprintf(f, markdown ? "- **%s**: %s\n" : "  %s: %s\n", label, value);
}

static void print_triage(const json_t *tr, int markdown, FILE *f)
{
    char buf[256], a[CELL], b[CELL];
    const json_t *th = json_object_get(tr, "thresholds");
    snprintf(buf, sizeof buf, _("Triage (medium if P(malignant) >= %.4f, high if >= %.4f)"),
             num(th, "medium"), num(th, "high"));
    heading(f, markdown, buf);
    table t = {0};
    const char *hdr[] = {_("category"), _("malignant"), _("benign")};
    table_row(&t, hdr, 3);
    static const char *const cats[] = {"high", "medium", "low"};
    const char *names[] = {_("high"), _("medium"), _("low")};
    for (int c = 0; c < 3; c++) {
        const json_t *row = json_object_get(json_object_get(tr, "table"), cats[c]);
        snprintf(a, sizeof a, "%lld",
                 (long long)json_integer_value(json_object_get(row, "malignant")));
        snprintf(b, sizeof b, "%lld",
                 (long long)json_integer_value(json_object_get(row, "benign")));
        const char *r[] = {names[c], a, b};
        table_row(&t, r, 3);
    }
    table_print(&t, markdown, f);
    free(t.cells);
    fmt_prop(buf, sizeof buf, json_object_get(tr, "sensitivity"));
    line(f, markdown, _("Sensitivity (high + medium)"), buf);
    fmt_prop(buf, sizeof buf, json_object_get(tr, "specificity"));
    line(f, markdown, _("Specificity (low among benign)"), buf);
    fmt_prop(buf, sizeof buf, json_object_get(tr, "ppv_high"));
    line(f, markdown, _("PPV of high"), buf);
    fmt_prop(buf, sizeof buf, json_object_get(tr, "npv_low"));
    line(f, markdown, _("NPV of low"), buf);
    fputc('\n', f);
}

static void print_breakdown(const char *name, const json_t *groups, int markdown, FILE *f)
{
    char buf[256];
    snprintf(buf, sizeof buf, _("Breakdown by %s"), name);
    heading(f, markdown, buf);
    table t = {0};
    const char *hdr[] = {_("group"),         _("n"),           _("malignant"),   _("accuracy"),
                         _("AUC malignant"), _("sensitivity"), _("specificity"), _("note")};
    table_row(&t, hdr, 8);
    size_t i;
    const json_t *g;
    json_array_foreach(groups, i, g)
    {
        char n[CELL], nm[CELL], acc[CELL], auc[CELL], se[CELL] = "", sp[CELL] = "";
        snprintf(n, sizeof n, "%lld", (long long)json_integer_value(json_object_get(g, "n")));
        snprintf(nm, sizeof nm, "%lld",
                 (long long)json_integer_value(json_object_get(g, "n_malignant")));
        fmt_ci(acc, sizeof acc, json_object_get(g, "accuracy"));
        fmt_ci(auc, sizeof auc, json_object_get(g, "auc_malignant"));
        const json_t *tr = json_object_get(g, "triage");
        if (tr) {
            fmt_ci(se, sizeof se, json_object_get(tr, "sensitivity"));
            fmt_ci(sp, sizeof sp, json_object_get(tr, "specificity"));
        }
        const char *r[] = {json_string_value(json_object_get(g, "value")),
                           n,
                           nm,
                           acc,
                           auc,
                           se,
                           sp,
                           json_is_true(json_object_get(g, "small")) ? _("small group") : ""};
        table_row(&t, r, 8);
    }
    table_print(&t, markdown, f);
    free(t.cells);
}

basira_code basira_eval_report_print(const json_t *report, int markdown, FILE *f, basira_error *err)
{
    if (!json_is_object(report) || !f)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no report to print"));
    char buf[256];
    if (markdown)
        fprintf(f, "# %s\n\n", _("Evaluation report"));
    const char *unit = json_string_value(json_object_get(report, "unit"));
    fprintf(f,
            unit && !strcmp(unit, "lesions") ? _("%lld lesions: %lld malignant, %lld benign\n\n")
                                             : _("%lld images: %lld malignant, %lld benign\n\n"),
            (long long)json_integer_value(json_object_get(report, "n")),
            (long long)json_integer_value(json_object_get(report, "n_malignant")),
            (long long)json_integer_value(json_object_get(report, "n_benign")));
    /* xgettext:no-c-format */
    heading(f, markdown, _("Overall (95% confidence intervals)"));
    fmt_prop(buf, sizeof buf, json_object_get(report, "accuracy"));
    line(f, markdown, _("Accuracy"), buf);
    fmt_ci(buf, sizeof buf, json_object_get(report, "balanced_accuracy"));
    line(f, markdown, _("Balanced accuracy (bootstrap)"), buf);
    fmt_ci(buf, sizeof buf, json_object_get(report, "auc_malignant"));
    line(f, markdown, _("AUC malignant vs benign (DeLong)"), buf);
    fmt_ci(buf, sizeof buf, json_object_get(report, "auc_mean_ovr"));
    line(f, markdown, _("Mean one-vs-rest AUC (bootstrap)"), buf);
    const json_t *cal = json_object_get(report, "calibration");
    snprintf(buf, sizeof buf, "%.4f", num(json_object_get(cal, "top_class"), "ece"));
    line(f, markdown, _("ECE, top class (15 bins)"), buf);
    if (json_object_get(cal, "malignant")) {
        snprintf(buf, sizeof buf, "%.4f", num(json_object_get(cal, "malignant"), "ece"));
        line(f, markdown, _("ECE, malignant probability"), buf);
    }
    snprintf(buf, sizeof buf, "%.4f / %.4f", num(cal, "brier"), num(cal, "nll"));
    line(f, markdown, _("Brier score / log-loss"), buf);
    fputc('\n', f);

    /* xgettext:no-c-format */
    heading(f, markdown, _("Per class (95% confidence intervals)"));
    table t = {0};
    const char *hdr[] = {_("class"), _("n"),   _("sensitivity"), _("specificity"),
                         _("PPV"),   _("NPV"), _("AUC")};
    table_row(&t, hdr, 7);
    size_t i;
    const json_t *pc;
    json_array_foreach(json_object_get(report, "per_class"), i, pc)
    {
        char n[CELL], se[CELL], sp[CELL], ppv[CELL], npv[CELL], auc[CELL];
        snprintf(n, sizeof n, "%lld", (long long)json_integer_value(json_object_get(pc, "n")));
        fmt_ci(se, sizeof se, json_object_get(pc, "sensitivity"));
        fmt_ci(sp, sizeof sp, json_object_get(pc, "specificity"));
        fmt_ci(ppv, sizeof ppv, json_object_get(pc, "ppv"));
        fmt_ci(npv, sizeof npv, json_object_get(pc, "npv"));
        fmt_ci(auc, sizeof auc, json_object_get(pc, "auc"));
        const char *r[] = {
            json_string_value(json_object_get(pc, "code")), n, se, sp, ppv, npv, auc};
        table_row(&t, r, 7);
    }
    table_print(&t, markdown, f);
    free(t.cells);

    heading(f, markdown, _("Confusion matrix (rows: truth, columns: predicted)"));
    const json_t *cm = json_object_get(report, "confusion");
    const json_t *labels = json_object_get(cm, "labels");
    size_t k = json_array_size(labels);
    if (k + 1 <= MAX_COLS) {
        table c = {0};
        const char *row[MAX_COLS];
        row[0] = "";
        for (size_t a = 0; a < k; a++)
            row[a + 1] = json_string_value(json_array_get(labels, a));
        table_row(&c, row, (int)k + 1);
        char cells[MAX_COLS][CELL];
        for (size_t a = 0; a < k; a++) {
            row[0] = json_string_value(json_array_get(labels, a));
            const json_t *mr = json_array_get(json_object_get(cm, "matrix"), a);
            for (size_t b = 0; b < k; b++) {
                snprintf(cells[b], CELL, "%lld",
                         (long long)json_integer_value(json_array_get(mr, b)));
                row[b + 1] = cells[b];
            }
            table_row(&c, row, (int)k + 1);
        }
        table_print(&c, markdown, f);
        free(c.cells);
    }

    const json_t *tr = json_object_get(report, "triage");
    if (tr)
        print_triage(tr, markdown, f);

    const char *name;
    const json_t *groups;
    json_object_foreach((json_t *)json_object_get(report, "breakdowns"), name, groups)
        print_breakdown(name, groups, markdown, f);
    if (ferror(f))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write the report: %s"),
                                strerror(errno));
    return BASIRA_OK;
}

/* Escape text for XML. */
static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

basira_code basira_eval_reliability_svg(const json_t *calibration, const char *title,
                                        const char *path, basira_error *err)
{
    const json_t *bins = json_object_get(calibration, "bins");
    if (!json_is_array(bins) || !path)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no calibration bins to draw"));
    FILE *f = fopen(path, "w");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    /* Plot area: 60..460 horizontally, 40..440 vertically (y grows downwards). */
    const double x0 = 60, y0 = 440, side = 400;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"500\" height=\"500\" "
               "viewBox=\"0 0 500 500\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"500\" height=\"500\" fill=\"white\"/>\n");
    fputs("<text x=\"250\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">", f);
    xml_text(f, title ? title : _("Reliability diagram"));
    fputs("</text>\n", f);
    size_t i;
    const json_t *b;
    json_array_foreach(bins, i, b)
    {
        double lo = num(b, "lo"), hi = num(b, "hi"), obs = num(b, "observed"),
               conf = num(b, "confidence");
        if (!isfinite(lo) || !isfinite(hi) || !isfinite(obs) || !isfinite(conf))
            continue;
        double bx = x0 + lo * side, bw = (hi - lo) * side;
        /* Bar: observed frequency; red band: the gap to the mean confidence. */
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#4a78b5\" "
                "stroke=\"#1f3f6e\"/>\n",
                bx, y0 - obs * side, bw, obs * side);
        double top = fmax(obs, conf), bot = fmin(obs, conf);
        fprintf(f,
                "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#d9534f\" "
                "fill-opacity=\"0.35\"/>\n",
                bx, y0 - top * side, bw, (top - bot) * side);
        fprintf(f,
                "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"8\">%lld</text>\n",
                bx + bw / 2, y0 + 12, (long long)json_integer_value(json_object_get(b, "n")));
    }
    fprintf(f,
            "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\" "
            "stroke-dasharray=\"4 3\"/>\n"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
            "stroke=\"black\"/>\n",
            x0, y0, x0 + side, y0 - side, x0, y0 - side, side, side);
    for (int t = 0; t <= 5; t++) {
        double v = t / 5.0;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n",
                x0 + v * side, y0 + 26, v);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", x0 - 6,
                y0 - v * side + 4, v);
    }
    fputs("<text x=\"260\" y=\"485\" text-anchor=\"middle\">", f);
    xml_text(f, _("predicted probability"));
    fputs("</text>\n<text x=\"16\" y=\"240\" text-anchor=\"middle\" "
          "transform=\"rotate(-90 16 240)\">",
          f);
    xml_text(f, _("observed frequency"));
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"70\" y=\"60\">ECE = %.4f (n = %lld)</text>\n", num(calibration, "ece"),
            (long long)json_integer_value(json_object_get(calibration, "n")));
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    return BASIRA_OK;
}
