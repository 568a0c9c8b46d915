/* transformer_block.c - a pre-norm GPT block on [T, F] with its residuals inside:
 *   y1 = x + drop(MHA(LN1(x))),  y = y1 + drop(W2 gelu(W1 LN2(y1) + b1) + b2).
 *
 * Parameters, in order: ln1_gamma, ln1_beta [F]; the attention's eight tensors
 * in Keras layout (attention.h) with key_dim = F / num_heads; ln2_gamma,
 * ln2_beta [F]; ff1_kernel [F, ff], ff1_bias [ff], ff2_kernel [ff, F],
 * ff2_bias [F]. gelu is the tanh form.
 *
 * Dropout (training, rate > 0) scales the attention output and the
 * feed-forward output before each residual add. Element i of the row whose
 * training-set index is id is kept iff
 *   dp_rng_uniform(dp_rng_make_key(seed, 0xd70, layer index, step), id * 2TF + i) >= rate,
 * i < TF for the attention output and TF + i for the feed-forward output, so a
 * row gets the same masks whichever rank computes it (docs/DESIGN.md §5). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/fastmath.h"
#include "core/rng.h"
#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/init.h"
#include "layers/layer.h"
#include "layers/layer_norm.h"

#define DROPOUT_STREAM 0xd70
#define FF_ROWS 256  /* rows per feed-forward chunk: h and g 512 KiB each at ff 512 */
#define GELU_ROWS 64 /* rows of [ff] per chunk of gelu backward: 128 KiB at ff 512 */

/* Parameter indices in l->params. */
enum { LN1_G, LN1_B, ATTN, LN2_G = ATTN + 8, LN2_B, FF1_K, FF1_B, FF2_K, FF2_B };

typedef struct block_state {
    dp_attn attn;
    int T, F, ff, cap; /* cap: samples the buffers hold */
    float eps;
    double rate;
    /* Kept from forward, per position ([cap*T, width]): */
    float *ln1, *ln2;     /* [F] layer-norm outputs */
    float *mean1, *rstd1; /* [1] */
    float *mean2, *rstd2; /* [1] */
    float *y1;            /* [F] after the attention residual */
    float *h;             /* [ff] W1 LN2(y1) + b1, then gelu's slope there */
    float *g;             /* [ff] gelu(h); dL/dg in backward */
    float *mask;          /* [2F] 0 or 1/(1-rate), when rate > 0 */
    int masked;           /* the last forward applied the masks */
    float *dy1;           /* [F] backward: dL/dy1, or first the masked dL/dy */
} block_state;

static int block_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                        dp_error *err) {
    if (in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "transformer_block expects a sequence [steps, features], got %s; put "
                            "an embedding before it",
                            dp_shape_format(in, buf, sizeof buf));
    }
    int T = in->dim[0], F = in->dim[1], H = cfg->num_heads, ff = cfg->ff_dim;
    if (H < 1 || F % H != 0)
        return dp_error_set(err, cfg->where,
                            "transformer_block num_heads %d does not divide the %d features; "
                            "each head gets F / num_heads of them: pick a divisor of %d",
                            H, F, F);
    if (ff < 1)
        return dp_error_set(err, cfg->where, "transformer_block ff_dim must be >= 1, got %d", ff);
    if (!(cfg->rate >= 0.0 && cfg->rate < 1.0))
        return dp_error_set(err, cfg->where, "transformer_block dropout must be in [0, 1), got %g",
                            cfg->rate);
    if (!(cfg->epsilon > 0.0))
        return dp_error_set(err, cfg->where, "transformer_block epsilon must be > 0, got %g",
                            cfg->epsilon);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "transformer_block needs a batch size >= 1, got %d",
                            max_batch);
    int Dk = F / H;
    l->in_shape = *in;
    l->out_shape = *in;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    const int k1[2] = {F, ff}, k2[2] = {ff, F};
    dp_layer_add_param(l, "ln1_gamma", 1, &F);
    dp_layer_add_param(l, "ln1_beta", 1, &F);
    dp_attn_add_params(l, F, H, Dk);
    dp_layer_add_param(l, "ln2_gamma", 1, &F);
    dp_layer_add_param(l, "ln2_beta", 1, &F);
    dp_layer_add_param(l, "ff1_kernel", 2, k1);
    dp_layer_add_param(l, "ff1_bias", 1, &ff);
    dp_layer_add_param(l, "ff2_kernel", 2, k2);
    dp_layer_add_param(l, "ff2_bias", 1, &F);

    block_state *st = DP_CALLOC(1, sizeof *st);
    dp_attn_init(&st->attn, T, F, H, Dk, cfg->causal, max_batch);
    st->T = T, st->F = F, st->ff = ff, st->cap = max_batch;
    st->eps = (float)cfg->epsilon;
    st->rate = cfg->rate;
    size_t N = (size_t)max_batch * T, nf = N * F * sizeof(float);
    st->ln1 = DP_MALLOC(nf), st->ln2 = DP_MALLOC(nf), st->y1 = DP_MALLOC(nf);
    st->dy1 = DP_MALLOC(nf);
    st->mean1 = DP_MALLOC(N * sizeof(float)), st->rstd1 = DP_MALLOC(N * sizeof(float));
    st->mean2 = DP_MALLOC(N * sizeof(float)), st->rstd2 = DP_MALLOC(N * sizeof(float));
    st->h = DP_MALLOC(N * ff * sizeof(float)), st->g = DP_MALLOC(N * ff * sizeof(float));
    if (st->rate > 0.0) st->mask = DP_MALLOC(2 * nf);
    l->state = st;
    return 0;
}

