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
#include "layers/init.h"
#include "layers/layer.h"
#include "layers/rnn_common.h"
#include "layers/step_gemm.h"
#include "core/rng.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct rnn_state {
    int T, F, u, seq;
    dp_act act;
    float *z;  /* [cap, T, u] forward: x W + h U + b, then h_t in place; backward: dL/dz */
    float *hp; /* [cap, T, u] h_{t-1} at each position (zeros at t = 0) */
    float *dh; /* [cap, u] dL/dh_t flowing back from step t + 1 */
    float *pk; /* U packed for the forward steps, U^T for the backward ones */
    float *sb; /* [u] backward: bias gradient sum */
} rnn_state;

static int rnn_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                      dp_error *err) {
    if (dp_rnn_check("simple_rnn", cfg, in, max_batch, 0, err) != 0) return -1;
    int T = in->dim[0], F = in->dim[1], u = cfg->units;
    l->in_shape = *in;
    l->out_shape = dp_rnn_out_shape(cfg, in);
    /* The activation is inside the recurrence: nothing for the model to fold. */
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    const int kd[2] = {F, u}, rd[2] = {u, u};
    dp_layer_add_param(l, "kernel", 2, kd);
    dp_layer_add_param(l, "recurrent_kernel", 2, rd);
    dp_layer_add_param(l, "bias", 1, &u);
    rnn_state *st = DP_CALLOC(1, sizeof *st);
    st->T = T, st->F = F, st->u = u, st->seq = cfg->return_sequences;
    st->act = cfg->activation;
    size_t rows = (size_t)max_batch * T;
    st->z = DP_MALLOC(rows * u * sizeof(float));
    st->hp = DP_MALLOC(rows * u * sizeof(float));
    st->dh = DP_MALLOC((size_t)max_batch * u * sizeof(float));
    st->pk = DP_MALLOC(dp_step_packed_floats(u, u) * sizeof(float));
    st->sb = DP_MALLOC((size_t)u * sizeof(float));
    l->state = st;
    return 0;
}

/* Keras defaults: glorot_uniform kernel, orthogonal recurrent kernel, zero bias. */
static void rnn_init_params(dp_layer *l, float *params, uint64_t key) {
    const rnn_state *st = l->state;
    dp_init_glorot_uniform(params + l->params[0].offset, st->F, st->u, key);
    dp_init_orthogonal(params + l->params[1].offset, st->u, st->u, dp_rng_make_key(key, 1, 0, 0));
    memset(params + l->params[2].offset, 0, (size_t)st->u * sizeof(float));
}

/* Offset of h_t of sample b in the output (rows [B, T, u] or [B, u]), or -1
 * when step t is not an output. */
static ptrdiff_t out_off(const rnn_state *st, int b, int t) {
    if (st->seq) return ((ptrdiff_t)b * st->T + t) * st->u;
    return t == st->T - 1 ? (ptrdiff_t)b * st->u : -1;
}

static void rnn_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                        const dp_fwd_ctx *ctx) {
    (void)ctx;
    rnn_state *st = l->state;
    const int T = st->T, F = st->F, u = st->u, ld = T * u;
    const float *W = params + l->params[0].offset; /* [F, u] */
    const float *U = params + l->params[1].offset; /* [u, u] */
    const float *b = params + l->params[2].offset; /* [u] */
    float *z = st->z, *hp = st->hp;
    /* z[B*T, u] = x[B*T, F] W, every position at once; the step adds b */
    dp_gemm(0, 0, B * T, u, F, 1.0f, x, F, W, u, 0.0f, z, u);
    for (int r = 0; r < B; r++) memset(hp + (size_t)r * ld, 0, (size_t)u * sizeof(float));
    dp_step_pack(st->pk, U, u, u, u, 1);
    for (int t = 0; t < T; t++) {
        float *zt = z + (size_t)t * u; /* step t: B rows, stride ld */
        /* zt += h_{t-1}[B, u] U (h_0 = 0 adds nothing) */
        if (t > 0) dp_step_gemm(B, u, u, hp + (size_t)t * u, ld, st->pk, 1, zt, ld);
        for (int r = 0; r < B; r++) {
            float *h = zt + (size_t)r * ld;
            for (int j = 0; j < u; j++) h[j] += b[j];
            dp_rnn_activate(st->act, h, u);
            if (t + 1 < T) memcpy(hp + (size_t)r * ld + (size_t)(t + 1) * u, h, u * sizeof(float));
            ptrdiff_t o = out_off(st, r, t);
            if (o >= 0) memcpy(y + o, h, (size_t)u * sizeof(float));
        }
    }
}

static void rnn_backward(dp_layer *l, const float *params, const float *x, const float *y,
                         const float *dy, float *dx, float *grads, int B) {
    (void)y; /* h_t is kept in z */
    if (B <= 0) return;
    rnn_state *st = l->state;
    const int T = st->T, F = st->F, u = st->u, ld = T * u;
    const float *W = params + l->params[0].offset;
    const float *U = params + l->params[1].offset;
    float *dW = grads + l->params[0].offset, *dU = grads + l->params[1].offset;
    float *db = grads + l->params[2].offset;
    float *dz = st->z, *hp = st->hp, *dh = st->dh;
    const dp_rnn_slope_coef sl = dp_rnn_slope_of(st->act);
    float *sb = st->sb;                  /* [u] bias gradient sum, in (t, b) order */
    dp_step_pack(st->pk, U, u, u, 1, u); /* U^T */
    memset(dh, 0, (size_t)B * u * sizeof(float));
    memset(sb, 0, (size_t)u * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        /* dz_t = (dy_t + dh_t) act'(h_t), in place over h_t, which forward
         * left in z */
        for (int r = 0; r < B; r++) {
            float *d = dz + (size_t)r * ld + (size_t)t * u, *dhr = dh + (size_t)r * u;
            ptrdiff_t o = out_off(st, r, t);
            if (o >= 0) {
                const float *g = dy + o;
                for (int j = 0; j < u; j++) d[j] = (dhr[j] + g[j]) * dp_rnn_slope(sl, d[j]);
            } else {
                for (int j = 0; j < u; j++) d[j] = dhr[j] * dp_rnn_slope(sl, d[j]);
            }
            for (int j = 0; j < u; j++) sb[j] += d[j];
        }
        /* dh_{t-1}[B, u] = dz_t U^T */
        if (t > 0) dp_step_gemm(B, u, u, dz + (size_t)t * u, ld, st->pk, 0, dh, u);
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
        free(st->z);
        free(st->hp);
        free(st->dh);
        free(st->pk);
        free(st->sb);
    }
    free(st);
    l->state = NULL;
}

const dp_layer_ops dp_layer_simple_rnn_ops = {
    .type = "simple_rnn",
    .create = rnn_create,
    .init_params = rnn_init_params,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .free = rnn_free,
};
