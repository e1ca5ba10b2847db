/*
 * cmd_certify.c - `basira certify`: the report a national body signs before a model
 * is used in its clinics.
 *
 * The model (and, with --parent, the model it was adapted from) is run on every row
 * of a labelled local test set; src/certify then gives per phototype and per lesion
 * type the triage sensitivity, specificity, PPV, NPV (Wilson intervals), the AUC
 * (DeLong), calibration, the false negatives and positives, the gap between groups,
 * the paired comparison with the parent and, with an adjudicated label column, the
 * agreement and the figures against it; and judges each acceptance criterion. The
 * test set is identified by the SHA-256 of a manifest (each image's SHA-256, name and
 * label), written with --manifest so that anyone can check what was measured.
 * Exit status 0 only when every criterion passes.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basira/certify.h"
#include "basira/csv.h"
#include "basira/fs.h"
#include "basira/json.h"
#include "basira/nn.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval/eval_internal.h"
#include "eval_cli.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira certify --model FILE --images DIR --csv FILE --criteria FILE "
                 "[options]\n"
                 "Certify a model on a labelled local test set against acceptance criteria:\n"
                 "per phototype and lesion type, sensitivity, specificity, PPV, NPV, AUC, ECE,\n"
                 "false negatives and positives, the gap between groups, the comparison with the\n"
                 "parent model; each criterion passes or fails with its evidence.\n\n"
                 "Options:\n"
                 "  --model FILE          model to certify\n"
                 "  --images DIR          folder of the images\n"
                 "  --csv FILE            labels\n"
                 "  --criteria FILE       acceptance criteria (JSON, see docs/certify.md)\n"
                 "  --parent FILE         the model it was adapted from (paired DeLong test)\n"
                 "  --label-col NAME      column of the true class (default dx)\n"
                 "  --image-col NAME      column of the image name (default image_id)\n"
                 "  --phototype-col NAME  recorded Fitzpatrick type (1-6 or I-VI); the ITA\n"
                 "                        category measured on the photo when empty or absent\n"
                 "  --adjudicated-col NAME  second, adjudicated label: kappa and figures\n"
                 "  --json FILE           write the report as JSON\n"
                 "  --pdf FILE            write the report as PDF\n"
                 "  --lang LANG           language of the PDF: fr, ar or en (default en)\n"
                 "  --manifest FILE       write the test set manifest (hashed in the report)\n"
                 "  --bootstrap N         replicates of the group gap interval (default 1000)\n"
                 "  --seed N              seed of the bootstrap (default 20261122)\n"
                 "  --threads N           images decoded in parallel (default 1)\n"
                 "  -h, --help            show this help\n\n"
                 "Exit status: 0 every criterion passes, 1 a criterion fails or an image\n"
                 "could not be read, 2 usage error or invalid criteria.\n"));
}

/* "4" -> "IV", "IV" -> "IV"; anything else (-1, empty, "unknown") -> NULL. */
static const char *phototype(const char *v)
{
    static const char *const roman[] = {"I", "II", "III", "IV", "V", "VI"};
    if (!v)
        return NULL;
    for (int i = 0; i < 6; i++) {
        char digit[2] = {(char)('1' + i), 0};
        if (!strcmp(v, digit) || !strcmp(v, roman[i]))
            return roman[i];
    }
    return NULL;
}

/*
 * SHA-256 of the manifest: one line "<image sha256> <image name> <label>" per CSV row,
 * in the order of the file (also written to path when given).
 */
