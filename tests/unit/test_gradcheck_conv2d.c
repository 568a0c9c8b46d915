/* test_gradcheck_conv2d.c - conv2d against central finite differences (the
 * fixture in layercheck.c), its forward against plain direct loops written
 * here, output sizes against hand-computed TensorFlow formulas, and the direct
 * kernels. */
#include "layers/conv_direct.h"
#include "layers/im2col.h"
#include "layercheck.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ im2col sizes ---- */

/* Every expected value worked by hand from TensorFlow's rules:
 * valid: out = floor((n - k) / s) + 1; same: out = ceil(n / s),
 * total pad = max((out - 1) * s + k - n, 0), top/left gets floor(total / 2). */
static void test_out_sizes(void) {
    int pad = -1;
    CU_ASSERT_EQUAL(dp_im2col_out_size(7, 3, 2, 1, &pad), 4); /* total (4-1)*2+3-7 = 2 */
    CU_ASSERT_EQUAL(pad, 1);
    CU_ASSERT_EQUAL(dp_im2col_out_size(6, 3, 2, 1, &pad), 3); /* total 2*2+3-6 = 1 */
    CU_ASSERT_EQUAL(pad, 0);
    CU_ASSERT_EQUAL(dp_im2col_out_size(5, 3, 1, 1, &pad), 5); /* total 4+3-5 = 2 */
    CU_ASSERT_EQUAL(pad, 1);
    CU_ASSERT_EQUAL(dp_im2col_out_size(28, 4, 1, 1, &pad), 28); /* total 3: 1 before, 2 after */
    CU_ASSERT_EQUAL(pad, 1);
    CU_ASSERT_EQUAL(dp_im2col_out_size(1, 5, 1, 1, &pad), 1); /* total 4 */
    CU_ASSERT_EQUAL(pad, 2);
    CU_ASSERT_EQUAL(dp_im2col_out_size(10, 1, 3, 1, &pad), 4); /* total 3*3+1-10 = 0 */
    CU_ASSERT_EQUAL(pad, 0);
    CU_ASSERT_EQUAL(dp_im2col_out_size(28, 3, 1, 0, &pad), 26);
    CU_ASSERT_EQUAL(pad, 0);
    CU_ASSERT_EQUAL(dp_im2col_out_size(7, 2, 2, 0, &pad), 3);
    CU_ASSERT_EQUAL(dp_im2col_out_size(8, 3, 2, 0, &pad), 3);
    CU_ASSERT_EQUAL(dp_im2col_out_size(4, 4, 1, 0, &pad), 1);
    CU_ASSERT(dp_im2col_out_size(2, 3, 1, 0, &pad) < 1);
    CU_ASSERT(dp_im2col_out_size(2, 3, 2, 0, &pad) < 1); /* (2-3)/2 truncates to 0: must not be 1 */
}

/* -------------------------------------------------------------- conv2d ---- */

/* Direct convolution in double, written plainly: y[b][f][oh][ow] =
 * act(bias[f] + sum over c, i, j of w[f][c][i][j] x[b][c][oh*sh+i-pt][ow*sw+j-pl]). */
static void reference_conv(const float *x, const float *w, const float *bias, int B, int C, int H,
                           int W, int F, int kh, int kw, int sh, int sw, int pt, int pl, int OH,
                           int OW, dp_act act, double *y) {
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double z = bias[f];
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int ih = oh * sh + i - pt, iw = ow * sw + j - pl;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                z += (double)w[((f * C + c) * kh + i) * kw + j] *
                                     x[((b * C + c) * H + ih) * W + iw];
                            }
                    if (act == DP_ACT_RELU && z < 0) z = 0;
                    if (act == DP_ACT_TANH) z = tanh(z);
                    y[((b * F + f) * OH + oh) * OW + ow] = z;
                }
}

typedef struct conv_case {
    const char *name;
    int B, C, H, W, F, kh, kw, sh, sw, same;
    int OH, OW, pt, pl; /* by hand */
} conv_case;

