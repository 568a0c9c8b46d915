/* maxpool2d.c - max over ph x pw windows moved by (sh, sw), 'valid' padding as
 * Keras's default: [C, H, W] -> [C, floor((H - ph) / sh) + 1, floor((W - pw) / sw) + 1].
 *
 * The kernels are in maxpool_kernels.c; forward keeps each maximum's position
 * for backward. No parameters. A conv2d just before may pool its own output
 * (layer.h, absorb); then this layer's forward and backward are not called. */
#include "layers/layer.h"
#include "core/alloc.h"
#include "layers/maxpool.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct maxpool2d_state {
    dp_pool_geom g;
    int32_t *arg; /* [cap, C*OH*OW] offset of each output's maximum in its sample's x */
    int cap;
} maxpool2d_state;

static int maxpool2d_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                            dp_error *err) {
    char buf[96];
    if (in->ndim != 3)
        return dp_error_set(err, cfg->where,
                            "maxpool2d expects a 3-D input [channels, height, width], got %s",
                            dp_shape_format(in, buf, sizeof buf));
    if (cfg->pool[0] <= 0 || cfg->pool[1] <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d pool_size must be positive, got [%d, %d]",
                            cfg->pool[0], cfg->pool[1]);
    if (cfg->strides[0] <= 0 || cfg->strides[1] <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d strides must be positive, got [%d, %d]",
                            cfg->strides[0], cfg->strides[1]);
    if (in->dim[1] < cfg->pool[0] || in->dim[2] < cfg->pool[1])
        return dp_error_set(err, cfg->where,
                            "maxpool2d pool_size [%d, %d] is larger than its input %s",
                            cfg->pool[0], cfg->pool[1], dp_shape_format(in, buf, sizeof buf));
    if (dp_shape_numel(in) > INT32_MAX)
        return dp_error_set(err, cfg->where, "maxpool2d input %s has more than 2^31 values",
                            dp_shape_format(in, buf, sizeof buf));
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d needs a batch size >= 1, got %d",
                            max_batch);
    maxpool2d_state *st = DP_CALLOC(1, sizeof *st);
    dp_pool_geom *g = &st->g;
    g->C = in->dim[0], g->H = in->dim[1], g->W = in->dim[2];
    g->ph = cfg->pool[0], g->pw = cfg->pool[1];
    g->sh = cfg->strides[0], g->sw = cfg->strides[1];
    g->OH = (g->H - g->ph) / g->sh + 1;
    g->OW = (g->W - g->pw) / g->sw + 1;
    st->cap = max_batch;
    st->arg = DP_MALLOC((size_t)max_batch * g->C * g->OH * g->OW * sizeof(int32_t));
    l->in_shape = *in;
    l->out_shape.ndim = 3;
    l->out_shape.dim[0] = g->C;
    l->out_shape.dim[1] = g->OH;
    l->out_shape.dim[2] = g->OW;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    l->state = st;
    return 0;
}

static void maxpool2d_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)l, (void)params, (void)key;
}

static void maxpool2d_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                              const dp_fwd_ctx *ctx) {
    (void)params, (void)ctx;
    maxpool2d_state *st = l->state;
    const dp_pool_geom *g = &st->g;
    size_t in_n = (size_t)g->C * g->H * g->W, out_n = (size_t)g->C * g->OH * g->OW;
    if (B > st->cap) {
        /* Callers promise B <= max_batch; growing keeps a broken promise safe. */
        free(st->arg);
        st->arg = DP_MALLOC((size_t)B * out_n * sizeof(int32_t));
        st->cap = B;
    }
    for (int s = 0; s < B; s++)
        dp_maxpool_forward_sample(g, x + s * in_n, (size_t)g->H * g->W, y + s * out_n,
                                  st->arg + s * out_n);
}

/* dx[C, H, W] = 0 except dy added at each output's argmax (windows may overlap). */
static void maxpool2d_backward(dp_layer *l, const float *params, const float *x, const float *y,
                               const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)x, (void)y, (void)grads;
    if (!dx) return;
    maxpool2d_state *st = l->state;
    const dp_pool_geom *g = &st->g;
    size_t in_n = (size_t)g->C * g->H * g->W, out_n = (size_t)g->C * g->OH * g->OW;
    for (int s = 0; s < B; s++)
        dp_maxpool_backward_sample(g, st->arg + s * out_n, dy + s * out_n, dx + s * in_n,
                                   (size_t)g->H * g->W);
}

int dp_maxpool2d_geom(const dp_layer *l, dp_pool_geom *g) {
    if (l->ops != &dp_layer_maxpool2d_ops) return -1;
    *g = ((const maxpool2d_state *)l->state)->g;
    return 0;
}

static void maxpool2d_free(dp_layer *l) {
    maxpool2d_state *st = l->state;
    if (st) free(st->arg);
    free(st);
    l->state = NULL;
}

/* ph*pw - 1 comparisons per output value. */
static double maxpool2d_flops(const dp_layer *l) {
    const maxpool2d_state *st = l->state;
    return (double)(st->g.ph * st->g.pw - 1) * (double)dp_shape_numel(&l->out_shape);
}

const dp_layer_ops dp_layer_maxpool2d_ops = {
    .type = "maxpool2d",
    .create = maxpool2d_create,
    .init_params = maxpool2d_init_params,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
    .flops = maxpool2d_flops,
    .free = maxpool2d_free,
};
