/* test_conv_fused.c - a conv2d that pools its own output (fused) against
 * conv2d then maxpool2d (unfused), from the same parameters and inputs: the
 * same output and gradient bits. */
#include "nn/loss.h"
#include "nn/model.h"
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fused model (conv2d pooling its own output) against the unfused one, from
 * the same parameters and inputs: the same output and gradient bits. Windows
 * that do not overlap route each gradient value once, so even tanh matches
 * exactly; with overlapping windows relu still does (its derivative is 0 or
 * 1), while tanh may round differently where two windows share a maximum. */
static void check_fused_matches(const char *yaml, int B, int exact) {
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "fused.yaml", yaml, strlen(yaml), NULL, 0, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    dp_model m[2];
    CU_ASSERT_EQUAL_FATAL(dp_model_build(&m[0], &cfg, B, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_model_build_unfused(&m[1], &cfg, B, &err), 0);
    CU_ASSERT_EQUAL(m[0].absorbed[1], 1);
    CU_ASSERT_EQUAL(m[1].absorbed[1], 0);
    size_t nx = dp_shape_numel(&m[0].in_shape);
    int k = dp_model_output_width(&m[0]);
    float *x = malloc((size_t)B * nx * sizeof *x), *y = malloc((size_t)B * sizeof *y);
    float *dout[2] = {malloc((size_t)B * k * sizeof(float)), malloc((size_t)B * k * sizeof(float))};
    float *out[2];
    for (size_t i = 0; i < (size_t)B * nx; i++) x[i] = uniform_in(5, i, -1, 1);
    /* Plateaus make ties: relu zeros and repeated pixels both occur. */
    for (size_t i = 0; i < (size_t)B * nx; i += 7) x[i] = x[i + 1 < (size_t)B * nx ? i + 1 : i];
    for (int r = 0; r < B; r++) y[r] = (float)(r % k);
    for (int v = 0; v < 2; v++) {
        dp_model_init_params(&m[v], 9);
        memset(m[v].grads, 0, m[v].n_params * sizeof(float));
        out[v] = (float *)dp_model_forward(&m[v], x, B, NULL);
        dp_loss_forward_backward(m[v].loss, m[v].fused, out[v], y, B, k, 1, dout[v]);
        dp_model_backward(&m[v], x, dout[v], B);
    }
    ASSERT_SAME_FLOATS(out[0], out[1], (size_t)B * k);
    size_t differ = test_count_different_floats(m[0].grads, m[1].grads, m[0].n_params);
    double worst = 0;
    for (size_t i = 0; i < m[0].n_params; i++) {
        double a = m[0].grads[i], b = m[1].grads[i];
        worst = fmax(worst, fabs(a - b) / (1e-6 + fabs(b)));
    }
    if (exact) ASSERT_SAME_FLOATS(m[0].grads, m[1].grads, m[0].n_params);
    CU_ASSERT(worst < 1e-4);
    if ((exact && differ) || worst >= 1e-4)
        printf("\n  fused vs unfused: %zu gradients differ, worst relative %.3g", differ, worst);
    free(x), free(y), free(dout[0]), free(dout[1]);
    dp_model_free(&m[0]);
    dp_model_free(&m[1]);
    dp_config_free(&cfg);
}

static void test_fused_conv_pool(void) {
    /* The Fashion-MNIST model's pattern, with both conv paths: 1 channel (the
     * direct kernels where built) and 4 channels (patch matrices). */
    check_fused_matches(fmnist_cnn_yaml, 5, 1);
    static const char tanh_same[] =
        "data: {path: x.h5}\n"
        "model:\n"
        "  input: [3, 9, 7]\n"
        "  layers:\n"
        "    - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: tanh}\n"
        "    - maxpool2d: {pool_size: [2, 3], strides: [2, 3]}\n"
        "    - flatten:\n"
        "    - dense: {units: 3, activation: softmax}\n"
        "loss: sparse_categorical_crossentropy\n"
        "optimizer: sgd\n"
        "train: {epochs: 1, batch_size: 4}\n";
    check_fused_matches(tanh_same, 4, 1);
    static const char overlap_relu[] =
        "data: {path: x.h5}\n"
        "model:\n"
        "  input: [1, 8, 8]\n"
        "  layers:\n"
        "    - conv2d: {filters: 3, kernel_size: 2, activation: relu}\n"
        "    - maxpool2d: {pool_size: 3, strides: 1}\n"
        "    - flatten:\n"
        "    - dense: {units: 3, activation: softmax}\n"
        "loss: sparse_categorical_crossentropy\n"
        "optimizer: sgd\n"
        "train: {epochs: 1, batch_size: 3}\n";
    check_fused_matches(overlap_relu, 3, 1);
    static const char overlap_tanh[] =
        "data: {path: x.h5}\n"
        "model:\n"
        "  input: [2, 7, 9]\n"
        "  layers:\n"
        "    - conv2d: {filters: 2, kernel_size: [2, 3], activation: tanh}\n"
        "    - maxpool2d: {pool_size: 2, strides: 1}\n"
        "    - flatten:\n"
        "    - dense: {units: 2, activation: softmax}\n"
        "loss: sparse_categorical_crossentropy\n"
        "optimizer: sgd\n"
        "train: {epochs: 1, batch_size: 3}\n";
    check_fused_matches(overlap_tanh, 3, 0);
}

int main(void) {
    static const test_case cases[] = {
        {"conv2d pooling its own output = conv2d then maxpool2d", test_fused_conv_pool},
        {NULL, NULL},
    };
    return test_run_suite("conv_fused", cases);
}
