/*
 * cmd_anonymize.c - `basira anonymize`: de-identify DICOM files and photos for the
 * national archive (src/deid). Each input it can fully process becomes one file under
 * its relative name in --out; each refusal is named on stderr and makes the exit
 * status 1; nothing half-done is ever written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "basira/deid.h"
#include "basira/json.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira anonymize --secret-file F --out DIR [options] INPUT...\n"
                 "De-identify DICOM files (PS3.15 Annex E Basic Application Level "
                 "Confidentiality Profile)\n"
                 "and photos for research. INPUT: files or folders (read recursively).\n\n"
                 "Options:\n"
                 "  --secret-file F       the national secret of the data steward (mode 600): "
                 "keys the\n"
                 "                        pseudonyms and UIDs, the same everywhere\n"
                 "  --out DIR             where the de-identified files go (relative names kept)\n"
                 "  --retain-dates        Retain Longitudinal Temporal Information with Modified "
                 "Dates:\n"
                 "                        dates moved back by a keyed per-patient number of days\n"
                 "  --retain-patient-characteristics  keep sex, age, size, weight, ...\n"
                 "  --clean-descriptors   keep descriptions with the patient's identifiers "
                 "scrubbed\n"
                 "  --retain-safe-private FILE  private attributes to keep (GGGG,CREATOR,EE per "
                 "line)\n"
                 "  --allow-burned-in     accept ultrasound and secondary capture without Burned "
                 "In\n"
                 "                        Annotation NO (only after checking the device)\n"
                 "  --clean-pixels FILE   blank where listed devices burn in text "
                 "(MANUFACTURER|MODEL|\n"
                 "                        ROWSxCOLS|x,y,w,h;... per line) instead of refusing\n"
                 "  --reid-table FILE     add the pseudonyms to this encrypted "
                 "re-identification table\n"
                 "                        (never inside --out)\n"
                 "  --show-reid-table FILE  decrypt and print a re-identification table, then "
                 "exit\n"
                 "  --patient-id ID       the patient of the photos given (photos have no "
                 "identity inside)\n"
                 "  --json                one JSON object per input (JSON Lines)\n"
                 "  -h, --help            show this help\n\n"
                 "Exit status: 0 every input was de-identified, 1 some input was refused, 2 "
                 "usage error.\n"));
}

typedef struct job {
    char *path; /* as found */
    char *rel;  /* name under --out */
} job;

typedef struct jobs {
    job *v;
    size_t n, cap;
} jobs;

static int add_job(jobs *j, const char *path, const char *rel)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 64;
        job *v = realloc(j->v, cap * sizeof *v);
        if (!v)
            return -1;
        j->v = v;
        j->cap = cap;
    }
    j->v[j->n].path = strdup(path);
    j->v[j->n].rel = strdup(rel);
    if (!j->v[j->n].path || !j->v[j->n].rel)
        return -1;
    j->n++;
    return 0;
}

/* Regular files under dir (symbolic links are not followed), sorted, relative to root. */
static int collect(jobs *j, const char *dir, const char *rel, int depth)
{
    if (depth > 32)
        return 0;
    char **names;
    size_t n;
    if (basira_cli_list_dir(dir, &names, &n)) {
        fprintf(stderr, _("basira anonymize: cannot read the folder %s: %s\n"), dir,
                strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], r[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path ||
            snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]) >= (int)sizeof r) {
            fprintf(stderr, _("basira anonymize: %s refused: %s\n"), names[i],
                    strerror(ENAMETOOLONG));
            rc = -1;
        } else if (!lstat(path, &st) && S_ISDIR(st.st_mode))
            rc |= collect(j, path, r, depth + 1);
        else if (!lstat(path, &st) && S_ISREG(st.st_mode))
            rc |= add_job(j, path, r);
    }
    basira_cli_free_names(names, n);
    return rc;
}

static int is_photo(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".webp"};
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot, ext[i]))
            return 1;
    return 0;
}

