/* conv2d.c - 2-D convolution, y = act(conv(x, kernel) + bias), Keras semantics
 * on channels-first images.
 *
 * Parameters in the layer's slice: kernel [F, C, kh, kw] at 0, then bias [F].
 * The batch is cut into chunks of G samples whose patch matrices (im2col.h) sit
 * side by side in col[K, G*P] (K = C*kh*kw, P = OH*OW), so each direction is
 * one sgemm per chunk: z = kernel[F, K] col in forward; col dz^T and
 * kernel^T dz in backward. Chunks keep the scratch in the L2 cache; the
 * reordering between [F, G*P] and the batch layout [G, F, P] rides along with
 * the bias and activation passes that are needed anyway.
 *
 * Stride-1 layers with a shallow patch (K <= CONV_DIRECT_MAX_K, a first layer
 * on one channel) skip the patch matrix: conv_direct.h computes the output and
 * the kernel gradient from a padded copy of each image. A maxpool2d right after
 * is done here too (conv2d_absorb). Together they took Fashion-MNIST's first
 * conv2d and maxpool2d from 3.0 to 1.7 ms per batch of 64, forward and
 * backward. */
#include "core/blas.h"
#include "layers/activation.h"
#include "core/alloc.h"
#include "layers/conv_direct.h"
#include "layers/im2col.h"
#include "layers/layer.h"
#include "layers/maxpool.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Samples are grouped into chunks so that each sgemm has at least
 * CONV2D_MIN_COLS columns (OpenBLAS runs 64x288x121 at about 105 GFLOP/s and
 * 64x288x484 at 127 here), while the chunk's col, dcol and z, at most
 * CONV2D_CHUNK_BYTES, stay in the L2 cache. */
#define CONV2D_MIN_COLS 480
#define CONV2D_CHUNK_BYTES (3 << 19)

typedef struct conv2d_state {
    dp_conv_geom g;
    int F, K, P;     /* filters, C*kh*kw, OH*OW */
    int G;           /* samples per chunk */
    int direct;      /* dp_conv_direct_fits: no patch matrices in forward or kernel gradient */
    float *xp;       /* [dp_conv_direct_scratch_floats] direct kernels' scratch */
    float *col;      /* [K, G*P] patch matrices of a chunk, side by side */
    float *dcol;     /* [K, G*P] their gradient */
    float *z;        /* [F, G*P] a chunk's pre-activations, then their gradient */
    float *dwt;      /* [K, F] kernel gradient of one backward, transposed */
    int pooled;      /* absorbed the maxpool2d after it: forward writes the pooled output */
    dp_pool_geom pg; /* that pool, over this layer's [F, OH, OW] */
    size_t pout_n;   /* F*POH*POW pooled values per sample */
    int32_t *parg;   /* [max_batch, pout_n] where each pooled value came from */
    float *pgrad;    /* [pout_n] one sample's pooled gradient through the activation */
    int cap;         /* samples parg holds */
} conv2d_state;

