/* lstm.c - Keras's LSTM over a sequence [T, F]: gates i, f, c, o.
 *
 * Parameters in the layer's slice: kernel [F, 4U], recurrent_kernel [U, 4U],
 * bias [4U], each with the four gate blocks side by side in the order i, f,
 * c (the candidate g), o, so Keras weights load unchanged. Per step:
 *   z = x_t W + h_{t-1} R + b,  i, f, o = ract(z_i, z_f, z_o),  g = act(z_c),
 *   c_t = f c_{t-1} + i g,  h_t = o act(c_t),  h_{-1} = c_{-1} = 0.
 * The output is h at every step [T, U] (return_sequences) or the last h [U].
 *
 * Inside, rows are time-major, position (t, b) at t*B + b: a step's rows are
 * one contiguous block, which its product and its elementwise pass stream
 * through (with rows T apart, as in x, the 32 rows of a step fell into the
 * same cache sets). x is transposed to that order once, so the input
 * projection, the weight gradients and dx are each one GEMM over all B*T
 * positions, and each step is one product over the batch. */
#include "core/alloc.h"
#include "core/blas.h"
#include "core/rng.h"
#include "layers/init.h"
#include "layers/layer.h"
#include "layers/lstm_cell.h"
#include "layers/rnn_common.h"
#include "layers/step_gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names the recurrent kernel's rng stream, apart from the kernel's. */
#define RECURRENT_STREAM 0x4ec

typedef struct lstm_state {
    int T, F, U;
    int return_sequences;
    int unit_forget_bias; /* init: the forget gate's bias starts at 1 */
    dp_act act, ract;     /* candidate and c; gates */
    /* Saved by forward for backward, rows (t, b) for up to max_batch samples.
     * xh [cap*T, F+U]: row (t, b) = [x_t, h_{t-1}] (h_{-1} = 0). The left part
     * gives the input projection's rows, the right part step t's, and both
     * kernels' gradients are one product with it. Backward's dx goes into the
     * left part before it is put back in sample-major order. */
    float *xh;
    float *z;     /* [cap*T, 4U] gates i, f, g, o; backward turns them into dL/dz */
    float *c;     /* [cap*T, U] c_t */
    float *ac;    /* [cap*T, U] act(c_t) */
    float *dh;    /* [cap, U] dL/dh_t during backward */
    float *dc;    /* [cap, U] dL/dc_t during backward */
    float *zero;  /* [U] c_{-1} */
    float *rpack; /* the recurrent kernel packed for dp_step_gemm: r in forward, r^T in backward */
    void *rpack_mem;
} lstm_state;

static int lstm_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                       dp_error *err) {
    if (in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "lstm expects a sequence [steps, features], got %s; put an embedding "
                            "before it or give the input as [steps, features]",
                            dp_shape_format(in, buf, sizeof buf));
    }
    if (cfg->units <= 0)
        return dp_error_set(err, cfg->where, "lstm units must be a positive integer, got %d",
                            cfg->units);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "lstm needs a batch size >= 1, got %d", max_batch);
    if (!dp_rnn_act_ok(cfg->activation))
        return dp_error_set(err, cfg->where,
                            "lstm does not take activation %s; use tanh (the default), sigmoid, "
                            "relu or linear",
                            dp_config_name_act(cfg->activation));
    if (!dp_rnn_act_ok(cfg->recurrent_activation))
        return dp_error_set(err, cfg->where,
                            "lstm does not take recurrent_activation %s; use sigmoid (the "
                            "default), tanh, relu or linear",
                            dp_config_name_act(cfg->recurrent_activation));
    int T = in->dim[0], F = in->dim[1], U = cfg->units;
    l->in_shape = *in;
    l->out_shape.ndim = cfg->return_sequences ? 2 : 1;
    l->out_shape.dim[0] = cfg->return_sequences ? T : U;
    l->out_shape.dim[1] = cfg->return_sequences ? U : 0;
    l->activation = DP_ACT_LINEAR; /* the activations act inside the cell */
    l->n_params = 0;
    l->param_count = 0;
    const int kdims[2] = {F, 4 * U}, rdims[2] = {U, 4 * U}, bdims[1] = {4 * U};
    dp_layer_add_param(l, "kernel", 2, kdims);
    dp_layer_add_param(l, "recurrent_kernel", 2, rdims);
    dp_layer_add_param(l, "bias", 1, bdims);
    lstm_state *st = DP_CALLOC(1, sizeof *st);
    st->T = T, st->F = F, st->U = U;
    st->return_sequences = cfg->return_sequences;
    st->unit_forget_bias = cfg->unit_forget_bias;
    st->act = cfg->activation;
    st->ract = cfg->recurrent_activation;
    size_t rows = (size_t)max_batch * (size_t)T;
    st->xh = DP_MALLOC(rows * (size_t)(F + U) * sizeof(float));
    st->z = DP_MALLOC(rows * 4 * (size_t)U * sizeof(float));
    st->c = DP_MALLOC(rows * (size_t)U * sizeof(float));
    st->ac = DP_MALLOC(rows * (size_t)U * sizeof(float));
    st->dh = DP_MALLOC((size_t)max_batch * (size_t)U * sizeof(float));
    st->dc = DP_MALLOC((size_t)max_batch * (size_t)U * sizeof(float));
    st->zero = DP_CALLOC((size_t)U, sizeof(float));
    size_t packed = dp_step_packed_floats(U, 4 * U), packed_t = dp_step_packed_floats(4 * U, U);
    st->rpack_mem = DP_MALLOC((packed > packed_t ? packed : packed_t) * sizeof(float) + 64);
    st->rpack = (float *)(((uintptr_t)st->rpack_mem + 63) & ~(uintptr_t)63);
    l->state = st;
    return 0;
}

