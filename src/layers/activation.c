/* activation.c - elementwise activations and row-wise softmax.
 *
 * Backward uses only the output y, which lets forward overwrite its input and
 * lets a layer keep just one buffer per activation. gelu is the exception: its
 * derivative needs the input (dp_activation_needs_input). */
#include "layers/activation.h"
#include "core/fastmath.h"

#include <math.h>
#include <string.h>

/* Branches on the sign so exp never overflows: for z << 0, 1/(1+exp(-z)) would
 * compute exp(+large) = inf; e/(1+e) with e = exp(z) stays exact instead. */
static float sigmoid_stable(float z) {
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

/* y[rows, cols], each row in place. Subtracting the row max keeps expf <= 1. */
static void softmax_forward(float *y, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * cols;
        float mx = row[0];
        for (size_t c = 1; c < cols; c++)
            if (row[c] > mx) mx = row[c];
        double sum = 0.0;
        for (size_t c = 0; c < cols; c++) {
            row[c] = expf(row[c] - mx);
            sum += row[c];
        }
        float inv = (float)(1.0 / sum);
        for (size_t c = 0; c < cols; c++) row[c] *= inv;
    }
}

/* gelu, tanh form: 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3).
 * Since 0.5 (1 + tanh(u)) = sigmoid(2u), it is computed as z s with
 * s = 1 / (1 + exp(-2u)) and dp_expf: libm's tanhf is a call per
 * value, while this loop vectorizes, and gelu over the transformer's
 * feed-forward activations took 40% of a block's time with tanhf. */
#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* sigmoid(2u) = 0.5 (1 + tanh(u)) at u(z). */
static inline float gelu_s(float z) {
    return 1.0f / (1.0f + dp_expf(-2.0f * GELU_C * (z + GELU_A * z * z * z)));
}

static inline float gelu(float z) {
    return z * gelu_s(z);
}

/* d gelu/dz = 0.5 (1 + t) + 0.5 z (1 - t^2) du/dz with t = tanh(u) = 2s - 1:
 * = s + 2 z s (1 - s) du/dz, du/dz = c (1 + 3a z^2). */
static inline float gelu_grad(float z) {
    float s = gelu_s(z);
    return s + 2.0f * z * s * (1.0f - s) * GELU_C * (1.0f + 3.0f * GELU_A * z * z);
}

/* The loops below take restrict pointers: with dz == dy allowed, the compiler
 * would otherwise guard each loop with an overlap test that the in-place call
 * fails, and run it one element at a time. They prefetch (fastmath.h): gelu's
 * input was written long before, in the forward pass. */
static void gelu_forward(const float *restrict z, float *restrict y, size_t n) {
    size_t i = 0;
    for (; i + DP_PREFETCH_BLOCK <= n; i += DP_PREFETCH_BLOCK) {
        dp_prefetch_read(z, i, n);
        for (size_t j = i; j < i + DP_PREFETCH_BLOCK; j++) y[j] = gelu(z[j]);
    }
    for (; i < n; i++) y[i] = gelu(z[i]);
}

static void gelu_backward_inplace(const float *restrict z, float *restrict d, size_t n) {
    size_t i = 0;
    for (; i + DP_PREFETCH_BLOCK <= n; i += DP_PREFETCH_BLOCK) {
        dp_prefetch_read(z, i, n);
        dp_prefetch_write(d, i, n);
        for (size_t j = i; j < i + DP_PREFETCH_BLOCK; j++) d[j] *= gelu_grad(z[j]);
    }
    for (; i < n; i++) d[i] *= gelu_grad(z[i]);
}

static void gelu_backward(const float *restrict z, const float *restrict dy, float *restrict dz,
                          size_t n) {
    size_t i = 0;
    for (; i + DP_PREFETCH_BLOCK <= n; i += DP_PREFETCH_BLOCK) {
        dp_prefetch_read(z, i, n);
        dp_prefetch_read(dy, i, n);
        for (size_t j = i; j < i + DP_PREFETCH_BLOCK; j++) dz[j] = dy[j] * gelu_grad(z[j]);
    }
    for (; i < n; i++) dz[i] = dy[i] * gelu_grad(z[i]);
}

void dp_gelu_forward(const float *z, float *y, size_t n) {
    gelu_forward(z, y, n);
}

/* gelu_grad's value (the same operations, so the same bits), sharing s with
 * gelu: the slope costs a few multiplies here instead of a second e^x in
 * backward. */
static void gelu_forward_slope(float *restrict z, float *restrict y, size_t n) {
    size_t i = 0;
    for (; i < n; i += DP_PREFETCH_BLOCK) {
        dp_prefetch_read(z, i, n);
        size_t end = i + DP_PREFETCH_BLOCK < n ? i + DP_PREFETCH_BLOCK : n;
        for (size_t j = i; j < end; j++) {
            float x = z[j], s = gelu_s(x);
            y[j] = x * s;
            z[j] = s + 2.0f * x * s * (1.0f - s) * GELU_C * (1.0f + 3.0f * GELU_A * x * x);
        }
    }
}

void dp_gelu_forward_slope(float *z, float *y, size_t n) {
    gelu_forward_slope(z, y, n);
}

int dp_activation_needs_input(dp_act act) {
    return act == DP_ACT_GELU;
}

void dp_activation_forward(dp_act act, float *y, size_t rows, size_t cols) {
    size_t n = rows * cols;
    switch (act) {
    case DP_ACT_LINEAR: return;
    case DP_ACT_RELU:
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        return;
    case DP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoid_stable(y[i]);
        return;
    case DP_ACT_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        return;
    case DP_ACT_SOFTMAX:
        if (cols > 0) softmax_forward(y, rows, cols);
        return;
    case DP_ACT_GELU:
        for (size_t i = 0; i < n; i++) y[i] = gelu(y[i]);
        return;
    }
}

/* dz[rows, cols] from y, dy [rows, cols]. The row dot product is taken before any
 * element of the row is written, so dz may alias dy. */
static void softmax_backward(const float *y, const float *dy, float *dz, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dzr = dz + r * cols;
        double dot = 0.0;
        for (size_t c = 0; c < cols; c++) dot += (double)dyr[c] * yr[c];
        float d = (float)dot;
        for (size_t c = 0; c < cols; c++) dzr[c] = yr[c] * (dyr[c] - d);
    }
}

void dp_activation_backward(dp_act act, const float *y, const float *dy, float *dz, size_t rows,
                            size_t cols) {
    size_t n = rows * cols;
    switch (act) {
    case DP_ACT_LINEAR:
        if (dz != dy) memmove(dz, dy, n * sizeof *dz);
        return;
    case DP_ACT_RELU:
        for (size_t i = 0; i < n; i++) dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        return;
    case DP_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) dz[i] = dy[i] * y[i] * (1.0f - y[i]);
        return;
    case DP_ACT_TANH:
        for (size_t i = 0; i < n; i++) dz[i] = dy[i] * (1.0f - y[i] * y[i]);
        return;
    case DP_ACT_SOFTMAX: softmax_backward(y, dy, dz, rows, cols); return;
    case DP_ACT_GELU: /* y holds the input here */
        if (dz == dy) gelu_backward_inplace(y, dz, n);
        else gelu_backward(y, dy, dz, n);
        return;
    }
}
