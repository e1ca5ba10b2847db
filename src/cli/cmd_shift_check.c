/*
 * cmd_shift_check.c - `basira shift-check`: how much a model loses on photos from
 * another camera or clinic, simulated on labelled photos it did not train on.
 *
 * Each shift of src/train/shift.c (squashed aspect, blur, JPEG quality 40, a warm
 * colour cast, a closer framing, a rotation) is applied, deterministically, to every
 * photo of the CSV after decoding; the model scores the shifted copy and the figures
 * are compared with those on the photos as they are. Nothing is written to the image
 * folder: the shifted copy exists only in memory.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "basira/image.h"
#include "basira/model.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira shift-check --model FILE --images DIR --csv FILE [options]\n"
                 "Score a model on shifted copies of labelled photos (other cameras and "
                 "clinics) and report the drop per shift.\n\n"
                 "  --model FILE        the model (.safetensors)\n"
                 "  --images DIR        folder of the photos\n"
                 "  --csv FILE          labels, one row per photo (e.g. a validation part)\n"
                 "  --label-col NAME    (dx)   --image-col NAME (image_id)\n"
                 "  --shifts LIST       any of squash,blur,jpeg,colour,scale,rotate,upright (all)\n"
                 "  --threads N         decoding threads (1)\n"
                 "  --json FILE         write the figures as JSON\n"
                 "  --report FILE       write them as a Markdown table\n"
                 "  -h, --help          show this help\n"));
}

typedef struct shift_row {
    int kind;
    double v[7]; /* accuracy, balanced accuracy, mean AUC, AUC malignant, recall mel,
                    sensitivity, specificity (at the model's medium threshold) */
    size_t n;
} shift_row;

static const char *const keys[7] = {"accuracy",      "balanced_accuracy", "auc_mean_ovr",
                                    "auc_malignant", "recall_mel",        "sensitivity",
                                    "specificity"};

static basira_code apply_shift(const basira_image *img, void *ctx, basira_image **out,
                               basira_error *err)
{
    int kind = *(const int *)ctx, ow, oh;
    uint8_t *px = NULL;
    basira_code rc = basira_shift_apply(kind, basira_image_pixels(img), basira_image_width(img),
                                        basira_image_height(img), &px, &ow, &oh, err);
    if (!rc)
        rc = basira_image_from_rgb(px, ow, oh, out, err);
    free(px);
    return rc;
}

