/*
 * cmd_evaluate.c - `basira evaluate`: how good is a model on a labelled image set,
 * with honest uncertainty.
 *
 * Every CSV row is predicted (decoding and skin tone in parallel on --threads workers;
 * the network itself one image at a time, see predict_row), then src/eval computes the metrics
 * with 95% intervals, calibration, the triage table at the model's own thresholds,
 * and per-group breakdowns. Lesion-level figures are added when several images show
 * one lesion (--group-col), because image-level figures then count a lesion twice.
 *
 * This file also holds the prediction runner shared with cmd_calibrate.c
 * (src/cli/eval_cli.h): it needs the model pipeline, which the pure statistics
 * library does not link.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/fs.h"
#include "basira/eval.h"
#include "basira/image.h"
#include "basira/json.h"
#include "basira/model.h"
#include "basira/quality.h"
#include "basira/triage.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"

#define MAX_BY 16
#define MAX_THREADS 64

int eval_cli_input_option(eval_cli_input *in, const char *command, int opt, char **argv,
                          void (*usage)(FILE *))
{
    const char **text = opt == 'm'   ? &in->model
                        : opt == 'i' ? &in->images
                        : opt == 'c' ? &in->csv
                        : opt == 'l' ? &in->label_col
                        : opt == 'I' ? &in->image_col
                                     : NULL;
    long threads = 1;
    if (text)
        *text = optarg;
    else if (opt != 't')
        return basira_cli_bad_option(command, opt, argv, usage);
    else if (basira_cli_parse_long("--threads", optarg, 1, MAX_THREADS, &threads))
        return BASIRA_EXIT_USAGE;
    else
        in->threads = (int)threads;
    return -1;
}

int eval_cli_parse_tta(const char *arg, int *out)
{
    long v;
    if (basira_cli_parse_long("--tta", arg, 1, 8, &v))
        return -1;
    if (v != 1 && v != 2 && v != 4 && v != 8) {
        fprintf(stderr, _("basira: invalid value for %s: '%s'\n"), "--tta", arg);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int eval_cli_split_list(char *buf, const char **items, int max)
{
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (n == max)
            return -1;
        items[n++] = tok;
    }
    return n;
}

/* ---- the prediction runner ------------------------------------------------------ */

typedef struct row_result {
    float probs[BASIRA_MODEL_MAX_CLASSES];
    const char *tone; /* static category code, or NULL */
    basira_code code; /* BASIRA_OK when probs is valid */
    char *message;    /* malloc'd error message otherwise */
} row_result;

typedef struct runner {
    const eval_cli_input *in;
    const basira_csv *csv;
    int image_col;
    int want_tone;
    size_t n, next, done;
    row_result *res;
    basira_classifier *clf;
    pthread_mutex_t lock;     /* next, done */
    pthread_mutex_t net_lock; /* the classifier */
} runner;

static void predict_row(runner *r, size_t i)
{
    row_result *res = &r->res[i];
    basira_error e;
    basira_error_clear(&e);
    char path[4096];
    basira_image *img = NULL;
    basira_code rc = basira_fs_find_image(r->in->images, basira_csv_cell(r->csv, i, r->image_col),
                                          path, sizeof path, &e);
    /* As in training (src/train/dataset.c): small labelled images (e.g. 28x28 X-rays) are
     * the data owner's choice; the clinical gate on photo size applies in use, not here. */
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    if (!rc)
        rc = basira_image_load_file(path, &io, &img, &e);
    if (!rc && r->in->transform) {
        basira_image *changed = NULL;
        rc = r->in->transform(img, r->in->transform_ctx, &changed, &e);
        basira_image_free(img);
        img = changed;
    }
    if (!rc && r->want_tone) {
        basira_skin_tone t;
        rc = basira_skin_tone_estimate(img, &t, &e);
        if (!rc)
            res->tone = t.category == BASIRA_TONE_UNKNOWN
                            ? NULL
                            : basira_skin_tone_category_code(t.category);
    }
    /*
     * One forward pass at a time, through one classifier: a classifier is used by one
     * thread at a time, and two networks run concurrently in two threads crash inside
     * oneDNN today (its library-managed scratchpad is shared; reported to the engine).
     * Decoding and the skin-tone measurement, the slow part on small models, stay parallel.
     */
    if (!rc) {
        pthread_mutex_lock(&r->net_lock);
        rc = basira_classifier_predict(r->clf, img, res->probs, &e);
        pthread_mutex_unlock(&r->net_lock);
    }
    basira_image_free(img);
    res->code = rc;
    if (rc)
        res->message = strdup(e.message[0] ? e.message : basira_strerror(rc));
}

