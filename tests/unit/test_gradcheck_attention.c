/* test_gradcheck_attention.c - multi_head_attention: the forward against a
 * double-precision reimplementation of Keras MultiHeadAttention's einsums with
 * its [F, H, Dk] / [H, Dk, F] kernels, Keras's initializer fans, causality to
 * the bit, the gradient against central finite differences (layercheck.c) for
 * 1, 2 and 3 heads, causal or not, and the config errors. */
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dp_layer_cfg mha_cfg(int heads, int key_dim, int causal) {
    dp_layer_cfg c = make_cfg("multi_head_attention");
    c.num_heads = heads;
    c.key_dim = key_dim;
    c.causal = causal;
    return c;
}

/* A fixture of the layer over B samples of [T, F]; as fx_setup. */
static int mha_setup(fixture *f, int heads, int key_dim, int causal, int B, int T, int F,
                     uint64_t seed) {
    dp_layer_cfg cfg = mha_cfg(heads, key_dim, causal);
    dp_shape seq = {2, {T, F}};
    return fx_setup(f, &dp_layer_multi_head_attention_ops, &cfg, &seq, B, seed, NULL);
}

/* Keras MultiHeadAttention (query = value = key = x, value_dim = key_dim), in
 * double, indexing the kernels as the 3-D arrays Keras stores:
 *   q = einsum("abc,cde->abde", x, Wq) + bq, and k, v alike;   [B, T, H, Dk]
 *   q = q / sqrt(Dk)
 *   s = einsum("aecd,abcd->acbe", k, q)                         [B, H, T, T]
 *   p = softmax(s) over the last axis, masked to e <= b if causal
 *   o = einsum("acbe,aecd->abcd", p, v)                         [B, T, H, Dk]
 *   y = einsum("abcd,cde->abe", o, Wo) + bo                     [B, T, F] */
static void keras_reference(double *y, const float *x, const float *w, int B, int T, int F, int H,
                            int Dk, int causal) {
    const float *wt[3], *bt[3];
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        wt[i] = w + off, off += (size_t)F * H * Dk; /* [F][H][Dk] */
        bt[i] = w + off, off += (size_t)H * Dk;     /* [H][Dk] */
    }
    const float *wo = w + off, *bo = w + off + (size_t)H * Dk * F; /* [H][Dk][F], [F] */
    size_t nproj = (size_t)B * T * H * Dk;
    double *proj = malloc(3 * nproj * sizeof *proj); /* q, k, v as [B][T][H][Dk] */
    double *o = calloc(nproj, sizeof *o);
#define X(a, b, c) x[((size_t)(a)*T + (b)) * F + (c)]
#define P(i, a, b, c, d) proj[(i)*nproj + (((size_t)(a)*T + (b)) * H + (c)) * Dk + (d)]
    for (int i = 0; i < 3; i++)
        for (int a = 0; a < B; a++)
            for (int b = 0; b < T; b++)
                for (int d = 0; d < H; d++)
                    for (int e = 0; e < Dk; e++) {
                        double s = bt[i][d * Dk + e];
                        for (int c = 0; c < F; c++)
                            s += X(a, b, c) * (double)wt[i][((size_t)c * H + d) * Dk + e];
                        P(i, a, b, d, e) = i == 0 ? s / sqrt((double)Dk) : s;
                    }
    double *sc = malloc((size_t)T * sizeof *sc);
    for (int a = 0; a < B; a++)
        for (int c = 0; c < H; c++)
            for (int b = 0; b < T; b++) {
                int n = causal ? b + 1 : T;
                double mx = -INFINITY, sum = 0.0;
                for (int e = 0; e < n; e++) {
                    double s = 0.0;
                    for (int d = 0; d < Dk; d++) s += P(1, a, e, c, d) * P(0, a, b, c, d);
                    sc[e] = s;
                    mx = fmax(mx, s);
                }
                for (int e = 0; e < n; e++) sum += (sc[e] = exp(sc[e] - mx));
                for (int e = 0; e < n; e++)
                    for (int d = 0; d < Dk; d++)
                        o[(((size_t)a * T + b) * H + c) * Dk + d] += sc[e] / sum * P(2, a, e, c, d);
            }
    for (int a = 0; a < B; a++)
        for (int b = 0; b < T; b++)
            for (int e = 0; e < F; e++) {
                double s = bo[e];
                for (int c = 0; c < H; c++)
                    for (int d = 0; d < Dk; d++)
                        s += o[(((size_t)a * T + b) * H + c) * Dk + d] *
                             (double)wo[((size_t)c * Dk + d) * F + e];
                y[((size_t)a * T + b) * F + e] = s;
            }
