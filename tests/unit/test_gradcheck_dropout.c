/* test_gradcheck_dropout.c - dropout: identity in inference, drop fraction and
 * scale in training, its gradient with a fixed mask against central finite
 * differences (layercheck.c), and masks keyed by seed, step, row id and layer. */
#include "core/rng.h"
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dp_layer make_dropout(double rate, int index, int max_batch, size_t n) {
    dp_layer l;
    memset(&l, 0, sizeof l);
    dp_layer_cfg cfg = make_cfg("dropout");
    cfg.rate = rate;
    dp_shape in = {1, {(int)n}};
    dp_error err = {0};
    l.index = index;
    CU_ASSERT_FATAL(dp_layer_dropout_ops.create(&l, &cfg, &in, max_batch, &err) == 0);
    return l;
}

static void test_dropout_inference_identity(void) {
    enum { B = 4, N = 50 };
    dp_layer l = make_dropout(0.5, 1, B, N);
    float x[B * N], y[B * N], dy[B * N], dx[B * N];
    for (int i = 0; i < B * N; i++) x[i] = uniform_in(3, i, -2, 2), dy[i] = uniform_in(4, i, -1, 1);
    dp_layer_dropout_ops.forward(&l, NULL, x, y, B, &infer_ctx);
    ASSERT_SAME_FLOATS(x, y, B * N);
    dp_layer_dropout_ops.backward(&l, NULL, x, y, dy, dx, NULL, B);
    ASSERT_SAME_FLOATS(dx, dy, B * N);
    dp_layer_dropout_ops.free(&l);

    /* rate 0 is the identity during training too. */
    l = make_dropout(0.0, 1, B, N);
    dp_fwd_ctx tr = {.training = 1, .seed = 5, .step = 2, .row_ids = NULL};
    dp_layer_dropout_ops.forward(&l, NULL, x, y, B, &tr);
    ASSERT_SAME_FLOATS(x, y, B * N);
    dp_layer_dropout_ops.free(&l);

    /* rate 1 would divide by zero. */
    dp_layer bad = {0};
    dp_layer_cfg cfg = make_cfg("dropout");
    cfg.rate = 1.0;
    dp_shape in = {1, {N}};
    dp_error err = {0};
    CU_ASSERT(dp_layer_dropout_ops.create(&bad, &cfg, &in, B, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[0, 1)"));
}

static void test_dropout_training(void) {
    enum { B = 8, N = 1000 };
    const double rate = 0.3;
    dp_layer l = make_dropout(rate, 2, B, N);
    float *x = malloc(B * N * sizeof(float)), *y = malloc(B * N * sizeof(float));
    for (int i = 0; i < B * N; i++) x[i] = uniform_in(8, i, 0.5f, 2.0f); /* never 0 */
    uint64_t ids[B] = {10, 11, 12, 13, 14, 15, 16, 17};
    dp_fwd_ctx tr = {.training = 1, .seed = 42, .step = 7, .row_ids = ids};
    dp_layer_dropout_ops.forward(&l, NULL, x, y, B, &tr);
    int dropped = 0, bad_scale = 0;
    for (int i = 0; i < B * N; i++) {
        if (y[i] == 0.0f) {
            dropped++;
        } else if (fabs(y[i] - x[i] / (1.0 - rate)) > 1e-6 * fabs(y[i])) {
            bad_scale++;
        }
    }
    /* 8000 Bernoulli(0.3) draws: standard deviation 0.005. */
    double frac = (double)dropped / (B * N);
    CU_ASSERT_DOUBLE_EQUAL(frac, rate, 0.025);
    CU_ASSERT_EQUAL(bad_scale, 0);
    /* Backward uses the same mask: dx = dy * y / x. */
    float *dy = malloc(B * N * sizeof(float)), *dx = malloc(B * N * sizeof(float));
    for (int i = 0; i < B * N; i++) dy[i] = uniform_in(9, i, -1, 1);
    dp_layer_dropout_ops.backward(&l, NULL, x, y, dy, dx, NULL, B);
    int bad_grad = 0;
    for (int i = 0; i < B * N; i++) {
        double want = y[i] == 0.0f ? 0.0 : dy[i] / (1.0 - rate);
        if (fabs(dx[i] - want) > 1e-6) bad_grad++;
    }
    CU_ASSERT_EQUAL(bad_grad, 0);
    free(x), free(y), free(dy), free(dx);
    dp_layer_dropout_ops.free(&l);
}

static void test_dropout_gradcheck(void) {
    dp_layer_cfg cfg = make_cfg("dropout");
    cfg.rate = 0.4;
    dp_shape in = shape3(2, 3, 4);
    uint64_t ids[3] = {100, 7, 3};
    dp_fwd_ctx tr = {.training = 1, .seed = 9, .step = 1, .row_ids = ids};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_dropout_ops, &cfg, &in, 3, 21, &tr) == 0);
    CU_ASSERT_TRUE(dp_shape_equal(&f.l.out_shape, &in));
    /* The same ctx twice gives the same mask: J is a fixed function of x. */
    fx_objective(&f);
    float *y1 = malloc(f.B * f.nout * sizeof(float));
    memcpy(y1, f.y, f.B * f.nout * sizeof(float));
    fx_objective(&f);
    ASSERT_SAME_FLOATS(y1, f.y, f.B * f.nout);
    int zeros = 0;
    for (size_t i = 0; i < f.B * f.nout; i++) zeros += f.y[i] == 0.0f;
    CU_ASSERT(zeros > 0 && zeros < (int)(f.B * f.nout)); /* a mask that does something */
    free(y1);
    CU_ASSERT_EQUAL(fx_check(&f, "dropout"), 0);
    fx_teardown(&f);
}

