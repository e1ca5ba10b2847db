/*
 * tiny_model.h - tests' own small random classifier: a real architecture from
 * basira_arch_build, random weights, and "basira" metadata, saved as a model file.
 * Its predictions mean nothing; the tests check shapes, rules and invariants.
 */
#ifndef BASIRA_TESTS_TINY_MODEL_H
#define BASIRA_TESTS_TINY_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "basira/model.h"
#include "basira/nn.h"

typedef struct tiny_model_opts {
    int input_size;      /* square side, default 32 */
    int tta;             /* default 1 */
    double temperature;  /* default 1.0 */
    double high, medium; /* default 0.40 / 0.08 */
    unsigned long long seed;
    int num_classes_net; /* outputs of the net; 0 = the number of classes of the metadata */
    int input_size_meta; /* input size written in the metadata; 0 = input_size */
    const char *family;  /* architecture family, default "resnet" */
    int width, depth;    /* default 4 and 1: tiny */
} tiny_model_opts;

static inline void tiny_model_opts_default(tiny_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->input_size = 32;
    o->tta = 1;
    o->temperature = 1.0;
    o->high = 0.40;
    o->medium = 0.08;
    o->seed = 42;
}

/* The committed class list (models/ham10000-classes.json) as a new JSON array, or NULL. */
static inline json_t *tiny_model_classes(void)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/ham10000-classes.json", src ? src : ".");
    return json_load_file(path, 0, NULL);
}

/* The "basira" metadata document for o, new reference (NULL if the class list is missing). */
static inline json_t *tiny_model_meta(const tiny_model_opts *o)
{
    json_t *classes = tiny_model_classes();
    if (!classes)
        return NULL;
    int side = o->input_size_meta ? o->input_size_meta : o->input_size;
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:[f,f,f], s:[f,f,f], s:s}, s:f, s:{s:f, s:f}, "
                     "s:i, s:{s:s}}",
                     "name", "tiny-test", "version", "0.0.1", "classes", classes, "preprocessing",
                     "input_size", side, "mean", 0.6, 0.5, 0.45, "std", 0.2, 0.2, 0.2,
                     "colour_constancy", "shades_of_gray", "temperature", o->temperature,
                     "thresholds", "high", o->high, "medium", o->medium, "tta", o->tta,
                     "provenance", "note", "random weights for tests");
}

/*
 * Save a tiny model to path with metadata meta (a "basira" document; NULL = none).
 * Returns BASIRA_OK or the engine's error.
 */
static inline basira_code tiny_model_save_meta(const tiny_model_opts *o, const json_t *meta,
                                               const char *path, basira_error *err)
{
    basira_arch_params ap;
    memset(&ap, 0, sizeof ap);
    ap.family = o->family ? o->family : "resnet";
    ap.input_size = o->input_size;
    ap.num_classes = o->num_classes_net ? o->num_classes_net : 7;
    ap.width = o->width ? o->width : 4;
    ap.depth = o->depth ? o->depth : 1;
    ap.dropout = 0;
    char *arch = basira_arch_build(&ap, err);
    if (!arch)
        return err ? err->code : BASIRA_E_INTERNAL;
    basira_net *net = NULL;
    basira_code rc = basira_net_new(arch, o->seed, &net, err);
    free(arch);
    if (rc)
        return rc;
    if (meta) {
        char *text = json_dumps(meta, JSON_COMPACT);
        json_object_set_new(basira_net_metadata(net), "basira", json_string(text));
        free(text);
    }
    rc = basira_net_save(net, path, err);
    basira_net_free(net);
    return rc;
}

static inline basira_code tiny_model_save(const tiny_model_opts *o, const char *path,
                                          basira_error *err)
{
    json_t *meta = tiny_model_meta(o);
    if (!meta)
        return basira_error_set(err, BASIRA_E_NOT_FOUND, "models/ham10000-classes.json");
    basira_code rc = tiny_model_save_meta(o, meta, path, err);
    json_decref(meta);
    return rc;
}

#endif
