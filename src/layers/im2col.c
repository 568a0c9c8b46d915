/* im2col.c - patch matrix kernels for conv2d (see include/dptrain/im2col.h).
 *
 * Both directions walk one col row (c, i, j) at a time: for a fixed j the output
 * columns whose input column lies inside x form one range [lo, hi), computed once,
 * so the inner loops have no bounds tests and vectorize when the stride is 1. */
#include "dptrain/im2col.h"

#include <string.h>

int im2col_out_size(int n, int k, int s, int same, int *pad_before) {
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

/* Output columns ow in [*lo, *hi) read input column ow*s + j - pad inside [0, W). */
static void col_range(int j, int s, int pad, int W, int OW, int *lo, int *hi) {
    int first = pad - j; /* smallest ow*s reaching column 0 */
    int a = first <= 0 ? 0 : (first + s - 1) / s;
    int last = W - 1 + pad - j; /* largest ow*s still inside */
    int b = last < 0 ? 0 : last / s + 1;
    *lo = a < OW ? a : OW;
    *hi = b < OW ? b : OW;
    if (*hi < *lo) *hi = *lo;
}

void im2col_forward(const dp_conv_geom *g, const float *x, float *col, int ld) {
    const int OH = g->OH, OW = g->OW, sw = g->sw;
    for (int c = 0; c < g->C; c++) {
        const float *xc = x + (size_t)c * g->H * g->W; /* [H, W] */
        for (int i = 0; i < g->kh; i++) {
            for (int j = 0; j < g->kw; j++) {
                float *row = col + (size_t)((c * g->kh + i) * g->kw + j) * ld; /* [OH*OW] */
                int lo, hi;
                col_range(j, sw, g->pl, g->W, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    float *dst = row + (size_t)oh * OW;
                    int ih = oh * g->sh + i - g->pt;
                    if (ih < 0 || ih >= g->H) {
                        memset(dst, 0, (size_t)OW * sizeof *dst);
                        continue;
                    }
                    /* x column of ow is base + ow*sw; it is >= 0 for ow >= lo */
                    const long base = (long)ih * g->W + j - g->pl;
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (sw == 1)
                        for (int ow = lo; ow < hi; ow++) dst[ow] = xc[base + ow];
                    else
                        for (int ow = lo; ow < hi; ow++) dst[ow] = xc[base + (long)ow * sw];
                    for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

void im2col_backward(const dp_conv_geom *g, const float *col, int ld, float *dx) {
    const int OH = g->OH, OW = g->OW, sw = g->sw;
    for (int c = 0; c < g->C; c++) {
        float *dxc = dx + (size_t)c * g->H * g->W; /* [H, W] */
        for (int i = 0; i < g->kh; i++) {
            for (int j = 0; j < g->kw; j++) {
                const float *row = col + (size_t)((c * g->kh + i) * g->kw + j) * ld;
                int lo, hi;
                col_range(j, sw, g->pl, g->W, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * g->sh + i - g->pt;
                    if (ih < 0 || ih >= g->H) continue;
                    const float *src = row + (size_t)oh * OW;
                    const long base = (long)ih * g->W + j - g->pl;
                    if (sw == 1)
                        for (int ow = lo; ow < hi; ow++) dxc[base + ow] += src[ow];
                    else
                        for (int ow = lo; ow < hi; ow++) dxc[base + (long)ow * sw] += src[ow];
                }
            }
        }
    }
}
