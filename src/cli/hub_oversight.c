/*
 * hub_oversight.c - the oversight subcommands of `basira hub`:
 *
 *   basira hub monitor --db CONNINFO [--reference F] [--json]
 *   basira hub monitor-reference ...               (drift_reference.c)
 *   basira hub releases --db CONNINFO [--json]
 *   basira hub release-key --out FILE             (prints the public key)
 *   basira hub release create --db C --id ID --model F --certify-report F --by USER
 *   basira hub release approve --db C --id ID --by USER --password-file F
 *   basira hub release sign --db C --id ID --key-file F --by USER
 *   basira hub release stage --db C --id ID --clinic NODE --by USER
 *   basira hub release rollback --db C --clinic NODE --by USER
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/fs.h"
#include "basira/hub_oversight.h"
#include "basira/json.h"
#include "basira/model.h"
#include "basira/paths.h"
#include "basira/release.h"
#include "cli.h"
#include "core/i18n.h"
#include "hub_oversight.h"

#define DEFAULT_REFERENCE "models/basira-derm/drift-reference.json"

void basira_hub_oversight_usage(FILE *f)
{
    fprintf(f, _("       basira hub monitor --db CONNINFO [--reference FILE] [--json]\n"
                 "       basira hub monitor-reference --model FILE --csv SPLIT --images DIR "
                 "[--metadata CSV] [--photo-kind KIND] --out FILE\n"
                 "       basira hub releases --db CONNINFO [--json]\n"
                 "       basira hub release-key --out FILE\n"
                 "       basira hub release create --db CONNINFO --id ID --model FILE "
                 "--certify-report FILE --by USER\n"
                 "       basira hub release approve --db CONNINFO --id ID --by USER "
                 "--password-file FILE\n"
                 "       basira hub release sign --db CONNINFO --id ID --key-file FILE --by USER\n"
                 "       basira hub release stage --db CONNINFO --id ID --clinic NODE --by USER\n"
                 "       basira hub release rollback --db CONNINFO --clinic NODE --by USER\n"));
}

int basira_hub_oversight_is(const char *sub)
{
    return sub &&
           (!strcmp(sub, "monitor") || !strcmp(sub, "monitor-reference") ||
            !strcmp(sub, "releases") || !strcmp(sub, "release") || !strcmp(sub, "release-key"));
}

typedef struct ov_args {
    const char *db, *reference, *id, *model, *certify, *by, *password_file, *key_file, *clinic,
        *out;
    int json;
} ov_args;

static void usage_all(FILE *f)
{
    basira_hub_oversight_usage(f);
}

static int parse(int argc, char **argv, ov_args *a)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"reference", required_argument, NULL, 'R'},
        {"id", required_argument, NULL, 'i'},
        {"model", required_argument, NULL, 'm'},
        {"certify-report", required_argument, NULL, 'c'},
        {"by", required_argument, NULL, 'b'},
        {"password-file", required_argument, NULL, 'p'},
        {"key-file", required_argument, NULL, 'k'},
        {"clinic", required_argument, NULL, 'C'},
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            a->db = optarg;
            break;
        case 'R':
            a->reference = optarg;
            break;
        case 'i':
            a->id = optarg;
            break;
        case 'm':
            a->model = optarg;
            break;
        case 'c':
            a->certify = optarg;
            break;
        case 'b':
            a->by = optarg;
            break;
        case 'p':
            a->password_file = optarg;
            break;
        case 'k':
            a->key_file = optarg;
            break;
        case 'C':
            a->clinic = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            usage_all(stdout);
            return -1;
        default:
            return basira_cli_bad_option("hub", o, argv, usage_all);
        }
    }
    if (optind != argc) {
        fprintf(stderr, _("basira hub: unexpected argument %s\n"), argv[optind]);
        return BASIRA_EXIT_USAGE;
    }
    return 0;
}

static int need(const char *what, const char *v)
{
    if (v)
        return 0;
    fprintf(stderr, _("basira hub: %s is required\n"), what);
    return 1;
}

static int monitor(basira_hub *hub, const ov_args *a)
{
    char path[4096];
    basira_error e;
    const char *ref_path = a->reference;
    if (!ref_path) {
        if (basira_data_file(DEFAULT_REFERENCE, path, sizeof path, &e))
            return basira_cli_failed("hub", &e);
        ref_path = path;
    }
    json_t *ref = NULL, *out = NULL;
    if (basira_json_read_file(ref_path, (size_t)64 << 20, &ref, NULL, &e) ||
        basira_hub_monitor(hub, ref, &out, &e)) {
        json_decref(ref);
        return basira_cli_failed("hub", &e);
    }
    json_decref(ref);
    size_t i;
    json_t *c;
    json_array_foreach(out, i, c)
    {
        if (a->json) {
            basira_json_print_line(stdout, c);
            continue;
        }
        json_t *first = json_object_get(c, "first_alert_week");
        printf("%-24s %-6s %-10s %zu %s\n", json_string_value(json_object_get(c, "clinic")),
               json_string_value(json_object_get(c, "alert")),
               json_is_string(first) ? json_string_value(first) : "-",
               json_array_size(json_object_get(c, "weeks")), _("weeks"));
    }
    json_decref(out);
    return BASIRA_EXIT_OK;
}

static int release_key(const ov_args *a)
{
    char pk[65], sk[129];
    basira_error e;
    if (need("--out FILE", a->out))
        return BASIRA_EXIT_USAGE;
    if (basira_release_keygen(pk, sk, &e))
        return basira_cli_failed("hub", &e);
    char line[131];
    snprintf(line, sizeof line, "%s\n", sk);
    basira_code rc = basira_fs_write_atomic(a->out, line, strlen(line), 0600, &e);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(line, sizeof line);
    if (rc)
        return basira_cli_failed("hub", &e);
    printf(_("release key written to %s; its public key (give it to every node's "
             "--release-key):\n%s\n"),
           a->out, pk);
    return BASIRA_EXIT_OK;
}

static int create(basira_hub *hub, const ov_args *a)
{
    if (need("--id", a->id) || need("--model FILE", a->model) ||
        need("--certify-report FILE", a->certify) || need("--by USER", a->by))
        return BASIRA_EXIT_USAGE;
    basira_error e;
    basira_classifier *clf = NULL;
    /* Only a model that loads (metadata, shapes) becomes a release. */
    if (basira_classifier_load(a->model, &clf, &e))
        return basira_cli_failed("hub", &e);
    const basira_model_info *info = basira_classifier_info(clf);
    unsigned char *model = NULL, *report = NULL;
    size_t len = 0, rlen = 0;
    int status = BASIRA_EXIT_OK;
    if (basira_fs_read(a->model, BASIRA_RELEASE_MAX_MODEL_BYTES, &model, &len, &e) ||
        basira_fs_read(a->certify, (size_t)64 << 20, &report, &rlen, &e)) {
        status = basira_cli_failed("hub", &e);
    } else {
        unsigned char h[crypto_hash_sha256_BYTES];
        char rsha[65];
        crypto_hash_sha256(h, report, rlen);
        sodium_bin2hex(rsha, sizeof rsha, h, sizeof h);
        basira_hub_release_new r = {a->id, info->name, info->version, model, len, rsha, a->by};
        if (basira_hub_release_create(hub, &r, &e))
            status = basira_cli_failed("hub", &e);
        else
            printf(_("release %s created (%s %s, %s); it needs the approvals of a data steward "
                     "and a medical lead\n"),
                   a->id, info->name, info->version, basira_classifier_sha256(clf));
    }
    free(model);
    free(report);
    basira_classifier_free(clf);
    return status;
}

