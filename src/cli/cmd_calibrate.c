/*
 * cmd_calibrate.c - `basira calibrate`: fit a model's temperature and triage
 * thresholds on validation images and write a calibrated copy of the model.
 *
 * Steps, and why:
 *   1. predict the validation rows with the model as it is;
 *   2. fit the temperature T' minimising the NLL of softmax(log p / T'); the model's
 *      new temperature is T0 x T' (softmax is shift-invariant, so log-probabilities
 *      at T0 are logits / T0 up to a constant);
 *   3. write the model with that temperature and predict the validation rows AGAIN
 *      with the written file: with test-time augmentation the averaged probabilities
 *      are not exactly a temperature change of step 1's, and re-predicting also
 *      proves the written file loads and works. "ECE after" and the thresholds come
 *      from these real probabilities, not from an approximation;
 *   with --malignant-bias, step 2 fits T' and a bias together on the binary likelihood
 *      of P(malignant) (basira_fit_temperature_bias) instead of the top class's;
 *   3b. with --malignant-bias: fit the bias b' on the log-odds of P(malignant) of these
 *      probabilities against the malignant / benign truth (binary NLL); the model's
 *      bias becomes b0 + b'. The classifier applies it after averaging the views, so
 *      shifting the re-predicted probabilities by b' is exactly what the written
 *      model gives: no third prediction is needed;
 *   3c. with --malignant-slope: after the temperature (step 2 as without it), fit a
 *      slope and a bias on the log-odds of P(malignant) of these probabilities (Platt
 *      scaling), composed with the model's own; again exactly what the written model
 *      gives. The temperature calibrates the conditions; the slope and bias P(malignant),
 *      which the triage and its thresholds use;
 *   with --storage f16 the file of step 3 holds the weights in half precision, and
 *      everything after it (ECE after, the thresholds) is of those weights;
 *   4. choose the thresholds (src/eval: medium keeps >= target sensitivity, high
 *      keeps >= the wanted specificity) and store them, with a calibration record
 *      (ECE/NLL before and after, the operating point with its Wilson intervals), in
 *      the model's "basira" metadata.
 * The thresholds are fitted on the validation set: their sensitivity there is by
 * construction >= the target; only `basira evaluate` on a separate test set says
 * what to expect in use.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/eval.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "basira/train.h"
#include "basira/triage.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"

/* P(malignant) of every row of s and whether its true class is malignant (malloc'd). */
static basira_code malignant_arrays(const basira_eval_set *s, const basira_model_info *info,
                                    double **pm_out, int **ism_out, basira_error *err)
{
    size_t n = basira_eval_set_size(s);
    double *pm = malloc(sizeof(double) * (n ? n : 1));
    int *ism = malloc(sizeof(int) * (n ? n : 1));
    if (!pm || !ism) {
        free(pm);
        free(ism);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        int lab;
        basira_eval_set_probs(s, i, &lab);
        pm[i] = basira_eval_set_p_malignant(s, i);
        ism[i] = info->classes[lab].malignant;
    }
    *pm_out = pm;
    *ism_out = ism;
    return BASIRA_OK;
}

/*
 * Step 3b with --malignant-slope: Platt scaling (a', b') of P(malignant) of s, predicted by
 * the model whose slope and bias are a0, b0. Composed with them: the model's slope becomes
 * a' a0 and its bias a' b0 + b', within the format's bounds; s is mapped by exactly what the
 * written model will give (the bounded parameters, relative to a0, b0).
 */
