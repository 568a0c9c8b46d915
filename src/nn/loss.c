/* loss.c - mse, binary and categorical cross-entropy, and the accuracy count.
 *
 * Formulas follow Keras 3 (keras/src/losses, keras/src/backend/numpy/nn.py):
 * probabilities are clipped to [1e-7, 1 - 1e-7] in float32 before the log, and the
 * fused (from_logits) forms use the max-shifted, overflow-free expressions. Losses
 * are accumulated in double; gradients are written in float. */
#include "nn/loss.h"

#include <math.h>
#include <stddef.h>

#include "core/fastmath.h"

#define KERAS_EPSILON 1e-7f

/* Which column of a row is the target class: y holds one float per row, the class
 * id. Returns -1 for a value that is not a valid id in [0, K). */
static int class_id(float v, int K) {
    if (!(v >= 0.0f && v < (float)K)) return -1;
    return (int)v;
}

/* out[K]: index of the first maximum, as numpy/Keras argmax. */
static int argmax_row(const float *v, int K) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

/* Target value of class k for one row. yr points at the row's ycols values;
 * id >= 0 when the row holds a class id instead of K values. */
static inline double target_at(const float *yr, int id, int k) {
    return id >= 0 ? (double)(k == id) : (double)yr[k];
}

static int row_correct(const float *o, const float *yr, int id, int K, int fused) {
    if (K == 1) {
        float threshold = fused ? 0.0f : 0.5f;
        int pred = o[0] > threshold;
        int label = (id >= 0 ? (double)id : (double)yr[0]) > 0.5;
        return pred == label;
    }
    int want = id >= 0 ? id : argmax_row(yr, K);
    return argmax_row(o, K) == want;
}

/* o[K], row loss = mean_k (o - t)^2. */
static double mse_row(const float *o, const float *yr, int id, int K, float *d) {
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        double diff = (double)o[k] - target_at(yr, id, k);
        sum += diff * diff;
        if (d) d[k] = (float)(2.0 * diff / K);
    }
    return sum / K;
}

/* z[K] logits, row loss = mean_k max(z,0) - z t + log1p(exp(-|z|)), which is
 * -t log s(z) - (1-t) log(1 - s(z)) without overflow for any z. */
static double bce_logits_row(const float *z, const float *yr, int id, int K, float *d) {
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        double zk = z[k], t = target_at(yr, id, k);
        sum += fmax(zk, 0.0) - zk * t + log1p(exp(-fabs(zk)));
        if (d) {
            double s = zk >= 0 ? 1.0 / (1.0 + exp(-zk)) : exp(zk) / (1.0 + exp(zk));
            d[k] = (float)((s - t) / K);
        }
    }
    return sum / K;
}

/* p[K] probabilities, clipped like Keras; the clip passes no gradient outside. */
static double bce_probs_row(const float *p, const float *yr, int id, int K, float *d) {
    const float lo = KERAS_EPSILON, hi = 1.0f - KERAS_EPSILON;
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        float pk = p[k];
        double c = pk < lo ? lo : pk > hi ? hi : pk, t = target_at(yr, id, k);
        sum -= t * log(c) + (1.0 - t) * log(1.0 - c);
        if (d) d[k] = (pk > lo && pk < hi) ? (float)((c - t) / (c * (1.0 - c)) / K) : 0.0f;
    }
    return sum / K;
}

/* e[k] = exp(z[k] - mx) for k < K; returns their sum. Eight lanes of fixed
 * order, so the loop vectorizes and the sum is the same bits on every call.
 * A language model computes this for every position of every window. */
static double exp_shifted(const float *z, int K, float mx, float *e) {
    double lane[8] = {0};
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; j++) {
            e[k + j] = dp_expf(z[k + j] - mx);
            lane[j] += e[k + j];
        }
    for (; k < K; k++) {
        e[k] = dp_expf(z[k] - mx);
        lane[0] += e[k];
    }
    double sum = 0.0;
    for (int j = 0; j < 8; j++) sum += lane[j];
    return sum;
}

/* z[K] logits, row loss = sum_k t_k (lse(z) - z_k). Gradient sum(t) softmax - t,
 * which is softmax - onehot for one-hot or class-id targets. */
