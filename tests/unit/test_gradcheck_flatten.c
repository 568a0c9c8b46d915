/* test_gradcheck_flatten.c - flatten: the same bytes both ways, and its
 * gradient against central finite differences (layercheck.c). */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_flatten(void) {
    dp_layer_cfg cfg = make_cfg("flatten");
    dp_shape in = shape3(3, 4, 5);
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_flatten_ops, &cfg, &in, 2, 11, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 1);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], 60);
    CU_ASSERT_EQUAL(f.l.param_count, 0);
    f.l.ops->forward(&f.l, NULL, f.x, f.y, 2, &infer_ctx);
    /* Element (b, c, h, w) lands at b*60 + (c*4 + h)*5 + w: the same bytes. */
    ASSERT_SAME_FLOATS(f.x, f.y, 2 * 60);
    CU_ASSERT_EQUAL(f.y[60 + (2 * 4 + 1) * 5 + 3], f.x[60 + 2 * 20 + 1 * 5 + 3]);
    f.l.ops->backward(&f.l, NULL, f.x, f.y, f.dy, f.dx, NULL, 2);
    ASSERT_SAME_FLOATS(f.dx, f.dy, 2 * 60);
    CU_ASSERT_EQUAL(fx_check(&f, "flatten"), 0);
    fx_teardown(&f);

    dp_layer l = {0};
    dp_error err = {0};
    dp_shape seq = {2, {7, 3}};
    CU_ASSERT_FATAL(dp_layer_flatten_ops.create(&l, &cfg, &seq, 1, &err) == 0);
    CU_ASSERT_EQUAL(l.out_shape.dim[0], 21);
    dp_layer_flatten_ops.free(&l);
}

int main(void) {
    static const test_case cases[] = {
        {"flatten round trip", test_flatten},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_flatten", cases);
}
