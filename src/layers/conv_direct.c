/* conv_direct.c - direct stride-1 convolution kernels (see conv_direct.h).
 *
 * The image is first copied into a zero-padded plane xp[C, Hp, Wp] (Hp = OH +
 * kh - 1, Wp = OW + kw - 1), so output row oh of window offset (c, i, j) reads
 * the contiguous run xp[c][oh + i][j .. j + OW) with no bounds tests. Rows are
 * done 16 values (one vector) at a time, the tail lanes masked on load and
 * store; masked loads read zeros, so lanes past a row never see its neighbour.
 * Both kernels are instantiated for each K, so that their vectors of window
 * values and their sums stay in registers. */
#include "layers/conv_direct.h"

#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

size_t dp_conv_direct_scratch_floats(const dp_conv_geom *g) {
    return (size_t)g->C * (size_t)(g->OH + g->kh - 1) * (size_t)(g->OW + g->kw - 1);
}

/* xp[C, Hp, Wp] = x placed at (pt, pl) in zeros; off[k] = where window offset
 * k = (c, i, j) starts in xp. */
static void pad_image(const dp_conv_geom *g, const float *x, float *xp, int *off) {
    const int Hp = g->OH + g->kh - 1, Wp = g->OW + g->kw - 1;
    memset(xp, 0, dp_conv_direct_scratch_floats(g) * sizeof *xp);
    for (int c = 0; c < g->C; c++)
        for (int h = 0; h < g->H; h++)
            memcpy(xp + ((size_t)c * Hp + h + g->pt) * Wp + g->pl,
                   x + ((size_t)c * g->H + h) * g->W, (size_t)g->W * sizeof *xp);
    int k = 0;
    for (int c = 0; c < g->C; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) off[k++] = (c * Hp + i) * Wp + j;
}

#ifdef __AVX512F__
int dp_conv_direct_fits(const dp_conv_geom *g) {
    return g->sh == 1 && g->sw == 1 && g->C * g->kh * g->kw <= CONV_DIRECT_MAX_K;
}

/* X(k) for every K the kernels take (1 .. CONV_DIRECT_MAX_K): the switch cases
 * that pick each K's copy of a kernel. */
#define EACH_K(X) \
    X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)

static __mmask16 lanes(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1u);
}

/* One output vector (16 positions of row oh from column v0, m the valid ones)
 * for every filter: the K window vectors are loaded once and stay in registers
 * (K is a constant at each call), then each filter is K multiply-adds with its
 * weights broadcast from memory, 8 filters at a time for 8 independent chains.
 * Every load is used by all F filters, so the multiply-adds, not split
 * unaligned loads, set the pace. */
static inline __attribute__((always_inline)) void forward_vector(const float *xp, const int *off,
                                                                 int K, int F, const float *w,
                                                                 const float *b, int relu, float *y,
                                                                 size_t plane, __mmask16 m) {
    __m512 xv[CONV_DIRECT_MAX_K];
    for (int k = 0; k < K; k++) xv[k] = _mm512_maskz_loadu_ps(m, xp + off[k]);
    int f = 0;
    for (; f + 8 <= F; f += 8) {
        __m512 acc[8];
        for (int a = 0; a < 8; a++) acc[a] = _mm512_set1_ps(b[f + a]);
        for (int k = 0; k < K; k++)
            for (int a = 0; a < 8; a++)
                acc[a] = _mm512_fmadd_ps(_mm512_set1_ps(w[(size_t)(f + a) * K + k]), xv[k], acc[a]);
        for (int a = 0; a < 8; a++)
            _mm512_mask_storeu_ps(y + (size_t)(f + a) * plane, m,
                                  relu ? _mm512_max_ps(acc[a], _mm512_setzero_ps()) : acc[a]);
    }
    for (; f < F; f++) {
        __m512 acc = _mm512_set1_ps(b[f]);
        for (int k = 0; k < K; k++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(w[(size_t)f * K + k]), xv[k], acc);
        _mm512_mask_storeu_ps(y + (size_t)f * plane, m,
                              relu ? _mm512_max_ps(acc, _mm512_setzero_ps()) : acc);
    }
}

static inline __attribute__((always_inline)) void forward_all(const dp_conv_geom *g,
                                                              const float *xp, const int *off,
                                                              int K, int F, const float *w,
                                                              const float *b, int relu, float *y) {
    const int OH = g->OH, OW = g->OW, Wp = OW + g->kw - 1;
    for (int oh = 0; oh < OH; oh++)
        for (int v0 = 0; v0 < OW; v0 += 16)
            forward_vector(xp + oh * Wp + v0, off, K, F, w, b, relu, y + (size_t)oh * OW + v0,
                           (size_t)OH * OW, lanes(OW - v0));
}

