/*
 * front_main.c - `basira`, the command people type: it runs no command itself, but the
 * program next to it that does, as git runs its git-* programs.
 *
 *   basira triage ARGS...   ->  basira-triage ARGS...  (which hands any photo it cannot
 *                                read without libvips on to basira-all triage ARGS...)
 *   basira ANYTHING...      ->  basira-all ANYTHING...
 *
 * Why: basira-all links every module (the case store, the HTTP server, PDF letters,
 * DICOM, the hub, libvips and their 100-odd shared libraries), and loading, relocating
 * and initialising those costs a fresh process about 40 ms of CPU before main() runs
 * (`basira --version`: 44 ms; this program and basira-triage: 5-6 ms; perf stat on the
 * 2-core AVX2 machine). That is nearly half of issue 17's 100 ms budget for a one-photo
 * `basira triage`. Here the exec costs about a millisecond, and this program links only
 * the C library (and basira_core, for its one message, in the user's language).
 *
 * The programs are looked for in this program's own folder (/proc/self/exe, so a
 * symbolic link to it works), never on PATH. The arguments are passed on unchanged;
 * basira-triage is given "triage" as its argv[0], the name basira-all's own dispatcher
 * gives the command, so option errors read the same whichever program prints them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basira/error.h"
#include "basira/i18n.h"
#include "core/i18n.h"

/* The exit status of a shell that cannot run a program. */
#define EXIT_CANNOT_RUN 127

/* The folder of this program, without its trailing slash; 0 on success. */
static int own_folder(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0 || (size_t)n >= size - 1)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    int triage = argc > 1 && !strcmp(argv[1], "triage");
    const char *name = triage ? "basira-triage" : "basira-all";
    char dir[PATH_MAX], path[PATH_MAX + 32];
    int err_no = ENOENT;
    if (!own_folder(dir, sizeof dir) &&
        snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path) {
        /* "triage" plays argv[0] for basira-triage, as in basira-all's dispatcher */
        execv(path, triage ? argv + 1 : argv);
        err_no = errno;
    } else {
        snprintf(path, sizeof path, "%s", name);
    }
    basira_error e;
    (void)basira_i18n_init(&e); /* English when the catalogues are missing */
    fprintf(stderr, _("basira: cannot run %s (%s): it belongs next to this program\n"), path,
            strerror(err_no));
    return EXIT_CANNOT_RUN;
}
