/*
 * cmd_export.c - `basira export`: every case as CSV or JSON, through the case
 * service (the same export as GET /api/v1/export, audited the same way).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/case.h"
#include "basira/fs.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira export [options]\n"
                 "Export every case with its analyses and decision as CSV (RFC 4180, columns in "
                 "docs/export.md) or JSON. The export is recorded in the audit trail.\n\n"
                 "Options:\n"
                 "  --data DIR       data folder (default ./basira-data)\n"
                 "  --key-file FILE  database key file (else BASIRA_DB_PASSPHRASE, else asked)\n"
                 "  --format F       csv (default) or json\n"
                 "  -o, --output F   the file to write (default: standard output)\n"
                 "  -h, --help       show this help\n"));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        BASIRA_CLI_STORE_OPTIONS,
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_cli_store_args sa = {"./basira-data", NULL};
    const char *format = "csv", *out = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (basira_cli_store_option(o, &sa))
            continue;
        switch (o) {
        case 'f':
            format = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("export", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("export", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(stderr, _("basira: --format must be csv or json\n"));
        return BASIRA_EXIT_USAGE;
    }
    basira_cli_cases cc;
    if (basira_cli_open_cases(sa.dir, sa.key_file, &cc))
        return BASIRA_EXIT_FAILED;
    basira_error err;
    char *text = NULL;
    size_t len = 0;
    int status = BASIRA_EXIT_OK;
    if (basira_case_export(cc.svc, &cc.actor, format, &text, &len, NULL, &err) ||
        (out && basira_fs_write_atomic(out, text, len, 0600, &err))) {
        basira_cli_report(NULL, &err);
        status = BASIRA_EXIT_FAILED;
    } else if (!out && (fwrite(text, 1, len, stdout) != len || fflush(stdout))) {
        fprintf(stderr, _("basira: cannot write the export to standard output\n"));
        status = BASIRA_EXIT_FAILED;
    }
    free(text);
    basira_cli_close_cases(&cc);
    return status;
}

const basira_command basira_cmd_export = {"export", N_("export every case as CSV or JSON"), run,
                                          usage};
