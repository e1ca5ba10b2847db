/*
 * cmd_quantize.c - `basira quantize`: an int8 variant of a classifier, measured before use.
 *
 * Post-training quantisation (basira_net_calibrate, include/basira/nn.h): the range of
 * every tensor between fused layers is recorded on the --calibrate images (the
 * validation split), and basira_net_save() keeps the ranges in the model file. Then the
 * fp32 model and the int8 file score the same --csv images (the test split) through the
 * path of `basira evaluate`. Issue 17's rule decides: the int8 variant becomes the model's
 * default ("int8": {"default": true}, which basira_classifier_load() and so `basira
 * triage` follow) only when its accuracy and malignant AUC stay within --max-accuracy-drop
 * and --max-auc-drop of fp32's. Either way the figures are written into the model's
 * metadata and the --json report, for its model card. The weights are never changed: the
 * fp32 network of the new file is the original's, bit for bit.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "basira/fs.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira quantize --model FILE --images DIR --calibrate CSV --csv CSV "
                 "--out FILE [options]\n"
                 "Make the int8 variant of a classifier and measure it against fp32.\n\n"
                 "  --model FILE            the fp32 model\n"
                 "  --images DIR            folder of the images of both CSV files\n"
                 "  --calibrate CSV         images whose activation ranges set the int8 scales "
                 "(e.g. the validation split; at most 512 are used)\n"
                 "  --csv CSV               labelled images both precisions are scored on "
                 "(e.g. the test split)\n"
                 "  --out FILE              the model with its int8 calibration and the "
                 "measurement\n"
                 "  --label-col NAME        column of the true class (dx)\n"
                 "  --image-col NAME        column of the image name (image_id)\n"
                 "  --max-accuracy-drop X   int8 becomes the default only if its accuracy is "
                 "at most X below fp32's (0.005)\n"
                 "  --max-auc-drop X        and its malignant AUC at most X below (0.005)\n"
                 "  --json FILE             write the measurement as JSON\n"
                 "  --threads N             images predicted in parallel (1)\n"
                 "  --quiet                 no progress on stderr\n"
                 "  -h, --help              show this help\n\n"
                 "Exit status: 0 written (whether int8 became the default or not), 1 failed, 2 "
                 "usage error.\n"));
}

typedef struct quant_args {
    eval_cli_input in;
    const char *calibrate, *out, *json;
    double max_acc_drop, max_auc_drop;
} quant_args;

/* Accuracy and malignant AUC of in->model at in's precision, how many were scored, and the
 * model's metadata into info. */
static basira_code score(const eval_cli_input *in, basira_model_info *info, double *acc,
                         double *auc, size_t *n, char *sha, basira_error *err)
{
    basira_eval_set *set = NULL;
    json_t *rep = NULL;
    long failed = 0;
    basira_code rc = eval_cli_predict(in, info, sha, &set, &failed, err);
    /* The two precisions must see the same images: one that cannot be read stops it. */
    if (!rc && failed)
        rc = basira_error_set(err, BASIRA_E_FORMAT,
                              _("%ld images of %s could not be read: both precisions must "
                                "score the same images"),
                              failed, in->csv);
    basira_eval_options eo;
    basira_eval_options_default(&eo);
    eo.bootstrap = 0;
    if (!rc)
        rc = basira_eval_report(set, &eo, &rep, err);
    if (!rc) {
        const json_t *a = json_object_get(json_object_get(rep, "accuracy"), "value");
        const json_t *u = json_object_get(json_object_get(rep, "auc_malignant"), "value");
        *acc = json_is_number(a) ? json_number_value(a) : NAN;
        *auc = json_is_number(u) ? json_number_value(u) : NAN;
        *n = basira_eval_set_size(set);
    }
    json_decref(rep);
    basira_eval_set_free(set);
    return rc;
}

/* The nets of the model: one, or an ensemble's members (each gets its own ranges). */
typedef struct quant_nets {
    basira_net *net[BASIRA_NET_MAX_MEMBERS];
    int n;
} quant_nets;

static basira_code calibrate_net(void *ctx, const float *chw, basira_error *err)
{
    quant_nets *q = ctx;
    basira_code rc = BASIRA_OK;
    for (int i = 0; !rc && i < q->n; i++)
        rc = basira_net_calibrate(q->net[i], chw, 1, err);
    return rc;
}

