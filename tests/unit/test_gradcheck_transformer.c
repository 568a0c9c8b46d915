/* test_gradcheck_transformer.c - transformer_block: its 16 tensors and initial
 * values, the forward against the same block assembled from the separate
 * layer_norm, multi_head_attention and dense layers, causality to the bit, the
 * gradient against central finite differences (layercheck.c) with and without
 * dropout, dropout masks keyed by row id, and the config errors. */
#include "layercheck.h"
#include "nn/model.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dp_layer_cfg block_cfg(int heads, int ff, double rate, int causal) {
    dp_layer_cfg c = make_cfg("transformer_block");
    c.num_heads = heads;
    c.ff_dim = ff;
    c.rate = rate;
    c.causal = causal;
    return c;
}

static const char *const block_names[16] = {
    "ln1_gamma",    "ln1_beta",   "query_kernel",  "query_bias",  "key_kernel", "key_bias",
    "value_kernel", "value_bias", "output_kernel", "output_bias", "ln2_gamma",  "ln2_beta",
    "ff1_kernel",   "ff1_bias",   "ff2_kernel",    "ff2_bias"};

static void test_block_layout_and_init(void) {
    enum { T = 3, F = 8, H = 2, FF = 12 };
    dp_layer_cfg cfg = block_cfg(H, FF, 0.0, 1);
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, 2, 61, NULL) == 0);
    CU_ASSERT_FATAL(f.l.n_params == 16);
    size_t off = 0;
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_STRING_EQUAL(f.l.params[i].name, block_names[i]);
        CU_ASSERT_EQUAL(f.l.params[i].offset, off);
        off += f.l.params[i].numel;
    }
    CU_ASSERT_EQUAL(f.l.param_count, off);
    /* key_dim = F / heads. */
    CU_ASSERT_EQUAL(f.l.params[2].shape.ndim, 3);
    CU_ASSERT_EQUAL(f.l.params[2].shape.dim[0], F);
    CU_ASSERT_EQUAL(f.l.params[2].shape.dim[1], H);
    CU_ASSERT_EQUAL(f.l.params[2].shape.dim[2], F / H);
    CU_ASSERT_EQUAL(f.l.params[8].shape.dim[0], H);
    CU_ASSERT_EQUAL(f.l.params[8].shape.dim[2], F);
    CU_ASSERT_EQUAL(f.l.params[12].shape.dim[0], F);
    CU_ASSERT_EQUAL(f.l.params[12].shape.dim[1], FF);
    CU_ASSERT_EQUAL(f.l.params[14].shape.dim[0], FF);
    CU_ASSERT_EQUAL(f.l.params[14].shape.dim[1], F);

    f.l.ops->init_params(&f.l, f.params, 5);
    for (int i = 0; i < 16; i++) {
        const dp_param_view *v = &f.l.params[i];
        const float *p = f.params + v->offset;
        double mn = INFINITY, mx = -INFINITY;
        for (size_t j = 0; j < v->numel; j++) mn = fmin(mn, p[j]), mx = fmax(mx, p[j]);
        int gamma = i == 0 || i == 10, kernel = i == 2 || i == 4 || i == 6 || i == 8 || i >= 12;
        if (i == 12 || i == 14) {
            double lim = sqrt(6.0 / (F + FF)); /* 2-D glorot */
            CU_ASSERT(mn >= -lim && mx <= lim && mx - mn > lim);
        } else if (kernel && i != 13 && i != 15) {
            CU_ASSERT(mx > 0.0 && mn < 0.0); /* fans checked in test_gradcheck_attention */
        } else {
            CU_ASSERT_EQUAL(mn, gamma ? 1.0 : 0.0);
            CU_ASSERT_EQUAL(mx, gamma ? 1.0 : 0.0);
        }
    }
    fx_teardown(&f);
}

/* One layer over B samples of [T, F], created from cfg. */
static void run_layer(const dp_layer_ops *ops, const dp_layer_cfg *cfg, int T, int F, int B,
                      const float *params, const float *x, float *y) {
    dp_layer l = {0};
    dp_error err = {0};
    dp_shape in = {2, {T, F}};
    CU_ASSERT_FATAL(ops->create(&l, cfg, &in, B, &err) == 0);
    ops->forward(&l, params, x, y, B, &infer_ctx);
    ops->free(&l);
}

/* The block equals x + MHA(LN1(x)) then y1 + Dense2(gelu(Dense1(LN2(y1)))),
 * computed by the standalone layers on the block's parameter tensors. */
