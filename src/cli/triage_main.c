/*
 * triage_main.c - `basira-triage [options] IMAGE...`: `basira triage` in a program of
 * its own, for a clinician who triages one photo at a time from a script or a phone's
 * shell.
 *
 * It runs the very same command (cmd_triage.c) with the same options, output and exit
 * status, but links only what a photo goes through: intake, quality, model, triage, nn
 * and core, with libjpeg, oneDNN, libsodium, nettle and jansson. The `basira` program
 * also links the case store (SQLCipher), the HTTP server, PDF letters (cairo, pango),
 * DICOM (DCMTK), the archive client (curl), the hub (PostgreSQL) and libvips: loading
 * and relocating those costs a fresh process tens of milliseconds on one core before
 * main() runs, which is most of a one-photo triage (issue 17, bench/triage_cold).
 *
 * Without libvips, it reads the common phone JPEG itself (src/intake/load.c), pixel for
 * pixel as libvips does. Before anything else it looks at the photos it was given; if
 * one is anything else (PNG, HEIC, a JPEG with an ICC profile, a picture so small it
 * would be enlarged, a file that is not a photo, standard input), or it is asked for
 * another model or configuration, it hands the whole run to `basira-all triage`, next to it
 * (the program behind every other `basira` command: front_main.c), so the answer is always
 * the one basira-all gives.
 */
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/i18n.h"
#include "basira/image.h"
#include "basira/paths.h"
#include "cli.h"
#include "core/i18n.h"

extern const basira_command basira_cmd_triage;

/* Every resize of a photo (the quality gate at 200 px, a model's input) must be a
 * reduction here: enlarging is libvips'. No bundled model's input reaches this. */
#define LEAN_MIN_SIDE 512

/*
 * cmd_triage.c's options this program runs itself; vals: how many values follow. Any
 * other (another model, a configuration that changes the photo limits) may need what
 * only libvips does, e.g. enlarging for a model with a larger input: the run is then
 * handed over.
 */
static int lean_option(const char *arg, int *vals)
{
    static const struct {
        const char *name;
        int vals;
    } ok[] = {{"--json", 0},    {"--force", 0}, {"--modality-confirmed", 0},
              {"--help", 0},    {"-h", 0},      {"--history", 1},
              {"--modality", 1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i].name);
        if (!strcmp(arg, ok[i].name)) {
            *vals = ok[i].vals;
            return 1;
        }
        if (ok[i].vals && !strncmp(arg, ok[i].name, n) && arg[n] == '=') {
            *vals = 0; /* --opt=value */
            return 1;
        }
    }
    return 0;
}

/* 1 when every argument is a lean option or a photo this program reads without libvips. */
static int all_photos_lean(int argc, char **argv)
{
    int options = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int vals = 0;
        if (options && !strcmp(a, "--")) {
            options = 0;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            if (!lean_option(a, &vals))
                return 0;
            i += vals; /* its value is not a photo */
        } else if (!basira_image_file_reads_without_vips(a, LEAN_MIN_SIDE)) {
            return 0; /* "-" (standard input) included */
        }
    }
    return 1;
}

/* Run `basira-all triage ARGS...` from this program's folder (not `basira`, which would
 * run this program again: front_main.c); returns only if it cannot. */
static void hand_over(int argc, char **argv)
{
    char self[PATH_MAX], full[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (snprintf(full, sizeof full, "%s/basira-all", self) >= (int)sizeof full)
        return;
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return;
    args[0] = full;
    args[1] = "triage";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    args[argc + 1] = NULL;
    fflush(NULL);
    execv(full, args);
    free(args);
    /* Not there (a copy of basira-triage on its own): go on; such photos are then
     * refused, each with a message that names `basira triage`. */
}

/*
 * glibc serves every allocation above 128 kB with a fresh mmap() and hands it back on
 * free(): each decoded, resized or model-sized buffer of a triage then costs its
 * pages' faults and zeroing again (a third of this program's page faults). One photo's
 * buffers come to a few tens of MB, so they are served from the heap and reused
 * instead (perf stat, 15 runs: page faults 3,074 -> 2,183, CPU -9 %). The clinic node,
 * a long-running server, keeps glibc's defaults.
 */
static void keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

int main(int argc, char **argv)
{
    basira_error err;
    keep_freed_memory();
    /* Run by `basira triage` (front_main.c), argv[0] is "triage" and the arguments are
     * the command's only: "--version" is then an unknown option, as in basira-all. */
    int as_command = !strcmp(argv[0], "triage");
    if (!as_command && argc == 2 &&
        (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("basira %s\n", basira_version());
        return BASIRA_EXIT_OK;
    }
    if (!all_photos_lean(argc, argv))
        hand_over(argc, argv);
    if (basira_i18n_init(&err))
        basira_cli_report(NULL, &err); /* not fatal: English messages */
    /* argv[0] plays the command name's part: getopt starts at argv[1]. */
    return basira_cmd_triage.run(argc, argv);
}