static int release(basira_hub *hub, const char *op, const ov_args *a)
{
    basira_error e;
    if (!strcmp(op, "create"))
        return create(hub, a);
    if (!strcmp(op, "approve")) {
        char pw[1024];
        if (need("--id", a->id) || need("--by USER", a->by) ||
            need("--password-file FILE", a->password_file))
            return BASIRA_EXIT_USAGE;
        if (basira_cli_first_line(a->password_file, pw, sizeof pw))
            return BASIRA_EXIT_FAILED;
        basira_code rc = basira_hub_release_approve(hub, a->id, a->by, pw, &e);
        sodium_memzero(pw, sizeof pw);
        if (rc)
            return basira_cli_failed("hub", &e);
        printf(_("release %s approved by %s\n"), a->id, a->by);
        return BASIRA_EXIT_OK;
    }
    if (!strcmp(op, "sign")) {
        char sk[256];
        if (need("--id", a->id) || need("--key-file FILE", a->key_file) || need("--by USER", a->by))
            return BASIRA_EXIT_USAGE;
        if (basira_cli_first_line(a->key_file, sk, sizeof sk))
            return BASIRA_EXIT_FAILED;
        basira_code rc = basira_hub_release_sign(hub, a->id, sk, a->by, &e);
        sodium_memzero(sk, sizeof sk);
        if (rc)
            return basira_cli_failed("hub", &e);
        printf(_("release %s signed\n"), a->id);
        return BASIRA_EXIT_OK;
    }
    if (!strcmp(op, "stage")) {
        if (need("--id", a->id) || need("--clinic NODE", a->clinic) || need("--by USER", a->by))
            return BASIRA_EXIT_USAGE;
        if (basira_hub_release_stage(hub, a->id, a->clinic, a->by, &e))
            return basira_cli_failed("hub", &e);
        printf(_("release %s staged for %s\n"), a->id, a->clinic);
        return BASIRA_EXIT_OK;
    }
    if (!strcmp(op, "rollback")) {
        if (need("--clinic NODE", a->clinic) || need("--by USER", a->by))
            return BASIRA_EXIT_USAGE;
        if (basira_hub_release_rollback(hub, a->clinic, a->by, &e))
            return basira_cli_failed("hub", &e);
        printf(_("%s goes back to its previous release at its next sync\n"), a->clinic);
        return BASIRA_EXIT_OK;
    }
    fprintf(stderr, _("basira hub release: unknown step %s\n"), op);
    return BASIRA_EXIT_USAGE;
}

