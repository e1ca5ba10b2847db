/*
 * cmd_purge.c - `basira purge`: delete what is past its retention period.
 *
 * Periods come from config.json in the data folder ({"retention_days": {"cases",
 * "photos", "quality_events", "audit"}}); the store deletes irrecoverably and
 * records the purge in the audit trail. Meant to run daily (cron or a timer).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basira/json.h"
#include "basira/site.h"
#include "basira/store.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira purge [options]\n"
                 "Delete cases, photos, quality events and audit entries older than their "
                 "retention period (config.json in the data folder, key \"retention_days\"; "
                 "defaults: cases 3650, photos 1825, quality_events 365, audit 7300 days). "
                 "Prints what was deleted as one JSON line.\n\n"
                 "Options:\n"
                 "  --data DIR       data folder (default ./basira-data)\n"
                 "  --key-file FILE  database key file (else BASIRA_DB_PASSPHRASE, else asked)\n"
                 "  -h, --help       show this help\n"));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"key-file", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "./basira-data", *key_file = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            dir = optarg;
            break;
        case 'K':
            key_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("purge", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("purge", argc, argv))
        return BASIRA_EXIT_USAGE;
    basira_error err;
    basira_site_config site;
    basira_code rc = basira_site_config_load(dir, &site, &err);
    basira_retention ret = site.retention;
    basira_site_config_free(&site);
    if (rc) {
        basira_cli_report(NULL, &err);
        return BASIRA_EXIT_FAILED;
    }
    basira_store *st = NULL;
    if (basira_cli_open_store(dir, key_file, 0, &st))
        return BASIRA_EXIT_FAILED;
    char actor[96];
    basira_actor who = basira_cli_actor(actor);
    basira_purge_report rep;
    int status = BASIRA_EXIT_OK;
    if (basira_store_purge(st, &who, &ret, (int64_t)time(NULL), &rep, &err)) {
        basira_cli_report(dir, &err);
        status = BASIRA_EXIT_FAILED;
    } else {
        json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:i}", "event", "purge", "cases",
                              (int)rep.cases, "photos", (int)rep.photos, "quality_events",
                              (int)rep.quality_events, "audit_entries", (int)rep.audit_entries);
        basira_json_print_line(stdout, j);
        json_decref(j);
    }
    basira_store_free(st);
    return status;
}

const basira_command basira_cmd_purge = {"purge", N_("delete data past its retention period"), run,
                                         usage};
