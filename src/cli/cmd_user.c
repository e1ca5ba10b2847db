/*
 * cmd_user.c - `basira user add|passwd|disable|enable|unlock|list`: accounts of the clinic node.
 *
 * The first `basira user add` on a data folder creates the encrypted store
 * (asking for the database passphrase twice when it is typed on a terminal).
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/json.h"
#include "basira/store.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    char roles[256]; /* from the role table, so a new role is never missing here */
    basira_role_list(roles, sizeof roles);
    fprintf(f,
            _("Usage: basira user add --role ROLE [options] USERNAME\n"
              "       basira user passwd [options] USERNAME\n"
              "       basira user disable|enable [options] USERNAME\n"
              "       basira user list [options]\n"
              "Manage the accounts of the clinic node. Roles: %s.\n\n"
              "Options:\n"
              "  --data DIR            data folder (default ./basira-data); created by the "
              "first 'user add'\n"
              "  --role ROLE           role of a new user\n"
              "  --password-file FILE  read the password from the first line of FILE (else "
              "asked on the terminal)\n"
              "  --key-file FILE       database key file (else BASIRA_DB_PASSPHRASE, else "
              "asked)\n"
              "  -h, --help            show this help\n"),
            roles);
    fprintf(f, _("Also: basira user unlock [options] USERNAME lifts the sign-in lockout of an "
                 "account (after too many failed sign-ins).\n"));
}

/* "cli:<login name>", the actor recorded in the audit trail for local commands. */
static void actor_name_of_user(char *out, size_t outsz)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(out, outsz, "cli-%s", pw && pw->pw_name ? pw->pw_name : "unknown");
}

static int read_password(const char *file, int confirm, char *buf, size_t bufsz)
{
    basira_error err;
    if (!file) {
        if (basira_cli_prompt_secret(_("Password: "), confirm ? _("Repeat the password: ") : NULL,
                                     buf, bufsz, &err)) {
            basira_cli_report(NULL, &err);
            return -1;
        }
        return 0;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, _("basira: cannot read %s\n"), file);
        return -1;
    }
    int ok = fgets(buf, (int)bufsz, f) != NULL;
    fclose(f);
    if (!ok) {
        fprintf(stderr, _("basira: %s is empty\n"), file);
        return -1;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"password-file", required_argument, NULL, 'p'},
        {"key-file", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "./basira-data", *role_name = NULL, *pw_file = NULL, *key_file = NULL;
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? BASIRA_EXIT_USAGE : BASIRA_EXIT_OK;
    }
    const char *sub = argv[1];
    int o;
    optind = 2;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            dir = optarg;
            break;
        case 'r':
            role_name = optarg;
            break;
        case 'p':
            pw_file = optarg;
            break;
        case 'K':
            key_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("user", o, argv, usage);
        }
    }
    int is_list = !strcmp(sub, "list");
    int known = is_list || !strcmp(sub, "add") || !strcmp(sub, "passwd") ||
                !strcmp(sub, "disable") || !strcmp(sub, "enable") || !strcmp(sub, "unlock");
    if (!known) {
        fprintf(stderr, _("basira: unknown user command '%s'\n"), sub);
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    if (is_list ? optind != argc : optind != argc - 1) {
        fprintf(stderr, is_list ? _("basira: user list takes no USERNAME\n")
                                : _("basira: give exactly one USERNAME\n"));
        return BASIRA_EXIT_USAGE;
    }
    const char *name = is_list ? NULL : argv[optind];
    basira_role role = BASIRA_ROLE_GP;
    basira_error err;
    if (!strcmp(sub, "add")) {
        if (!role_name) {
            fprintf(stderr, _("basira: user add needs --role ROLE\n"));
            return BASIRA_EXIT_USAGE;
        }
        if (basira_role_parse(role_name, &role, &err)) {
            basira_cli_report(NULL, &err);
            return BASIRA_EXIT_USAGE;
        }
    }

    int creating = !strcmp(sub, "add") && !basira_store_exists(dir);
    char password[1100];
    basira_store *st = NULL;
    if (basira_cli_open_store(dir, key_file, creating, &st))
        return BASIRA_EXIT_FAILED;
    char actor_name[96];
    actor_name_of_user(actor_name, sizeof actor_name);
    basira_actor who = {actor_name, "local"};
    basira_code rc = BASIRA_OK;
    int status = BASIRA_EXIT_OK;
    if (!strcmp(sub, "add") || !strcmp(sub, "passwd")) {
        if (read_password(pw_file, 1, password, sizeof password)) {
            basira_store_free(st);
            return BASIRA_EXIT_FAILED;
        }
        rc = !strcmp(sub, "add") ? basira_store_user_add(st, &who, name, role, password, &err)
                                 : basira_store_user_passwd(st, &who, name, password, &err);
        memset(password, 0, sizeof password);
    } else if (!strcmp(sub, "unlock")) {
        rc = basira_store_user_unlock(st, &who, name, &err);
    } else if (!strcmp(sub, "disable") || !strcmp(sub, "enable")) {
        rc = basira_store_user_set_disabled(st, &who, name, !strcmp(sub, "disable"), &err);
    } else {
        json_t *list = NULL;
        if (!(rc = basira_store_user_list(st, &list, &err))) {
            size_t i;
            json_t *u;
            json_array_foreach(list, i, u) basira_json_print_line(stdout, u);
            json_decref(list);
        }
    }
    if (rc) {
        basira_cli_report(name, &err);
        status = BASIRA_EXIT_FAILED;
    } else if (!is_list) {
        printf(_("user %s: done (%s)\n"), name, sub);
    }
    basira_store_free(st);
    return status;
}

const basira_command basira_cmd_user = {"user", N_("manage the clinic node's accounts"), run,
                                        usage};
