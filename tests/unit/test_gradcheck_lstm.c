/* test_gradcheck_lstm.c - the lstm layer: backpropagation through time against
 * finite differences, the forward pass against a double-precision Keras LSTM
 * written here, Keras's initializers and layout, and its config errors. */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/init.h"

static dp_layer_cfg lstm_cfg(int units, int return_sequences, dp_act act, dp_act ract) {
    return seq_cfg("lstm", units, return_sequences, act, ract);
}

/* ------------------------------------------------ the Keras LSTM, in double -- */

static double ref_act(dp_act a, double z) {
    switch (a) {
    case DP_ACT_RELU: return z > 0.0 ? z : 0.0;
    case DP_ACT_SIGMOID: return 1.0 / (1.0 + exp(-z));
    case DP_ACT_TANH: return tanh(z);
    default: return z;
    }
}

/* Keras's LSTMCell.call with the kernels split by gate, for x[B, T, F],
 * kernel[F, 4U], recurrent[U, 4U], bias[4U]; gate q of unit j is column q*U + j
 * and the gates are i, f, c, o. Writes y[B, T, U] (ret) or y[B, U]. Returns a
 * signature of which pre-activations are positive, so a finite difference can
 * tell when it crossed relu's kink. */
static unsigned long ref_lstm(const double *x, const double *kernel, const double *rec,
                              const double *bias, int B, int T, int F, int U, dp_act act,
                              dp_act ract, int ret, double *y) {
    double *h = calloc((size_t)U, sizeof *h), *c = calloc((size_t)U, sizeof *c);
    double *z = malloc(4 * (size_t)U * sizeof *z);
    unsigned long sig = 0;
    for (int b = 0; b < B; b++) {
        memset(h, 0, (size_t)U * sizeof *h);
        memset(c, 0, (size_t)U * sizeof *c);
        for (int t = 0; t < T; t++) {
            const double *xt = x + ((size_t)b * T + t) * F;
            for (int q = 0; q < 4 * U; q++) {
                double s = bias[q];
                for (int k = 0; k < F; k++) s += xt[k] * kernel[(size_t)k * 4 * U + q];
                for (int k = 0; k < U; k++) s += h[k] * rec[(size_t)k * 4 * U + q];
                z[q] = s;
            }
            for (int j = 0; j < U; j++) {
                double i = ref_act(ract, z[j]), f = ref_act(ract, z[U + j]);
                double g = ref_act(act, z[2 * U + j]), o = ref_act(ract, z[3 * U + j]);
                c[j] = f * c[j] + i * g;
                h[j] = o * ref_act(act, c[j]);
                sig = sig * 31 + (z[2 * U + j] > 0) * 2 + (c[j] > 0);
            }
            if (ret) memcpy(y + ((size_t)b * T + t) * U, h, (size_t)U * sizeof *h);
        }
        if (!ret) memcpy(y + (size_t)b * U, h, (size_t)U * sizeof *h);
    }
    free(h), free(c), free(z);
    return sig;
}

/* The fixture's parameters and inputs in double, for ref_lstm. */
typedef struct ref_in {
    double *p, *x, *y;
} ref_in;

static void ref_setup(ref_in *r, const fixture *f) {
    r->p = malloc(f->l.param_count * sizeof(double));
    r->x = malloc(f->B * f->nin * sizeof(double));
    r->y = malloc(f->B * f->nout * sizeof(double));
    for (size_t i = 0; i < f->l.param_count; i++) r->p[i] = f->params[i];
    for (size_t i = 0; i < f->B * f->nin; i++) r->x[i] = f->x[i];
}

static void ref_free(ref_in *r) {
    free(r->p), free(r->x), free(r->y);
}

static unsigned long ref_run(ref_in *r, const fixture *f, const dp_layer_cfg *cfg) {
    int T = f->l.in_shape.dim[0], F = f->l.in_shape.dim[1];
    return ref_lstm(r->x, r->p + f->l.params[0].offset, r->p + f->l.params[1].offset,
                    r->p + f->l.params[2].offset, f->B, T, F, cfg->units, cfg->activation,
                    cfg->recurrent_activation, cfg->return_sequences, r->y);
}