basira_code eval_cli_manifest_sha256(const char *csv_path, const char *images,
                                     const char *image_col, const char *label_col, const char *path,
                                     char hex[65], basira_error *err)
{
    basira_csv *csv = NULL;
    basira_code rc = basira_csv_read_file(csv_path, &csv, err);
    if (rc)
        return rc;
    int ic = basira_csv_column(csv, image_col), lc = basira_csv_column(csv, label_col);
    FILE *f = NULL;
    if (ic < 0 || lc < 0) {
        basira_csv_free(csv);
        return basira_error_set(err, BASIRA_E_FORMAT, _("%s has no column '%s'"), csv_path,
                                ic < 0 ? image_col : label_col);
    }
    if (path && !(f = fopen(path, "w"))) {
        basira_csv_free(csv);
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < basira_csv_rows(csv) && !rc; i++) {
        char file[4096], h[65] = "-", line[8192];
        const char *name = basira_csv_cell(csv, i, ic);
        if (!basira_fs_find_image(images, name, file, sizeof file, NULL))
            rc = basira_file_sha256(file, h, err);
        int len = snprintf(line, sizeof line, "%s %s %s\n", h, name, basira_csv_cell(csv, i, lc));
        if (!rc && len > 0 && (size_t)len < sizeof line) {
            crypto_hash_sha256_update(&st, (const unsigned char *)line, (unsigned long long)len);
            if (f && fputs(line, f) == EOF)
                rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                      strerror(errno));
        }
    }
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(hex, 65, d, sizeof d);
    if (f && fclose(f) && !rc)
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path, strerror(errno));
    basira_csv_free(csv);
    return rc;
}

typedef struct options {
    eval_cli_input in;
    const char *criteria, *parent, *phototype_col, *adjudicated_col;
    const char *json_out, *pdf_out, *lang, *manifest;
    long bootstrap, seed;
} options;

static int parse(int argc, char **argv, options *op)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"images", required_argument, NULL, 'i'},
        {"csv", required_argument, NULL, 'c'},
        {"criteria", required_argument, NULL, 'C'},
        {"parent", required_argument, NULL, 'P'},
        {"label-col", required_argument, NULL, 'l'},
        {"image-col", required_argument, NULL, 'I'},
        {"phototype-col", required_argument, NULL, 'f'},
        {"adjudicated-col", required_argument, NULL, 'a'},
        {"json", required_argument, NULL, 'j'},
        {"pdf", required_argument, NULL, 'p'},
        {"lang", required_argument, NULL, 'L'},
        {"manifest", required_argument, NULL, 'M'},
        {"bootstrap", required_argument, NULL, 'B'},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long threads = 1;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            op->in.model = optarg;
            break;
        case 'i':
            op->in.images = optarg;
            break;
        case 'c':
            op->in.csv = optarg;
            break;
        case 'C':
            op->criteria = optarg;
            break;
        case 'P':
            op->parent = optarg;
            break;
        case 'l':
            op->in.label_col = optarg;
            break;
        case 'I':
            op->in.image_col = optarg;
            break;
        case 'f':
            op->phototype_col = optarg;
            break;
        case 'a':
            op->adjudicated_col = optarg;
            break;
        case 'j':
            op->json_out = optarg;
            break;
        case 'p':
            op->pdf_out = optarg;
            break;
        case 'L':
            if (strcmp(optarg, "fr") && strcmp(optarg, "ar") && strcmp(optarg, "en")) {
                fprintf(stderr, _("basira certify: --lang is fr, ar or en\n"));
                return BASIRA_EXIT_USAGE;
            }
            op->lang = optarg;
            break;
        case 'M':
            op->manifest = optarg;
            break;
        case 'B':
            if (basira_cli_parse_long("--bootstrap", optarg, 0, 100000, &op->bootstrap))
                return BASIRA_EXIT_USAGE;
            break;
        case 's':
            if (basira_cli_parse_long("--seed", optarg, 0, 2147483647L, &op->seed))
                return BASIRA_EXIT_USAGE;
            break;
        case 't':
            if (basira_cli_parse_long("--threads", optarg, 1, 64, &threads))
                return BASIRA_EXIT_USAGE;
            break;
        case 'q':
            op->in.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return basira_cli_bad_option("certify", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("certify", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!op->in.model || !op->in.images || !op->in.csv || !op->criteria) {
        fprintf(stderr, _("basira certify: --model, --images, --csv and --criteria are "
                          "required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    op->in.threads = (int)threads;
    return BASIRA_EXIT_OK;
}

/* The attribute of sample i, or NULL. */
static const char *attr(const basira_eval_set *s, const char *name, size_t i)
{
    int a = name ? basira_eval_set_attr_index(s, name) : -1;
    return a < 0 ? NULL : basira_eval_set_attr(s, a, i);
}

/* Cases from the predictions of the model (set) and of the parent (pset, may be NULL). */
static basira_code build_cases(const options *op, const basira_model_info *info,
                               const basira_eval_set *set, const basira_eval_set *pset,
                               basira_certify_case *cases, basira_error *err)
{
    size_t n = basira_eval_set_size(set), np = pset ? basira_eval_set_size(pset) : 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        basira_certify_case *c = &cases[i];
        int label;
        basira_eval_set_probs(set, i, &label);
        c->id = attr(set, op->in.image_col, i);
        c->group = phototype(attr(set, op->phototype_col, i));
        if (!c->group)
            c->group = attr(set, "skin_tone", i);
        c->lesion_type = info->classes[label].code;
        c->malignant = info->classes[label].malignant;
        c->p_malignant = basira_eval_set_p_malignant(set, i);
        c->p_parent = NAN;
        /* Both sets follow the CSV order, without the rows that failed in each. */
        while (pset && j < np && c->id) {
            const char *pid = attr(pset, op->in.image_col, j);
            if (pid && !strcmp(pid, c->id))
                break;
            j++;
        }
        if (pset && j < np)
            c->p_parent = basira_eval_set_p_malignant(pset, j++);
        const char *adj = attr(set, op->adjudicated_col, i);
        if (adj && *adj) {
            int k = basira_eval_set_class_index(set, adj);
            if (k < 0)
                return basira_error_set(err, BASIRA_E_FORMAT,
                                        _("%s: adjudicated label '%s' is not a class of the "
                                          "model"),
                                        c->id ? c->id : "?", adj);
            c->adjudicated_type = info->classes[k].code;
            c->adjudicated_malignant = info->classes[k].malignant;
        }
    }
    return BASIRA_OK;
}

static basira_code write_json(const char *path, const json_t *j, basira_error *err)
{
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)))
        return basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                strerror(errno ? errno : EIO));
    return BASIRA_OK;
}

