/* metrics.c - validation figures of a training run. */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct scored {
    double s;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s;
}

double train_auc(const double *score, const int *positive, size_t n)
{
    size_t npos = 0;
    for (size_t i = 0; i < n; i++)
        npos += positive[i] != 0;
    size_t nneg = n - npos;
    if (!npos || !nneg)
        return NAN;
    scored *v = malloc(n * sizeof *v);
    if (!v)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].pos = positive[i] != 0;
    }
    qsort(v, n, sizeof *v, cmp_scored);
    /* Sum of the (average, for ties) ranks of the positives. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s)
            j++;
        double avg_rank = (double)(i + 1 + j) / 2.0; /* ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (v[k].pos)
                rank_sum += avg_rank;
        i = j;
    }
    free(v);
    double u = rank_sum - (double)npos * (double)(npos + 1) / 2.0;
    return u / ((double)npos * (double)nneg);
}

void train_metrics_compute(const float *probs, const int *labels, size_t n, int k,
                           const int *malignant, double loss, train_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->loss = loss;
    m->k = k;
    m->n = n;
    size_t correct_by[BASIRA_MAX_CLASSES] = {0}, correct = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)k;
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best])
                best = c;
        m->support[labels[i]]++;
        if (best == labels[i]) {
            correct++;
            correct_by[labels[i]]++;
        }
    }
    m->accuracy = n ? (double)correct / (double)n : NAN;
    double sum = 0;
    int present = 0;
    for (int c = 0; c < k; c++) {
        if (m->support[c]) {
            m->recall[c] = (double)correct_by[c] / (double)m->support[c];
            sum += m->recall[c];
            present++;
        } else {
            m->recall[c] = NAN;
        }
    }
    m->balanced_accuracy = present ? sum / present : NAN;
    m->auc = NAN;
    int any_malignant = 0;
    for (int c = 0; malignant && c < k; c++)
        any_malignant |= malignant[c];
    if (!any_malignant || !n)
        return;
    double *score = malloc(n * sizeof *score);
    int *pos = malloc(n * sizeof *pos);
    if (score && pos) {
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (int c = 0; c < k; c++)
                if (malignant[c])
                    s += probs[i * (size_t)k + c];
            score[i] = s;
            pos[i] = malignant[labels[i]] != 0;
        }
        m->auc = train_auc(score, pos, n);
    }
    free(score);
    free(pos);
}
