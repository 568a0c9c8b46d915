/* simple_rnn.c - Keras SimpleRNN: h_t = act(x_t W + h_{t-1} U + b), h_0 = 0.
 *
 * Parameters in the layer's slice, Keras layout: kernel [F, u],
 * recurrent_kernel [u, u], bias [u]. Input [T, F] per sample; output
 * [T, u] with return_sequences, else the last state [u]. Backward is full
 * backpropagation through the window. Rows stay batch-major (rnn_common.h):
 * the input projection and the weight gradients are one GEMM over all B*T
 * positions, and each step is one GEMM over the batch plus one row pass. */
#include "core/alloc.h"
#include "core/blas.h"
#include "layers/layer.h"
#include "layers/rnn_common.h"
#include "layers/step_gemm.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct rnn_state {
    dp_rnn_core c; /* sb: [u] bias gradient sum */
    float *z;      /* [cap, T, u] forward: x W + h U + b, then h_t in place; backward: dL/dz */
} rnn_state;

static int rnn_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                      dp_error *err) {
    rnn_state *st = DP_CALLOC(1, sizeof *st);
    int u = cfg->units;
    if (dp_rnn_core_create(l, &st->c, "simple_rnn", cfg, in, max_batch, 1, 1, (size_t)u, err)) {
        free(st);
        return -1;
    }
    st->z = DP_MALLOC((size_t)max_batch * st->c.T * u * sizeof(float));
    l->state = st;
    return 0;
}

/* Keras defaults: glorot_uniform kernel, orthogonal recurrent kernel, zero bias. */
static void rnn_init_params(dp_layer *l, float *params, uint64_t key) {
    const rnn_state *st = l->state;
    dp_rnn_core_init_params(l, &st->c, params, key);
}

static void rnn_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                        const dp_fwd_ctx *ctx) {
    (void)ctx;
    rnn_state *st = l->state;
    const int T = st->c.T, F = st->c.F, u = st->c.u, ld = T * u;
    const float *W = params + l->params[0].offset; /* [F, u] */
    const float *U = params + l->params[1].offset; /* [u, u] */
    const float *b = params + l->params[2].offset; /* [u] */
    float *z = st->z, *hp = st->c.hp;
    /* z[B*T, u] = x[B*T, F] W, every position at once; the step adds b */
    dp_gemm(0, 0, B * T, u, F, 1.0f, x, F, W, u, 0.0f, z, u);
    for (int r = 0; r < B; r++) memset(hp + (size_t)r * ld, 0, (size_t)u * sizeof(float));
    dp_step_pack(st->c.pk, U, u, u, u, 1);
    for (int t = 0; t < T; t++) {
        float *zt = z + (size_t)t * u; /* step t: B rows, stride ld */
        /* zt += h_{t-1}[B, u] U (h_0 = 0 adds nothing) */
        if (t > 0) dp_step_gemm(B, u, u, hp + (size_t)t * u, ld, st->c.pk, 1, zt, ld);
        for (int r = 0; r < B; r++) {
            float *h = zt + (size_t)r * ld;
            for (int j = 0; j < u; j++) h[j] += b[j];
            dp_rnn_activate(st->c.act, h, u);
            if (t + 1 < T) memcpy(hp + (size_t)r * ld + (size_t)(t + 1) * u, h, u * sizeof(float));
            ptrdiff_t o = dp_rnn_out_off(&st->c, r, t);
            if (o >= 0) memcpy(y + o, h, (size_t)u * sizeof(float));
        }
    }
}

static void rnn_backward(dp_layer *l, const float *params, const float *x, const float *y,
                         const float *dy, float *dx, float *grads, int B) {
    (void)y; /* h_t is kept in z */
    if (B <= 0) return;
    rnn_state *st = l->state;
    const int T = st->c.T, F = st->c.F, u = st->c.u, ld = T * u;
    const float *W = params + l->params[0].offset;
    const float *U = params + l->params[1].offset;
    float *dW = grads + l->params[0].offset, *dU = grads + l->params[1].offset;
    float *db = grads + l->params[2].offset;
    float *dz = st->z, *hp = st->c.hp, *dh = st->c.dh;
    const dp_rnn_slope_coef sl = dp_rnn_slope_of(st->c.act);
    float *sb = st->c.sb;                  /* [u] bias gradient sum, in (t, b) order */
    dp_step_pack(st->c.pk, U, u, u, 1, u); /* U^T */
    memset(dh, 0, (size_t)B * u * sizeof(float));
    memset(sb, 0, (size_t)u * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        /* dz_t = (dy_t + dh_t) act'(h_t), in place over h_t, which forward
         * left in z */
        for (int r = 0; r < B; r++) {
            float *d = dz + (size_t)r * ld + (size_t)t * u, *dhr = dh + (size_t)r * u;
            ptrdiff_t o = dp_rnn_out_off(&st->c, r, t);
            if (o >= 0) {
                const float *g = dy + o;
                for (int j = 0; j < u; j++) d[j] = (dhr[j] + g[j]) * dp_rnn_slope(sl, d[j]);
            } else {
                for (int j = 0; j < u; j++) d[j] = dhr[j] * dp_rnn_slope(sl, d[j]);
            }
            for (int j = 0; j < u; j++) sb[j] += d[j];
        }
        /* dh_{t-1}[B, u] = dz_t U^T */
        if (t > 0) dp_step_gemm(B, u, u, dz + (size_t)t * u, ld, st->c.pk, 0, dh, u);
    }
    /* Weight gradients and dx over all B*T positions at once. */
    dp_gemm(1, 0, u, u, B * T, 1.0f, hp, u, dz, u, 1.0f, dU, u);
    dp_gemm(1, 0, F, u, B * T, 1.0f, x, F, dz, u, 1.0f, dW, u);
    for (int j = 0; j < u; j++) db[j] += sb[j];
    if (dx) dp_gemm(0, 1, B * T, F, u, 1.0f, dz, u, W, u, 0.0f, dx, F);
}

static void rnn_free(dp_layer *l) {
    rnn_state *st = l->state;
    if (st) {
        dp_rnn_core_free(&st->c);
        free(st->z);
    }
    free(st);
    l->state = NULL;
}

/* Per step: x_t W and h U (F + u multiply-adds per unit) and the bias. */
static double rnn_flops(const dp_layer *l) {
    double T = l->in_shape.dim[0], F = l->in_shape.dim[1], u = l->params[1].shape.dim[0];
    return T * (2.0 * u * (F + u) + u);
}

const dp_layer_ops dp_layer_simple_rnn_ops = {
    .type = "simple_rnn",
    .create = rnn_create,
    .init_params = rnn_init_params,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .flops = rnn_flops,
    .free = rnn_free,
};
