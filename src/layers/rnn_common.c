/* rnn_common.c - config checks, gate math and the per-step product that
 * the recurrent layers share. */
#include "layers/rnn_common.h"

#include "core/blas.h"
#include "core/fastmath.h"
#include "layers/activation.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

int dp_rnn_act_ok(dp_act a) {
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
    if (!dp_rnn_act_ok(cfg->activation))
        return dp_error_set(err, cfg->where,
                            "%s activation %s is not supported; use tanh, sigmoid, relu or linear",
                            type, dp_config_name_act(cfg->activation));
    if (gated && !dp_rnn_act_ok(cfg->recurrent_activation))
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

void dp_rnn_activate(dp_act act, float *v, int n) {
    switch (act) {
    case DP_ACT_SIGMOID:
        for (int i = 0; i < n; i++) v[i] = dp_sigmoidf(v[i]);
        return;
    case DP_ACT_TANH:
        for (int i = 0; i < n; i++) v[i] = dp_tanhf(v[i]);
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

#if defined(__AVX512F__)

#define PANEL 32 /* columns per packed panel: two zmm registers */

size_t dp_rnn_packed_floats(int K, int N) {
    return (size_t)K * (size_t)((N + PANEL - 1) / PANEL * PANEL);
}

void dp_rnn_pack(float *p, const float *src, int K, int N, int sk, int sn) {
    for (int n0 = 0; n0 < N; n0 += PANEL)
        for (int k = 0; k < K; k++)
            for (int c = 0; c < PANEL; c++, p++)
                *p = n0 + c < N ? src[(size_t)k * sk + (size_t)(n0 + c) * sn] : 0.0f;
}

/* C[rb, 32 of panel] (=|+=) A[rb, K] P[K][32]: 2 * rb accumulators kept in
 * registers over the whole k loop; rb is a constant at each call. */
static inline __attribute__((always_inline)) void panel_rows(int rb, int K, const float *A, int lda,
                                                             const float *P, int acc, float *C,
                                                             int ldc, __mmask16 m0, __mmask16 m1) {
    __m512 c0[8], c1[8];
    for (int r = 0; r < rb; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 u0 = _mm512_loadu_ps(P + (size_t)k * PANEL);
        __m512 u1 = _mm512_loadu_ps(P + (size_t)k * PANEL + 16);
        for (int r = 0; r < rb; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, u0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, u1, c1[r]);
        }
    }
    for (int r = 0; r < rb; r++) {
        float *cr = C + (size_t)r * ldc;
        if (acc) {
            c0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), c0[r]);
            c1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), c1[r]);
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

void dp_rnn_step_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
                      float *C, int ldc) {
    for (int n0 = 0; n0 < N; n0 += PANEL) {
        const float *P = p + (size_t)n0 * K; /* panel n0 / 32 */
        int left = N - n0;
        __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1u);
        __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1u);
        int r = 0;
        for (; r + 8 <= M; r += 8)
            panel_rows(8, K, A + (size_t)r * lda, lda, P, accumulate, C + (size_t)r * ldc + n0, ldc,
                       m0, m1);
        for (; r + 4 <= M; r += 4)
            panel_rows(4, K, A + (size_t)r * lda, lda, P, accumulate, C + (size_t)r * ldc + n0, ldc,
                       m0, m1);
        for (; r < M; r++)
            panel_rows(1, K, A + (size_t)r * lda, lda, P, accumulate, C + (size_t)r * ldc + n0, ldc,
                       m0, m1);
    }
}

#else /* sgemm on a plain copy */

size_t dp_rnn_packed_floats(int K, int N) {
    return (size_t)K * N;
}

void dp_rnn_pack(float *p, const float *src, int K, int N, int sk, int sn) {
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) p[(size_t)k * N + n] = src[(size_t)k * sk + (size_t)n * sn];
}

void dp_rnn_step_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
                      float *C, int ldc) {
    dp_gemm(0, 0, M, N, K, 1.0f, A, lda, p, N, accumulate ? 1.0f : 0.0f, C, ldc);
}

#endif
