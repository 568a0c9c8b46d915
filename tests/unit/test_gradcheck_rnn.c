/* test_gradcheck_rnn.c - simple_rnn: backpropagation through time against
 * central finite differences, the forward against an independent
 * double-precision reimplementation of Keras's SimpleRNN (its layout:
 * kernel [F, u], recurrent_kernel [u, u], bias [u]), a hand-checked case of
 * that layout, the last step of return_sequences, Keras's initializers and
 * config errors. */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dp_layer_cfg rnn_cfg(int units, int seq, dp_act act) {
    return seq_cfg("simple_rnn", units, seq, act, DP_ACT_SIGMOID);
}

/* Keras SimpleRNNCell.call, in double, one sample: h = act(x W + h U + b),
 * h_0 = 0. Writes h_1..h_T into out[T, u] (all steps). */
static void ref_simple_rnn(const float *W, const float *U, const float *b, const float *x, int T,
                           int F, int u, double *out) {
    double *h = calloc((size_t)u, sizeof *h);
    for (int t = 0; t < T; t++) {
        double *ht = out + (size_t)t * u;
        for (int j = 0; j < u; j++) {
            double s = b[j];
            for (int i = 0; i < F; i++) s += (double)x[t * F + i] * W[i * u + j];
            for (int i = 0; i < u; i++) s += h[i] * U[i * u + j];
            ht[j] = tanh(s);
        }
        memcpy(h, ht, (size_t)u * sizeof *h);
    }
    free(h);
}

/* Gradient through T >= 3 steps, with and without return_sequences, and
 * with a second smooth activation. */
static void test_rnn_gradcheck(void) {
    const dp_act acts[2] = {DP_ACT_TANH, DP_ACT_SIGMOID};
    for (int a = 0; a < 2; a++)
        for (int seq = 0; seq <= 1; seq++) {
            dp_layer_cfg cfg = rnn_cfg(5, seq, acts[a]);
            dp_shape in = {2, {4, 3}};
            fixture f;
            CU_ASSERT_FATAL(
                fx_setup(&f, &dp_layer_simple_rnn_ops, &cfg, &in, 3, 40 + 2 * a + seq, NULL) == 0);
            char label[64];
            snprintf(label, sizeof label, "simple_rnn act %d seq %d", a, seq);
            CU_ASSERT_EQUAL(fx_check(&f, label), 0);
            fx_teardown(&f);
        }
}

/* A batch of 9 rows and 33 units runs the 8-row blocks and a partial column
 * panel of the step product, forward and backward. */
static void test_rnn_gradcheck_wide(void) {
    dp_layer_cfg cfg = rnn_cfg(33, 1, DP_ACT_TANH);
    dp_shape in = {2, {3, 3}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_simple_rnn_ops, &cfg, &in, 9, 45, NULL) == 0);
    for (size_t i = 0; i < f.l.param_count; i++) f.params[i] *= 0.3f;
    CU_ASSERT_EQUAL(fx_check(&f, "simple_rnn wide"), 0);
    fx_teardown(&f);
}

/* On random weights the layer matches the double-precision Keras equations,
 * for a tiny layer and one wide enough for full column panels and row blocks. */
static void check_rnn_reference(int B, int T, int F, int U, double scale, uint64_t seed) {
    dp_layer_cfg cfg = rnn_cfg(U, 1, DP_ACT_TANH);
    dp_shape in = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_simple_rnn_ops, &cfg, &in, B, seed, NULL) == 0);
    CU_ASSERT_STRING_EQUAL(f.l.params[0].name, "kernel");
    CU_ASSERT_STRING_EQUAL(f.l.params[1].name, "recurrent_kernel");
    CU_ASSERT_STRING_EQUAL(f.l.params[2].name, "bias");
    CU_ASSERT(f.l.params[0].shape.dim[0] == F && f.l.params[0].shape.dim[1] == U);
    CU_ASSERT(f.l.params[1].shape.dim[0] == U && f.l.params[1].shape.dim[1] == U);
    CU_ASSERT(f.l.params[2].shape.ndim == 1 && f.l.params[2].shape.dim[0] == U);
    /* Keras-scale weights keep tanh away from saturation, where any answer is +-1. */
    for (size_t i = 0; i < f.l.param_count; i++) f.params[i] *= (float)scale;
    double worst = fx_seq_reference_error(&f, ref_simple_rnn, T, F, U);
    CU_ASSERT(worst < 1e-5);
    if (worst >= 1e-5) printf("\n  max |y - keras| = %g", worst);
    fx_teardown(&f);
}

static void test_rnn_matches_keras_reference(void) {
    check_rnn_reference(3, 6, 4, 7, 0.5, 50);
    check_rnn_reference(11, 5, 6, 40, 0.15, 51);
}

