/*
 * cmd_triage.c - `basira triage [options] IMAGE...`: the whole pipeline on photos.
 *
 * The model is loaded once; the photos are processed in the order given and one bad
 * file never stops the others. The human-readable output is printed from the same
 * JSON object that --json prints, so the two can never disagree.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "basira/i18n.h"
#include "basira/json.h"
#include "basira/triage.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira triage [options] IMAGE...\n"
                 "Assess photos of skin lesions: photo quality, skin tone, most likely "
                 "diagnoses, risk category and recommended action.\n"
                 "Decision support, not a diagnosis.\n\n"
                 "Options:\n"
                 "  --json            one JSON object per photo (JSON Lines), in input order\n"
                 "  --force           score photos that failed the quality check (never 'low')\n"
                 "  --history LIST    what the patient reports, comma-separated: changed,\n"
                 "                    bleeding, growth, itching (or none)\n"
                 "  --model FILE      classifier model (default: the bundled model)\n"
                 "  --config FILE     site configuration, e.g. {\"thresholds\": {\"high\": 0.4, "
                 "\"medium\": 0.08}}\n"
                 "  -h, --help        show this help\n\n"
                 "Exit status: 0 every photo was assessed, 1 a photo was rejected or could not "
                 "be read, 2 usage error.\n"));
    fprintf(f, _("\nPhoto kinds (each photo is scored by the model made for its kind):\n"
                 "  --modality KIND        the photo is dermoscopic or clinical (the detector "
                 "decides when they disagree)\n"
                 "  --modality-confirmed   the declared kind wins over the detector\n"
                 "  --clinical-model FILE  model for clinical photos (default: the bundled one)\n"
                 "  --modality-model FILE  photo-kind detector (default: the bundled one; none: "
                 "no detection)\n"));
}

/* Localised label of a category code ("low", "medium", "high"). */
static const char *category_label(const char *code)
{
    if (code && !strcmp(code, "low"))
        return _("low risk");
    if (code && !strcmp(code, "medium"))
        return _("medium risk");
    return _("high risk");
}

static const char *tone_label(const char *code)
{
    static const struct {
        const char *code, *label;
    } tones[] = {
        {"very_light", N_("very light skin")},
        {"light", N_("light skin")},
        {"intermediate", N_("intermediate skin")},
        {"tan", N_("tan skin")},
        {"brown", N_("brown skin")},
        {"dark", N_("dark skin")},
    };
    for (size_t i = 0; code && i < sizeof tones / sizeof tones[0]; i++)
        if (!strcmp(code, tones[i].code))
            return _(tones[i].label);
    return _("not measurable");
}

static void print_quality(FILE *f, const json_t *q)
{
    const json_t *checks = json_object_get(q, "checks");
    size_t i;
    const json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (json_is_false(json_object_get(c, "passed"))) {
            const char *m = json_string_value(json_object_get(c, "message"));
            const char *code = json_string_value(json_object_get(c, "code"));
            fprintf(f, "    - %s (%s)\n", m ? m : "", code ? code : "");
        }
    }
}

