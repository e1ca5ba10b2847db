/*
 * cmd_sync.c - `basira sync`: the clinic node and its regional hub.
 *
 *   basira sync --data DIR --key-file K --hub URL --enrol TOKEN   (once)
 *   basira sync --data DIR --key-file K --hub URL --once          (one round)
 *   ... --once --models DIR --release-key HEX    (and the model release step)
 *
 * `--once` exits 0 only when everything pending was acknowledged by the hub;
 * its report is one JSON line on standard output.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/json.h"
#include "basira/store_sync.h"
#include "basira/sync.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira sync --hub URL --enrol TOKEN [options]\n"
                 "       basira sync --hub URL --once [options]\n"
                 "Send this node's consented cases to the regional hub and fetch the "
                 "dermatologists' replies.\n\n"
                 "Options:\n"
                 "  --data DIR         data folder (default ./basira-data)\n"
                 "  --key-file FILE    database key file (else BASIRA_DB_PASSPHRASE, else asked)\n"
                 "  --hub URL          the hub, e.g. https://hub.example:8443\n"
                 "  --enrol TOKEN      enrol this node with a token from `basira hub enrol`\n"
                 "  --once             one round: push, then pull; exit 0 when all was "
                 "acknowledged\n"
                 "  --max-kbps N       cap the link at N kilobits per second\n"
                 "  --photo-side PX    long side of the photo copy sent (default 1024)\n"
                 "  --ca-file FILE     trust this CA for HTTPS\n"
                 "  --originals P      the stored original photos: auto (default: those a "
                 "dermatologist requested, all on a good link of 2000 kbit/s or more), never or "
                 "always\n"
                 "  --chunk-kib N      photos travel in chunks of N KiB (default 64)\n"
                 "  --resend           with --once: send everything again from the start (after "
                 "the hub was restored from a backup; it skips what it has)\n"
                 "  -h, --help         show this help\n"));
    fprintf(f, _("  --models DIR       with --once: the node's folder of model releases; install "
                 "the release the hub staged for this node when it verifies\n"
                 "  --release-key HEX  the hub's release public key (64 hex digits)\n"));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        BASIRA_CLI_STORE_OPTIONS,
        {"hub", required_argument, NULL, 'u'},
        {"enrol", required_argument, NULL, 'e'},
        {"once", no_argument, NULL, 'o'},
        {"max-kbps", required_argument, NULL, 'k'},
        {"photo-side", required_argument, NULL, 's'},
        {"ca-file", required_argument, NULL, 'c'},
        {"resend", no_argument, NULL, 'r'},
        {"originals", required_argument, NULL, 'O'},
        {"chunk-kib", required_argument, NULL, 'z'},
        {"models", required_argument, NULL, 'M'},
        {"release-key", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_cli_store_args sa = {"./basira-data", NULL};
    const char *token = NULL, *models = NULL, *release_key = NULL;
    int once = 0, resend = 0;
    long kbps = 0, side = 1024, chunk_kib = 64;
    basira_sync_options so;
    basira_sync_options_init(&so);
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (basira_cli_store_option(o, &sa))
            continue;
        switch (o) {
        case 'u':
            so.hub_url = optarg;
            break;
        case 'e':
            token = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'k':
            if (basira_cli_parse_long("--max-kbps", optarg, 1, 10000000, &kbps))
                return BASIRA_EXIT_USAGE;
            break;
        case 's':
            if (basira_cli_parse_long("--photo-side", optarg, 128, 8192, &side))
                return BASIRA_EXIT_USAGE;
            break;
        case 'c':
            so.ca_file = optarg;
            break;
        case 'r':
            resend = 1;
            break;
        case 'O':
            if (basira_cli_parse_originals(optarg, &so))
                return BASIRA_EXIT_USAGE;
            break;
        case 'z':
            if (basira_cli_parse_long("--chunk-kib", optarg, 4, 1024, &chunk_kib))
                return BASIRA_EXIT_USAGE;
            break;
        case 'M':
            models = optarg;
            break;
        case 'P':
            release_key = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("sync", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("sync", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!so.hub_url || (!token == !once)) {
        fprintf(stderr, _("basira sync: give --hub URL and one of --enrol TOKEN or --once\n"));
        return BASIRA_EXIT_USAGE;
    }
    if (!models != !release_key || (models && !once)) {
        fprintf(stderr, _("basira sync: --models DIR and --release-key HEX go together, with "
                          "--once\n"));
        return BASIRA_EXIT_USAGE;
    }
    so.max_kbps = kbps;
    so.photo_max_side = (int)side;
    so.chunk_bytes = (size_t)chunk_kib * 1024;
    so.data_dir = sa.dir;
    basira_store *st = NULL;
    if (basira_cli_open_store(sa.dir, sa.key_file, 0, &st))
        return BASIRA_EXIT_FAILED;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    basira_error err;
    int status = BASIRA_EXIT_OK;
    if (token) {
        char node[65];
        if (basira_sync_enrol(st, &so, token, node, &err)) {
            basira_cli_report("sync", &err);
            status = BASIRA_EXIT_FAILED;
        } else {
            printf(_("enrolled as node %s\n"), node);
        }
    } else {
        basira_sync_report rep;
        memset(&rep, 0, sizeof rep);
        basira_code rc = BASIRA_OK;
        if (resend && (rc = basira_store_sync_set(st, "acked_seq", "0", &err)) == BASIRA_OK)
            rc = basira_store_sync_set(st, "acked_audit", "0", &err);
        if (!rc)
            rc = basira_sync_round(st, &so, &rep, &err);
        json_t *j = json_pack(
            "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:b}", "event",
            "sync_round", "ok", rc == BASIRA_OK, "pushed", (json_int_t)rep.pushed, "duplicates",
            (json_int_t)rep.duplicates, "audit_sent", (json_int_t)rep.audit_sent, "replies",
            (json_int_t)rep.replies, "pending", (json_int_t)rep.pending, "bytes_up",
            (json_int_t)rep.bytes_up, "bytes_down", (json_int_t)rep.bytes_down, "photos",
            (json_int_t)rep.photos, "photo_bytes_original", (json_int_t)rep.photo_bytes_original,
            "photo_bytes_sent", (json_int_t)rep.photo_bytes_sent, "requests", rep.requests,
            "audit_ok", rep.audit_ok);
        json_object_set_new(j, "chunks", json_integer(rep.chunks));
        json_object_set_new(j, "originals", json_integer(rep.originals));
        json_object_set_new(j, "down", json_integer(rep.down));
        json_object_set_new(j, "link_kbps", json_integer(rep.link_kbps));
        basira_json_print_line(stdout, j);
        json_decref(j);
        if (!rc && models) {
            basira_sync_release_report rr;
            rc = basira_sync_release(st, &so, models, release_key, &rr, &err);
            j = json_pack("{s:s, s:b, s:b, s:b, s:s, s:s}", "event", "release", "offered",
                          rr.offered, "installed", rr.installed, "refused", rr.refused,
                          "release_id", rr.release_id, "running", rr.sha256);
            basira_json_print_line(stdout, j);
            json_decref(j);
        }
        if (rc) {
            basira_cli_report("sync", &err);
            status = BASIRA_EXIT_FAILED;
        }
    }
    curl_global_cleanup();
    basira_store_free(st);
    return status;
}

const basira_command basira_cmd_sync = {
    "sync", N_("send consented cases to the regional hub and fetch its replies"), run, usage};