static void *worker_main(void *arg)
{
    runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next < r->n ? r->next++ : r->n;
        pthread_mutex_unlock(&r->lock);
        if (i >= r->n)
            break;
        predict_row(r, i);
        pthread_mutex_lock(&r->lock);
        size_t done = ++r->done;
        pthread_mutex_unlock(&r->lock);
        if (!r->in->quiet && (done % 500 == 0 || done == r->n))
            fprintf(stderr, _("basira: %zu/%zu images predicted\n"), done, r->n);
    }
    return NULL;
}

/* Column index by name, with an error listing what the file has. */
static basira_code need_column(const basira_csv *c, const char *path, const char *name, int *col,
                               basira_error *err)
{
    *col = basira_csv_column(c, name);
    if (*col >= 0)
        return BASIRA_OK;
    char have[256] = "";
    size_t used = 0;
    for (int i = 0; i < basira_csv_cols(c) && used < sizeof have; i++)
        used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "",
                                 basira_csv_header(c, i));
    return basira_error_set(err, BASIRA_E_FORMAT, _("%s has no column '%s' (it has: %s)"), path,
                            name, have);
}

basira_code eval_cli_calibration_images(const char *images, const char *csv_path,
                                        const char *image_col, const basira_preprocess *pp,
                                        basira_code (*each)(void *ctx, const float *chw,
                                                            basira_error *err),
                                        void *ctx, size_t *used, basira_error *err)
{
    *used = 0;
    basira_csv *csv = NULL;
    basira_code rc = basira_csv_read_file(csv_path, &csv, err);
    if (rc)
        return rc;
    int col;
    if ((rc = need_column(csv, csv_path, image_col, &col, err))) {
        basira_csv_free(csv);
        return rc;
    }
    float *chw = malloc(sizeof(float) * 3 * (size_t)pp->input_w * (size_t)pp->input_h);
    if (!chw)
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    size_t n = basira_csv_rows(csv);
    for (size_t i = 0; !rc && i < n && *used < EVAL_CLI_MAX_CALIBRATION; i++) {
        char path[4096];
        basira_image *img = NULL;
        rc = basira_fs_find_image(images, basira_csv_cell(csv, i, col), path, sizeof path, err);
        if (!rc)
            rc = basira_image_load_file(path, &io, &img, err);
        if (!rc)
            rc = basira_preprocess_image(pp, img, chw, err);
        if (!rc)
            rc = each(ctx, chw, err);
        basira_image_free(img);
        (*used)++;
    }
    if (!rc && *used == 0)
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("%s has no data rows"), csv_path);
    free(chw);
    basira_csv_free(csv);
    return rc;
}

static basira_code calibrate_one(void *ctx, const float *chw, basira_error *err)
{
    return basira_classifier_calibrate_chw(ctx, chw, err);
}

/* int8: calibrate the classifier on the images of in->calibrate, then switch it to int8. */
static basira_code calibrate_int8(const eval_cli_input *in, basira_classifier *clf,
                                  basira_error *err)
{
    size_t used = 0;
    basira_code rc = eval_cli_calibration_images(in->images, in->calibrate, in->image_col,
                                                 &basira_classifier_info(clf)->preprocess,
                                                 calibrate_one, clf, &used, err);
    if (!rc)
        rc = basira_classifier_use_int8(clf, err);
    if (!rc && !in->quiet)
        fprintf(stderr, _("basira: int8 calibrated on %zu images\n"), used);
    return rc;
}

