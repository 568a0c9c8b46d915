/* test_flops.c - every layer type's forward FLOPs per sample against counts
 * worked out by hand here (a multiply-add 2, a bias, residual or gate
 * operation 1, activation functions 0; layer.h), and that every registered
 * layer type has a count. */
#include "layercheck.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>

/* Creates a layer of cfg on input `in` (as the model's first layer, which an
 * embedding must be) and returns its FLOPs, or -1 when create fails. */
static double flops_of(const dp_layer_cfg *cfg, dp_shape in) {
    const dp_layer_ops *ops = dp_layer_find_ops(cfg->type);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ops->flops);
    dp_layer l;
    memset(&l, 0, sizeof l);
    l.ops = ops;
    dp_error err = {0};
    if (ops->create(&l, cfg, &in, 2, &err)) {
        printf("\n%s: %s\n", cfg->type, err.what);
        return -1;
    }
    double f = ops->flops(&l);
    ops->free(&l);
    return f;
}

static dp_shape shape1(int n) {
    dp_shape s = {1, {n}};
    return s;
}

static dp_shape shape2(int t, int f) {
    dp_shape s = {2, {t, f}};
    return s;
}

static void test_dense(void) {
    dp_layer_cfg c = make_cfg("dense");
    c.units = 64;
    /* 20 -> 64: 20*64 multiply-adds (2560) and 64 biases. */
    CU_ASSERT_EQUAL(flops_of(&c, shape1(20)), 2624.0);
    c.units = 3;
    /* [5, 8] -> [5, 3]: per position 8*3 multiply-adds (48) + 3 biases = 51, times 5. */
    CU_ASSERT_EQUAL(flops_of(&c, shape2(5, 8)), 255.0);
    c.units = 512;
    c.activation = DP_ACT_RELU; /* not counted */
    /* Fashion-MNIST's first dense layer: 784*512*2 = 802,816 + 512. */
    CU_ASSERT_EQUAL(flops_of(&c, shape1(784)), 803328.0);
}

static void test_conv_and_pool(void) {
    /* 32 filters 3x3 on [1, 28, 28], valid: 26*26*32 = 21,632 outputs, each
     * 9 multiply-adds (18) + a bias = 19: 411,008. */
    dp_layer_cfg c = conv_cfg(32, 3, 3, 1, 1, 0, DP_ACT_RELU);
    CU_ASSERT_EQUAL(flops_of(&c, shape3(1, 28, 28)), 411008.0);
    /* 4 filters 3x3 stride 2, same, on [3, 8, 8]: 4x4 positions * 4 filters = 64
     * outputs, each 27 multiply-adds + a bias = 55: 3,520. */
    c = conv_cfg(4, 3, 3, 2, 2, 1, DP_ACT_LINEAR);
    CU_ASSERT_EQUAL(flops_of(&c, shape3(3, 8, 8)), 3520.0);
    /* 2x2 max pooling of [32, 26, 26]: 32*13*13 = 5,408 outputs, 3 comparisons each. */
    dp_layer_cfg p = make_cfg("maxpool2d");
    p.strides[0] = p.strides[1] = 2; /* Keras: strides default to pool_size */
    CU_ASSERT_EQUAL(flops_of(&p, shape3(32, 26, 26)), 16224.0);
    /* 3x2 windows: 5 comparisons for each of the 2 * 2 * 3 outputs of [2, 6, 6]. */
    p.pool[0] = 3;
    p.pool[1] = 2;
    p.strides[0] = 3;
    p.strides[1] = 2;
    CU_ASSERT_EQUAL(flops_of(&p, shape3(2, 6, 6)), 60.0);
}

static void test_recurrent(void) {
    /* T 4, F 3, u 5. simple_rnn per step: 5*(3+5) multiply-adds (80) + 5
     * biases = 85; 340 in all. */
    dp_layer_cfg c = seq_cfg("simple_rnn", 5, 1, DP_ACT_TANH, DP_ACT_SIGMOID);
    CU_ASSERT_EQUAL(flops_of(&c, shape2(4, 3)), 340.0);
    /* lstm per step: 4 gates * 5 units * 8 inputs multiply-adds (320), 20
     * biases, c = f c + i g (15), h = o act(c) (5) = 360; 1,440. */
    c = seq_cfg("lstm", 5, 0, DP_ACT_TANH, DP_ACT_SIGMOID);
    CU_ASSERT_EQUAL(flops_of(&c, shape2(4, 3)), 1440.0);
    /* gru per step: 3 blocks * 5 * 8 multiply-adds (240), 30 biases (input
     * and recurrent), z and r sums (10), r * hg + xg (10), z h + (1 - z) hh
     * (20) = 310; 1,240. */
    c = seq_cfg("gru", 5, 1, DP_ACT_TANH, DP_ACT_SIGMOID);
    CU_ASSERT_EQUAL(flops_of(&c, shape2(4, 3)), 1240.0);
}