/* Layer norms: gamma 1, beta 0. Kernels: Keras glorot_uniform (the attention's
 * with Keras's fans for its 3-D kernels), biases 0. Value i of the slice is
 * drawn at counter i of key. */
static void block_init_params(dp_layer *l, float *params, uint64_t key) {
    block_state *st = l->state;
    const dp_attn *a = &st->attn;
    memset(params, 0, l->param_count * sizeof *params);
    for (int i = 0; i < st->F; i++) {
        params[l->params[LN1_G].offset + i] = 1.0f;
        params[l->params[LN2_G].offset + i] = 1.0f;
    }
    size_t at = l->params[ATTN].offset;
    dp_attn_init_params(a->F, a->H, a->Dk, params + at, key, at);
    float lim = (float)sqrt(6.0 / (st->F + st->ff));
    const size_t k1 = l->params[FF1_K].offset, k2 = l->params[FF2_K].offset;
    dp_init_uniform(params + k1, l->params[FF1_K].numel, lim, key, k1);
    dp_init_uniform(params + k2, l->params[FF2_K].numel, lim, key, k2);
}

/* mask[B, 2TF]: the scales 0 or 1/(1-rate) of both dropouts, per sample row. */
static void make_masks(float *mask, int B, size_t n, double rate, int index,
                       const dp_fwd_ctx *ctx) {
    const float r = (float)rate, keep = (float)(1.0 / (1.0 - rate));
    uint64_t key = dp_rng_make_key(ctx->seed, DROPOUT_STREAM, (uint64_t)index, (uint64_t)ctx->step);
    for (int b = 0; b < B; b++) {
        uint64_t id = ctx->row_ids ? ctx->row_ids[b] : (uint64_t)b;
        float *m = mask + (size_t)b * n;
        dp_rng_uniform_fill(key, id * n, m, n);
        for (size_t i = 0; i < n; i++) m[i] = m[i] >= r ? keep : 0.0f;
    }
}

/* out[b, t, :] = base + add * (mask half `half` of sample b, or 1), over B
 * samples. Elementwise, so out may alias add. */
static void residual_add(float *out, const float *base, const float *add, const float *mask,
                         int half, int B, size_t tf) {
    if (!mask) {
        for (size_t i = 0; i < (size_t)B * tf; i++) out[i] = base[i] + add[i];
        return;
    }
    for (int b = 0; b < B; b++) {
        const float *m = mask + (size_t)b * 2 * tf + (size_t)half * tf;
        size_t o = (size_t)b * tf;
        for (size_t i = 0; i < tf; i++) out[o + i] = base[o + i] + add[o + i] * m[i];
    }
}

/* out = d * (mask half `half`), per sample. */
static void apply_mask(float *out, const float *d, const float *mask, int half, int B, size_t tf) {
    for (int b = 0; b < B; b++) {
        const float *m = mask + (size_t)b * 2 * tf + (size_t)half * tf;
        size_t o = (size_t)b * tf;
        for (size_t i = 0; i < tf; i++) out[o + i] = d[o + i] * m[i];
    }
}

/* d[n] *= slope[n]: gelu's backward from the slope its forward kept. */
static void mul_slope(float *restrict d, const float *restrict slope, size_t n) {
    for (size_t i = 0; i < n; i += DP_PREFETCH_BLOCK) {
        dp_prefetch_read(slope, i, n);
        size_t end = i + DP_PREFETCH_BLOCK < n ? i + DP_PREFETCH_BLOCK : n;
        for (size_t j = i; j < end; j++) d[j] *= slope[j];
    }
}

#define PARAM(base, i) ((base) + l->params[i].offset)

static void block_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                          const dp_fwd_ctx *ctx) {
    block_state *st = l->state;
    const int F = st->F, ff = st->ff, N = B * st->T;
    const size_t tf = (size_t)st->T * F;
    st->masked = ctx && ctx->training && st->rate > 0.0;
    const float *mask = st->masked ? st->mask : NULL;
    if (mask) make_masks(st->mask, B, 2 * tf, st->rate, l->index, ctx);

    /* y holds the attention output, then the feed-forward output, until the
     * second residual add turns it into the block's output in place. */
    dp_layernorm_forward(st->ln1, st->mean1, st->rstd1, x, PARAM(params, LN1_G),
                         PARAM(params, LN1_B), N, F, st->eps);
    dp_attn_forward(&st->attn, PARAM(params, ATTN), st->ln1, y, B);
    residual_add(st->y1, x, y, mask, 0, B, tf);

    /* The feed-forward part in chunks of rows, so each chunk's h and g are
     * still in cache when gelu and the second product read them. */
    for (int r = 0; r < N; r += FF_ROWS) {
        int rows = N - r < FF_ROWS ? N - r : FF_ROWS;
        size_t at = (size_t)r * F, ah = (size_t)r * ff;
        dp_layernorm_forward(st->ln2 + at, st->mean2 + r, st->rstd2 + r, st->y1 + at,
                             PARAM(params, LN2_G), PARAM(params, LN2_B), rows, F, st->eps);
        dp_attn_affine(st->h + ah, st->ln2 + at, PARAM(params, FF1_K), PARAM(params, FF1_B), rows,
                       F, ff);
        dp_gelu_forward_slope(st->h + ah, st->g + ah, (size_t)rows * ff);
        dp_attn_affine(y + at, st->g + ah, PARAM(params, FF2_K), PARAM(params, FF2_B), rows, ff, F);
    }
    residual_add(y, st->y1, y, mask, 1, B, tf);
}

