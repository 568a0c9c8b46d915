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

/* The Fashion-MNIST CNN's config (conv, pool, conv, pool, flatten, dense,
 * dropout, dense softmax). */
extern const char fmnist_cnn_yaml[];

#endif
