/*
 * cli_report.c - the helpers of the `basira` program that need nothing but libc and the
 * core module: error reports and option parsing. Kept apart from cli.c (the store, the
 * case service, the sync) so that the lean `basira-triage` program links them without
 * the database, HTTP, PDF and DICOM libraries (see CMakeLists.txt).
 */
#include "cli.h"
#include "core/i18n.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basira/paths.h"

void basira_cli_report(const char *context, const basira_error *err)
{
    const char *msg = err->message[0] ? err->message : basira_strerror(err->code);
    if (context)
        fprintf(stderr, "basira: %s: %s [%s]\n", context, msg, basira_code_name(err->code));
    else
        fprintf(stderr, "basira: %s [%s]\n", msg, basira_code_name(err->code));
}

int basira_cli_failed(const char *context, const basira_error *err)
{
    basira_cli_report(context, err);
    return BASIRA_EXIT_FAILED;
}

int basira_cli_parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, _("basira: invalid value for %s: '%s' (expected %ld to %ld)\n"), opt, s,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int basira_cli_parse_double(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        fprintf(stderr, _("basira: invalid value for %s: '%s' (expected %g to %g)\n"), opt, s, min,
                max);
        return -1;
    }
    *out = v;
    return 0;
}

int basira_cli_bad_option(const char *command, int opt, char **argv, void (*usage)(FILE *))
{
    /* getopt_long() has moved optind past the option it refused. */
    const char *what = optind > 0 ? argv[optind - 1] : "?";
    if (opt == ':')
        fprintf(stderr, _("basira %s: option %s needs a value\n"), command, what);
    else
        fprintf(stderr, _("basira %s: unknown option %s\n"), command, what);
    if (usage)
        usage(stderr);
    return BASIRA_EXIT_USAGE;
}

int basira_cli_no_operands(const char *command, int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, _("basira %s: unexpected argument %s\n"), command, argv[optind]);
    return BASIRA_EXIT_USAGE;
}

/*
 * libvips loads every plugin of its module folder when it starts, among them
 * ImageMagick and poppler, which Basira never uses (intake accepts JPEG, PNG,
 * WebP, TIFF, GIF and HEIF only). Point it at Basira's own prefix, whose module
 * folder holds the HEIF plugin alone (built by src/intake/CMakeLists.txt), before
 * anything starts libvips. An operator's own VIPSHOME is respected.
 *
 * The HEIF plugin itself brings libheif and its codecs (about 110 shared libraries
 * in all, some 7 ms of start-up on one core). When every photo of the command line
 * is known not to be HEIF/AVIF, it is not loaded either: libvips then looks for
 * modules under a folder that holds none. The test is the one libvips' HEIF loader
 * makes to claim a file (an ISO-BMFF "ftyp" box at byte 4), so a file it would
 * have claimed always gets the plugin. Every word of the command line that names a
 * readable file is tested (option values too: that only errs towards loading it); a
 * word that names none cannot reach the decoder either.
 */
#define VIPS_NO_MODULES "/no-modules"

static int may_be_heif(const char *path)
{
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return 0; /* intake reads regular files only */
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char b[12];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return n == sizeof b && !memcmp(b + 4, "ftyp", 4);
}

void basira_cli_restrict_vips_modules(int nfiles, char **files)
{
    char home[4096];
    if (getenv("VIPSHOME"))
        return;
    if (basira_data_file("vipshome", home, sizeof home, NULL) != BASIRA_OK)
        return;
    int heif = nfiles < 0;
    for (int i = 0; !heif && i < nfiles; i++)
        heif = may_be_heif(files[i]);
    if (!heif && strlen(home) + sizeof VIPS_NO_MODULES <= sizeof home)
        strcat(home, VIPS_NO_MODULES);
    setenv("VIPSHOME", home, 0);
}
