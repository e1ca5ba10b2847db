/*
 * cmd_adapt.c - `basira adapt`: adapt an imported model to a clinic's own photos.
 *
 * 1. Split the local set by group (patient or lesion), stratified by label, as
 *    `basira train` does (same code, same parts for the same seed).
 * 2. Fine-tune from the parent: same architecture and preprocessing, every backbone
 *    tensor copied, a new head when the local classes (--classes) differ from the
 *    parent's, the stages named by --freeze kept as they are (src/train/transfer.c).
 * 3. Recalibrate temperature and triage thresholds on the local validation part
 *    (`basira calibrate`, the same code path).
 * 4. Measure the parent and the adapted model on the local test part, overall and per
 *    phototype (src/certify), with the paired DeLong test, and print the table.
 * 5. Write the adapted model with its provenance in the metadata: parent SHA-256, the
 *    SHA-256 of the data manifest (each image's SHA-256 and label), the command line,
 *    the date, the frozen stages and the figures before and after.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basira/certify.h"
#include "basira/csv.h"
#include "basira/fs.h"
#include "basira/image.h"
#include "basira/json.h"
#include "basira/model.h"
#include "basira/nn.h"
#include "basira/quality.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"
#include "eval_cli.h"

#define MAX_FREEZE 16

extern const basira_command basira_cmd_calibrate;

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira adapt --from MODEL --images DIR --csv FILE --out DIR [options]\n"
                 "Adapt an imported model to local photos: split by group, fine-tune (backbone\n"
                 "kept, new head when the classes differ), recalibrate on local validation,\n"
                 "measure before and after on the local test part, per phototype.\n\n"
                 "Options:\n"
                 "  --from FILE           the parent model (of an ensemble, its first network)\n"
                 "  --images DIR          folder of the images\n"
                 "  --csv FILE            labels, one row per image\n"
                 "  --out DIR             run folder; the model is DIR/adapted.safetensors\n"
                 "  --label-col NAME      column of the class (default dx)\n"
                 "  --image-col NAME      column of the image name (default image_id)\n"
                 "  --group-col NAME      patient or lesion column to split by (default: each\n"
                 "                        image alone)\n"
                 "  --phototype-col NAME  Fitzpatrick type (1-6) for the per-group table; ITA\n"
                 "                        category measured on the photo when empty\n"
                 "  --classes FILE        local classes (JSON) when they differ from the\n"
                 "                        parent's: a new head is trained\n"
                 "  --freeze LIST         stages kept as the parent's, e.g. conv1,layer1,layer2\n"
                 "  --epochs N            (default 10)    --batch N (default 32)\n"
                 "  --lr X                (default 0.0005) --augment none|light|dermoscopy\n"
                 "  --split A,B,C         train, validation, test shares (default\n"
                 "                        0.70,0.15,0.15)\n"
                 "  --limit N             use a seeded random subset of N rows\n"
                 "  --name NAME           --model-version V   of the adapted model\n"
                 "  --seed N              --threads N   --quiet (no progress bar)\n"
                 "  -h, --help            show this help\n\n"
                 "Exit status: 0 the adapted model was written, 1 failure, 2 usage error.\n"));
}

/* The parent's classes as a classes file for the trainer (head kept). */
static basira_code write_parent_classes(const basira_model_info *info, const char *path,
                                        basira_error *err)
{
    basira_classes cl;
    memset(&cl, 0, sizeof cl);
    cl.n = info->num_classes;
    for (int c = 0; c < cl.n; c++) {
        snprintf(cl.c[c].code, sizeof cl.c[c].code, "%s", info->classes[c].code);
        snprintf(cl.c[c].name_en, sizeof cl.c[c].name_en, "%.*s", (int)sizeof cl.c[c].name_en - 1,
                 info->classes[c].name_en);
        snprintf(cl.c[c].name_fr, sizeof cl.c[c].name_fr, "%.*s", (int)sizeof cl.c[c].name_fr - 1,
                 info->classes[c].name_fr);
        snprintf(cl.c[c].name_ar, sizeof cl.c[c].name_ar, "%.*s", (int)sizeof cl.c[c].name_ar - 1,
                 info->classes[c].name_ar);
        cl.c[c].malignant = info->classes[c].malignant;
        cl.c[c].partition = info->classes[c].partition;
    }
    json_t *j = basira_classes_to_json(&cl);
    int bad = !j || json_dump_file(j, path, JSON_INDENT(2));
    json_decref(j);
    return bad ? basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), path,
                                  strerror(errno ? errno : EIO))
               : BASIRA_OK;
}