static const conv_case conv_cases[] = {
    /* valid: (6-3)/1+1 = 4 */
    {"3x3 valid stride 1", 2, 3, 6, 6, 4, 3, 3, 1, 1, 0, 4, 4, 0, 0},
    /* same, stride 2: H ceil(7/2) = 4, pad 2 -> 1 top; W ceil(6/2) = 3, pad 1 -> 0 left */
    {"3x3 same stride 2", 2, 2, 7, 6, 3, 3, 3, 2, 2, 1, 4, 3, 1, 0},
    /* valid: H (7-2)/2+1 = 3, W (5-3)/1+1 = 3 */
    {"2x3 valid stride (2,1) on 7x5", 2, 2, 7, 5, 3, 2, 3, 2, 1, 0, 3, 3, 0, 0},
    /* same: H ceil(7/2) = 4, pad 3*2+2-7 = 1 -> 0 top; W 5, pad 4+3-5 = 2 -> 1 left */
    {"2x3 same stride (2,1) on 7x5", 2, 2, 7, 5, 3, 2, 3, 2, 1, 1, 4, 5, 0, 1},
    /* 1x1 window: the layer multiplies x directly, no patch matrix */
    {"1x1 valid", 3, 3, 4, 5, 2, 1, 1, 1, 1, 0, 4, 5, 0, 0},
    /* 1x1 with stride 2 still needs the patch matrix: (5-1)/2+1 = 3 */
    {"1x1 stride 2", 2, 2, 5, 5, 2, 1, 1, 2, 2, 0, 3, 3, 0, 0},
    /* same, stride 1: padding on every side, ceil(5/1) = 5, pad 2 -> 1; W likewise */
    {"3x3 same stride 1", 2, 2, 5, 6, 3, 3, 3, 1, 1, 1, 5, 6, 1, 1},
    /* window larger than the image, same: H out 3, pad (3-1)+5-3 = 4 -> 2 on top;
     * W out 4, pad (4-1)+5-4 = 4 -> 2 on the left */
    {"5x5 same on 3x4", 2, 2, 3, 4, 2, 5, 5, 1, 1, 1, 3, 4, 2, 2},
    /* rows longer than 16 values: valid 3x3 on 4x20 -> 2x18 */
    {"3x3 valid on a wide 4x20", 2, 2, 4, 20, 2, 3, 3, 1, 1, 0, 2, 18, 0, 0},
    /* the first Fashion-MNIST layer, one channel, smaller image */
    {"3x3 one channel", 2, 1, 9, 8, 4, 3, 3, 1, 1, 0, 7, 6, 0, 0},
    /* Shallow stride-1 windows (K <= 16) take the direct kernels where built.
     * same: pad 2 -> 1 on each axis; rows of 37 values are three vectors. */
    {"3x3 same one channel, rows of 37", 2, 1, 5, 37, 3, 3, 3, 1, 1, 1, 5, 37, 1, 1},
    /* same with an even window: total padding 3 -> 1 before, 2 after */
    {"4x4 same one channel (K = 16)", 2, 1, 6, 7, 3, 4, 4, 1, 1, 1, 6, 7, 1, 1},
    /* K = 10 = 8 + 2 window offsets; 5 filters, one left over from pairs */
    {"1x5 valid on two channels (K = 10)", 3, 2, 4, 9, 5, 1, 5, 1, 1, 0, 4, 5, 0, 0},
};
#define N_CONV_CASES (sizeof conv_cases / sizeof conv_cases[0])

