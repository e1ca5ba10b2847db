/*
 * set.c - a labelled set of predictions (basira_eval_set): the truth, the class
 * probabilities and the metadata of each image, and the lesion-level merge.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basira/eval.h"
#include "core/i18n.h"
#include "eval_internal.h"

/* Metadata columns per set: far more than any data set has, small enough to scan linearly. */
#define MAX_ATTRS 64

typedef struct attr {
    char *name;
    char **values; /* one per sample, NULL = unknown */
} attr;

struct basira_eval_set {
    int k;
    char *codes[BASIRA_EVAL_MAX_CLASSES];
    int malignant[BASIRA_EVAL_MAX_CLASSES];
    size_t n, cap;
    double *probs; /* n x k */
    int *labels;
    int n_attrs;
    attr attrs[MAX_ATTRS];
};

basira_code basira_eval_set_new(int num_classes, const char *const *codes, const int *malignant,
                                basira_eval_set **out, basira_error *err)
{
    if (!out || !codes)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("evaluation: missing classes"));
    *out = NULL;
    if (num_classes < 2 || num_classes > BASIRA_EVAL_MAX_CLASSES)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("evaluation needs 2 to %d classes (got %d)"),
                                BASIRA_EVAL_MAX_CLASSES, num_classes);
    basira_eval_set *s = calloc(1, sizeof *s);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->k = num_classes;
    for (int c = 0; c < num_classes; c++) {
        if (!codes[c] || !codes[c][0]) {
            basira_eval_set_free(s);
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("evaluation: class %d has no code"), c);
        }
        for (int d = 0; d < c; d++)
            if (!strcmp(codes[c], codes[d])) {
                basira_eval_set_free(s);
                return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                        _("evaluation: class code '%s' appears twice"), codes[c]);
            }
        s->codes[c] = strdup(codes[c]);
        s->malignant[c] = malignant ? malignant[c] != 0 : 0;
        if (!s->codes[c]) {
            basira_eval_set_free(s);
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
    }
    *out = s;
    return BASIRA_OK;
}

void basira_eval_set_free(basira_eval_set *s)
{
    if (!s)
        return;
    for (int c = 0; c < s->k; c++)
        free(s->codes[c]);
    for (int a = 0; a < s->n_attrs; a++) {
        for (size_t i = 0; i < s->n; i++)
            free(s->attrs[a].values[i]);
        free(s->attrs[a].values);
        free(s->attrs[a].name);
    }
    free(s->probs);
    free(s->labels);
    free(s);
}

int basira_eval_set_class_index(const basira_eval_set *s, const char *code)
{
    if (!s || !code)
        return -1;
    for (int c = 0; c < s->k; c++)
        if (!strcmp(s->codes[c], code))
            return c;
    return -1;
}

size_t basira_eval_set_size(const basira_eval_set *s)
{
    return s ? s->n : 0;
}

int basira_eval_set_num_classes(const basira_eval_set *s)
{
    return s ? s->k : 0;
}

const char *basira_eval_set_class_code(const basira_eval_set *s, int c)
{
    return s && c >= 0 && c < s->k ? s->codes[c] : NULL;
}

int basira_eval_set_class_malignant(const basira_eval_set *s, int c)
{
    return s && c >= 0 && c < s->k ? s->malignant[c] : 0;
}

const double *basira_eval_set_probs(const basira_eval_set *s, size_t i, int *label)
{
    if (!s || i >= s->n)
        return NULL;
    if (label)
        *label = s->labels[i];
    return s->probs + i * (size_t)s->k;
}

double basira_eval_set_p_malignant(const basira_eval_set *s, size_t i)
{
    if (!s || i >= s->n)
        return NAN;
    const double *p = s->probs + i * (size_t)s->k;
    double m = 0.0;
    for (int c = 0; c < s->k; c++)
        if (s->malignant[c])
            m += p[c];
    return fmin(1.0, m);
}

