/*
 * cmd_cv.c - `basira cv`: k-fold cross-validation grouped by lesion (or patient),
 * stratified by class, with the recipe of `basira train`.
 *
 * One split overstates or understates a model by chance (which lesions landed in the
 * test part); k folds give k estimates and their spread. Every image of a group (a
 * lesion, and with --dup-groups every near-duplicate photo of it) lies in one fold.
 * Fold f is held out: a model is trained on the others (a share of their groups,
 * --val-fraction, kept for choosing the best epoch), then scored on fold f alone.
 *
 * Layout of --out (a fold already done is not redone, so a stopped run continues):
 *   folds.csv            image, label, group and fold of every row
 *   fold-<f>/            the `basira train` run of fold f (test.csv = the held-out fold)
 *   fold-<f>/fold.json   its held-out figures and malignant probabilities
 *   cv-summary.json/.md  every fold, mean +- sd, the threshold rule (src/train/cv.c)
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basira/eval.h"
#include "basira/fs.h"
#include "basira/model.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"
#include "train/dataset.h"
#include "train/rng.h"
#include "train_opts.h"

#define MAX_FOLDS 20
#define MAX_THRESHOLDS 16

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira cv --images DIR --csv FILE --out DIR [options] [train options]\n"
                 "Cross-validate a training recipe: k folds grouped by --group-col and "
                 "stratified by class; each fold is held out once.\n\n"
                 "  --folds K                 number of folds, 2 to 20 (5)\n"
                 "  --dup-groups FILE         `basira dedup` output: near-duplicate photos "
                 "share a fold too\n"
                 "  --val-fraction X          share of the training folds' groups kept to "
                 "choose the best epoch (0.1)\n"
                 "  --target-sensitivity X    sensitivity the threshold keeps on every fold "
                 "(0.95)\n"
                 "  --threshold-margin X      the lowest fold-wise threshold times X, in "
                 "(0, 1] (1)\n"
                 "  --thresholds LIST         further thresholds to report "
                 "(0.05,0.1,0.2,0.3,0.5)\n"
                 "  --recall-class CODE       class whose recall is shown in the Markdown "
                 "table (mel)\n"
                 "  --stop-after-folds N      stop once N folds are done (run the command "
                 "again to continue)\n"
                 "  --tta N                   score each held-out fold averaging N views of "
                 "each photo: 1, 2, 4 or 8 (1)\n"
                 "  -h, --help                show this help\n"
                 "Every option of `basira train` (see `basira help train`) sets the recipe; "
                 "--split and --limit do not apply.\n"
                 "Writes folds.csv, fold-<f>/ and cv-summary.{json,md} into --out; rerun "
                 "the same command to continue a stopped run.\n"));
}

enum {
    CV_FOLDS = 1000,
    CV_DUP,
    CV_VAL,
    CV_TARGET,
    CV_MARGIN,
    CV_THRESHOLDS,
    CV_RECALL,
    CV_STOP,
    CV_TTA,
};

typedef struct cv_options {
    basira_train_options o;
    int folds;
    const char *dup_path;
    double val_fraction, target, margin;
    double thresholds[MAX_THRESHOLDS];
    int n_thresholds;
    const char *recall_class;
    int stop_after; /* folds; 0 = all */
    int tta;        /* views averaged when scoring a held-out fold */
} cv_options;

/* One fold's held-out results. */
typedef struct fold_result {
    json_t *doc; /* fold.json */
    size_t n;
    double *p;      /* malignant probability of each held-out image */
    int *malignant; /* its truth */
} fold_result;

static int parse_thresholds(const char *s, cv_options *c)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    const char *items[MAX_THRESHOLDS];
    int n = eval_cli_split_list(buf, items, MAX_THRESHOLDS);
    if (n <= 0)
        goto bad;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        double v = strtod(items[i], &end);
        if (end == items[i] || *end || errno || !(v > 0 && v < 1))
            goto bad;
        c->thresholds[i] = v;
    }
    c->n_thresholds = n;
    return 0;
bad:
    fprintf(stderr,
            _("basira: --thresholds needs up to %d probabilities in (0, 1), "
              "comma-separated\n"),
            MAX_THRESHOLDS);
    return -1;
}

