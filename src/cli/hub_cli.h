/* hub_cli.h - the indicator subcommands of `basira hub` (hub_indicators.c). */
#ifndef BASIRA_HUB_CLI_H
#define BASIRA_HUB_CLI_H

/* argv[0] is "indicators", "outcome" or "costs". Returns a BASIRA_EXIT_* status. */
int basira_hub_indicator_command(int argc, char **argv);

#endif
