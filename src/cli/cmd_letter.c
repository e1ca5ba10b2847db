/*
 * cmd_letter.c - `basira letter`: the referral letter of a case as PDF, made
 * by the case service exactly as the clinic node serves it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/case.h"
#include "basira/fs.h"
#include "basira/i18n.h"
#include "basira/json.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira letter [options] CASE_ID\n"
                 "Write the one-page referral letter of a case (PDF), with its most recent "
                 "analysed photo and the clinic of config.json in the data folder. Reading the "
                 "case is recorded in the audit trail.\n\n"
                 "Options:\n"
                 "  --data DIR       data folder (default ./basira-data)\n"
                 "  --key-file FILE  database key file (else BASIRA_DB_PASSPHRASE, else asked)\n"
                 "  --lang LANG      fr, ar or en (default: the language of your locale)\n"
                 "  -o, --output F   the PDF file to write (default basira-case-ID-LANG.pdf)\n"
                 "  -h, --help       show this help\n"));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        BASIRA_CLI_STORE_OPTIONS,
        {"lang", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_cli_store_args sa = {"./basira-data", NULL};
    const char *lang = basira_language(), *out = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (basira_cli_store_option(o, &sa))
            continue;
        switch (o) {
        case 'l':
            lang = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("letter", o, argv, usage);
        }
    }
    long id = 0;
    if (optind != argc - 1) {
        fprintf(stderr, _("basira letter: give one case id\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    if (basira_cli_parse_long("CASE_ID", argv[optind], 1, 0x7fffffffL, &id))
        return BASIRA_EXIT_USAGE;
    if (strcmp(lang, "fr") && strcmp(lang, "ar") && strcmp(lang, "en")) {
        fprintf(stderr, _("basira: --lang must be fr, ar or en\n"));
        return BASIRA_EXIT_USAGE;
    }
    char path[4096];
    if (!out) {
        snprintf(path, sizeof path, "basira-case-%ld-%s.pdf", id, lang);
        out = path;
    }
    basira_cli_cases cc;
    if (basira_cli_open_cases(sa.dir, sa.key_file, &cc))
        return BASIRA_EXIT_FAILED;
    basira_error err;
    unsigned char *pdf = NULL;
    size_t len = 0;
    int status = BASIRA_EXIT_OK;
    /* Patient data: the letter is written readable by its owner only. */
    if (basira_case_letter(cc.svc, &cc.actor, (int64_t)id, lang, &pdf, &len, &err) ||
        basira_fs_write_atomic(out, pdf, len, 0600, &err)) {
        basira_cli_report(NULL, &err);
        status = BASIRA_EXIT_FAILED;
    } else {
        json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:I}", "event", "letter", "case",
                              (json_int_t)id, "lang", lang, "file", out, "bytes", (json_int_t)len);
        basira_json_print_line(stdout, j);
        json_decref(j);
    }
    free(pdf);
    basira_cli_close_cases(&cc);
    return status;
}

const basira_command basira_cmd_letter = {"letter", N_("write the referral letter of a case (PDF)"),
                                          run, usage};