void dp_conv_direct_forward(const dp_conv_geom *g, int F, const float *w, const float *b, int relu,
                            const float *x, float *y, float *xp) {
    int off[CONV_DIRECT_MAX_K];
    pad_image(g, x, xp, off);
    /* One copy of the kernel per K, so its window vectors stay in registers. */
    switch (g->C * g->kh * g->kw) {
#define FORWARD_K(k) \
    case k: forward_all(g, xp, off, k, F, w, b, relu, y); break;
        EACH_K(FORWARD_K)
#undef FORWARD_K
    }
}

/* dw[f .. f+NF)[0 .. K) += the kernel gradient of NF filters: NF x K vector
 * sums held in registers over every output vector of the plane (K and NF
 * constants at each call), each window vector loaded once for all NF filters. */
static inline __attribute__((always_inline)) void weight_grad_block(const dp_conv_geom *g,
                                                                    const float *xp, const int *off,
                                                                    const float *dz, float *dw,
                                                                    int K, int NF) {
    const int OH = g->OH, OW = g->OW, Wp = OW + g->kw - 1;
    const size_t P = (size_t)OH * OW;
    __m512 acc[4][CONV_DIRECT_MAX_K];
    for (int a = 0; a < NF; a++)
        for (int k = 0; k < K; k++) acc[a][k] = _mm512_setzero_ps();
    for (int oh = 0; oh < OH; oh++)
        for (int v0 = 0; v0 < OW; v0 += 16) {
            const __mmask16 m = lanes(OW - v0);
            __m512 d[4];
            for (int a = 0; a < NF; a++)
                d[a] = _mm512_maskz_loadu_ps(m, dz + a * P + (size_t)oh * OW + v0);
            for (int k = 0; k < K; k++) {
                const __m512 xv = _mm512_maskz_loadu_ps(m, xp + off[k] + oh * Wp + v0);
                for (int a = 0; a < NF; a++) acc[a][k] = _mm512_fmadd_ps(d[a], xv, acc[a][k]);
            }
        }
    for (int a = 0; a < NF; a++)
        for (int k = 0; k < K; k++) dw[(size_t)a * K + k] += _mm512_reduce_add_ps(acc[a][k]);
}

/* NF = min(4, 27 / K) filters at a time keeps NF*K accumulators, NF dz vectors
 * and a window vector within the 32 registers; the last F mod NF one by one. */
static inline __attribute__((always_inline)) void weight_grad_all(const dp_conv_geom *g,
                                                                  const float *xp, const int *off,
                                                                  const float *dz, float *dw, int F,
                                                                  int K) {
    const int NF = 27 / K < 4 ? (27 / K < 1 ? 1 : 27 / K) : 4;
    const size_t P = (size_t)g->OH * g->OW;
    int f = 0;
    for (; f + NF <= F; f += NF)
        weight_grad_block(g, xp, off, dz + f * P, dw + (size_t)f * K, K, NF);
    for (; f < F; f++) weight_grad_block(g, xp, off, dz + f * P, dw + (size_t)f * K, K, 1);
}

void dp_conv_direct_weight_grad(const dp_conv_geom *g, int F, const float *x, const float *dz,
                                float *dw, float *xp) {
    int off[CONV_DIRECT_MAX_K];
    pad_image(g, x, xp, off);
    switch (g->C * g->kh * g->kw) {
#define WEIGHT_GRAD_K(k) \
    case k: weight_grad_all(g, xp, off, dz, dw, F, k); break;
        EACH_K(WEIGHT_GRAD_K)
#undef WEIGHT_GRAD_K
    }
}

#else /* no AVX-512: conv2d keeps its sgemm path; these plain loops stay correct */

int dp_conv_direct_fits(const dp_conv_geom *g) {
    (void)g;
    return 0;
}

void dp_conv_direct_forward(const dp_conv_geom *g, int F, const float *w, const float *b, int relu,
                            const float *x, float *y, float *xp) {
    int off[CONV_DIRECT_MAX_K];
    const int K = g->C * g->kh * g->kw, OH = g->OH, OW = g->OW, Wp = OW + g->kw - 1;
    pad_image(g, x, xp, off);
    for (int f = 0; f < F; f++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = b[f];
                for (int k = 0; k < K; k++) s += w[(size_t)f * K + k] * xp[off[k] + oh * Wp + ow];
                y[((size_t)f * OH + oh) * OW + ow] = relu && s < 0.0f ? 0.0f : s;
            }
}

void dp_conv_direct_weight_grad(const dp_conv_geom *g, int F, const float *x, const float *dz,
                                float *dw, float *xp) {
    int off[CONV_DIRECT_MAX_K];
    const int K = g->C * g->kh * g->kw, OH = g->OH, OW = g->OW, Wp = OW + g->kw - 1;
    pad_image(g, x, xp, off);
    for (int f = 0; f < F; f++)
        for (int k = 0; k < K; k++) {
            float s = 0.0f;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    s += dz[((size_t)f * OH + oh) * OW + ow] * xp[off[k] + oh * Wp + ow];
            dw[(size_t)f * K + k] += s;
        }
}

#endif