static int run_certify(int argc, char **argv)
{
    options op = {.in = {.label_col = "dx", .image_col = "image_id", .threads = 1},
                  .lang = "en",
                  .bootstrap = 1000,
                  .seed = 20261122};
    int st = parse(argc, argv, &op);
    if (st)
        return st < 0 ? BASIRA_EXIT_OK : st;
    const char *by[4];
    int nby = 0;
    by[nby++] = op.in.image_col;
    by[nby++] = "skin_tone";
    if (op.phototype_col)
        by[nby++] = op.phototype_col;
    if (op.adjudicated_col)
        by[nby++] = op.adjudicated_col;
    op.in.by = by;
    op.in.n_by = nby;

    basira_error err;
    basira_error_clear(&err);
    int status = BASIRA_EXIT_FAILED;
    basira_model_info *info = malloc(sizeof *info), *pinfo = malloc(sizeof *pinfo);
    basira_eval_set *set = NULL, *pset = NULL;
    basira_certify_case *cases = NULL;
    json_t *criteria = NULL, *report = NULL;
    char sha[65] = "", psha[65] = "", mhash[65] = "", date[32];
    long failed = 0, pfailed = 0;
    json_error_t je;
    if (!info || !pinfo) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    if (!(criteria = json_load_file(op.criteria, JSON_REJECT_DUPLICATES, &je))) {
        basira_error_set(&err, BASIRA_E_FORMAT, _("%s: invalid JSON at line %d: %s"), op.criteria,
                         je.line, je.text);
        basira_cli_report(NULL, &err);
        status = BASIRA_EXIT_USAGE;
        goto out;
    }
    basira_certify_options co;
    basira_certify_options_default(&co);
    int pass = 0;
    /* The criteria are checked on an empty set first: a typo must not cost an hour. */
    if (basira_certify_run(NULL, 0, &co, criteria, &report, &pass, &err)) {
        basira_cli_report(op.criteria, &err);
        status = BASIRA_EXIT_USAGE;
        goto out;
    }
    json_decref(report);
    report = NULL;
    if (eval_cli_predict(&op.in, info, sha, &set, &failed, &err))
        goto fail;
    if (op.parent) {
        eval_cli_input pin = op.in;
        pin.model = op.parent;
        if (eval_cli_predict(&pin, pinfo, psha, &pset, &pfailed, &err))
            goto fail;
    }
    size_t n = basira_eval_set_size(set);
    if (!(cases = calloc(n ? n : 1, sizeof *cases))) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    if (build_cases(&op, info, set, pset, cases, &err) ||
        eval_cli_manifest_sha256(op.in.csv, op.in.images, op.in.image_col, op.in.label_col,
                                 op.manifest, mhash, &err))
        goto fail;
    co.medium_threshold = info->threshold_medium;
    co.bootstrap = (int)op.bootstrap;
    co.seed = (uint64_t)op.seed;
    basira_code rc = basira_certify_run(cases, n, &co, criteria, &report, &pass, &err);
    if (rc == BASIRA_E_FORMAT) {
        basira_cli_report(op.criteria, &err);
        status = BASIRA_EXIT_USAGE;
        goto out;
    }
    if (rc)
        goto fail;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    json_object_set_new(report, "model",
                        json_pack("{s:s, s:s, s:s, s:s}", "file", op.in.model, "name", info->name,
                                  "version", info->version, "sha256", sha));
    json_object_set_new(report, "parent_model",
                        op.parent ? json_pack("{s:s, s:s}", "file", op.parent, "sha256", psha)
                                  : json_null());
    json_object_set_new(report, "test_set",
                        json_pack("{s:s, s:s, s:s, s:I, s:I}", "csv", op.in.csv, "manifest_sha256",
                                  mhash, "label_col", op.in.label_col, "evaluated", (json_int_t)n,
                                  "failed", (json_int_t)(failed + pfailed)));
    json_object_set_new(report, "date", json_string(date));
    if (op.json_out && write_json(op.json_out, report, &err))
        goto fail;
    if (op.pdf_out) {
        basira_certify_identity id = {info->name, info->version, sha, op.parent ? psha : NULL,
                                      mhash,      date};
        if (basira_certify_pdf(report, &id, op.lang, op.pdf_out, &err))
            goto fail;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(report, "criteria"), i, c)
    {
        printf("%s  %s\n", json_is_true(json_object_get(c, "pass")) ? _("PASS") : _("FAIL"),
               json_string_value(json_object_get(c, "id")));
    }
    if (failed || pfailed)
        printf(_("%ld images could not be evaluated: the test set is incomplete, not "
                 "certified\n"),
               failed + pfailed);
    printf(pass && !failed && !pfailed ? _("Certified: every criterion passes.\n")
                                       : _("Not certified.\n"));
    status = pass && !failed && !pfailed ? BASIRA_EXIT_OK : BASIRA_EXIT_FAILED;
    goto out;
fail:
    basira_cli_report(NULL, &err);
out:
    json_decref(criteria);
    json_decref(report);
    basira_eval_set_free(set);
    basira_eval_set_free(pset);
    free(cases);
    free(info);
    free(pinfo);
    return status;
}

const basira_command basira_cmd_certify = {
    "certify",
    N_("certify a model on a local test set against acceptance criteria (JSON + PDF)"),
    run_certify,
    usage,
};
