/* test_gradcheck_gru.c - gru (Keras reset_after form): backpropagation
 * through time against central finite differences, both bias rows by name,
 * the forward against an independent double-precision reimplementation of
 * Keras's GRUCell (gate order z, r, h along 3u; kernel [F, 3u],
 * recurrent_kernel [u, 3u], bias [2, 3u]), a hand-checked case of the gate
 * order, the last step of return_sequences and config errors. */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dp_layer_cfg gru_cfg(int units, int seq) {
    return seq_cfg("gru", units, seq, DP_ACT_TANH, DP_ACT_SIGMOID);
}

static double sigm(double v) {
    return 1.0 / (1.0 + exp(-v));
}

/* Keras GRUCell.call with reset_after = True, in double, one sample:
 *   matrix_x = x W + b[0];  matrix_inner = h U + b[1]
 *   z = sigmoid(x_z + inner_z), r = sigmoid(x_r + inner_r)
 *   hh = tanh(x_h + r * inner_h);  h = z * h + (1 - z) * hh
 * Writes h_1..h_T into out[T, u]. */
static void ref_gru(const float *W, const float *U, const float *bias, const float *x, int T, int F,
                    int u, double *out) {
    int k = 3 * u;
    double *h = calloc((size_t)u, sizeof *h), *mx = malloc(k * sizeof *mx),
           *mi = malloc(k * sizeof *mi);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < k; j++) {
            mx[j] = bias[j];
            mi[j] = bias[k + j];
            for (int i = 0; i < F; i++) mx[j] += (double)x[t * F + i] * W[i * k + j];
            for (int i = 0; i < u; i++) mi[j] += h[i] * U[i * k + j];
        }
        double *ht = out + (size_t)t * u;
        for (int j = 0; j < u; j++) {
            double z = sigm(mx[j] + mi[j]);
            double r = sigm(mx[u + j] + mi[u + j]);
            double hh = tanh(mx[2 * u + j] + r * mi[2 * u + j]);
            ht[j] = z * h[j] + (1 - z) * hh;
        }
        memcpy(h, ht, (size_t)u * sizeof *h);
    }
    free(h), free(mx), free(mi);
}

/* Gradient through T >= 3 steps, with and without return_sequences; each
 * bias row checked by name, and the two rows are different gradients. */
static void test_gru_gradcheck(void) {
    for (int seq = 0; seq <= 1; seq++) {
        enum { T = 4, F = 3, U = 4 };
        dp_layer_cfg cfg = gru_cfg(U, seq);
        dp_shape in = {2, {T, F}};
        fixture f;
        CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_gru_ops, &cfg, &in, 3, 80 + seq, NULL) == 0);
        char label[64];
        snprintf(label, sizeof label, "gru seq %d", seq);
        CU_ASSERT_EQUAL(fx_check(&f, label), 0);

        /* Both bias rows, explicitly: fresh gradients, each entry against a
         * central difference. */
        const dp_param_view *bv = &f.l.params[2];
        CU_ASSERT_STRING_EQUAL(bv->name, "bias");
        CU_ASSERT(bv->shape.ndim == 2 && bv->shape.dim[0] == 2 && bv->shape.dim[1] == 3 * U);
        memset(f.grads, 0, f.l.param_count * sizeof(float));
        fx_objective(&f);
        f.l.ops->backward(&f.l, f.params, f.x, f.y, f.dy, NULL, f.grads, f.B);
        const float *g_in = f.grads + bv->offset, *g_rec = g_in + 3 * U;
        int bad = 0;
        double norm_in = 0.0, norm_rec = 0.0, hdiff = 0.0;
        for (int i = 0; i < 6 * U; i++) {
            double num;
            CU_ASSERT_FATAL(fx_numeric(&f, &f.params[bv->offset + i], 1e-2f, &num));
            if (!close_enough(g_in[i], num, 1e-2, 2e-3)) bad++;
        }
        for (int j = 0; j < 3 * U; j++) {
            norm_in += fabs(g_in[j]);
            norm_rec += fabs(g_rec[j]);
            if (j >= 2 * U) hdiff += fabs(g_in[j] - g_rec[j]);
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(norm_in > 1e-3 && norm_rec > 1e-3);
        /* z and r: the same pre-activation, so the same gradient; h: the
         * recurrent bias sits inside r * (h U + b_rec), so it differs. */
        ASSERT_SAME_FLOATS(g_in, g_rec, 2 * U);
        CU_ASSERT(hdiff > 1e-4);
        fx_teardown(&f);
    }
}

