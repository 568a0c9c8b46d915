/* im2col.c - patch matrix kernels for conv2d (see im2col.h).
 *
 * Both directions walk one col row (c, i, j) at a time. For a window offset
 * (i, j) the output rows and columns whose input lies inside x (not in the
 * padding) form ranges computed once, so the inner loops have no bounds tests.
 * A col row is OH runs of OW values; rows are short (11 to 26 in a small CNN),
 * so the cost is per run, and the runs of one col row are done by one tight
 * loop (copy_runs / add_runs) that steps both pointers. */
#include "layers/im2col.h"

#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

int dp_im2col_out_size(int n, int k, int s, int same, int *pad_before) {
    if (!same) {
        *pad_before = 0;
        return n < k ? 0 : (n - k) / s + 1;
    }
    int out = (n + s - 1) / s;
    int total = (out - 1) * s + k - n;
    if (total < 0) total = 0;
    *pad_before = total / 2;
    return out;
}

/* Output positions o in [*lo, *hi) read input index o*s + k - pad inside [0, n). */
static void valid_range(int k, int s, int pad, int n, int out, int *lo, int *hi) {
    int first = pad - k; /* smallest o*s reaching index 0 */
    int a = first <= 0 ? 0 : (first + s - 1) / s;
    int last = n - 1 + pad - k; /* largest o*s still inside */
    int b = last < 0 ? 0 : last / s + 1;
    *lo = a < out ? a : out;
    *hi = b < out ? b : out;
    if (*hi < *lo) *hi = *lo;
}

/* runs times: dst[r*dstep + k] = src[r*sstep + k] for k < n (contiguous runs).
 * With AVX-512 a run of up to 16 values is one masked load and store: 0.39 ms
 * instead of 0.70 ms for the patches of 64 x [32, 13, 13], 3x3. */
static void copy_runs(float *restrict dst, int dstep, const float *restrict src, long sstep,
                      int runs, int n) {
#ifdef __AVX512F__
    if (n <= 16) {
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        for (int r = 0; r < runs; r++)
            _mm512_mask_storeu_ps(dst + (long)r * dstep, m,
                                  _mm512_maskz_loadu_ps(m, src + r * sstep));
        return;
    }
#endif
    for (int r = 0; r < runs; r++)
        memcpy(dst + (long)r * dstep, src + r * sstep, (size_t)n * sizeof *dst);
}

/* runs times: dst[r*dstep + k] += src[r*sstep + k] for k < n. A plain loop:
 * masked AVX-512 read-modify-writes measured twice as slow here. */
static void add_runs(float *restrict dst, long dstep, const float *restrict src, int sstep,
                     int runs, int n) {
    for (int r = 0; r < runs; r++) {
        float *d = dst + r * dstep;
        const float *s = src + (long)r * sstep;
        for (int k = 0; k < n; k++) d[k] += s[k];
    }
}

#ifdef __AVX512F__
/* dp_im2col_backward for stride 1 and rows of at most 16 values: each dx row is
 * summed in one register from every (i, j) contribution, loaded straight into
 * its lanes by an expanding load, and stored once, so dx is never read back
 * (0.35 ms against 0.80 ms for 64 x [32, 13, 13], 3x3). Returns 0 when the
 * geometry does not fit. */
static int im2col_backward_rows16(const dp_conv_geom *g, const float *col, int ld, float *dx) {
    enum { MAXK = 16 };
    if (g->sh != 1 || g->sw != 1 || g->W > 16 || g->kw > MAXK) return 0;
    const int OW = g->OW, OH = g->OH, kh = g->kh, kw = g->kw;
    int lo[MAXK];
    __mmask16 lanes[MAXK]; /* dx columns that output columns [lo, hi) of offset j reach */
    for (int j = 0; j < kw; j++) {
        int hi;
        valid_range(j, 1, g->pl, g->W, OW, &lo[j], &hi);
        lanes[j] = hi > lo[j] ? (__mmask16)(((1u << (hi - lo[j])) - 1u) << (lo[j] + j - g->pl)) : 0;
    }
    const __mmask16 row_mask = (__mmask16)((1u << g->W) - 1u);
    for (int c = 0; c < g->C; c++) {
        for (int ih = 0; ih < g->H; ih++) {
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < kh; i++) {
                int oh = ih + g->pt - i; /* the output row reading input row ih at offset i */
                if (oh < 0 || oh >= OH) continue;
                const float *r = col + (size_t)((c * kh + i) * kw) * ld + (size_t)oh * OW;
                for (int j = 0; j < kw; j++, r += ld)
                    if (lanes[j])
                        acc = _mm512_add_ps(acc, _mm512_maskz_expandloadu_ps(lanes[j], r + lo[j]));
            }
            _mm512_mask_storeu_ps(dx + ((size_t)c * g->H + ih) * g->W, row_mask, acc);
        }
    }
    return 1;
}
#endif

