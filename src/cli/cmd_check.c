/*
 * cmd_check.c - `basira check [--json] FILE...`: is each photo good enough to analyse?
 *
 * Runs intake, the quality gate and the skin-tone estimate on every file, in the
 * order given. One unreadable or rejected file never stops the others. With
 * --json, one JSON object per file per line (JSON Lines), for scripts and the
 * clinic node; otherwise a short report in the user's language with, for each
 * rejected photo, what to do to take a better one.
 */
#include <stdio.h>
#include <string.h>

#include "basira/image.h"
#include "basira/json.h"
#include "basira/quality.h"
#include "cli.h"
#include "core/i18n.h"

/* Display names of the skin-tone categories, indexed by basira_skin_tone_category. */
static const char *const tone_names[] = {
    NULL,
    N_("very light skin"),
    N_("light skin"),
    N_("intermediate skin"),
    N_("tanned skin"),
    N_("brown skin"),
    N_("dark skin"),
};

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira check [--json] FILE...\n"
                 "Check that each photo can be analysed: it is decoded, then its focus, "
                 "exposure, glare,\n"
                 "contrast, colours, resolution and the framing of the lesion are measured, "
                 "and the skin\n"
                 "tone around the lesion is estimated (ITA). Rejected photos come with what "
                 "to do instead.\n\n"
                 "Options:\n"
                 "  --json   one JSON object per file per line (JSON Lines), in input order\n"
                 "  --help   show this help\n\n"
                 "Exit status: 0 every photo passed, 1 some photo was rejected or could not be "
                 "read,\n"
                 "2 usage error.\n"));
}

typedef enum { CHECK_OK, CHECK_REJECTED, CHECK_ERROR } check_status;

static const char *status_code(check_status s)
{
    return s == CHECK_OK ? "ok" : s == CHECK_REJECTED ? "rejected" : "error";
}

/* Analyse one file; fills either err (CHECK_ERROR) or the report and the tone. */
static check_status analyse(const char *path, basira_quality_report *rep, basira_skin_tone *tone,
                            basira_error *err)
{
    basira_image *img = NULL;
    basira_error_clear(err);
    if (basira_image_load_file(path, NULL, &img, err))
        return CHECK_ERROR;
    basira_code rc = basira_photo_assess(img, rep, tone, err);
    basira_image_free(img);
    if (rc)
        return CHECK_ERROR;
    return rep->ok ? CHECK_OK : CHECK_REJECTED;
}

static int print_json(const char *path, check_status st, const basira_quality_report *rep,
                      const basira_skin_tone *tone, const basira_error *err)
{
    json_t *o = json_pack("{s:s, s:s}", "file", path, "status", status_code(st));
    if (!o)
        return -1;
    if (st == CHECK_ERROR) {
        json_object_set_new(o, "error", basira_json_error(err));
    } else {
        json_object_set_new(o, "quality", basira_quality_report_json(rep));
        json_object_set_new(o, "skin_tone", basira_skin_tone_json(tone));
    }
    int r = basira_json_print_line(stdout, o);
    json_decref(o);
    return r;
}

static void print_human(const char *path, check_status st, const basira_quality_report *rep,
                        const basira_skin_tone *tone, const basira_error *err)
{
    if (st == CHECK_ERROR) {
        printf(_("%s: cannot be analysed: %s\n"), path,
               err->message[0] ? err->message : basira_strerror(err->code));
        return;
    }
    if (st == CHECK_OK)
        printf(_("%s: good enough to analyse\n"), path);
    else
        printf(_("%s: rejected, please take the photo again\n"), path);
    for (int i = 0; i < rep->n_checks; i++)
        if (!rep->checks[i].passed)
            printf("  - %s\n", rep->checks[i].message);
    if (tone->category <= BASIRA_TONE_UNKNOWN || tone->category > BASIRA_TONE_DARK)
        printf(_("  skin tone: not enough healthy skin visible to estimate it\n"));
    else
        printf(_("  around the lesion: %s (ITA %.0f degrees)\n"), _(tone_names[tone->category]),
               tone->ita);
}

static int run(int argc, char **argv)
{
    int json = 0, first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return BASIRA_EXIT_OK;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, _("basira check: unknown option '%s'\n"), a);
            usage(stderr);
            return BASIRA_EXIT_USAGE;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc) {
        fprintf(stderr, _("basira check: no photo given\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    int status = BASIRA_EXIT_OK;
    for (int i = first; i < argc; i++) {
        basira_quality_report rep;
        basira_skin_tone tone;
        basira_error err;
        memset(&rep, 0, sizeof rep);
        memset(&tone, 0, sizeof tone);
        check_status st = analyse(argv[i], &rep, &tone, &err);
        if (st != CHECK_OK)
            status = BASIRA_EXIT_FAILED;
        if (json) {
            if (print_json(argv[i], st, &rep, &tone, &err))
                status = BASIRA_EXIT_FAILED;
        } else {
            print_human(argv[i], st, &rep, &tone, &err);
        }
        fflush(stdout);
    }
    return status;
}

const basira_command basira_cmd_check = {
    "check",
    N_("check that photos are good enough to analyse, and estimate skin tone"),
    run,
    usage,
};