/* Consumes the forward's state (g becomes dL/dh, ln2 and the attention's
 * buffers scratch): one backward per forward, and no buffers of its own but
 * dy1. */
static void block_backward(dp_layer *l, const float *params, const float *x, const float *y,
                           const float *dy, float *dx, float *grads, int B) {
    (void)y;
    if (B <= 0) return;
    block_state *st = l->state;
    const int F = st->F, ff = st->ff, N = B * st->T;
    const size_t tf = (size_t)st->T * F;
    const float *mask = st->masked ? st->mask : NULL;

    /* Feed-forward: df = dL/d(W2 g + b2). */
    const float *df = dy;
    if (mask) {
        apply_mask(st->dy1, dy, mask, 1, B, tf);
        df = st->dy1;
    }
    dp_gemm(1, 0, ff, F, N, 1.0f, st->g, ff, df, F, 1.0f, PARAM(grads, FF2_K), F);
    dp_attn_colsum_add(PARAM(grads, FF2_B), df, N, F);
    float *dh = st->g; /* [N, ff]: dL/dg, then dL/dh in place */
    dp_gemm(0, 1, N, ff, F, 1.0f, df, F, PARAM(params, FF2_K), F, 0.0f, dh, ff);
    /* dh and its column sums chunk by chunk, while the chunk is in cache. */
    for (int r = 0; r < N; r += GELU_ROWS) {
        int rows = N - r < GELU_ROWS ? N - r : GELU_ROWS;
        float *dhr = dh + (size_t)r * ff;
        mul_slope(dhr, st->h + (size_t)r * ff, (size_t)rows * ff);
        dp_attn_colsum_add(PARAM(grads, FF1_B), dhr, rows, ff);
    }
    dp_gemm(1, 0, F, ff, N, 1.0f, st->ln2, F, dh, ff, 1.0f, PARAM(grads, FF1_K), ff);
    float *scratch = st->ln2; /* [N, F]: ln2 is read for the last time above */
    dp_gemm(0, 1, N, F, ff, 1.0f, dh, ff, PARAM(params, FF1_K), ff, 0.0f, scratch, F);

    /* dy1 = dy (the skip) + LN2's backward of dL/dln2. */
    dp_layernorm_backward(st->dy1, dy, PARAM(grads, LN2_G), PARAM(grads, LN2_B), scratch, st->y1,
                          st->mean2, st->rstd2, PARAM(params, LN2_G), N, F);

    /* Attention: scratch = dL/d(attention output), then dL/dln1 in place. */
    const float *datt = st->dy1;
    if (mask) {
        apply_mask(scratch, st->dy1, mask, 0, B, tf);
        datt = scratch;
    }
    dp_attn_backward(&st->attn, PARAM(params, ATTN), st->ln1, datt, scratch, PARAM(grads, ATTN), B);

    /* dx = dy1 (the skip) + LN1's backward. */
    dp_layernorm_backward(dx, st->dy1, PARAM(grads, LN1_G), PARAM(grads, LN1_B), scratch, x,
                          st->mean1, st->rstd1, PARAM(params, LN1_G), N, F);
}

static void block_free(dp_layer *l) {
    block_state *st = l->state;
    if (st) {
        dp_attn_free(&st->attn);
        free(st->ln1), free(st->ln2), free(st->y1), free(st->dy1);
        free(st->mean1), free(st->rstd1), free(st->mean2), free(st->rstd2);
        free(st->h), free(st->g), free(st->mask);
    }
    free(st);
    l->state = NULL;
}

/* Two layer norms (8 per value each, layer_norm.c), the attention, the
 * feed-forward pair with its biases, and the two residual additions. */
static double block_flops(const dp_layer *l) {
    const block_state *st = l->state;
    double T = st->T, F = st->F, ff = st->ff;
    return 16.0 * T * F + dp_attn_flops(st->T, st->F, st->attn.H, st->attn.Dk) +
           T * (4.0 * F * ff + ff + F) + 2.0 * T * F;
}

const dp_layer_ops dp_layer_transformer_block_ops = {
    .type = "transformer_block",
    .create = block_create,
    .init_params = block_init_params,
    .forward = block_forward,
    .backward = block_backward,
    .flops = block_flops,
    .free = block_free,
};