static int conv2d_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                         dp_error *err) {
    char buf[96];
    if (in->ndim != 3)
        return dp_error_set(err, cfg->where,
                            "conv2d expects a 3-D input [channels, height, width], got %s",
                            dp_shape_format(in, buf, sizeof buf));
    if (cfg->filters <= 0)
        return dp_error_set(err, cfg->where, "conv2d filters must be a positive integer, got %d",
                            cfg->filters);
    if (cfg->kernel[0] <= 0 || cfg->kernel[1] <= 0)
        return dp_error_set(err, cfg->where, "conv2d kernel_size must be positive, got [%d, %d]",
                            cfg->kernel[0], cfg->kernel[1]);
    if (cfg->strides[0] <= 0 || cfg->strides[1] <= 0)
        return dp_error_set(err, cfg->where, "conv2d strides must be positive, got [%d, %d]",
                            cfg->strides[0], cfg->strides[1]);
    if (cfg->activation == DP_ACT_SOFTMAX)
        return dp_error_set(err, cfg->where,
                            "conv2d does not take activation softmax; use flatten and a dense "
                            "softmax layer");
    dp_conv_geom g = {.C = in->dim[0],
                      .H = in->dim[1],
                      .W = in->dim[2],
                      .kh = cfg->kernel[0],
                      .kw = cfg->kernel[1],
                      .sh = cfg->strides[0],
                      .sw = cfg->strides[1]};
    g.OH = dp_im2col_out_size(g.H, g.kh, g.sh, cfg->padding_same, &g.pt);
    g.OW = dp_im2col_out_size(g.W, g.kw, g.sw, cfg->padding_same, &g.pl);
    if (g.OH < 1 || g.OW < 1)
        return dp_error_set(err, cfg->where,
                            "conv2d kernel_size [%d, %d] is larger than its input %s "
                            "(padding valid); use a smaller kernel or padding same",
                            g.kh, g.kw, dp_shape_format(in, buf, sizeof buf));

    int F = cfg->filters, K = g.C * g.kh * g.kw, P = g.OH * g.OW;
    l->in_shape = *in;
    l->out_shape.ndim = 3;
    l->out_shape.dim[0] = F;
    l->out_shape.dim[1] = g.OH;
    l->out_shape.dim[2] = g.OW;
    l->activation = cfg->activation;
    l->n_params = 0;
    l->param_count = 0;
    const int kdims[4] = {F, g.C, g.kh, g.kw};
    dp_layer_add_param(l, "kernel", 4, kdims);
    dp_layer_add_param(l, "bias", 1, &F);

    conv2d_state *st = DP_CALLOC(1, sizeof *st);
    st->g = g;
    st->F = F, st->K = K, st->P = P;
    size_t per_sample = (size_t)(2 * K + F) * P * sizeof(float);
    st->G = (CONV2D_MIN_COLS + P - 1) / P;
    if ((size_t)st->G * per_sample > CONV2D_CHUNK_BYTES)
        st->G = (int)(CONV2D_CHUNK_BYTES / per_sample);
    if (st->G > max_batch) st->G = max_batch;
    if (st->G < 1) st->G = 1;
    size_t cols = (size_t)st->G * P;
    st->col = DP_MALLOC((size_t)K * cols * sizeof(float));
    st->dcol = DP_MALLOC((size_t)K * cols * sizeof(float));
    st->z = DP_MALLOC((size_t)F * cols * sizeof(float));
    st->dwt = DP_MALLOC((size_t)K * F * sizeof(float));
    st->direct = dp_conv_direct_fits(&g);
    if (st->direct) st->xp = DP_MALLOC(dp_conv_direct_scratch_floats(&g) * sizeof(float));
    l->state = st;
    return 0;
}

/* Glorot uniform as Keras computes it for convolutions: fan_in = C*kh*kw,
 * fan_out = F*kh*kw, limit = sqrt(6 / (fan_in + fan_out)); bias 0. */
static void conv2d_init_params(dp_layer *l, float *params, uint64_t key) {
    const int *d = l->params[0].shape.dim; /* [F, C, kh, kw] */
    double fan_in = (double)d[1] * d[2] * d[3], fan_out = (double)d[0] * d[2] * d[3];
    float limit = (float)sqrt(6.0 / (fan_in + fan_out));
    float *w = params + l->params[0].offset;
    float *b = params + l->params[1].offset;
    for (size_t i = 0; i < l->params[0].numel; i++)
        w[i] = (2.0f * dp_rng_uniform(key, i) - 1.0f) * limit;
    memset(b, 0, l->params[1].numel * sizeof *b);
}

/* Sum of v[0..n) in 16 independent lanes, so the loop vectorizes. */
static float sum_floats(const float *v, int n) {
    float lane[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) lane[k] += v[i + k];
    float s = 0.0f;
    for (; i < n; i++) s += v[i];
    for (int k = 0; k < 16; k++) s += lane[k];
    return s;
}