/* Keras: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with
 * the forget block at 1 when unit_forget_bias. */
static void lstm_init_params(dp_layer *l, float *params, uint64_t key) {
    const lstm_state *st = l->state;
    int F = st->F, U = st->U;
    dp_init_glorot_uniform(params + l->params[0].offset, F, 4 * U, key);
    dp_init_orthogonal(params + l->params[1].offset, U, 4 * U,
                       dp_rng_make_key(key, RECURRENT_STREAM, 0, 0));
    float *b = params + l->params[2].offset; /* [4U] */
    memset(b, 0, 4 * (size_t)U * sizeof *b);
    if (st->unit_forget_bias)
        for (int j = 0; j < U; j++) b[U + j] = 1.0f;
}

/* xt[T*B, F] (row stride ld) = x[B*T, F]: row (b, t) to row (t, b). */
static void reorder_rows(float *xt, int ld, const float *x, int B, int T, int F) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            memcpy(xt + ((size_t)t * B + b) * ld, x + ((size_t)b * T + t) * F,
                   (size_t)F * sizeof *x);
}

/* x[B*T, F] = xt[T*B, F] (row stride ld): back to sample-major order. */
static void restore_rows(float *x, const float *xt, int ld, int B, int T, int F) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            memcpy(x + ((size_t)b * T + t) * F, xt + ((size_t)t * B + b) * ld,
                   (size_t)F * sizeof *x);
}

static void lstm_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                         const dp_fwd_ctx *ctx) {
    (void)ctx;
    lstm_state *st = l->state;
    const int T = st->T, F = st->F, U = st->U, G = 4 * U;
    const float *w = params + l->params[0].offset;    /* [F, G] */
    const float *r = params + l->params[1].offset;    /* [U, G] */
    const float *bias = params + l->params[2].offset; /* [G] */
    const size_t N = (size_t)B * T;
    const int XH = F + U;
    /* z[N, G] = x[N, F] w: the input's part of every gate at every position. */
    reorder_rows(st->xh, XH, x, B, T, F);
    dp_gemm(0, 0, (int)N, G, F, 1.0f, st->xh, XH, w, G, 0.0f, st->z, G);
    for (int b = 0; b < B; b++) memset(st->xh + (size_t)b * XH + F, 0, (size_t)U * sizeof(float));
    if (T > 1) dp_step_pack(st->rpack, r, U, G, G, 1);
    for (int t = 0; t < T; t++) {
        float *zt = st->z + (size_t)t * B * G; /* [B, G] */
        /* z_t += h_{t-1} r; h_{-1} = 0 adds nothing. */
        if (t > 0) dp_step_gemm(B, G, U, st->xh + (size_t)t * B * XH + F, XH, st->rpack, 1, zt, G);
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            const float *cprev = t > 0 ? st->c + (row - B) * U : st->zero;
            float *yb = st->return_sequences ? y + ((size_t)b * T + t) * U : y + (size_t)b * U;
            /* h_t goes where step t+1 reads it, or straight to the output. */
            float *h = t + 1 < T ? st->xh + (row + B) * XH + F : yb;
            dp_lstm_cell_forward(st->act, st->ract, U, st->z + row * G, bias, cprev,
                                 st->c + row * U, st->ac + row * U, h);
            if (st->return_sequences && t + 1 < T) memcpy(yb, h, (size_t)U * sizeof *h);
        }
    }
}

