/* activation.h - elementwise activations and softmax, forward and backward. */
#ifndef DPTRAIN_ACTIVATION_H
#define DPTRAIN_ACTIVATION_H

#include <stddef.h>
#include "dptrain/config.h"

/* In place: y[rows, cols] = act(y). softmax runs over each row of `cols`. */
void dp_activation_forward(dp_act act, float *y, size_t rows, size_t cols);

/* y[n] = gelu(z[n]) (the tanh form), z and y disjoint: gelu's forward for a
 * layer that keeps its input z, without first copying z into y. */
void dp_gelu_forward(const float *z, float *y, size_t n);

/* y[n] = gelu(z[n]) and z[n] = gelu'(z) in place, for a layer whose backward
 * then multiplies dL/dy by the slope instead of recomputing it: the same bits
 * as dp_activation_backward's gelu. z and y disjoint. */
void dp_gelu_forward_slope(float *z, float *y, size_t n);

/* 1 if backward needs the activation's input z rather than its output (gelu,
 * whose output does not determine its slope); the layer then keeps z. */
int dp_activation_needs_input(dp_act act);

/* dz[rows, cols] = dL/dz given the activation output y and dy = dL/dy.
 * dz is dy or disjoint from it, and disjoint from y. Uses only y (not z), so forward may work in place, except
 * where dp_activation_needs_input(act): then pass the input z as y. */
void dp_activation_backward(dp_act act, const float *y, const float *dy, float *dz, size_t rows,
                            size_t cols);

#endif