/* yr[P] = act(zr[P] + bf); zr may be yr. Softmax is refused at create, so the
 * activation is element-wise and a row piece is enough. */
static void bias_act_row(dp_act act, const float *zr, float *yr, float bf, int P) {
    if (act == DP_ACT_RELU) { /* the usual case, in the same pass */
        for (int p = 0; p < P; p++) yr[p] = zr[p] + bf > 0.0f ? zr[p] + bf : 0.0f;
        return;
    }
    for (int p = 0; p < P; p++) yr[p] = zr[p] + bf;
    dp_activation_forward(act, yr, 1, (size_t)P);
}

/* Chunk of gs samples x[gs, C, H, W] -> y[gs, F, OH, OW] (or pooled, y[gs, pout_n]
 * and parg[gs, pout_n]): col[K, gs*P] = patches, z[F, gs*P] = w[F, K] col,
 * y_s[f] = act(z[f, s*P..] + b[f]). */
static void conv2d_forward_chunk(dp_layer *l, conv2d_state *st, const float *w, const float *b,
                                 const float *x, float *y, int32_t *parg, int gs) {
    const dp_conv_geom *g = &st->g;
    const int F = st->F, K = st->K, P = st->P, n = gs * P;
    size_t in_n = (size_t)g->C * g->H * g->W, out_n = (size_t)F * P;
    for (int s = 0; s < gs; s++) dp_im2col_forward(g, x + s * in_n, st->col + (size_t)s * P, n);
    /* A chunk of one sample has y's layout already: no copy through z. */
    float *z = gs == 1 && !st->pooled ? y : st->z;
    dp_gemm(0, 0, F, n, K, 1.0f, w, K, st->col, n, 0.0f, z, n);
    if (st->pooled) {
        /* Bias and activation in place, then pool straight out of z: the
         * unpooled output never leaves the cache. */
        for (int f = 0; f < F; f++)
            bias_act_row(l->activation, z + (size_t)f * n, z + (size_t)f * n, b[f], n);
        for (int s = 0; s < gs; s++)
            dp_maxpool_forward_sample(&st->pg, z + (size_t)s * P, (size_t)n, y + s * st->pout_n,
                                      parg + s * st->pout_n);
        return;
    }
    /* Back to [sample, F, P] with the bias and activation on the way, one row of
     * P values at a time while it is in L1. */
    for (int s = 0; s < gs; s++)
        for (int f = 0; f < F; f++)
            bias_act_row(l->activation, z + (size_t)f * n + (size_t)s * P,
                         y + s * out_n + (size_t)f * P, b[f], P);
}

/* One sample by the direct kernels: its output [F, P] goes to y, or to z and
 * is pooled into y and parg. */
static void conv2d_forward_direct(dp_layer *l, conv2d_state *st, const float *w, const float *b,
                                  const float *x, float *y, int32_t *parg) {
    const size_t out_n = (size_t)st->F * st->P;
    int relu = l->activation == DP_ACT_RELU;
    float *ys = st->pooled ? st->z : y;
    dp_conv_direct_forward(&st->g, st->F, w, b, relu, x, ys, st->xp);
    if (!relu) dp_activation_forward(l->activation, ys, 1, out_n);
    if (st->pooled) dp_maxpool_forward_sample(&st->pg, ys, (size_t)st->P, y, parg);
}

