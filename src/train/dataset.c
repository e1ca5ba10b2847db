/*
 * dataset.c - from a CSV and a folder of images to labelled pixels in memory.
 *
 * Every image is decoded once, at the start, through the same intake as a
 * clinical photo (basira_image_load_file: orientation, sRGB, limits), then
 * shrunk: HAM10000's 7,064 images take about 0.5 GB at 160x160, and decoding
 * once instead of every epoch is what makes CPU training practical. Decoding
 * runs on all the threads the user allowed.
 */
#include "basira/fs.h"
#include "basira/model.h"
#include "train/dataset.h"
#include "train/progress.h"
#include "basira/image.h"
#include "core/i18n.h"
#include "train/rng.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void train_dataset_free(train_dataset *ds)
{
    if (!ds)
        return;
    if (ds->pixels)
        for (size_t i = 0; i < ds->n; i++)
            free(ds->pixels[i]);
    free(ds->pixels);
    free(ds->row);
    free(ds->label);
    free(ds->part);
    for (int p = 0; p < 3; p++)
        free(ds->index[p]);
    basira_csv_free(ds->csv);
    memset(ds, 0, sizeof *ds);
}

static basira_code missing_column(const basira_csv *csv, const char *option, const char *name,
                                  basira_error *err)
{
    char cols[256] = "";
    size_t used = 0;
    for (int i = 0; i < basira_csv_cols(csv) && used < sizeof cols; i++) {
        int k = snprintf(cols + used, sizeof cols - used, "%s%s", i ? ", " : "",
                         basira_csv_header(csv, i));
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return basira_error_set(err, BASIRA_E_FORMAT,
                            _("the CSV has no column '%s' (given by %s); its columns are: %s"),
                            name, option, cols);
}

/* ---- grouping ---------------------------------------------------------------------- */

typedef struct str_item {
    const char *s;
    size_t i;
} str_item;

static int cmp_str_item(const void *a, const void *b)
{
    const str_item *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

size_t basira_split_select_rows(size_t nrows, long limit, uint64_t seed, size_t *rows)
{
    for (size_t i = 0; i < nrows; i++)
        rows[i] = i;
    if (limit <= 0 || (size_t)limit >= nrows)
        return nrows;
    size_t n = (size_t)limit;
    uint64_t rs = basira_seed_mix(seed, 0x4c494d4954ULL, 0);
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)basira_rng_below(&rs, nrows - i);
        size_t t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
    }
    /* Back to file order: the split files then read like the original. */
    for (size_t i = 1; i < n; i++) {
        size_t v = rows[i], k = i;
        for (; k > 0 && rows[k - 1] > v; k--)
            rows[k] = rows[k - 1];
        rows[k] = v;
    }
    return n;
}

/* Ids of the distinct values of column col over rows (identical text, same id). */
basira_code train_value_ids(const basira_csv *csv, const size_t *rows, size_t n, int col, int *ids,
                            int *n_ids, const char *empty_msg_col, basira_error *err)
{
    str_item *items = malloc((n ? n : 1) * sizeof *items);
    if (!items)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++) {
        items[i].s = basira_csv_field(csv, rows[i], col);
        items[i].i = i;
        if (empty_msg_col && !*items[i].s) {
            free(items);
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("CSV line %zu: the group column '%s' is empty"),
                                    basira_csv_line(csv, rows[i]), empty_msg_col);
        }
    }
    qsort(items, n, sizeof *items, cmp_str_item);
    int id = 0;
    for (size_t k = 0; k < n; k++) {
        if (k && strcmp(items[k].s, items[k - 1].s))
            id++;
        ids[items[k].i] = id;
    }
    *n_ids = n ? id + 1 : 0;
    free(items);
    return BASIRA_OK;
}

basira_code basira_split_rows(const basira_csv *csv, const size_t *rows, size_t n, int lc, int gc,
                              const double fractions[3], uint64_t seed, int *part, int *group,
                              basira_error *err)
{
    int *label = malloc((n ? n : 1) * sizeof *label);
    int *g = group ? group : malloc((n ? n : 1) * sizeof *g);
    basira_code rc = BASIRA_OK;
    int n_labels = 0, n_groups = 0;
    if (!label || !g) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    if ((rc = train_value_ids(csv, rows, n, lc, label, &n_labels, NULL, err)))
        goto out;
    if (gc >= 0) {
        if ((rc = train_value_ids(csv, rows, n, gc, g, &n_groups, basira_csv_header(csv, gc), err)))
            goto out;
    } else {
        for (size_t i = 0; i < n; i++)
            g[i] = (int)i;
        n_groups = (int)n;
    }
    rc = basira_split_groups(n, label, n_labels > 0 ? n_labels : 1, g, n_groups, fractions, seed,
                             part, err);
out:
    free(label);
    if (g != group)
        free(g);
    return rc;
}

