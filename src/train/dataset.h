/*
 * dataset.h - internal: the images of a training run, decoded once and kept in memory.
 *
 * Training images are kept at a working size a little above the network's input
 * (so random crops still have detail to take); validation and test images are kept
 * exactly as inference sees them: the whole photo resized to the input size by
 * basira_image_resize(), the same call basira_preprocess_image() makes.
 */
#ifndef BASIRA_TRAIN_DATASET_H
#define BASIRA_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "basira/train.h"

typedef struct train_dataset {
    basira_csv *csv;
    basira_classes classes;
    size_t n;             /* items (CSV rows used) */
    size_t *row;          /* CSV row of each item */
    int *label;           /* class index */
    int *part;            /* BASIRA_PART_* */
    int work_w, work_h;   /* size of stored training images: room for crops */
    int input_w, input_h; /* the network's input: validation and test images are stored so */
    uint8_t **pixels;     /* packed RGB of each item (work or input side by part), NULL if bad */
    size_t *index[3];     /* items of each part */
    size_t count[3];      /* number of items of each part */
    size_t groups[3];     /* number of groups of each part */
    size_t skipped;       /* images skipped (--skip-bad) */
    double load_seconds;
} train_dataset;

/* Read the CSV, classes, split, decode every image. log receives short notices (may be NULL). */
basira_code train_dataset_load(const basira_train_options *o, train_dataset *ds, FILE *log,
                               basira_error *err);
void train_dataset_free(train_dataset *ds);

/* Ids of the distinct values of column col over rows[0..n) (identical text, same id, ranked
 * by the text); *n_ids the count. With empty_msg_col, an empty value is an error naming it. */
basira_code train_value_ids(const basira_csv *csv, const size_t *rows, size_t n, int col, int *ids,
                            int *n_ids, const char *empty_msg_col, basira_error *err);

/* Write train.csv, val.csv, test.csv (the original rows) into dir. */
basira_code train_dataset_write_split(const train_dataset *ds, const char *dir, basira_error *err);

#endif