void dp_im2col_forward(const dp_conv_geom *g, const float *x, float *col, int ld) {
    const int OH = g->OH, OW = g->OW, sw = g->sw, plane = g->H * g->W;
    for (int i = 0; i < g->kh; i++) {
        int oh_lo, oh_hi; /* output rows whose input row is inside x */
        valid_range(i, g->sh, g->pt, g->H, OH, &oh_lo, &oh_hi);
        for (int j = 0; j < g->kw; j++) {
            int lo, hi; /* output columns whose input column is inside x */
            valid_range(j, sw, g->pl, g->W, OW, &lo, &hi);
            /* x index of output (oh_lo, lo) within a channel: >= 0 by the ranges */
            const long at = (long)(oh_lo * g->sh + i - g->pt) * g->W + lo * sw + j - g->pl;
            const long step = (long)g->sh * g->W;
            for (int c = 0; c < g->C; c++) {
                const float *xc = x + (size_t)c * plane;                       /* [H, W] */
                float *row = col + (size_t)((c * g->kh + i) * g->kw + j) * ld; /* [OH*OW] */
                /* output rows that read only the top and bottom padding */
                if (oh_lo > 0) memset(row, 0, (size_t)oh_lo * OW * sizeof *row);
                if (oh_hi < OH)
                    memset(row + (size_t)oh_hi * OW, 0, (size_t)(OH - oh_hi) * OW * sizeof *row);
                if (oh_hi <= oh_lo) continue;
                if (sw == 1 && lo == 0 && hi == OW) { /* no padding on this row: whole runs */
                    copy_runs(row + (size_t)oh_lo * OW, OW, xc + at, step, oh_hi - oh_lo, OW);
                    continue;
                }
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    float *dst = row + (size_t)oh * OW;
                    const float *src = xc + at + (oh - oh_lo) * step; /* output column lo */
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    for (int ow = lo; ow < hi; ow++) dst[ow] = src[(long)(ow - lo) * sw];
                    for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

void dp_im2col_backward(const dp_conv_geom *g, const float *col, int ld, float *dx) {
    const int OW = g->OW, sw = g->sw, plane = g->H * g->W;
#ifdef __AVX512F__
    if (im2col_backward_rows16(g, col, ld, dx)) return;
#endif
    memset(dx, 0, (size_t)g->C * plane * sizeof *dx);
    for (int i = 0; i < g->kh; i++) {
        int oh_lo, oh_hi;
        valid_range(i, g->sh, g->pt, g->H, g->OH, &oh_lo, &oh_hi);
        if (oh_hi <= oh_lo) continue;
        for (int j = 0; j < g->kw; j++) {
            int lo, hi;
            valid_range(j, sw, g->pl, g->W, OW, &lo, &hi);
            if (hi <= lo) continue;
            const long at = (long)(oh_lo * g->sh + i - g->pt) * g->W + lo * sw + j - g->pl;
            const long step = (long)g->sh * g->W;
            for (int c = 0; c < g->C; c++) {
                float *dxc = dx + (size_t)c * plane; /* [H, W] */
                const float *row = col + (size_t)((c * g->kh + i) * g->kw + j) * ld;
                const float *src = row + (size_t)oh_lo * OW + lo;
                if (sw == 1) {
                    add_runs(dxc + at, step, src, OW, oh_hi - oh_lo, hi - lo);
                    continue;
                }
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    float *dst = dxc + at + (oh - oh_lo) * step; /* output column lo */
                    const float *s = src + (size_t)(oh - oh_lo) * OW;
                    for (int k = 0; k < hi - lo; k++) dst[(long)k * sw] += s[k];
                }
            }
        }
    }
}
