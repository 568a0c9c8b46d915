/* step_gemm.c - the recurrent layers' per-step product against a kernel
 * packed once per pass (step_gemm.h).
 *
 * sgemm packs both operands on every call. A recurrent step multiplies a
 * small [B, U] block by the same [U, gates U] kernel T times, so sgemm spent
 * a quarter of an LSTM's time copying that kernel. Here it is packed once per
 * pass into panels of 32 columns, and up to 8 rows by 32 columns of C are held
 * in registers while k runs over the panel. That kernel needs AVX-512;
 * elsewhere the packed copy is plain and sgemm multiplies it. */
#include "layers/step_gemm.h"

#include "core/blas.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)

#define PANEL 32 /* columns per packed panel: two zmm registers */

size_t dp_step_packed_floats(int K, int N) {
    return (size_t)K * (size_t)((N + PANEL - 1) / PANEL * PANEL);
}

void dp_step_pack(float *p, const float *src, int K, int N, int sk, int sn) {
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

void dp_step_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
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

size_t dp_step_packed_floats(int K, int N) {
    return (size_t)K * N;
}

void dp_step_pack(float *p, const float *src, int K, int N, int sk, int sn) {
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) p[(size_t)k * N + n] = src[(size_t)k * sk + (size_t)n * sn];
}

void dp_step_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
                  float *C, int ldc) {
    dp_gemm(0, 0, M, N, K, 1.0f, A, lda, p, N, accumulate ? 1.0f : 0.0f, C, ldc);
}

#endif