#undef X
#undef P
    free(proj), free(o), free(sc);
}

static void test_attention_layout_and_init(void) {
    enum { T = 4, F = 6, H = 3, Dk = 5 };
    dp_layer_cfg cfg = mha_cfg(H, Dk, 1);
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_multi_head_attention_ops, &cfg, &seq, 2, 41, NULL) == 0);
    static const char *const names[8] = {"query_kernel",  "query_bias",   "key_kernel",
                                         "key_bias",      "value_kernel", "value_bias",
                                         "output_kernel", "output_bias"};
    CU_ASSERT_FATAL(f.l.n_params == 8);
    size_t off = 0;
    for (int i = 0; i < 8; i++) {
        const dp_param_view *v = &f.l.params[i];
        CU_ASSERT_STRING_EQUAL(v->name, names[i]);
        CU_ASSERT_EQUAL(v->offset, off);
        off += v->numel;
        int want[3] = {0}, nd;
        if (i == 6) nd = 3, want[0] = H, want[1] = Dk, want[2] = F;
        else if (i == 7) nd = 1, want[0] = F;
        else if (i % 2 == 0) nd = 3, want[0] = F, want[1] = H, want[2] = Dk;
        else nd = 2, want[0] = H, want[1] = Dk;
        CU_ASSERT_EQUAL(v->shape.ndim, nd);
        for (int d = 0; d < nd; d++) CU_ASSERT_EQUAL(v->shape.dim[d], want[d]);
    }
    CU_ASSERT_EQUAL(f.l.param_count, off);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], T);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], F);

    /* Keras's compute_fans for a 3-D kernel: r = prod(shape[:-2]),
     * fan_in = shape[-2] r, fan_out = shape[-1] r; glorot limit sqrt(6 / (in + out)). */
    f.l.ops->init_params(&f.l, f.params, 11);
    const double lim_in = sqrt(6.0 / (H * F + Dk * F)), lim_out = sqrt(6.0 / (Dk * H + F * H));
    for (int i = 0; i < 8; i++) {
        const dp_param_view *v = &f.l.params[i];
        const float *p = f.params + v->offset;
        double mx = 0.0;
        for (size_t j = 0; j < v->numel; j++) mx = fmax(mx, fabs(p[j]));
        if (i % 2) {
            CU_ASSERT_EQUAL(mx, 0.0); /* biases */
        } else {
            double lim = i == 6 ? lim_out : lim_in;
            CU_ASSERT(mx <= lim);
            CU_ASSERT(mx >= 0.85 * lim); /* 90 draws reach near the limit */
        }
    }
    /* The kernels are different draws. */
    CU_ASSERT(memcmp(f.params, f.params + f.l.params[2].offset, F * H * Dk * sizeof(float)) != 0);
    fx_teardown(&f);
}

/* Random weights, heads of a width other than F / H, causal or not. */
static void test_attention_matches_keras(void) {
    enum { B = 2, T = 5, F = 6 };
    const int heads[3] = {1, 2, 3}, dks[3] = {4, 3, 5};
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 3; k++) {
            fixture f;
            CU_ASSERT_FATAL(mha_setup(&f, heads[k], dks[k], c, B, T, F, 42 + k) == 0);
            f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);
            double ref[B * T * F];
            keras_reference(ref, f.x, f.params, B, T, F, heads[k], dks[k], c);
            double worst = 0.0, big = 0.0;
            for (int i = 0; i < B * T * F; i++) {
                worst = fmax(worst, fabs(f.y[i] - ref[i]) / fmax(1.0, fabs(ref[i])));
                big = fmax(big, fabs(ref[i]));
            }
            if (worst > 1e-5) printf("\n  heads %d causal %d: max rel diff %g", heads[k], c, worst);
            CU_ASSERT(worst <= 1e-5);
            CU_ASSERT(big > 0.5); /* the outputs are not trivially small */
            fx_teardown(&f);
        }
}

