/*
 * cmd_dedup.c - `basira dedup`: group near-duplicate photos (difference hash) so that
 * a split by group keeps every copy of a photo in the same part.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/csv.h"
#include "basira/fs.h"
#include "basira/image.h"
#include "basira/train.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira dedup --images DIR --csv FILE --out FILE [options]\n"
                 "Group near-duplicate photos by perceptual (difference) hash and write one\n"
                 "row per image: name, dup_group, dhash. Split with --group-col dup_group.\n\n"
                 "Options:\n"
                 "  --image-col NAME    column of the image name (default image_id)\n"
                 "  --max-distance N    differing hash bits still counted as a copy (default 6)\n"
                 "  -h, --help          show this help\n\n"
                 "Exit status: 0 written, 1 an image could not be read, 2 usage error.\n"));
}

static int run_dedup(int argc, char **argv)
{
    static const struct option opts[] = {
        {"images", required_argument, NULL, 'i'},
        {"csv", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"image-col", required_argument, NULL, 'I'},
        {"max-distance", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *images = NULL, *csv_path = NULL, *out = NULL, *image_col = "image_id";
    long maxd = 6;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            images = optarg;
            break;
        case 'c':
            csv_path = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'I':
            image_col = optarg;
            break;
        case 'd':
            if (basira_cli_parse_long("--max-distance", optarg, 0, 32, &maxd))
                return BASIRA_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("dedup", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("dedup", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!images || !csv_path || !out) {
        fprintf(stderr, _("basira dedup: --images, --csv and --out are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_error err;
    basira_error_clear(&err);
    basira_csv *csv = NULL;
    if (basira_csv_read_file(csv_path, &csv, &err)) {
        basira_cli_report(NULL, &err);
        return BASIRA_EXIT_FAILED;
    }
    int ic = basira_csv_column(csv, image_col);
    if (ic < 0) {
        fprintf(stderr, _("basira dedup: %s has no column '%s'\n"), csv_path, image_col);
        basira_csv_free(csv);
        return BASIRA_EXIT_USAGE;
    }
    size_t n = basira_csv_rows(csv), ok = 0, ng = 0;
    uint64_t *hash = malloc(sizeof(uint64_t) * (n ? n : 1));
    size_t *row = malloc(sizeof(size_t) * (n ? n : 1));
    int *group = malloc(sizeof(int) * (n ? n : 1));
    long failed = 0;
    int status = BASIRA_EXIT_FAILED;
    if (!hash || !row || !group) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    basira_intake_options io;
    basira_intake_options_default(&io);
    io.min_side = 8;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        basira_image *img = NULL;
        basira_error e;
        basira_error_clear(&e);
        const char *name = basira_csv_cell(csv, i, ic);
        if (basira_fs_find_image(images, name, path, sizeof path, &e) ||
            basira_image_load_file(path, &io, &img, &e) || basira_image_dhash(img, &hash[ok], &e)) {
            fprintf(stderr, "basira: %s: %s\n", name, e.message);
            failed++;
        } else
            row[ok++] = i;
        basira_image_free(img);
    }
    if (basira_group_near_duplicates(hash, ok, (int)maxd, group, &ng, &err))
        goto fail;
    FILE *f = fopen(out, "w");
    if (!f) {
        basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), out, strerror(errno));
        goto fail;
    }
    basira_cli_put_csv_cell(f, image_col);
    fputs(",dup_group,dhash\n", f);
    for (size_t k = 0; k < ok; k++) {
        basira_cli_put_csv_cell(f, basira_csv_cell(csv, row[k], ic));
        fprintf(f, ",g%d,%016" PRIx64 "\n", group[k], hash[k]);
    }
    if (fclose(f)) {
        basira_error_set(&err, BASIRA_E_IO, _("cannot write %s: %s"), out, strerror(errno));
        goto fail;
    }
    printf(_("%zu photos in %zu groups (%zu photos are near-duplicates of an earlier one); %ld "
             "unreadable\n"),
           ok, ng, ok - ng, failed);
    status = failed ? BASIRA_EXIT_FAILED : BASIRA_EXIT_OK;
    goto out;
fail:
    basira_cli_report(NULL, &err);
out:
    free(hash);
    free(row);
    free(group);
    basira_csv_free(csv);
    return status;
}

const basira_command basira_cmd_dedup = {
    "dedup", N_("group near-duplicate photos (perceptual hash) before a split"), run_dedup, usage};