static void print_human(FILE *f, const char *file, const json_t *r)
{
    const char *status = json_string_value(json_object_get(r, "status"));
    fprintf(f, "%s\n", file);
    if (status && !strcmp(status, "error")) {
        const json_t *e = json_object_get(r, "error");
        fprintf(f, _("  Error: %s [%s]\n"), json_string_value(json_object_get(e, "message")),
                json_string_value(json_object_get(e, "code")));
        return;
    }
    const json_t *q = json_object_get(r, "quality");
    const json_t *e = json_object_get(r, "error");
    const char *ecode = json_string_value(json_object_get(e, "code"));
    if (status && !strcmp(status, "rejected") && ecode && !strcmp(ecode, "not_skin")) {
        fprintf(f, _("  Photo refused: %s\n"), json_string_value(json_object_get(e, "message")));
        return;
    }
    if (status && !strcmp(status, "rejected")) {
        fprintf(f, _("  Photo rejected: take a new photo. Problems found:\n"));
        print_quality(f, q);
        return;
    }
    const json_t *mo = json_object_get(r, "modality");
    const char *mk = json_string_value(json_object_get(mo, "kind"));
    if (mk)
        fprintf(f, _("  Photo kind: %s\n"),
                !strcmp(mk, "clinical") ? _("clinical (no dermatoscope)") : _("dermoscopic"));
    const json_t *risk = json_object_get(r, "risk");
    fprintf(f, _("  Risk: %s (index %d/100)\n"),
            category_label(json_string_value(json_object_get(risk, "category"))),
            (int)json_integer_value(json_object_get(risk, "index")));
    fprintf(f, _("  Action: %s\n"), json_string_value(json_object_get(risk, "action")));
    const json_t *pc = json_object_get(r, "primary_care");
    if (json_is_true(json_object_get(pc, "applies")))
        fprintf(f, _("  Primary care: %s\n"), json_string_value(json_object_get(pc, "advice")));
    const json_t *why = json_object_get(risk, "raised_by");
    size_t i;
    const json_t *w;
    json_array_foreach(why, i, w)
    {
        const char *s = json_string_value(w);
        if (s && !strcmp(s, "history"))
            fprintf(f, _("  Raised to at least medium: the patient reports change, bleeding or "
                         "rapid growth.\n"));
        else if (s && !strcmp(s, "quality"))
            fprintf(f, _("  Raised to medium: the photo failed the quality check, so a low risk "
                         "cannot be trusted.\n"));
    }
    /* How sure, and whether this photo is inside what the model was validated on. */
    const json_t *th = json_object_get(risk, "thresholds"),
                 *u = json_object_get(risk, "uncertainty");
    if (json_is_object(th))
        fprintf(f, _("  Thresholds: medium from %.0f, high from %.0f\n"),
                100.0 * json_number_value(json_object_get(th, "medium")),
                100.0 * json_number_value(json_object_get(th, "high")));
    const char *method = json_string_value(json_object_get(u, "method"));
    if (json_is_object(u))
        fprintf(f,
                method && !strcmp(method, "ensemble")
                    ? _("  Uncertainty: index %d to %d over %d scores (the model's networks on "
                        "views of the photo)\n")
                    : _("  Uncertainty: index %d to %d over %d views of the photo\n"),
                (int)json_integer_value(json_object_get(u, "low")),
                (int)json_integer_value(json_object_get(u, "high")),
                (int)json_integer_value(json_object_get(u, "views")));
    json_array_foreach(json_object_get(json_object_get(r, "validation"), "warnings"), i, w)
        fprintf(f, _("  Warning: %s\n"), json_string_value(json_object_get(w, "message")));
    fprintf(f, _("  Most likely:\n"));
    const json_t *c;
    json_array_foreach(json_object_get(r, "candidates"), i, c)
    {
        fprintf(f, "    %zu. %s: %.0f%%\n", i + 1, json_string_value(json_object_get(c, "name")),
                100.0 * json_number_value(json_object_get(c, "probability")));
    }
    if (json_is_true(json_object_get(q, "ok"))) {
        fprintf(f, _("  Photo quality: good\n"));
    } else {
        fprintf(f, _("  Photo quality: insufficient (assessed on request):\n"));
        print_quality(f, q);
    }
    const json_t *tone = json_object_get(r, "skin_tone");
    if (json_is_object(tone) && json_is_number(json_object_get(tone, "ita")))
        fprintf(f, _("  Skin tone: %s (ITA %.0f°)\n"),
                tone_label(json_string_value(json_object_get(tone, "category"))),
                json_number_value(json_object_get(tone, "ita")));
}

/* Adds model (a result's {"name","version","sha256"}) to seen unless its hash is there;
 * a result naming no model adds nothing. -1: out of memory. */
static int note_model(json_t *seen, json_t *model)
{
    const char *sha = json_string_value(json_object_get(model, "sha256"));
    if (!sha || !json_string_value(json_object_get(model, "name")) ||
        !json_string_value(json_object_get(model, "version")))
        return 0;
    size_t i;
    json_t *m;
    json_array_foreach(seen, i, m)
    {
        if (!strcmp(sha, json_string_value(json_object_get(m, "sha256"))))
            return 0;
    }
    return json_array_append(seen, model) ? -1 : 0;
}