static basira_code grow(basira_eval_set *s, basira_error *err)
{
    if (s->n < s->cap)
        return BASIRA_OK;
    size_t cap = s->cap ? s->cap * 2 : 256;
    double *p = realloc(s->probs, sizeof(double) * cap * (size_t)s->k);
    if (!p)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->probs = p;
    int *l = realloc(s->labels, sizeof(int) * cap);
    if (!l)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    s->labels = l;
    for (int a = 0; a < s->n_attrs; a++) {
        char **v = realloc(s->attrs[a].values, sizeof(char *) * cap);
        if (!v)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        memset(v + s->cap, 0, sizeof(char *) * (cap - s->cap));
        s->attrs[a].values = v;
    }
    s->cap = cap;
    return BASIRA_OK;
}

static basira_code add_row(basira_eval_set *s, int label, const double *probs, size_t *index,
                           basira_error *err)
{
    if (label < 0 || label >= s->k)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("evaluation: label %d is not one of the %d classes"), label,
                                s->k);
    double sum = 0.0;
    for (int c = 0; c < s->k; c++) {
        if (!isfinite(probs[c]) || probs[c] < 0.0)
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("evaluation: probability of class %s is not a number >= 0"),
                                    s->codes[c]);
        sum += probs[c];
    }
    if (!(sum > 0.0))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("evaluation: the class probabilities sum to 0"));
    basira_code rc = grow(s, err);
    if (rc)
        return rc;
    double *dst = s->probs + s->n * (size_t)s->k;
    for (int c = 0; c < s->k; c++)
        dst[c] = probs[c] / sum;
    s->labels[s->n] = label;
    if (index)
        *index = s->n;
    s->n++;
    return BASIRA_OK;
}

basira_code basira_eval_set_add(basira_eval_set *s, int label, const float *probs, size_t *index,
                                basira_error *err)
{
    if (!s || !probs)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("evaluation: missing data"));
    double p[BASIRA_EVAL_MAX_CLASSES];
    for (int c = 0; c < s->k; c++)
        p[c] = probs[c];
    return add_row(s, label, p, index, err);
}

int basira_eval_set_attr_index(const basira_eval_set *s, const char *name)
{
    for (int a = 0; s && name && a < s->n_attrs; a++)
        if (!strcmp(s->attrs[a].name, name))
            return a;
    return -1;
}

const char *basira_eval_set_attr(const basira_eval_set *s, int a, size_t i)
{
    if (!s || a < 0 || a >= s->n_attrs || i >= s->n)
        return NULL;
    return s->attrs[a].values[i];
}

basira_code basira_eval_set_set_attr(basira_eval_set *s, size_t index, const char *name,
                                     const char *value, basira_error *err)
{
    if (!s || !name || !name[0] || index >= s->n)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("evaluation: no sample %zu or no attribute name"), index);
    int a = basira_eval_set_attr_index(s, name);
    if (a < 0) {
        if (s->n_attrs >= MAX_ATTRS)
            return basira_error_set(err, BASIRA_E_LIMIT,
                                    _("evaluation: more than %d metadata columns"), MAX_ATTRS);
        a = s->n_attrs;
        attr *t = &s->attrs[a];
        t->name = strdup(name);
        t->values = calloc(s->cap ? s->cap : 1, sizeof(char *));
        if (!t->name || !t->values) {
            free(t->name);
            free(t->values);
            t->name = NULL;
            t->values = NULL;
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
        s->n_attrs++;
    }
    char *v = NULL;
    if (value && value[0]) {
        v = strdup(value);
        if (!v)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    free(s->attrs[a].values[index]);
    s->attrs[a].values[index] = v;
    return BASIRA_OK;
}

basira_code basira_eval_set_apply_temperature(basira_eval_set *s, double temperature,
                                              basira_error *err)
{
    if (!s || !(temperature > 0.0) || !isfinite(temperature))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the temperature must be a positive number"));
    for (size_t i = 0; i < s->n; i++) {
        double *p = s->probs + i * (size_t)s->k;
        /* Floor at 1e-30: a probability that underflowed to 0 stays negligible. */
        for (int c = 0; c < s->k; c++)
            p[c] = log(fmax(p[c], 1e-30));
        basira_eval_softmax(p, 1, s->k, temperature, p);
    }
    return BASIRA_OK;
}

basira_code basira_eval_set_apply_malignant_bias(basira_eval_set *s, double bias, basira_error *err)
{
    if (!s || !isfinite(bias))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the malignant bias must be a finite number"));
    for (size_t i = 0; i < s->n; i++)
        basira_eval_shift_malignant(s->probs + i * (size_t)s->k, s->k, s->malignant, bias);
    return BASIRA_OK;
}

basira_code basira_eval_set_apply_malignant_map(basira_eval_set *s, double slope, double bias,
                                                basira_error *err)
{
    if (!s || !isfinite(bias) || !(slope > 0) || !isfinite(slope))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the malignant slope must be a positive number and the bias a "
                                  "finite one"));
    for (size_t i = 0; i < s->n; i++)
        basira_eval_map_malignant(s->probs + i * (size_t)s->k, s->k, s->malignant, slope, bias);
    return BASIRA_OK;
}

