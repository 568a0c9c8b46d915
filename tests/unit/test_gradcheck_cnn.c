/* test_gradcheck_cnn.c - conv2d, maxpool2d, flatten and dropout against central
 * finite differences of J = sum(dy .* y) (as test_gradcheck.c does for dense),
 * forward values against plain direct loops written here, output sizes against
 * hand-computed TensorFlow formulas, dropout's keyed masks, and the whole
 * Fashion-MNIST CNN built from a config. */
#include "dptrain/config.h"
#include "layers/conv_direct.h"
#include "layers/im2col.h"
#include "layers/layer.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "core/rng.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dp_fwd_ctx infer_ctx = {0};

static float uniform_in(uint64_t key, uint64_t i, float lo, float hi) {
    return lo + (hi - lo) * dp_rng_uniform(key, i);
}

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|) */
static int close_enough(double a, double b, double rel_tol, double abs_tol) {
    return fabs(a - b) <= abs_tol + rel_tol * fmax(fabs(a), fabs(b));
}

static dp_layer_cfg make_cfg(const char *type) {
    dp_layer_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.type, sizeof c.type, "%s", type);
    snprintf(c.where, sizeof c.where, "cnn.yaml:3:7");
    c.activation = DP_ACT_LINEAR;
    c.strides[0] = c.strides[1] = 1;
    c.pool[0] = c.pool[1] = 2;
    return c;
}

static dp_layer_cfg conv_cfg(int filters, int kh, int kw, int sh, int sw, int same, dp_act act) {
    dp_layer_cfg c = make_cfg("conv2d");
    c.filters = filters;
    c.kernel[0] = kh, c.kernel[1] = kw;
    c.strides[0] = sh, c.strides[1] = sw;
    c.padding_same = same;
    c.activation = act;
    return c;
}

static dp_shape shape3(int c, int h, int w) {
    dp_shape s = {3, {c, h, w}};
    return s;
}

/* ------------------------------------------------------- generic fixture ---- */

typedef struct fixture {
    dp_layer l;
    int B;
    size_t nin, nout;       /* values per row of x and y */
    float *params, *grads;  /* [param_count] */
    float *x, *dx;          /* [B, nin] */
    float *y, *dy;          /* [B, nout] */
    float *zp, *zm;         /* [B, nout] pre-activations at +h / -h */
    dp_fwd_ctx ctx;
} fixture;

static int fx_setup(fixture *f, const dp_layer_ops *ops, const dp_layer_cfg *cfg,
                    const dp_shape *in, int B, uint64_t seed, const dp_fwd_ctx *ctx) {
    memset(f, 0, sizeof *f);
    dp_error err = {0};
    f->l.ops = ops;
    f->l.index = 3;
    if (ops->create(&f->l, cfg, in, B, &err) != 0) {
        printf("\n  create failed: %s: %s", err.where, err.what);
        return -1;
    }
    f->B = B;
    f->nin = dp_shape_numel(in);
    f->nout = dp_shape_numel(&f->l.out_shape);
    f->ctx = ctx ? *ctx : infer_ctx;
    size_t P = f->l.param_count ? f->l.param_count : 1;
    f->params = malloc(P * sizeof(float));
    f->grads = calloc(P, sizeof(float));
    f->x = malloc(B * f->nin * sizeof(float));
    f->dx = malloc(B * f->nin * sizeof(float));
    f->y = malloc(B * f->nout * sizeof(float));
    f->dy = malloc(B * f->nout * sizeof(float));
    f->zp = malloc(B * f->nout * sizeof(float));
    f->zm = malloc(B * f->nout * sizeof(float));
    /* Random (not Glorot) values: non-zero biases, pre-activations spread out. */
    for (size_t i = 0; i < f->l.param_count; i++) f->params[i] = uniform_in(seed, i, -1.0f, 1.0f);
    for (size_t i = 0; i < B * f->nin; i++) f->x[i] = uniform_in(seed + 1, i, -1.5f, 1.5f);
    for (size_t i = 0; i < B * f->nout; i++) f->dy[i] = uniform_in(seed + 2, i, -1.0f, 1.0f);
    return 0;
}

static void fx_teardown(fixture *f) {
    f->l.ops->free(&f->l);
    free(f->params), free(f->grads), free(f->x), free(f->dx), free(f->y), free(f->dy);
    free(f->zp), free(f->zm);
}

static double fx_objective(fixture *f) {
    f->l.ops->forward(&f->l, f->params, f->x, f->y, f->B, &f->ctx);
    double j = 0.0;
    for (size_t i = 0; i < f->B * f->nout; i++) j += (double)f->dy[i] * f->y[i];
    return j;
}

/* Pre-activations (activation switched off) into z. */
static void fx_preact(fixture *f, float *z) {
    dp_act saved = f->l.activation;
    f->l.activation = DP_ACT_LINEAR;
    f->l.ops->forward(&f->l, f->params, f->x, z, f->B, &f->ctx);
    f->l.activation = saved;
}

