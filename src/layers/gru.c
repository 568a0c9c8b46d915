/* gru.c - Keras GRU with reset_after = true (its default), h_0 = 0.
 *
 * Parameters in the layer's slice, Keras layout with gate blocks z (update),
 * r (reset), h (candidate) along 3u: kernel [F, 3u], recurrent_kernel [u, 3u],
 * bias [2, 3u] (row 0 input side, row 1 recurrent side). Per step:
 *   xg = x_t W + b_in,  hg = h_{t-1} U + b_rec
 *   z = ra(xg_z + hg_z),  r = ra(xg_r + hg_r),  hh = a(xg_h + r * hg_h)
 *   h_t = z * h_{t-1} + (1 - z) * hh
 * Rows stay batch-major (rnn_common.h): the input projection and the weight
 * gradients are one GEMM over all B*T positions; each step is one GEMM over
 * the batch plus one fused row pass. */
#include "core/alloc.h"
#include "core/blas.h"
#include "layers/layer.h"
#include "layers/rnn_common.h"
#include "layers/step_gemm.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct gru_state {
    dp_rnn_core c; /* sb: [4u] bias gradient sums */
    float *xg;     /* [cap, T, 3u] forward: x W, then (z, r, hh) in place;
                      backward: dL/d(xg) in place */
    float *hh;     /* [cap, T, u] forward: hg_h; backward: dL/d(hg_h) = dL/d(pre hh) * r */
    float *g;      /* [cap, 3u] one step: forward h_{t-1} U; backward dL/d(hg) */
} gru_state;

static int gru_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                      dp_error *err) {
    gru_state *st = DP_CALLOC(1, sizeof *st);
    int u = cfg->units;
    if (dp_rnn_core_create(l, &st->c, "gru", cfg, in, max_batch, 3, 2, (size_t)4 * u, err) != 0) {
        free(st);
        return -1;
    }
    size_t rows = (size_t)max_batch * st->c.T;
    st->xg = DP_MALLOC(rows * 3 * u * sizeof(float));
    st->hh = DP_MALLOC(rows * u * sizeof(float));
    st->g = DP_MALLOC((size_t)max_batch * 3 * u * sizeof(float));
    l->state = st;
    return 0;
}

/* Keras defaults: glorot_uniform kernel, orthogonal recurrent kernel over the
 * whole [u, 3u], zero biases. */
static void gru_init_params(dp_layer *l, float *params, uint64_t key) {
    const gru_state *st = l->state;
    dp_rnn_core_init_params(l, &st->c, params, key);
}

/* One position's gates, in place over xg[3u]: given xg = x_t W and
 * hg[3u] = h_{t-1} U (no biases), writes (z, r, hh) into xg, hg_h + b_rec_h
 * into hgh[u] and h_t into h[u]. */
static void gru_cell(const gru_state *st, float *restrict xg, const float *restrict hg,
                     const float *restrict bin, const float *restrict brec,
                     const float *restrict hprev, float *restrict hgh, float *restrict h) {
    const int u = st->c.u;
    float *z = xg, *r = xg + u, *c = xg + 2 * u;
    for (int j = 0; j < 2 * u; j++) xg[j] = (xg[j] + bin[j]) + (hg[j] + brec[j]);
    dp_rnn_activate(st->c.ract, xg, 2 * u);
    for (int j = 0; j < u; j++) {
        hgh[j] = hg[2 * u + j] + brec[2 * u + j];
        c[j] = (c[j] + bin[2 * u + j]) + r[j] * hgh[j];
    }
    dp_rnn_activate(st->c.act, c, u);
    for (int j = 0; j < u; j++) h[j] = z[j] * hprev[j] + (1.0f - z[j]) * c[j];
}

static void gru_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                        const dp_fwd_ctx *ctx) {
    (void)ctx;
    gru_state *st = l->state;
    const int T = st->c.T, F = st->c.F, u = st->c.u, k = 3 * u;
    const size_t ldg = (size_t)T * k, ldh = (size_t)T * u;
    const float *W = params + l->params[0].offset;                    /* [F, 3u] */
    const float *U = params + l->params[1].offset;                    /* [u, 3u] */
    const float *bin = params + l->params[2].offset, *brec = bin + k; /* [3u] each */
    float *xg = st->xg, *hp = st->c.hp, *g = st->g;
    /* xg[B*T, 3u] = x[B*T, F] W, every position at once; the step adds b_in */
    dp_gemm(0, 0, B * T, k, F, 1.0f, x, F, W, k, 0.0f, xg, k);
    for (int r = 0; r < B; r++) memset(hp + r * ldh, 0, (size_t)u * sizeof(float));
    dp_step_pack(st->c.pk, U, u, k, k, 1);
    for (int t = 0; t < T; t++) {
        /* g[B, 3u] = h_{t-1}[B, u] U; h_{t-1} rows have stride T*u in hp */
        if (t > 0) dp_step_gemm(B, k, u, hp + (size_t)t * u, (int)ldh, st->c.pk, 0, g, k);
        else memset(g, 0, (size_t)B * k * sizeof(float));
        for (int r = 0; r < B; r++) {
            float *hprev = hp + r * ldh + (size_t)t * u;
            ptrdiff_t o = dp_rnn_out_off(&st->c, r, t);
            /* h_t goes to the next step's h_{t-1} slot, and to y if it is an output */
            float *h = t + 1 < T ? hprev + u : y + o;
            gru_cell(st, xg + r * ldg + (size_t)t * k, g + (size_t)r * k, bin, brec, hprev,
                     st->hh + r * ldh + (size_t)t * u, h);
            if (t + 1 < T && o >= 0) memcpy(y + o, h, (size_t)u * sizeof(float));
        }
    }
}