/* dir/name into out (4096 bytes); an over-long path is an error, never a truncated one. */
static basira_code join(char *out, const char *dir, const char *name, basira_error *err)
{
    if (snprintf(out, 4096, "%s/%s", dir, name) >= 4096)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), dir);
    return BASIRA_OK;
}

/* ---- folds ---------------------------------------------------------------------- */

/* Group id of every row: the group column (or each row alone), merged with --dup-groups. */
static basira_code row_groups(const cv_options *c, const basira_csv *csv, const size_t *rows,
                              size_t n, int ic, int gc, int *group, int *n_groups,
                              basira_error *err)
{
    int *a = malloc((n ? n : 1) * sizeof *a), *b = NULL;
    basira_csv *dup = NULL;
    basira_code rc = BASIRA_OK;
    if (!a)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    int na = 0;
    if (gc >= 0)
        rc = train_value_ids(csv, rows, n, gc, a, &na, basira_csv_header(csv, gc), err);
    else
        for (size_t i = 0; i < n; i++)
            a[i] = (int)i;
    if (!rc && c->dup_path) {
        /* The dedup file names each image (first column) and its dup_group. */
        rc = basira_csv_read_file(c->dup_path, &dup, err);
        int dg = rc ? -1 : basira_csv_column(dup, "dup_group");
        if (!rc && dg < 0)
            rc = basira_error_set(err, BASIRA_E_FORMAT, _("%s has no column '%s'"), c->dup_path,
                                  "dup_group");
        size_t nd = rc ? 0 : basira_csv_rows(dup);
        /* Rows of the main CSV and of the dedup file as one id space for the image names:
         * an image's dup group id is the id of its dup_group text. */
        int *dup_id = rc ? NULL : malloc((nd ? nd : 1) * sizeof *dup_id);
        size_t *drows = rc ? NULL : malloc((nd ? nd : 1) * sizeof *drows);
        b = malloc((n ? n : 1) * sizeof *b);
        if (!rc && (!dup_id || !drows || !b))
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        int ndg = 0;
        for (size_t r = 0; !rc && r < nd; r++)
            drows[r] = r;
        if (!rc)
            rc = train_value_ids(dup, drows, nd, dg, dup_id, &ndg, NULL, err);
        for (size_t i = 0; !rc && i < n; i++) {
            b[i] = -1;
            const char *name = basira_csv_field(csv, rows[i], ic);
            for (size_t r = 0; r < nd; r++)
                if (!strcmp(basira_csv_field(dup, r, 0), name)) {
                    b[i] = dup_id[r];
                    break;
                }
        }
        free(dup_id);
        free(drows);
    }
    if (!rc)
        rc = basira_groups_union(n, a, b, group, n_groups, err);
    free(a);
    free(b);
    basira_csv_free(dup);
    return rc;
}

static basira_code write_folds(const char *dir, const basira_csv *csv, size_t n, int ic, int lc,
                               const int *group, const int *fold, basira_error *err)
{
    char path[4096];
    basira_code rc = join(path, dir, "folds.csv", err);
    if (rc)
        return rc;
    FILE *f = fopen(path, "w");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    fputs("image,label,group,fold\n", f);
    for (size_t r = 0; r < n; r++) {
        basira_cli_put_csv_cell(f, basira_csv_field(csv, r, ic));
        fputc(',', f);
        basira_cli_put_csv_cell(f, basira_csv_field(csv, r, lc));
        fprintf(f, ",%d,%d\n", group[r], fold[r]);
    }
    if (ferror(f) | fclose(f))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                strerror(errno ? errno : EIO));
    return BASIRA_OK;
}

/* Parts of fold f: the fold is the test part, a share of the other groups validation. */
static basira_code fold_parts(const cv_options *c, size_t n, const int *label, int n_labels,
                              const int *group, int n_groups, const int *fold, int f, int *parts,
                              basira_error *err)
{
    size_t m = 0;
    int *sl = malloc((n ? n : 1) * sizeof *sl), *sg = malloc((n ? n : 1) * sizeof *sg);
    int *sp = malloc((n ? n : 1) * sizeof *sp);
    basira_code rc = BASIRA_OK;
    if (!sl || !sg || !sp)
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t r = 0; !rc && r < n; r++)
        if (fold[r] != f) {
            sl[m] = label[r];
            sg[m++] = group[r];
        }
    const double fr[3] = {1.0 - c->val_fraction, c->val_fraction, 0.0};
    if (!rc)
        rc = basira_split_groups(m, sl, n_labels, sg, n_groups, fr,
                                 basira_seed_mix(c->o.seed, 0x4356ULL, (uint64_t)f), sp, err);
    for (size_t r = 0, k = 0; !rc && r < n; r++)
        parts[r] = fold[r] == f ? BASIRA_PART_TEST : sp[k++];
    free(sl);
    free(sg);
    free(sp);
    return rc;
}