static void conv2d_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                           const dp_fwd_ctx *ctx) {
    (void)ctx;
    conv2d_state *st = l->state;
    const float *w = params + l->params[0].offset, *b = params + l->params[1].offset;
    size_t in_n = (size_t)st->g.C * st->g.H * st->g.W;
    size_t out_n = st->pooled ? st->pout_n : (size_t)st->F * st->P;
    if (st->pooled && B > st->cap) {
        /* Callers promise B <= max_batch; growing keeps a broken promise safe. */
        free(st->parg);
        st->parg = DP_MALLOC((size_t)B * st->pout_n * sizeof(int32_t));
        st->cap = B;
    }
    for (int s0 = 0; s0 < B; s0 += st->direct ? 1 : st->G) {
        int gs = B - s0 < st->G ? B - s0 : st->G;
        int32_t *parg = st->pooled ? st->parg + s0 * st->pout_n : NULL;
        if (st->direct) conv2d_forward_direct(l, st, w, b, x + s0 * in_n, y + s0 * out_n, parg);
        else conv2d_forward_chunk(l, st, w, b, x + s0 * in_n, y + s0 * out_n, parg, gs);
    }
}

/* dz for samples s0 .. s0+gs-1, sample s at dz + s*P with rows F of stride ld:
 * act'(y) dy, where y, dy are this layer's output and its gradient, or the
 * pooled ones, whose gradient then goes back to where each maximum was (the
 * same values as unpooled: a monotone activation commutes with the max). */
static void conv2d_make_dz(dp_layer *l, conv2d_state *st, const float *y, const float *dy, int s0,
                           int gs, float *dz, int ld) {
    const int F = st->F, P = st->P;
    if (st->pooled) {
        for (int s = 0; s < gs; s++) {
            size_t at = (size_t)(s0 + s) * st->pout_n;
            dp_activation_backward(l->activation, y + at, dy + at, st->pgrad, 1, st->pout_n);
            dp_maxpool_backward_sample(&st->pg, st->parg + at, st->pgrad, dz + (size_t)s * P,
                                       (size_t)ld);
        }
        return;
    }
    size_t out_n = (size_t)F * P;
    for (int s = 0; s < gs; s++)
        for (int f = 0; f < F; f++) {
            size_t at = (size_t)(s0 + s) * out_n + (size_t)f * P;
            dp_activation_backward(l->activation, y + at, dy + at,
                                   dz + (size_t)f * ld + (size_t)s * P, 1, (size_t)P);
        }
}

/* One chunk of gs samples from s0: dz[F, gs*P]; db += row sums of dz;
 * dwt[K, F] += col dz^T with col rebuilt (it costs a fraction of the sgemm and
 * keeps memory per chunk, not per batch); dx_s = col2im of (w^T dz)_s.
 * The transposed product col dz^T runs faster than dz col^T (128 against 107
 * GFLOP/s for 288x64x484). */
static void conv2d_backward_chunk(dp_layer *l, conv2d_state *st, const float *w, float *db,
                                  const float *x, const float *y, const float *dy, float *dx,
                                  int s0, int gs) {
    const dp_conv_geom *g = &st->g;
    const int F = st->F, K = st->K, P = st->P, n = gs * P;
    size_t in_n = (size_t)g->C * g->H * g->W;
    float *dz = st->z; /* [F, n] */
    conv2d_make_dz(l, st, y, dy, s0, gs, dz, n);
    for (int f = 0; f < F; f++) db[f] += sum_floats(dz + (size_t)f * n, n);
    for (int s = 0; s < gs; s++)
        dp_im2col_forward(g, x + (s0 + s) * in_n, st->col + (size_t)s * P, n);
    dp_gemm(0, 1, K, F, n, 1.0f, st->col, n, dz, n, 1.0f, st->dwt, F);
    if (!dx) return;
    dp_gemm(1, 0, K, n, F, 1.0f, w, K, dz, n, 0.0f, st->dcol, n);
    for (int s = 0; s < gs; s++)
        dp_im2col_backward(g, st->dcol + (size_t)s * P, n, dx + (s0 + s) * in_n);
}

/* One sample s by the direct kernels: dz[F, P] (in z), db += its row sums,
 * dw += dp_conv_direct_weight_grad; dx, when wanted, is still col2im of
 * kernel^T dz. */