static basira_code fit_malignant_platt(basira_eval_set *s, const basira_model_info *info,
                                       double *slope, double *bias, basira_error *err)
{
    size_t n = basira_eval_set_size(s);
    double *pm = NULL;
    int *ism = NULL;
    basira_code rc = malignant_arrays(s, info, &pm, &ism, err);
    double a = 1.0, b = 0.0;
    if (!rc)
        rc = basira_fit_malignant_platt(pm, ism, n, &a, &b, NULL, NULL, err);
    if (!rc) {
        double a0 = info->malignant_slope, b0 = info->malignant_bias;
        double ta = fmin(BASIRA_MODEL_MAX_SLOPE, fmax(BASIRA_MODEL_MIN_SLOPE, a * a0));
        double tb = fmin(BASIRA_MODEL_MAX_BIAS, fmax(-BASIRA_MODEL_MAX_BIAS, a * b0 + b));
        double ra = ta / a0;
        rc = basira_eval_set_apply_malignant_map(s, ra, tb - ra * b0, err);
        *slope = ta;
        *bias = tb;
    }
    free(pm);
    free(ism);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            _("Usage: basira calibrate --model IN --images DIR --csv VAL.csv --out OUT [options]\n"
              "Fit the model's temperature (calibrated probabilities) and its triage\n"
              "thresholds on validation images, and write a copy of the model with them.\n\n"
              "Options:\n"
              "  --model FILE               model to calibrate\n"
              "  --images DIR               folder of the images\n"
              "  --csv FILE                 validation labels (e.g. val.csv of 'basira train')\n"
              "  --out FILE                 calibrated model to write (.safetensors)\n"
              "  --target-sensitivity X     share of malignant lesions at medium or high\n"
              "                             (default 0.95)\n"
              "  --high-specificity X       share of benign lesions kept out of high\n"
              "                             (default 0.90)\n"
              "  --conservative             require the 95%% lower bound of the sensitivity\n"
              "                             to reach the target, not only the estimate\n"
              "  --label-col NAME           column of the true class (default dx)\n"
              "  --image-col NAME           column of the image name (default image_id)\n"
              "  --classes FILE             class list (names, partitions) to store instead of\n"
              "                             the model's: same codes, order and malignant flags\n"
              "  --json FILE                write the calibration report as JSON\n"
              "  --threads N                images predicted in parallel (default 1)\n"
              "  -h, --help                 show this help\n\n"
              "Exit status: 0 the model was written, 1 failure, 2 usage error.\n"));
    fprintf(f, _("\nRecalibration at a clinic (basira recalibrate):\n"
                 "  --malignant-bias           also fit a bias on the log-odds of P(malignant)\n"
                 "                             (a population or a camera that shifted)\n"));
    fprintf(f, _("  --malignant-slope          after the temperature, fit a slope and a bias on\n"
                 "                             the log-odds of P(malignant) (Platt scaling): the\n"
                 "                             risk calibrated when one temperature cannot do it\n"
                 "                             for the conditions and P(malignant) at once\n"));
    fprintf(f, _("\nStorage:\n"
                 "  --storage f16|f32          the weights in half precision (half the file; each\n"
                 "                             rounded to about 3 digits, the thresholds fitted\n"
                 "                             with them) or in single (default: the model's)\n"));
    fprintf(f, _("\nTest-time augmentation and version:\n"
                 "  --tta N                    average N views of each photo (1, 2, 4 or 8; 8\n"
                 "                             needs a square input): fitted with them, stored\n"
                 "                             in the model and used by basira triage\n"
                 "  --model-version V          the version to write (default: the model's)\n"));
    fprintf(
        f,
        _("\nPrimary-care rule (clinical-photo models):\n"
          "  --non-neoplastic X         P(non-neoplastic) from which a low result goes to\n"
          "                             primary care, refer if not better (stored as\n"
          "                             thresholds.non_neoplastic; default: not stated, 0.8)\n"));
}