/* ---- one fold --------------------------------------------------------------------- */

static int file_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    return !join(path, dir, name, NULL) && stat(path, &st) == 0;
}

static double report_value(const json_t *report, const char *key)
{
    const json_t *v = json_object_get(json_object_get(report, key), "value");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Score the held-out fold with the fold's best model; write fold.json. */
static basira_code evaluate_fold(const cv_options *c, const char *dir, int f, json_t **out,
                                 basira_error *err)
{
    char model[4096], csv[4096];
    basira_code rc = join(model, dir, "best.safetensors", err);
    if (!rc)
        rc = join(csv, dir, "test.csv", err);
    if (rc)
        return rc;
    eval_cli_input in = {.model = model,
                         .images = c->o.images_dir,
                         .csv = csv,
                         .label_col = c->o.label_col,
                         .image_col = c->o.image_col,
                         .threads = c->o.threads,
                         .quiet = 1,
                         .tta = c->tta};
    basira_model_info *info = malloc(sizeof *info);
    if (!info)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    char sha[65];
    long failed = 0;
    basira_eval_set *set = NULL;
    json_t *rep = NULL;
    rc = eval_cli_predict(&in, info, sha, &set, &failed, err);
    basira_eval_options eo;
    basira_eval_options_default(&eo);
    eo.bootstrap = 0;
    if (!rc)
        rc = basira_eval_report(set, &eo, &rep, err);
    json_t *doc = NULL;
    if (!rc) {
        size_t n = basira_eval_set_size(set);
        json_t *p = json_array(), *mal = json_array(), *recall = json_object();
        for (size_t i = 0; i < n; i++) {
            int label;
            basira_eval_set_probs(set, i, &label);
            json_array_append_new(p, json_real(basira_eval_set_p_malignant(set, i)));
            json_array_append_new(mal, json_boolean(info->classes[label].malignant));
        }
        size_t ci;
        json_t *pc;
        json_array_foreach(json_object_get(rep, "per_class"), ci, pc)
        {
            const json_t *se = json_object_get(json_object_get(pc, "sensitivity"), "value");
            json_object_set_new(recall, json_string_value(json_object_get(pc, "code")),
                                num(json_is_number(se) ? json_number_value(se) : NAN));
        }
        doc = json_pack("{s:i, s:I, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "fold", f,
                        "n", (json_int_t)n, "failed", (json_int_t)failed, "model_sha256", sha,
                        "tta", c->tta, "accuracy", num(report_value(rep, "accuracy")),
                        "balanced_accuracy", num(report_value(rep, "balanced_accuracy")),
                        "auc_mean_ovr", num(report_value(rep, "auc_mean_ovr")), "auc_malignant",
                        num(report_value(rep, "auc_malignant")), "recall", recall, "p_malignant", p,
                        "malignant", mal);
        if (!doc)
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (!rc) {
        char *text = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
        char path[4096];
        rc = text ? join(path, dir, "fold.json", err) : basira_error_set(err, BASIRA_E_NOMEM, NULL);
        if (!rc)
            rc = basira_fs_write_atomic(path, text, strlen(text), 0644, err);
        free(text);
    }
    json_decref(rep);
    basira_eval_set_free(set);
    free(info);
    if (rc)
        json_decref(doc);
    else
        *out = doc;
    return rc;
}

/* fold.json's probabilities and truth into r (doc kept). */
static basira_code fold_from_doc(json_t *doc, fold_result *r, basira_error *err)
{
    const json_t *p = json_object_get(doc, "p_malignant"), *m = json_object_get(doc, "malignant");
    size_t n = json_array_size(p);
    if (!json_is_array(p) || !json_is_array(m) || json_array_size(m) != n)
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("a fold.json is damaged: delete it "
                                  "to score the fold again"));
    r->doc = doc;
    r->n = n;
    r->p = malloc((n ? n : 1) * sizeof *r->p);
    r->malignant = malloc((n ? n : 1) * sizeof *r->malignant);
    if (!r->p || !r->malignant)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++) {
        r->p[i] = json_number_value(json_array_get(p, i));
        r->malignant[i] = json_is_true(json_array_get(m, i));
    }
    return BASIRA_OK;
}

