/* model.h - (private) the model's layout, and the training side of its API:
 * forward with a training context, backward, and the arenas' tensor list. */
#ifndef DPTRAIN_NN_MODEL_H
#define DPTRAIN_NN_MODEL_H

#include <stdint.h>
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/model.h"
#include "layers/layer.h"

struct dp_model {
    int n_layers;
    dp_layer layers[DP_MAX_LAYERS];
    dp_shape in_shape, out_shape;
    int max_batch;
    size_t n_params;
    float *params;               /* [n_params] every layer's weights, one after another */
    float *grads;                /* [n_params] same layout */
    float *acts[DP_MAX_LAYERS];  /* acts[i]: output of layer i [max_batch, numel(out_i)];
                                   NULL when layer i + 1 is absorbed */
    int absorbed[DP_MAX_LAYERS]; /* layer i's work is done by layer i - 1 (layer.h) */
    float *dbuf[2];              /* [max_batch, widest activation] backward ping-pong */
    dp_loss_kind loss;
    /* The loss sees each sample as `positions` rows of `classes` values: a
     * sequence output [T, K] is T positions of K (a language model's logits per
     * token), any other output one row of all its values. */
    int positions, classes;
    int fused;    /* last activation folded into the loss */
    float *probs; /* [max_batch, out] dp_model_predict's output when fused */
};

/* Builds the layers of cfg->model for batches of up to max_batch rows, checks
 * every shape and the loss against the output layer, and allocates the arenas
 * (zeroed). Returns 0 or -1 with err set (where = the layer's config place). */
int dp_model_build(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err);

/* As dp_model_build, but every layer computes its own output (no layer absorbs
 * the next, layer.h), so each acts[i] exists: the plain reference the fused
 * paths are tested against. */
int dp_model_build_unfused(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err);

/* Runs the layers on x[B, in]; returns the output [B, out] (logits when fused),
 * which stays valid until the next forward. B <= max_batch. ctx NULL means
 * inference. */
const float *dp_model_forward(dp_model *m, const float *x, int B, const dp_fwd_ctx *ctx);

/* Back-propagates dout[B, out] through the activations of the last forward and
 * adds the parameter gradients into m->grads. Layers before the first one with
 * parameters are skipped: no input gradient is needed there. */
void dp_model_backward(dp_model *m, const float *x, const float *dout, int B);

/* As dp_model_backward, calling after(ctx, i) as soon as layer i's parameter
 * gradients are complete (layers run last to first), so their reduction can
 * start while the earlier layers are still back-propagating. */
void dp_model_backward_hooked(dp_model *m, const float *x, const float *dout, int B,
                              void (*after)(void *ctx, int layer), void *ctx);

/* Number of parameter tensors (a dense layer's kernel and bias are two). When
 * off and len are not NULL, fills off[t] and len[t], each tensor's offset in
 * the arenas and its element count, in arena order. */
int dp_model_list_tensors(const dp_model *m, size_t *off, size_t *len);

/* Frees everything dp_model_build allocated. Safe on a zeroed struct. */
void dp_model_free(dp_model *m);

#endif