static void conv2d_backward_direct(dp_layer *l, conv2d_state *st, const float *w, float *dw,
                                   float *db, const float *x, const float *y, const float *dy,
                                   float *dx, int s) {
    const int F = st->F, K = st->K, P = st->P;
    size_t in_n = (size_t)st->g.C * st->g.H * st->g.W;
    float *dz = st->z; /* [F, P] */
    conv2d_make_dz(l, st, y, dy, s, 1, dz, P);
    for (int f = 0; f < F; f++) db[f] += sum_floats(dz + (size_t)f * P, P);
    dp_conv_direct_weight_grad(&st->g, F, x + s * in_n, dz, dw, st->xp);
    if (!dx) return;
    dp_gemm(1, 0, K, P, F, 1.0f, w, K, dz, P, 0.0f, st->dcol, P);
    dp_im2col_backward(&st->g, st->dcol, P, dx + s * in_n);
}

static void conv2d_backward(dp_layer *l, const float *params, const float *x, const float *y,
                            const float *dy, float *dx, float *grads, int B) {
    conv2d_state *st = l->state;
    const float *w = params + l->params[0].offset; /* [F, K] */
    float *dw = grads + l->params[0].offset;       /* [F, K] */
    float *db = grads + l->params[1].offset;       /* [F] */
    const int F = st->F, K = st->K;
    if (st->direct) {
        for (int s = 0; s < B; s++) conv2d_backward_direct(l, st, w, dw, db, x, y, dy, dx, s);
        return;
    }
    memset(st->dwt, 0, (size_t)K * F * sizeof *st->dwt);
    for (int s0 = 0; s0 < B; s0 += st->G) {
        int gs = B - s0 < st->G ? B - s0 : st->G;
        conv2d_backward_chunk(l, st, w, db, x, y, dy, dx, s0, gs);
    }
    for (int f = 0; f < F; f++)
        for (int k = 0; k < K; k++) dw[(size_t)f * K + k] += st->dwt[(size_t)k * F + f];
}

/* Takes over a maxpool2d right after: forward then writes the pooled output
 * (with where each maximum came from) and backward takes the pooled gradient,
 * so the full-size output is never stored, read back, or scattered into. The
 * activations are monotone, so pooling after them is pooling their values at
 * the maxima: the results are the same bits as the two layers apart. */
static int conv2d_absorb(dp_layer *l, const dp_layer *next, int max_batch) {
    conv2d_state *st = l->state;
    dp_pool_geom pg;
    if (st->pooled || dp_maxpool2d_geom(next, &pg) != 0 || max_batch < 1) return 0;
    st->pooled = 1;
    st->pg = pg;
    st->pout_n = (size_t)pg.C * pg.OH * pg.OW;
    st->cap = max_batch;
    st->parg = DP_MALLOC((size_t)max_batch * st->pout_n * sizeof(int32_t));
    st->pgrad = DP_MALLOC(st->pout_n * sizeof(float));
    return 1;
}

static void conv2d_free(dp_layer *l) {
    conv2d_state *st = l->state;
    if (st) {
        free(st->col);
        free(st->dcol);
        free(st->z);
        free(st->dwt);
        free(st->xp);
        free(st->parg);
        free(st->pgrad);
    }
    free(st);
    l->state = NULL;
}

/* Per output value: C*kh*kw multiply-adds and the bias. */
static double conv2d_flops(const dp_layer *l) {
    const dp_shape *k = &l->params[0].shape; /* [F, C, kh, kw] */
    double per_out = 2.0 * k->dim[1] * k->dim[2] * k->dim[3] + 1.0;
    return per_out * (double)dp_shape_numel(&l->out_shape);
}

const dp_layer_ops dp_layer_conv2d_ops = {
    .type = "conv2d",
    .create = conv2d_create,
    .init_params = conv2d_init_params,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .absorb = conv2d_absorb,
    .flops = conv2d_flops,
    .free = conv2d_free,
};