/* --------------------------------------------------------- gradients ---- */

static void check_grad_sized(int B, int U, int ret, dp_act act, dp_act ract, uint64_t seed,
                             const char *label) {
    dp_layer_cfg cfg = lstm_cfg(U, ret, act, ract);
    dp_shape seq = {2, {4, 3}}; /* T = 4, F = 3 */
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &seq, B, seed, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, label), 0);
    fx_teardown(&f);
}

static void check_grad(int ret, dp_act act, dp_act ract, uint64_t seed, const char *label) {
    check_grad_sized(2, 4, ret, act, ract, seed, label);
}

/* Through time: with the sequence as output, and with only the last step. */
static void test_grad_default(void) {
    check_grad(1, DP_ACT_TANH, DP_ACT_SIGMOID, 31, "lstm return_sequences");
    check_grad(0, DP_ACT_TANH, DP_ACT_SIGMOID, 32, "lstm last step");
}

/* Enough rows and units for the recurrent product's whole 8-row blocks and
 * 32-column panels, and their remainders (9 rows; 80 and 20 columns). */
static void test_grad_wide(void) {
    check_grad_sized(9, 20, 1, DP_ACT_TANH, DP_ACT_SIGMOID, 38, "lstm 9 rows, 20 units");
}

/* The general path (other activations than tanh and sigmoid). */
static void test_grad_other_activations(void) {
    check_grad(1, DP_ACT_LINEAR, DP_ACT_TANH, 33, "lstm linear/tanh");
    check_grad(0, DP_ACT_SIGMOID, DP_ACT_SIGMOID, 34, "lstm sigmoid/sigmoid");
}

/* unit_forget_bias only changes the initial bias: the gradient at Keras's
 * initial weights (forget block at 1, or 0) and random inputs. */
static void test_grad_at_init(void) {
    for (int ufb = 0; ufb <= 1; ufb++) {
        dp_layer_cfg cfg = lstm_cfg(4, 1, DP_ACT_TANH, DP_ACT_SIGMOID);
        cfg.unit_forget_bias = ufb;
        dp_shape seq = {2, {5, 3}};
        fixture f;
        CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &seq, 3, 35 + ufb, NULL) == 0);
        f.l.ops->init_params(&f.l, f.params, 99);
        CU_ASSERT_EQUAL(fx_check(&f, ufb ? "lstm at init" : "lstm at init, no forget bias"), 0);
        fx_teardown(&f);
    }
}

/* relu has kinks, which the float stencil of fx_check crosses too often: its
 * gradient is checked against central differences of the double reference,
 * with a step small enough to leave the kinks alone (stencils that cross one
 * are skipped). */
static void test_grad_relu(void) {
    dp_layer_cfg cfg = lstm_cfg(3, 1, DP_ACT_RELU, DP_ACT_SIGMOID);
    dp_shape seq = {2, {4, 2}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &seq, 2, 37, NULL) == 0);
    fx_objective(&f);
    f.l.ops->backward(&f.l, f.params, f.x, f.y, f.dy, f.dx, f.grads, f.B);
    ref_in r;
    ref_setup(&r, &f);
    const double h = 1e-5;
    int bad = 0, skipped = 0, checked = 0;
    for (size_t k = 0; k < f.l.param_count + f.B * f.nin; k++) {
        int is_param = k < f.l.param_count;
        double *v = is_param ? &r.p[k] : &r.x[k - f.l.param_count];
        double analytic = is_param ? f.grads[k] : f.dx[k - f.l.param_count];
        double orig = *v, jp = 0.0, jm = 0.0;
        *v = orig + h;
        unsigned long sp = ref_run(&r, &f, &cfg);
        for (size_t i = 0; i < f.B * f.nout; i++) jp += f.dy[i] * r.y[i];
        *v = orig - h;
        unsigned long sm = ref_run(&r, &f, &cfg);
        for (size_t i = 0; i < f.B * f.nout; i++) jm += f.dy[i] * r.y[i];
        *v = orig;
        if (sp != sm) {
            skipped++;
            continue;
        }
        checked++;
        double num = (jp - jm) / (2 * h);
        if (!close_enough(analytic, num, 1e-4, 1e-5) && bad++ < 10)
            printf("\n  relu: %s %zu analytic %.8g numeric %.8g", is_param ? "param" : "x", k,
                   analytic, num);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(skipped * 10 < checked);
    ref_free(&r);
    fx_teardown(&f);
}