/* Backpropagation through time over the window, t = T-1 .. 0. Each step turns
 * its gates into dL/dz in place (so a backward needs the forward just before
 * it) and sends dL/dh_{t-1} = dz_t r^T back; the weight gradients and dx then
 * come from all positions at once. */
static void lstm_backward(dp_layer *l, const float *params, const float *x, const float *y,
                          const float *dy, float *dx, float *grads, int B) {
    (void)x; /* forward kept it, reordered */
    (void)y;
    if (B <= 0) return;
    lstm_state *st = l->state;
    const int T = st->T, F = st->F, U = st->U, G = 4 * U, XH = F + U;
    const float *w = params + l->params[0].offset; /* [F, G] */
    const float *r = params + l->params[1].offset; /* [U, G] */
    float *dw = grads + l->params[0].offset;       /* [F, G], then dr [U, G] */
    float *db = grads + l->params[2].offset;       /* [G] */
    const size_t N = (size_t)B * T;
    memset(st->dh, 0, (size_t)B * U * sizeof(float));
    memset(st->dc, 0, (size_t)B * U * sizeof(float));
    if (T > 1) dp_step_pack(st->rpack, r, G, U, 1, G); /* r^T [G, U] */
    for (int t = T - 1; t >= 0; t--) {
        float *zt = st->z + (size_t)t * B * G; /* [B, G] */
        for (int b = 0; b < B; b++) {
            size_t row = (size_t)t * B + b;
            float *dh = st->dh + (size_t)b * U;
            const float *dyt = st->return_sequences ? dy + ((size_t)b * T + t) * U
                               : t == T - 1         ? dy + (size_t)b * U
                                                    : NULL;
            if (dyt)
                for (int j = 0; j < U; j++) dh[j] += dyt[j];
            const float *cprev = t > 0 ? st->c + (row - B) * U : st->zero;
            dp_lstm_cell_backward(st->act, st->ract, U, st->z + row * G, cprev, st->ac + row * U,
                                  dh, st->dc + (size_t)b * U);
        }
        /* dh[B, U] = dz_t[B, G] r^T: what h_{t-1} receives through step t. */
        if (t > 0) dp_step_gemm(B, U, G, zt, G, st->rpack, 0, st->dh, U);
    }
    const float *dz = st->z; /* [N, G] */
    /* [dw; dr] [F+U, G] += xh^T dz: the two kernels are adjacent in the slice. */
    dp_gemm(1, 0, XH, G, (int)N, 1.0f, st->xh, XH, dz, G, 1.0f, dw, G);
    for (size_t n = 0; n < N; n++) {
        const float *dzn = dz + n * G;
        for (int j = 0; j < G; j++) db[j] += dzn[j];
    }
    if (!dx) return;
    /* dx in time-major order over xh, which the weight gradients no longer need. */
    dp_gemm(0, 1, (int)N, F, G, 1.0f, dz, G, w, G, 0.0f, st->xh, XH);
    restore_rows(dx, st->xh, XH, B, T, F);
}

static void lstm_free(dp_layer *l) {
    lstm_state *st = l->state;
    if (st) {
        free(st->xh), free(st->z), free(st->c), free(st->ac);
        free(st->dh), free(st->dc), free(st->zero), free(st->rpack_mem);
    }
    free(st);
    l->state = NULL;
}

/* Per step: the four gates' x_t W + h R (F + U multiply-adds each) and bias
 * (4U), c_t = f c + i g (3U) and h_t = o act(c_t) (U). */
static double lstm_flops(const dp_layer *l) {
    double T = l->in_shape.dim[0], F = l->in_shape.dim[1], U = l->params[1].shape.dim[0];
    return T * (8.0 * U * (F + U) + 8.0 * U);
}

const dp_layer_ops dp_layer_lstm_ops = {
    .type = "lstm",
    .create = lstm_create,
    .init_params = lstm_init_params,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .flops = lstm_flops,
    .free = lstm_free,
};
