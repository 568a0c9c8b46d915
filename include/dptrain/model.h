/* model.h - a sequential model over flat parameter and gradient arenas. */
#ifndef DPTRAIN_MODEL_H
#define DPTRAIN_MODEL_H

#include <stdint.h>
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/layer.h"

typedef struct dp_model {
    int n_layers;
    dp_layer layers[DP_MAX_LAYERS];
    dp_shape in_shape, out_shape;
    int max_batch;
    size_t n_params;
    float *params;        /* [n_params] every layer's weights, one after another */
    float *grads;         /* [n_params] same layout */
    float *acts[DP_MAX_LAYERS]; /* acts[i]: output of layer i [max_batch, numel(out_i)];
                                   NULL when layer i + 1 is absorbed */
    int absorbed[DP_MAX_LAYERS];  /* layer i's work is done by layer i - 1 (layer.h) */
    float *dbuf[2];       /* [max_batch, widest activation] backward ping-pong */
    dp_loss_kind loss;
    int fused;            /* last activation folded into the loss */
} dp_model;

/* Builds the layers of cfg->model for batches of up to max_batch rows, checks
 * every shape and the loss against the output layer, and allocates the arenas
 * (zeroed). Returns 0 or -1 with err set (where = the layer's config place). */
int model_build(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err);

/* As model_build, but every layer computes its own output (no layer absorbs
 * the next, layer.h), so each acts[i] exists: the plain reference the fused
 * paths are tested against. */
int model_build_unfused(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err);

/* Initializes every layer's parameters from seed (key = seed, layer index). */
void model_init_params(dp_model *m, uint64_t seed);

/* Runs the layers on x[B, in]; returns the output [B, out] (logits when fused),
 * which stays valid until the next forward. B <= max_batch. ctx NULL means
 * inference. */
const float *model_forward(dp_model *m, const float *x, int B, const dp_fwd_ctx *ctx);

/* Back-propagates dout[B, out] through the activations of the last forward and
 * adds the parameter gradients into m->grads. Layers before the first one with
 * parameters are skipped: no input gradient is needed there. */
void model_backward(dp_model *m, const float *x, const float *dout, int B);

/* As model_backward, calling after(ctx, i) as soon as layer i's parameter
 * gradients are complete (layers run last to first), so their reduction can
 * start while the earlier layers are still back-propagating. */
void model_backward_hooked(dp_model *m, const float *x, const float *dout, int B,
                           void (*after)(void *ctx, int layer), void *ctx);

/* Number of parameter tensors (a dense layer's kernel and bias are two). When
 * off and len are not NULL, fills off[t] and len[t], each tensor's offset in
 * the arenas and its element count, in arena order. */
int model_list_tensors(const dp_model *m, size_t *off, size_t *len);

/* Number of output values per row. */
int model_output_width(const dp_model *m);

/* 64-bit FNV-1a hash of the parameter bytes, for replica checks. */
uint64_t model_hash_params(const dp_model *m);

/* Frees everything model_build allocated. Safe on a zeroed struct. */
void model_free(dp_model *m);

#endif
