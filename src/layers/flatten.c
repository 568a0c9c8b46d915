/* flatten.c - [d0, d1, ...] -> [d0 * d1 * ...], e.g. a conv stack's [C, H, W]
 * feeding dense. Row-major order, so element (c, h, w) lands at (c*H + h)*W + w.
 * No parameters; the model gives every layer its own output buffer, so forward
 * and backward are copies. */
#include "layers/layer.h"

#include <stdio.h>
#include <string.h>

static int flatten_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                          dp_error *err) {
    (void)max_batch;
    if (in->ndim < 1) return dp_error_set(err, cfg->where, "flatten needs an input with a shape");
    l->in_shape = *in;
    l->out_shape.ndim = 1;
    l->out_shape.dim[0] = (int)dp_shape_numel(in);
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    l->state = NULL;
    return 0;
}

static void flatten_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)l, (void)params, (void)key;
}

/* y[B, n] = x[B, ...] */
static void flatten_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                            const dp_fwd_ctx *ctx) {
    (void)params, (void)ctx;
    if (B > 0 && y != x) memcpy(y, x, (size_t)B * l->out_shape.dim[0] * sizeof *y);
}

/* dx[B, ...] = dy[B, n] */
static void flatten_backward(dp_layer *l, const float *params, const float *x, const float *y,
                             const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)x, (void)y, (void)grads;
    if (dx && B > 0 && dx != dy) memcpy(dx, dy, (size_t)B * l->out_shape.dim[0] * sizeof *dx);
}

static void flatten_free(dp_layer *l) {
    l->state = NULL;
}

/* A copy: no arithmetic. */
static double flatten_flops(const dp_layer *l) {
    (void)l;
    return 0.0;
}

const dp_layer_ops dp_layer_flatten_ops = {
    .type = "flatten",
    .create = flatten_create,
    .init_params = flatten_init_params,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .flops = flatten_flops,
    .free = flatten_free,
};
