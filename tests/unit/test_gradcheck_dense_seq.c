/* test_gradcheck_dense_seq.c - dense on a sequence [T, F]: the same kernel at
 * every position, as Keras applies Dense to the last axis, and its gradient
 * against central finite differences (layercheck.c). */
#include "layercheck.h"
#include "testlib.h"

#include <string.h>

/* y[b, t] equals the dense layer applied to the single row x[b, t]. */
static void test_dense_per_position(void) {
    enum { B = 3, T = 4, F = 5, U = 6 };
    dp_layer_cfg cfg = make_cfg("dense");
    cfg.units = U;
    cfg.activation = DP_ACT_TANH;
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_dense_ops, &cfg, &seq, B, 21, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 2);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], T);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], U);
    f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);

    dp_layer one = {0};
    dp_error err = {0};
    dp_shape row = {1, {F}};
    CU_ASSERT_FATAL(dp_layer_dense_ops.create(&one, &cfg, &row, B * T, &err) == 0);
    float y1[B * T * U];
    dp_layer_dense_ops.forward(&one, f.params, f.x, y1, B * T, &infer_ctx);
    ASSERT_SAME_FLOATS(f.y, y1, B * T * U);
    dp_layer_dense_ops.free(&one);

    CU_ASSERT_EQUAL(fx_check(&f, "dense on [T, F]"), 0);
    fx_teardown(&f);
}

/* gelu keeps its input for backward; checked through time positions too. */
static void test_dense_gelu_sequence(void) {
    dp_layer_cfg cfg = make_cfg("dense");
    cfg.units = 4;
    cfg.activation = DP_ACT_GELU;
    dp_shape seq = {2, {3, 5}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_dense_ops, &cfg, &seq, 2, 22, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "dense gelu on [T, F]"), 0);
    fx_teardown(&f);
}

int main(void) {
    static const test_case cases[] = {
        {"dense per position", test_dense_per_position},
        {"dense gelu on a sequence", test_dense_gelu_sequence},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_dense_seq", cases);
}
