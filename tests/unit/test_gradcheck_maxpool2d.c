/* test_gradcheck_maxpool2d.c - maxpool2d against window maxima and central
 * finite differences (layercheck.c): ties, overlapping windows, errors. */
#include "core/rng.h"
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* x values 0.1 * (a permutation of 0..n-1): distinct, at least 0.1 apart, so no
 * finite-difference step of 1e-2 moves an argmax. */
static void distinct_values(float *x, size_t n, uint64_t key) {
    uint32_t *perm = malloc(n * sizeof *perm);
    dp_rng_permute(key, perm, n);
    for (size_t i = 0; i < n; i++) x[i] = 0.1f * ((float)perm[i] - (float)n / 2);
    free(perm);
}

typedef struct pool_case {
    const char *name;
    int B, C, H, W, ph, pw, sh, sw;
    int OH, OW; /* by hand: floor((n - p) / s) + 1 */
} pool_case;

static const pool_case pool_cases[] = {
    {"2x2 stride 2 on 6x6", 2, 3, 6, 6, 2, 2, 2, 2, 3, 3},
    {"2x2 stride 2 on odd 7x5 (last row/col dropped)", 2, 2, 7, 5, 2, 2, 2, 2, 3, 2},
    {"pool (2,3) strides (1,2) on 7x8 (overlapping rows)", 2, 2, 7, 8, 2, 3, 1, 2, 6, 3},
    {"3x3 stride 1 on 5x6", 1, 2, 5, 6, 3, 3, 1, 1, 3, 4},
};

static void test_maxpool(void) {
    for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++) {
        const pool_case *pc = &pool_cases[k];
        dp_layer_cfg cfg = make_cfg("maxpool2d");
        cfg.pool[0] = pc->ph, cfg.pool[1] = pc->pw;
        cfg.strides[0] = pc->sh, cfg.strides[1] = pc->sw;
        dp_shape in = shape3(pc->C, pc->H, pc->W);
        fixture f;
        CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_maxpool2d_ops, &cfg, &in, pc->B, 40 + k, NULL) == 0);
        CU_ASSERT_EQUAL(f.l.param_count, 0);
        CU_ASSERT_EQUAL(f.l.out_shape.ndim, 3);
        CU_ASSERT_EQUAL(f.l.out_shape.dim[0], pc->C);
        CU_ASSERT_EQUAL(f.l.out_shape.dim[1], pc->OH);
        CU_ASSERT_EQUAL_FATAL(f.l.out_shape.dim[2], pc->OW);
        distinct_values(f.x, f.B * f.nin, 77 + k);

        /* Forward against a plain window max. */
        f.l.ops->forward(&f.l, f.params, f.x, f.y, f.B, &infer_ctx);
        int bad = 0;
        for (int b = 0; b < pc->B; b++)
            for (int c = 0; c < pc->C; c++)
                for (int oh = 0; oh < pc->OH; oh++)
                    for (int ow = 0; ow < pc->OW; ow++) {
                        float m = -INFINITY;
                        for (int i = 0; i < pc->ph; i++)
                            for (int j = 0; j < pc->pw; j++)
                                m = fmaxf(m,
                                          f.x[((b * pc->C + c) * pc->H + oh * pc->sh + i) * pc->W +
                                              ow * pc->sw + j]);
                        if (f.y[((b * pc->C + c) * pc->OH + oh) * pc->OW + ow] != m) bad++;
                    }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(fx_check(&f, pc->name), 0);
        fx_teardown(&f);
    }
}

static void test_maxpool_ties_and_errors(void) {
    /* All four equal: the gradient goes to the first (top-left) one only. */
    dp_layer_cfg cfg = make_cfg("maxpool2d");
    dp_shape in = shape3(1, 2, 2);
    dp_layer l = {0};
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_layer_maxpool2d_ops.create(&l, &cfg, &in, 1, &err) == 0);
    float x[4] = {1, 1, 1, 1}, y[1], dy[1] = {3}, dx[4] = {9, 9, 9, 9};
    dp_layer_maxpool2d_ops.forward(&l, NULL, x, y, 1, &infer_ctx);
    CU_ASSERT_EQUAL(y[0], 1.0f);
    dp_layer_maxpool2d_ops.backward(&l, NULL, x, y, dy, dx, NULL, 1);
    CU_ASSERT_EQUAL(dx[0], 3.0f);
    CU_ASSERT_EQUAL(dx[1], 0.0f);
    CU_ASSERT_EQUAL(dx[2], 0.0f);
    CU_ASSERT_EQUAL(dx[3], 0.0f);
    /* Tie between positions 1 and 3 (row-major): position 1 wins. */
    float x2[4] = {0, 2, -1, 2};
    dp_layer_maxpool2d_ops.forward(&l, NULL, x2, y, 1, &infer_ctx);
    dp_layer_maxpool2d_ops.backward(&l, NULL, x2, y, dy, dx, NULL, 1);
    CU_ASSERT_EQUAL(dx[1], 3.0f);
    CU_ASSERT_EQUAL(dx[3], 0.0f);
    dp_layer_maxpool2d_ops.free(&l);

    /* Overlapping windows (pool 2, stride 1) add up at a shared maximum:
     * x = [[0, 5, 0]] with pool [1, 2]: both windows pick the 5. */
    dp_layer_cfg ov = make_cfg("maxpool2d");
    ov.pool[0] = 1, ov.pool[1] = 2;
    ov.strides[0] = 1, ov.strides[1] = 1;
    dp_shape row = shape3(1, 1, 3);
    CU_ASSERT_FATAL(dp_layer_maxpool2d_ops.create(&l, &ov, &row, 1, &err) == 0);
    CU_ASSERT_EQUAL(l.out_shape.dim[2], 2);
    float x3[3] = {0, 5, 0}, y3[2], dy3[2] = {1.5f, 2.0f}, dx3[3];
    dp_layer_maxpool2d_ops.forward(&l, NULL, x3, y3, 1, &infer_ctx);
    dp_layer_maxpool2d_ops.backward(&l, NULL, x3, y3, dy3, dx3, NULL, 1);
    CU_ASSERT_EQUAL(dx3[0], 0.0f);
    CU_ASSERT_EQUAL(dx3[1], 3.5f);
    CU_ASSERT_EQUAL(dx3[2], 0.0f);
    dp_layer_maxpool2d_ops.free(&l);

    dp_shape tiny = shape3(4, 1, 5);
    CU_ASSERT(dp_layer_maxpool2d_ops.create(&l, &cfg, &tiny, 1, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[4, 1, 5]"));
    dp_error_clear(&err);
    dp_shape flat = {1, {16}};
    CU_ASSERT(dp_layer_maxpool2d_ops.create(&l, &cfg, &flat, 1, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "3-D"));
    CU_ASSERT_PTR_NULL(l.state);
}

int main(void) {
    static const test_case cases[] = {
        {"maxpool2d forward vs window max + gradients", test_maxpool},
        {"maxpool2d ties, overlaps, errors", test_maxpool_ties_and_errors},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_maxpool2d", cases);
}