/* --------------------------------------------------- Keras semantics ---- */

/* Random weights: the layer's forward against the double reference. */
static void check_forward_sized(int B, int U, int ret, dp_act act, dp_act ract, uint64_t seed) {
    dp_layer_cfg cfg = lstm_cfg(U, ret, act, ract);
    dp_shape seq = {2, {6, 4}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &seq, B, seed, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, ret ? 2 : 1);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], ret ? 6 : U);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], ret ? U : 0);
    /* Keep the gates off saturation at larger widths: scale the recurrent kernel. */
    for (size_t i = f.l.params[1].offset; i < f.l.params[2].offset; i++)
        f.params[i] *= 4.0f / (float)U;
    fx_objective(&f);
    ref_in r;
    ref_setup(&r, &f);
    ref_run(&r, &f, &cfg);
    double worst = 0.0;
    for (size_t i = 0; i < f.B * f.nout; i++) worst = fmax(worst, fabs(f.y[i] - r.y[i]));
    CU_ASSERT(worst < 1e-5);
    if (worst >= 1e-5) printf("\n  forward differs from the reference by %g", worst);
    ref_free(&r);
    fx_teardown(&f);
}

static void check_forward(int ret, dp_act act, dp_act ract, uint64_t seed) {
    check_forward_sized(3, 5, ret, act, ract, seed);
}

static void test_forward_matches_keras(void) {
    check_forward_sized(11, 40, 1, DP_ACT_TANH, DP_ACT_SIGMOID, 40);
    check_forward(1, DP_ACT_TANH, DP_ACT_SIGMOID, 41);
    check_forward(0, DP_ACT_TANH, DP_ACT_SIGMOID, 42);
    check_forward(1, DP_ACT_RELU, DP_ACT_TANH, 43);
    check_forward(1, DP_ACT_LINEAR, DP_ACT_SIGMOID, 44);
}

/* A case to follow by hand. One input feature x = 1 at both steps, no
 * recurrence, units 2. Biases of +-20 saturate the sigmoid gates to 1 or 0:
 * i = 1 for both units, f = 1 for unit 0 and 0 for unit 1, o = 1 for unit 0
 * and 1/2 for unit 1. The candidate block of the kernel holds 0.5 and -1, so
 * g = tanh(0.5), tanh(-1). Then
 *   c_0 = g,  h_0 = o tanh(g);
 *   c_1 = f c_0 + g = 2 tanh(0.5) for unit 0 (kept) and tanh(-1) for unit 1;
 * columns q*2 + j of the kernel are gate q (i, f, c, o) of unit j. */
