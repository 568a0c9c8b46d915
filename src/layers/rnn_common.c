/* rnn_common.c - config checks and row kernels shared by simple_rnn and gru. */
#include "layers/rnn_common.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "layers/activation.h"

static int elementwise(dp_act a) {
    return a == DP_ACT_LINEAR || a == DP_ACT_RELU || a == DP_ACT_SIGMOID || a == DP_ACT_TANH;
}

int dp_rnn_check(const char *type, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                 int gated, dp_error *err) {
    if (in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "%s expects a sequence [steps, features] per sample, got %s; "
                            "put an embedding or a [T, F] input before it",
                            type, dp_shape_format(in, buf, sizeof buf));
    }
    if (in->dim[0] < 1 || in->dim[1] < 1)
        return dp_error_set(err, cfg->where, "%s needs at least one step and one feature", type);
    if (cfg->units <= 0)
        return dp_error_set(err, cfg->where, "%s units must be a positive integer, got %d", type,
                            cfg->units);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "%s needs a batch size >= 1, got %d", type, max_batch);
    if (!elementwise(cfg->activation))
        return dp_error_set(err, cfg->where,
                            "%s activation %s is not supported; use tanh, sigmoid, relu or linear",
                            type, dp_config_name_act(cfg->activation));
    if (gated && !elementwise(cfg->recurrent_activation))
        return dp_error_set(
            err, cfg->where,
            "%s recurrent_activation %s is not supported; use sigmoid, tanh, relu or linear", type,
            dp_config_name_act(cfg->recurrent_activation));
    return 0;
}

dp_shape dp_rnn_out_shape(const dp_layer_cfg *cfg, const dp_shape *in) {
    dp_shape s = {0};
    if (cfg->return_sequences) {
        s.ndim = 2;
        s.dim[0] = in->dim[0];
        s.dim[1] = cfg->units;
    } else {
        s.ndim = 1;
        s.dim[0] = cfg->units;
    }
    return s;
}

/* expf for the gates, branch-free so the row loops vectorize: Cephes's
 * range reduction x = n ln2 + r (ln2 split in two for exactness), a degree-6
 * polynomial for e^r on |r| <= ln2/2, and 2^n put into the exponent bits.
 * Within 2 ulp of expf over the clamped range; results are the same bits
 * on every rank, as no library version is involved. */
static inline float exp_poly(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves no fraction bits */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    x -= n * 0.693359375f;
    x -= n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * x + 1.3981999507e-3f;
    p = p * x + 8.3334519073e-3f;
    p = p * x + 4.1665795894e-2f;
    p = p * x + 1.6666665459e-1f;
    p = p * x + 5.0000001201e-1f;
    p = p * x * x + x + 1.0f;
    union {
        int32_t i;
        float f;
    } e = {.i = ((int32_t)n + 127) << 23};
    return p * e.f;
}

static inline float sigmoid_fast(float z) {
    return 1.0f / (1.0f + exp_poly(-z));
}

/* Near 0, 1 - 2 / (e^2z + 1) loses the relative accuracy of its small result,
 * so |z| < 0.625 uses Cephes's odd polynomial instead. */
static inline float tanh_fast(float z) {
    float s = z * z;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    float small = p * s * z + z;
    float big = 1.0f - 2.0f / (exp_poly(2.0f * z) + 1.0f);
    return fabsf(z) < 0.625f ? small : big;
}

void dp_rnn_activate(dp_act act, float *v, int n) {
    switch (act) {
    case DP_ACT_SIGMOID:
        for (int i = 0; i < n; i++) v[i] = sigmoid_fast(v[i]);
        return;
    case DP_ACT_TANH:
        for (int i = 0; i < n; i++) v[i] = tanh_fast(v[i]);
        return;
    default: dp_activation_forward(act, v, 1, (size_t)n); return;
    }
}

dp_rnn_slope_coef dp_rnn_slope_of(dp_act act) {
    dp_rnn_slope_coef s = {1.0f, 0.0f, 0.0f, 0}; /* linear */
    switch (act) {
    case DP_ACT_RELU: s.relu = 1; break;
    case DP_ACT_SIGMOID: s = (dp_rnn_slope_coef){0.0f, 1.0f, -1.0f, 0}; break; /* y (1 - y) */
    case DP_ACT_TANH: s = (dp_rnn_slope_coef){1.0f, 0.0f, -1.0f, 0}; break;    /* 1 - y^2 */
    default: break;
    }
    return s;
}

void dp_rnn_transpose(float *at, const float *a, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) at[(size_t)j * rows + i] = a[(size_t)i * cols + j];
}
