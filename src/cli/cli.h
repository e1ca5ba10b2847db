/* cli.h - what every `basira` subcommand shares. */
#ifndef BASIRA_CLI_H
#define BASIRA_CLI_H

#include <stdio.h>

#include "basira/case.h"
#include "basira/error.h"
#include "basira/site.h"
#include "basira/store.h"

/* Exit statuses of the program (documented in `basira help`). */
enum {
    BASIRA_EXIT_OK = 0,
    BASIRA_EXIT_FAILED = 1, /* some input was rejected or failed */
    BASIRA_EXIT_USAGE = 2,  /* bad command line */
};

typedef struct basira_command {
    const char *name;
    const char *summary; /* N_() marked, one line */
    /* argv[0] is the command name. Returns a BASIRA_EXIT_* status. */
    int (*run)(int argc, char **argv);
    /* Prints the full help of the command (localised) to f. */
    void (*usage)(FILE *f);
} basira_command;

/* "basira" and argv joined by spaces, the command line recorded in a model's provenance
 * (malloc'd; NULL when out of memory). */
char *basira_cli_join_args(int argc, char **argv);

/* Write one CSV cell to f, quoted when it needs to be (RFC 4180). */
void basira_cli_put_csv_cell(FILE *f, const char *s);

/*
 * Before libvips starts: its plugin folder is Basira's own (HEIF only), or none when no
 * word of files[0..nfiles) names a HEIF/AVIF file (nfiles < 0: always the HEIF plugin).
 * An operator's VIPSHOME wins. In cli_report.c, like the helpers down to
 * basira_cli_no_operands(), which the lean `basira-triage` program links.
 */
void basira_cli_restrict_vips_modules(int nfiles, char **files);

/* Print "basira: <message>" on stderr for an error. */
void basira_cli_report(const char *context, const basira_error *err);
/* basira_cli_report(context, err), then BASIRA_EXIT_FAILED: `return basira_cli_failed(...)`. */
int basira_cli_failed(const char *context, const basira_error *err);

/*
 * Parse a non-negative integer / a double option value; print a usage error and
 * return -1 when malformed.
 */
int basira_cli_parse_long(const char *opt, const char *s, long min, long max, long *out);
struct basira_sync_options;
/* --originals auto|never|always into o->originals (sync and serve); -1 with a message. */
int basira_cli_parse_originals(const char *s, struct basira_sync_options *o);
int basira_cli_parse_double(const char *opt, const char *s, double min, double max, double *out);

/*
 * The refusal branch of every command's getopt_long() loop, whose option string
 * starts with ':' (getopt then returns ':' for an option missing its value and '?'
 * for an unknown one): "basira COMMAND: unknown option X" or "...: option X needs a
 * value", in the user's language, then the command's usage (if given) on stderr.
 * Returns BASIRA_EXIT_USAGE.
 */
int basira_cli_bad_option(const char *command, int opt, char **argv, void (*usage)(FILE *));

/* After the options of a command that takes no operands: 0, or the first one named
 * on stderr and BASIRA_EXIT_USAGE. Uses optind. */
int basira_cli_no_operands(const char *command, int argc, char **argv);

/*
 * Ask for a secret on the terminal (/dev/tty) without echo; with again_prompt,
 * ask twice and fail when the two differ. BASIRA_E_INVALID_ARGUMENT without a
 * terminal or when nothing was typed.
 */
basira_code basira_cli_prompt_secret(const char *prompt, const char *again_prompt, char *buf,
                                     size_t bufsz, basira_error *err);

/*
 * Resolve the database key the way every command does: key_file if given, else
 * the environment variable BASIRA_DB_PASSPHRASE, else a prompt on the terminal
 * (twice when confirm is set, for a new database). buf receives the passphrase.
 */
basira_code basira_cli_key_resolve(const char *key_file, int confirm, char *buf, size_t bufsz,
                                   basira_store_key *out, basira_error *err);

/* The Argon2id cost: libsodium's minimum when BASIRA_ARGON2_FAST=1 (test suites only). */
basira_argon2_cost basira_cli_argon2_cost(void);

/*
 * The first line of a small file (a password, a key), without its newline, into
 * buf (truncated to bufsz - 1): read capped at 64 KiB by core/fs and wiped once
 * copied. 0, or -1 with a message on stderr.
 */
int basira_cli_first_line(const char *file, char *buf, size_t bufsz);

/*
 * Open the clinic node's store in dir with the key of key_file (or from the
 * environment or a prompt: basira_cli_key_resolve()); create = 1 makes a new
 * store. The Argon2id cost is the standard one, or libsodium's minimum when the
 * environment has BASIRA_ARGON2_FAST=1 (test suites only). On failure the error
 * is reported on stderr and -1 returned. The passphrase does not outlive the call.
 */
int basira_cli_open_store(const char *dir, const char *key_file, int create, basira_store **out);

/* --data DIR and --key-file FILE, the options of every command on the store. */
#define BASIRA_CLI_STORE_OPTIONS                                                                   \
    {"data", required_argument, NULL, 'd'},                                                        \
    {                                                                                              \
        "key-file", required_argument, NULL, 'K'                                                   \
    }

typedef struct basira_cli_store_args {
    const char *dir;      /* default "./basira-data" */
    const char *key_file; /* NULL: the environment, else the terminal */
} basira_cli_store_args;

/* In a getopt_long loop: 1 when o was --data or --key-file (stored in a), else 0. */
int basira_cli_store_option(int o, basira_cli_store_args *a);

/* The local actor of the audit trail: "cli-<login name>" from "local". name has 96 bytes. */
basira_actor basira_cli_actor(char name[96]);

/*
 * What a command working on cases holds: the site configuration (read once),
 * the store and the case service over it (no analyser: the CLI reads and
 * documents cases, the node analyses photos), and the local actor.
 */
typedef struct basira_cli_cases {
    basira_site_config site;
    basira_store *store;
    basira_case_service *svc;
    char actor_name[96];
    basira_actor actor;
} basira_cli_cases;

/* Open all of it for data folder dir; on failure the error is reported and -1 returned. */
int basira_cli_open_cases(const char *dir, const char *key_file, basira_cli_cases *c);
void basira_cli_close_cases(basira_cli_cases *c);

/*
 * The names in folder dir, sorted (strcmp), without "." and "..": *names is a malloc'd array
 * of *n malloc'd strings, freed with basira_cli_free_names(). -1 (errno set) on failure.
 */
int basira_cli_list_dir(const char *dir, char ***names, size_t *n);
void basira_cli_free_names(char **names, size_t n);

#endif
