/*
 * train_opts.h - internal: the options of `basira train` (train_opts.c), shared by
 * `basira train` and `basira cv`.
 */
#ifndef BASIRA_CLI_TRAIN_OPTS_H
#define BASIRA_CLI_TRAIN_OPTS_H

#include <getopt.h>
#include <stddef.h>

#include "basira/train.h"

/* The long options of `basira train` (values 256..511), ended by a {NULL} entry. */
extern const struct option basira_cli_train_opts[];
/* Entries before the {NULL} one. */
size_t basira_cli_train_opts_count(void);

/* In a getopt_long loop: 1 when c was an option of `basira train` (stored in o), 0 when
 * it is not one, -1 for a bad value (the message is printed on stderr). */
int basira_cli_train_option(int c, const char *arg, basira_train_options *o);

#endif
