/* cli.c - helpers shared by subcommands. */
#include "cli.h"
#include "basira/sync.h"
#include "core/i18n.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

int basira_cli_parse_originals(const char *s, basira_sync_options *o)
{
    static const char *const names[] = {"auto", "never", "always"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            o->originals = i;
            return 0;
        }
    fprintf(stderr,
            _("basira: invalid value for --originals: '%s' (expected auto, never or "
              "always)\n"),
            s);
    return -1;
}

basira_argon2_cost basira_cli_argon2_cost(void)
{
    const char *fast = getenv("BASIRA_ARGON2_FAST");
    return fast && !strcmp(fast, "1") ? BASIRA_ARGON2_MINIMUM : BASIRA_ARGON2_STANDARD;
}

int basira_cli_open_store(const char *dir, const char *key_file, int create, basira_store **out)
{
    basira_error err;
    char pass[1024];
    basira_store_key key;
    *out = NULL;
    basira_store_options opts = {basira_cli_argon2_cost()};
    int failed = basira_cli_key_resolve(key_file, create, pass, sizeof pass, &key, &err) ||
                 basira_store_open(dir, &key, create, &opts, out, &err);
    memset(pass, 0, sizeof pass);
    memset(&key, 0, sizeof key);
    if (failed) {
        basira_cli_report(dir, &err);
        return -1;
    }
    return 0;
}

basira_actor basira_cli_actor(char name[96])
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(name, 96, "cli-%s", pw && pw->pw_name ? pw->pw_name : "unknown");
    basira_actor a = {name, "local"};
    return a;
}

int basira_cli_open_cases(const char *dir, const char *key_file, basira_cli_cases *c)
{
    basira_error err;
    memset(c, 0, sizeof *c);
    if (basira_site_config_load(dir, &c->site, &err)) {
        basira_cli_report(NULL, &err);
        basira_site_config_free(&c->site);
        return -1;
    }
    if (basira_cli_open_store(dir, key_file, 0, &c->store)) {
        basira_cli_close_cases(c);
        return -1;
    }
    if (basira_case_service_new(c->store, NULL, &c->site.clinic, &c->svc, &err)) {
        basira_cli_report(dir, &err);
        basira_cli_close_cases(c);
        return -1;
    }
    c->actor = basira_cli_actor(c->actor_name);
    return 0;
}

void basira_cli_close_cases(basira_cli_cases *c)
{
    basira_case_service_free(c->svc);
    basira_store_free(c->store);
    basira_site_config_free(&c->site);
    c->svc = NULL;
    c->store = NULL;
}

int basira_cli_store_option(int o, basira_cli_store_args *a)
{
    if (o == 'd')
        a->dir = optarg;
    else if (o == 'K')
        a->key_file = optarg;
    return o == 'd' || o == 'K';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int basira_cli_list_dir(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            char **v = realloc(*names, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            *names = v;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc) {
        basira_cli_free_names(*names, *n);
        *names = NULL;
        *n = 0;
        errno = ENOMEM;
        return -1;
    }
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_names);
    return 0;
}

void basira_cli_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* "basira " and the arguments, space-separated (a command line for provenance); malloc'd. */
char *basira_cli_join_args(int argc, char **argv)
{
    size_t len = 16;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, "basira");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* A CSV cell, quoted when it needs to be (RFC 4180). */
void basira_cli_put_csv_cell(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}