static basira_code run_fold(const cv_options *c, const char *root, const int *parts, size_t nrows,
                            int f, fold_result *r, basira_error *err)
{
    char dir[4096], path[4096], name[32];
    snprintf(name, sizeof name, "fold-%d", f);
    basira_code rc = join(dir, root, name, err);
    if (!rc)
        rc = join(path, dir, "fold.json", err);
    if (rc)
        return rc;
    if (file_exists(dir, "fold.json")) {
        json_error_t je;
        json_t *doc = json_load_file(path, 0, &je);
        if (!doc)
            return basira_error_set(err, BASIRA_E_FORMAT, _("cannot read %s: %s"), path, je.text);
        /* Scored with other views (no "tta": before --tta, one view): score it again. */
        json_int_t views = json_integer_value(json_object_get(doc, "tta"));
        if ((views ? views : 1) == c->tta) {
            fprintf(stderr, _("basira: fold %d already done (%s)\n"), f, path);
            return fold_from_doc(doc, r, err);
        }
        json_decref(doc);
    }
    if ((rc = basira_fs_mkdirs(dir, 0755, err)))
        return rc;
    if (!file_exists(dir, "summary.json") || !file_exists(dir, "best.safetensors")) {
        basira_train_options o = c->o;
        o.out_dir = dir;
        o.parts = parts;
        o.n_parts = nrows;
        o.limit = 0;
        if ((rc = join(path, dir, "checkpoint.safetensors", err)))
            return rc;
        if (file_exists(dir, "checkpoint.safetensors"))
            o.resume_path = path;
        fprintf(stderr, _("basira: fold %d of %d: training\n"), f + 1, c->folds);
        basira_train_result res;
        if ((rc = basira_train_run(&o, &res, err)))
            return rc;
    }
    json_t *doc = NULL;
    if ((rc = evaluate_fold(c, dir, f, &doc, err)))
        return rc;
    return fold_from_doc(doc, r, err);
}

/* ---- the summary ------------------------------------------------------------------ */

/* Sensitivity and specificity of fold r at threshold t (NaN when undefined). */
static void sens_spec(const fold_result *r, double t, double *se, double *sp)
{
    long tp = 0, pos = 0, tn = 0, neg = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->malignant[i]) {
            pos++;
            tp += r->p[i] >= t;
        } else {
            neg++;
            tn += r->p[i] < t;
        }
    }
    *se = pos ? (double)tp / (double)pos : NAN;
    *sp = neg ? (double)tn / (double)neg : NAN;
}

static const char *const metric_keys[] = {"accuracy", "balanced_accuracy", "auc_mean_ovr",
                                          "auc_malignant"};
#define N_METRICS 4

static void md_mean_sd(FILE *f, const double *v, int k)
{
    double m, s;
    basira_mean_sd(v, (size_t)k, &m, &s);
    fprintf(f, " %.3f ± %.3f |", m, isfinite(s) ? s : 0.0);
}