/* Column index or a clear error. */
static int column(const basira_csv *c, const char *path, const char *name, basira_error *err)
{
    int k = basira_csv_column(c, name);
    if (k < 0)
        basira_error_set(err, BASIRA_E_FORMAT, _("%s has no column '%s'"), path, name);
    return k;
}

static const char *roman_type(const char *v)
{
    static const char *const roman[] = {"I", "II", "III", "IV", "V", "VI"};
    if (v && v[0] >= '1' && v[0] <= '6' && !v[1])
        return roman[v[0] - '1'];
    return NULL;
}

typedef struct test_part {
    size_t n;
    basira_certify_case *parent, *adapted; /* same cases, p_malignant of each model */
    char **ids, **groups, **types;         /* owned: they outlive the classifiers */
} test_part;

static void test_part_free(test_part *tp)
{
    for (size_t i = 0; i < tp->n; i++) {
        free(tp->ids[i]);
        free(tp->groups[i]);
        free(tp->types[i]);
    }
    free(tp->ids);
    free(tp->groups);
    free(tp->types);
    free(tp->parent);
    free(tp->adapted);
}

static double p_malignant(const basira_model_info *info, const float *probs)
{
    double p = 0;
    for (int c = 0; c < info->num_classes; c++)
        if (info->classes[c].malignant)
            p += probs[c];
    return p;
}

/*
 * Both models on every row of the test part. The truth is the adapted model's class
 * (the local label); the parent is scored on its own P(malignant), whatever its classes.
 */
static basira_code score_test(const char *csv_path, const char *images, const char *image_col,
                              const char *label_col, const char *photo_col, const char *parent,
                              const char *adapted, test_part *tp, basira_error *err)
{
    memset(tp, 0, sizeof *tp);
    basira_csv *csv = NULL;
    basira_classifier *cp = NULL, *ca = NULL;
    basira_code rc = basira_csv_read_file(csv_path, &csv, err);
    if (rc)
        return rc;
    int ic = column(csv, csv_path, image_col, err), lc = column(csv, csv_path, label_col, err);
    int pc = photo_col ? basira_csv_column(csv, photo_col) : -1;
    if (ic < 0 || lc < 0) {
        basira_csv_free(csv);
        return BASIRA_E_FORMAT;
    }
    if ((rc = basira_classifier_load(parent, &cp, err)) ||
        (rc = basira_classifier_load(adapted, &ca, err)))
        goto done;
    size_t n = basira_csv_rows(csv);
    tp->parent = calloc(n ? n : 1, sizeof *tp->parent);
    tp->adapted = calloc(n ? n : 1, sizeof *tp->adapted);
    tp->ids = calloc(n ? n : 1, sizeof *tp->ids);
    tp->groups = calloc(n ? n : 1, sizeof *tp->groups);
    tp->types = calloc(n ? n : 1, sizeof *tp->types);
    if (!tp->parent || !tp->adapted || !tp->ids || !tp->groups || !tp->types) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    const basira_model_info *ip = basira_classifier_info(cp), *ia = basira_classifier_info(ca);
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    for (size_t r = 0; r < n && !rc; r++) {
        char path[4096];
        const char *name = basira_csv_cell(csv, r, ic);
        int label = -1;
        for (int c = 0; c < ia->num_classes; c++)
            if (!strcmp(ia->classes[c].code, basira_csv_cell(csv, r, lc)))
                label = c;
        basira_image *img = NULL;
        float pa[BASIRA_MODEL_MAX_CLASSES], pp[BASIRA_MODEL_MAX_CLASSES];
        basira_skin_tone tone = {0};
        if (label < 0 || basira_fs_find_image(images, name, path, sizeof path, NULL) ||
            basira_image_load_file(path, &io, &img, NULL) ||
            basira_classifier_predict(cp, img, pp, NULL) ||
            basira_classifier_predict(ca, img, pa, NULL)) {
            fprintf(stderr, _("basira adapt: %s: left out of the test figures\n"), name);
            basira_image_free(img);
            continue;
        }
        const char *g = roman_type(pc >= 0 ? basira_csv_cell(csv, r, pc) : NULL);
        if (!g && !basira_skin_tone_estimate(img, &tone, NULL) &&
            tone.category != BASIRA_TONE_UNKNOWN)
            g = basira_skin_tone_category_code(tone.category);
        basira_image_free(img);
        size_t i = tp->n;
        tp->ids[i] = strdup(name);
        tp->groups[i] = g ? strdup(g) : NULL;
        tp->types[i] = strdup(ia->classes[label].code);
        if (!tp->ids[i] || (g && !tp->groups[i]) || !tp->types[i]) {
            free(tp->ids[i]);
            free(tp->groups[i]);
            free(tp->types[i]);
            tp->ids[i] = tp->groups[i] = tp->types[i] = NULL;
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            break;
        }
        basira_certify_case c = {.id = tp->ids[i],
                                 .group = tp->groups[i],
                                 .lesion_type = tp->types[i],
                                 .malignant = ia->classes[label].malignant,
                                 .p_malignant = fmin(1.0, p_malignant(ia, pa)),
                                 .p_parent = fmin(1.0, p_malignant(ip, pp))};
        tp->adapted[i] = c;
        c.p_malignant = c.p_parent;
        c.p_parent = NAN;
        tp->parent[i] = c;
        tp->n++;
    }
done:
    basira_classifier_free(cp);
    basira_classifier_free(ca);
    basira_csv_free(csv);
    return rc;
}