/* ---- parallel decoding ----------------------------------------------------------- */

typedef struct load_job {
    const basira_train_options *o;
    train_dataset *ds;
    int ic;
    FILE *log;
    pthread_mutex_t mu;
    size_t next;
    basira_code rc;
    basira_error err; /* first error */
    size_t warned;
} load_job;

static basira_code load_one(load_job *job, size_t i, basira_error *err)
{
    train_dataset *ds = job->ds;
    const char *value = basira_csv_field(ds->csv, ds->row[i], job->ic);
    char path[4096];
    basira_code rc = basira_fs_find_image(job->o->images_dir, value, path, sizeof path, err);
    if (rc)
        return rc;
    basira_intake_options opts;
    basira_intake_options_default(&opts);
    /* Small training images (e.g. 28x28 X-rays) are the data owner's choice; the
     * clinical gate on photo size applies in use, not here. */
    opts.min_side = 8;
    basira_image *img = NULL, *small = NULL;
    if ((rc = basira_image_load_file(path, &opts, &img, err)))
        return rc;
    int train = ds->part[i] == BASIRA_PART_TRAIN;
    int sw = train ? ds->work_w : ds->input_w, sh = train ? ds->work_h : ds->input_h;
    const basira_image *use = img;
    /* Same call and the same shortcut as basira_preprocess_image(): identical pixels. */
    if (basira_image_width(img) != sw || basira_image_height(img) != sh) {
        if ((rc = basira_preprocess_fit(img, sw, sh, &small, err))) {
            basira_image_free(img);
            return rc;
        }
        use = small;
    }
    size_t bytes = 3 * (size_t)sw * (size_t)sh;
    uint8_t *px = malloc(bytes);
    if (!px) {
        basira_image_free(small);
        basira_image_free(img);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memcpy(px, basira_image_pixels(use), bytes);
    basira_image_free(small);
    basira_image_free(img);
    ds->pixels[i] = px;
    return BASIRA_OK;
}

static void *load_worker(void *arg)
{
    load_job *job = arg;
    train_dataset *ds = job->ds;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        size_t i = job->next++;
        int stop = i >= ds->n || (job->rc && !job->o->skip_bad);
        pthread_mutex_unlock(&job->mu);
        if (stop)
            break;
        basira_error e;
        basira_code rc = load_one(job, i, &e);
        if (!rc)
            continue;
        size_t line = basira_csv_line(ds->csv, ds->row[i]);
        pthread_mutex_lock(&job->mu);
        if (job->o->skip_bad && rc != BASIRA_E_NOMEM) {
            ds->skipped++;
            if (job->log && job->warned++ < 10)
                fprintf(job->log, _("warning: CSV line %zu skipped: %s\n"), line, e.message);
        } else if (!job->rc) {
            job->rc = rc;
            basira_error_set(&job->err, rc, _("CSV line %zu: %s"), line, e.message);
        }
        pthread_mutex_unlock(&job->mu);
    }
    return NULL;
}

static basira_code decode_all(const basira_train_options *o, train_dataset *ds, int ic, FILE *log,
                              basira_error *err)
{
    load_job job;
    memset(&job, 0, sizeof job);
    job.o = o;
    job.ds = ds;
    job.ic = ic;
    job.log = log;
    pthread_mutex_init(&job.mu, NULL);
    int nt = o->threads > 0 ? o->threads : 1;
    if (nt > 64)
        nt = 64;
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < nt; t++) {
        if (pthread_create(&th[started], NULL, load_worker, &job))
            break; /* fewer threads is only slower */
        started++;
    }
    load_worker(&job);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&job.mu);
    if (job.rc) {
        if (err)
            *err = job.err;
        return job.rc;
    }
    if (ds->skipped && log)
        fprintf(log, _("warning: %zu images could not be used and were skipped\n"), ds->skipped);
    return BASIRA_OK;
}

/* ---- a split given by the data (--split-col) -------------------------------------- */

/*
 * The part of every CSV row from its column col: "train", "val" or "validation", "test";
 * empty leaves the row out (-1). Anything else is an error: a typo must not move a test
 * photo into training.
 */