static double ce_logits_row(const float *z, const float *yr, int id, int K, float *d) {
    float mx = z[argmax_row(z, K)];
    /* Without a gradient to write, the exponentials go through a chunk on the
     * stack. K >= 1, and the argmax term is exp(0) = 1, so se >= 1 and log(se)
     * is finite. */
    float chunk[256] = {0};
    double se = 0.0;
    int k0 = 0;
    do {
        int n = K - k0 < 256 ? K - k0 : 256;
        se += exp_shifted(z + k0, n, mx, d ? d + k0 : chunk);
        k0 += 256;
    } while (k0 < K);
    double lse = mx + log(se);
    if (id >= 0) { /* a class id: softmax - onehot */
        if (d) {
            float inv = (float)(1.0 / se);
            for (int k = 0; k < K; k++) d[k] *= inv;
            d[id] -= 1.0f;
        }
        return lse - z[id];
    }
    double tsum = 0.0, loss = 0.0;
    for (int k = 0; k < K; k++) tsum += yr[k];
    for (int k = 0; k < K; k++) {
        double t = yr[k];
        if (t != 0.0) loss += t * (lse - z[k]);
        if (d) d[k] = (float)(tsum * ((double)d[k] / se) - t);
    }
    return loss;
}

/* o[K] probabilities. Keras first renormalizes q = o / sum(o), then clips q and
 * takes -sum t log q; the gradient goes back through both steps:
 * dL/do_j = (g_j - sum_k g_k q_k) / s with g_k = -t_k / q_k inside the clip. */
static double ce_probs_row(const float *o, const float *yr, int id, int K, float *d) {
    const float lo = KERAS_EPSILON, hi = 1.0f - KERAS_EPSILON;
    double s = 0.0;
    for (int k = 0; k < K; k++) s += o[k];
    /* g_k q_k = -t_k inside the clip, so sum_k g_k q_k needs no division. */
    double loss = 0.0, gq = 0.0;
    for (int k = 0; k < K; k++) {
        double qd = o[k] / s;
        float q = (float)qd; /* Keras clips in float32 */
        double c = q < lo ? lo : q > hi ? hi : qd, t = target_at(yr, id, k);
        if (t != 0.0) loss -= t * log(c);
        if (q > lo && q < hi) gq -= t;
    }
    for (int k = 0; d && k < K; k++) {
        double q = o[k] / s, t = target_at(yr, id, k);
        float qf = (float)q;
        double g = (qf > lo && qf < hi) ? -t / q : 0.0;
        d[k] = (float)((g - gq) / s);
    }
    return loss;
}

dp_loss_sums dp_loss_forward_backward(dp_loss_kind kind, int fused, const float *out,
                                      const float *y, int B, int K, int ycols, float *dout) {
    dp_loss_sums sums = {0.0, 0, B};
    for (int r = 0; r < B; r++) {
        const float *o = out + (size_t)r * K;
        const float *yr = y + (size_t)r * ycols;
        float *d = dout ? dout + (size_t)r * K : NULL;
        int id = -1;
        if (ycols != K) {
            id = class_id(yr[0], K);
            if (id < 0) {
                /* A bad label must not vanish into a plausible loss: NaN stops the
                 * run with a message, and a zero gradient keeps the weights clean. */
                sums.loss += NAN;
                for (int k = 0; d && k < K; k++) d[k] = 0.0f;
                continue;
            }
        }
        /* Before the gradient is written, so dout may alias out. */
        sums.correct += row_correct(o, yr, id, K, fused);
        switch (kind) {
        case DP_LOSS_MSE: sums.loss += mse_row(o, yr, id, K, d); break;
        case DP_LOSS_BCE:
            sums.loss += fused ? bce_logits_row(o, yr, id, K, d) : bce_probs_row(o, yr, id, K, d);
            break;
        case DP_LOSS_CE:
        case DP_LOSS_SPARSE_CE:
            sums.loss += fused ? ce_logits_row(o, yr, id, K, d) : ce_probs_row(o, yr, id, K, d);
            break;
        }
    }
    return sums;
}