static void test_keras_gate_order_by_hand(void) {
    enum { U = 2, T = 2 };
    dp_layer_cfg cfg = lstm_cfg(U, 1, DP_ACT_TANH, DP_ACT_SIGMOID);
    dp_shape seq = {2, {T, 1}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &seq, 1, 45, NULL) == 0);
    CU_ASSERT_STRING_EQUAL(f.l.params[0].name, "kernel");
    CU_ASSERT_STRING_EQUAL(f.l.params[1].name, "recurrent_kernel");
    CU_ASSERT_STRING_EQUAL(f.l.params[2].name, "bias");
    CU_ASSERT_EQUAL(f.l.params[0].shape.dim[0], 1);
    CU_ASSERT_EQUAL(f.l.params[0].shape.dim[1], 4 * U);
    CU_ASSERT_EQUAL(f.l.params[1].shape.dim[0], U);
    CU_ASSERT_EQUAL(f.l.params[1].shape.dim[1], 4 * U);
    CU_ASSERT_EQUAL(f.l.params[2].shape.dim[0], 4 * U);
    memset(f.params, 0, f.l.param_count * sizeof(float));
    float *kernel = f.params + f.l.params[0].offset, *bias = f.params + f.l.params[2].offset;
    kernel[2 * U + 0] = 0.5f, kernel[2 * U + 1] = -1.0f; /* c block */
    bias[0] = 20.0f, bias[1] = 20.0f;                    /* i block */
    bias[U + 0] = 20.0f, bias[U + 1] = -20.0f;           /* f block */
    bias[3 * U + 0] = 20.0f, bias[3 * U + 1] = 0.0f;     /* o block */
    f.x[0] = f.x[1] = 1.0f;
    f.l.ops->forward(&f.l, f.params, f.x, f.y, 1, &infer_ctx);
    double g0 = tanh(0.5), g1 = tanh(-1.0);
    double want[T * U] = {tanh(g0), 0.5 * tanh(g1), tanh(2 * g0), 0.5 * tanh(g1)};
    for (int i = 0; i < T * U; i++) {
        CU_ASSERT(fabs(f.y[i] - want[i]) < 1e-6);
        if (fabs(f.y[i] - want[i]) >= 1e-6)
            printf("\n  y[%d] = %.8g, want %.8g", i, f.y[i], want[i]);
    }
    /* The recurrent kernel has the same layout: route h_0 of unit 0 into the
     * candidate of unit 1 at step 1: c_1 of unit 1 becomes tanh(-1 + h_0[0]). */
    float *rec = f.params + f.l.params[1].offset; /* [U, 4U] */
    rec[0 * 4 * U + 2 * U + 1] = 1.0f;
    f.l.ops->forward(&f.l, f.params, f.x, f.y, 1, &infer_ctx);
    double want3 = 0.5 * tanh(tanh(-1.0 + tanh(g0)));
    CU_ASSERT(fabs(f.y[3] - want3) < 1e-6);
    CU_ASSERT(fabs(f.y[2] - want[2]) < 1e-6);
    fx_teardown(&f);
}

/* return_sequences false gives the last step of the sequence, to the bit,
 * and the same gradients when dy is only on that step. */
static void test_last_step_is_last_of_sequence(void) {
    check_last_step(&dp_layer_lstm_ops, lstm_cfg(6, 1, DP_ACT_TANH, DP_ACT_SIGMOID), 3, 5, 4, 6,
                    51);
}

/* A row's output does not depend on the other rows of the batch: rows 3..10
 * alone (one block of 8) give the bits they have among 11 (split between a
 * block and single rows). */
static void test_rows_independent(void) {
    enum { B = 11, T = 3, F = 5, U = 40 };
    dp_layer_cfg cfg = lstm_cfg(U, 1, DP_ACT_TANH, DP_ACT_SIGMOID);
    dp_shape in = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &in, B, 52, NULL) == 0);
    fx_objective(&f);
    float *y = malloc(f.nout * B * sizeof(float));
    memcpy(y, f.y, f.nout * B * sizeof(float));
    f.l.ops->forward(&f.l, f.params, f.x + 3 * f.nin, f.y, 8, &infer_ctx);
    ASSERT_SAME_FLOATS(f.y, y + 3 * f.nout, 8 * f.nout);
    free(y);
    fx_teardown(&f);
}

/* ------------------------------------------------------------ init ---- */

