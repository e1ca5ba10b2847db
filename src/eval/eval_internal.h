/* eval_internal.h - helpers shared by the files of src/eval (not public API). */
#ifndef BASIRA_EVAL_INTERNAL_H
#define BASIRA_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct scored scored;

/* Midranks of x[0..n) (1-based, ties averaged) into rank; work holds n entries. */
void basira_eval_midranks(const double *x, size_t n, double *rank, scored *work);

/* sizeof(scored), for callers allocating the work buffer. */
size_t basira_eval_scored_size(void);

/* The value scores are ranked on: 20 significant bits (about 6 digits), see stats.c. */
double basira_eval_rank_key(double x);

/*
 * Sort x once for many resamples: order[t] is the index at sorted position t,
 * gstart[t] = 1 where a group of tied rank keys starts. work holds n entries.
 */
void basira_eval_sort_ties(const double *x, size_t n, size_t *order, unsigned char *gstart,
                           scored *work);

/* AUC of a resample given as multiplicities w[i] (O(n), no sort); NaN when undefined. */
double basira_eval_auc_weighted(const size_t *order, const unsigned char *gstart, size_t n,
                                const int *positive, const unsigned *w);

/* A number, or null when it is not finite (JSON has no NaN). New reference. */
json_t *basira_eval_json_num(double v);

/* xoshiro256** state: a seeded generator owned by the caller (no global state). */
typedef struct basira_rng {
    uint64_t s[4];
} basira_rng;

void basira_rng_seed(basira_rng *r, uint64_t seed);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t basira_rng_below(basira_rng *r, uint64_t n);

/* Accessors used by the report (src/eval only). */
typedef struct basira_eval_set basira_eval_set;
const char *basira_eval_set_class_code(const basira_eval_set *s, int c);
int basira_eval_set_class_malignant(const basira_eval_set *s, int c);
int basira_eval_set_attr_index(const basira_eval_set *s, const char *name);
const char *basira_eval_set_attr(const basira_eval_set *s, int a, size_t i);

#endif
