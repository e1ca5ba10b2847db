/*
 * loss.c - softmax and softmax cross-entropy, in plain C (oneDNN has no loss).
 *
 * Semantics are PyTorch's F.cross_entropy(logits, labels, weight=w,
 * label_smoothing=e, reduction="mean"):
 *   q_j   = (1 - e) [j == y] + e / K                        (smoothed target)
 *   l_i   = -sum_j w_j q_j log p_ij   when weights are given (PyTorch weights the
 *           smoothing term per class too), else -sum_j q_j log p_ij
 *   loss  = sum_i l_i / sum_i w_{y_i}                         (weighted mean)
 * so the gradient is d loss / d z_ij = (p_ij * sum_k w_k q_ik - w_j q_ij) / sum_i w_{y_i}.
 */
#include "basira/nn.h"

#include <math.h>
#include <stddef.h>

void basira_softmax(const float *logits, int n, int k, float temperature, float *probs)
{
    if (!logits || !probs || n < 1 || k < 1)
        return;
    double inv_t = temperature > 0.0f ? 1.0 / (double)temperature : 1.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)k;
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < k; j++)
            if ((double)z[j] * inv_t > m)
                m = (double)z[j] * inv_t;
        for (int j = 0; j < k; j++)
            s += exp((double)z[j] * inv_t - m);
        for (int j = 0; j < k; j++)
            probs[(size_t)i * (size_t)k + (size_t)j] = (float)(exp((double)z[j] * inv_t - m) / s);
    }
}

float basira_softmax_xent(const float *logits, const int *labels, int n, int k,
                          const float *class_weights, float label_smoothing, float *dlogits,
                          float *probs)
{
    if (!logits || !labels || n < 1 || k < 1)
        return NAN;
    double eps = label_smoothing > 0.0f && label_smoothing < 1.0f ? label_smoothing : 0.0;
    /* Denominator: sum of the weights of the labels (n without weights). Labels out of
     * range count for nothing and get no gradient (as PyTorch's ignore_index would). */
    double denom = 0.0;
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < k)
            denom += class_weights ? (double)class_weights[labels[i]] : 1.0;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)k;
        float *dz = dlogits ? dlogits + (size_t)i * (size_t)k : NULL;
        int y = labels[i];
        /* log-sum-exp once; p_j = exp(z_j - lse) computed on the fly for any K. */
        double m = -INFINITY, s = 0.0;
        for (int j = 0; j < k; j++)
            if (z[j] > m)
                m = z[j];
        for (int j = 0; j < k; j++)
            s += exp((double)z[j] - m);
        double lse = m + log(s);
        if (probs)
            for (int j = 0; j < k; j++)
                probs[(size_t)i * (size_t)k + (size_t)j] = (float)exp((double)z[j] - lse);
        if (y < 0 || y >= k || denom <= 0.0) {
            for (int j = 0; dz && j < k; j++)
                dz[j] = 0.0f;
            continue;
        }
        double li = 0.0, wq_sum = 0.0;
        for (int j = 0; j < k; j++) {
            double q = (j == y ? 1.0 - eps : 0.0) + eps / k;
            double w = class_weights ? (double)class_weights[j] : 1.0;
            li -= w * q * ((double)z[j] - lse);
            wq_sum += w * q;
        }
        total += li;
        for (int j = 0; dz && j < k; j++) {
            double q = (j == y ? 1.0 - eps : 0.0) + eps / k;
            double w = class_weights ? (double)class_weights[j] : 1.0;
            double p = exp((double)z[j] - lse);
            dz[j] = (float)((p * wq_sum - w * q) / denom);
        }
    }
    return denom > 0.0 ? (float)(total / denom) : 0.0f;
}
