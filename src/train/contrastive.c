/*
 * contrastive.c - SimCLR's NT-Xent loss and its gradient (contrastive.h), the augmented
 * views every training step is made of, and the validation loss of a contrastive run.
 *
 * The loss is computed in double from float embeddings: n is a batch (at most a few
 * hundred) and d a projection (tens to hundreds), so the O(n^2 d) work is negligible
 * next to the network, and double keeps log-sum-exp exact at small temperatures without
 * a second pass. With G_ij = d loss / d s_ij = (P_ij - [j = p(i)]) / n (P the softmax of
 * row i over j != i; G_ii = 0) and s symmetric,
 *     d loss / d u_k = 1/tau sum_j (G_kj + G_jk) u_j,
 * and through the normalisation u = z / |z|,
 *     d loss / d z_k = (g_k - (g_k . u_k) u_k) / |z_k|.
 * tests/train/test_contrastive.c checks it against finite differences and known values.
 */
#include "train/contrastive.h"

#include <math.h>

#include "basira/train.h"
#include "core/i18n.h"
#include "train/rng.h"
#include "train/trainer_internal.h"

#define NORM_EPS 1e-12

float basira_ntxent(const float *z, int n, int d, float tau, float *dz, float *work)
{
    if (!z || !work || n < 4 || (n & 1) || d < 1 || !(tau > 0.0f && tau <= 10.0f))
        return NAN;
    int m = n / 2;
    float *u = work, *prob = work + (size_t)n * d, *norm = prob + (size_t)n * n;
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * d;
        double s = 0;
        for (int k = 0; k < d; k++)
            s += (double)zi[k] * zi[k];
        if (!isfinite(s))
            return NAN;
        double r = sqrt(s);
        norm[i] = (float)(r > NORM_EPS ? r : NORM_EPS);
        for (int k = 0; k < d; k++)
            u[(size_t)i * d + k] = (float)(zi[k] / (double)norm[i]);
    }
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const float *ui = u + (size_t)i * d;
        float *pi = prob + (size_t)i * n;
        double mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            double s = 0;
            if (j != i) {
                const float *uj = u + (size_t)j * d;
                for (int k = 0; k < d; k++)
                    s += (double)ui[k] * uj[k];
                s /= tau;
                mx = s > mx ? s : mx;
            }
            pi[j] = (float)s;
        }
        double sum = 0;
        for (int j = 0; j < n; j++)
            if (j != i)
                sum += exp((double)pi[j] - mx);
        int pos = (i + m) % n;
        loss += mx + log(sum) - (double)pi[pos];
        for (int j = 0; j < n; j++)
            pi[j] = j == i ? 0.0f : (float)(exp((double)pi[j] - mx) / sum);
    }
    loss /= n;
    if (!dz)
        return (float)loss;
    for (int a = 0; a < n; a++) {
        float *ga = dz + (size_t)a * d;
        for (int k = 0; k < d; k++)
            ga[k] = 0.0f;
        for (int j = 0; j < n; j++) {
            if (j == a)
                continue;
            /* G_aj + G_ja, each (P - [positive]) / n */
            double g = (double)prob[(size_t)a * n + j] + (double)prob[(size_t)j * n + a];
            if (j == (a + m) % n)
                g -= 2.0; /* j = p(a) and a = p(j): the pair is positive both ways */
            g /= (double)n * tau;
            const float *uj = u + (size_t)j * d;
            for (int k = 0; k < d; k++)
                ga[k] += (float)(g * uj[k]);
        }
        const float *ua = u + (size_t)a * d;
        double dot = 0;
        for (int k = 0; k < d; k++)
            dot += (double)ga[k] * ua[k];
        for (int k = 0; k < d; k++)
            ga[k] = (float)(((double)ga[k] - dot * ua[k]) / norm[a]);
    }
    return (float)loss;
}

basira_code train_view(const trainer *t, size_t item, uint64_t aug_seed, uint64_t shift_seed,
                       uint8_t *rgb, float *x, basira_error *err)
{
    const train_dataset *ds = &t->ds;
    /* Training photos are kept at the working size (room for crops), the others at the
     * input size (dataset.c). */
    int train = ds->part[item] == BASIRA_PART_TRAIN;
    int sw = train ? ds->work_w : ds->input_w, sh = train ? ds->work_h : ds->input_h;
    basira_augment_params p;
    basira_augment_sample(t->o->augment, sw, sh, aug_seed, &p);
    basira_code rc =
        basira_augment_apply(&p, ds->pixels[item], sw, sh, rgb, ds->input_w, ds->input_h, err);
    if (!rc && t->o->augment == BASIRA_AUGMENT_SHIFT)
        rc = basira_shift_augment(rgb, ds->input_w, ds->input_h, shift_seed, err);
    if (!rc)
        basira_preprocess_rgb(&t->pp, rgb, x);
    return rc;
}

basira_code train_contrastive_loss(trainer *t, basira_net *net, int part, double *loss,
                                   basira_error *err)
{
    const train_dataset *ds = &t->ds;
    size_t n = ds->count[part], half = (size_t)t->photos, counted = 0;
    double sum = 0;
    /* The same two views of each photo at every epoch, so that epochs compare. */
    uint64_t base = t->o->seed ^ 0x56414C4944ULL;
    for (size_t start = 0; start + 2 <= n; start += half) {
        int nb = (int)(n - start < half ? n - start : half); /* at least 2 */
        for (int v = 0; v < 2; v++)
            for (int j = 0; j < nb; j++) {
                size_t item = ds->index[part][start + (size_t)j];
                uint64_t s = basira_seed_mix(base, (uint64_t)v + 1, (uint64_t)(start + j));
                basira_code rc = train_view(t, item, s, s ^ TRAIN_SHIFT_SALT, t->rgb[0],
                                            t->x[0] + (size_t)(v * nb + j) * t->in_floats, err);
                if (rc)
                    return rc;
            }
        basira_code rc = basira_net_forward(net, t->x[0], 2 * nb, 0, t->logits, err);
        if (rc)
            return rc;
        float l =
            basira_ntxent(t->logits, 2 * nb, t->out, (float)t->o->contrastive, NULL, t->ntx_work);
        if (!isfinite(l))
            return basira_error_set(err, BASIRA_E_INTERNAL,
                                    _("the contrastive loss is not finite on validation"));
        sum += (double)l * nb;
        counted += (size_t)nb;
    }
    *loss = counted ? sum / (double)counted : NAN;
    return BASIRA_OK;
}
