/* dense.c - fully connected layer: y = act(x W + b), Keras layout.
 *
 * Parameters in the layer's slice: kernel [in, out] at 0, then bias [out].
 * On a sequence [T, F] it applies to the last axis at every position, as Keras
 * does: the B*T positions are the rows of one GEMM. */
#include "core/blas.h"
#include "layers/activation.h"
#include "core/alloc.h"
#include "layers/layer.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dense_state {
    float *dz; /* [cap, out] scratch for dL/d(x W + b) */
    float *z;  /* [cap, out] x W + b, kept for activations that need it (gelu) */
    int cap;   /* rows of dz and z: max_batch * steps (callers keep B <= max_batch) */
    int steps; /* positions per sample: T for [T, F] input, else 1 */
} dense_state;

static int dense_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                        dp_error *err) {
    if (in->ndim != 1 && in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "dense expects [features] or a sequence [steps, features], got %s; "
                            "add a flatten layer before it",
                            dp_shape_format(in, buf, sizeof buf));
    }
    if (cfg->units <= 0)
        return dp_error_set(err, cfg->where, "dense units must be a positive integer, got %d",
                            cfg->units);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "dense needs a batch size >= 1, got %d", max_batch);
    int steps = in->ndim == 2 ? in->dim[0] : 1;
    int nin = in->dim[in->ndim - 1], nout = cfg->units;
    l->in_shape = *in;
    l->out_shape = *in;
    l->out_shape.dim[in->ndim - 1] = nout;
    l->activation = cfg->activation;
    l->n_params = 0;
    l->param_count = 0;
    const int kdims[2] = {nin, nout};
    dp_layer_add_param(l, "kernel", 2, kdims);
    dp_layer_add_param(l, "bias", 1, &nout);
    dense_state *st = DP_CALLOC(1, sizeof *st);
    st->steps = steps;
    st->cap = max_batch * steps;
    st->dz = DP_MALLOC((size_t)st->cap * nout * sizeof(float));
    if (dp_activation_needs_input(cfg->activation))
        st->z = DP_MALLOC((size_t)st->cap * nout * sizeof(float));
    l->state = st;
    return 0;
}

/* Glorot uniform: U(-limit, limit), limit = sqrt(6 / (in + out)); bias 0. */
static void dense_init_params(dp_layer *l, float *params, uint64_t key) {
    int nin = l->params[0].shape.dim[0], nout = l->params[0].shape.dim[1];
    float limit = (float)sqrt(6.0 / (nin + nout));
    float *w = params + l->params[0].offset; /* [in, out] */
    float *b = params + l->params[1].offset; /* [out] */
    for (size_t i = 0; i < l->params[0].numel; i++)
        w[i] = (2.0f * dp_rng_uniform(key, i) - 1.0f) * limit;
    memset(b, 0, l->params[1].numel * sizeof *b);
}

/* The kernels, llm.c style: raw pointers, shapes in the comments. */

/* y[B, out] = x[B, in] w[in, out] + b[out] */
static void dense_forward_kernel(float *y, const float *x, const float *w, const float *b, int B,
                                 int nin, int nout) {
    dp_gemm(0, 0, B, nout, nin, 1.0f, x, nin, w, nout, 0.0f, y, nout);
    for (int r = 0; r < B; r++) {
        float *yr = y + (size_t)r * nout;
        for (int j = 0; j < nout; j++) yr[j] += b[j];
    }
}

/* dw[in, out] += x^T dz; db[out] += column sums of dz[B, out];
 * dx[B, in] = dz w^T unless dx is NULL. */
static void dense_backward_kernel(float *dx, float *dw, float *db, const float *dz, const float *x,
                                  const float *w, int B, int nin, int nout) {
    dp_gemm(1, 0, nin, nout, B, 1.0f, x, nin, dz, nout, 1.0f, dw, nout);
    for (int r = 0; r < B; r++) {
        const float *dzr = dz + (size_t)r * nout;
        for (int j = 0; j < nout; j++) db[j] += dzr[j];
    }
    if (dx) dp_gemm(0, 1, B, nin, nout, 1.0f, dz, nout, w, nout, 0.0f, dx, nin);
}

static void dense_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                          const dp_fwd_ctx *ctx) {
    (void)ctx;
    int nin = l->params[0].shape.dim[0], nout = l->params[0].shape.dim[1];
    dense_state *st = l->state;
    B *= st->steps; /* positions are rows */
    dense_forward_kernel(y, x, params + l->params[0].offset, params + l->params[1].offset, B, nin,
                         nout);
    if (st->z) memcpy(st->z, y, (size_t)B * nout * sizeof(float));
    dp_activation_forward(l->activation, y, (size_t)B, (size_t)nout);
}

static void dense_backward(dp_layer *l, const float *params, const float *x, const float *y,
                           const float *dy, float *dx, float *grads, int B) {
    if (B <= 0) return;
    int nin = l->params[0].shape.dim[0], nout = l->params[0].shape.dim[1];
    dense_state *st = l->state;
    B *= st->steps;       /* positions are rows */
    const float *dz = dy; /* [B, out]; dL/dy is dL/dz when the activation is linear */
    if (l->activation != DP_ACT_LINEAR) {
        dp_activation_backward(l->activation, st->z ? st->z : y, dy, st->dz, (size_t)B,
                               (size_t)nout);
        dz = st->dz;
    }
    dense_backward_kernel(dx, grads + l->params[0].offset, grads + l->params[1].offset, dz, x,
                          params + l->params[0].offset, B, nin, nout);
}

static void dense_free(dp_layer *l) {
    dense_state *st = l->state;
    if (st) {
        free(st->dz);
        free(st->z);
    }
    free(st);
    l->state = NULL;
}

/* Per position: x W (in x out multiply-adds) and the bias. */
static double dense_flops(const dp_layer *l) {
    double nin = l->params[0].shape.dim[0], nout = l->params[0].shape.dim[1];
    double positions = l->in_shape.ndim == 2 ? l->in_shape.dim[0] : 1;
    return positions * (2.0 * nin * nout + nout);
}

const dp_layer_ops dp_layer_dense_ops = {
    .type = "dense",
    .create = dense_create,
    .init_params = dense_init_params,
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
    .free = dense_free,
};
