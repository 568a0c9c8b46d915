/* rnn_common.h - (private) what the simple_rnn and gru layers share: config
 * checks, elementwise activations on one row and their slopes from outputs.
 *
 * Layout shared by both layers: activations stay batch-major as the model
 * passes them ([B, T, k] rows, position (b, t) at row b*T + t), so the input
 * projection, the weight gradients and dx are single GEMMs over all B*T rows.
 * A time step's B rows are then a strided matrix (row stride T*k), which
 * sgemm takes as its leading dimension, so no transposes are needed. */
#ifndef DPTRAIN_LAYERS_RNN_COMMON_H
#define DPTRAIN_LAYERS_RNN_COMMON_H

#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/shape.h"

/* Checks a recurrent layer's config against its input: a sequence [T, F],
 * units >= 1, max_batch >= 1, activation (and, if gated, recurrent_activation)
 * elementwise. Returns 0, or -1 with err set at cfg->where. */
int dp_rnn_check(const char *type, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                 int gated, dp_error *err);

/* Output shape: [T, units] with return_sequences, else [units]. */
dp_shape dp_rnn_out_shape(const dp_layer_cfg *cfg, const dp_shape *in);

/* v[n] = act(v[n]) in place; act is linear, relu, sigmoid or tanh. */
void dp_rnn_activate(dp_act act, float *v, int n);

/* d act / dz expressed through the output y = act(z). */
static inline float dp_rnn_slope(dp_act act, float y) {
    switch (act) {
    case DP_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case DP_ACT_SIGMOID: return y * (1.0f - y);
    case DP_ACT_TANH: return 1.0f - y * y;
    default: return 1.0f;
    }
}

/* rows[r, 0:n] = v[n] for r < nrows, row stride ld: a bias the GEMM then adds to. */
void dp_rnn_fill_rows(float *rows, int nrows, int ld, const float *v, int n);

/* sum[n] += column sums of rows[nrows, n] (row stride ld), in row order. */
void dp_rnn_col_sums(float *sum, const float *rows, int nrows, int ld, int n);

#endif