/* Row r's mask from a forward of all-ones rows (y = 0 or 1/(1-rate)). */
static void dropout_masks(dp_layer *l, const dp_fwd_ctx *ctx, int B, size_t n, float *y) {
    float *ones = malloc(B * n * sizeof(float));
    for (size_t i = 0; i < B * n; i++) ones[i] = 1.0f;
    dp_layer_dropout_ops.forward(l, NULL, ones, y, B, ctx);
    free(ones);
}

static void test_dropout_keyed_masks(void) {
    enum { N = 64 };
    dp_layer l = make_dropout(0.5, 4, 3, N);
    float a[3 * N], b[3 * N], c[3 * N];
    /* The same row (id 9) at position 1 of one batch and position 0 of another,
     * as two ranks would see it: the same mask. */
    uint64_t ids_a[3] = {5, 9, 2}, ids_b[2] = {9, 5};
    dp_fwd_ctx ca = {.training = 1, .seed = 42, .step = 3, .row_ids = ids_a};
    dp_fwd_ctx cb = {.training = 1, .seed = 42, .step = 3, .row_ids = ids_b};
    dropout_masks(&l, &ca, 3, N, a);
    dropout_masks(&l, &cb, 2, N, b);
    ASSERT_SAME_FLOATS(a + N, b, N);                     /* id 9 */
    ASSERT_SAME_FLOATS(a, b + N, N);                     /* id 5 */
    ASSERT_DIFFERENT_BYTES(a, a + N, N * sizeof(float)); /* ids 5 and 9 differ */

    /* Another step, another mask for the same row. */
    dp_fwd_ctx next = ca;
    next.step = 4;
    dropout_masks(&l, &next, 3, N, c);
    ASSERT_DIFFERENT_BYTES(a + N, c + N, N * sizeof(float));
    /* Another seed too. */
    dp_fwd_ctx seed2 = ca;
    seed2.seed = 43;
    dropout_masks(&l, &seed2, 3, N, c);
    ASSERT_DIFFERENT_BYTES(a + N, c + N, N * sizeof(float));
    dp_layer_dropout_ops.free(&l);

    /* Another layer (index), another mask. */
    dp_layer l2 = make_dropout(0.5, 5, 3, N);
    dropout_masks(&l2, &ca, 3, N, c);
    ASSERT_DIFFERENT_BYTES(a + N, c + N, N * sizeof(float));

    /* Without row ids the row's position stands for its id. */
    uint64_t pos[3] = {0, 1, 2};
    dp_fwd_ctx with = {.training = 1, .seed = 42, .step = 3, .row_ids = pos};
    dp_fwd_ctx without = {.training = 1, .seed = 42, .step = 3, .row_ids = NULL};
    dropout_masks(&l2, &with, 3, N, a);
    dropout_masks(&l2, &without, 3, N, b);
    ASSERT_SAME_FLOATS(a, b, 3 * N);
    dp_layer_dropout_ops.free(&l2);
}

int main(void) {
    static const test_case cases[] = {
        {"dropout inference identity, rate errors", test_dropout_inference_identity},
        {"dropout training: drop fraction, scale, backward", test_dropout_training},
        {"dropout gradient with a fixed mask", test_dropout_gradcheck},
        {"dropout masks keyed by seed, step, row id, layer", test_dropout_keyed_masks},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_dropout", cases);
}
