/* layer_norm.c - Keras LayerNormalization over the last axis of [F] or [T, F].
 *
 * Parameters: gamma [F] (ones) at 0, then beta [F] (zeros). Every position is
 * one row: the mean and the biased variance are taken over its F values, and
 * epsilon sits inside the square root, as Keras does. */
#include "layers/layer_norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "layers/layer.h"

/* The row sums run in LANES interleaved double partial sums: a fixed order (a
 * row's result never depends on the batch) that vectorizes, where a single
 * running sum would wait on every add. */
#define LANES 8

/* sum of x[0..n) */
static double sum_row(const float *x, int n) {
    double acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    double s = 0.0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

/* sum of (x[i] - mu)^2 over [0, n) */
static double sumsq_row(const float *x, int n, double mu) {
    double acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            double d = x[i + j] - mu;
            acc[j] += d * d;
        }
    double s = 0.0;
    for (; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

void dp_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int N, int F, float eps) {
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * F;
        float *yr = y + (size_t)r * F;
        /* Two passes in double: the mean first, so the variance does not
         * cancel catastrophically when |mean| >> std. */
        double mu = sum_row(xr, F) / F, v = sumsq_row(xr, F, mu);
        float m = (float)mu, rs = (float)(1.0 / sqrt(v / F + (double)eps));
        for (int i = 0; i < F; i++) yr[i] = (xr[i] - m) * rs * gamma[i] + beta[i];
        mean[r] = m;
        rstd[r] = rs;
    }
}

/* With xhat = (x - mean) rstd and g = dy gamma:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)). */
void dp_layernorm_backward(float *dx, const float *skip, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *mean, const float *rstd,
                           const float *gamma, int N, int F) {
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * F, *dyr = dy + (size_t)r * F;
        const float m = mean[r], rs = rstd[r];
        for (int i = 0; i < F; i++) {
            dgamma[i] += dyr[i] * ((xr[i] - m) * rs);
            dbeta[i] += dyr[i];
        }
        if (!dx) continue;
        /* sums of g and g xhat, as in sum_row */
        double sg[LANES] = {0}, sgx[LANES] = {0};
        int i = 0;
        for (; i + LANES <= F; i += LANES)
            for (int j = 0; j < LANES; j++) {
                float g = dyr[i + j] * gamma[i + j];
                sg[j] += g;
                sgx[j] += (double)g * ((xr[i + j] - m) * rs);
            }
        for (; i < F; i++) {
            float g = dyr[i] * gamma[i];
            sg[0] += g;
            sgx[0] += (double)g * ((xr[i] - m) * rs);
        }
        double tg = 0.0, tgx = 0.0;
        for (int j = 0; j < LANES; j++) tg += sg[j], tgx += sgx[j];
        float *dxr = dx + (size_t)r * F;
        const float mg = (float)(tg / F), mgx = (float)(tgx / F);
        const float *sr = skip ? skip + (size_t)r * F : NULL;
        for (i = 0; i < F; i++) {
            float xhat = (xr[i] - m) * rs;
            dxr[i] = (sr ? sr[i] : 0.0f) + rs * (dyr[i] * gamma[i] - mg - xhat * mgx);
        }
    }
}

typedef struct layer_norm_state {
    float *mean, *rstd; /* [cap] per position, from the last forward */
    int cap;            /* positions: max_batch * steps */
    int steps;          /* T for [T, F] input, else 1 */
    float eps;
} layer_norm_state;

static int layer_norm_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in,
                             int max_batch, dp_error *err) {
    if (in->ndim != 1 && in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "layer_norm expects [features] or a sequence [steps, features], got "
                            "%s; add a flatten layer before it",
                            dp_shape_format(in, buf, sizeof buf));
    }
    if (!(cfg->epsilon > 0.0))
        return dp_error_set(err, cfg->where, "layer_norm epsilon must be > 0, got %g",
                            cfg->epsilon);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "layer_norm needs a batch size >= 1, got %d",
                            max_batch);
    int F = in->dim[in->ndim - 1];
    l->in_shape = *in;
    l->out_shape = *in;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    dp_layer_add_param(l, "gamma", 1, &F);
    dp_layer_add_param(l, "beta", 1, &F);
    layer_norm_state *st = DP_CALLOC(1, sizeof *st);
    st->steps = in->ndim == 2 ? in->dim[0] : 1;
    st->cap = max_batch * st->steps;
    st->eps = (float)cfg->epsilon;
    st->mean = DP_MALLOC((size_t)st->cap * sizeof(float));
    st->rstd = DP_MALLOC((size_t)st->cap * sizeof(float));
    l->state = st;
    return 0;
}

/* Keras: gamma ones, beta zeros. */
static void layer_norm_init_params(dp_layer *l, float *params, uint64_t key) {
    (void)key;
    float *gamma = params + l->params[0].offset, *beta = params + l->params[1].offset;
    for (size_t i = 0; i < l->params[0].numel; i++) gamma[i] = 1.0f;
    memset(beta, 0, l->params[1].numel * sizeof *beta);
}

static void layer_norm_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                               const dp_fwd_ctx *ctx) {
    (void)ctx;
    layer_norm_state *st = l->state;
    int F = l->params[0].shape.dim[0];
    dp_layernorm_forward(y, st->mean, st->rstd, x, params + l->params[0].offset,
                         params + l->params[1].offset, B * st->steps, F, st->eps);
}

static void layer_norm_backward(dp_layer *l, const float *params, const float *x, const float *y,
                                const float *dy, float *dx, float *grads, int B) {
    (void)y;
    if (B <= 0) return;
    layer_norm_state *st = l->state;
    int F = l->params[0].shape.dim[0], N = B * st->steps;
    dp_layernorm_backward(dx, NULL, grads + l->params[0].offset, grads + l->params[1].offset, dy, x,
                          st->mean, st->rstd, params + l->params[0].offset, N, F);
}

static void layer_norm_free(dp_layer *l) {
    layer_norm_state *st = l->state;
    if (st) free(st->mean), free(st->rstd);
    free(st);
    l->state = NULL;
}

/* Per value: 1 for the mean, 3 for the variance (subtract, square, add), 2 to
 * normalize (subtract, scale), 2 for gamma and beta. */
static double layer_norm_flops(const dp_layer *l) {
    return 8.0 * (double)dp_shape_numel(&l->in_shape);
}

const dp_layer_ops dp_layer_layer_norm_ops = {
    .type = "layer_norm",
    .create = layer_norm_create,
    .init_params = layer_norm_init_params,
    .forward = layer_norm_forward,
    .backward = layer_norm_backward,
    .flops = layer_norm_flops,
    .free = layer_norm_free,
};