/* mkdir -p of the folder part of path. */
static int make_parents(const char *path)
{
    char buf[4400];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static void report(int json, const char *in, const char *out, const basira_deid_result *r,
                   const basira_error *err)
{
    if (json) {
        json_t *o = json_pack("{s:s, s:s}", "file", in, "status", err ? "refused" : "ok");
        if (err)
            json_object_set_new(o, "error", basira_json_error(err));
        else
            json_object_set_new(o, "output", json_string(out));
        if (!err && r)
            json_object_set_new(o, "counts",
                                json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "removed",
                                          r->removed, "emptied", r->emptied, "replaced",
                                          r->replaced, "uids", r->uids, "dates_shifted", r->shifted,
                                          "cleaned", r->cleaned, "private_removed",
                                          r->private_removed));
        if (!err && r)
            json_object_set_new(o, "pseudonym", json_string(r->pseudonym));
        basira_json_print_line(stdout, o);
        json_decref(o);
    } else if (!err) {
        printf(_("%s -> %s\n"), in, out);
    }
    if (err)
        fprintf(stderr, _("basira anonymize: %s refused: %s\n"), in,
                err->message[0] ? err->message : basira_strerror(err->code));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"secret-file", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"retain-dates", no_argument, NULL, 'D'},
        {"retain-patient-characteristics", no_argument, NULL, 'P'},
        {"clean-descriptors", no_argument, NULL, 'C'},
        {"retain-safe-private", required_argument, NULL, 'S'},
        {"allow-burned-in", no_argument, NULL, 'B'},
        {"clean-pixels", required_argument, NULL, 'X'},
        {"reid-table", required_argument, NULL, 'r'},
        {"show-reid-table", required_argument, NULL, 'R'},
        {"patient-id", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_deid_options o;
    basira_deid_options_default(&o);
    const char *secret = NULL, *out = NULL, *reid = NULL, *show = NULL, *patient = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            secret = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'D':
            o.retain_modified_dates = 1;
            break;
        case 'P':
            o.retain_patient_chars = 1;
            break;
        case 'C':
            o.clean_descriptors = 1;
            break;
        case 'S':
            o.safe_private_list = optarg;
            break;
        case 'B':
            o.allow_burned_in = 1;
            break;
        case 'X':
            o.pixel_rules = optarg;
            break;
        case 'r':
            reid = optarg;
            break;
        case 'R':
            show = optarg;
            break;
        case 'p':
            patient = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("anonymize", c, argv, usage);
        }
    }
    if (!secret || (!show && (!out || optind >= argc))) {
        fprintf(stderr, _("basira anonymize: --secret-file, --out and at least one input are "
                          "required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_error err;
    basira_deid_key *key = NULL;
    if (basira_deid_key_load(secret, &key, &err)) {
        basira_cli_report("anonymize", &err);
        return BASIRA_EXIT_FAILED;
    }
    if (show) {
        int st = basira_reid_table_dump(show, key, stdout, &err) ? BASIRA_EXIT_FAILED : 0;
        if (st)
            basira_cli_report("anonymize", &err);
        basira_deid_key_free(key);
        return st;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, _("basira anonymize: cannot create %s: %s\n"), out, strerror(errno));
        basira_deid_key_free(key);
        return BASIRA_EXIT_FAILED;
    }
    if (reid && basira_path_inside(reid, out)) {
        fprintf(stderr,
                _("basira anonymize: the re-identification table must not be inside the "
                  "output folder %s\n"),
                out);
        basira_deid_key_free(key);
        return BASIRA_EXIT_USAGE;
    }
    jobs j = {0};
    int status = BASIRA_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct stat st;
        const char *base = strrchr(argv[i], '/');
        if (stat(argv[i], &st)) {
            fprintf(stderr, _("basira anonymize: %s refused: %s\n"), argv[i], strerror(errno));
            status = BASIRA_EXIT_FAILED;
        } else if (S_ISDIR(st.st_mode)) {
            if (collect(&j, argv[i], "", 0))
                status = BASIRA_EXIT_FAILED;
        } else if (add_job(&j, argv[i], base && base[1] ? base + 1 : argv[i])) {
            status = BASIRA_EXIT_FAILED;
        }
    }
    basira_deid_result *results = calloc(j.n ? j.n : 1, sizeof *results);
    size_t n_ok = 0;
    for (size_t i = 0; results && i < j.n; i++) {
        char dst[4096];
        basira_code rc;
        basira_error_clear(&err);
        basira_deid_result *r = &results[n_ok];
        if (is_photo(j.v[i].path)) {
            /* The photo goes to the folder of its relative name, under a new file name. */
            char sub[4096], probe[4200];
            const char *slash = strrchr(j.v[i].rel, '/');
            snprintf(sub, sizeof sub, "%s/%.*s", out, slash ? (int)(slash - j.v[i].rel) : 0,
                     j.v[i].rel);
            snprintf(probe, sizeof probe, "%s/photo", sub);
            if (!patient)
                rc = basira_error_set(&err, BASIRA_E_INVALID_ARGUMENT,
                                      _("a photo needs --patient-id: it carries no identity "
                                        "that could be pseudonymised"));
            else if (make_parents(probe))
                rc = basira_error_set(&err, BASIRA_E_IO, _("cannot create %s: %s"), sub,
                                      strerror(errno));
            else
                rc = basira_deid_photo(j.v[i].path, sub, patient, key, dst, sizeof dst, &err);
            if (!rc) {
                memset(r, 0, sizeof *r);
                basira_pseudonym(key, patient, r->pseudonym, NULL);
                snprintf(r->patient_id, sizeof r->patient_id, "%s", patient);
            }
        } else {
            if (snprintf(dst, sizeof dst, "%s/%s", out, j.v[i].rel) >= (int)sizeof dst)
                rc = basira_error_set(&err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"),
                                      j.v[i].rel);
            else if (make_parents(dst))
                rc = basira_error_set(&err, BASIRA_E_IO, _("cannot create %s: %s"), dst,
                                      strerror(errno));
            else
                rc = basira_deid_dicom_file(j.v[i].path, dst, key, &o, r, &err);
        }
        report(json, j.v[i].path, dst, rc ? NULL : r, rc ? &err : NULL);
        if (rc)
            status = BASIRA_EXIT_FAILED;
        else
            n_ok++;
        fflush(stdout);
    }
    if (!results)
        status = BASIRA_EXIT_FAILED;
    if (reid && n_ok && basira_reid_table_add(reid, key, results, n_ok, &err)) {
        basira_cli_report("anonymize", &err);
        status = BASIRA_EXIT_FAILED;
    }
    for (size_t i = 0; i < j.n; i++) {
        free(j.v[i].path);
        free(j.v[i].rel);
    }
    free(j.v);
    free(results);
    basira_deid_key_free(key);
    return status;
}

const basira_command basira_cmd_anonymize = {
    "anonymize",
    N_("de-identify DICOM files and photos for the national archive (pseudonyms)"),
    run,
    usage,
};
