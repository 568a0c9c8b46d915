/* maxpool2d.c - max over ph x pw windows moved by (sh, sw), 'valid' padding as
 * Keras's default: [C, H, W] -> [C, floor((H - ph) / sh) + 1, floor((W - pw) / sw) + 1].
 *
 * Forward remembers where each maximum came from (the first one on ties), so
 * backward routes dy there without looking at x again. No parameters. */
#include "dptrain/layer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct maxpool2d_state {
    int C, H, W, ph, pw, sh, sw, OH, OW;
    int32_t *arg; /* [cap, C*OH*OW] offset of each output's maximum in its sample's x */
    int cap;
} maxpool2d_state;

static int maxpool2d_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in,
                            int max_batch, dp_error *err) {
    char buf[96];
    if (in->ndim != 3)
        return dp_error_set(err, cfg->where,
                            "maxpool2d expects a 3-D input [channels, height, width], got %s",
                            tensor_format_shape(in, buf, sizeof buf));
    if (cfg->pool[0] <= 0 || cfg->pool[1] <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d pool_size must be positive, got [%d, %d]",
                            cfg->pool[0], cfg->pool[1]);
    if (cfg->strides[0] <= 0 || cfg->strides[1] <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d strides must be positive, got [%d, %d]",
                            cfg->strides[0], cfg->strides[1]);
    if (in->dim[1] < cfg->pool[0] || in->dim[2] < cfg->pool[1])
        return dp_error_set(err, cfg->where, "maxpool2d pool_size [%d, %d] is larger than its input %s",
                            cfg->pool[0], cfg->pool[1], tensor_format_shape(in, buf, sizeof buf));
    if (tensor_numel_shape(in) > INT32_MAX)
        return dp_error_set(err, cfg->where, "maxpool2d input %s has more than 2^31 values",
                            tensor_format_shape(in, buf, sizeof buf));
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "maxpool2d needs a batch size >= 1, got %d", max_batch);
    maxpool2d_state *st = DP_CALLOC(1, sizeof *st);
    st->C = in->dim[0], st->H = in->dim[1], st->W = in->dim[2];
    st->ph = cfg->pool[0], st->pw = cfg->pool[1];
    st->sh = cfg->strides[0], st->sw = cfg->strides[1];
    st->OH = (st->H - st->ph) / st->sh + 1;
    st->OW = (st->W - st->pw) / st->sw + 1;
    st->cap = max_batch;
    st->arg = DP_MALLOC((size_t)max_batch * st->C * st->OH * st->OW * sizeof(int32_t));
    l->in_shape = *in;
    l->out_shape.ndim = 3;
    l->out_shape.dim[0] = st->C;
    l->out_shape.dim[1] = st->OH;
    l->out_shape.dim[2] = st->OW;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    l->state = st;
    return 0;
}

static void maxpool2d_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)l, (void)params, (void)key;
}

/* y[C, OH, OW] and arg[C, OH, OW] from x[C, H, W] for one sample. */
static void maxpool2d_forward_sample(const maxpool2d_state *st, const float *x, float *y,
                                     int32_t *arg) {
    for (int c = 0; c < st->C; c++) {
        for (int oh = 0; oh < st->OH; oh++) {
            for (int ow = 0; ow < st->OW; ow++) {
                const int32_t corner = (int32_t)(((size_t)c * st->H + (size_t)oh * st->sh) *
                                                     st->W + (size_t)ow * st->sw);
                int32_t best_at = corner;
                float best = x[corner];
                for (int i = 0; i < st->ph; i++) {
                    const int32_t row = corner + i * st->W;
                    for (int j = 0; j < st->pw; j++) {
                        /* Strictly greater: the first maximum wins ties. */
                        if (x[row + j] > best) {
                            best = x[row + j];
                            best_at = row + j;
                        }
                    }
                }
                *y++ = best;
                *arg++ = best_at;
            }
        }
    }
}

static void maxpool2d_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                              const dp_fwd_ctx *ctx) {
    (void)params, (void)ctx;
    maxpool2d_state *st = l->state;
    size_t in_n = (size_t)st->C * st->H * st->W, out_n = (size_t)st->C * st->OH * st->OW;
    if (B > st->cap) {
        /* Callers promise B <= max_batch; growing keeps a broken promise safe. */
        free(st->arg);
        st->arg = DP_MALLOC((size_t)B * out_n * sizeof(int32_t));
        st->cap = B;
    }
    for (int s = 0; s < B; s++)
        maxpool2d_forward_sample(st, x + s * in_n, y + s * out_n, st->arg + s * out_n);
}

/* dx[C, H, W] = 0 except dy added at each output's argmax (windows may overlap). */
static void maxpool2d_backward(dp_layer *l, const float *params, const float *x, const float *y,
                               const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)x, (void)y, (void)grads;
    if (!dx) return;
    maxpool2d_state *st = l->state;
    size_t in_n = (size_t)st->C * st->H * st->W, out_n = (size_t)st->C * st->OH * st->OW;
    memset(dx, 0, (size_t)B * in_n * sizeof *dx);
    for (int s = 0; s < B; s++) {
        const int32_t *arg = st->arg + s * out_n;
        const float *dys = dy + s * out_n;
        float *dxs = dx + s * in_n;
        for (size_t o = 0; o < out_n; o++) dxs[arg[o]] += dys[o];
    }
}

static void maxpool2d_free(dp_layer *l) {
    maxpool2d_state *st = l->state;
    if (st) free(st->arg);
    free(st);
    l->state = NULL;
}

const dp_layer_ops layer_maxpool2d_ops = {
    .type = "maxpool2d",
    .create = maxpool2d_create,
    .init_params = maxpool2d_init_params,
    .forward = maxpool2d_forward,
    .backward = maxpool2d_backward,
    .free = maxpool2d_free,
};