static void test_block_matches_layers(void) {
    enum { B = 2, T = 5, F = 6, FF = 7, N = B * T };
    for (int h = 1; h <= 3; h += 2) {
        dp_layer_cfg cfg = block_cfg(h, FF, 0.0, 1);
        cfg.epsilon = 0.01;
        dp_shape seq = {2, {T, F}};
        fixture f;
        CU_ASSERT_FATAL(
            fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, B, 62 + h, NULL) == 0);
        f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);
        const float *p = f.params;
        float ln[N * F], att[N * F], y1[N * F], hid[N * FF], out[N * F], y[N * F];
        dp_layer_cfg c = make_cfg("layer_norm");
        c.epsilon = 0.01;
        run_layer(&dp_layer_layer_norm_ops, &c, T, F, B, p + f.l.params[0].offset, f.x, ln);
        c = make_cfg("multi_head_attention");
        c.num_heads = h, c.key_dim = F / h;
        run_layer(&dp_layer_multi_head_attention_ops, &c, T, F, B, p + f.l.params[2].offset, ln,
                  att);
        for (int i = 0; i < N * F; i++) y1[i] = f.x[i] + att[i];
        c = make_cfg("layer_norm");
        c.epsilon = 0.01;
        run_layer(&dp_layer_layer_norm_ops, &c, T, F, B, p + f.l.params[10].offset, y1, ln);
        c = make_cfg("dense");
        c.units = FF, c.activation = DP_ACT_GELU;
        run_layer(&dp_layer_dense_ops, &c, T, F, B, p + f.l.params[12].offset, ln, hid);
        c.units = F, c.activation = DP_ACT_LINEAR;
        run_layer(&dp_layer_dense_ops, &c, T, FF, B, p + f.l.params[14].offset, hid, out);
        for (int i = 0; i < N * F; i++) y[i] = y1[i] + out[i];
        double worst = test_max_rel_diff(f.y, y, N * F);
        if (worst > 1e-5) printf("\n  heads %d: max rel diff %g", h, worst);
        CU_ASSERT(worst <= 1e-5);
        fx_teardown(&f);
    }
}

/* Changing every feature at position t leaves positions < t the same bits. */
static void test_block_causal(void) {
    enum { B = 2, T = 5, F = 4 };
    dp_layer_cfg cfg = block_cfg(2, 6, 0.0, 1);
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, B, 66, NULL) == 0);
    float y0[B * T * F];
    f.l.ops->forward(&f.l, f.params, f.x, y0, B, &infer_ctx);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < F; i++) f.x[(T + t) * F + i] *= -2.0f;
        f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);
        for (int i = 0; i < F; i++) f.x[(T + t) * F + i] /= -2.0f;
        ASSERT_SAME_FLOATS(y0 + T * F, f.y + T * F, (size_t)t * F);
        ASSERT_DIFFERENT_BYTES(y0 + (T + t) * F, f.y + (T + t) * F, F * sizeof(float));
        ASSERT_SAME_FLOATS(y0, f.y, T * F); /* the other sample */
    }
    fx_teardown(&f);
}

static void test_block_gradcheck(void) {
    enum { B = 2, T = 4, F = 4, FF = 6 };
    for (int c = 0; c < 2; c++)
        for (int h = 1; h <= 2; h++) {
            dp_layer_cfg cfg = block_cfg(h, FF, 0.0, c);
            dp_shape seq = {2, {T, F}};
            fixture f;
            CU_ASSERT_FATAL(
                fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, B, 70 + h, NULL) == 0);
            char label[64];
            snprintf(label, sizeof label, "block heads %d causal %d", h, c);
            CU_ASSERT_EQUAL(fx_check(&f, label), 0);
            fx_teardown(&f);
        }
}

/* In training the masks are a function of (seed, layer, step, row id): fixed
 * for a fixed ctx, so the finite differences see the same function. */
static void test_block_dropout(void) {
    enum { B = 2, T = 3, F = 4, FF = 5 };
    const uint64_t ids[B] = {17, 4};
    dp_fwd_ctx tr = {.training = 1, .seed = 9, .step = 3, .row_ids = ids};
    dp_layer_cfg cfg = block_cfg(2, FF, 0.4, 1);
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, B, 75, &tr) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "block dropout 0.4"), 0);

    /* Training differs from inference, which is the block without dropout. */
    float yt[B * T * F], yi[B * T * F], y1[T * F];
    f.l.ops->forward(&f.l, f.params, f.x, yt, B, &tr);
    f.l.ops->forward(&f.l, f.params, f.x, yi, B, &infer_ctx);
    ASSERT_DIFFERENT_BYTES(yt, yi, sizeof yt);

    /* Sample 1 alone, with its row id, gets the same bits as in the batch. */
    const uint64_t one[1] = {4};
    dp_fwd_ctx tr1 = tr;
    tr1.row_ids = one;
    f.l.ops->forward(&f.l, f.params, f.x + T * F, y1, 1, &tr1);
    ASSERT_SAME_FLOATS(yt + T * F, y1, T * F);
    /* Another step draws other masks. */
    tr1.step = 4;
    f.l.ops->forward(&f.l, f.params, f.x + T * F, y1, 1, &tr1);
    ASSERT_DIFFERENT_BYTES(yt + T * F, y1, sizeof y1);
    fx_teardown(&f);

    /* Rate 0: training is the inference function, no masks. */
    cfg = block_cfg(2, FF, 0.0, 1);
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_transformer_block_ops, &cfg, &seq, B, 75, &tr) == 0);
    f.l.ops->forward(&f.l, f.params, f.x, yt, B, &tr);
    f.l.ops->forward(&f.l, f.params, f.x, yi, B, &infer_ctx);
    ASSERT_SAME_FLOATS(yt, yi, B * T * F);
    fx_teardown(&f);
}

