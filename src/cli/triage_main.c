/*
 * triage_main.c - `basira-triage [options] IMAGE...`: `basira triage` in a program of
 * its own, for a clinician who triages one photo at a time from a script or a phone's
 * shell.
 *
 * It runs the very same command (cmd_triage.c) with the same options, output and exit
 * status, but links only what a photo goes through: intake, quality, model, triage, nn
 * and core, with libvips, oneDNN, libsodium, nettle and jansson. The `basira` program
 * also links the case store (SQLCipher), the HTTP server, PDF letters (cairo, pango),
 * DICOM (DCMTK), the archive client (curl) and the hub (PostgreSQL): loading and
 * relocating those costs a fresh process tens of milliseconds on one core before main()
 * runs, which is most of a one-photo triage (bench/triage_cold).
 */
#include <stdio.h>
#include <string.h>

#include "basira/i18n.h"
#include "basira/paths.h"
#include "cli.h"
#include "core/i18n.h"

extern const basira_command basira_cmd_triage;

int main(int argc, char **argv)
{
    basira_error err;
    basira_cli_restrict_vips_modules(argc - 1, argv + 1);
    if (basira_i18n_init(&err))
        basira_cli_report(NULL, &err); /* not fatal: English messages */
    if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("basira %s\n", basira_version());
        return BASIRA_EXIT_OK;
    }
    /* argv[0] plays the command name's part: getopt starts at argv[1]. */
    return basira_cmd_triage.run(argc, argv);
}
