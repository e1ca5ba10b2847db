/* cli.h - what every `basira` subcommand shares. */
#ifndef BASIRA_CLI_H
#define BASIRA_CLI_H

#include <stdio.h>

#include "basira/error.h"

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

/* Print "basira: <message>" on stderr for an error. */
void basira_cli_report(const char *context, const basira_error *err);

/*
 * Parse a non-negative integer / a double option value; print a usage error and
 * return -1 when malformed.
 */
int basira_cli_parse_long(const char *opt, const char *s, long min, long max, long *out);
int basira_cli_parse_double(const char *opt, const char *s, double min, double max, double *out);

#endif