/* Other activations still differentiate correctly (tanh gates, linear candidate). */
static void test_gru_gradcheck_activations(void) {
    dp_layer_cfg cfg = gru_cfg(3, 1);
    cfg.activation = DP_ACT_LINEAR;
    cfg.recurrent_activation = DP_ACT_TANH;
    dp_shape in = {2, {3, 2}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_gru_ops, &cfg, &in, 2, 85, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "gru linear/tanh"), 0);
    fx_teardown(&f);
}

/* A batch of 9 rows and 33 units runs the 8-row blocks and a partial column
 * panel of the step product, forward and backward. */
static void test_gru_gradcheck_wide(void) {
    dp_layer_cfg cfg = gru_cfg(33, 1);
    dp_shape in = {2, {3, 3}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_gru_ops, &cfg, &in, 9, 86, NULL) == 0);
    for (size_t i = 0; i < f.l.param_count; i++) f.params[i] *= 0.3f;
    CU_ASSERT_EQUAL(fx_check(&f, "gru wide"), 0);
    fx_teardown(&f);
}

/* On random weights the layer matches the double-precision Keras equations,
 * for a tiny layer and one wide enough for full column panels and row blocks. */
static void check_gru_reference(int B, int T, int F, int U, double scale, uint64_t seed) {
    dp_layer_cfg cfg = gru_cfg(U, 1);
    dp_shape in = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_gru_ops, &cfg, &in, B, seed, NULL) == 0);
    CU_ASSERT_STRING_EQUAL(f.l.params[0].name, "kernel");
    CU_ASSERT_STRING_EQUAL(f.l.params[1].name, "recurrent_kernel");
    CU_ASSERT(f.l.params[0].shape.dim[0] == F && f.l.params[0].shape.dim[1] == 3 * U);
    CU_ASSERT(f.l.params[1].shape.dim[0] == U && f.l.params[1].shape.dim[1] == 3 * U);
    for (size_t i = 0; i < f.l.param_count; i++) f.params[i] *= (float)scale;
    double worst = fx_seq_reference_error(&f, ref_gru, T, F, U);
    CU_ASSERT(worst < 1e-5);
    if (worst >= 1e-5) printf("\n  max |y - keras| = %g", worst);
    fx_teardown(&f);
}

static void test_gru_matches_keras_reference(void) {
    check_gru_reference(3, 6, 4, 5, 1.0, 90);
    check_gru_reference(11, 5, 6, 40, 0.3, 91);
}

/* Gate order by hand, F = 1, u = 1, T = 2, so each block is one column:
 * kernel (z, r, h) = (2, 0, 1), recurrent_kernel (0, 0, 3), input bias
 * (0, 0, 0), recurrent bias (-1, 0, 0.5). Then r = sigmoid(0) = 1/2 and
 *   z_t  = sigmoid(2 x_t - 1)
 *   hh_t = tanh(x_t + (3 h_{t-1} + 0.5) / 2)
 *   h_t  = z_t h_{t-1} + (1 - z_t) hh_t.
 * Swapping any two blocks of the layout changes every one of these. */
