/* hub_oversight.h - the oversight subcommands of `basira hub` (hub_oversight.c). */
#ifndef BASIRA_CLI_HUB_OVERSIGHT_H
#define BASIRA_CLI_HUB_OVERSIGHT_H

#include <stdio.h>

/* 1 when sub is one of them: monitor, monitor-reference, releases, release, release-key. */
int basira_hub_oversight_is(const char *sub);
/* argv[0] is the subcommand. Returns the exit status. */
int basira_hub_oversight_main(int argc, char **argv);
void basira_hub_oversight_usage(FILE *f);
/* `basira hub monitor-reference` (drift_reference.c); argv[0] is the subcommand. */
int basira_hub_monitor_reference_main(int argc, char **argv);

#endif