/* The figures of one model on the test part (certify with no criteria), or NULL. */
static json_t *figures(const basira_certify_case *c, size_t n, double medium, basira_error *err)
{
    basira_certify_options o;
    basira_certify_options_default(&o);
    o.medium_threshold = medium;
    o.bootstrap = 200;
    o.min_group_n = 10;
    json_t *crit = json_pack("{s:[]}", "criteria"), *rep = NULL;
    int pass;
    if (!crit || basira_certify_run(c, n, &o, crit, &rep, &pass, err))
        rep = NULL;
    json_decref(crit);
    if (rep) {
        json_object_del(rep, "criteria");
        json_object_del(rep, "pass");
    }
    return rep;
}

static double fig(const json_t *g, const char *metric)
{
    const json_t *v = json_object_get(json_object_get(g, metric), "value");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_row(const char *name, const json_t *b, const json_t *a)
{
    printf("  %-14s %5lld   %.3f -> %.3f   %.3f -> %.3f   %.3f -> %.3f\n", name,
           (long long)json_integer_value(json_object_get(a, "n")), fig(b, "auc"), fig(a, "auc"),
           fig(b, "sensitivity"), fig(a, "sensitivity"), fig(b, "specificity"),
           fig(a, "specificity"));
}

static void print_table(const json_t *before, const json_t *after)
{
    printf(_("On the local test part: parent -> adapted (each at its own medium threshold)\n"));
    printf("  %-14s %5s   %-14s   %-14s   %-14s\n", _("group"), "n", "AUC", _("sensitivity"),
           _("specificity"));
    print_row(_("overall"), json_object_get(before, "overall"), json_object_get(after, "overall"));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(after, "groups"), i, g)
    {
        print_row(json_string_value(json_object_get(g, "value")),
                  json_array_get(json_object_get(before, "groups"), i), g);
    }
}

/* Add the provenance of the adaptation to the model's "basira" metadata and save it. */
static basira_code write_adapted(const char *in, const char *out, json_t *adaptation,
                                 basira_error *err)
{
    basira_net *net = NULL;
    basira_code rc = basira_net_load(in, &net, err);
    if (rc)
        return rc;
    const char *text = json_string_value(json_object_get(basira_net_metadata(net), "basira"));
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    char *s = NULL;
    if (!doc || json_object_set(doc, "adaptation", adaptation) ||
        !(s = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10))) ||
        json_object_set_new(basira_net_metadata(net), "basira", json_string(s)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    free(s);
    json_decref(doc);
    if (!rc)
        rc = basira_net_save(net, out, err);
    basira_net_free(net);
    basira_classifier *check = NULL;
    if (!rc && !(rc = basira_classifier_load(out, &check, err)))
        basira_classifier_free(check);
    return rc;
}