static basira_code write_summary(const cv_options *c, const char *root, const fold_result *fr,
                                 basira_error *err)
{
    int k = c->folds;
    size_t total = 0;
    for (int f = 0; f < k; f++)
        total += fr[f].n;
    double *p = malloc((total ? total : 1) * sizeof *p);
    int *mal = malloc((total ? total : 1) * sizeof *mal),
        *fold = malloc((total ? total : 1) * sizeof *fold);
    if (!p || !mal || !fold) {
        free(p);
        free(mal);
        free(fold);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (int f = 0, j = 0; f < k; f++)
        for (size_t i = 0; i < fr[f].n; i++, j++) {
            p[j] = fr[f].p[i];
            mal[j] = fr[f].malignant[i];
            fold[j] = f;
        }
    double per_fold[MAX_FOLDS], t;
    basira_code rc =
        basira_cv_threshold(p, mal, fold, total, k, c->target, c->margin, per_fold, &t, err);
    free(p);
    free(mal);
    free(fold);
    if (rc)
        return rc;

    double vals[N_METRICS + 3][MAX_FOLDS];
    json_t *folds = json_array(), *mean = json_object();
    const char *rc_code = c->recall_class;
    for (int f = 0; f < k; f++) {
        json_t *d = json_deep_copy(fr[f].doc);
        json_object_del(d, "p_malignant");
        json_object_del(d, "malignant");
        for (int m = 0; m < N_METRICS; m++) {
            const json_t *v = json_object_get(d, metric_keys[m]);
            vals[m][f] = json_is_number(v) ? json_number_value(v) : NAN;
        }
        const json_t *rv = json_object_get(json_object_get(d, "recall"), rc_code ? rc_code : "");
        vals[N_METRICS][f] = json_is_number(rv) ? json_number_value(rv) : NAN;
        double se, sp;
        sens_spec(&fr[f], t, &se, &sp);
        vals[N_METRICS + 1][f] = se;
        vals[N_METRICS + 2][f] = sp;
        json_t *at = json_array();
        for (int i = 0; i < c->n_thresholds; i++) {
            double s1, s2;
            sens_spec(&fr[f], c->thresholds[i], &s1, &s2);
            json_array_append_new(at, json_pack("{s:f, s:o, s:o}", "threshold", c->thresholds[i],
                                                "sensitivity", num(s1), "specificity", num(s2)));
        }
        double se_own, sp_own;
        sens_spec(&fr[f], per_fold[f], &se_own, &sp_own);
        json_object_set_new(d, "threshold_own", num(per_fold[f]));
        json_object_set_new(d, "specificity_at_own_threshold", num(sp_own));
        json_object_set_new(
            d, "at_shipped_threshold",
            json_pack("{s:o, s:o}", "sensitivity", num(se), "specificity", num(sp)));
        json_object_set_new(d, "at_thresholds", at);
        json_array_append_new(folds, d);
    }
    static const char *const extra_keys[] = {"recall_class", "sensitivity_at_shipped",
                                             "specificity_at_shipped"};
    for (int m = 0; m < N_METRICS + 3; m++) {
        double mu, sd;
        basira_mean_sd(vals[m], (size_t)k, &mu, &sd);
        json_object_set_new(mean, m < N_METRICS ? metric_keys[m] : extra_keys[m - N_METRICS],
                            json_pack("{s:o, s:o}", "mean", num(mu), "sd", num(sd)));
    }
    json_t *doc = json_pack(
        "{s:i, s:s?, s:o, s:o, s:{s:s, s:f, s:f, s:o, s:o}}", "folds", k, "recall_class", rc_code,
        "per_fold", folds, "mean_sd", mean, "threshold", "rule",
        "lowest fold-wise threshold keeping the target sensitivity, times the margin", "target",
        c->target, "margin", c->margin, "per_fold", json_array(), "shipped_medium", num(t));
    json_t *pf = json_object_get(json_object_get(doc, "threshold"), "per_fold");
    for (int f = 0; f < k; f++)
        json_array_append_new(pf, num(per_fold[f]));
    char path[4096];
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    rc = text ? join(path, root, "cv-summary.json", err)
              : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (!rc)
        rc = basira_fs_write_atomic(path, text, strlen(text), 0644, err);
    free(text);
    json_decref(doc);
    if (rc)
        return rc;

    if ((rc = join(path, root, "cv-summary.md", err)))
        return rc;
    FILE *f = fopen(path, "w");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    fprintf(f, _("# Cross-validation, %d folds grouped by lesion\n\n"), k);
    fprintf(f, "| %s | n | %s | %s | %s | %s | %s %s | %s | %s | %s |\n", _("fold"), _("accuracy"),
            _("balanced accuracy"), _("mean AUC"), _("AUC malignant"), _("recall"),
            rc_code ? rc_code : "-", _("own threshold"), _("sensitivity"), _("specificity"));
    fputs("|---|---|---|---|---|---|---|---|---|---|\n", f);
    for (int i = 0; i < k; i++) {
        fprintf(f, "| %d | %zu |", i, fr[i].n);
        for (int m = 0; m < N_METRICS + 1; m++)
            fprintf(f, " %.3f |", vals[m][i]);
        fprintf(f, " %.4f | %.3f | %.3f |\n", per_fold[i], vals[N_METRICS + 1][i],
                vals[N_METRICS + 2][i]);
    }
    fprintf(f, "| %s | |", _("mean ± sd"));
    for (int m = 0; m < N_METRICS + 1; m++)
        md_mean_sd(f, vals[m], k);
    fputs(" |", f);
    md_mean_sd(f, vals[N_METRICS + 1], k);
    md_mean_sd(f, vals[N_METRICS + 2], k);
    fputc('\n', f);
    fprintf(f,
            _("\nThreshold (medium) on P(malignant): %.4f, the lowest of the fold-wise "
              "thresholds keeping sensitivity >= %.2f, times %.2f. Sensitivity and specificity "
              "are at this threshold on each held-out fold; the fold's own threshold is "
              "the largest keeping the target on that fold alone.\n"),
            t, c->target, c->margin);
    if (ferror(f) | fclose(f))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                strerror(errno ? errno : EIO));
    double bacc, auc;
    basira_mean_sd(vals[1], (size_t)k, &bacc, NULL);
    basira_mean_sd(vals[3], (size_t)k, &auc, NULL);
    printf(_("Cross-validation of %d folds: balanced accuracy %.3f, malignant AUC %.3f (means); "
             "threshold %.4f. Details in %s/cv-summary.md\n"),
           k, bacc, auc, t, root);
    return BASIRA_OK;
}

