/*
 * cmd_archive.c - `basira archive push|pull`: the national image archive (Orthanc).
 *
 *   basira archive push --url URL [--user U --password-file F] [--json] FILE|DIR...
 *       send de-identified DICOM files (refusing any other) and check what was stored;
 *   basira archive pull --url URL [--user U --password-file F] --label-tag TAG
 *                       [--query KEY=VALUE]... [--limit N] --out DIR
 *       a training set: PNG images in DIR/images and DIR/labels.csv (file,label,patient), ready for
 *       `basira train --images DIR/images --csv DIR/labels.csv --image-col file
 *        --group-col patient`.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basira/archive.h"
#include "basira/json.h"
#include "cli.h"
#include "core/i18n.h"

#define MAX_QUERY 16

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira archive push --url URL [options] FILE|DIR...\n"
                 "       basira archive pull --url URL --label-tag TAG --out DIR [options]\n"
                 "The national image archive (Orthanc, through its REST API).\n\n"
                 "push: send de-identified DICOM files (files 'basira anonymize' wrote; any "
                 "other is\n"
                 "      refused before sending), then read back what was stored and compare.\n"
                 "pull: a training set from a query: DIR/images/*.png and DIR/labels.csv\n"
                 "      (file,label,patient) for 'basira train --group-col patient'.\n\n"
                 "Options:\n"
                 "  --url URL            the archive, e.g. http://127.0.0.1:8042\n"
                 "  --user NAME          HTTP user; the password comes from --password-file or\n"
                 "                       the environment variable BASIRA_ARCHIVE_PASSWORD\n"
                 "  --password-file F    file holding the password\n"
                 "  --query KEY=VALUE    pull: DICOM keyword and value (wildcards * ?), "
                 "repeatable\n"
                 "  --label-tag TAG      pull: the attribute holding the label (e.g. "
                 "StudyDescription)\n"
                 "  --limit N            pull: at most N instances\n"
                 "  --out DIR            pull: the training set folder\n"
                 "  --json               push: one JSON object per file\n"
                 "  -h, --help           show this help\n\n"
                 "Exit status: 0 everything was done, 1 some file was refused or failed, 2 "
                 "usage error.\n"));
}

static char *read_password(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[256];
    char *s = fgets(buf, sizeof buf, f) ? strdup(buf) : NULL;
    fclose(f);
    if (s)
        s[strcspn(s, "\r\n")] = 0;
    memset(buf, 0, sizeof buf);
    return s;
}

static int push_one(basira_archive *a, const char *path, int json)
{
    basira_archive_pushed p;
    basira_error err;
    basira_error_clear(&err);
    basira_code rc = basira_archive_push(a, path, &p, &err);
    if (json) {
        json_t *o = json_pack("{s:s, s:s}", "file", path, "status", rc ? "refused" : "stored");
        if (rc)
            json_object_set_new(o, "error", basira_json_error(&err));
        else
            json_object_set_new(o, "instance", json_string(p.instance)),
                json_object_set_new(o, "archive_status", json_string(p.status)),
                json_object_set_new(o, "verified", json_boolean(p.verified));
        basira_json_print_line(stdout, o);
        json_decref(o);
    } else if (!rc) {
        printf(_("%s: stored as %s (%s), verified\n"), path, p.instance, p.status);
    }
    if (rc)
        fprintf(stderr, _("basira archive: %s refused: %s\n"), path,
                err.message[0] ? err.message : basira_strerror(err.code));
    fflush(stdout);
    return rc ? 1 : 0;
}

static int push_path(basira_archive *a, const char *path, int json, int depth)
{
    struct stat st;
    if (lstat(path, &st)) {
        fprintf(stderr, _("basira archive: %s refused: %s\n"), path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? push_one(a, path, json) : 0;
    if (depth > 32)
        return 0;
    char **names;
    size_t n;
    if (basira_cli_list_dir(path, &names, &n)) {
        fprintf(stderr, _("basira archive: %s refused: %s\n"), path, strerror(errno));
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char sub[4096];
        if (names[i][0] == '.') /* hidden files, e.g. .partial leftovers of another tool */
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, names[i]) >= (int)sizeof sub) {
            fprintf(stderr, _("basira archive: %s refused: %s\n"), names[i],
                    strerror(ENAMETOOLONG));
            bad = 1;
        } else {
            bad |= push_path(a, sub, json, depth + 1);
        }
    }
    basira_cli_free_names(names, n);
    return bad;
}