static void test_block_bad_config(void) {
    dp_layer l = {0};
    dp_error err = {0};
    dp_layer_cfg cfg = block_cfg(3, 8, 0.0, 1);
    dp_shape seq = {2, {4, 8}};
    CU_ASSERT(dp_layer_transformer_block_ops.create(&l, &cfg, &seq, 2, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "num_heads 3 does not divide the 8 features"));
    CU_ASSERT_PTR_NULL(strchr(err.what, '\n'));

    memset(&err, 0, sizeof err);
    cfg = block_cfg(2, 8, 0.0, 1);
    dp_shape flat = {1, {8}};
    CU_ASSERT(dp_layer_transformer_block_ops.create(&l, &cfg, &flat, 2, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[steps, features], got [8]"));

    memset(&err, 0, sizeof err);
    cfg = block_cfg(2, 8, 1.0, 1);
    CU_ASSERT(dp_layer_transformer_block_ops.create(&l, &cfg, &seq, 2, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[0, 1)"));
}

/* The config's keys reach the layers: a model of the three types from YAML. */
static void test_block_from_config(void) {
    static const char yaml[] = "data: {path: seq.h5}\n"
                               "model:\n"
                               "  input: [6, 8]\n"
                               "  layers:\n"
                               "    - transformer_block: {num_heads: 2, ff_dim: 12, dropout: 0.25, "
                               "causal: false, epsilon: 0.01}\n"
                               "    - multi_head_attention: {num_heads: 4, key_dim: 3}\n"
                               "    - layer_norm:\n"
                               "    - dense: {units: 5}\n"
                               "loss: mse\n"
                               "optimizer: adam\n"
                               "train: {epochs: 1, batch_size: 4}\n";
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "seq.yaml", yaml, strlen(yaml), NULL, 0, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(cfg.layers[0].num_heads, 2);
    CU_ASSERT_EQUAL(cfg.layers[0].ff_dim, 12);
    CU_ASSERT_EQUAL(cfg.layers[0].rate, 0.25);
    CU_ASSERT_EQUAL(cfg.layers[0].causal, 0);
    CU_ASSERT_EQUAL(cfg.layers[0].epsilon, 0.01);
    CU_ASSERT_EQUAL(cfg.layers[1].causal, 1);
    CU_ASSERT_EQUAL(cfg.layers[2].epsilon, 1e-3);
    dp_model m;
    rc = dp_model_build(&m, &cfg, 4, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(m.n_layers, 4);
    /* block: 4 * 8 (norms) + 4 * 8 * 8 + 3 * 8 + 8 (attention) + 8 * 12 + 12 + 12 * 8 + 8 */
    CU_ASSERT_EQUAL(m.layers[0].param_count, 32 + 256 + 32 + 96 + 12 + 96 + 8);
    /* attention 4 heads of 3: 3 * (8 * 12 + 12) + 12 * 8 + 8 */
    CU_ASSERT_EQUAL(m.layers[1].param_count, 3 * (96 + 12) + 96 + 8);
    CU_ASSERT_EQUAL(m.layers[2].param_count, 16);
    CU_ASSERT_EQUAL(m.layers[3].out_shape.ndim, 2);
    CU_ASSERT_EQUAL(m.layers[3].out_shape.dim[0], 6);
    CU_ASSERT_EQUAL(m.layers[3].out_shape.dim[1], 5);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

int main(void) {
    static const test_case cases[] = {
        {"block layout and init", test_block_layout_and_init},
        {"block matches its layers", test_block_matches_layers},
        {"block is causal", test_block_causal},
        {"block gradient", test_block_gradcheck},
        {"block dropout", test_block_dropout},
        {"block bad config", test_block_bad_config},
        {"sequence layers from a config", test_block_from_config},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_transformer", cases);
}