/* ---- the command ------------------------------------------------------------------ */

static int parse(int argc, char **argv, cv_options *c)
{
    static const struct option own[] = {
        {"folds", required_argument, NULL, CV_FOLDS},
        {"dup-groups", required_argument, NULL, CV_DUP},
        {"val-fraction", required_argument, NULL, CV_VAL},
        {"target-sensitivity", required_argument, NULL, CV_TARGET},
        {"threshold-margin", required_argument, NULL, CV_MARGIN},
        {"thresholds", required_argument, NULL, CV_THRESHOLDS},
        {"recall-class", required_argument, NULL, CV_RECALL},
        {"stop-after-folds", required_argument, NULL, CV_STOP},
        {"tta", required_argument, NULL, CV_TTA},
        {"help", no_argument, NULL, 'h'},
    };
    size_t n_own = sizeof own / sizeof own[0], n_train = basira_cli_train_opts_count();
    struct option opts[160];
    memcpy(opts, basira_cli_train_opts, n_train * sizeof *opts);
    memcpy(opts + n_train, own, n_own * sizeof *opts);
    opts[n_train + n_own] = (struct option){NULL, 0, NULL, 0};
    long l;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int used = basira_cli_train_option(o, optarg, &c->o);
        if (used < 0)
            return BASIRA_EXIT_USAGE;
        if (used)
            continue;
        switch (o) {
        case CV_FOLDS:
            if (basira_cli_parse_long("--folds", optarg, 2, MAX_FOLDS, &l))
                return BASIRA_EXIT_USAGE;
            c->folds = (int)l;
            break;
        case CV_DUP:
            c->dup_path = optarg;
            break;
        case CV_VAL:
            if (basira_cli_parse_double("--val-fraction", optarg, 0.01, 0.5, &c->val_fraction))
                return BASIRA_EXIT_USAGE;
            break;
        case CV_TARGET:
            if (basira_cli_parse_double("--target-sensitivity", optarg, 0.5, 1, &c->target))
                return BASIRA_EXIT_USAGE;
            break;
        case CV_MARGIN:
            if (basira_cli_parse_double("--threshold-margin", optarg, 0.01, 1, &c->margin))
                return BASIRA_EXIT_USAGE;
            break;
        case CV_THRESHOLDS:
            if (parse_thresholds(optarg, c))
                return BASIRA_EXIT_USAGE;
            break;
        case CV_STOP:
            if (basira_cli_parse_long("--stop-after-folds", optarg, 1, MAX_FOLDS, &l))
                return BASIRA_EXIT_USAGE;
            c->stop_after = (int)l;
            break;
        case CV_RECALL:
            c->recall_class = *optarg ? optarg : NULL;
            break;
        case CV_TTA:
            if (eval_cli_parse_tta(optarg, &c->tta))
                return BASIRA_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return basira_cli_bad_option("cv", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("cv", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!c->o.images_dir || !c->o.csv_path || !c->o.out_dir) {
        fprintf(stderr, _("basira: cv needs --images, --csv and --out\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    cv_options c;
    memset(&c, 0, sizeof c);
    basira_train_options_default(&c.o);
    c.folds = 5;
    c.val_fraction = 0.1;
    c.target = 0.95;
    c.margin = 1.0;
    c.recall_class = "mel";
    c.tta = 1;
    static const double default_t[] = {0.05, 0.1, 0.2, 0.3, 0.5};
    memcpy(c.thresholds, default_t, sizeof default_t);
    c.n_thresholds = 5;
    int st = parse(argc, argv, &c);
    if (st)
        return st < 0 ? BASIRA_EXIT_OK : st;

    basira_error err;
    basira_error_clear(&err);
    basira_csv *csv = NULL;
    size_t n = 0, *rows = NULL;
    int *label = NULL, *group = NULL, *fold = NULL, *parts = NULL;
    int n_labels = 0, n_groups = 0;
    fold_result fr[MAX_FOLDS];
    memset(fr, 0, sizeof fr);
    char *cmdline = basira_cli_join_args(argc, argv);
    c.o.command_line = cmdline;
    basira_code rc = basira_csv_read_file(c.o.csv_path, &csv, &err);
    int ic = -1, lc = -1, gc = -1;
    if (!rc) {
        ic = basira_csv_column(csv, c.o.image_col);
        lc = basira_csv_column(csv, c.o.label_col);
        gc = c.o.group_col ? basira_csv_column(csv, c.o.group_col) : -1;
        if (ic < 0 || lc < 0 || (c.o.group_col && gc < 0))
            rc = basira_error_set(&err, BASIRA_E_FORMAT, _("%s has no column '%s'"), c.o.csv_path,
                                  ic < 0   ? c.o.image_col
                                  : lc < 0 ? c.o.label_col
                                           : c.o.group_col);
    }
    if (!rc) {
        n = basira_csv_rows(csv);
        rows = malloc((n ? n : 1) * sizeof *rows);
        label = malloc((n ? n : 1) * sizeof *label);
        group = malloc((n ? n : 1) * sizeof *group);
        fold = malloc((n ? n : 1) * sizeof *fold);
        parts = malloc((n ? n : 1) * sizeof *parts);
        if (!rows || !label || !group || !fold || !parts)
            rc = basira_error_set(&err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t r = 0; !rc && r < n; r++)
        rows[r] = r;
    if (!rc)
        rc = train_value_ids(csv, rows, n, lc, label, &n_labels, NULL, &err);
    if (!rc)
        rc = row_groups(&c, csv, rows, n, ic, gc, group, &n_groups, &err);
    if (!rc)
        rc = basira_kfold_groups(n, label, n_labels > 0 ? n_labels : 1, group, n_groups, c.folds,
                                 c.o.seed, fold, &err);
    if (!rc)
        rc = basira_fs_mkdirs(c.o.out_dir, 0755, &err);
    if (!rc)
        rc = write_folds(c.o.out_dir, csv, n, ic, lc, group, fold, &err);
    int done = 0;
    for (int f = 0; !rc && f < c.folds && !(c.stop_after && done >= c.stop_after); f++) {
        rc = fold_parts(&c, n, label, n_labels > 0 ? n_labels : 1, group, n_groups, fold, f, parts,
                        &err);
        if (!rc)
            rc = run_fold(&c, c.o.out_dir, parts, n, f, &fr[f], &err);
        done++;
    }
    if (!rc && done < c.folds)
        fprintf(stderr,
                _("basira: stopped after %d of %d folds; run the same command to "
                  "continue\n"),
                done, c.folds);
    else if (!rc)
        rc = write_summary(&c, c.o.out_dir, fr, &err);
    for (int f = 0; f < MAX_FOLDS; f++) {
        json_decref(fr[f].doc);
        free(fr[f].p);
        free(fr[f].malignant);
    }
    free(rows);
    free(label);
    free(group);
    free(fold);
    free(parts);
    basira_csv_free(csv);
    free(cmdline);
    if (rc) {
        basira_cli_report(_("cross-validation failed"), &err);
        return rc == BASIRA_E_INVALID_ARGUMENT ? BASIRA_EXIT_USAGE : BASIRA_EXIT_FAILED;
    }
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_cv = {
    "cv", N_("cross-validate a training recipe, folds grouped by lesion"), run, usage};