typedef struct adapt_args {
    const char *from, *classes, *phototype_col, *freeze_list;
    char freeze_buf[512];
    const char *freeze[MAX_FREEZE];
    int quiet;
} adapt_args;

static int parse(int argc, char **argv, basira_train_options *o, adapt_args *a)
{
    enum {
        O_FROM = 256,
        O_CLASSES,
        O_PHOTO,
        O_FREEZE,
        O_EPOCHS,
        O_BATCH,
        O_LR,
        O_AUGMENT,
        O_SPLIT,
        O_LIMIT,
        O_NAME,
        O_VERSION,
        O_SEED,
        O_THREADS,
        O_QUIET
    };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM},
        {"images", required_argument, NULL, 'i'},
        {"csv", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"label-col", required_argument, NULL, 'l'},
        {"image-col", required_argument, NULL, 'I'},
        {"group-col", required_argument, NULL, 'g'},
        {"phototype-col", required_argument, NULL, O_PHOTO},
        {"classes", required_argument, NULL, O_CLASSES},
        {"freeze", required_argument, NULL, O_FREEZE},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"batch", required_argument, NULL, O_BATCH},
        {"lr", required_argument, NULL, O_LR},
        {"augment", required_argument, NULL, O_AUGMENT},
        {"split", required_argument, NULL, O_SPLIT},
        {"limit", required_argument, NULL, O_LIMIT},
        {"name", required_argument, NULL, O_NAME},
        {"model-version", required_argument, NULL, O_VERSION},
        {"seed", required_argument, NULL, O_SEED},
        {"threads", required_argument, NULL, O_THREADS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_error err;
    long l;
    double d;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_FROM:
            a->from = optarg;
            break;
        case 'i':
            o->images_dir = optarg;
            break;
        case 'c':
            o->csv_path = optarg;
            break;
        case 'o':
            o->out_dir = optarg;
            break;
        case 'l':
            o->label_col = optarg;
            break;
        case 'I':
            o->image_col = optarg;
            break;
        case 'g':
            o->group_col = optarg;
            break;
        case O_PHOTO:
            a->phototype_col = optarg;
            break;
        case O_CLASSES:
            a->classes = optarg;
            break;
        case O_FREEZE:
            snprintf(a->freeze_buf, sizeof a->freeze_buf, "%s", optarg);
            o->n_freeze = eval_cli_split_list(a->freeze_buf, a->freeze, MAX_FREEZE);
            if (o->n_freeze < 0) {
                fprintf(stderr, _("basira adapt: --freeze takes at most %d stages\n"), MAX_FREEZE);
                return BASIRA_EXIT_USAGE;
            }
            o->freeze = a->freeze;
            break;
        case O_EPOCHS:
            if (basira_cli_parse_long("--epochs", optarg, 1, 10000, &l))
                return BASIRA_EXIT_USAGE;
            o->epochs = (int)l;
            break;
        case O_BATCH:
            if (basira_cli_parse_long("--batch", optarg, 1, 4096, &l))
                return BASIRA_EXIT_USAGE;
            o->batch = (int)l;
            break;
        case O_LR:
            if (basira_cli_parse_double("--lr", optarg, 1e-8, 10.0, &d))
                return BASIRA_EXIT_USAGE;
            o->lr = d;
            break;
        case O_AUGMENT:
            if (basira_augment_parse(optarg, &o->augment, &err)) {
                basira_cli_report("--augment", &err);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case O_SPLIT:
            if (basira_split_parse(optarg, o->split, &err)) {
                basira_cli_report("--split", &err);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case O_LIMIT:
            if (basira_cli_parse_long("--limit", optarg, 0, 100000000L, &o->limit))
                return BASIRA_EXIT_USAGE;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_VERSION:
            o->version = optarg;
            break;
        case O_SEED:
            if (basira_cli_parse_long("--seed", optarg, 0, 2147483647L, &l))
                return BASIRA_EXIT_USAGE;
            o->seed = (uint64_t)l;
            break;
        case O_THREADS:
            if (basira_cli_parse_long("--threads", optarg, 1, 64, &l))
                return BASIRA_EXIT_USAGE;
            o->threads = (int)l;
            break;
        case O_QUIET:
            a->quiet = 1;
            o->progress = 0;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return basira_cli_bad_option("adapt", c, argv, usage);
        }
    }
    if (basira_cli_no_operands("adapt", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!a->from || !o->images_dir || !o->csv_path || !o->out_dir) {
        fprintf(stderr, _("basira adapt: --from, --images, --csv and --out are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    return BASIRA_EXIT_OK;
}

static int run_adapt(int argc, char **argv)
{
    basira_train_options o;
    basira_train_options_default(&o);
    o.label_col = "dx";
    o.image_col = "image_id";
    o.epochs = 10;
    o.batch = 32;
    o.lr = 0.0005;
    o.warmup_epochs = 1;
    o.augment = BASIRA_AUGMENT_LIGHT;
    o.progress = 1;
    adapt_args a;
    memset(&a, 0, sizeof a);
    int st = parse(argc, argv, &o, &a);
    if (st)
        return st < 0 ? BASIRA_EXIT_OK : st;

    basira_error err;
    basira_error_clear(&err);
    int status = BASIRA_EXIT_FAILED, parent_networks = 1;
    char psha[65] = "", msha[65] = "", path[4096], best[4096], calibrated[4096], test_csv[4096],
         val_csv[4096], final[4096], date[32];
    char *cmdline = basira_cli_join_args(argc, argv);
    basira_model_info *info = malloc(sizeof *info);
    json_t *before = NULL, *after = NULL, *adaptation = NULL, *cmp = NULL;
    test_part tp = {0};
    basira_classifier *parent = NULL;
    if (!cmdline || !info) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    if (basira_classifier_load(a.from, &parent, &err))
        goto fail;
    *info = *basira_classifier_info(parent);
    snprintf(psha, sizeof psha, "%s", basira_classifier_sha256(parent));
    basira_classifier_free(parent);
    /* The parent's architecture family and preprocessing, so the data are fed as it saw them. */
    {
        basira_net *pn = NULL;
        if (basira_net_load_first(a.from, &pn, &parent_networks, &err))
            goto fail;
        const char *fam = json_string_value(json_object_get(basira_net_arch(pn), "family"));
        o.arch = fam && !strcmp(fam, "resnet") ? "resnet" : "mobilenetv2";
        basira_net_free(pn);
    }
    /* Adapting every member would cost their count in CPU time; the table below says
     * whether the one adapted network beats the whole ensemble on local cases. */
    if (parent_networks > 1)
        printf(_("The parent is an ensemble of %d networks: the adapted model is one network, "
                 "trained from the first; the table compares it with the whole ensemble.\n"),
               parent_networks);
    o.input_size = info->preprocess.input_w;
    o.input_height = info->preprocess.input_h;
    o.colour_constancy = info->preprocess.colour_constancy;
    o.init_from = a.from;
    o.command_line = cmdline;
    if (!o.name)
        o.name = info->name;
    if (basira_fs_mkdirs(o.out_dir, 0700, &err))
        goto fail;
    if (a.classes)
        o.classes_path = a.classes;
    else {
        snprintf(path, sizeof path, "%s/parent-classes.json", o.out_dir);
        if (write_parent_classes(info, path, &err))
            goto fail;
        o.classes_path = path;
    }
    if (eval_cli_manifest_sha256(o.csv_path, o.images_dir, o.image_col, o.label_col, NULL, msha,
                                 &err))
        goto fail;

    basira_train_result res;
    if (basira_train_run(&o, &res, &err)) {
        basira_cli_report(_("adaptation failed"), &err);
        status = err.code == BASIRA_E_INVALID_ARGUMENT ? BASIRA_EXIT_USAGE : BASIRA_EXIT_FAILED;
        goto out;
    }
    snprintf(best, sizeof best, "%s/best.safetensors", o.out_dir);
    snprintf(val_csv, sizeof val_csv, "%s/val.csv", o.out_dir);
    snprintf(test_csv, sizeof test_csv, "%s/test.csv", o.out_dir);
    snprintf(calibrated, sizeof calibrated, "%s/calibrated.safetensors", o.out_dir);
    snprintf(final, sizeof final, "%s/adapted.safetensors", o.out_dir);

    /* Recalibration on the local validation part, by `basira calibrate` itself. */
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o.threads > 0 ? o.threads : 1);
    char *cal_argv[] = {"calibrate",
                        "--model",
                        best,
                        "--images",
                        (char *)o.images_dir,
                        "--csv",
                        val_csv,
                        "--out",
                        calibrated,
                        "--label-col",
                        (char *)o.label_col,
                        "--image-col",
                        (char *)o.image_col,
                        "--threads",
                        threads,
                        NULL};
    if (basira_cmd_calibrate.run((int)(sizeof cal_argv / sizeof cal_argv[0]) - 1, cal_argv) !=
        BASIRA_EXIT_OK) {
        basira_error_set(&err, BASIRA_E_MODEL, _("the recalibration of %s failed"), best);
        goto fail;
    }

    /* Before and after, on the local test part. */
    if (score_test(test_csv, o.images_dir, o.image_col, o.label_col, a.phototype_col, a.from,
                   calibrated, &tp, &err))
        goto fail;
    basira_classifier *cal = NULL;
    if (basira_classifier_load(calibrated, &cal, &err))
        goto fail;
    double medium_after = basira_classifier_info(cal)->threshold_medium;
    basira_classifier_free(cal);
    if (!(before = figures(tp.parent, tp.n, info->threshold_medium, &err)) ||
        !(after = figures(tp.adapted, tp.n, medium_after, &err)))
        goto fail;
    cmp = json_incref(json_object_get(after, "parent"));
    json_object_del(after, "parent");
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    json_t *frozen = json_array();
    for (int i = 0; i < o.n_freeze; i++)
        json_array_append_new(frozen, json_string(o.freeze[i]));
    adaptation = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:o, s:b, s:{s:I, s:I, s:I}, s:{s:O, s:O, s:O}}",
        "parent_sha256", psha, "parent_name", info->name, "parent_version", info->version,
        "parent_networks", parent_networks, "data_manifest_sha256", msha, "data_set", o.csv_path,
        "command_line", cmdline, "date", date, "frozen", frozen, "new_head", a.classes != NULL,
        "split", "train", (json_int_t)res.n_train, "validation", (json_int_t)res.n_val, "test",
        (json_int_t)res.n_test, "test_figures", "parent", before, "adapted", after, "paired_auc",
        cmp ? cmp : json_null());
    if (!adaptation) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    if (write_adapted(calibrated, final, adaptation, &err))
        goto fail;
    snprintf(path, sizeof path, "%s/adaptation.json", o.out_dir);
    json_dump_file(adaptation, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));

    print_table(before, after);
    if (json_is_object(cmp))
        printf(_("Paired DeLong test, adapted minus parent AUC: %+.3f [%+.3f, %+.3f], p = %.4g\n"),
               json_number_value(json_object_get(cmp, "difference")),
               json_number_value(json_object_get(cmp, "lo")),
               json_number_value(json_object_get(cmp, "hi")),
               json_number_value(json_object_get(cmp, "p_value")));
    printf(_("Adapted model: %s (provenance in its metadata and in %s)\n"), final, path);
    status = BASIRA_EXIT_OK;
    goto out;
fail:
    basira_cli_report(NULL, &err);
out:
    test_part_free(&tp);
    json_decref(before);
    json_decref(after);
    json_decref(cmp);
    json_decref(adaptation);
    free(info);
    free(cmdline);
    return status;
}

const basira_command basira_cmd_adapt = {
    "adapt",
    N_("adapt a model to local photos: fine-tune, recalibrate, compare per phototype"),
    run_adapt,
    usage,
};