static basira_code fixed_parts(const basira_csv *csv, int col, const char *name, size_t nrows,
                               int **out, basira_error *err)
{
    int *p = malloc((nrows ? nrows : 1) * sizeof *p);
    if (!p)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t r = 0; r < nrows; r++) {
        const char *v = basira_csv_field(csv, r, col);
        if (!strcmp(v, "train"))
            p[r] = BASIRA_PART_TRAIN;
        else if (!strcmp(v, "val") || !strcmp(v, "validation"))
            p[r] = BASIRA_PART_VAL;
        else if (!strcmp(v, "test"))
            p[r] = BASIRA_PART_TEST;
        else if (!*v)
            p[r] = -1;
        else {
            free(p);
            return basira_error_set(err, BASIRA_E_FORMAT,
                                    _("CSV line %zu: the split column '%s' says '%s' (train, val, "
                                      "test, or empty to leave the row out)"),
                                    basira_csv_line(csv, r), name, v);
        }
    }
    *out = p;
    return BASIRA_OK;
}

/* A split not drawn by us may put one lesion or patient on both sides: refused. */
static basira_code check_groups_whole(const basira_csv *csv, const size_t *rows, const int *part,
                                      const int *group, size_t n, const char *group_col,
                                      basira_error *err)
{
    int *first = malloc((n ? n : 1) * sizeof *first);
    if (!first)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++)
        first[i] = -1;
    basira_code rc = BASIRA_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        if (first[group[i]] < 0)
            first[group[i]] = part[i];
        else if (first[group[i]] != part[i])
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("CSV line %zu: group '%s' of column '%s' is in more than one "
                                    "part of the split (training and evaluation would share it)"),
                                  basira_csv_line(csv, rows[i]),
                                  basira_csv_field(csv, rows[i], basira_csv_column(csv, group_col)),
                                  group_col);
    }
    free(first);
    return rc;
}

/* ---- the whole load ----------------------------------------------------------------- */