/* Central difference of J w.r.t. *v. Returns 1 and sets *num, or 0 when the
 * stencil straddles relu's kink (some pre-activation changes sign between
 * v - h and v + h), where a finite difference says nothing about the gradient. */
static int fx_numeric(fixture *f, float *v, float h, double *num) {
    float orig = *v, plus = orig + h, minus = orig - h;
    *v = plus;
    double jp = fx_objective(f);
    if (f->l.activation == DP_ACT_RELU) fx_preact(f, f->zp);
    *v = minus;
    double jm = fx_objective(f);
    if (f->l.activation == DP_ACT_RELU) fx_preact(f, f->zm);
    *v = orig;
    if (f->l.activation == DP_ACT_RELU)
        for (size_t i = 0; i < f->B * f->nout; i++)
            if ((f->zp[i] > 0) != (f->zm[i] > 0)) return 0;
    *num = (jp - jm) / ((double)plus - (double)minus);
    return 1;
}

/* Checks backward's parameter gradients and dx against finite differences, that
 * backward adds into grads, and that dx = NULL leaves the parameter gradients
 * alone. Returns the number of mismatches (printed). */
static int fx_check(fixture *f, const char *label) {
    const float h = 1e-2f;
    const double rel = 1e-2, abs_tol = 2e-3;
    int bad = 0, skipped = 0, checked = 0;
    fx_objective(f);
    /* dx is overwritten, whatever it held: start from garbage. */
    for (size_t i = 0; i < f->B * f->nin; i++) f->dx[i] = 777.0f;
    f->l.ops->backward(&f->l, f->params, f->x, f->y, f->dy, f->dx, f->grads, f->B);
    for (size_t i = 0; i < f->l.param_count; i++) {
        double num;
        if (!fx_numeric(f, &f->params[i], h, &num)) {
            skipped++;
            continue;
        }
        checked++;
        if (!close_enough(f->grads[i], num, rel, abs_tol)) {
            if (bad++ < 10)
                printf("\n  %s: param %zu analytic %.6g numeric %.6g", label, i, f->grads[i], num);
        }
    }
    float *dx = malloc(f->B * f->nin * sizeof(float));
    memcpy(dx, f->dx, f->B * f->nin * sizeof(float));
    for (size_t i = 0; i < f->B * f->nin; i++) {
        double num;
        if (!fx_numeric(f, &f->x[i], h, &num)) {
            skipped++;
            continue;
        }
        checked++;
        if (!close_enough(dx[i], num, rel, abs_tol)) {
            if (bad++ < 10) printf("\n  %s: x %zu analytic %.6g numeric %.6g", label, i, dx[i], num);
        }
    }
    /* Kinks may hide a few entries, never most of them. */
    if (skipped * 5 > checked) {
        printf("\n  %s: %d of %d stencils straddle a kink", label, skipped, skipped + checked);
        bad++;
    }
    /* Accumulation: a second backward (without dx) doubles the gradients. */
    if (f->l.param_count) {
        float *g1 = malloc(f->l.param_count * sizeof(float));
        memcpy(g1, f->grads, f->l.param_count * sizeof(float));
        fx_objective(f);
        f->l.ops->backward(&f->l, f->params, f->x, f->y, f->dy, NULL, f->grads, f->B);
        for (size_t i = 0; i < f->l.param_count; i++)
            if (fabs(f->grads[i] - 2.0 * g1[i]) > 1e-5 * (1 + fabs(g1[i]))) {
                if (bad++ < 10) printf("\n  %s: param %zu not accumulated", label, i);
            }
        free(g1);
    }
    free(dx);
    return bad;
}

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
static void reference_conv(const float *x, const float *w, const float *bias, int B, int C,
                           int H, int W, int F, int kh, int kw, int sh, int sw, int pt, int pl,
                           int OH, int OW, dp_act act, double *y) {
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
    reference_conv(f.x, w, bias, cc->B, cc->C, cc->H, cc->W, cc->F, cc->kh, cc->kw, cc->sh,
                   cc->sw, cc->pt, cc->pl, cc->OH, cc->OW, act, ref);
    f.l.ops->forward(&f.l, f.params, f.x, f.y, f.B, &infer_ctx);
    int bad_fwd = 0;
    for (size_t i = 0; i < f.B * f.nout; i++)
        if (fabs(f.y[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]))) {
            if (bad_fwd++ < 5) printf("\n  %s: y[%zu] %.7g, direct %.7g", cc->name, i, f.y[i], ref[i]);
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
    dp_conv_geom g = {.C = 1, .H = 28, .W = 28, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                      .OH = 26, .OW = 26};
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
    const struct { int C, H, W, F, kh, kw, same; } cases[] = {
        {1, 5, 37, 3, 3, 3, 1}, {1, 6, 7, 5, 4, 4, 1}, {2, 4, 9, 5, 1, 5, 0}, {1, 9, 8, 9, 3, 3, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        dp_conv_geom g = {.C = cases[t].C, .H = cases[t].H, .W = cases[t].W, .kh = cases[t].kh,
                          .kw = cases[t].kw, .sh = 1, .sw = 1};
        g.OH = dp_im2col_out_size(g.H, g.kh, 1, cases[t].same, &g.pt);
        g.OW = dp_im2col_out_size(g.W, g.kw, 1, cases[t].same, &g.pl);
        const int F = cases[t].F, K = g.C * g.kh * g.kw, P = g.OH * g.OW;
        float *x = malloc((size_t)g.C * g.H * g.W * sizeof *x), *w = malloc((size_t)F * K * sizeof *w);
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

/* ----------------------------------------------------------- maxpool2d ---- */

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
                                m = fmaxf(m, f.x[((b * pc->C + c) * pc->H + oh * pc->sh + i) * pc->W +
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

/* ------------------------------------------------------------- flatten ---- */

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

/* ------------------------------------------------------------- dropout ---- */

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
    ASSERT_SAME_FLOATS(a + N, b, N);  /* id 9 */
    ASSERT_SAME_FLOATS(a, b + N, N);  /* id 5 */
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

/* ---------------------------------------------------------- the model ---- */

static const char fmnist_cnn_yaml[] =
    "data: {path: fmnist.h5}\n"
    "model:\n"
    "  input: [1, 28, 28]\n"
    "  layers:\n"
    "    - conv2d: {filters: 32, kernel_size: 3, activation: relu}\n"
    "    - maxpool2d: {pool_size: 2}\n"
    "    - conv2d: {filters: 64, kernel_size: [3, 3], activation: relu}\n"
    "    - maxpool2d: {pool_size: 2}\n"
    "    - flatten:\n"
    "    - dense: {units: 128, activation: relu}\n"
    "    - dropout: {rate: 0.5}\n"
    "    - dense: {units: 10, activation: softmax}\n"
    "loss: sparse_categorical_crossentropy\n"
    "optimizer: adam\n"
    "train: {epochs: 1, batch_size: 64}\n";

static void test_fmnist_cnn_model(void) {
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "fmnist.yaml", fmnist_cnn_yaml, strlen(fmnist_cnn_yaml), NULL, 0,
                              &err);
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
    const size_t counts[8] = {9 * 32 + 32,       0, 32 * 9 * 64 + 64, 0, 0,
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
                printf("\n  %s/%s: %zu of %zu gradients non-zero", m.layers[i].name, v->name,
                       nz, v->numel);
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

static double model_loss(dp_model *m, const float *x, const float *y, int B, const dp_fwd_ctx *ctx) {
    const float *out = dp_model_forward(m, x, B, ctx);
    return dp_loss_forward_backward(m->loss, m->fused, out, y, B, dp_model_output_width(m), 1, NULL).loss;
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
    int rc = dp_config_load_text(&cfg, "small.yaml", small_cnn_yaml, strlen(small_cnn_yaml), NULL, 0, &err);
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
static const char leading_free_yaml[] =
    "data: {path: x.h5}\n"
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
                                           strlen(leading_free_yaml), NULL, 0, &err), 0);
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
        {"conv/pool output sizes (TF formulas by hand)", test_out_sizes},
        {"conv2d forward vs direct loops + gradients, linear", test_conv_linear},
        {"conv2d forward vs direct loops + gradients, relu", test_conv_relu},
        {"conv2d forward vs direct loops + gradients, tanh", test_conv_tanh},
        {"conv2d params, glorot init, shape errors", test_conv_params_and_errors},
        {"conv2d direct kernels: which geometries", test_conv_direct_fits},
        {"conv2d direct kernels against double loops", test_conv_direct_kernels},
        {"maxpool2d forward vs window max + gradients", test_maxpool},
        {"maxpool2d ties, overlaps, errors", test_maxpool_ties_and_errors},
        {"flatten round trip", test_flatten},
        {"dropout inference identity, rate errors", test_dropout_inference_identity},
        {"dropout training: drop fraction, scale, backward", test_dropout_training},
        {"dropout gradient with a fixed mask", test_dropout_gradcheck},
        {"dropout masks keyed by seed, step, row id, layer", test_dropout_keyed_masks},
        {"fashion-mnist cnn: shapes, parameter count, one step", test_fmnist_cnn_model},
        {"small cnn: model gradient vs finite differences", test_small_cnn_model_gradient},
        {"conv2d pooling its own output = conv2d then maxpool2d", test_fused_conv_pool},
        {"flatten, dropout before the first dense: no backward, same gradients",
         test_leading_parameter_free_layers},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_cnn", cases);
}