static double jnum(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *prop_json(const basira_proportion *p)
{
    json_t *j = json_object();
    json_object_set_new(j, "value", isfinite(p->value) ? json_real(p->value) : json_null());
    json_object_set_new(j, "lo", isfinite(p->lo) ? json_real(p->lo) : json_null());
    json_object_set_new(j, "hi", isfinite(p->hi) ? json_real(p->hi) : json_null());
    json_object_set_new(j, "k", json_integer(p->k));
    json_object_set_new(j, "n", json_integer(p->n));
    return j;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/*
 * --classes: store the class list of path (names in three languages, partitions) in doc
 * instead of the model's. Refused unless it has the same codes in the same order with the
 * same malignant flags, so the network's outputs, P(malignant) and the thresholds keep
 * their meaning.
 */
static basira_code replace_classes(json_t *doc, const char *path, basira_error *err)
{
    basira_classes *cl = malloc(sizeof *cl);
    if (!cl)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = basira_classes_load(path, cl, err);
    const json_t *have = json_object_get(doc, "classes");
    for (int i = 0; !rc && i <= cl->n; i++) {
        const json_t *c = json_array_get(have, (size_t)i);
        const char *code = json_string_value(json_object_get(c, "code"));
        if (i == cl->n ? c != NULL
                       : !code || strcmp(code, cl->c[i].code) ||
                             json_is_true(json_object_get(c, "malignant")) != cl->c[i].malignant)
            rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                  _("--classes %s: class %d differs from the model's (the codes, "
                                    "their order and the malignant flags must be the same)"),
                                  path, i + 1);
    }
    json_t *j = rc ? NULL : basira_classes_to_json(cl);
    if (!rc && (!j || json_object_set_new(doc, "classes", j)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    free(cl);
    return rc;
}

/* Replace the "basira" metadata of the model (its nets: one, or an ensemble's members) by
 * doc, save to OUT. */
static basira_code save_with_meta(basira_net **nets, int n, const json_t *doc, const char *out,
                                  basira_error *err)
{
    basira_net *net = nets[0];
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    json_object_set_new(basira_net_metadata(net), "basira", json_string(text));
    free(text);
    return basira_net_save_ensemble((const basira_net *const *)nets, n, out, err);
}

/* ECE / NLL of a set (no bootstrap, no thresholds). */
static basira_code calib_figures(const basira_eval_set *s, double *ece, double *ece_mal,
                                 double *nll, basira_error *err)
{
    basira_eval_options o;
    basira_eval_options_default(&o);
    o.bootstrap = 0;
    json_t *r = NULL;
    basira_code rc = basira_eval_report(s, &o, &r, err);
    if (rc)
        return rc;
    const json_t *cal = json_object_get(r, "calibration");
    *ece = jnum(cal, "top_class", "ece");
    *ece_mal = jnum(cal, "malignant", "ece");
    const json_t *v = json_object_get(cal, "nll");
    *nll = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(r);
    return BASIRA_OK;
}

/*
 * Step 3b: the bias b' on the log-odds of P(malignant) of s (predicted by the model whose
 * info is info, bias b0), applied to s; *bias = b0 + b' within the model format's bound.
 */
static basira_code fit_malignant_bias(basira_eval_set *s, const basira_model_info *info,
                                      double *bias, basira_error *err)
{
    size_t n = basira_eval_set_size(s);
    double *pm = NULL;
    int *ism = NULL;
    basira_code rc = malignant_arrays(s, info, &pm, &ism, err);
    double b = 0.0;
    if (!rc)
        rc = basira_fit_malignant_bias(pm, ism, n, &b, NULL, NULL, err);
    if (!rc) {
        double total =
            fmin(BASIRA_MODEL_MAX_BIAS, fmax(-BASIRA_MODEL_MAX_BIAS, info->malignant_bias + b));
        rc = basira_eval_set_apply_malignant_bias(s, total - info->malignant_bias, err);
        *bias = total;
    }
    free(pm);
    free(ism);
    return rc;
}

static int run_calibrate(int argc, char **argv)
{
    static const struct option opts[] = {
        EVAL_CLI_INPUT_OPTIONS,
        {"out", required_argument, NULL, 'o'},
        {"target-sensitivity", required_argument, NULL, 'S'},
        {"high-specificity", required_argument, NULL, 'P'},
        {"conservative", no_argument, NULL, 'C'},
        {"malignant-bias", no_argument, NULL, 'B'},
        {"malignant-slope", no_argument, NULL, 'L'},
        {"storage", required_argument, NULL, 'W'},
        {"non-neoplastic", required_argument, NULL, 'N'},
        {"json", required_argument, NULL, 'j'},
        {"classes", required_argument, NULL, 'K'},
        {"quiet", no_argument, NULL, 'q'},
        {"tta", required_argument, NULL, 'T'},
        {"model-version", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Fitted on the fp32 network: the file it writes runs in fp32 (model.h, int8_default). */
    eval_cli_input in = {
        .label_col = "dx", .image_col = "image_id", .threads = 1, .precision_set = 1};
    const char *out = NULL, *json_out = NULL, *classes_path = NULL, *version = NULL;
    basira_operating_point_options opo;
    basira_operating_point_options_default(&opo);
    int fit_bias = 0, fit_slope = 0;
    const char *storage = NULL; /* NULL: as the input model */
    double non_neoplastic = 0;  /* 0 = not stated: the triage default applies */
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'o':
            out = optarg;
            break;
        case 'S':
            if (basira_cli_parse_double("--target-sensitivity", optarg, 0.5, 1.0,
                                        &opo.target_sensitivity))
                return BASIRA_EXIT_USAGE;
            break;
        case 'P':
            if (basira_cli_parse_double("--high-specificity", optarg, 0.0, 1.0,
                                        &opo.high_specificity))
                return BASIRA_EXIT_USAGE;
            break;
        case 'C':
            opo.conservative = 1;
            break;
        case 'B':
            fit_bias = 1;
            break;
        case 'L':
            fit_slope = 1;
            break;
        case 'W':
            if (strcmp(optarg, "f16") && strcmp(optarg, "f32")) {
                fprintf(stderr, _("basira: invalid value for %s: '%s'\n"), "--storage", optarg);
                return BASIRA_EXIT_USAGE;
            }
            storage = strcmp(optarg, "f16") ? "F32" : "F16";
            break;
        case 'N':
            if (basira_cli_parse_double("--non-neoplastic", optarg, 0.01, 1.0, &non_neoplastic))
                return BASIRA_EXIT_USAGE;
            break;
        case 'j':
            json_out = optarg;
            break;
        case 'K':
            classes_path = optarg;
            break;
        case 'q':
            in.quiet = 1;
            break;
        case 'T':
            if (eval_cli_parse_tta(optarg, &in.tta))
                return BASIRA_EXIT_USAGE;
            break;
        case 'V':
            if (!*optarg || strlen(optarg) >= 32) {
                fprintf(stderr, _("basira: invalid value for %s: '%s'\n"), "--model-version",
                        optarg);
                return BASIRA_EXIT_USAGE;
            }
            version = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default: {
            int status = eval_cli_input_option(&in, "calibrate", o, argv, usage);
            if (status >= 0)
                return status;
        }
        }
    }
    if (basira_cli_no_operands("calibrate", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (fit_bias && fit_slope) {
        fprintf(stderr, _("basira calibrate: --malignant-bias and --malignant-slope cannot be "
                          "used together\n"));
        return BASIRA_EXIT_USAGE;
    }
    if (!in.model || !in.images || !in.csv || !out) {
        fprintf(stderr, _("basira calibrate: --model, --images, --csv and --out are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }

    basira_error err;
    basira_error_clear(&err);
    int status = BASIRA_EXIT_FAILED;
    basira_model_info *info = malloc(sizeof *info), *info2 = malloc(sizeof *info2);
    basira_eval_set *before = NULL, *after = NULL;
    basira_net *nets[BASIRA_NET_MAX_MEMBERS] = {NULL}, *net = NULL;
    int members = 0;
    json_t *doc = NULL, *record = NULL;
    double *logits = NULL;
    int *labels = NULL;
    char sha[65] = "", sha2[65] = "", partial[4096] = "";
    long failed = 0, failed2 = 0;
    if (!info || !info2) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    /* 1. Predictions of the model as it is. */
    if (eval_cli_predict(&in, info, sha, &before, &failed, &err))
        goto fail;
    size_t n = basira_eval_set_size(before);
    int k = basira_eval_set_num_classes(before);
    if (n == 0) {
        basira_error_set(&err, BASIRA_E_FORMAT, _("no validation image could be predicted"));
        goto fail;
    }
    /* 2. Temperature on log-probabilities. */
    logits = malloc(sizeof(double) * n * (size_t)k);
    labels = malloc(sizeof(int) * n);
    if (!logits || !labels) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const double *p = basira_eval_set_probs(before, i, &labels[i]);
        for (int c = 0; c < k; c++)
            logits[i * (size_t)k + (size_t)c] = log(fmax(p[c], 1e-30));
    }
    double t_mul, nll_fit_before, nll_fit_after;
    if (fit_bias) {
        /* P(malignant) is what triage uses: temperature and bias on its binary likelihood. */
        int cm[BASIRA_EVAL_MAX_CLASSES], *ism = malloc(sizeof(int) * n);
        double b_first;
        for (int c = 0; c < k && c < BASIRA_EVAL_MAX_CLASSES; c++)
            cm[c] = info->classes[c].malignant;
        for (size_t i = 0; ism && i < n; i++)
            ism[i] = cm[labels[i]];
        basira_code frc = ism ? basira_fit_temperature_bias(logits, cm, k, ism, n, &t_mul, &b_first,
                                                            &nll_fit_before, &nll_fit_after, &err)
                              : basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        free(ism);
        if (frc)
            goto fail;
    } else if (basira_fit_temperature(logits, labels, n, k, &t_mul, &nll_fit_before, &nll_fit_after,
                                      &err))
        goto fail;
    double t_new = info->temperature * t_mul;
    /* The model format accepts 0.05 to 20: a fit at the edge means the model is degenerate. */
    int at_edge = t_new <= 0.05 || t_new >= 20.0;
    t_new = fmin(20.0, fmax(0.05, t_new));
    if (at_edge)
        fprintf(stderr,
                _("basira calibrate: warning: the fitted temperature reached the limit %g; the "
                  "model's probabilities are far from calibrated\n"),
                t_new);

    /* 3. Write with the new temperature and predict again with the written file. */
    if (basira_net_load_ensemble(in.model, nets, &members, &err))
        goto fail;
    net = nets[0];
    const char *meta_text = json_string_value(json_object_get(basira_net_metadata(net), "basira"));
    json_error_t jerr;
    doc = meta_text ? json_loads(meta_text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(doc)) {
        basira_error_set(&err, BASIRA_E_MODEL,
                         _("%s: the \"basira\" metadata is missing or invalid"), in.model);
        goto fail;
    }
    json_object_set_new(doc, "temperature", json_real(t_new));
    /* The int8 measurement was of the probabilities before: quantize the new file again. */
    json_object_del(doc, "int8");
    if (in.tta)
        json_object_set_new(doc, "tta", json_integer(in.tta));
    if (version)
        json_object_set_new(doc, "version", json_string(version));
    if (classes_path && replace_classes(doc, classes_path, &err))
        goto fail;
    /* --storage: the weights as they will be stored, before step 3 predicts with them, so that
     * the thresholds are those of the half-precision weights the file holds. */
    if (storage)
        json_object_set_new(basira_net_metadata(net), BASIRA_NET_META_STORAGE,
                            json_string(storage));
    /* A scratch copy: OUT is only written once everything is known, never half-calibrated. */
    if (snprintf(partial, sizeof partial, "%s.partial", out) >= (int)sizeof partial) {
        basira_error_set(&err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), out);
        goto fail;
    }
    if (save_with_meta(nets, members, doc, partial, &err))
        goto fail;
    eval_cli_input in2 = in;
    in2.model = partial;
    if (eval_cli_predict(&in2, info2, sha2, &after, &failed2, &err))
        goto fail;

    double bias_new = info->malignant_bias;
    if (fit_bias && fit_malignant_bias(after, info2, &bias_new, &err))
        goto fail;
    if (fit_bias)
        json_object_set_new(doc, "malignant_bias", json_real(bias_new));
    double slope_new = info->malignant_slope;
    if (fit_slope && fit_malignant_platt(after, info2, &slope_new, &bias_new, &err))
        goto fail;
    if (fit_slope) {
        json_object_set_new(doc, "malignant_slope", json_real(slope_new));
        json_object_set_new(doc, "malignant_bias", json_real(bias_new));
    }

    double ece_b, ecem_b, nll_b, ece_a, ecem_a, nll_a;
    if (calib_figures(before, &ece_b, &ecem_b, &nll_b, &err) ||
        calib_figures(after, &ece_a, &ecem_a, &nll_a, &err))
        goto fail;

    /* 4. Thresholds on the calibrated probabilities. */
    size_t n2 = basira_eval_set_size(after);
    double *pm = NULL;
    int *ism = NULL;
    if (malignant_arrays(after, info2, &pm, &ism, &err))
        goto fail;
    long nmal = 0;
    for (size_t i = 0; i < n2; i++)
        nmal += ism[i];
    basira_operating_point op;
    basira_code rc = basira_choose_operating_point(pm, ism, n2, &opo, &op, &err);
    free(pm);
    free(ism);
    if (rc)
        goto fail;
    json_t *th = json_pack("{s:f, s:f}", "high", op.high_threshold, "medium", op.medium_threshold);
    /* The primary-care rule's threshold (triage.h): stated by whoever chose it on validation
     * (models/basira-clinical.md); the loader checks it is in (0, 1]. */
    if (th && non_neoplastic > 0)
        json_object_set_new(th, "non_neoplastic", json_real(non_neoplastic));
    json_object_set_new(doc, "thresholds", th);
    const char *slash = strrchr(in.csv, '/');
    record = json_pack(
        "{s:s, s:{s:s, s:I, s:I, s:I}, s:s, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:{s:s, s:f, s:f, s:b, s:f, s:f, s:o, s:o, s:o}}",
        "method",
        fit_bias ? "temperature scaling (NLL, golden-section search on log T), then a bias on the "
                   "log-odds of P(malignant) (binary NLL, golden-section search)"
        : fit_slope
            ? "temperature scaling (NLL, golden-section search on log T), then Platt scaling of "
              "P(malignant): a slope and a bias on its log-odds (binary NLL, nested "
              "golden-section searches)"
            : "temperature scaling: NLL minimised by golden-section search on log T",
        "validation", "csv", slash ? slash + 1 : in.csv, "images", (json_int_t)n2, "malignant",
        (json_int_t)nmal, "failed", (json_int_t)failed2, "model_sha256_before", sha,
        "temperature_before", info->temperature, "temperature", t_new, "nll_before",
        num_or_null(nll_b), "nll_after", num_or_null(nll_a), "ece_before", num_or_null(ece_b),
        "ece_after", num_or_null(ece_a), "ece_malignant_before", num_or_null(ecem_b),
        "ece_malignant_after", num_or_null(ecem_a), "operating_point", "rule",
        "medium: largest threshold keeping >= target of malignant lesions at medium or high; "
        "high: smallest threshold keeping >= high_specificity of benign lesions below high",
        "target_sensitivity", opo.target_sensitivity, "high_specificity", opo.high_specificity,
        "conservative", opo.conservative, "medium", op.medium_threshold, "high", op.high_threshold,
        "sensitivity", prop_json(&op.sensitivity), "specificity", prop_json(&op.specificity),
        "specificity_below_high", prop_json(&op.high_specificity));
    if (!record ||
        (fit_slope &&
         (json_object_set_new(record, "malignant_slope_before", json_real(info->malignant_slope)) ||
          json_object_set_new(record, "malignant_slope", json_real(slope_new)))) ||
        ((fit_bias || fit_slope) &&
         (json_object_set_new(record, "malignant_bias_before", json_real(info->malignant_bias)) ||
          json_object_set_new(record, "malignant_bias", json_real(bias_new))))) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    json_object_set(doc, "calibration", record);
    if (save_with_meta(nets, members, doc, out, &err))
        goto fail;
    /* The final file must load as a model (strict metadata check of src/model). */
    basira_classifier *check = NULL;
    if (basira_classifier_load(out, &check, &err))
        goto fail;
    basira_classifier_free(check);

    printf(_("Calibrated %s on %zu validation images (%ld malignant) -> %s\n"), in.model, n2, nmal,
           out);
    printf(_("  temperature: %.4f -> %.4f\n"), info->temperature, t_new);
    if (fit_bias || fit_slope)
        printf(_("  malignant bias (log-odds): %.4f -> %.4f\n"), info->malignant_bias, bias_new);
    if (fit_slope)
        printf(_("  malignant slope (log-odds): %.4f -> %.4f\n"), info->malignant_slope, slope_new);
    printf(_("  ECE (top class): %.4f -> %.4f; ECE (malignant): %.4f -> %.4f; NLL: %.4f -> "
             "%.4f\n"),
           ece_b, ece_a, ecem_b, ecem_a, nll_b, nll_a);
    printf(_("  thresholds: medium %.6f, high %.6f\n"), op.medium_threshold, op.high_threshold);
    printf(_("  on validation: sensitivity (high + medium) %.3f [%.3f, %.3f] (%ld/%ld), "
             "specificity %.3f [%.3f, %.3f], benign below high %.3f\n"),
           op.sensitivity.value, op.sensitivity.lo, op.sensitivity.hi, op.sensitivity.k,
           op.sensitivity.n, op.specificity.value, op.specificity.lo, op.specificity.hi,
           op.high_specificity.value);
    printf(_("  These figures are fitted on the validation set; measure the model on a separate "
             "test set with 'basira evaluate'.\n"));
    if (json_out && json_dump_file(record, json_out, JSON_INDENT(2) | JSON_REAL_PRECISION(10))) {
        basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), json_out,
                         strerror(errno ? errno : EIO));
        goto fail;
    }
    status = (failed || failed2) ? BASIRA_EXIT_FAILED : BASIRA_EXIT_OK;
    goto done;
fail:
    basira_cli_report(NULL, &err);
done:
    if (partial[0])
        unlink(partial);
    json_decref(doc);
    json_decref(record);
    basira_net_free_ensemble(nets, members);
    basira_eval_set_free(before);
    basira_eval_set_free(after);
    free(logits);
    free(labels);
    free(info);
    free(info2);
    return status;
}

const basira_command basira_cmd_calibrate = {
    "calibrate",
    N_("fit a model's temperature and triage thresholds on validation images"),
    run_calibrate,
    usage,
};