static void check_conv_case(const conv_case *cc, dp_act act) {
    dp_layer_cfg cfg = conv_cfg(cc->F, cc->kh, cc->kw, cc->sh, cc->sw, cc->same, act);
    dp_shape in = shape3(cc->C, cc->H, cc->W);
    fixture f;
    uint64_t seed = 500 + (uint64_t)cc->F * 7 + (uint64_t)cc->H;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_conv2d_ops, &cfg, &in, cc->B, seed, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 3);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], cc->F);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], cc->OH);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[2], cc->OW);
    if (f.l.out_shape.dim[1] != cc->OH || f.l.out_shape.dim[2] != cc->OW) {
        printf("\n  %s: output [%d, %d], expected [%d, %d]", cc->name, f.l.out_shape.dim[1],
               f.l.out_shape.dim[2], cc->OH, cc->OW);
        fx_teardown(&f);
        return;
    }
    /* Forward against the direct loops. */
    const float *w = f.params + f.l.params[0].offset, *bias = f.params + f.l.params[1].offset;
    double *ref = malloc(f.B * f.nout * sizeof(double));
    reference_conv(f.x, w, bias, cc->B, cc->C, cc->H, cc->W, cc->F, cc->kh, cc->kw, cc->sh, cc->sw,
                   cc->pt, cc->pl, cc->OH, cc->OW, act, ref);
    f.l.ops->forward(&f.l, f.params, f.x, f.y, f.B, &infer_ctx);
    int bad_fwd = 0;
    for (size_t i = 0; i < f.B * f.nout; i++)
        if (fabs(f.y[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]))) {
            if (bad_fwd++ < 5)
                printf("\n  %s: y[%zu] %.7g, direct %.7g", cc->name, i, f.y[i], ref[i]);
        }
    CU_ASSERT_EQUAL(bad_fwd, 0);
    free(ref);

    char label[128];
    snprintf(label, sizeof label, "%s (%s)", cc->name, dp_config_name_act(act));
    CU_ASSERT_EQUAL(fx_check(&f, label), 0);
    fx_teardown(&f);
}

static void test_conv_linear(void) {
    for (size_t i = 0; i < N_CONV_CASES; i++) check_conv_case(&conv_cases[i], DP_ACT_LINEAR);
}

static void test_conv_relu(void) {
    for (size_t i = 0; i < N_CONV_CASES; i++) check_conv_case(&conv_cases[i], DP_ACT_RELU);
}

static void test_conv_tanh(void) {
    check_conv_case(&conv_cases[1], DP_ACT_TANH);
    check_conv_case(&conv_cases[3], DP_ACT_TANH);
}

/* Which conv2d layers take the direct kernels: stride 1 and K <= 16, and only
 * in builds with AVX-512 (elsewhere every layer takes the patch matrices). */
static void test_conv_direct_fits(void) {
    dp_conv_geom g = {
        .C = 1, .H = 28, .W = 28, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .OH = 26, .OW = 26};
#ifdef __AVX512F__
    CU_ASSERT_EQUAL(dp_conv_direct_fits(&g), 1);
    g.C = 2; /* K = 18 */
    CU_ASSERT_EQUAL(dp_conv_direct_fits(&g), 0);
    g.C = 1, g.sw = 2;
    CU_ASSERT_EQUAL(dp_conv_direct_fits(&g), 0);
#else
    CU_ASSERT_EQUAL(dp_conv_direct_fits(&g), 0);
#endif
}

/* The direct kernels themselves, on every build (the AVX-512 ones, or the plain
 * loops elsewhere): forward against the double loops, with and without relu,
 * and the kernel gradient against its definition summed in double, on shapes
 * with 'same' padding, rows over two vectors, K = 16 and an odd filter count. */
