/* test_gradcheck_cnn_model.c - CNN models built from a config: the
 * Fashion-MNIST CNN's shapes, parameter count and one step, a small CNN's loss
 * gradient against central finite differences, and parameter-free layers in
 * front of the first dense one. */
#include "nn/loss.h"
#include "nn/model.h"
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_fmnist_cnn_model(void) {
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "fmnist.yaml", fmnist_cnn_yaml, strlen(fmnist_cnn_yaml),
                                 NULL, 0, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    dp_model m;
    rc = dp_model_build(&m, &cfg, 8, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(m.n_layers, 8);
    /* 28-3+1 = 26, /2 = 13, 13-3+1 = 11, floor(11/2) = 5, 64*5*5 = 1600. */
    static const dp_shape want[8] = {
        {3, {32, 26, 26}}, {3, {32, 13, 13}}, {3, {64, 11, 11}}, {3, {64, 5, 5}},
        {1, {1600}},       {1, {128}},        {1, {128}},        {1, {10}},
    };
    static const char *const types[8] = {"conv2d",  "maxpool2d", "conv2d",  "maxpool2d",
                                         "flatten", "dense",     "dropout", "dense"};
    for (int i = 0; i < 8; i++) {
        char got[64], exp[64];
        CU_ASSERT_STRING_EQUAL(m.layers[i].ops->type, types[i]);
        CU_ASSERT_TRUE(dp_shape_equal(&m.layers[i].out_shape, &want[i]));
        if (!dp_shape_equal(&m.layers[i].out_shape, &want[i]))
            printf("\n  layer %d: %s, expected %s", i,
                   dp_shape_format(&m.layers[i].out_shape, got, sizeof got),
                   dp_shape_format(&want[i], exp, sizeof exp));
    }
    /* conv 1*9*32 + 32; conv 32*9*64 + 64; dense 1600*128 + 128; dense 128*10 + 10. */
    const size_t counts[8] = {9 * 32 + 32,      0, 32 * 9 * 64 + 64, 0, 0,
                              1600 * 128 + 128, 0, 128 * 10 + 10};
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(m.layers[i].param_count, counts[i]);
    CU_ASSERT_EQUAL(m.n_params, 320 + 18496 + 204928 + 1290);
    CU_ASSERT_EQUAL(m.n_params, 225034);
    CU_ASSERT_STRING_EQUAL(m.layers[2].name, "2_conv2d");
    CU_ASSERT_EQUAL(m.fused, 1);
    /* Each conv2d pools its own output; no other layer is absorbed. */
    for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(m.absorbed[i], i == 1 || i == 3);
    CU_ASSERT_PTR_NULL(m.acts[0]);
    CU_ASSERT_PTR_NOT_NULL(m.acts[1]);

    /* One training step's forward and backward run and give finite numbers. */
    dp_model_init_params(&m, 42);
    const int B = 8;
    float *x = malloc(B * 784 * sizeof(float)), y[8], dout[8 * 10];
    uint64_t ids[8];
    for (int i = 0; i < B * 784; i++) x[i] = uniform_in(1, i, 0, 1);
    for (int r = 0; r < B; r++) y[r] = (float)(r % 10), ids[r] = 1000 + r;
    dp_fwd_ctx ctx = {.training = 1, .seed = 42, .step = 0, .row_ids = ids};
    const float *out = dp_model_forward(&m, x, B, &ctx);
    dp_loss_sums s = dp_loss_forward_backward(m.loss, m.fused, out, y, B, 10, 1, dout);
    CU_ASSERT(isfinite(s.loss));
    /* Glorot init and 10 classes: the loss starts near log(10) per row. */
    CU_ASSERT(s.loss / B > 1.5 && s.loss / B < 3.5);
    dp_model_backward(&m, x, dout, B);
    int nonfinite = 0;
    for (size_t i = 0; i < m.n_params; i++) nonfinite += !isfinite(m.grads[i]);
    CU_ASSERT_EQUAL(nonfinite, 0);
    /* Every kernel and bias receives some gradient (relu and dropout zero a part). */
    for (int i = 0; i < m.n_layers; i++)
        for (int p = 0; p < m.layers[i].n_params; p++) {
            const dp_param_view *v = &m.layers[i].params[p];
            const float *g = m.grads + m.layers[i].param_offset + v->offset;
            size_t nz = 0;
            for (size_t k = 0; k < v->numel; k++) nz += g[k] != 0.0f;
            CU_ASSERT(nz * 10 > v->numel);
            if (nz * 10 <= v->numel)
                printf("\n  %s/%s: %zu of %zu gradients non-zero", m.layers[i].name, v->name, nz,
                       v->numel);
        }
    free(x);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

/* A small CNN end to end: the loss's gradient w.r.t. every parameter, through
 * conv (tanh, same) -> maxpool -> conv (linear) -> flatten -> dropout -> dense
 * softmax, against finite differences of the loss. The seed is chosen so every
 * pooling window's top two values are well apart (no argmax switches). */
static const char small_cnn_yaml[] =
    "data: {path: x.h5}\n"
    "model:\n"
    "  input: [2, 6, 5]\n"
    "  layers:\n"
    "    - conv2d: {filters: 3, kernel_size: [3, 2], padding: same, activation: tanh}\n"
    "    - maxpool2d: {pool_size: 2, strides: [2, 1]}\n"
    "    - conv2d: {filters: 2, kernel_size: 2, strides: [1, 2]}\n"
    "    - flatten:\n"
    "    - dropout: {rate: 0.25}\n"
    "    - dense: {units: 4, activation: softmax}\n"
    "loss: sparse_categorical_crossentropy\n"
    "optimizer: sgd\n"
    "train: {epochs: 1, batch_size: 3}\n";

/* Smallest gap between the largest and second largest value of any window. */
static double min_pool_gap(const float *a, int B, int C, int H, int W, int ph, int pw, int sh,
                           int sw) {
    double gap = INFINITY;
    int OH = (H - ph) / sh + 1, OW = (W - pw) / sw + 1;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double m1 = -INFINITY, m2 = -INFINITY;
                    for (int i = 0; i < ph; i++)
                        for (int j = 0; j < pw; j++) {
                            double v = a[((b * C + c) * H + oh * sh + i) * W + ow * sw + j];
                            if (v > m1) m2 = m1, m1 = v;
                            else if (v > m2) m2 = v;
                        }
                    gap = fmin(gap, m1 - m2);
                }
    return gap;
}

static double model_loss(dp_model *m, const float *x, const float *y, int B,
                         const dp_fwd_ctx *ctx) {
    const float *out = dp_model_forward(m, x, B, ctx);
    return dp_loss_forward_backward(m->loss, m->fused, out, y, B, dp_model_output_width(m), 1, NULL)
        .loss;
}

/* How many of m->grads (from the last backward) disagree with central
 * differences of the loss, h = 1e-3; prints the first few. */
static int count_bad_model_grads(dp_model *m, const float *x, const float *y, int B,
                                 const dp_fwd_ctx *ctx, const char *label) {
    int bad = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        float orig = m->params[i], h = 1e-3f, p = orig + h, q = orig - h;
        m->params[i] = p;
        double lp = model_loss(m, x, y, B, ctx);
        m->params[i] = q;
        double lq = model_loss(m, x, y, B, ctx);
        m->params[i] = orig;
        double num = (lp - lq) / ((double)p - q);
        if (!close_enough(m->grads[i], num, 1e-2, 1e-3) && bad++ < 10)
            printf("\n  %s param %zu: analytic %.6g numeric %.6g", label, i, m->grads[i], num);
    }
    return bad;
}