static int run_triage(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"force", no_argument, NULL, 'f'},
        {"history", required_argument, NULL, 'H'},
        {"model", required_argument, NULL, 'm'},
        {"config", required_argument, NULL, 'c'},
        {"modality", required_argument, NULL, 'K'},
        {"modality-confirmed", no_argument, NULL, 'C'},
        {"clinical-model", required_argument, NULL, 'L'},
        {"modality-model", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, force = 0, have_history = 0;
    const char *model = NULL, *config = NULL, *clinical = NULL, *detector = NULL;
    basira_photo_kind kind = BASIRA_PHOTO_UNKNOWN;
    int confirmed = 0;
    basira_history history;
    basira_history_init(&history);
    basira_error err;
    basira_error_clear(&err);
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'j':
            json = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'H':
            if (basira_history_parse(optarg, &history, &err)) {
                basira_cli_report("--history", &err);
                return BASIRA_EXIT_USAGE;
            }
            have_history = 1;
            break;
        case 'm':
            model = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'K':
            if (!strcmp(optarg, "dermoscopic"))
                kind = BASIRA_PHOTO_DERMOSCOPIC;
            else if (!strcmp(optarg, "clinical"))
                kind = BASIRA_PHOTO_CLINICAL;
            else {
                fprintf(stderr, _("basira triage: --modality must be dermoscopic or clinical\n"));
                return BASIRA_EXIT_USAGE;
            }
            break;
        case 'C':
            confirmed = 1;
            break;
        case 'L':
            clinical = optarg;
            break;
        case 'D':
            detector = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("triage", o, argv, usage);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, _("basira triage: no image given\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_triage_config cfg;
    basira_triage_config_default(&cfg);
    if (config && basira_triage_config_load(config, &cfg, &err)) {
        basira_cli_report("--config", &err);
        return BASIRA_EXIT_USAGE;
    }
    basira_pipeline *p = NULL;
    /* Lazy: a dermoscopic photo never loads (and hashes) the clinical model. */
    if (basira_pipeline_new_lazy(model, &cfg, &p, &err)) {
        basira_cli_report(model ? model : NULL, &err);
        return BASIRA_EXIT_FAILED;
    }
    if (clinical && basira_pipeline_set_kind_model(p, BASIRA_PHOTO_CLINICAL, clinical, &err)) {
        basira_cli_report(clinical, &err);
        basira_pipeline_free(p);
        return BASIRA_EXIT_FAILED;
    }
    if (detector && !strcmp(detector, "none"))
        basira_pipeline_clear_detector(p);
    else if (detector && basira_pipeline_set_detector(p, detector, &err)) {
        basira_cli_report(detector, &err);
        basira_pipeline_free(p);
        return BASIRA_EXIT_FAILED;
    }
    basira_triage_request req = {.history = have_history ? &history : NULL,
                                 .force = force,
                                 .photo_kind = kind,
                                 .kind_confirmed = confirmed};
    int failed = 0;
    json_t *models = json_array(); /* human output: the models results named, once each */
    if (!models) {
        basira_error_set(&err, BASIRA_E_NOMEM, NULL);
        basira_cli_report(NULL, &err);
        basira_pipeline_free(p);
        return BASIRA_EXIT_FAILED;
    }
    for (int i = optind; i < argc; i++) {
        json_t *r = NULL;
        if (basira_pipeline_run_file(p, argv[i], &req, &r, &err)) {
            basira_cli_report(argv[i], &err);
            failed = 1;
            continue;
        }
        const char *status = json_string_value(json_object_get(r, "status"));
        if (!status || strcmp(status, "ok"))
            failed = 1;
        if (json) {
            /* "file" first, then the pipeline's result, in input order. */
            json_t *line = json_pack("{s:s}", "file", argv[i]);
            if (!line || json_object_update(line, r) || basira_json_print_line(stdout, line)) {
                basira_error_set(&err, BASIRA_E_NOMEM, NULL);
                basira_cli_report(argv[i], &err);
                failed = 1;
            }
            json_decref(line);
            fflush(stdout);
        } else {
            print_human(stdout, argv[i], r);
            if (note_model(models, json_object_get(r, "model"))) {
                basira_error_set(&err, BASIRA_E_NOMEM, NULL);
                basira_cli_report(argv[i], &err);
                failed = 1;
            }
        }
        json_decref(r);
    }
    if (!json) {
        /* The models that answered, each once: a clinical photo names the clinical model. */
        size_t i;
        json_t *m;
        json_array_foreach(models, i, m)
        {
            printf(_("Model: %s %s (SHA-256 %.12s)\n"),
                   json_string_value(json_object_get(m, "name")),
                   json_string_value(json_object_get(m, "version")),
                   json_string_value(json_object_get(m, "sha256")));
        }
        printf("%s\n", basira_disclaimer());
    }
    json_decref(models);
    basira_pipeline_free(p);
    return failed ? BASIRA_EXIT_FAILED : BASIRA_EXIT_OK;
}

const basira_command basira_cmd_triage = {
    "triage",
    N_("assess photos of skin lesions: quality, likely diagnoses, risk and action"),
    run_triage,
    usage,
};