typedef struct keyed {
    const char *key;
    size_t i;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (x->i > y->i) - (x->i < y->i);
}

basira_code basira_eval_set_group(const basira_eval_set *s, const char *name, basira_eval_set **out,
                                  basira_error *err)
{
    if (!s || !name || !out)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("evaluation: missing data"));
    *out = NULL;
    int a = basira_eval_set_attr_index(s, name);
    if (a < 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("cannot group by '%s': no such metadata column"), name);
    basira_eval_set *g;
    basira_code rc =
        basira_eval_set_new(s->k, (const char *const *)s->codes, s->malignant, &g, err);
    if (rc)
        return rc;
    keyed *order = malloc(sizeof(keyed) * (s->n ? s->n : 1));
    double *acc = malloc(sizeof(double) * (size_t)s->k);
    if (!order || !acc) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto done;
    }
    /* Sort by key (stable by index) so each group is contiguous; ungrouped samples have key NULL.
     */
    size_t nk = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->attrs[a].values[i]) {
            order[nk].key = s->attrs[a].values[i];
            order[nk].i = i;
            nk++;
        }
    qsort(order, nk, sizeof *order, cmp_keyed);
    size_t i = 0;
    while (i < nk) {
        size_t j = i;
        memset(acc, 0, sizeof(double) * (size_t)s->k);
        size_t first = order[i].i;
        while (j < nk && !strcmp(order[j].key, order[i].key)) {
            size_t r = order[j].i;
            if (s->labels[r] != s->labels[first]) {
                rc = basira_error_set(
                    err, BASIRA_E_FORMAT,
                    _("%s '%s' has images with different labels (%s and %s): fix the data set"),
                    name, order[i].key, s->codes[s->labels[first]], s->codes[s->labels[r]]);
                goto done;
            }
            for (int c = 0; c < s->k; c++)
                acc[c] += s->probs[r * (size_t)s->k + c];
            j++;
        }
        for (int c = 0; c < s->k; c++)
            acc[c] /= (double)(j - i);
        size_t idx;
        if ((rc = add_row(g, s->labels[first], acc, &idx, err)))
            goto done;
        for (int t = 0; t < s->n_attrs; t++)
            if ((rc = basira_eval_set_set_attr(g, idx, s->attrs[t].name, s->attrs[t].values[first],
                                               err)))
                goto done;
        i = j;
    }
    for (size_t r = 0; r < s->n; r++) {
        if (s->attrs[a].values[r])
            continue;
        size_t idx;
        if ((rc = add_row(g, s->labels[r], s->probs + r * (size_t)s->k, &idx, err)))
            goto done;
        for (int t = 0; t < s->n_attrs; t++)
            if ((rc = basira_eval_set_set_attr(g, idx, s->attrs[t].name, s->attrs[t].values[r],
                                               err)))
                goto done;
    }
done:
    free(order);
    free(acc);
    if (rc) {
        basira_eval_set_free(g);
        return rc;
    }
    *out = g;
    return BASIRA_OK;
}

const char *basira_eval_age_band(const char *age)
{
    if (!age)
        return NULL;
    char *end;
    double v = strtod(age, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    if (end == age || *end || !isfinite(v) || v < 0.0 || v > 150.0)
        return NULL;
    if (v < 30.0)
        return "<30";
    if (v < 50.0)
        return "30-49";
    if (v < 70.0)
        return "50-69";
    return ">=70";
}
