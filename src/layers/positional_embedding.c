/* positional_embedding.c - y[t] = x[t] + P[t]: a learned vector per position.
 *
 * Parameters in the layer's slice: embeddings [max_length, F], as keras_hub's
 * PositionEmbedding (whose output is the table alone; this layer adds it to its
 * input, the usual token + position sum). A window of T <= max_length
 * positions uses rows [0, T); the rest get no gradient. */
#include "layers/init.h"
#include "layers/layer.h"

#include <stdio.h>
#include <string.h>

static int positional_embedding_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in,
                                       int max_batch, dp_error *err) {
    (void)max_batch;
    char buf[96];
    if (in->ndim != 2)
        return dp_error_set(err, cfg->where,
                            "positional_embedding expects a sequence [T, F], got %s; put it "
                            "after an embedding layer",
                            dp_shape_format(in, buf, sizeof buf));
    if (cfg->max_length <= 0)
        return dp_error_set(err, cfg->where,
                            "positional_embedding max_length must be positive, got %d",
                            cfg->max_length);
    if (in->dim[0] > cfg->max_length)
        return dp_error_set(err, cfg->where,
                            "window of %d positions is longer than max_length %d; raise "
                            "max_length or shorten model.input",
                            in->dim[0], cfg->max_length);
    l->in_shape = *in;
    l->out_shape = *in;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    const int dims[2] = {cfg->max_length, in->dim[1]};
    dp_layer_add_param(l, "embeddings", 2, dims);
    l->state = NULL;
    return 0;
}

/* keras_hub's default, glorot_uniform on [max_length, F]: fan_in max_length,
 * fan_out F. */
static void positional_embedding_init_params(dp_layer *l, float *params, uint64_t key) {
    const dp_param_view *v = &l->params[0];
    dp_init_glorot_uniform(params + v->offset, v->shape.dim[0], v->shape.dim[1], key);
}

/* y[B, T, F] = x[B, T, F] + p[T, F] */
static void positional_forward_kernel(float *y, const float *x, const float *p, int B, int T,
                                      int F) {
    size_t tf = (size_t)T * F;
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * tf;
        float *yb = y + (size_t)b * tf;
        for (size_t i = 0; i < tf; i++) yb[i] = xb[i] + p[i];
    }
}

/* dp[T, F] += sum over b of dy[b] (in batch order); dx = dy unless dx is NULL. */
static void positional_backward_kernel(float *dx, float *dp, const float *dy, int B, int T, int F) {
    size_t tf = (size_t)T * F;
    for (int b = 0; b < B; b++) {
        const float *dyb = dy + (size_t)b * tf;
        for (size_t i = 0; i < tf; i++) dp[i] += dyb[i];
    }
    if (dx && dx != dy) memcpy(dx, dy, (size_t)B * tf * sizeof *dx);
}

static void positional_embedding_forward(dp_layer *l, const float *params, const float *x, float *y,
                                         int B, const dp_fwd_ctx *ctx) {
    (void)ctx;
    positional_forward_kernel(y, x, params + l->params[0].offset, B, l->in_shape.dim[0],
                              l->in_shape.dim[1]);
}

static void positional_embedding_backward(dp_layer *l, const float *params, const float *x,
                                          const float *y, const float *dy, float *dx, float *grads,
                                          int B) {
    (void)params, (void)x, (void)y;
    positional_backward_kernel(dx, grads + l->params[0].offset, dy, B, l->in_shape.dim[0],
                               l->in_shape.dim[1]);
}

static void positional_embedding_free(dp_layer *l) {
    l->state = NULL;
}

/* One addition per value of the [T, F] output. */
static double positional_embedding_flops(const dp_layer *l) {
    return (double)dp_shape_numel(&l->out_shape);
}

const dp_layer_ops dp_layer_positional_embedding_ops = {
    .type = "positional_embedding",
    .create = positional_embedding_create,
    .init_params = positional_embedding_init_params,
    .forward = positional_embedding_forward,
    .backward = positional_embedding_backward,
    .flops = positional_embedding_flops,
    .free = positional_embedding_free,
};
