/* embedding.c - token ids [T] to rows of a learned table [T, output_dim], Keras layout.
 *
 * Parameters in the layer's slice: embeddings [input_dim, output_dim]. The ids
 * arrive as float32 in the activation buffer (the data reader converts int32
 * token ids, exact below 2^24). The layer must come first: ids are not
 * differentiable, so nothing before it could learn, and only the first layer
 * sees the data as stored. */
#include "layers/init.h"
#include "layers/layer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Token ids travel as float32, which holds every integer up to 2^24 exactly. */
#define EMBEDDING_MAX_INPUT_DIM (1 << 24)

static int embedding_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                            dp_error *err) {
    (void)max_batch;
    char buf[96];
    if (l->index != 0)
        return dp_error_set(err, cfg->where,
                            "embedding takes token ids, so it must be the first layer");
    if (in->ndim != 1)
        return dp_error_set(err, cfg->where,
                            "embedding expects token ids [T] (model.input: [T]), got %s",
                            dp_shape_format(in, buf, sizeof buf));
    if (cfg->input_dim <= 0 || cfg->output_dim <= 0)
        return dp_error_set(err, cfg->where,
                            "embedding input_dim and output_dim must be positive, got %d and %d",
                            cfg->input_dim, cfg->output_dim);
    if (cfg->input_dim > EMBEDDING_MAX_INPUT_DIM)
        return dp_error_set(err, cfg->where,
                            "embedding input_dim %d is above %d, the largest vocabulary whose "
                            "ids float32 holds exactly",
                            cfg->input_dim, EMBEDDING_MAX_INPUT_DIM);
    l->in_shape = *in;
    l->out_shape.ndim = 2;
    l->out_shape.dim[0] = in->dim[0];
    l->out_shape.dim[1] = cfg->output_dim;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    const int dims[2] = {cfg->input_dim, cfg->output_dim};
    dp_layer_add_param(l, "embeddings", 2, dims);
    /* The initializer, for init_params: 0 for Keras's uniform, else the stddev. */
    double *stddev = DP_MALLOC(sizeof *stddev);
    *stddev = cfg->embeddings_normal ? cfg->stddev : 0.0;
    l->state = stddev;
    return 0;
}

/* Keras Embedding's default, uniform(-0.05, 0.05), or N(0, stddev^2) as
 * Keras's RandomNormal(stddev) and, at stddev 1, PyTorch's nn.Embedding. The
 * size of the first vectors matters: at 0.05 the recurrent language models
 * start from inputs twenty times smaller than PyTorch's, and learn slower. */
static void embedding_init_params(dp_layer *l, float *params, uint64_t key) {
    double stddev = *(const double *)l->state;
    float *w = params + l->params[0].offset;
    if (stddev > 0.0) dp_init_normal(w, l->params[0].numel, stddev, key);
    else dp_init_uniform(w, l->params[0].numel, 0.05f, key, 0);
}

/* The table row of id v, or -1 when v is not an id in [0, V) (NaN included). */
static inline int embedding_row(float v, int V) {
    return v >= 0.0f && v < (float)V ? (int)v : -1;
}

/* y[N, F] = table[ids[n], :] for the N = B*T positions. An id outside [0, V)
 * gives a zero vector and no gradient: the data reader rejects such ids, this
 * only keeps the read inside the table. */
static void embedding_forward_kernel(float *y, const float *ids, const float *table, int N, int V,
                                     int F) {
    for (int n = 0; n < N; n++) {
        int r = embedding_row(ids[n], V);
        float *yn = y + (size_t)n * F;
        if (r < 0) memset(yn, 0, (size_t)F * sizeof *yn);
        else memcpy(yn, table + (size_t)r * F, (size_t)F * sizeof *yn);
    }
}

/* dtable[V, F] += dy[n, :] at row ids[n], positions in order, so a repeated id
 * sums its gradients in the same order on every run. */
static void embedding_backward_kernel(float *dtable, const float *ids, const float *dy, int N,
                                      int V, int F) {
    for (int n = 0; n < N; n++) {
        int r = embedding_row(ids[n], V);
        if (r < 0) continue;
        float *dr = dtable + (size_t)r * F;
        const float *dyn = dy + (size_t)n * F;
        for (int f = 0; f < F; f++) dr[f] += dyn[f];
    }
}

static void embedding_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                              const dp_fwd_ctx *ctx) {
    (void)ctx;
    int V = l->params[0].shape.dim[0], F = l->params[0].shape.dim[1];
    embedding_forward_kernel(y, x, params + l->params[0].offset, B * l->in_shape.dim[0], V, F);
}

/* dx is never written: token ids have no gradient, and as the first layer
 * the model passes NULL. */
static void embedding_backward(dp_layer *l, const float *params, const float *x, const float *y,
                               const float *dy, float *dx, float *grads, int B) {
    (void)params, (void)y, (void)dx;
    int V = l->params[0].shape.dim[0], F = l->params[0].shape.dim[1];
    embedding_backward_kernel(grads + l->params[0].offset, x, dy, B * l->in_shape.dim[0], V, F);
}

static void embedding_free(dp_layer *l) {
    free(l->state);
    l->state = NULL;
}

/* A table lookup: no arithmetic. */
static double embedding_flops(const dp_layer *l) {
    (void)l;
    return 0.0;
}

const dp_layer_ops dp_layer_embedding_ops = {
    .type = "embedding",
    .create = embedding_create,
    .init_params = embedding_init_params,
    .forward = embedding_forward,
    .backward = embedding_backward,
    .flops = embedding_flops,
    .free = embedding_free,
};
