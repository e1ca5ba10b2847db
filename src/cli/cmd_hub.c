/*
 * cmd_hub.c - `basira hub`: the regional hub on PostgreSQL.
 *
 *   basira hub init --db CONNINFO
 *   basira hub user add --db CONNINFO --role ROLE --password-file F NAME
 *   basira hub enrol --db CONNINFO NODE_NAME        (token on the last line)
 *   basira hub cases --db CONNINFO [--json]
 *   basira hub reply --db CONNINFO --node N --case ID --plan P [--diagnosis D] [--message M] --by
 * USER basira hub nodes --db CONNINFO                   (each node's audit chain, JSON Lines)
 *   basira hub site-config --db CONNINFO --node N --file CONFIG.json [--by USER]
 *   basira hub request-original --db CONNINFO --node N --case ID --image ID --by USER
 *   basira hub indicators | outcome | costs ...       (hub_indicators.c)
 *   basira hub --db CONNINFO --listen ADDR:PORT      (serve)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "basira/hub.h"
#include "hub_cli.h"
#include "basira/json.h"
#include "cli.h"
#include "hub_oversight.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira hub --db CONNINFO --listen ADDR:PORT [--threads N]\n"
                 "       basira hub init --db CONNINFO\n"
                 "       basira hub user add --db CONNINFO --role ROLE --password-file FILE NAME\n"
                 "       basira hub enrol --db CONNINFO NODE_NAME\n"
                 "       basira hub cases --db CONNINFO [--json]\n"
                 "       basira hub reply --db CONNINFO --node NODE --case ID --plan PLAN "
                 "[--diagnosis TEXT] [--message TEXT] --by USER\n"
                 "       basira hub nodes --db CONNINFO\n"
                 "       basira hub site-config --db CONNINFO --node NODE --file CONFIG.json "
                 "[--by USER]\n"
                 "       basira hub request-original --db CONNINFO --node NODE --case ID --image "
                 "ID --by USER\n"
                 "The regional hub: the consented cases of many clinic nodes, the "
                 "dermatologists' worklist and replies, in PostgreSQL.\n\n"
                 "  --db CONNINFO   libpq connection string, e.g. \"host=/run/postgresql "
                 "dbname=basira\"\n"
                 "  --listen A:P    address to serve on (IPv4, port 0: any free port)\n"
                 "  --tls-cert F    HTTPS certificate (PEM), with --tls-key F (private key)\n"
                 "  --role ROLE     dermatologist, admin or auditor\n"
                 "  --plan PLAN     urgent_visit, biopsy, follow_up or reassure\n"
                 "  --session-idle S  sign hub users out after S seconds without activity "
                 "(default 900; 0: never)\n"
                 "`enrol` prints a one-time token as its last line: give it to the node's "
                 "`basira sync --enrol TOKEN`.\n"));
    basira_hub_oversight_usage(f);
}

typedef struct hub_args {
    const char *db, *listen, *role, *password_file, *node, *plan, *diagnosis, *message, *by;
    const char *tls_cert, *tls_key, *file;
    long threads, case_id, image_id, session_idle;
    int json;
} hub_args;

static int parse(int argc, char **argv, hub_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"role", required_argument, NULL, 'r'},
        {"password-file", required_argument, NULL, 'p'},
        {"node", required_argument, NULL, 'n'},
        {"case", required_argument, NULL, 'c'},
        {"plan", required_argument, NULL, 'P'},
        {"diagnosis", required_argument, NULL, 'D'},
        {"message", required_argument, NULL, 'm'},
        {"by", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'k'},
        {"file", required_argument, NULL, 'f'},
        {"image", required_argument, NULL, 'i'},
        {"session-idle", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->threads = 16;
    a->session_idle = -1;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            a->db = optarg;
            break;
        case 'l':
            a->listen = optarg;
            break;
        case 'r':
            a->role = optarg;
            break;
        case 'p':
            a->password_file = optarg;
            break;
        case 'n':
            a->node = optarg;
            break;
        case 'c':
            if (basira_cli_parse_long("--case", optarg, 1, 1L << 40, &a->case_id))
                return BASIRA_EXIT_USAGE;
            break;
        case 'P':
            a->plan = optarg;
            break;
        case 'f':
            a->file = optarg;
            break;
        case 'I':
            if (basira_cli_parse_long("--session-idle", optarg, 0, 86400, &a->session_idle))
                return BASIRA_EXIT_USAGE;
            break;
        case 'i':
            if (basira_cli_parse_long("--image", optarg, 1, 1L << 40, &a->image_id))
                return BASIRA_EXIT_USAGE;
            break;
        case 'D':
            a->diagnosis = optarg;
            break;
        case 'm':
            a->message = optarg;
            break;
        case 'b':
            a->by = optarg;
            break;
        case 't':
            if (basira_cli_parse_long("--threads", optarg, 1, 128, &a->threads))
                return BASIRA_EXIT_USAGE;
            break;
        case 'C':
            a->tls_cert = optarg;
            break;
        case 'k':
            a->tls_key = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return basira_cli_bad_option("hub", o, argv, usage);
        }
    }
    if (!a->db) {
        fprintf(stderr, _("basira hub: --db CONNINFO is required\n"));
        return BASIRA_EXIT_USAGE;
    }
    return 0;
}

static int serve(basira_hub *hub, const hub_args *a)
{
    char addr[64];
    long port = 0;
    const char *colon = a->listen ? strrchr(a->listen, ':') : NULL;
    if (!colon || colon == a->listen || (size_t)(colon - a->listen) >= sizeof addr ||
        basira_cli_parse_long("--listen", colon + 1, 0, 65535, &port)) {
        fprintf(stderr, _("basira: invalid --listen '%s' (expected ADDR:PORT)\n"),
                a->listen ? a->listen : "");
        return BASIRA_EXIT_USAGE;
    }
    snprintf(addr, sizeof addr, "%.*s", (int)(colon - a->listen), a->listen);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    basira_error e;
    basira_hub_server *srv = NULL;
    basira_hub_set_session_limits(hub, 0, a->session_idle, 0, 0);
    if (sfd < 0 || basira_hub_server_start(hub, addr, (uint16_t)port, (unsigned)a->threads,
                                           a->tls_cert, a->tls_key, &srv, &e)) {
        if (sfd >= 0)
            close(sfd);
        return sfd < 0 ? BASIRA_EXIT_FAILED : basira_cli_failed("hub", &e);
    }
    json_t *ready = json_pack("{s:s, s:s, s:i, s:b}", "event", "listening", "address", addr, "port",
                              (int)basira_hub_server_port(srv), "tls", a->tls_cert != NULL);
    basira_json_print_line(stderr, ready);
    json_decref(ready);
    struct signalfd_siginfo si;
    ssize_t n;
    do
        n = read(sfd, &si, sizeof si);
    while (n < 0 && errno == EINTR);
    basira_hub_server_stop(srv);
    close(sfd);
    return BASIRA_EXIT_OK;
}

static int run(int argc, char **argv)
{
    const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (basira_hub_oversight_is(sub))
        return basira_hub_oversight_main(argc - 1, argv + 1);
    int is_user = sub && !strcmp(sub, "user");
    if (is_user && (argc < 3 || strcmp(argv[2], "add"))) {
        fprintf(stderr, _("basira hub: expected `user add`\n"));
        return BASIRA_EXIT_USAGE;
    }
    if (sub && (!strcmp(sub, "indicators") || !strcmp(sub, "outcome") || !strcmp(sub, "costs")))
        return basira_hub_indicator_command(argc - 1, argv + 1);
    int skip = sub ? (is_user ? 2 : 1) : 0;
    hub_args a;
    optind = 1;
    int prc = parse(argc - skip, argv + skip, &a);
    if (prc)
        return prc < 0 ? BASIRA_EXIT_OK : prc;
    char **ops = argv + skip + optind;
    int n_ops = argc - skip - optind;
    basira_error e;
    if (sub && !strcmp(sub, "init")) {
        int v = 0;
        if (basira_hub_init(a.db, &v, &e))
            return basira_cli_failed("hub", &e);
        printf(_("hub schema at version %d\n"), v);
        return BASIRA_EXIT_OK;
    }
    static const char *const known[] = {
        "user", "enrol", "cases", "reply", "nodes", "site-config", "request-original", NULL};
    int ok = !sub;
    for (int i = 0; sub && known[i]; i++)
        ok |= !strcmp(sub, known[i]);
    if (!ok) {
        fprintf(stderr, _("basira hub: unknown subcommand %s\n"), sub);
        return BASIRA_EXIT_USAGE;
    }
    int want_ops = sub && (is_user || !strcmp(sub, "enrol"));
    if (n_ops != want_ops) {
        fprintf(stderr,
                want_ops ? _("basira hub: give one name\n")
                         : _("basira hub: unexpected argument %s\n"),
                n_ops ? ops[0] : "");
        return BASIRA_EXIT_USAGE;
    }
    basira_hub *hub = NULL;
    if (basira_hub_open(a.db, basira_cli_argon2_cost(), &hub, &e))
        return basira_cli_failed("hub", &e);
    int status = BASIRA_EXIT_OK;
    if (!sub) {
        status = serve(hub, &a);
    } else if (is_user) {
        basira_hub_role role;
        char pw[1024];
        if (basira_hub_role_parse(a.role, &role, &e))
            status = basira_cli_failed("hub", &e);
        else if (basira_cli_first_line(a.password_file, pw, sizeof pw))
            status = BASIRA_EXIT_FAILED;
        else if (basira_hub_user_add(hub, ops[0], role, pw, &e))
            status = basira_cli_failed("hub", &e);
        else
            printf(_("hub user %s added (%s)\n"), ops[0], basira_hub_role_name(role));
    } else if (!strcmp(sub, "enrol")) {
        char token[65];
        if (basira_hub_enrol(hub, ops[0], token, &e))
            status = basira_cli_failed("hub", &e);
        else
            printf(_("one-time enrolment token for node %s (give it to `basira sync --enrol`):\n"
                     "%s\n"),
                   ops[0], token);
    } else if (!strcmp(sub, "site-config")) {
        json_t *doc = NULL;
        int64_t id = 0;
        if (!a.node || !a.file) {
            fprintf(stderr, _("basira hub site-config: --node and --file are required\n"));
            status = BASIRA_EXIT_USAGE;
        } else if (basira_json_read_file(a.file, (size_t)1 << 20, &doc, NULL, &e) ||
                   basira_hub_site_config(hub, a.node, doc, a.by, &id, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            printf(_("site configuration queued for node %s (down item %lld)\n"), a.node,
                   (long long)id);
        }
        json_decref(doc);
    } else if (!strcmp(sub, "request-original")) {
        if (!a.node || !a.case_id || !a.image_id || !a.by) {
            fprintf(stderr, _("basira hub request-original: --node, --case, --image and --by are "
                              "required\n"));
            status = BASIRA_EXIT_USAGE;
        } else if (basira_hub_original_request(hub, a.node, a.case_id, a.image_id, a.by, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            printf(_("original requested from node %s\n"), a.node);
        }
    } else if (!strcmp(sub, "reply")) {
        basira_hub_reply_new r = {a.node, a.case_id, a.diagnosis, a.plan, a.message, a.by};
        int64_t id = 0;
        if (!a.node || !a.case_id || !a.by) {
            fprintf(stderr, _("basira hub reply: --node, --case, --plan and --by are required\n"));
            status = BASIRA_EXIT_USAGE;
        } else if (basira_hub_reply(hub, &r, &id, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            printf(_("reply %lld recorded\n"), (long long)id);
        }
    } else {
        json_t *arr = NULL;
        int cases = !strcmp(sub, "cases");
        if (cases ? basira_hub_cases(hub, &arr, &e) : basira_hub_nodes(hub, &arr, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            size_t i;
            json_t *o;
            json_array_foreach(arr, i, o)
            {
                if (a.json || !cases) {
                    basira_json_print_line(stdout, o);
                } else {
                    json_t *rp = json_object_get(o, "reply");
                    printf("%-16s %6lld  %-8s %-7s %s\n",
                           json_string_value(json_object_get(o, "node")),
                           (long long)json_integer_value(json_object_get(o, "case_id")),
                           json_string_value(json_object_get(o, "patient_ref")),
                           json_is_string(json_object_get(o, "category"))
                               ? json_string_value(json_object_get(o, "category"))
                               : "-",
                           json_is_object(rp) ? json_string_value(json_object_get(rp, "plan"))
                                              : "-");
                }
            }
            json_decref(arr);
        }
    }
    basira_hub_free(hub);
    return status;
}

const basira_command basira_cmd_hub = {
    "hub", N_("the regional hub on PostgreSQL (worklist of dermatologists, replies)"), run, usage};