/* One position's backward, in place: from dh[u] = dL/dh_t and the gates
 * (z, r, hh) in xz, xr, xc and hg_h in hgh, writes dL/d(xg) over xz, xr, xc,
 * dL/d(hg_h) over hgh, dL/d(hg) into gz, gr, gh and the direct part of
 * dL/dh_{t-1} (dh z) over dh, and adds the bias gradients into sz, sr, sc
 * (input side) and sh (recurrent h block). Every block is its own restrict
 * pointer: indexed as one row with an unknown stride u, the loop would not
 * vectorize. */
static void gru_cell_backward(int u, dp_rnn_slope_coef a, dp_rnn_slope_coef ra, float *restrict xz,
                              float *restrict xr, float *restrict xc, float *restrict hgh,
                              const float *restrict hprev, float *restrict dh, float *restrict gz,
                              float *restrict gr, float *restrict gh, float *restrict sz,
                              float *restrict sr, float *restrict sc, float *restrict sh) {
    for (int j = 0; j < u; j++) {
        float z = xz[j], r = xr[j], c = xc[j], d = dh[j];
        float dc = d * (1.0f - z) * dp_rnn_slope(a, c); /* dL/d(pre hh) */
        float dz = d * (hprev[j] - c) * dp_rnn_slope(ra, z);
        float dr = dc * hgh[j] * dp_rnn_slope(ra, r);
        float dhg = dc * r;
        dh[j] = d * z;
        xz[j] = gz[j] = dz;
        xr[j] = gr[j] = dr;
        xc[j] = dc;
        hgh[j] = gh[j] = dhg;
        sz[j] += dz;
        sr[j] += dr;
        sc[j] += dc;
        sh[j] += dhg;
    }
}

static void gru_backward(dp_layer *l, const float *params, const float *x, const float *y,
                         const float *dy, float *dx, float *grads, int B) {
    (void)y;
    if (B <= 0) return;
    gru_state *st = l->state;
    const int T = st->c.T, F = st->c.F, u = st->c.u, k = 3 * u;
    const size_t ldg = (size_t)T * k, ldh = (size_t)T * u;
    const float *W = params + l->params[0].offset;
    const float *U = params + l->params[1].offset;
    float *dW = grads + l->params[0].offset, *dU = grads + l->params[1].offset;
    float *dbin = grads + l->params[2].offset, *dbrec = dbin + k;
    float *dxg = st->xg, *dhgh = st->hh, *hp = st->c.hp, *dg = st->g, *dh = st->c.dh;
    const dp_rnn_slope_coef a = dp_rnn_slope_of(st->c.act), ra = dp_rnn_slope_of(st->c.ract);
    float *sb = st->c.sb;                  /* [4u] bias gradient sums, in (t, b) order */
    dp_step_pack(st->c.pk, U, k, u, 1, k); /* U^T [3u, u] */
    memset(dh, 0, (size_t)B * u * sizeof(float));
    memset(sb, 0, (size_t)4 * u * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        for (int r = 0; r < B; r++) {
            float *dhr = dh + (size_t)r * u;
            ptrdiff_t o = dp_rnn_out_off(&st->c, r, t);
            if (o >= 0)
                for (int j = 0; j < u; j++) dhr[j] += dy[o + j];
            float *xr = dxg + r * ldg + (size_t)t * k, *gr = dg + (size_t)r * k;
            gru_cell_backward(u, a, ra, xr, xr + u, xr + 2 * u, dhgh + r * ldh + (size_t)t * u,
                              hp + r * ldh + (size_t)t * u, dhr, gr, gr + u, gr + 2 * u, sb, sb + u,
                              sb + 2 * u, sb + 3 * u);
        }
        /* dh_{t-1}[B, u] += dL/d(hg)[B, 3u] U^T */
        if (t > 0) dp_step_gemm(B, u, k, dg, k, st->c.pk, 1, dh, u);
    }
    /* Weight gradients and dx over all B*T positions at once. The recurrent
     * side differs from the input side only in the h block (r * hg_h). */
    const int n = B * T;
    dp_gemm(1, 0, F, k, n, 1.0f, x, F, dxg, k, 1.0f, dW, k);
    dp_gemm(1, 0, u, 2 * u, n, 1.0f, hp, u, dxg, k, 1.0f, dU, k);
    dp_gemm(1, 0, u, u, n, 1.0f, hp, u, dhgh, u, 1.0f, dU + 2 * u, k);
    for (int j = 0; j < k; j++) dbin[j] += sb[j];
    for (int j = 0; j < 2 * u; j++) dbrec[j] += sb[j];
    for (int j = 0; j < u; j++) dbrec[2 * u + j] += sb[3 * u + j];
    if (dx) dp_gemm(0, 1, n, F, k, 1.0f, dxg, k, W, k, 0.0f, dx, F);
}

static void gru_free(dp_layer *l) {
    gru_state *st = l->state;
    if (st) {
        dp_rnn_core_free(&st->c);
        free(st->xg), free(st->hh), free(st->g);
    }
    free(st);
    l->state = NULL;
}

/* Per step: the three blocks' x_t W + h U (F + u multiply-adds each) and both
 * biases (6u), the z and r sums (2u), r * hg_h + xg_h (2u) and
 * h = z h + (1 - z) hh (4u). */
static double gru_flops(const dp_layer *l) {
    double T = l->in_shape.dim[0], F = l->in_shape.dim[1], u = l->params[1].shape.dim[0];
    return T * (6.0 * u * (F + u) + 14.0 * u);
}

const dp_layer_ops dp_layer_gru_ops = {
    .type = "gru",
    .create = gru_create,
    .init_params = gru_init_params,
    .forward = gru_forward,
    .backward = gru_backward,
    .flops = gru_flops,
    .free = gru_free,
};
