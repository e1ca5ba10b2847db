/*
 * cmd_recalibrate.c - `basira recalibrate`: refit a model's temperature and
 * triage thresholds on a clinic's adjudicated cases at the hub (step 3 of
 * docs/change-control.md).
 *
 *   basira recalibrate --db CONNINFO --clinic NODE --model IN --out OUT
 *       [--min-cases N] [--json F] [--target-sensitivity X] [--high-specificity X]
 *       [--conservative]
 *
 * The clinic's photos whose case has a dermatologist's diagnosis among the
 * model's classes are written to a private temporary folder (0700, removed
 * afterwards) with a CSV of their labels, and `basira calibrate --malignant-bias`
 * runs on them (temperature, then a bias on the log-odds of P(malignant), then the
 * thresholds; --no-bias leaves the bias out):
 * the same code, the same report. The candidate then goes through `basira
 * certify` and `basira hub release create`.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/hub_oversight.h"
#include "basira/model.h"
#include "cli.h"
#include "core/i18n.h"

extern const basira_command basira_cmd_calibrate;

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira recalibrate --db CONNINFO --clinic NODE --model IN --out OUT "
                 "[options]\n"
                 "Refit the model's temperature and triage thresholds on the clinic's adjudicated "
                 "cases at the hub (a dermatologist's diagnosis among the model's classes), with "
                 "the code of `basira calibrate`.\n\n"
                 "Options:\n"
                 "  --db CONNINFO              the hub's database\n"
                 "  --clinic NODE              the clinic node whose cases are used\n"
                 "  --model FILE               model to recalibrate (the release it runs)\n"
                 "  --out FILE                 candidate model to write\n"
                 "  --min-cases N              refuse with fewer adjudicated photos (default 200)\n"
                 "  --json FILE, --target-sensitivity X, --high-specificity X, --conservative\n"
                 "                             as for `basira calibrate`\n"));
    fprintf(f, _("  --no-bias                  do not fit the bias on the log-odds of "
                 "P(malignant)\n"
                 "                             (fitted by default: calibrate --malignant-bias)\n"));
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[8192];
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
            (size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
            unlink(path);
    if (d)
        closedir(d);
    rmdir(dir);
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"clinic", required_argument, NULL, 'c'},
        {"model", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        {"min-cases", required_argument, NULL, 'n'},
        {"json", required_argument, NULL, 'j'},
        {"target-sensitivity", required_argument, NULL, 'S'},
        {"high-specificity", required_argument, NULL, 'P'},
        {"conservative", no_argument, NULL, 'C'},
        {"no-bias", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *clinic = NULL, *model = NULL, *out = NULL, *json = NULL, *sens = NULL,
               *spec = NULL;
    int conservative = 0, no_bias = 0;
    long min_cases = 200;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            clinic = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            if (basira_cli_parse_long("--min-cases", optarg, 1, 1000000, &min_cases))
                return BASIRA_EXIT_USAGE;
            break;
        case 'j':
            json = optarg;
            break;
        case 'S':
            sens = optarg;
            break;
        case 'P':
            spec = optarg;
            break;
        case 'C':
            conservative = 1;
            break;
        case 'B':
            no_bias = 1;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("recalibrate", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("recalibrate", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!db || !clinic || !model || !out) {
        fprintf(stderr, _("basira recalibrate: --db, --clinic, --model and --out are required\n"));
        return BASIRA_EXIT_USAGE;
    }
    basira_error e;
    basira_classifier *clf = NULL;
    if (basira_classifier_load(model, &clf, &e)) {
        basira_cli_report("recalibrate", &e);
        return BASIRA_EXIT_FAILED;
    }
    const basira_model_info *info = basira_classifier_info(clf);
    const char *codes[BASIRA_MODEL_MAX_CLASSES];
    for (int k = 0; k < info->num_classes; k++)
        codes[k] = info->classes[k].code;
    const char *tmp = getenv("TMPDIR");
    char dir[4096], csv[4200];
    snprintf(dir, sizeof dir, "%s/basira-recal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    basira_hub *hub = NULL;
    size_t n = 0;
    int status = BASIRA_EXIT_FAILED;
    if (!mkdtemp(dir)) {
        fprintf(stderr, _("basira: cannot create a temporary folder in %s\n"),
                tmp && *tmp ? tmp : "/tmp");
        basira_classifier_free(clf);
        return BASIRA_EXIT_FAILED;
    }
    snprintf(csv, sizeof csv, "%s/adjudicated.csv", dir);
    if (basira_hub_open(db, basira_cli_argon2_cost(), &hub, &e) ||
        basira_hub_export_adjudicated(hub, clinic, codes, info->num_classes, dir, csv, &n, &e)) {
        basira_cli_report("recalibrate", &e);
    } else if ((long)n < min_cases) {
        fprintf(stderr,
                _("basira recalibrate: %s has %zu adjudicated photos, fewer than %ld "
                  "(--min-cases): not enough to recalibrate\n"),
                clinic, n, min_cases);
    } else {
        char *args[20];
        int k = 0;
        args[k++] = (char *)"calibrate";
        args[k++] = (char *)"--model";
        args[k++] = (char *)model;
        args[k++] = (char *)"--images";
        args[k++] = dir;
        args[k++] = (char *)"--csv";
        args[k++] = csv;
        args[k++] = (char *)"--out";
        args[k++] = (char *)out;
        /* A clinic's shift moves P(malignant) itself: a temperature alone cannot undo it. */
        if (!no_bias)
            args[k++] = (char *)"--malignant-bias";
        if (json) {
            args[k++] = (char *)"--json";
            args[k++] = (char *)json;
        }
        if (sens) {
            args[k++] = (char *)"--target-sensitivity";
            args[k++] = (char *)sens;
        }
        if (spec) {
            args[k++] = (char *)"--high-specificity";
            args[k++] = (char *)spec;
        }
        if (conservative)
            args[k++] = (char *)"--conservative";
        args[k] = NULL;
        printf(_("recalibrating on %zu adjudicated photos of %s\n"), n, clinic);
        fflush(stdout);
        status = basira_cmd_calibrate.run(k, args);
    }
    basira_hub_free(hub);
    basira_classifier_free(clf);
    remove_tree(dir);
    return status;
}

const basira_command basira_cmd_recalibrate = {
    "recalibrate",
    N_("refit temperature and thresholds on a clinic's adjudicated cases at the hub"), run, usage};
