/*
 * drift_reference.c - `basira hub monitor-reference`: the drift reference of a
 * model (basira/drift.h) from its validation photos, run through the same
 * pipeline as at the clinics.
 *
 *   basira hub monitor-reference --model F --csv SPLIT --images DIR
 *       [--metadata CSV] [--photo-kind dermoscopy|clinical] --out FILE
 *
 * SPLIT has an image_id column (models/basira-derm/split-val.csv); METADATA
 * (HAM10000's metadata.csv) gives each image's body site (localization).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/csv.h"
#include "basira/drift.h"
#include "basira/fs.h"
#include "basira/model.h"
#include "basira/triage.h"
#include "cli.h"
#include "core/i18n.h"
#include "hub_oversight.h"

static int fail(const basira_error *e)
{
    basira_cli_report("hub monitor-reference", e);
    return BASIRA_EXIT_FAILED;
}

/* The body site of image id in the metadata CSV ("" when unknown). */
static const char *site_of(const basira_csv *meta, int id_col, int site_col, const char *id)
{
    for (size_t r = 0; meta && id_col >= 0 && site_col >= 0 && r < basira_csv_rows(meta); r++)
        if (!strcmp(basira_csv_field(meta, r, id_col), id))
            return basira_csv_field(meta, r, site_col);
    return "";
}

static int build(const char *model, const char *csv_path, const char *images, const char *metadata,
                 const char *kind, const char *out)
{
    basira_error e;
    basira_csv *csv = NULL, *meta = NULL;
    basira_classifier *clf = NULL;
    basira_pipeline *pipe = NULL;
    if (basira_csv_read_file(csv_path, &csv, &e))
        return fail(&e);
    int status = BASIRA_EXIT_FAILED;
    int col = basira_csv_column(csv, "image_id");
    basira_drift_case *cs = calloc(basira_csv_rows(csv) + 1, sizeof *cs);
    json_t *ref = NULL, *mj = NULL;
    if (col < 0) {
        basira_error_setm(&e, BASIRA_E_FORMAT, N_("%s has no image_id column"), csv_path);
        goto done;
    }
    if (!cs || (metadata && basira_csv_read_file(metadata, &meta, &e)) ||
        basira_classifier_load(model, &clf, &e) || basira_pipeline_new(model, NULL, &pipe, &e))
        goto done;
    const basira_model_info *info = basira_classifier_info(clf);
    const char *codes[BASIRA_MODEL_MAX_CLASSES];
    int mal[BASIRA_MODEL_MAX_CLASSES];
    json_t *classes = json_array();
    for (int k = 0; k < info->num_classes; k++) {
        codes[k] = info->classes[k].code;
        mal[k] = info->classes[k].malignant;
        json_array_append_new(classes, json_string(codes[k]));
    }
    int mid = meta ? basira_csv_column(meta, "image_id") : -1;
    int msite = meta ? basira_csv_column(meta, "localization") : -1;
    basira_triage_request req = {NULL, 0,
                                 kind && !strcmp(kind, "clinical") ? BASIRA_PHOTO_CLINICAL
                                                                   : BASIRA_PHOTO_DERMOSCOPIC,
                                 1 /* the reference's kind is known: no detector */};
    size_t n = 0, missing = 0;
    for (size_t r = 0; r < basira_csv_rows(csv); r++) {
        const char *id = basira_csv_field(csv, r, col);
        char path[4096];
        json_t *res = NULL;
        if (basira_fs_find_image(images, id, path, sizeof path, &e) ||
            basira_pipeline_run_file(pipe, path, &req, &res, &e)) {
            missing++;
            continue;
        }
        memset(&cs[n], 0, sizeof cs[n]);
        if (basira_drift_case_from_result(res, classes, &cs[n])) {
            snprintf(cs[n].photo_kind, sizeof cs[n].photo_kind, "%s", kind ? kind : "dermoscopy");
            snprintf(cs[n].body_site, sizeof cs[n].body_site, "%s", site_of(meta, mid, msite, id));
            n++;
        }
        json_decref(res);
    }
    json_decref(classes);
    mj = basira_pipeline_model_json(pipe);
    if (basira_drift_reference_build(cs, n, codes, mal, info->num_classes, mj, &ref, &e))
        goto done;
    json_object_set_new(ref, "source",
                        json_pack("{s:s, s:I, s:I}", "csv", csv_path, "photos", (json_int_t)n,
                                  "missing", (json_int_t)missing));
    char *text = json_dumps(ref, JSON_INDENT(1));
    if (!text || basira_fs_write_atomic(out, text, strlen(text), 0644, &e)) {
        free(text);
        if (!text)
            basira_error_set(&e, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    free(text);
    printf(_("drift reference of %zu photos written to %s\n"), n, out);
    status = BASIRA_EXIT_OK;
done:
    if (status)
        fail(&e);
    json_decref(ref);
    json_decref(mj);
    free(cs);
    basira_pipeline_free(pipe);
    basira_classifier_free(clf);
    basira_csv_free(meta);
    basira_csv_free(csv);
    return status;
}

int basira_hub_monitor_reference_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"csv", required_argument, NULL, 'c'},
        {"images", required_argument, NULL, 'i'}, {"metadata", required_argument, NULL, 'M'},
        {"out", required_argument, NULL, 'o'},    {"photo-kind", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *csv = NULL, *images = NULL, *metadata = NULL, *out = NULL,
               *kind = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            model = optarg;
            break;
        case 'c':
            csv = optarg;
            break;
        case 'i':
            images = optarg;
            break;
        case 'M':
            metadata = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'h':
            basira_hub_oversight_usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("hub monitor-reference", o, argv,
                                         basira_hub_oversight_usage);
        }
    }
    if (!model || !csv || !images || !out || optind != argc ||
        (kind && strcmp(kind, "dermoscopy") && strcmp(kind, "clinical"))) {
        fprintf(stderr, _("basira hub monitor-reference: give --model, --csv, --images and --out "
                          "(--photo-kind dermoscopy or clinical)\n"));
        return BASIRA_EXIT_USAGE;
    }
    return build(model, csv, images, metadata, kind, out);
}
