/* lstm_cell.h - (private) the LSTM's elementwise arithmetic for one row at one
 * time step, forward and backward, over gates laid out i, f, c, o as Keras.
 *
 * The activations are linear, relu, sigmoid or tanh: each derivative follows
 * from the activation's output, so backward needs no pre-activations. */
#ifndef DPTRAIN_LAYERS_LSTM_CELL_H
#define DPTRAIN_LAYERS_LSTM_CELL_H

#include "dptrain/kinds.h"

/* One row of step t, forward. z[4U]: in, x_t W + h_{t-1} U (no bias); out, the
 * gates i, f, g, o after their activations. b[4U] the bias; cprev[U] is c_{t-1}
 * (NULL for zeros at t = 0). Writes c[U] = f*cprev + i*g, ac[U] = act(c) and
 * h[U] = o*ac. ract is the gates' activation, act the candidate's and c's.
 * The arrays do not overlap. */
void dp_lstm_cell_forward(dp_act act, dp_act ract, int U, float *restrict z,
                          const float *restrict b, const float *restrict cprev, float *restrict c,
                          float *restrict ac, float *restrict h);

/* One row of step t, backward. z[4U]: in, the gates forward left there; out,
 * dL/dz for the four blocks. cprev[U] as in forward, ac[U] = act(c_t),
 * dh[U] = dL/dh_t (from the output and from step t+1). dc[U]: in, dL/dc_t
 * through c_{t+1}; out, dL/dc_{t-1}. */
void dp_lstm_cell_backward(dp_act act, dp_act ract, int U, float *restrict z,
                           const float *restrict cprev, const float *restrict ac,
                           const float *restrict dh, float *restrict dc);

#endif