basira_code eval_cli_predict(const eval_cli_input *in, basira_model_info *info, char *sha256,
                             basira_eval_set **out, long *failed, basira_error *err)
{
    *out = NULL;
    *failed = 0;
    basira_csv *csv = NULL;
    basira_code rc = basira_csv_read_file(in->csv, &csv, err);
    if (rc)
        return rc;
    int label_col, image_col, group_col = -1;
    int by_col[MAX_BY];
    int want_tone = 0;
    if ((rc = need_column(csv, in->csv, in->label_col, &label_col, err)) ||
        (rc = need_column(csv, in->csv, in->image_col, &image_col, err)) ||
        (in->group_col && (rc = need_column(csv, in->csv, in->group_col, &group_col, err)))) {
        basira_csv_free(csv);
        return rc;
    }
    for (int b = 0; b < in->n_by; b++) {
        by_col[b] = -1;
        if (!strcmp(in->by[b], "skin_tone") && basira_csv_column(csv, "skin_tone") < 0) {
            want_tone = 1; /* measured on each photo (ITA) */
            continue;
        }
        if ((rc = need_column(csv, in->csv, in->by[b], &by_col[b], err))) {
            basira_csv_free(csv);
            return rc;
        }
    }
    size_t n = basira_csv_rows(csv);
    if (n == 0) {
        basira_csv_free(csv);
        return basira_error_set(err, BASIRA_E_FORMAT, _("%s has no data rows"), in->csv);
    }

    int threads = in->threads < 1 ? 1 : in->threads > MAX_THREADS ? MAX_THREADS : in->threads;
    if ((size_t)threads > n)
        threads = (int)n;
    basira_classifier *clf = NULL;
    int int8 = in->precision == BASIRA_PRECISION_INT8 && in->calibrate;
    /* No --precision: what basira triage runs (int8 for a model quantized as default). */
    rc = !in->precision_set
             ? basira_classifier_load(in->model, &clf, err)
             : basira_classifier_load_precision(
                   in->model, int8 ? BASIRA_PRECISION_FP32 : in->precision, &clf, err);
    if (!rc && int8)
        rc = calibrate_int8(in, clf, err);
    if (!rc && in->tta)
        rc = basira_classifier_set_tta(clf, in->tta, err);
    if (rc) {
        basira_classifier_free(clf);
        basira_csv_free(csv);
        return rc;
    }
    *info = *basira_classifier_info(clf);
    snprintf(sha256, 65, "%s", basira_classifier_sha256(clf));

    const char *codes[BASIRA_MODEL_MAX_CLASSES];
    int mal[BASIRA_MODEL_MAX_CLASSES];
    for (int c = 0; c < info->num_classes; c++) {
        codes[c] = info->classes[c].code;
        mal[c] = info->classes[c].malignant;
    }
    basira_eval_set *set = NULL;
    row_result *res = NULL;
    int *labels = malloc(sizeof(int) * n);
    if (!labels) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    if ((rc = basira_eval_set_new(info->num_classes, codes, mal, &set, err)))
        goto done;
    /* Every label must be a class of the model, checked before hours of prediction. */
    for (size_t i = 0; i < n; i++) {
        const char *lab = basira_csv_cell(csv, i, label_col);
        labels[i] = basira_eval_set_class_index(set, lab);
        if (labels[i] < 0) {
            char list[512] = "";
            size_t used = 0;
            for (int c = 0; c < info->num_classes && used < sizeof list; c++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "",
                                         codes[c]);
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("%s row %zu: label '%s' is not a class of the model (%s)"),
                                  in->csv, i + 2, lab, list);
            goto done;
        }
    }
    res = calloc(n, sizeof *res);
    if (!res) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    runner r = {.in = in,
                .csv = csv,
                .image_col = image_col,
                .want_tone = want_tone,
                .n = n,
                .res = res,
                .clf = clf};
    if (pthread_mutex_init(&r.lock, NULL)) {
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("cannot create a lock"));
        goto done;
    }
    if (pthread_mutex_init(&r.net_lock, NULL)) {
        pthread_mutex_destroy(&r.lock);
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("cannot create a lock"));
        goto done;
    }
    pthread_t tid[MAX_THREADS];
    int started = 1;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, worker_main, &r))
            break; /* fewer threads: the others take the work */
        started = t + 1;
    }
    worker_main(&r);
    for (int t = 1; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&r.lock);
    pthread_mutex_destroy(&r.net_lock);

    for (size_t i = 0; i < n && !rc; i++) {
        if (res[i].code) {
            fprintf(stderr, "basira: %s: %s [%s]\n", basira_csv_cell(csv, i, image_col),
                    res[i].message ? res[i].message : basira_strerror(res[i].code),
                    basira_code_name(res[i].code));
            (*failed)++;
            continue;
        }
        size_t idx;
        if ((rc = basira_eval_set_add(set, labels[i], res[i].probs, &idx, err)))
            break;
        for (int b = 0; b < in->n_by && !rc; b++) {
            const char *v;
            if (by_col[b] < 0)
                v = res[i].tone;
            else if (!strcmp(in->by[b], "age"))
                v = basira_eval_age_band(basira_csv_cell(csv, i, by_col[b]));
            else
                v = basira_csv_cell(csv, i, by_col[b]);
            rc = basira_eval_set_set_attr(set, idx, in->by[b], v, err);
        }
        if (!rc && group_col >= 0)
            rc = basira_eval_set_set_attr(set, idx, in->group_col,
                                          basira_csv_cell(csv, i, group_col), err);
    }
