/*
 * cmd_ensemble.c - `basira ensemble`: several trained classifiers in one model file
 * whose probabilities are averaged (include/basira/nn.h, "Ensembles").
 *
 * Why: on small data a few networks trained with other seeds or recipes make different
 * mistakes, and the mean of their probabilities ranks photos better than any one of them
 * (issue 12 lists it as a lever; measured for the clinical model in its card). The
 * members must mean the same thing by each output and see the same input, so the class
 * lists (codes, order, malignant flags, partitions) and the preprocessing are compared
 * and any difference is refused, naming it.
 *
 * The file written carries member 0's "basira" metadata with temperature 1, no clinic
 * bias and no int8 mark, and the identity of every input file under "ensemble". Its
 * thresholds are member 0's, which were not fitted for the average: calibrate it on
 * validation images (basira calibrate) before it is used, as for a freshly trained net.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basira/model.h"
#include "basira/nn.h"
#include "cli.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f,
            _("Usage: basira ensemble --out FILE [options] MODEL MODEL...\n"
              "Join trained classifiers into one model that averages their probabilities.\n\n"
              "  --out FILE            the ensemble model to write (.safetensors)\n"
              "  --model-version V     its version (default: the first model's)\n"
              "  -h, --help            show this help\n\n"
              "The models must have the same classes and preprocessing; at most %d networks "
              "in all. Calibrate the result (basira calibrate) before using it.\n"
              "Exit status: 0 written, 1 failed, 2 usage error.\n"),
            BASIRA_NET_MAX_MEMBERS);
}

/* The parsed "basira" document of net (new reference), or NULL with err set. */
static json_t *basira_doc(basira_net *net, const char *path, basira_model_info *info,
                          basira_error *err)
{
    const char *text = json_string_value(json_object_get(basira_net_metadata(net), "basira"));
    if (!text) {
        basira_error_set(err, BASIRA_E_MODEL,
                         _("model %s has no \"basira\" metadata: it is not a Basira classifier"),
                         path);
        return NULL;
    }
    if (basira_model_info_parse(text, strlen(text), info, err))
        return NULL;
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        basira_error_set(err, BASIRA_E_NOMEM, NULL);
    return doc;
}

/* NULL when a and b may be averaged, else what differs (for the message). */
static const char *difference(const basira_model_info *a, const basira_model_info *b)
{
    if (a->num_classes != b->num_classes)
        return _("the number of classes");
    for (int i = 0; i < a->num_classes; i++)
        if (strcmp(a->classes[i].code, b->classes[i].code) ||
            a->classes[i].malignant != b->classes[i].malignant ||
            a->classes[i].partition != b->classes[i].partition)
            return _("the classes (codes, order, malignant flags or partitions)");
    const basira_preprocess *p = &a->preprocess, *q = &b->preprocess;
    if (p->input_w != q->input_w || p->input_h != q->input_h)
        return _("the input size");
    if (p->colour_constancy != q->colour_constancy)
        return _("the colour constancy");
    for (int c = 0; c < 3; c++)
        if (p->mean[c] != q->mean[c] || p->std[c] != q->std[c])
            return _("the normalisation (mean and standard deviation)");
    return NULL;
}

typedef struct ens_state {
    basira_net *nets[BASIRA_NET_MAX_MEMBERS];
    int n;
    json_t *doc;     /* member 0's "basira" document, edited into the ensemble's */
    json_t *sources; /* "ensemble": one object per input file */
    basira_model_info *first, *info;
} ens_state;

/* Add every member of path to s. */
static basira_code add_model(ens_state *s, const char *path, basira_error *err)
{
    basira_net *got[BASIRA_NET_MAX_MEMBERS];
    int n = 0;
    char sha[65];
    basira_code rc = basira_file_sha256(path, sha, err);
    if (!rc)
        rc = basira_net_load_ensemble(path, got, &n, err);
    if (rc)
        return rc;
    json_t *doc = basira_doc(got[0], path, s->n ? s->info : s->first, err);
    const char *diff = doc && s->n ? difference(s->first, s->info) : NULL;
    if (!doc)
        rc = err->code;
    else if (diff)
        rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                              _("%s differs from the first model in %s: their probabilities "
                                "cannot be averaged"),
                              path, diff);
    else if (s->n + n > BASIRA_NET_MAX_MEMBERS)
        rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                              _("an ensemble holds at most %d networks"), BASIRA_NET_MAX_MEMBERS);
    const basira_model_info *mi = s->n ? s->info : s->first;
    json_t *src = rc ? NULL
                     : json_pack("{s:s, s:s, s:s, s:s, s:i}", "file", path, "sha256", sha, "name",
                                 mi->name, "version", mi->version, "networks", n);
    if (!rc && (!src || json_array_append_new(s->sources, src)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (rc) {
        json_decref(doc);
        basira_net_free_ensemble(got, n);
        return rc;
    }
    if (!s->doc)
        s->doc = doc;
    else
        json_decref(doc);
    for (int i = 0; i < n; i++)
        s->nets[s->n++] = got[i];
    return BASIRA_OK;
}

static basira_code write_ensemble(ens_state *s, const char *out, const char *version,
                                  basira_error *err)
{
    /* Member 0's calibration was of its own probabilities, not of the average. */
    json_object_set_new(s->doc, "temperature", json_real(1.0));
    json_object_del(s->doc, "malignant_bias");
    json_object_del(s->doc, "malignant_slope");
    json_object_del(s->doc, "int8");
    json_object_del(s->doc, "calibration");
    if (version)
        json_object_set_new(s->doc, "version", json_string(version));
    if (json_object_set(s->doc, "ensemble", s->sources))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    char *text = json_dumps(s->doc, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (!text)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    /* The written metadata must still be a valid model document. */
    basira_code rc = basira_model_info_parse(text, strlen(text), s->info, err);
    if (!rc && json_object_set_new(basira_net_metadata(s->nets[0]), "basira", json_string(text)))
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
    free(text);
    if (!rc)
        rc = basira_net_save_ensemble((const basira_net *const *)s->nets, s->n, out, err);
    return rc;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"model-version", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *version = NULL;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'o':
            out = optarg;
            break;
        case 'V':
            version = optarg;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("ensemble", o, argv, usage);
        }
    }
    if (!out || argc - optind < 2) {
        fprintf(stderr, _("basira ensemble: --out and at least two models are required\n"));
        usage(stderr);
        return BASIRA_EXIT_USAGE;
    }
    basira_error err;
    basira_error_clear(&err);
    ens_state s = {.n = 0};
    s.sources = json_array();
    s.first = malloc(sizeof *s.first);
    s.info = malloc(sizeof *s.info);
    basira_code rc =
        s.sources && s.first && s.info ? BASIRA_OK : basira_error_set(&err, BASIRA_E_NOMEM, NULL);
    for (int i = optind; !rc && i < argc; i++)
        rc = add_model(&s, argv[i], &err);
    if (!rc)
        rc = write_ensemble(&s, out, version, &err);
    int members = s.n;
    basira_net_free_ensemble(s.nets, s.n);
    json_decref(s.doc);
    json_decref(s.sources);
    free(s.first);
    free(s.info);
    if (rc)
        return basira_cli_failed("ensemble", &err);
    printf(_("Ensemble of %d networks written to %s. Its temperature and thresholds are not "
             "fitted yet: run basira calibrate on validation images before using it.\n"),
           members, out);
    return BASIRA_EXIT_OK;
}

const basira_command basira_cmd_ensemble = {
    "ensemble",
    N_("join trained classifiers into one model that averages their probabilities"),
    run,
    usage,
};
