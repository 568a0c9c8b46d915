/* layercheck.h - for the CNN layer suites (test_gradcheck_conv2d.c and the
 * others): a one-layer fixture whose backward is checked against central
 * finite differences of J = sum(dy .* y), as test_gradcheck.c does for dense,
 * and the configuration helpers they share. */
#ifndef DPTRAIN_TESTS_LAYERCHECK_H
#define DPTRAIN_TESTS_LAYERCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/config.h"
#include "layers/layer.h"

/* Inference: no dropout. */
extern const dp_fwd_ctx infer_ctx;

/* A value in [lo, hi) from the counter-based generator: value i of stream key. */
float uniform_in(uint64_t key, uint64_t i, float lo, float hi);

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|) */
int close_enough(double a, double b, double rel_tol, double abs_tol);

/* A layer config of `type` (linear, strides 1, pool 2, where "cnn.yaml:3:7",
 * and the schema's defaults for the sequence layers: recurrent_activation
 * sigmoid, unit_forget_bias, epsilon 1e-3, causal). */
dp_layer_cfg make_cfg(const char *type);
dp_layer_cfg conv_cfg(int filters, int kh, int kw, int sh, int sw, int same, dp_act act);
dp_shape shape3(int c, int h, int w);
/* A recurrent layer's config (simple_rnn, gru, lstm): units, whether the whole
 * sequence is the output, activation and recurrent_activation. */
dp_layer_cfg seq_cfg(const char *type, int units, int return_sequences, dp_act act, dp_act ract);

/* One layer with random parameters, inputs x and output gradient dy. */
typedef struct fixture {
    dp_layer l;
    int B;
    size_t nin, nout;      /* values per row of x and y */
    float *params, *grads; /* [param_count] */
    float *x, *dx;         /* [B, nin] */
    float *y, *dy;         /* [B, nout] */
    float *zp, *zm;        /* [B, nout] pre-activations at +h / -h */
    dp_fwd_ctx ctx;
} fixture;

/* Creates the layer (index 3) for batches of B rows of shape in, with values
 * drawn from seed; ctx NULL means inference. Returns 0, or -1 (printed). */
int fx_setup(fixture *f, const dp_layer_ops *ops, const dp_layer_cfg *cfg, const dp_shape *in,
             int B, uint64_t seed, const dp_fwd_ctx *ctx);
void fx_teardown(fixture *f);
/* Runs forward into f->y; returns J = sum(dy .* y). */
double fx_objective(fixture *f);
/* Pre-activations (activation switched off) into z. */
void fx_preact(fixture *f, float *z);
/* Central difference of J w.r.t. *v with step h: 1 and *num, or 0 when the
 * stencil straddles relu's kink. */
int fx_numeric(fixture *f, float *v, float h, double *num);
/* Checks backward's parameter gradients and dx against finite differences, that
 * backward adds into grads, and that dx = NULL leaves the parameter gradients
 * alone. Returns the number of mismatches (printed, under label). */
int fx_check(fixture *f, const char *label);

/* --- recurrent layers (simple_rnn, gru, lstm) --- */

/* A Keras cell in double for one sample: kernel W, recurrent kernel U and bias
 * b as the layer lays them out (its params 0, 1, 2), x[T, F]; writes h_1..h_T
 * into out[T, u]. */
typedef void seq_reference(const float *W, const float *U, const float *b, const float *x, int T,
                           int F, int u, double *out);

/* Runs f's forward ([T, F] in, [T, u] out per row) and returns the largest
 * |y - ref| over its B rows. */
double fx_seq_reference_error(fixture *f, seq_reference *ref, int T, int F, int u);

/* With ops and cfg (return_sequences is set here), B rows of [T, F] and u
 * units: return_sequences false gives exactly the last step of true, and the
 * same gradients and dx when dy is only on that last step. */
void check_last_step(const dp_layer_ops *ops, dp_layer_cfg cfg, int B, int T, int F, int u,
                     uint64_t seed);

/* max |m m^T - I| over a [rows, cols] matrix: 0 for orthonormal rows. */
double orthonormal_rows_error(const float *m, int rows, int cols);

/* 1 if ops->create refuses cfg on input in with one line at cfg->where that
 * contains needle and leaves no state (else prints what it got). */
int create_fails(const dp_layer_ops *ops, const dp_layer_cfg *cfg, const dp_shape *in,
                 const char *needle);

/* The Fashion-MNIST CNN's config (conv, pool, conv, pool, flatten, dense,
 * dropout, dense softmax). */
extern const char fmnist_cnn_yaml[];

#endif