/* The model's "basira" document with "int8" set to q (stolen), as the net's metadata. */
static basira_code set_int8_block(basira_net *net, json_t *q, basira_error *err)
{
    json_t *meta = basira_net_metadata(net);
    const char *text = json_string_value(json_object_get(meta, "basira"));
    json_t *doc = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    char *out = NULL;
    if (doc && q && !json_object_set_new(doc, "int8", q)) {
        q = NULL;
        out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    }
    json_decref(q);
    json_decref(doc);
    basira_code rc = BASIRA_OK;
    if (!out || json_object_set_new(meta, "basira", json_string(out)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    free(out);
    return rc;
}

static basira_code quantize(const quant_args *a, json_t **report, basira_error *err)
{
    /* 1. fp32, the reference, through basira evaluate's path. */
    eval_cli_input in = a->in;
    in.precision = BASIRA_PRECISION_FP32;
    in.precision_set = 1;
    double acc32, auc32, acc8, auc8;
    size_t n32, n8, used = 0;
    char sha32[65], sha8[65];
    basira_model_info *info = malloc(sizeof *info);
    if (!info)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = score(&in, info, &acc32, &auc32, &n32, sha32, err);

    /* 2. The ranges, on the calibration images, in the fp32 plan (the scoring above has
     * checked the model's metadata; info has its preprocessing). */
    quant_nets qn = {{NULL}, 0};
    basira_net *net = NULL;
    if (!rc)
        rc = basira_net_load_ensemble(a->in.model, qn.net, &qn.n, err);
    net = qn.net[0];
    for (int i = 0; !rc && i < qn.n; i++)
        rc = basira_net_prepare_inference(qn.net[i], 1, err);
    if (!rc)
        rc = eval_cli_calibration_images(a->in.images, a->calibrate, a->in.image_col,
                                         &info->preprocess, calibrate_net, &qn, &used, err);
    if (!rc && !a->in.quiet)
        fprintf(stderr, _("basira: int8 calibrated on %zu images\n"), used);

    /* 3. Written (not the default, no int8 figures yet), then scored in int8 from the file
     * itself. */
    json_t *q = NULL;
    if (!rc) {
        q = json_pack("{s:b, s:I, s:I, s:f, s:f, s:f, s:f, s:s}", "default", 0,
                      "calibration_images", (json_int_t)used, "evaluated", (json_int_t)n32,
                      "accuracy_fp32", acc32, "auc_malignant_fp32", auc32, "max_accuracy_drop",
                      a->max_acc_drop, "max_auc_drop", a->max_auc_drop, "data", a->in.csv);
        rc = q ? set_int8_block(net, json_incref(q), err)
               : basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    if (!rc)
        rc = basira_net_save_ensemble((const basira_net *const *)qn.net, qn.n, a->out, err);
    if (!rc) {
        in.model = a->out;
        in.precision = BASIRA_PRECISION_INT8;
        rc = score(&in, info, &acc8, &auc8, &n8, sha8, err);
    }
    if (!rc && n8 != n32)
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("%s: %zu images scored in fp32, %zu in int8"),
                              a->in.csv, n32, n8);
    /* 4. The rule, then the final file. A NaN figure (e.g. no malignant image) never passes. */
    int ok = !rc && acc8 >= acc32 - a->max_acc_drop && auc8 >= auc32 - a->max_auc_drop;
    if (!rc) {
        json_object_set_new(q, "default", json_boolean(ok));
        json_object_set_new(q, "accuracy_int8", json_real(acc8));
        json_object_set_new(q, "auc_malignant_int8", json_real(auc8));
        if (!basira_nn_int8_fast())
            json_object_set_new(q, "note",
                                json_string("measured without 8-bit dot-product instructions"));
        rc = set_int8_block(net, json_deep_copy(q), err);
    }
    if (!rc)
        rc = basira_net_save_ensemble((const basira_net *const *)qn.net, qn.n, a->out, err);
    if (!rc) {
        json_object_set_new(q, "model", json_string(a->in.model));
        json_object_set_new(q, "model_sha256", json_string(sha32));
        json_object_set_new(q, "out", json_string(a->out));
        *report = json_incref(q);
    }
    json_decref(q);
    basira_net_free_ensemble(qn.net, qn.n);
    free(info);
    return rc;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        EVAL_CLI_INPUT_OPTIONS,
        {"calibrate", required_argument, NULL, 'C'},
        {"out", required_argument, NULL, 'o'},
        {"json", required_argument, NULL, 'j'},
        {"max-accuracy-drop", required_argument, NULL, 'A'},
        {"max-auc-drop", required_argument, NULL, 'U'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    quant_args a = {.in = {.label_col = "dx", .image_col = "image_id", .threads = 1},
                    .max_acc_drop = 0.005,
                    .max_auc_drop = 0.005};
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'C':
            a.calibrate = optarg;
            break;
        case 'o':
            a.out = optarg;
            break;
        case 'j':
            a.json = optarg;
            break;
        case 'A':
            if (basira_cli_parse_double("--max-accuracy-drop", optarg, 0, 1, &a.max_acc_drop))
                return BASIRA_EXIT_USAGE;
            break;
        case 'U':
            if (basira_cli_parse_double("--max-auc-drop", optarg, 0, 1, &a.max_auc_drop))
                return BASIRA_EXIT_USAGE;
            break;
        case 'q':
            a.in.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default: {
            int status = eval_cli_input_option(&a.in, "quantize", o, argv, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (basira_cli_no_operands("quantize", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!a.in.model || !a.in.images || !a.in.csv || !a.calibrate || !a.out) {
        fprintf(stderr, _("basira quantize: --model, --images, --calibrate, --csv and --out are "
                          "required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_error err;
    basira_error_clear(&err);
    json_t *rep = NULL;
    basira_code rc = quantize(&a, &rep, &err);
    if (!rc && a.json && json_dump_file(rep, a.json, JSON_INDENT(2) | JSON_REAL_PRECISION(10)))
        rc = basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), a.json,
                              strerror(errno ? errno : EIO));
    if (rc) {
        json_decref(rep);
        return basira_cli_failed("quantize", &err);
    }
    int dflt = json_is_true(json_object_get(rep, "default"));
    printf(_("fp32: accuracy %.4f, malignant AUC %.4f; int8: accuracy %.4f, malignant AUC %.4f "
             "(%lld images)\n"),
           json_number_value(json_object_get(rep, "accuracy_fp32")),
           json_number_value(json_object_get(rep, "auc_malignant_fp32")),
           json_number_value(json_object_get(rep, "accuracy_int8")),
           json_number_value(json_object_get(rep, "auc_malignant_int8")),
           (long long)json_integer_value(json_object_get(rep, "evaluated")));
    printf(dflt ? _("%s: int8 is its default (within the tolerances)\n")
                : _("%s: int8 stays off by default (outside the tolerances); basira "
                    "evaluate --precision int8 still runs it\n"),
           a.out);
    json_decref(rep);
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_quantize = {
    "quantize", N_("make and measure the int8 variant of a classifier"), run, usage};