static int run(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "push") && strcmp(argv[1], "pull"))) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            usage(stdout);
            return BASIRA_EXIT_OK;
        }
        fprintf(stderr, _("basira archive: expected 'push' or 'pull'\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    int pull = !strcmp(argv[1], "pull");
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"user", required_argument, NULL, 'U'},
        {"password-file", required_argument, NULL, 'P'},
        {"query", required_argument, NULL, 'q'},
        {"label-tag", required_argument, NULL, 'l'},
        {"limit", required_argument, NULL, 'n'},
        {"out", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *user = NULL, *pwfile = NULL, *label = NULL, *out = NULL;
    const char *keys[MAX_QUERY], *values[MAX_QUERY];
    char *qbuf[MAX_QUERY];
    int nq = 0, json = 0, c, status = BASIRA_EXIT_OK;
    long limit = 0;
    optind = 2;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'U':
            user = optarg;
            break;
        case 'P':
            pwfile = optarg;
            break;
        case 'q': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || nq == MAX_QUERY) {
                fprintf(stderr, _("basira archive: --query expects KEY=VALUE (at most %d)\n"),
                        MAX_QUERY);
                status = BASIRA_EXIT_USAGE;
                break;
            }
            qbuf[nq] = strdup(optarg);
            if (!qbuf[nq]) {
                status = BASIRA_EXIT_FAILED;
                break;
            }
            qbuf[nq][eq - optarg] = 0;
            keys[nq] = qbuf[nq];
            values[nq] = qbuf[nq] + (eq - optarg) + 1;
            nq++;
            break;
        }
        case 'l':
            label = optarg;
            break;
        case 'n':
            if (basira_cli_parse_long("--limit", optarg, 1, 100000000, &limit))
                status = BASIRA_EXIT_USAGE;
            break;
        case 'o':
            out = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            status = -1;
            break;
        default:
            status = basira_cli_bad_option("archive", c, argv, usage);
            break;
        }
        if (status)
            break;
    }
    if (!status && (!url || (pull ? (!label || !out || optind < argc) : optind >= argc))) {
        fprintf(stderr, pull
                            ? _("basira archive pull: --url, --label-tag and --out are required\n")
                            : _("basira archive push: --url and at least one file are required\n"));
        status = BASIRA_EXIT_USAGE;
    }
    char *password = NULL;
    if (!status && user) {
        password =
            pwfile ? read_password(pwfile)
                   : (getenv("BASIRA_ARCHIVE_PASSWORD") ? strdup(getenv("BASIRA_ARCHIVE_PASSWORD"))
                                                        : NULL);
        if (!password) {
            fprintf(stderr,
                    _("basira archive: no password for %s (--password-file or "
                      "BASIRA_ARCHIVE_PASSWORD)\n"),
                    user);
            status = BASIRA_EXIT_USAGE;
        }
    }
    basira_archive *a = NULL;
    basira_error err;
    if (!status && basira_archive_open(url, user, password, &a, &err)) {
        basira_cli_report("archive", &err);
        status = BASIRA_EXIT_FAILED;
    }
    if (!status && pull) {
        basira_archive_query q = {.level = "Instance",
                                  .keys = keys,
                                  .values = values,
                                  .n = nq,
                                  .label_tag = label,
                                  .limit = (size_t)limit};
        size_t n = 0;
        if (basira_archive_pull(a, &q, out, &n, &err)) {
            basira_cli_report("archive", &err);
            status = BASIRA_EXIT_FAILED;
        } else {
            printf(_("%zu images and their labels written to %s\n"), n, out);
        }
    } else if (!status) {
        for (int i = optind; i < argc; i++)
            if (push_path(a, argv[i], json, 0))
                status = BASIRA_EXIT_FAILED;
    }
    basira_archive_close(a);
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    for (int i = 0; i < nq; i++)
        free(qbuf[i]);
    return status < 0 ? BASIRA_EXIT_OK : status;
}

const basira_command basira_cmd_archive = {
    "archive",
    N_("push de-identified DICOM to the national archive (Orthanc), pull training sets"),
    run,
    usage,
};