static void test_gru_gate_order_by_hand(void) {
    dp_layer_cfg cfg = gru_cfg(1, 1);
    dp_shape in = {2, {2, 1}};
    dp_layer l = {.ops = &dp_layer_gru_ops};
    dp_error err = {0};
    CU_ASSERT_FATAL(l.ops->create(&l, &cfg, &in, 1, &err) == 0);
    CU_ASSERT_EQUAL_FATAL(l.param_count, 3 + 3 + 6);
    float p[12] = {2, 0, 1, /**/ 0, 0, 3, /**/ 0, 0, 0, /**/ -1, 0, 0.5f};
    float x[2] = {0.4f, -0.8f}, y[2];
    l.ops->forward(&l, p, x, y, 1, &infer_ctx);
    double h = 0.0, want[2];
    for (int t = 0; t < 2; t++) {
        double z = 1.0 / (1.0 + exp(-(2.0 * x[t] - 1.0)));
        double hh = tanh(x[t] + (3.0 * h + 0.5) / 2.0);
        h = z * h + (1.0 - z) * hh;
        want[t] = h;
    }
    /* the first step by hand: z = sigmoid(-0.2), hh = tanh(0.65), h = (1 - z) hh */
    CU_ASSERT(fabs(want[0] - (1.0 - 1.0 / (1.0 + exp(0.2))) * tanh(0.65)) < 1e-7);
    for (int t = 0; t < 2; t++) CU_ASSERT(fabs(y[t] - want[t]) < 1e-6);
    l.ops->free(&l);
}

/* return_sequences false gives exactly the last row of return_sequences true,
 * and the same gradients when dy is that last row. */
static void test_gru_last_step(void) {
    check_last_step(&dp_layer_gru_ops, gru_cfg(6, 1), 3, 5, 4, 6, 95);
}

/* Keras's initializers: glorot-uniform kernel over [F, 3u], an orthogonal
 * recurrent kernel [u, 3u] (orthonormal rows), zero biases. */
static void test_gru_init(void) {
    enum { T = 3, F = 5, U = 4 };
    dp_layer_cfg cfg = gru_cfg(U, 0);
    dp_shape in = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_gru_ops, &cfg, &in, 2, 97, NULL) == 0);
    f.l.ops->init_params(&f.l, f.params, 99);
    const float *W = f.params, *Uk = W + F * 3 * U, *b = Uk + U * 3 * U;
    float limit = sqrtf(6.0f / (F + 3 * U));
    for (int i = 0; i < F * 3 * U; i++) CU_ASSERT(fabsf(W[i]) <= limit);
    for (int i = 0; i < 6 * U; i++) CU_ASSERT_EQUAL(b[i], 0.0f);
    CU_ASSERT(orthonormal_rows_error(Uk, U, 3 * U) < 1e-5);
    fx_teardown(&f);
}

static void test_gru_config_errors(void) {
    dp_layer_cfg cfg = gru_cfg(4, 0);
    dp_shape flat = {1, {12}}, img = {3, {1, 4, 3}}, seq = {2, {4, 3}};
    CU_ASSERT(create_fails(&dp_layer_gru_ops, &cfg, &flat, "sequence [steps, features]"));
    CU_ASSERT(create_fails(&dp_layer_gru_ops, &cfg, &img, "sequence [steps, features]"));
    cfg.activation = DP_ACT_SOFTMAX;
    CU_ASSERT(create_fails(&dp_layer_gru_ops, &cfg, &seq, "activation softmax is not supported"));
    cfg.activation = DP_ACT_TANH;
    cfg.recurrent_activation = DP_ACT_GELU;
    CU_ASSERT(
        create_fails(&dp_layer_gru_ops, &cfg, &seq, "recurrent_activation gelu is not supported"));
    CU_ASSERT_PTR_EQUAL(dp_layer_find_ops("gru"), &dp_layer_gru_ops);
}

int main(void) {
    static const test_case cases[] = {
        {"gru gradient through time, both biases", test_gru_gradcheck},
        {"gru gradient, other activations", test_gru_gradcheck_activations},
        {"gru gradient, 9 rows of 33 units", test_gru_gradcheck_wide},
        {"gru matches the Keras equations", test_gru_matches_keras_reference},
        {"gru gate order by hand", test_gru_gate_order_by_hand},
        {"gru last step", test_gru_last_step},
        {"gru initializers", test_gru_init},
        {"gru config errors", test_gru_config_errors},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_gru", cases);
}