static void test_conv_direct_kernels(void) {
    const struct {
        int C, H, W, F, kh, kw, same;
    } cases[] = {
        {1, 5, 37, 3, 3, 3, 1},
        {1, 6, 7, 5, 4, 4, 1},
        {2, 4, 9, 5, 1, 5, 0},
        {1, 9, 8, 9, 3, 3, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        dp_conv_geom g = {.C = cases[t].C,
                          .H = cases[t].H,
                          .W = cases[t].W,
                          .kh = cases[t].kh,
                          .kw = cases[t].kw,
                          .sh = 1,
                          .sw = 1};
        g.OH = dp_im2col_out_size(g.H, g.kh, 1, cases[t].same, &g.pt);
        g.OW = dp_im2col_out_size(g.W, g.kw, 1, cases[t].same, &g.pl);
        const int F = cases[t].F, K = g.C * g.kh * g.kw, P = g.OH * g.OW;
        float *x = malloc((size_t)g.C * g.H * g.W * sizeof *x),
              *w = malloc((size_t)F * K * sizeof *w);
        float *b = malloc((size_t)F * sizeof *b), *y = malloc((size_t)F * P * sizeof *y);
        float *dz = malloc((size_t)F * P * sizeof *dz), *dw = calloc((size_t)F * K, sizeof *dw);
        float *xp = malloc(dp_conv_direct_scratch_floats(&g) * sizeof *xp);
        double *ref = malloc((size_t)F * P * sizeof *ref);
        for (int i = 0; i < g.C * g.H * g.W; i++) x[i] = uniform_in(40 + t, i, -1, 1);
        for (int i = 0; i < F * K; i++) w[i] = uniform_in(50 + t, i, -1, 1);
        for (int i = 0; i < F; i++) b[i] = uniform_in(60 + t, i, -0.5f, 0.5f);
        for (int i = 0; i < F * P; i++) dz[i] = uniform_in(70 + t, i, -1, 1);
        int bad = 0;
        for (int relu = 0; relu < 2; relu++) {
            dp_conv_direct_forward(&g, F, w, b, relu, x, y, xp);
            reference_conv(x, w, b, 1, g.C, g.H, g.W, F, g.kh, g.kw, 1, 1, g.pt, g.pl, g.OH, g.OW,
                           relu ? DP_ACT_RELU : DP_ACT_LINEAR, ref);
            for (int i = 0; i < F * P; i++) bad += fabs(y[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]));
        }
        dp_conv_direct_weight_grad(&g, F, x, dz, dw, xp);
        for (int f = 0; f < F; f++)
            for (int c = 0; c < g.C; c++)
                for (int i = 0; i < g.kh; i++)
                    for (int j = 0; j < g.kw; j++) {
                        double sum = 0;
                        for (int oh = 0; oh < g.OH; oh++)
                            for (int ow = 0; ow < g.OW; ow++) {
                                int ih = oh + i - g.pt, iw = ow + j - g.pl;
                                if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                                    sum += (double)dz[(f * g.OH + oh) * g.OW + ow] *
                                           x[(c * g.H + ih) * g.W + iw];
                            }
                        float got = dw[f * K + (c * g.kh + i) * g.kw + j];
                        bad += fabs(got - sum) > 1e-4 * (1 + fabs(sum));
                    }
        CU_ASSERT_EQUAL(bad, 0);
        if (bad) printf("\n  direct kernels, case %zu: %d values off", t, bad);
        free(x), free(w), free(b), free(y), free(dz), free(dw), free(xp), free(ref);
    }
}