static void test_attention_and_block(void) {
    /* T 6, F 8, 2 heads of key_dim 4 (8 columns). q, k, v: 6 positions * (8*8
     * multiply-adds + 8 biases) = 816 each, 2,448; Q K^T and P V: 2 heads * 36
     * pairs * 4 multiply-adds = 288 each, 1,152 FLOPs together; the output
     * projection 6 * (8*8*2 + 8) = 816. In all 4,416. */
    dp_layer_cfg a = make_cfg("multi_head_attention");
    a.num_heads = 2;
    a.key_dim = 4;
    CU_ASSERT_EQUAL(flops_of(&a, shape2(6, 8)), 4416.0);
    a.causal = 0; /* the full products either way */
    CU_ASSERT_EQUAL(flops_of(&a, shape2(6, 8)), 4416.0);
    /* transformer_block, same T, F, heads, ff 16: two layer norms 2 * 8 * 48
     * = 768, the attention 4,416, feed-forward 6 * (8*16*2 + 16) + 6 * (16*8*2
     * + 8) = 1,632 + 1,584 = 3,216, residuals 2 * 48 = 96: 8,496. */
    dp_layer_cfg b = make_cfg("transformer_block");
    b.num_heads = 2;
    b.ff_dim = 16;
    CU_ASSERT_EQUAL(flops_of(&b, shape2(6, 8)), 8496.0);
    b.rate = 0.1; /* dropout: the identity at inference */
    CU_ASSERT_EQUAL(flops_of(&b, shape2(6, 8)), 8496.0);
}

static void test_small_layers(void) {
    dp_layer_cfg c = make_cfg("layer_norm");
    CU_ASSERT_EQUAL(flops_of(&c, shape2(6, 8)), 384.0); /* 8 per value: 8 * 48 */
    c = make_cfg("positional_embedding");
    c.max_length = 10;
    CU_ASSERT_EQUAL(flops_of(&c, shape2(6, 8)), 48.0); /* one addition per value */
    c = make_cfg("global_average_pooling1d");
    CU_ASSERT_EQUAL(flops_of(&c, shape2(6, 8)), 48.0); /* 5 additions and a division, 8 times */
    c = make_cfg("embedding");
    c.input_dim = 256;
    c.output_dim = 16;
    CU_ASSERT_EQUAL(flops_of(&c, shape1(6)), 0.0); /* a lookup */
    c = make_cfg("flatten");
    CU_ASSERT_EQUAL(flops_of(&c, shape3(2, 3, 4)), 0.0);
    c = make_cfg("dropout");
    c.rate = 0.5;
    CU_ASSERT_EQUAL(flops_of(&c, shape1(10)), 0.0);
}

/* Each registered layer type has a count, so summary never prints "?". */
static void test_every_type_counts(void) {
    char types[512];
    snprintf(types, sizeof types, "%s", dp_layer_list_types());
    int n = 0;
    for (char *t = strtok(types, ", "); t; t = strtok(NULL, ", "), n++) {
        const dp_layer_ops *ops = dp_layer_find_ops(t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
        if (!ops->flops) printf("\n%s has no flops\n", t);
        CU_ASSERT_PTR_NOT_NULL(ops->flops);
    }
    CU_ASSERT(n >= 14);
}

int main(void) {
    static const test_case cases[] = {
        {"dense FLOPs by hand", test_dense},
        {"conv2d and maxpool2d FLOPs by hand", test_conv_and_pool},
        {"simple_rnn, lstm, gru FLOPs by hand", test_recurrent},
        {"attention and transformer_block FLOPs by hand", test_attention_and_block},
        {"layer_norm, embeddings, pooling, flatten, dropout FLOPs", test_small_layers},
        {"every layer type counts its FLOPs", test_every_type_counts},
        {NULL, NULL},
    };
    return test_run_suite("flops", cases);
}