static void test_init(void) {
    enum { T = 3, F = 5, U = 6, G = 4 * U };
    dp_shape in = {2, {T, F}};
    for (int ufb = 0; ufb <= 1; ufb++) {
        dp_layer_cfg cfg = lstm_cfg(U, 0, DP_ACT_TANH, DP_ACT_SIGMOID);
        cfg.unit_forget_bias = ufb;
        fixture f;
        CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_lstm_ops, &cfg, &in, 1, 61, NULL) == 0);
        CU_ASSERT_EQUAL(f.l.param_count, (size_t)F * G + (size_t)U * G + G);
        f.l.ops->init_params(&f.l, f.params, 1234);
        const float *kernel = f.params + f.l.params[0].offset;
        const float *rec = f.params + f.l.params[1].offset;
        const float *bias = f.params + f.l.params[2].offset;
        for (int q = 0; q < G; q++)
            CU_ASSERT(bias[q] == ((ufb && q >= U && q < 2 * U) ? 1.0f : 0.0f));
        /* Glorot uniform over [F, 4U]. */
        float limit = sqrtf(6.0f / (F + G)), mx = 0.0f;
        for (int i = 0; i < F * G; i++) mx = fmaxf(mx, fabsf(kernel[i]));
        CU_ASSERT(mx <= limit && mx > 0.8f * limit);
        /* Orthonormal rows of the recurrent kernel [U, 4U]. */
        CU_ASSERT(orthonormal_rows_error(rec, U, G) < 1e-5);
        /* Same key, same bits; another key, other values. */
        float *again = malloc(f.l.param_count * sizeof(float));
        f.l.ops->init_params(&f.l, again, 1234);
        ASSERT_SAME_FLOATS(f.params, again, f.l.param_count);
        f.l.ops->init_params(&f.l, again, 1235);
        CU_ASSERT(again[0] != f.params[0]);
        CU_ASSERT(again[f.l.params[1].offset] != rec[0]);
        /* The two kernels come from different streams: the recurrent one is not
         * the orthogonal matrix of the kernel's key. */
        dp_init_orthogonal(again, U, G, 1234);
        CU_ASSERT(test_count_different_floats(again, rec, (size_t)U * G) > (size_t)U * G / 2);
        free(again);
        fx_teardown(&f);
    }
}

/* ------------------------------------------------------ config errors ---- */

static void test_config_errors(void) {
    dp_layer_cfg cfg = lstm_cfg(4, 0, DP_ACT_TANH, DP_ACT_SIGMOID);
    dp_shape flat = {1, {12}}, image = {3, {1, 4, 3}}, seq = {2, {4, 3}};
    CU_ASSERT(create_fails(&dp_layer_lstm_ops, &cfg, &flat, "[12]"));
    CU_ASSERT(create_fails(&dp_layer_lstm_ops, &cfg, &image, "sequence"));
    cfg.activation = DP_ACT_SOFTMAX;
    CU_ASSERT(create_fails(&dp_layer_lstm_ops, &cfg, &seq, "activation softmax"));
    cfg.activation = DP_ACT_TANH;
    cfg.recurrent_activation = DP_ACT_GELU;
    CU_ASSERT(create_fails(&dp_layer_lstm_ops, &cfg, &seq, "recurrent_activation gelu"));
    cfg.recurrent_activation = DP_ACT_SIGMOID;
    cfg.units = 0;
    CU_ASSERT(create_fails(&dp_layer_lstm_ops, &cfg, &seq, "units"));
    /* The registry knows the type. */
    CU_ASSERT_PTR_EQUAL(dp_layer_find_ops("lstm"), &dp_layer_lstm_ops);
}

int main(void) {
    static const test_case cases[] = {
        {"gradient through time", test_grad_default},
        {"gradient, whole blocks and remainders", test_grad_wide},
        {"gradient, other activations", test_grad_other_activations},
        {"gradient at Keras's initial weights", test_grad_at_init},
        {"gradient with relu against the double reference", test_grad_relu},
        {"forward matches a double Keras LSTM", test_forward_matches_keras},
        {"Keras gate order and layout by hand", test_keras_gate_order_by_hand},
        {"last step equals the sequence's last", test_last_step_is_last_of_sequence},
        {"rows independent of the batch", test_rows_independent},
        {"Keras initializers", test_init},
        {"config errors", test_config_errors},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_lstm", cases);
}
