/* lstm_gemm.c - the recurrent step's product against a packed kernel
 * (lstm_gemm.h).
 *
 * sgemm packs both operands on every call. An LSTM step multiplies a small
 * [B, U] block by the same [U, 4U] kernel T times, so sgemm spent a quarter of
 * the layer's time copying that kernel. Here it is packed once per pass into
 * panels of NR columns, and an 8-row by NR-column block of c is held in
 * registers while k runs over the panel. That kernel needs AVX-512; elsewhere
 * the packed copy is plain and sgemm multiplies it. */
#include "layers/lstm_gemm.h"

#include "core/blas.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define NR 32 /* panel width: two 16-float vectors */
#define MR 8  /* rows per register block */
#endif

/* Columns per panel: NR for the AVX-512 kernel, else all N (one plain matrix). */
static int panel_cols(int N) {
#if defined(__AVX512F__)
    (void)N;
    return NR;
#else
    return N > 0 ? N : 1;
#endif
}

size_t dp_lstm_packed_size(int K, int N) {
    int nr = panel_cols(N);
    return (size_t)((N + nr - 1) / nr * nr) * (size_t)K;
}

void dp_lstm_pack(const float *w, size_t sk, size_t sn, int K, int N, float *p) {
    int nr = panel_cols(N);
    for (int n0 = 0; n0 < N; n0 += nr) {
        float *panel = p + (size_t)n0 * K; /* [K, nr] */
        int width = N - n0 < nr ? N - n0 : nr;
        for (int k = 0; k < K; k++) {
            float *dst = panel + (size_t)k * nr;
            for (int j = 0; j < width; j++) dst[j] = w[(size_t)k * sk + (size_t)(n0 + j) * sn];
            for (int j = width; j < nr; j++) dst[j] = 0.0f;
        }
    }
}

#if defined(__AVX512F__)

/* c[mr, width] (+)= a[mr, K] panel[K, NR]; mr is a constant at each call site,
 * so the 2*mr accumulators live in registers. */
static inline __attribute__((always_inline)) void block(int mr, int K, const float *a, int lda,
                                                        const float *panel, float *c, int ldc,
                                                        int width, int accumulate) {
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_load_ps(panel + (size_t)k * NR);
        __m512 b1 = _mm512_load_ps(panel + (size_t)k * NR + 16);
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[(size_t)i * lda + k]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __mmask16 m0 = width >= 16 ? 0xffff : (__mmask16)((1u << width) - 1);
    __mmask16 m1 = width >= 32 ? 0xffff : width <= 16 ? 0 : (__mmask16)((1u << (width - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), v1);
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

/* One panel of columns for all M rows: whole blocks of MR rows, then the rest. */
static void panel_rows(int M, int K, const float *a, int lda, const float *panel, float *c, int ldc,
                       int width, int accumulate) {
    int i = 0;
    for (; i + MR <= M; i += MR)
        block(MR, K, a + (size_t)i * lda, lda, panel, c + (size_t)i * ldc, ldc, width, accumulate);
    for (; i < M; i++) /* one row at a time: the same sums, in the same order */
        block(1, K, a + (size_t)i * lda, lda, panel, c + (size_t)i * ldc, ldc, width, accumulate);
}

void dp_lstm_gemm_packed(int M, int N, int K, const float *a, int lda, const float *p, float *c,
                         int ldc, int accumulate) {
    for (int n0 = 0; n0 < N; n0 += NR) {
        int width = N - n0 < NR ? N - n0 : NR;
        panel_rows(M, K, a, lda, p + (size_t)n0 * K, c + n0, ldc, width, accumulate);
    }
}

#else

/* Without AVX-512, sgemm's kernels beat a portable loop: the packed matrix is
 * the plain row-major [K, N], which still saves backward a transposed read. */
void dp_lstm_gemm_packed(int M, int N, int K, const float *a, int lda, const float *p, float *c,
                         int ldc, int accumulate) {
    dp_gemm(0, 0, M, N, K, 1.0f, a, lda, p, N, accumulate ? 1.0f : 0.0f, c, ldc);
}

#endif
