/*
 * cmd_split.c - `basira split`: write the train/validation/test parts of a CSV
 * without training, exactly as `basira train` makes them with the same --split,
 * --seed and --limit (the split depends only on those and the CSV). Used to fix
 * a held-out set before any training, or to evaluate on another tool's model.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira split --csv FILE --label-col NAME --out DIR [options]\n"
                 "Split a CSV into train.csv, val.csv and test.csv by group, stratified by "
                 "label, as 'basira train' does.\n\n"
                 "Options:\n"
                 "  --csv FILE         the table, one row per image (UTF-8 CSV with a header)\n"
                 "  --label-col NAME   column of class labels\n"
                 "  --group-col NAME   column grouping rows of one lesion or patient (default: "
                 "each row alone)\n"
                 "  --split T,V,S      fractions (0.70,0.15,0.15)\n"
                 "  --seed N           (1)\n"
                 "  --limit N          a random subset of N rows, as 'basira train --limit'\n"
                 "  --out DIR          folder for the three files (must exist)\n"
                 "  -h, --help         show this help\n"));
}

enum { OPT_CSV = 256, OPT_LABEL, OPT_GROUP, OPT_SPLIT, OPT_SEED, OPT_LIMIT, OPT_OUT };

static const struct option long_opts[] = {
    {"csv", required_argument, NULL, OPT_CSV},
    {"label-col", required_argument, NULL, OPT_LABEL},
    {"group-col", required_argument, NULL, OPT_GROUP},
    {"split", required_argument, NULL, OPT_SPLIT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"out", required_argument, NULL, OPT_OUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
    const char *csv_path = NULL, *label_col = NULL, *group_col = NULL, *out = NULL;
    double fr[3] = {0.70, 0.15, 0.15};
    long seed = 1, limit = 0;
    basira_error err;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_CSV:
            csv_path = optarg;
            break;
        case OPT_LABEL:
            label_col = optarg;
            break;
        case OPT_GROUP:
            group_col = optarg;
            break;
        case OPT_SPLIT:
            if (basira_split_parse(optarg, fr, &err)) {
                fprintf(stderr, "basira: %s\n", err.message);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case OPT_SEED:
            if (basira_cli_parse_long("--seed", optarg, 0, 2147483647L, &seed))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_LIMIT:
            if (basira_cli_parse_long("--limit", optarg, 0, 100000000, &limit))
                return BASIRA_EXIT_USAGE;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("split", c, argv, usage);
        }
    }
    if (optind < argc || !csv_path || !label_col || !out) {
        fprintf(stderr, _("basira: split needs --csv, --label-col and --out\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_csv *csv = NULL;
    if (basira_csv_read_file(csv_path, &csv, &err)) {
        basira_cli_report(NULL, &err);
        return BASIRA_EXIT_FAILED;
    }
    int status = BASIRA_EXIT_FAILED;
    size_t nrows = basira_csv_rows(csv);
    int lc = basira_csv_column(csv, label_col);
    int gc = group_col ? basira_csv_column(csv, group_col) : -1;
    size_t *rows = malloc((nrows ? nrows : 1) * sizeof *rows);
    int *part = malloc((nrows ? nrows : 1) * sizeof *part);
    size_t *sel = malloc((nrows ? nrows : 1) * sizeof *sel);
    if (!rows || !part || !sel) {
        fprintf(stderr, "basira: %s\n", basira_strerror(BASIRA_E_NOMEM));
        goto done;
    }
    if (lc < 0 || (group_col && gc < 0)) {
        fprintf(stderr, _("basira: the CSV has no column '%s'\n"), lc < 0 ? label_col : group_col);
        goto done;
    }
    size_t n = basira_split_select_rows(nrows, limit, (uint64_t)seed, rows);
    if (basira_split_rows(csv, rows, n, lc, gc, fr, (uint64_t)seed, part, NULL, &err)) {
        basira_cli_report(NULL, &err);
        goto done;
    }
    static const char *const names[3] = {"train.csv", "val.csv", "test.csv"};
    for (int p = 0; p < 3; p++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (part[i] == p)
                sel[k++] = rows[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out, names[p]);
        if (basira_csv_write_rows(csv, sel, k, path, &err)) {
            basira_cli_report(NULL, &err);
            goto done;
        }
        printf("%s: %zu\n", path, k);
    }
    status = BASIRA_EXIT_OK;
done:
    free(rows);
    free(part);
    free(sel);
    basira_csv_free(csv);
    return status;
}

const basira_command basira_cmd_split = {
    "split", N_("split a CSV into train, validation and test parts by group"), run, usage};