basira_code train_dataset_load(const basira_train_options *o, train_dataset *ds, FILE *log,
                               basira_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (!o || !o->csv_path || !o->images_dir || !o->image_col || !o->label_col)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the CSV file, images folder, image and label columns are "
                                  "needed"));
    double t0 = train_now_seconds();
    int *group = NULL, *fixed = NULL;
    const char **labels = NULL;
    basira_code rc = basira_csv_read_file(o->csv_path, &ds->csv, err);
    if (rc)
        return rc;
    const basira_csv *csv = ds->csv;
    int ic = basira_csv_column(csv, o->image_col), lc = basira_csv_column(csv, o->label_col);
    int gc = o->group_col ? basira_csv_column(csv, o->group_col) : -1;
    int sc = o->stratify_col ? basira_csv_column(csv, o->stratify_col) : lc;
    size_t nrows = basira_csv_rows(csv);
    if (ic < 0) {
        rc = missing_column(csv, "--image-col", o->image_col, err);
        goto out;
    }
    if (lc < 0) {
        rc = missing_column(csv, "--label-col", o->label_col, err);
        goto out;
    }
    if (o->group_col && gc < 0) {
        rc = missing_column(csv, "--group-col", o->group_col, err);
        goto out;
    }
    if (sc < 0) {
        rc = missing_column(csv, "--stratify-col", o->stratify_col, err);
        goto out;
    }
    if (nrows == 0) {
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("the CSV file %s has no data rows"),
                              o->csv_path);
        goto out;
    }
    /* The parts of each row: given by `basira cv`, or by the data (--split-col), else drawn. */
    const int *given = o->parts;
    if (!given && o->split_col) {
        int spc = basira_csv_column(csv, o->split_col);
        if (spc < 0) {
            rc = missing_column(csv, "--split-col", o->split_col, err);
            goto out;
        }
        if ((rc = fixed_parts(csv, spc, o->split_col, nrows, &fixed, err)))
            goto out;
        given = fixed;
    }

    /* --limit: a seeded random subset (in file order), so a smoke test sees every class. */
    size_t n = nrows;
    if (o->limit > 0 && (size_t)o->limit < nrows && !given)
        n = (size_t)o->limit;
    ds->row = malloc(nrows * sizeof *ds->row);
    ds->label = malloc(n * sizeof *ds->label);
    ds->part = malloc(n * sizeof *ds->part);
    ds->pixels = calloc(n, sizeof *ds->pixels);
    group = malloc(n * sizeof *group);
    labels = malloc(n * sizeof *labels);
    if (!ds->row || !ds->label || !ds->part || !ds->pixels || !labels || !group) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto out;
    }
    if (given) {
        /* The parts are given per CSV row; -1 leaves the row out. */
        if (o->parts && o->n_parts != nrows) {
            rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                  _("%zu parts given for a CSV of %zu rows"), o->n_parts, nrows);
            goto out;
        }
        n = 0;
        for (size_t r = 0; r < nrows; r++)
            if (given[r] >= BASIRA_PART_TRAIN && given[r] <= BASIRA_PART_TEST)
                ds->row[n++] = r;
    } else {
        n = basira_split_select_rows(nrows, o->limit, basira_train_split_seed(o), ds->row);
    }
    ds->n = n;

    /* Classes and labels. */
    for (size_t i = 0; i < n; i++)
        labels[i] = basira_csv_field(csv, ds->row[i], lc);
    if (o->classes_path)
        rc = basira_classes_load(o->classes_path, &ds->classes, err);
    else
        rc = basira_classes_from_labels(labels, n, &ds->classes, err);
    if (rc)
        goto out;
    /* A contrastive run uses no label: one value for every photo (unlabelled ones) will do. */
    if (ds->classes.n < (o->contrastive > 0 ? 1 : 2)) {
        rc = basira_error_set(err, BASIRA_E_FORMAT,
                              _("training needs at least 2 classes; the data has %d"),
                              ds->classes.n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ds->label[i] = basira_classes_find(&ds->classes, labels[i]);
        if (ds->label[i] < 0) {
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("CSV line %zu: label '%s' is not one of the classes"),
                                  basira_csv_line(csv, ds->row[i]), labels[i]);
            goto out;
        }
    }

    /* The split depends only on the CSV, the fractions and the seed (not on --classes). */
    if ((rc = basira_split_rows(csv, ds->row, n, sc, gc, o->split, basira_train_split_seed(o),
                                ds->part, group, err)))
        goto out;
    if (given) {
        for (size_t i = 0; i < n; i++)
            ds->part[i] = given[ds->row[i]];
        if (o->group_col &&
            (rc = check_groups_whole(csv, ds->row, ds->part, group, n, o->group_col, err)))
            goto out;
    }

    /* Decode. The working side leaves room for crops: 1.25 x the input. */
    ds->input_w = o->input_size;
    ds->input_h = o->input_height ? o->input_height : o->input_size;
    int room = o->augment != BASIRA_AUGMENT_NONE;
    ds->work_w = room ? (ds->input_w * 5 + 3) / 4 : ds->input_w;
    ds->work_h = room ? (ds->input_h * 5 + 3) / 4 : ds->input_h;
    if ((rc = decode_all(o, ds, ic, log, err)))
        goto out;

    /* Items and groups of each part, bad images left out. */
    for (int p = 0; p < 3; p++) {
        ds->index[p] = malloc((n ? n : 1) * sizeof *ds->index[p]);
        if (!ds->index[p]) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (ds->pixels[i])
            ds->index[ds->part[i]][ds->count[ds->part[i]]++] = i;
    if (o->group_col) {
        /* A group counts in its part if any of its images could be used. */
        unsigned char *seen = calloc(n ? n : 1, 1);
        if (!seen) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (ds->pixels[i] && !seen[group[i]]) {
                seen[group[i]] = 1;
                ds->groups[ds->part[i]]++;
            }
        free(seen);
    } else {
        for (int p = 0; p < 3; p++)
            ds->groups[p] = ds->count[p];
    }
    if (ds->count[BASIRA_PART_TRAIN] < 2) {
        rc = basira_error_set(err, BASIRA_E_FORMAT,
                              _("only %zu usable training images: too few to train"),
                              ds->count[BASIRA_PART_TRAIN]);
        goto out;
    }
    ds->load_seconds = train_now_seconds() - t0;
out:
    free(group);
    free(fixed);
    free(labels);
    if (rc)
        train_dataset_free(ds);
    return rc;
}

basira_code train_dataset_write_split(const train_dataset *ds, const char *dir, basira_error *err)
{
    static const char *const names[3] = {"train.csv", "val.csv", "test.csv"};
    size_t *rows = malloc((ds->n ? ds->n : 1) * sizeof *rows);
    if (!rows)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    basira_code rc = BASIRA_OK;
    for (int p = 0; p < 3 && !rc; p++) {
        for (size_t k = 0; k < ds->count[p]; k++)
            rows[k] = ds->row[ds->index[p][k]];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[p]);
        rc = basira_csv_write_rows(ds->csv, rows, ds->count[p], path, err);
    }
    free(rows);
    return rc;
}