done:
    for (size_t i = 0; res && i < n; i++)
        free(res[i].message);
    free(res);
    free(labels);
    basira_classifier_free(clf);
    basira_csv_free(csv);
    if (rc) {
        basira_eval_set_free(set);
        return rc;
    }
    *out = set;
    return BASIRA_OK;
}

/* ---- the command ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira evaluate --model FILE --images DIR --csv FILE [options]\n"
                 "Measure a model on labelled images: accuracy, sensitivity, specificity, PPV,\n"
                 "NPV and AUC with 95%% confidence intervals, calibration (ECE), the triage\n"
                 "table at the model's thresholds, and breakdowns by patient group.\n\n"
                 "Options:\n"
                 "  --model FILE        model to evaluate (.safetensors)\n"
                 "  --images DIR        folder of the images\n"
                 "  --csv FILE          labels, e.g. the test.csv written by 'basira train'\n"
                 "  --label-col NAME    column of the true class (default dx)\n"
                 "  --image-col NAME    column of the image name (default image_id)\n"
                 "  --group-col NAME    also report per lesion, averaging its images (e.g.\n"
                 "                      lesion_id)\n"
                 "  --by LIST           break down by columns, e.g. sex,age,localization,\n"
                 "                      skin_tone (age in bands; skin tone measured on the photo)\n"
                 "  --json FILE         write every figure as JSON\n"
                 "  --report FILE       write the report as Markdown\n"
                 "  --reliability FILE  write the reliability diagram (SVG)\n"
                 "  --bootstrap N       bootstrap replicates (default 1000; 0 = none)\n"
                 "  --seed N            seed of the bootstrap (default 20261122)\n"
                 "  --threads N         images predicted in parallel (default 1)\n"
                 "  --precision P       the network in fp32, bf16, auto (bf16 where\n"
                 "                      the processor has bf16 instructions) or int8\n"
                 "                      (default: the model's own, int8 after basira quantize\n"
                 "                      made it its default, else fp32)\n"
                 "  --calibrate CSV     int8: images whose activation ranges set the scales\n"
                 "                      (e.g. the validation split; at most 512 are used)\n"
                 "  --tta N             average N views of each photo (1, 2, 4 or 8; 8 needs a\n"
                 "                      square input) instead of the model's own number\n"
                 "  -h, --help          show this help\n\n"
                 "Exit status: 0 every image was evaluated, 1 some image failed or the data is\n"
                 "invalid, 2 usage error.\n"));
}

static basira_code write_json(const char *path, const json_t *j, basira_error *err)
{
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                strerror(errno ? errno : EIO));
    return BASIRA_OK;
}

/* foo.svg -> foo-malignant.svg */
static void derived_name(const char *path, const char *suffix, char *out, size_t sz)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        dot = path + strlen(path);
    snprintf(out, sz, "%.*s-%s%s", (int)(dot - path), path, suffix, dot);
}

