/* layer.h - a layer is a small struct behind a const ops table (docs/DESIGN.md §3).
 *
 * Activations flow as [B, ...shape] float32 buffers owned by the model. A layer's
 * parameters and gradients are views into the model's flat arenas: `params` and
 * `grads` passed to forward/backward already point at this layer's slice.
 * Backward accumulates (+=) into grads and overwrites dx. */
#ifndef DPTRAIN_LAYER_H
#define DPTRAIN_LAYER_H

#include <stdint.h>
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/shape.h"

/* A transformer block has 16 tensors: two layer norms, four projections and
 * two feed-forward layers, each a kernel and a bias or a gamma and a beta. */
#define DP_LAYER_MAX_PARAMS 16

/* One named parameter tensor of a layer, e.g. "kernel" [in, out]. `offset` is
 * relative to the layer's slice of the arena. */
typedef struct dp_param_view {
    char name[32];
    dp_shape shape;
    size_t offset;
    size_t numel;
} dp_param_view;

typedef struct dp_layer dp_layer;

/* What a forward pass may depend on besides its input. Randomness (dropout) is
 * keyed by (seed, layer, step, row id), never drawn from a stream, so a row gets
 * the same mask whichever rank computes it. */
typedef struct dp_fwd_ctx {
    int training;            /* 1 during training steps: dropout active */
    uint64_t seed;           /* train.seed */
    long long step;          /* global step being computed */
    const uint64_t *row_ids; /* [B] each row's index in the training set, or NULL */
} dp_fwd_ctx;

typedef struct dp_layer_ops {
    const char *type;
    /* Checks cfg against the input shape, sets l->out_shape, l->params[], l->n_params
     * and allocates l->state for batches of up to max_batch rows. */
    int (*create)(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                  dp_error *err);
    /* Writes initial values into the layer's parameter slice (Keras defaults:
     * Glorot-uniform kernels, zero biases), drawing from rng key `key`. */
    void (*init_params)(dp_layer *l, float *params, uint64_t key);
    /* y[B, out] = f(x[B, in]). ctx->training enables dropout-like behaviour. */
    void (*forward)(dp_layer *l, const float *params, const float *x, float *y, int B,
                    const dp_fwd_ctx *ctx);
    /* Given x, y from forward and dy = dL/dy, adds dL/dparams into grads and writes
     * dx = dL/dx (dx may be NULL for the first layer: then it is not computed). */
    void (*backward)(dp_layer *l, const float *params, const float *x, const float *y,
                     const float *dy, float *dx, float *grads, int B);
    /* Optional. Offered the layer right after this one: returns 1 if this layer
     * will compute next's output itself (a conv2d pooling its own output, so
     * the unpooled values never go through memory), 0 to decline. After a 1 the
     * model calls forward with next's output buffer and backward with next's
     * output and its gradient, and never calls next's forward or backward. */
    int (*absorb)(dp_layer *l, const dp_layer *next, int max_batch);
    /* Optional. Forward FLOPs of one sample at inference: a multiply-add counts
     * 2, a bias or residual addition and a gate's elementwise product 1 each;
     * activation functions (softmax included) are not counted (docs/DESIGN.md
     * §3.2.2). */
    double (*flops)(const dp_layer *l);
    /* Frees l->state. */
    void (*free)(dp_layer *l);
} dp_layer_ops;

struct dp_layer {
    const dp_layer_ops *ops;
    char name[48]; /* "<index>_<type>", the checkpoint group name */
    int index;     /* position in the model, part of random keys */
    dp_shape in_shape, out_shape;
    dp_act activation; /* applied at the end of forward; the model may set it to
                             linear when the loss fuses it (sigmoid/softmax + CE) */
    int n_params;
    dp_param_view params[DP_LAYER_MAX_PARAMS];
    size_t param_offset; /* start of this layer's slice in the arenas */
    size_t param_count;
    void *state;
};

/* Appends parameter tensor `name` of shape dims[ndim] to the layer's slice,
 * right after the tensors added before it: sets its view and grows
 * l->n_params and l->param_count. At most DP_LAYER_MAX_PARAMS per layer. */
void dp_layer_add_param(dp_layer *l, const char *name, int ndim, const int *dims);

/* Finds the ops table for a layer type name, or NULL. */
const dp_layer_ops *dp_layer_find_ops(const char *type);

/* Comma-separated list of the known layer types, for error messages. */
const char *dp_layer_list_types(void);

extern const dp_layer_ops dp_layer_dense_ops;     /* src/layers/dense.c */
extern const dp_layer_ops dp_layer_conv2d_ops;    /* src/layers/conv2d.c */
extern const dp_layer_ops dp_layer_maxpool2d_ops; /* src/layers/maxpool2d.c */
extern const dp_layer_ops dp_layer_flatten_ops;   /* src/layers/flatten.c */
extern const dp_layer_ops dp_layer_dropout_ops;   /* src/layers/dropout.c */

/* Sequence layers over [T, F] samples (embedding: token ids [T]). */
extern const dp_layer_ops dp_layer_embedding_ops;                /* src/layers/embedding.c */
extern const dp_layer_ops dp_layer_positional_embedding_ops;     /* positional_embedding.c */
extern const dp_layer_ops dp_layer_simple_rnn_ops;               /* src/layers/simple_rnn.c */
extern const dp_layer_ops dp_layer_lstm_ops;                     /* src/layers/lstm.c */
extern const dp_layer_ops dp_layer_gru_ops;                      /* src/layers/gru.c */
extern const dp_layer_ops dp_layer_layer_norm_ops;               /* src/layers/layer_norm.c */
extern const dp_layer_ops dp_layer_multi_head_attention_ops;     /* src/layers/attention.c */
extern const dp_layer_ops dp_layer_transformer_block_ops;        /* transformer_block.c */
extern const dp_layer_ops dp_layer_global_average_pooling1d_ops; /* global_average_pooling1d.c */

#endif
