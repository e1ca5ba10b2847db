/*
 * main.c - `basira <command> [options]`.
 *
 * Sets up the language, then hands over to the subcommand. The list of
 * subcommands is generated from the cmd_*.c files (see CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/i18n.h"
#include "basira/paths.h"
#include "cli.h"
#include "commands.h"
#include "core/i18n.h"

static const basira_command *find_command(const char *name)
{
    for (size_t i = 0; basira_commands[i]; i++)
        if (!strcmp(basira_commands[i]->name, name))
            return basira_commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira <command> [options]\n"
                 "Basira: offline triage of skin lesions. Decision support, not a diagnosis.\n\n"
                 "Commands:\n"));
    for (size_t i = 0; basira_commands[i]; i++)
        fprintf(f, "  %-10s %s\n", basira_commands[i]->name, _(basira_commands[i]->summary));
    fprintf(f, _("\n'basira help <command>' shows the options of a command.\n"
                 "'basira --version' prints the version.\n"
                 "Exit status: 0 all inputs passed, 1 some input was rejected or failed, "
                 "2 usage error.\n"));
}

int main(int argc, char **argv)
{
    basira_error err;
    /* Only the commands that decode photos given on the command line can do without
     * the HEIF plugin; serve, sync and the rest may meet one later. */
    int photos = argc > 1 && (!strcmp(argv[1], "triage") || !strcmp(argv[1], "check"));
    basira_cli_restrict_vips_modules(photos ? argc - 2 : -1, argv + 2);
    if (basira_i18n_init(&err))
        basira_cli_report(NULL, &err); /* not fatal: English messages */

    if (argc < 2) {
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("basira %s\n", basira_version());
        return BASIRA_EXIT_OK;
    }
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return BASIRA_EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            usage(stdout);
            return BASIRA_EXIT_OK;
        }
        const basira_command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, _("basira: unknown command '%s'\n"), argv[2]);
            return BASIRA_EXIT_USAGE;
        }
        c->usage(stdout);
        return BASIRA_EXIT_OK;
    }
    const basira_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, _("basira: unknown command '%s'\n"), name);
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
