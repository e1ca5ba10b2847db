/*
 * eval_cli.h - internal: what `basira evaluate` and `basira calibrate` share.
 *
 * Predicting a labelled image folder needs the model pipeline (model, quality,
 * intake), which the statistics library must not depend on (its tests run without
 * a model). So the runner is defined in src/cli/cmd_evaluate.c, linked only into the
 * `basira` program, and declared here, beside it, for cmd_calibrate.c.
 */
#ifndef BASIRA_EVAL_CLI_H
#define BASIRA_EVAL_CLI_H

#include "basira/eval.h"
#include "basira/image.h"
#include "basira/model.h"

#include <stdio.h>

typedef struct eval_cli_input {
    const char *model;     /* model file */
    const char *images;    /* folder of the images */
    const char *csv;       /* label table */
    const char *label_col; /* e.g. "dx" */
    const char *image_col; /* e.g. "image_id" */
    const char *group_col; /* e.g. "lesion_id"; NULL = none */
    const char *const *by; /* metadata columns to keep ("age" is banded, "skin_tone" measured) */
    int n_by;
    int threads;                /* >= 1 */
    int quiet;                  /* no progress on stderr */
    basira_precision precision; /* of the network, when precision_set */
    int precision_set;          /* 0: the model's own (basira_classifier_load) */
    const char *calibrate;      /* CSV of images (image_col, in images) for int8, or NULL */
    int tta;                    /* views averaged per photo (1, 2, 4, 8); 0 = the model's */
    /* `basira shift-check`: change each decoded photo before the model sees it (NULL:
     * none). Returns a new image in *out; called from several threads at once. */
    basira_code (*transform)(const basira_image *img, void *ctx, basira_image **out,
                             basira_error *err);
    void *transform_ctx;
} eval_cli_input;

/*
 * Predict every row of the CSV and collect the labelled set (attributes: the `by`
 * columns and the group column). Rows whose image cannot be read are reported on
 * stderr, counted in *failed and left out. Labels the model does not know are an
 * error before any prediction. info gets the model's metadata, sha256 (65 bytes) its
 * identity.
 */
basira_code eval_cli_predict(const eval_cli_input *in, basira_model_info *info, char *sha256,
                             basira_eval_set **out, long *failed, basira_error *err);

/* --tta N of evaluate, calibrate and cv: 1, 2, 4 or 8 into *out; -1 with a usage message. */
int eval_cli_parse_tta(const char *arg, int *out);

/* Images an int8 calibration sees at most (their activation ranges are what matters). */
#define EVAL_CLI_MAX_CALIBRATION 512

/*
 * int8 calibration images: the first EVAL_CLI_MAX_CALIBRATION rows of csv_path's
 * image_col, found in images, decoded and preprocessed with pp; each(ctx, chw, err) is
 * called on every one (chw[3][h][w], valid during the call). *used gets how many were
 * seen. An image that cannot be read stops it with its error; no row is an error.
 */
basira_code eval_cli_calibration_images(const char *images, const char *csv_path,
                                        const char *image_col, const basira_preprocess *pp,
                                        basira_code (*each)(void *ctx, const float *chw,
                                                            basira_error *err),
                                        void *ctx, size_t *used, basira_error *err);

/*
 * SHA-256 of a data manifest: one line "<image SHA-256> <image name> <label>" per CSV
 * row, in file order ("-" for an image that is not found), also written to path when
 * not NULL (defined in cmd_certify.c, used by certify and adapt).
 */
basira_code eval_cli_manifest_sha256(const char *csv_path, const char *images,
                                     const char *image_col, const char *label_col, const char *path,
                                     char hex[65], basira_error *err);

/*
 * The options that name the labelled images and the threads predicting them,
 * the same in evaluate, calibrate and shift-check: --model, --images, --csv,
 * --label-col, --image-col and --threads (1 to 64).
 */
#define EVAL_CLI_INPUT_OPTIONS                                                                     \
    {"model", required_argument, NULL, 'm'}, {"images", required_argument, NULL, 'i'},             \
        {"csv", required_argument, NULL, 'c'}, {"label-col", required_argument, NULL, 'l'},        \
        {"image-col", required_argument, NULL, 'I'},                                               \
    {                                                                                              \
        "threads", required_argument, NULL, 't'                                                    \
    }

/*
 * The default: of their getopt_long loops: one of them (its value is optarg)
 * is taken into *in and -1 returned; anything else is an exit status for the
 * command to return (a bad value, or basira_cli_bad_option's answer).
 */
int eval_cli_input_option(eval_cli_input *in, const char *command, int opt, char **argv,
                          void (*usage)(FILE *));

/* Parse a comma-separated list into at most max items (pointers into buf). Returns count or -1. */
int eval_cli_split_list(char *buf, const char **items, int max);

#endif