int basira_hub_oversight_main(int argc, char **argv)
{
    const char *sub = argv[0];
    const char *op = NULL;
    if (!strcmp(sub, "monitor-reference"))
        return basira_hub_monitor_reference_main(argc, argv);
    int skip = 0;
    if (!strcmp(sub, "release")) {
        if (argc < 2 || argv[1][0] == '-') {
            fprintf(stderr, _("basira hub release: expected create, approve, sign, stage or "
                              "rollback\n"));
            return BASIRA_EXIT_USAGE;
        }
        op = argv[1];
        skip = 1;
    }
    ov_args a;
    int prc = parse(argc - skip, argv + skip, &a);
    if (prc)
        return prc < 0 ? BASIRA_EXIT_OK : prc;
    if (!strcmp(sub, "release-key"))
        return release_key(&a);
    if (need("--db CONNINFO", a.db))
        return BASIRA_EXIT_USAGE;
    basira_error e;
    basira_hub *hub = NULL;
    if (basira_hub_open(a.db, basira_cli_argon2_cost(), &hub, &e))
        return basira_cli_failed("hub", &e);
    int status;
    if (!strcmp(sub, "monitor")) {
        status = monitor(hub, &a);
    } else if (!strcmp(sub, "releases")) {
        json_t *out = NULL;
        if (basira_hub_releases(hub, &out, &e)) {
            status = basira_cli_failed("hub", &e);
        } else {
            if (a.json)
                basira_json_print_line(stdout, out);
            else
                json_dumpf(out, stdout, JSON_INDENT(2));
            if (!a.json)
                putchar('\n');
            json_decref(out);
            status = BASIRA_EXIT_OK;
        }
    } else {
        status = release(hub, op, &a);
    }
    basira_hub_free(hub);
    return status;
}
