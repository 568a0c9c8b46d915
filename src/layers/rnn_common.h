/* rnn_common.h - (private) what the recurrent layers share: config
 * checks, elementwise activations on one row and their slopes from outputs.
 *
 * Layout of simple_rnn and gru: activations stay batch-major as the model
 * passes them ([B, T, k] rows, position (b, t) at row b*T + t), so the input
 * projection, the weight gradients and dx are single GEMMs over all B*T rows.
 * A time step's B rows are then a strided matrix (row stride T*k), which
 * the step product takes as its leading dimension, so no transposes are
 * needed. */
#ifndef DPTRAIN_LAYERS_RNN_COMMON_H
#define DPTRAIN_LAYERS_RNN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/shape.h"
#include "layers/layer.h"

/* Checks a recurrent layer's config against its input: a sequence [T, F],
 * units >= 1, max_batch >= 1, activation (and, if gated, recurrent_activation)
 * elementwise. Returns 0, or -1 with err set at cfg->where. */
int dp_rnn_check(const char *type, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                 int gated, dp_error *err);

/* Output shape: [T, units] with return_sequences, else [units]. */
dp_shape dp_rnn_out_shape(const dp_layer_cfg *cfg, const dp_shape *in);

/* What simple_rnn's and gru's states both hold; each embeds it first. */
typedef struct dp_rnn_core {
    int T, F, u, seq; /* steps, features, units, return_sequences */
    dp_act act, ract;
    float *hp; /* [cap, T, u] h_{t-1} at each position (zeros at t = 0) */
    float *dh; /* [cap, u] dL/dh_t flowing back from step t + 1 */
    float *pk; /* U packed for the forward steps, U^T for the backward ones */
    float *sb; /* backward: bias gradient sums */
} dp_rnn_core;

/* create's shared part for a layer of `gates` blocks of u units: checks cfg
 * (dp_rnn_check, gated when gates > 1), sets l's shapes and linear
 * activation, adds kernel [F, gates u], recurrent_kernel [u, gates u] and
 * bias [gates u] (bias_rows 1) or [bias_rows, gates u], and fills c with its
 * buffers for max_batch rows (sb_floats floats of sb). Returns 0, or -1 with
 * err set and nothing allocated. */
int dp_rnn_core_create(dp_layer *l, dp_rnn_core *c, const char *type, const dp_layer_cfg *cfg,
                       const dp_shape *in, int max_batch, int gates, int bias_rows,
                       size_t sb_floats, dp_error *err);

/* Keras defaults for those three tensors: glorot_uniform kernel, orthogonal
 * recurrent kernel over the whole [u, gates u], zero biases. */
void dp_rnn_core_init_params(const dp_layer *l, const dp_rnn_core *c, float *params, uint64_t key);

void dp_rnn_core_free(dp_rnn_core *c);

/* Offset of h_t of sample b in the output (rows [B, T, u] or [B, u]), or -1
 * when step t is not an output. */
static inline ptrdiff_t dp_rnn_out_off(const dp_rnn_core *c, int b, int t) {
    if (c->seq) return ((ptrdiff_t)b * c->T + t) * c->u;
    return t == c->T - 1 ? (ptrdiff_t)b * c->u : -1;
}

/* 1 if act can be a recurrent layer's activation: linear, relu, sigmoid or
 * tanh (elementwise, with its slope a function of its output). */
int dp_rnn_act_ok(dp_act act);

/* v[n] = act(v[n]) in place; act is linear, relu, sigmoid or tanh, the last
 * two by dp_sigmoidf and dp_tanhf (core/fastmath.h). */
void dp_rnn_activate(dp_act act, float *v, int n);

/* d act / dz expressed through the output y = act(z), as
 * c0 + y (c1 + c2 y), or the step y > 0 for relu: select, not branch, so
 * the row loops that call it vectorize. */
typedef struct dp_rnn_slope_coef {
    float c0, c1, c2;
    int relu;
} dp_rnn_slope_coef;

/* The coefficients of act's slope (linear, relu, sigmoid or tanh). */
dp_rnn_slope_coef dp_rnn_slope_of(dp_act act);

static inline float dp_rnn_slope(dp_rnn_slope_coef s, float y) {
    float poly = s.c0 + y * (s.c1 + s.c2 * y);
    float step = y > 0.0f ? 1.0f : 0.0f;
    return s.relu ? step : poly;
}

#endif
