/* global_average_pooling1d.c - [T, F] -> [F]: the mean over the T positions, as
 * Keras's GlobalAveragePooling1D (channels last, no mask). No parameters. */
#include "layers/layer.h"

#include <stdio.h>
#include <string.h>

static int gap1d_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                        dp_error *err) {
    (void)max_batch;
    char buf[96];
    if (in->ndim != 2)
        return dp_error_set(err, cfg->where,
                            "global_average_pooling1d expects a sequence [T, F], got %s",
                            dp_shape_format(in, buf, sizeof buf));
    l->in_shape = *in;
    l->out_shape.ndim = 1;
    l->out_shape.dim[0] = in->dim[1];
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    l->state = NULL;
    return 0;
}

static void gap1d_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)l, (void)params, (void)key;
}

/* y[B, F] = (sum over t of x[B, t, F], in position order) / T */
static void gap1d_forward_kernel(float *y, const float *x, int B, int T, int F) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * F;
        float *yb = y + (size_t)b * F;
        memcpy(yb, xb, (size_t)F * sizeof *yb);
        for (int t = 1; t < T; t++)
            for (int f = 0; f < F; f++) yb[f] += xb[(size_t)t * F + f];
        for (int f = 0; f < F; f++) yb[f] /= (float)T;
    }
}

/* dx[B, t, F] = dy[B, F] / T at every t */
static void gap1d_backward_kernel(float *dx, const float *dy, int B, int T, int F) {
    for (int b = 0; b < B; b++) {
        const float *dyb = dy + (size_t)b * F;
        float *dxb = dx + (size_t)b * T * F;
        for (int f = 0; f < F; f++) dxb[f] = dyb[f] / (float)T;
        for (int t = 1; t < T; t++) memcpy(dxb + (size_t)t * F, dxb, (size_t)F * sizeof *dxb);
    }
}

static void gap1d_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                          const dp_fwd_ctx *ctx) {
    (void)params, (void)ctx;
    gap1d_forward_kernel(y, x, B, l->in_shape.dim[0], l->in_shape.dim[1]);
}

static void gap1d_backward(dp_layer *l, const float *params, const float *x, const float *y,
                           const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)x, (void)y, (void)grads;
    if (dx) gap1d_backward_kernel(dx, dy, B, l->in_shape.dim[0], l->in_shape.dim[1]);
}

static void gap1d_free(dp_layer *l) {
    l->state = NULL;
}

/* T - 1 additions and one division per feature. */
static double gap1d_flops(const dp_layer *l) {
    return (double)l->in_shape.dim[0] * l->in_shape.dim[1];
}

const dp_layer_ops dp_layer_global_average_pooling1d_ops = {
    .type = "global_average_pooling1d",
    .create = gap1d_create,
    .init_params = gap1d_init_params,
    .forward = gap1d_forward,
    .backward = gap1d_backward,
    .flops = gap1d_flops,
    .free = gap1d_free,
};