static void test_conv_params_and_errors(void) {
    dp_layer l = {0};
    dp_error err = {0};
    dp_layer_cfg cfg = conv_cfg(64, 3, 3, 1, 1, 0, DP_ACT_RELU);
    dp_shape in = shape3(32, 13, 13);
    CU_ASSERT_FATAL(dp_layer_conv2d_ops.create(&l, &cfg, &in, 4, &err) == 0);
    CU_ASSERT_EQUAL(l.n_params, 2);
    CU_ASSERT_STRING_EQUAL(l.params[0].name, "kernel");
    CU_ASSERT_EQUAL(l.params[0].shape.ndim, 4);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[0], 64);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[1], 32);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[2], 3);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[3], 3);
    CU_ASSERT_EQUAL(l.params[0].offset, 0);
    CU_ASSERT_EQUAL(l.params[0].numel, 64 * 32 * 9);
    CU_ASSERT_STRING_EQUAL(l.params[1].name, "bias");
    CU_ASSERT_EQUAL(l.params[1].shape.ndim, 1);
    CU_ASSERT_EQUAL(l.params[1].shape.dim[0], 64);
    CU_ASSERT_EQUAL(l.params[1].offset, 64 * 32 * 9);
    CU_ASSERT_EQUAL(l.param_count, 18496);
    CU_ASSERT_EQUAL(l.activation, DP_ACT_RELU);

    /* Glorot uniform: fan_in 32*9 = 288, fan_out 64*9 = 576, limit sqrt(6/864). */
    float *p = malloc(l.param_count * sizeof(float));
    for (size_t i = 0; i < l.param_count; i++) p[i] = 5.0f;
    dp_layer_conv2d_ops.init_params(&l, p, 99);
    double limit = sqrt(6.0 / 864.0), sum = 0, sumsq = 0, mx = 0;
    size_t nk = l.params[0].numel;
    for (size_t i = 0; i < nk; i++) {
        sum += p[i], sumsq += (double)p[i] * p[i];
        mx = fmax(mx, fabs(p[i]));
    }
    CU_ASSERT(mx <= limit);
    CU_ASSERT(mx > 0.99 * limit);
    double mean = sum / nk, var = sumsq / nk - mean * mean;
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 0.02 * limit);
    CU_ASSERT_DOUBLE_EQUAL(var, limit * limit / 3, 0.05 * limit * limit / 3);
    for (int i = 0; i < 64; i++) CU_ASSERT_EQUAL(p[nk + i], 0.0f);
    free(p);
    dp_layer_conv2d_ops.free(&l);
    CU_ASSERT_PTR_NULL(l.state);

    /* Not an image: the error names the place and the shape. */
    dp_shape flat = {1, {784}};
    CU_ASSERT(dp_layer_conv2d_ops.create(&l, &cfg, &flat, 4, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "3-D"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[784]"));
    CU_ASSERT_PTR_NULL(l.state);

    /* A 5x5 window does not fit a 4x6 image without padding ... */
    dp_error_clear(&err);
    dp_layer_cfg big = conv_cfg(2, 5, 5, 1, 1, 0, DP_ACT_LINEAR);
    dp_shape small = shape3(1, 4, 6);
    CU_ASSERT(dp_layer_conv2d_ops.create(&l, &big, &small, 4, &err) == -1);
    CU_ASSERT_STRING_EQUAL(err.where, "cnn.yaml:3:7");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "larger than its input [1, 4, 6]"));
    CU_ASSERT_PTR_NULL(l.state);
    /* ... but does with 'same' (Keras allows it): output 4x6. */
    big.padding_same = 1;
    CU_ASSERT_FATAL(dp_layer_conv2d_ops.create(&l, &big, &small, 4, &err) == 0);
    CU_ASSERT_EQUAL(l.out_shape.dim[1], 4);
    CU_ASSERT_EQUAL(l.out_shape.dim[2], 6);
    dp_layer_conv2d_ops.free(&l);

    dp_error_clear(&err);
    dp_layer_cfg zero = conv_cfg(0, 3, 3, 1, 1, 0, DP_ACT_LINEAR);
    CU_ASSERT(dp_layer_conv2d_ops.create(&l, &zero, &in, 4, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "filters"));

    dp_error_clear(&err);
    dp_layer_cfg sm = conv_cfg(2, 3, 3, 1, 1, 0, DP_ACT_SOFTMAX);
    CU_ASSERT(dp_layer_conv2d_ops.create(&l, &sm, &in, 4, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "softmax"));
}

int main(void) {
    static const test_case cases[] = {
        {"conv/pool output sizes (TF formulas by hand)", test_out_sizes},
        {"conv2d forward vs direct loops + gradients, linear", test_conv_linear},
        {"conv2d forward vs direct loops + gradients, relu", test_conv_relu},
        {"conv2d forward vs direct loops + gradients, tanh", test_conv_tanh},
        {"conv2d params, glorot init, shape errors", test_conv_params_and_errors},
        {"conv2d direct kernels: which geometries", test_conv_direct_fits},
        {"conv2d direct kernels against double loops", test_conv_direct_kernels},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_conv2d", cases);
}
