/* test_gradcheck_layer_norm.c - layer_norm: Keras's initial gamma and beta, the
 * forward against a double-precision reimplementation of Keras
 * LayerNormalization, its gradient against central finite differences
 * (layercheck.c) on [F] and [T, F], and its config errors. */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Keras: mean and biased variance over the last axis, epsilon inside the sqrt. */
static void reference(double *y, const float *x, const float *gamma, const float *beta, int N,
                      int F, double eps) {
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * F;
        double mu = 0.0, var = 0.0;
        for (int i = 0; i < F; i++) mu += xr[i];
        mu /= F;
        for (int i = 0; i < F; i++) var += (xr[i] - mu) * (xr[i] - mu);
        var /= F;
        for (int i = 0; i < F; i++)
            y[(size_t)r * F + i] = (xr[i] - mu) / sqrt(var + eps) * gamma[i] + beta[i];
    }
}

static void test_layer_norm_init_and_layout(void) {
    dp_layer_cfg cfg = make_cfg("layer_norm");
    dp_shape seq = {2, {3, 5}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_layer_norm_ops, &cfg, &seq, 2, 31, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.n_params, 2);
    CU_ASSERT_STRING_EQUAL(f.l.params[0].name, "gamma");
    CU_ASSERT_STRING_EQUAL(f.l.params[1].name, "beta");
    CU_ASSERT_EQUAL(f.l.params[0].shape.ndim, 1);
    CU_ASSERT_EQUAL(f.l.params[0].shape.dim[0], 5);
    CU_ASSERT_EQUAL(f.l.params[1].offset, 5);
    CU_ASSERT_EQUAL(f.l.param_count, 10);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 2);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], 3);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], 5);
    f.l.ops->init_params(&f.l, f.params, 7);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(f.params[i], 1.0f);
        CU_ASSERT_EQUAL(f.params[5 + i], 0.0f);
    }
    fx_teardown(&f);
}

/* Random gamma, beta and inputs, with an offset row so |mean| >> std, and a
 * larger epsilon so it visibly matters. */
static void test_layer_norm_matches_keras(void) {
    enum { B = 3, T = 4, F = 9 };
    const double eps[2] = {1e-3, 0.5};
    for (int e = 0; e < 2; e++) {
        dp_layer_cfg cfg = make_cfg("layer_norm");
        cfg.epsilon = eps[e];
        dp_shape seq = {2, {T, F}};
        fixture f;
        CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_layer_norm_ops, &cfg, &seq, B, 32, NULL) == 0);
        for (int i = 0; i < F; i++) f.x[F + i] = 100.0f + 0.01f * (float)i;
        f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);
        double ref[B * T * F];
        reference(ref, f.x, f.params, f.params + F, B * T, F, eps[e]);
        double worst = 0.0;
        for (int i = 0; i < B * T * F; i++) worst = fmax(worst, fabs(f.y[i] - ref[i]));
        if (worst > 2e-5) printf("\n  epsilon %g: max |y - ref| = %g", eps[e], worst);
        CU_ASSERT(worst <= 2e-5);
        fx_teardown(&f);
    }
}

static void test_layer_norm_gradcheck(void) {
    dp_layer_cfg cfg = make_cfg("layer_norm");
    dp_shape flat = {1, {7}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_layer_norm_ops, &cfg, &flat, 3, 33, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "layer_norm on [F]"), 0);
    fx_teardown(&f);

    dp_shape seq = {2, {3, 5}};
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_layer_norm_ops, &cfg, &seq, 2, 34, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "layer_norm on [T, F]"), 0);
    fx_teardown(&f);
}

static void test_layer_norm_bad_input(void) {
    dp_layer_cfg cfg = make_cfg("layer_norm");
    dp_layer l = {0};
    dp_error err = {0};
    dp_shape img = {3, {1, 4, 4}};
    CU_ASSERT(dp_layer_layer_norm_ops.create(&l, &cfg, &img, 2, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[1, 4, 4]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "flatten"));
    CU_ASSERT_PTR_NULL(strchr(err.what, '\n'));
}

int main(void) {
    static const test_case cases[] = {
        {"layer_norm init and layout", test_layer_norm_init_and_layout},
        {"layer_norm matches Keras", test_layer_norm_matches_keras},
        {"layer_norm gradient", test_layer_norm_gradcheck},
        {"layer_norm bad input", test_layer_norm_bad_input},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_layer_norm", cases);
}