/* Changing every feature at position t leaves positions < t the same bits,
 * and changes position t (and, without the mask, position 0). */
static void test_attention_causal(void) {
    enum { B = 3, T = 6, F = 4 };
    for (int c = 0; c < 2; c++) {
        fixture f;
        CU_ASSERT_FATAL(mha_setup(&f, 2, 2, c, B, T, F, 45) == 0);
        float *y0 = malloc(B * T * F * sizeof(float));
        f.l.ops->forward(&f.l, f.params, f.x, y0, B, &infer_ctx);
        for (int t = 1; t < T; t++) {
            for (int i = 0; i < F; i++) f.x[(1 * T + t) * F + i] += 0.5f;
            f.l.ops->forward(&f.l, f.params, f.x, f.y, B, &infer_ctx);
            for (int i = 0; i < F; i++) f.x[(1 * T + t) * F + i] -= 0.5f;
            const float *a = y0 + (1 * T) * F, *b = f.y + (1 * T) * F; /* sample 1 */
            if (c) {
                ASSERT_SAME_FLOATS(a, b, (size_t)t * F);
            } else {
                ASSERT_DIFFERENT_BYTES(a, b, F * sizeof(float));
            }
            ASSERT_DIFFERENT_BYTES(a + t * F, b + t * F, F * sizeof(float));
            /* Other samples never change. */
            ASSERT_SAME_FLOATS(y0, f.y, T * F);
            ASSERT_SAME_FLOATS(y0 + 2 * T * F, f.y + 2 * T * F, T * F);
        }
        free(y0);
        fx_teardown(&f);
    }
}

static void test_attention_gradcheck(void) {
    enum { B = 2, T = 4, F = 6 };
    const int heads[3] = {1, 2, 3}, dks[3] = {3, 3, 2};
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 3; k++) {
            fixture f;
            CU_ASSERT_FATAL(mha_setup(&f, heads[k], dks[k], c, B, T, F, 50 + k) == 0);
            char label[64];
            snprintf(label, sizeof label, "attention heads %d causal %d", heads[k], c);
            CU_ASSERT_EQUAL(fx_check(&f, label), 0);
            fx_teardown(&f);
        }
}

static void test_attention_bad_config(void) {
    dp_layer l = {0};
    dp_error err = {0};
    dp_layer_cfg cfg = mha_cfg(2, 4, 1);
    dp_shape flat = {1, {8}};
    CU_ASSERT(dp_layer_multi_head_attention_ops.create(&l, &cfg, &flat, 2, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[8]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[steps, features]"));

    /* 4 heads of 16 over 8 features: 64 > 4 x 8. */
    memset(&err, 0, sizeof err);
    cfg = mha_cfg(4, 16, 1);
    dp_shape seq = {2, {5, 8}};
    CU_ASSERT(dp_layer_multi_head_attention_ops.create(&l, &cfg, &seq, 2, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "4 * 16 = 64"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "8 input features"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "key_dim = 8 / num_heads"));
    CU_ASSERT_PTR_NULL(strchr(err.what, '\n'));

    /* Up to 4 x F is a legitimate Keras configuration. */
    cfg = mha_cfg(4, 8, 1);
    CU_ASSERT_FATAL(dp_layer_multi_head_attention_ops.create(&l, &cfg, &seq, 2, &err) == 0);
    dp_layer_multi_head_attention_ops.free(&l);
}

int main(void) {
    static const test_case cases[] = {
        {"attention layout and Keras init", test_attention_layout_and_init},
        {"attention matches Keras", test_attention_matches_keras},
        {"attention is causal", test_attention_causal},
        {"attention gradient", test_attention_gradcheck},
        {"attention bad config", test_attention_bad_config},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_attention", cases);
}