static double value_of(const json_t *rep, const char *key)
{
    const json_t *v = json_object_get(json_object_get(rep, key), "value");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static basira_code score(eval_cli_input *in, int kind, basira_model_info *info, shift_row *row,
                         basira_error *err)
{
    in->transform = kind == BASIRA_SHIFT_NONE ? NULL : apply_shift;
    in->transform_ctx = &kind;
    char sha[65];
    long failed = 0;
    basira_eval_set *set = NULL;
    json_t *rep = NULL;
    basira_code rc = eval_cli_predict(in, info, sha, &set, &failed, err);
    basira_eval_options eo;
    basira_eval_options_default(&eo);
    eo.bootstrap = 0;
    if (!rc)
        rc = basira_eval_report(set, &eo, &rep, err);
    if (!rc) {
        row->kind = kind;
        row->n = basira_eval_set_size(set);
        row->v[0] = value_of(rep, "accuracy");
        row->v[1] = value_of(rep, "balanced_accuracy");
        row->v[2] = value_of(rep, "auc_mean_ovr");
        row->v[3] = value_of(rep, "auc_malignant");
        row->v[4] = NAN;
        size_t i;
        json_t *pc;
        json_array_foreach(json_object_get(rep, "per_class"), i, pc)
        {
            if (!strcmp(json_string_value(json_object_get(pc, "code")), "mel"))
                row->v[4] = value_of(pc, "sensitivity");
        }
        long tp = 0, pos = 0, tn = 0, neg = 0;
        for (size_t s = 0; s < row->n; s++) {
            int label;
            basira_eval_set_probs(set, s, &label);
            int high = basira_eval_set_p_malignant(set, s) >= info->threshold_medium;
            if (info->classes[label].malignant) {
                pos++;
                tp += high;
            } else {
                neg++;
                tn += !high;
            }
        }
        row->v[5] = pos ? (double)tp / (double)pos : NAN;
        row->v[6] = neg ? (double)tn / (double)neg : NAN;
    }
    json_decref(rep);
    basira_eval_set_free(set);
    in->transform = NULL;
    return rc;
}

static basira_code write_outputs(const shift_row *rows, int n, const char *json_path,
                                 const char *md_path, const char *model, basira_error *err)
{
    if (json_path) {
        json_t *arr = json_array();
        for (int r = 0; r < n; r++) {
            json_t *o = json_pack("{s:s, s:I}", "shift", basira_shift_name(rows[r].kind), "n",
                                  (json_int_t)rows[r].n);
            for (int m = 0; m < 7; m++) {
                json_object_set_new(o, keys[m],
                                    isfinite(rows[r].v[m]) ? json_real(rows[r].v[m]) : json_null());
                double d = rows[r].v[m] - rows[0].v[m];
                char dk[64];
                snprintf(dk, sizeof dk, "drop_%s", keys[m]);
                json_object_set_new(o, dk, isfinite(d) ? json_real(-d) : json_null());
            }
            json_array_append_new(arr, o);
        }
        json_t *doc = json_pack("{s:s, s:o}", "model", model, "shifts", arr);
        int bad = json_dump_file(doc, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        json_decref(doc);
        if (bad)
            return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), json_path,
                                    strerror(errno ? errno : EIO));
    }
    FILE *f = md_path ? fopen(md_path, "w") : stdout;
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), md_path,
                                strerror(errno));
    fprintf(f, "| %s | n | %s | %s | %s | %s | %s | %s | %s |\n", _("shift"), _("accuracy"),
            _("balanced accuracy"), _("mean AUC"), _("AUC malignant"), _("recall mel"),
            _("sensitivity"), _("specificity"));
    fputs("|---|---|---|---|---|---|---|---|---|\n", f);
    for (int r = 0; r < n; r++) {
        fprintf(f, "| %s | %zu |", basira_shift_name(rows[r].kind), rows[r].n);
        for (int m = 0; m < 7; m++) {
            if (r == 0)
                fprintf(f, " %.3f |", rows[r].v[m]);
            else
                fprintf(f, " %.3f (%+.3f) |", rows[r].v[m], rows[r].v[m] - rows[0].v[m]);
        }
        fputc('\n', f);
    }
    if (md_path && (ferror(f) | fclose(f)))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), md_path,
                                strerror(errno ? errno : EIO));
    return BASIRA_OK;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        EVAL_CLI_INPUT_OPTIONS,
        {"shifts", required_argument, NULL, 's'},
        {"json", required_argument, NULL, 'j'},
        {"report", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    eval_cli_input in = {.label_col = "dx", .image_col = "image_id", .threads = 1, .quiet = 1};
    const char *json_path = NULL, *md_path = NULL, *shifts = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            shifts = optarg;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'r':
            md_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default: {
            int status = eval_cli_input_option(&in, "shift-check", o, argv, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (basira_cli_no_operands("shift-check", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!in.model || !in.images || !in.csv) {
        fprintf(stderr, _("basira: shift-check needs --model, --images and --csv\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    int kinds[BASIRA_SHIFT_COUNT], nk = 0;
    kinds[nk++] = BASIRA_SHIFT_NONE;
    if (shifts) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", shifts);
        const char *items[BASIRA_SHIFT_COUNT];
        int n = eval_cli_split_list(buf, items, BASIRA_SHIFT_COUNT - 1);
        for (int i = 0; i < n; i++) {
            int k = basira_shift_from_name(items[i]);
            if (k <= BASIRA_SHIFT_NONE) {
                fprintf(stderr,
                        _("basira: unknown shift '%s' (expected squash, blur, jpeg, "
                          "colour, scale, rotate or upright)\n"),
                        items[i]);
                return BASIRA_EXIT_USAGE;
            }
            kinds[nk++] = k;
        }
        if (n <= 0) {
            fprintf(stderr, _("basira: --shifts needs at least one shift\n"));
            return BASIRA_EXIT_USAGE;
        }
    } else {
        for (int k = BASIRA_SHIFT_NONE + 1; k < BASIRA_SHIFT_COUNT; k++)
            kinds[nk++] = k;
    }
    basira_error err;
    basira_error_clear(&err);
    basira_model_info *info = malloc(sizeof *info);
    shift_row rows[BASIRA_SHIFT_COUNT];
    basira_code rc = info ? BASIRA_OK : basira_error_set(&err, BASIRA_E_NOMEM, NULL);
    for (int i = 0; !rc && i < nk; i++) {
        rc = score(&in, kinds[i], info, &rows[i], &err);
        if (!rc)
            fprintf(stderr, _("basira: shift %s scored\n"), basira_shift_name(kinds[i]));
    }
    if (!rc)
        rc = write_outputs(rows, nk, json_path, md_path, in.model, &err);
    free(info);
    if (rc) {
        basira_cli_report(_("shift check failed"), &err);
        return BASIRA_EXIT_FAILED;
    }
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_shift_check = {
    "shift-check", N_("score a model on shifted copies of photos (other cameras)"), run, usage};
