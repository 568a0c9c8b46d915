/* dropout.c - inverted dropout, Keras semantics: during training each value is
 * kept with probability 1 - rate and scaled by 1 / (1 - rate); at inference the
 * layer is the identity. Any shape; no parameters.
 *
 * The mask is not drawn from a stream. Element i of the row whose training-set
 * index is id keeps its value iff
 *   dp_rng_uniform(dp_rng_make_key(seed, 0xd70, layer index, step), id * numel + i) >= rate,
 * so a row gets the same mask whichever rank, micro-batch or position computes
 * it, and the result does not depend on the number of ranks (docs/DESIGN.md §5). */
#include "layers/layer.h"
#include "core/alloc.h"
#include "core/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DROPOUT_STREAM 0xd70

typedef struct dropout_state {
    double rate;
    size_t n;     /* values per row */
    float *scale; /* [cap, n] 0 or 1/(1-rate): the last training forward's mask */
    int cap;
    int masked; /* the last forward applied the mask (training, rate > 0) */
} dropout_state;

static int dropout_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                          dp_error *err) {
    if (!(cfg->rate >= 0.0 && cfg->rate < 1.0))
        return dp_error_set(err, cfg->where, "dropout rate must be in [0, 1), got %g", cfg->rate);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "dropout needs a batch size >= 1, got %d", max_batch);
    dropout_state *st = DP_CALLOC(1, sizeof *st);
    st->rate = cfg->rate;
    st->n = dp_shape_numel(in);
    st->cap = max_batch;
    st->scale = DP_MALLOC((size_t)max_batch * st->n * sizeof(float));
    l->in_shape = *in;
    l->out_shape = *in;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    l->state = st;
    return 0;
}

static void dropout_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)l, (void)params, (void)key;
}

static void dropout_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                            const dp_fwd_ctx *ctx) {
    (void)params;
    dropout_state *st = l->state;
    size_t n = st->n;
    st->masked = ctx && ctx->training && st->rate > 0.0;
    if (!st->masked) {
        if (B > 0 && y != x) memcpy(y, x, (size_t)B * n * sizeof *y);
        return;
    }
    if (B > st->cap) {
        /* Callers promise B <= max_batch; growing keeps a broken promise safe. */
        free(st->scale);
        st->scale = DP_MALLOC((size_t)B * n * sizeof(float));
        st->cap = B;
    }
    const float rate = (float)st->rate;
    const float keep_scale = (float)(1.0 / (1.0 - st->rate));
    uint64_t key =
        dp_rng_make_key(ctx->seed, DROPOUT_STREAM, (uint64_t)l->index, (uint64_t)ctx->step);
    for (int r = 0; r < B; r++) {
        uint64_t id = ctx->row_ids ? ctx->row_ids[r] : (uint64_t)r;
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n, *sr = st->scale + (size_t)r * n;
        dp_rng_uniform_fill(key, id * n, sr, n); /* the draws, then their scales in place */
        for (size_t i = 0; i < n; i++) {
            sr[i] = sr[i] >= rate ? keep_scale : 0.0f;
            yr[i] = xr[i] * sr[i];
        }
    }
}

/* dx = dy * mask scale from the last forward (dy itself after an unmasked one). */
static void dropout_backward(dp_layer *l, const float *params, const float *x, const float *y,
                             const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)x, (void)y, (void)grads;
    dropout_state *st = l->state;
    if (!dx || B <= 0) return;
    size_t total = (size_t)B * st->n;
    if (!st->masked) {
        if (dx != dy) memcpy(dx, dy, total * sizeof *dx);
        return;
    }
    for (size_t i = 0; i < total; i++) dx[i] = dy[i] * st->scale[i];
}

static void dropout_free(dp_layer *l) {
    dropout_state *st = l->state;
    if (st) free(st->scale);
    free(st);
    l->state = NULL;
}

/* The identity at inference. */
static double dropout_flops(const dp_layer *l) {
    (void)l;
    return 0.0;
}

const dp_layer_ops dp_layer_dropout_ops = {
    .type = "dropout",
    .create = dropout_create,
    .init_params = dropout_init_params,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .flops = dropout_flops,
    .free = dropout_free,
};
