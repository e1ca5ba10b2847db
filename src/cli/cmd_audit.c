/*
 * cmd_audit.c - `basira audit verify|list`: check and read the hash-chained audit trail.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/json.h"
#include "basira/store.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira audit verify [options]\n"
                 "       basira audit list [--after ID] [--limit N] [options]\n"
                 "verify checks the hash chain of the audit trail and names the first entry that "
                 "was edited, inserted or deleted (exit status 1 when it was tampered with).\n"
                 "list prints the entries as JSON Lines, oldest first.\n\n"
                 "Options:\n"
                 "  --data DIR       data folder (default ./basira-data)\n"
                 "  --key-file FILE  database key file (else BASIRA_DB_PASSPHRASE, else asked)\n"
                 "  --after ID       list entries after this id (default 0)\n"
                 "  --limit N        list at most N entries (default 1000)\n"
                 "  -h, --help       show this help\n"));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},  {"key-file", required_argument, NULL, 'K'},
        {"after", required_argument, NULL, 'a'}, {"limit", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *dir = "./basira-data", *key_file = NULL;
    long after = 0, limit = 1000;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BASIRA_EXIT_USAGE : BASIRA_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "verify") && strcmp(sub, "list")) {
        fprintf(stderr, _("basira: unknown audit command '%s'\n"), sub);
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            dir = optarg;
            break;
        case 'K':
            key_file = optarg;
            break;
        case 'a':
            if (basira_cli_parse_long("--after", optarg, 0, 0x7fffffffL, &after))
                return BASIRA_EXIT_USAGE;
            break;
        case 'n':
            if (basira_cli_parse_long("--limit", optarg, 1, 1000, &limit))
                return BASIRA_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("audit", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("audit", argc, argv))
        return BASIRA_EXIT_USAGE;
    basira_error err;
    basira_store *st = NULL;
    if (basira_cli_open_store(dir, key_file, 0, &st))
        return BASIRA_EXIT_FAILED;
    int status = BASIRA_EXIT_OK;
    if (!strcmp(sub, "verify")) {
        basira_audit_report rep;
        basira_code rc = basira_store_audit_verify(st, &rep, &err);
        if (rc == BASIRA_E_TAMPERED) {
            basira_cli_report(_("audit trail"), &err);
            status = BASIRA_EXIT_FAILED;
        } else if (rc) {
            basira_cli_report(dir, &err);
            status = BASIRA_EXIT_FAILED;
        } else {
            printf(_("audit trail intact: %ld entries verified\n"), rep.checked);
        }
    } else {
        json_t *out = NULL;
        char actor[96];
        basira_actor who = basira_cli_actor(actor);
        if (basira_store_audit_list(st, &who, after, (int)limit, &out, &err)) {
            basira_cli_report(dir, &err);
            status = BASIRA_EXIT_FAILED;
        } else {
            size_t i;
            json_t *e;
            json_array_foreach(json_object_get(out, "items"), i, e)
                basira_json_print_line(stdout, e);
            json_decref(out);
        }
    }
    basira_store_free(st);
    return status;
}

const basira_command basira_cmd_audit = {"audit", N_("verify or list the audit trail"), run, usage};