/* Layout by hand: kernel[i][j] maps input feature i to unit j, and
 * recurrent_kernel[i][j] maps unit i of h_{t-1} to unit j of h_t. With F = 2,
 * u = 2, kernel only [0][1] = 1, recurrent only [1][0] = 1 and bias (0.1, 0):
 *   h_1 = (tanh(0.1), tanh(x_1[0]))
 *   h_2 = (tanh(0.1 + h_1[1]), tanh(x_2[0])). */
static void test_rnn_layout_by_hand(void) {
    dp_layer_cfg cfg = rnn_cfg(2, 1, DP_ACT_TANH);
    dp_shape in = {2, {2, 2}};
    dp_layer l = {.ops = &dp_layer_simple_rnn_ops};
    dp_error err = {0};
    CU_ASSERT_FATAL(l.ops->create(&l, &cfg, &in, 1, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(l.param_count, 4 + 4 + 2);
    /* kernel [2, 2], recurrent_kernel [2, 2], bias [2], one after the other */
    float p[10] = {0, 1, 0, 0, /**/ 0, 0, 1, 0, /**/ 0.1f, 0};
    float x[4] = {0.3f, -5.0f, -0.7f, 9.0f}; /* x_1 = (0.3, -5), x_2 = (-0.7, 9) */
    float y[4];
    l.ops->forward(&l, p, x, y, 1, &infer_ctx);
    double h11 = tanh(0.3);
    double want[4] = {tanh(0.1), h11, tanh(0.1 + h11), tanh(-0.7)};
    for (int i = 0; i < 4; i++) CU_ASSERT(fabs(y[i] - want[i]) < 1e-6);
    l.ops->free(&l);
}

/* return_sequences false gives exactly the last row of return_sequences true,
 * and the same gradients when dy is that last row. */
static void test_rnn_last_step(void) {
    check_last_step(&dp_layer_simple_rnn_ops, rnn_cfg(6, 1, DP_ACT_TANH), 3, 5, 4, 6, 60);
}

/* Keras's initializers: glorot-uniform kernel, orthogonal recurrent kernel,
 * zero bias; a row's output does not depend on the other rows of the batch. */
static void test_rnn_init_and_rows(void) {
    enum { T = 3, F = 5, U = 8 };
    dp_layer_cfg cfg = rnn_cfg(U, 1, DP_ACT_TANH);
    dp_shape in = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_simple_rnn_ops, &cfg, &in, 4, 70, NULL) == 0);
    f.l.ops->init_params(&f.l, f.params, 1234);
    const float *W = f.params, *Uk = W + F * U, *b = Uk + U * U;
    float limit = sqrtf(6.0f / (F + U));
    for (int i = 0; i < F * U; i++) CU_ASSERT(fabsf(W[i]) <= limit);
    for (int i = 0; i < U; i++) CU_ASSERT_EQUAL(b[i], 0.0f);
    CU_ASSERT(orthonormal_rows_error(Uk, U, U) < 1e-5);
    /* row 2 alone (batch of 1) gives the same bits as inside the batch of 4 */
    fx_objective(&f);
    float y1[T * U];
    f.l.ops->forward(&f.l, f.params, f.x + 2 * T * F, y1, 1, &infer_ctx);
    ASSERT_SAME_FLOATS(y1, f.y + 2 * T * U, T * U);
    fx_teardown(&f);
}

static void test_rnn_config_errors(void) {
    dp_layer_cfg cfg = rnn_cfg(4, 0, DP_ACT_TANH);
    dp_shape flat = {1, {12}}, img = {3, {1, 4, 3}}, seq = {2, {4, 3}};
    CU_ASSERT(create_fails(&dp_layer_simple_rnn_ops, &cfg, &flat, "sequence [steps, features]"));
    CU_ASSERT(create_fails(&dp_layer_simple_rnn_ops, &cfg, &img, "sequence [steps, features]"));
    cfg.activation = DP_ACT_SOFTMAX;
    CU_ASSERT(
        create_fails(&dp_layer_simple_rnn_ops, &cfg, &seq, "activation softmax is not supported"));
    cfg.activation = DP_ACT_GELU;
    CU_ASSERT(
        create_fails(&dp_layer_simple_rnn_ops, &cfg, &seq, "activation gelu is not supported"));
    cfg.activation = DP_ACT_TANH;
    cfg.units = 0;
    CU_ASSERT(create_fails(&dp_layer_simple_rnn_ops, &cfg, &seq, "units"));
    CU_ASSERT_PTR_EQUAL(dp_layer_find_ops("simple_rnn"), &dp_layer_simple_rnn_ops);
}

int main(void) {
    static const test_case cases[] = {
        {"simple_rnn gradient through time", test_rnn_gradcheck},
        {"simple_rnn gradient, 9 rows of 33 units", test_rnn_gradcheck_wide},
        {"simple_rnn matches the Keras equations", test_rnn_matches_keras_reference},
        {"simple_rnn Keras layout by hand", test_rnn_layout_by_hand},
        {"simple_rnn last step", test_rnn_last_step},
        {"simple_rnn init and row independence", test_rnn_init_and_rows},
        {"simple_rnn config errors", test_rnn_config_errors},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_rnn", cases);
}