static void test_small_cnn_model_gradient(void) {
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "small.yaml", small_cnn_yaml, strlen(small_cnn_yaml), NULL,
                                 0, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    dp_model m;
    rc = dp_model_build(&m, &cfg, 3, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(m.absorbed[1], 1); /* the gradient checked is the fused one */
    dp_model twin;
    CU_ASSERT_EQUAL_FATAL(dp_model_build_unfused(&twin, &cfg, 3, &err), 0);
    /* conv same: [3, 6, 5]; pool (2,2)/(2,1): [3, 3, 4]; conv 2x2 strides (1,2):
     * [2, 2, 2]; flatten 8; dense 4. */
    dp_shape s0 = {3, {3, 6, 5}}, s1 = {3, {3, 3, 4}}, s2 = {3, {2, 2, 2}};
    CU_ASSERT_TRUE(dp_shape_equal(&m.layers[0].out_shape, &s0));
    CU_ASSERT_TRUE(dp_shape_equal(&m.layers[1].out_shape, &s1));
    CU_ASSERT_TRUE_FATAL(dp_shape_equal(&m.layers[2].out_shape, &s2));
    CU_ASSERT_EQUAL(m.layers[3].out_shape.dim[0], 8);

    enum { B = 3, NX = 2 * 6 * 5 };
    float x[B * NX], y[B] = {0, 3, 1}, dout[B * 4];
    uint64_t ids[B] = {11, 4, 27};
    dp_fwd_ctx ctx = {.training = 1, .seed = 8, .step = 2, .row_ids = ids};
    uint64_t seed = 1;
    for (;; seed++) {
        CU_ASSERT_FATAL(seed < 500);
        for (size_t i = 0; i < m.n_params; i++) m.params[i] = uniform_in(seed, i, -1, 1);
        for (int i = 0; i < B * NX; i++) x[i] = uniform_in(seed + 7777, i, -1.5f, 1.5f);
        /* The conv output is only stored by the unfused twin (the model pools
         * it inside the conv layer). */
        memcpy(twin.params, m.params, m.n_params * sizeof(float));
        dp_model_forward(&twin, x, B, &ctx);
        /* A step h moves a tanh conv output by at most h * max(1, |x|) = 1.5e-3. */
        if (min_pool_gap(twin.acts[0], B, 3, 6, 5, 2, 2, 2, 1) > 0.006) break;
    }
    memset(m.grads, 0, m.n_params * sizeof(float));
    const float *out = dp_model_forward(&m, x, B, &ctx);
    dp_loss_forward_backward(m.loss, m.fused, out, y, B, 4, 1, dout);
    dp_model_backward(&m, x, dout, B);
    CU_ASSERT_EQUAL(count_bad_model_grads(&m, x, y, B, &ctx, "small cnn"), 0);
    dp_model_free(&twin);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

/* Layers in front of the first one with parameters get no backward (nothing
 * before them learns): the parameter gradients must not change, and the
 * reduction hook must still hear of every layer, last to first. */
static const char leading_free_yaml[] = "data: {path: x.h5}\n"
                                        "model:\n"
                                        "  input: [2, 3, 2]\n"
                                        "  layers:\n"
                                        "    - flatten:\n"
                                        "    - dropout: {rate: 0.3}\n"
                                        "    - dense: {units: 5, activation: tanh}\n"
                                        "    - dense: {units: 3, activation: softmax}\n"
                                        "loss: sparse_categorical_crossentropy\n"
                                        "optimizer: sgd\n"
                                        "train: {epochs: 1, batch_size: 4}\n";

typedef struct hook_log {
    int n, order[8];
} hook_log;

static void log_layer(void *ctx, int layer) {
    hook_log *h = ctx;
    if (h->n < 8) h->order[h->n] = layer;
    h->n++;
}

static void test_leading_parameter_free_layers(void) {
    dp_config cfg;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_config_load_text(&cfg, "lead.yaml", leading_free_yaml,
                                              strlen(leading_free_yaml), NULL, 0, &err),
                          0);
    dp_model m;
    CU_ASSERT_EQUAL_FATAL(dp_model_build(&m, &cfg, 4, &err), 0);
    enum { B = 4, NX = 12 };
    float x[B * NX], y[B] = {0, 2, 1, 2}, dout[B * 3];
    uint64_t ids[B] = {3, 9, 14, 20};
    dp_fwd_ctx ctx = {.training = 1, .seed = 5, .step = 1, .row_ids = ids};
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = uniform_in(21, i, -1, 1);
    for (int i = 0; i < B * NX; i++) x[i] = uniform_in(22, i, -2, 2);
    memset(m.grads, 0, m.n_params * sizeof(float));
    const float *out = dp_model_forward(&m, x, B, &ctx);
    dp_loss_forward_backward(m.loss, m.fused, out, y, B, 3, 1, dout);
    hook_log h = {0};
    dp_model_backward_hooked(&m, x, dout, B, log_layer, &h);
    CU_ASSERT_EQUAL(h.n, 4);
    for (int k = 0; k < 4 && k < h.n; k++) CU_ASSERT_EQUAL(h.order[k], 3 - k);
    CU_ASSERT_EQUAL(count_bad_model_grads(&m, x, y, B, &ctx, "leading flatten"), 0);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

int main(void) {
    static const test_case cases[] = {
        {"fashion-mnist cnn: shapes, parameter count, one step", test_fmnist_cnn_model},
        {"small cnn: model gradient vs finite differences", test_small_cnn_model_gradient},
        {"flatten, dropout before the first dense: no backward, same gradients",
         test_leading_parameter_free_layers},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_cnn_model", cases);
}
