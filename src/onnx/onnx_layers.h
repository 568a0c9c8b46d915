/* onnx_layers.h - (private) one ONNX emitter per dptrain layer type.
 *
 * An emitter appends the nodes that compute a layer's output, activation
 * included, from its input tensor x ([N, ...in_shape], float32; token ids
 * int32 [N, T] for an embedding), with the layer's parameters as
 * initializers, and returns the output's name ([N, ...out_shape]). Layouts
 * are dptrain's (Keras's, channels first for images), so each emitter says
 * how its weights map onto the ONNX operator's. */
#ifndef DPTRAIN_ONNX_LAYERS_H
#define DPTRAIN_ONNX_LAYERS_H

#include <stdint.h>

#include "dptrain/config.h"
#include "dptrain/error.h"
#include "layers/layer.h"
#include "onnx/onnx_graph.h"

/* w: the layer's slice of the parameter arena. Returns the output name, or
 * NULL with err set. */
typedef const char *(*ox_emit_fn)(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                                  const float *w, const char *x, dp_error *err);

/* The emitter of layer type `type`, or NULL when it cannot be exported. */
ox_emit_fn ox_find_emitter(const char *type);

/* y = act(x), elementwise or (softmax) over the last axis; linear returns x. */
const char *ox_emit_activation(ox_graph *g, dp_act act, const char *x);

/* y[..., n] = x[..., k] W[k, n] + b[n]; the initializers are named
 * "<name>kernel" and "<name>bias". */
const char *ox_emit_affine(ox_graph *g, const char *x, const float *W, const float *b, int k, int n,
                           const char *name);

/* LayerNormalization over the last axis of width F, epsilon eps. */
const char *ox_emit_layer_norm(ox_graph *g, const char *x, const float *gamma, const float *beta,
                               int F, float eps);

/* Parameter p of layer l in its slice w. */
static inline const float *ox_param(const dp_layer *l, const float *w, int p) {
    return w + l->params[p].offset;
}

/* The emitters, by file. */
#define OX_EMITTER(fn) \
    const char *fn(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w, \
                   const char *x, dp_error *err)
/* onnx_layers.c */
OX_EMITTER(ox_emit_dense);
OX_EMITTER(ox_emit_conv2d);
OX_EMITTER(ox_emit_maxpool2d);
OX_EMITTER(ox_emit_flatten);
OX_EMITTER(ox_emit_dropout);
/* onnx_recurrent.c */
OX_EMITTER(ox_emit_simple_rnn);
OX_EMITTER(ox_emit_lstm);
OX_EMITTER(ox_emit_gru);
/* onnx_sequence.c */
OX_EMITTER(ox_emit_embedding);
OX_EMITTER(ox_emit_positional_embedding);
OX_EMITTER(ox_emit_layer_norm_layer);
OX_EMITTER(ox_emit_global_average_pooling1d);
OX_EMITTER(ox_emit_multi_head_attention);
OX_EMITTER(ox_emit_transformer_block);

#endif