static int run_evaluate(int argc, char **argv)
{
    static const struct option opts[] = {
        EVAL_CLI_INPUT_OPTIONS,
        {"group-col", required_argument, NULL, 'g'},
        {"by", required_argument, NULL, 'b'},
        {"json", required_argument, NULL, 'j'},
        {"report", required_argument, NULL, 'r'},
        {"reliability", required_argument, NULL, 'R'},
        {"bootstrap", required_argument, NULL, 'B'},
        {"seed", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"precision", required_argument, NULL, 'p'},
        {"calibrate", required_argument, NULL, 'C'},
        {"tta", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    eval_cli_input in = {.label_col = "dx", .image_col = "image_id", .threads = 1};
    const char *json_out = NULL, *report_out = NULL, *svg_out = NULL;
    char by_buf[1024] = "";
    const char *by[MAX_BY];
    long bootstrap = 1000, seed = 20261122;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'g':
            in.group_col = optarg;
            break;
        case 'b':
            snprintf(by_buf, sizeof by_buf, "%s", optarg);
            in.n_by = eval_cli_split_list(by_buf, by, MAX_BY);
            if (in.n_by < 0) {
                fprintf(stderr, _("basira evaluate: --by takes at most %d columns\n"), MAX_BY);
                return BASIRA_EXIT_USAGE;
            }
            in.by = by;
            break;
        case 'j':
            json_out = optarg;
            break;
        case 'r':
            report_out = optarg;
            break;
        case 'R':
            svg_out = optarg;
            break;
        case 'B':
            if (basira_cli_parse_long("--bootstrap", optarg, 0, 100000, &bootstrap))
                return BASIRA_EXIT_USAGE;
            break;
        case 's':
            if (basira_cli_parse_long("--seed", optarg, 0, 2147483647L, &seed))
                return BASIRA_EXIT_USAGE;
            break;
        case 'q':
            in.quiet = 1;
            break;
        case 'C':
            in.calibrate = optarg;
            break;
        case 'p':
            if (!strcmp(optarg, "fp32") || !strcmp(optarg, "bf16") || !strcmp(optarg, "auto") ||
                !strcmp(optarg, "int8")) {
                in.precision = !strcmp(optarg, "fp32")   ? BASIRA_PRECISION_FP32
                               : !strcmp(optarg, "bf16") ? BASIRA_PRECISION_BF16
                               : !strcmp(optarg, "int8") ? BASIRA_PRECISION_INT8
                                                         : BASIRA_PRECISION_AUTO;
                in.precision_set = 1;
                break;
            }
            fprintf(stderr, _("basira: invalid value for %s: '%s'\n"), "--precision", optarg);
            return BASIRA_EXIT_USAGE;
        case 'T':
            if (eval_cli_parse_tta(optarg, &in.tta))
                return BASIRA_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default: {
            int status = eval_cli_input_option(&in, "evaluate", o, argv, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (basira_cli_no_operands("evaluate", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!in.model || !in.images || !in.csv) {
        fprintf(stderr, _("basira evaluate: --model, --images and --csv are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    /* int8 without --calibrate: the ranges saved in the model file (refused when it has none). */
    if (in.calibrate && in.precision != BASIRA_PRECISION_INT8) {
        fprintf(stderr, _("basira evaluate: --precision int8 and --calibrate CSV go together\n"));
        return BASIRA_EXIT_USAGE;
    }

    basira_error err;
    basira_error_clear(&err);
    basira_model_info *info = malloc(sizeof *info);
    if (!info) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        basira_cli_report(NULL, &err);
        return BASIRA_EXIT_FAILED;
    }
    char sha[65] = "";
    basira_eval_set *set = NULL, *lesions = NULL;
    json_t *doc = NULL, *img_rep = NULL, *les_rep = NULL;
    long failed = 0;
    int status = BASIRA_EXIT_FAILED;
    if (eval_cli_predict(&in, info, sha, &set, &failed, &err))
        goto fail;

    basira_eval_options eo;
    basira_eval_options_default(&eo);
    eo.medium_threshold = info->threshold_medium;
    eo.high_threshold = info->threshold_high;
    eo.bootstrap = (int)bootstrap;
    eo.seed = (uint64_t)seed;
    eo.breakdowns = in.by;
    eo.n_breakdowns = in.n_by;
    if (basira_eval_report(set, &eo, &img_rep, &err))
        goto fail;
    if (in.group_col) {
        if (basira_eval_set_group(set, in.group_col, &lesions, &err) ||
            basira_eval_report(lesions, &eo, &les_rep, &err))
            goto fail;
        json_object_set_new(les_rep, "unit", json_string("lesions"));
    }
    doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:f, s:{s:f, s:f}, s:i}, s:{s:s, s:s, s:s, s:I, s:I, "
                    "s:I}}",
                    "model", "file", in.model, "name", info->name, "version", info->version,
                    "sha256", sha, "temperature", info->temperature, "thresholds", "high",
                    info->threshold_high, "medium", info->threshold_medium, "tta", info->tta,
                    "data", "csv", in.csv, "images", in.images, "label_col", in.label_col, "rows",
                    (json_int_t)(basira_eval_set_size(set) + (size_t)failed), "evaluated",
                    (json_int_t)basira_eval_set_size(set), "failed", (json_int_t)failed);
    if (!doc) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    json_object_set_new(img_rep, "unit", json_string("images"));
    json_object_set(doc, "image_level", img_rep);
    if (les_rep)
        json_object_set(doc, "lesion_level", les_rep);

    printf(_("Model %s %s (SHA-256 %.12s), %s\n"), info->name, info->version, sha, in.csv);
    if (failed)
        printf(_("%ld images could not be evaluated and are left out (see the messages above)\n"),
               failed);
    printf("\n== %s ==\n", _("Image level"));
    basira_eval_report_print(img_rep, 0, stdout, NULL);
    if (les_rep) {
        printf("\n== %s (%s) ==\n", _("Lesion level"), in.group_col);
        basira_eval_report_print(les_rep, 0, stdout, NULL);
    }
    printf("%s\n", basira_disclaimer());

    if (json_out && write_json(json_out, doc, &err))
        goto fail;
    if (report_out) {
        FILE *f = fopen(report_out, "w");
        if (!f) {
            basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), report_out,
                             strerror(errno));
            goto fail;
        }
        fprintf(f, "%s %s %s (SHA-256 `%s`)\n\n", _("Model"), info->name, info->version, sha);
        basira_code rc = basira_eval_report_print(img_rep, 1, f, &err);
        if (!rc && les_rep) {
            fprintf(f, "\n# %s (%s)\n\n", _("Lesion level"), in.group_col);
            rc = basira_eval_report_print(les_rep, 1, f, &err);
        }
        if (fclose(f) && !rc)
            rc = basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), report_out,
                                  strerror(errno));
        if (rc)
            goto fail;
    }
    if (svg_out) {
        const json_t *cal = json_object_get(img_rep, "calibration");
        if (basira_eval_reliability_svg(json_object_get(cal, "top_class"),
                                        _("Reliability: top-class confidence"), svg_out, &err))
            goto fail;
        if (json_object_get(cal, "malignant")) {
            char path[4096];
            derived_name(svg_out, "malignant", path, sizeof path);
            if (basira_eval_reliability_svg(json_object_get(cal, "malignant"),
                                            _("Reliability: malignant probability"), path, &err))
                goto fail;
        }
    }
    status = failed ? BASIRA_EXIT_FAILED : BASIRA_EXIT_OK;
    goto out;
fail:
    basira_cli_report(NULL, &err);
out:
    json_decref(doc);
    json_decref(img_rep);
    json_decref(les_rep);
    basira_eval_set_free(set);
    basira_eval_set_free(lesions);
    free(info);
    return status;
}

const basira_command basira_cmd_evaluate = {
    "evaluate",
    /* xgettext:no-c-format */
    N_("measure a model on labelled images, with 95% confidence intervals"),
    run_evaluate,
    usage,
};
