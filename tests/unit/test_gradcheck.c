/* test_gradcheck.c - dense layer, activations and losses against central finite
 * differences (KANN / llm.c style), plus forward values against independent
 * double-precision references, accuracy counts, and Glorot initialization. */
#include "layers/activation.h"
#include "layers/layer.h"
#include "nn/loss.h"
#include "core/rng.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dp_fwd_ctx train_ctx = {.training = 1, .seed = 1, .step = 0, .row_ids = NULL};
static const dp_fwd_ctx infer_ctx = {0};

/* Test inputs come from the project's counter RNG so every run is identical. */
static float uniform_in(uint64_t key, uint64_t i, float lo, float hi) {
    return lo + (hi - lo) * dp_rng_uniform(key, i);
}

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|) */
static int close_enough(double a, double b, double rel_tol, double abs_tol) {
    return fabs(a - b) <= abs_tol + rel_tol * fmax(fabs(a), fabs(b));
}

/* ---------------------------------------------------------------- dense ---- */

typedef struct dense_fixture {
    dp_layer l;
    int B, nin, nout;
    float *params, *grads;  /* [param_count] */
    float *x, *y, *dy, *dx; /* [B, in], [B, out], [B, out], [B, in] */
} dense_fixture;

static int dense_setup(dense_fixture *f, int B, int nin, int nout, dp_act act, uint64_t seed) {
    memset(f, 0, sizeof *f);
    f->B = B, f->nin = nin, f->nout = nout;
    dp_layer_cfg cfg = {0};
    snprintf(cfg.type, sizeof cfg.type, "dense");
    snprintf(cfg.where, sizeof cfg.where, "test.yaml:1:1");
    cfg.units = nout;
    cfg.activation = act;
    dp_shape in = {1, {nin}};
    dp_error err = {0};
    f->l.ops = &dp_layer_dense_ops;
    if (dp_layer_dense_ops.create(&f->l, &cfg, &in, B, &err) != 0) return -1;
    size_t P = f->l.param_count;
    f->params = malloc(P * sizeof(float));
    f->grads = calloc(P, sizeof(float));
    f->x = malloc((size_t)B * nin * sizeof(float));
    f->dx = malloc((size_t)B * nin * sizeof(float));
    f->y = malloc((size_t)B * nout * sizeof(float));
    f->dy = malloc((size_t)B * nout * sizeof(float));
    /* Random (not Glorot) values, so biases are non-zero and pre-activations spread. */
    for (size_t i = 0; i < P; i++) f->params[i] = uniform_in(seed, i, -1.0f, 1.0f);
    for (int i = 0; i < B * nin; i++) f->x[i] = uniform_in(seed + 1, i, -1.5f, 1.5f);
    for (int i = 0; i < B * nout; i++) f->dy[i] = uniform_in(seed + 2, i, -1.0f, 1.0f);
    return 0;
}

static void dense_teardown(dense_fixture *f) {
    f->l.ops->free(&f->l);
    free(f->params), free(f->grads), free(f->x), free(f->dx), free(f->y), free(f->dy);
}

/* The scalar objective J = sum(dy .* y): its gradient w.r.t. anything is exactly
 * what backward computes when handed dy. */
static double dense_objective(dense_fixture *f) {
    f->l.ops->forward(&f->l, f->params, f->x, f->y, f->B, &train_ctx);
    double j = 0.0;
    for (int i = 0; i < f->B * f->nout; i++) j += (double)f->dy[i] * f->y[i];
    return j;
}

/* Central difference of J w.r.t. *v, using the step actually representable. */
static double dense_numeric(dense_fixture *f, float *v, float h) {
    float orig = *v;
    float plus = orig + h, minus = orig - h;
    *v = plus;
    double jp = dense_objective(f);
    *v = minus;
    double jm = dense_objective(f);
    *v = orig;
    return (jp - jm) / ((double)plus - (double)minus);
}

/* Smallest |z| over the pre-activations, to keep relu's kink out of every
 * finite-difference stencil. */
static double dense_min_abs_preact(dense_fixture *f) {
    dp_act saved = f->l.activation;
    f->l.activation = DP_ACT_LINEAR;
    f->l.ops->forward(&f->l, f->params, f->x, f->y, f->B, &train_ctx);
    f->l.activation = saved;
    double m = INFINITY;
    for (int i = 0; i < f->B * f->nout; i++) m = fmin(m, fabs(f->y[i]));
    return m;
}

static void check_dense_grads(dp_act act) {
    const int B = 4, nin = 5, nout = 3;
    const float h = 1e-2f;
    dense_fixture f;
    uint64_t seed = 100 + (uint64_t)act * 10;
    CU_ASSERT_FATAL(dense_setup(&f, B, nin, nout, act, seed) == 0);
    if (act == DP_ACT_RELU) {
        /* A step of h in one parameter moves z by at most h * 1.5 (|x|, |W| <= 1.5). */
        for (int tries = 0; dense_min_abs_preact(&f) < 4 * h * 1.5; tries++) {
            CU_ASSERT_FATAL(tries < 100);
            dense_teardown(&f);
            seed += 1000;
            CU_ASSERT_FATAL(dense_setup(&f, B, nin, nout, act, seed) == 0);
        }
    }

    dense_objective(&f); /* forward leaves y for backward */
    f.l.ops->backward(&f.l, f.params, f.x, f.y, f.dy, f.dx, f.grads, B);

    const double rel = 1e-2, abs_tol = 2e-3;
    int bad = 0;
    for (size_t i = 0; i < f.l.param_count; i++) {
        double num = dense_numeric(&f, &f.params[i], h);
        if (!close_enough(f.grads[i], num, rel, abs_tol)) {
            bad++;
            printf("\n  act %d param %zu (%s): analytic %.6g numeric %.6g", (int)act, i,
                   i < f.l.params[1].offset ? "kernel" : "bias", f.grads[i], num);
        }
    }
    float *dx_ref = malloc((size_t)B * nin * sizeof(float));
    memcpy(dx_ref, f.dx, (size_t)B * nin * sizeof(float));
    for (int i = 0; i < B * nin; i++) {
        double num = dense_numeric(&f, &f.x[i], h);
        if (!close_enough(dx_ref[i], num, rel, abs_tol)) {
            bad++;
            printf("\n  act %d x %d: analytic %.6g numeric %.6g", (int)act, i, dx_ref[i], num);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);

    /* Backward accumulates into grads, and dx = NULL skips only dx. */
    float *g1 = malloc(f.l.param_count * sizeof(float));
    memcpy(g1, f.grads, f.l.param_count * sizeof(float));
    dense_objective(&f);
    f.l.ops->backward(&f.l, f.params, f.x, f.y, f.dy, NULL, f.grads, B);
    for (size_t i = 0; i < f.l.param_count; i++)
        CU_ASSERT_DOUBLE_EQUAL(f.grads[i], 2.0 * g1[i], 1e-5 * (1 + fabs(g1[i])));
    free(g1);
    free(dx_ref);
    dense_teardown(&f);
}

static void test_dense_grad_linear(void) {
    check_dense_grads(DP_ACT_LINEAR);
}
static void test_dense_grad_relu(void) {
    check_dense_grads(DP_ACT_RELU);
}
static void test_dense_grad_sigmoid(void) {
    check_dense_grads(DP_ACT_SIGMOID);
}
static void test_dense_grad_tanh(void) {
    check_dense_grads(DP_ACT_TANH);
}
static void test_dense_grad_softmax(void) {
    check_dense_grads(DP_ACT_SOFTMAX);
}
static void test_dense_grad_gelu(void) {
    check_dense_grads(DP_ACT_GELU);
}

/* Independent double-precision reference of act(x W + b) for one element. */
static void reference_dense_row(const float *x, const float *w, const float *b, int nin, int nout,
                                dp_act act, double *out) {
    for (int j = 0; j < nout; j++) {
        double z = b[j];
        for (int i = 0; i < nin; i++) z += (double)x[i] * w[i * nout + j];
        out[j] = z;
    }
    double mx = -INFINITY, s = 0;
    for (int j = 0; j < nout; j++) {
        switch (act) {
        case DP_ACT_LINEAR: break;
        case DP_ACT_RELU: out[j] = out[j] > 0 ? out[j] : 0; break;
        case DP_ACT_SIGMOID: out[j] = 1.0 / (1.0 + exp(-out[j])); break;
        case DP_ACT_TANH: out[j] = tanh(out[j]); break;
        case DP_ACT_SOFTMAX: mx = fmax(mx, out[j]); break;
        case DP_ACT_GELU: {
            double z = out[j];
            out[j] = 0.5 * z *
                     (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (z + 0.044715 * z * z * z)));
            break;
        }
        }
    }
    if (act == DP_ACT_SOFTMAX) {
        for (int j = 0; j < nout; j++) s += exp(out[j] - mx);
        for (int j = 0; j < nout; j++) out[j] = exp(out[j] - mx) / s;
    }
}

static void test_dense_forward_values(void) {
    const dp_act acts[] = {DP_ACT_LINEAR, DP_ACT_RELU,    DP_ACT_SIGMOID,
                           DP_ACT_TANH,   DP_ACT_SOFTMAX, DP_ACT_GELU};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        dense_fixture f;
        CU_ASSERT_FATAL(dense_setup(&f, 3, 6, 4, acts[a], 7) == 0);
        f.l.ops->forward(&f.l, f.params, f.x, f.y, f.B, &infer_ctx);
        const float *w = f.params + f.l.params[0].offset, *b = f.params + f.l.params[1].offset;
        for (int r = 0; r < f.B; r++) {
            double ref[4];
            reference_dense_row(f.x + r * f.nin, w, b, f.nin, f.nout, acts[a], ref);
            for (int j = 0; j < f.nout; j++)
                CU_ASSERT_DOUBLE_EQUAL(f.y[r * f.nout + j], ref[j], 1e-5 * (1 + fabs(ref[j])));
        }
        dense_teardown(&f);
    }
}

static void test_dense_create_and_views(void) {
    dp_layer l = {0};
    dp_layer_cfg cfg = {0};
    snprintf(cfg.type, sizeof cfg.type, "dense");
    snprintf(cfg.where, sizeof cfg.where, "seed.yaml:9:5");
    cfg.units = 7;
    cfg.activation = DP_ACT_TANH;
    dp_shape in = {1, {3}};
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_layer_dense_ops.create(&l, &cfg, &in, 8, &err) == 0);
    CU_ASSERT_EQUAL(err.set, 0);
    CU_ASSERT_EQUAL(l.out_shape.ndim, 1);
    CU_ASSERT_EQUAL(l.out_shape.dim[0], 7);
    CU_ASSERT_EQUAL(l.activation, DP_ACT_TANH);
    CU_ASSERT_EQUAL(l.n_params, 2);
    CU_ASSERT_STRING_EQUAL(l.params[0].name, "kernel");
    CU_ASSERT_EQUAL(l.params[0].shape.ndim, 2);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[0], 3);
    CU_ASSERT_EQUAL(l.params[0].shape.dim[1], 7);
    CU_ASSERT_EQUAL(l.params[0].offset, 0);
    CU_ASSERT_EQUAL(l.params[0].numel, 21);
    CU_ASSERT_STRING_EQUAL(l.params[1].name, "bias");
    CU_ASSERT_EQUAL(l.params[1].shape.ndim, 1);
    CU_ASSERT_EQUAL(l.params[1].shape.dim[0], 7);
    CU_ASSERT_EQUAL(l.params[1].offset, 21);
    CU_ASSERT_EQUAL(l.params[1].numel, 7);
    CU_ASSERT_EQUAL(l.param_count, 28);
    dp_layer_dense_ops.free(&l);
    CU_ASSERT_PTR_NULL(l.state);

    /* An image is refused with the place and its shape named. */
    dp_layer l2 = {0};
    dp_shape img = {3, {1, 28, 28}};
    CU_ASSERT(dp_layer_dense_ops.create(&l2, &cfg, &img, 8, &err) == -1);
    CU_ASSERT(err.set);
    CU_ASSERT_STRING_EQUAL(err.where, "seed.yaml:9:5");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[1, 28, 28]"));
    CU_ASSERT_PTR_NULL(l2.state);

    /* A sequence [T, F] maps its last axis: [28, 3] -> [28, 7], same kernel. */
    dp_error_clear(&err);
    dp_shape seq = {2, {28, 3}};
    CU_ASSERT_FATAL(dp_layer_dense_ops.create(&l2, &cfg, &seq, 8, &err) == 0);
    CU_ASSERT_EQUAL(l2.out_shape.ndim, 2);
    CU_ASSERT_EQUAL(l2.out_shape.dim[0], 28);
    CU_ASSERT_EQUAL(l2.out_shape.dim[1], 7);
    CU_ASSERT_EQUAL(l2.param_count, 28);
    dp_layer_dense_ops.free(&l2);

    dp_error_clear(&err);
    cfg.units = 0;
    CU_ASSERT(dp_layer_dense_ops.create(&l2, &cfg, &in, 8, &err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "units"));
}

static void test_layer_registry(void) {
    CU_ASSERT_PTR_EQUAL(dp_layer_find_ops("dense"), &dp_layer_dense_ops);
    CU_ASSERT_PTR_NULL(dp_layer_find_ops("Dense "));
    CU_ASSERT_PTR_NULL(dp_layer_find_ops("no_such_layer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dp_layer_list_types(), "dense"));
    CU_ASSERT_STRING_EQUAL(dp_layer_dense_ops.type, "dense");
}

static void test_glorot_init(void) {
    const int nin = 200, nout = 300;
    dp_layer l = {0};
    dp_layer_cfg cfg = {0};
    cfg.units = nout;
    dp_shape in = {1, {nin}};
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_layer_dense_ops.create(&l, &cfg, &in, 1, &err) == 0);
    float *p = malloc(l.param_count * sizeof(float));
    float *p2 = malloc(l.param_count * sizeof(float));
    for (size_t i = 0; i < l.param_count; i++) p[i] = 7.0f; /* bias must be overwritten */
    dp_layer_dense_ops.init_params(&l, p, 1234);

    double limit = sqrt(6.0 / (nin + nout)), sum = 0, sumsq = 0;
    size_t nk = l.params[0].numel, outside = 0;
    for (size_t i = 0; i < nk; i++) {
        if (fabs(p[i]) > limit) outside++;
        sum += p[i];
        sumsq += (double)p[i] * p[i];
    }
    CU_ASSERT_EQUAL(outside, 0);
    double mean = sum / nk, var = sumsq / nk - mean * mean;
    /* U(-a, a) has variance a^2 / 3 = 2 / (in + out); 60000 draws pin it to ~1%. */
    CU_ASSERT_DOUBLE_EQUAL(mean, 0.0, 0.01 * limit);
    CU_ASSERT_DOUBLE_EQUAL(var, 2.0 / (nin + nout), 0.03 * 2.0 / (nin + nout));
    for (size_t i = 0; i < l.params[1].numel; i++) CU_ASSERT_EQUAL(p[l.params[1].offset + i], 0.0f);

    /* Same key, same weights; another key, other weights. */
    dp_layer_dense_ops.init_params(&l, p2, 1234);
    ASSERT_SAME_FLOATS(p, p2, l.param_count);
    dp_layer_dense_ops.init_params(&l, p2, 1235);
    ASSERT_DIFFERENT_BYTES(p, p2, nk * sizeof(float));
    free(p), free(p2);
    dp_layer_dense_ops.free(&l);
}

/* ---------------------------------------------------------- activations ---- */

static void test_activation_values(void) {
    float z[6] = {-100.0f, -3.0f, -0.5f, 0.0f, 2.0f, 100.0f};
    float y[6];
    memcpy(y, z, sizeof z);
    dp_activation_forward(DP_ACT_SIGMOID, y, 2, 3);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT(isfinite(y[i]));
        CU_ASSERT_DOUBLE_EQUAL(y[i], 1.0 / (1.0 + exp(-(double)z[i])), 1e-7);
    }
    CU_ASSERT(y[0] >= 0.0f && y[0] < 1e-40f);
    CU_ASSERT_EQUAL(y[5], 1.0f);

    memcpy(y, z, sizeof z);
    dp_activation_forward(DP_ACT_TANH, y, 6, 1);
    for (int i = 0; i < 6; i++) CU_ASSERT_DOUBLE_EQUAL(y[i], tanh(z[i]), 1e-6);

    memcpy(y, z, sizeof z);
    dp_activation_forward(DP_ACT_RELU, y, 1, 6);
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(y[i], z[i] > 0 ? z[i] : 0.0f);

    memcpy(y, z, sizeof z);
    dp_activation_forward(DP_ACT_LINEAR, y, 3, 2);
    ASSERT_SAME_FLOATS(y, z, 6);

    /* Softmax per row, stable for huge logits. */
    float s[6] = {1000.0f, 1000.0f, 999.0f, 1.0f, 2.0f, 3.0f};
    dp_activation_forward(DP_ACT_SOFTMAX, s, 2, 3);
    double e = exp(-1.0);
    CU_ASSERT_DOUBLE_EQUAL(s[0], 1.0 / (2 + e), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(s[2], e / (2 + e), 1e-6);
    double d = exp(1) + exp(2) + exp(3);
    for (int k = 0; k < 3; k++) CU_ASSERT_DOUBLE_EQUAL(s[3 + k], exp(k + 1.0) / d, 1e-6);
}

/* dp_activation_backward on its own, dz aliasing dy, against finite differences of
 * J = sum(g .* act(z)). */
static void test_activation_backward_aliasing(void) {
    const dp_act acts[] = {DP_ACT_LINEAR, DP_ACT_RELU,    DP_ACT_SIGMOID,
                           DP_ACT_TANH,   DP_ACT_SOFTMAX, DP_ACT_GELU};
    enum { R = 3, C = 4, N = R * C };
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        float z[N], y[N], g[N], dz[N], tmp[N];
        for (int i = 0; i < N; i++) {
            /* |z| >= 0.25 keeps relu's kink away from the stencil. */
            float u = uniform_in(55, i, 0.25f, 2.0f);
            z[i] = (i % 3 == 0) ? -u : u;
            g[i] = uniform_in(56, i, -1.0f, 1.0f);
        }
        memcpy(y, z, sizeof z);
        dp_activation_forward(acts[a], y, R, C);
        memcpy(dz, g, sizeof g);
        /* gelu's slope is read from its input (activation.h). */
        const float *slope_from = dp_activation_needs_input(acts[a]) ? z : y;
        CU_ASSERT_EQUAL(dp_activation_needs_input(acts[a]), acts[a] == DP_ACT_GELU);
        dp_activation_backward(acts[a], slope_from, dz, dz, R, C); /* in place */
        const float h = 1e-2f;
        for (int i = 0; i < N; i++) {
            double jp = 0, jm = 0;
            float orig = z[i], zp = orig + h, zm = orig - h;
            memcpy(tmp, z, sizeof z), tmp[i] = zp;
            dp_activation_forward(acts[a], tmp, R, C);
            for (int k = 0; k < N; k++) jp += (double)g[k] * tmp[k];
            memcpy(tmp, z, sizeof z), tmp[i] = zm;
            dp_activation_forward(acts[a], tmp, R, C);
            for (int k = 0; k < N; k++) jm += (double)g[k] * tmp[k];
            double num = (jp - jm) / ((double)zp - zm);
            CU_ASSERT(close_enough(dz[i], num, 1e-2, 1e-3));
        }
    }
}

/* The gelu entry points a transformer block uses give the same bits as the
 * generic ones (whose values and slopes the tests above check): the
 * out-of-place forward, the forward that also keeps the slope, and the
 * backward both in place and out of place. n = 37 is not a multiple of any
 * vector width, so the loops' tails run too. */
static void test_gelu_entry_points_agree(void) {
    enum { N = 37 };
    float z[N], y_ref[N], y[N], slope[N], ones[N], d_out[N], d_in[N];
    for (int i = 0; i < N; i++) {
        z[i] = uniform_in(57, i, -8.0f, 8.0f);
        ones[i] = 1.0f;
    }
    memcpy(y_ref, z, sizeof z);
    dp_activation_forward(DP_ACT_GELU, y_ref, 1, N);
    dp_gelu_forward(z, y, N);
    CU_ASSERT_EQUAL(memcmp(y, y_ref, sizeof y), 0);
    dp_activation_backward(DP_ACT_GELU, z, ones, d_out, 1, N);
    memcpy(d_in, ones, sizeof ones);
    dp_activation_backward(DP_ACT_GELU, z, d_in, d_in, 1, N);
    CU_ASSERT_EQUAL(memcmp(d_in, d_out, sizeof d_in), 0);
    memcpy(slope, z, sizeof z);
    memset(y, 0, sizeof y);
    dp_gelu_forward_slope(slope, y, N);
    CU_ASSERT_EQUAL(memcmp(y, y_ref, sizeof y), 0);
    CU_ASSERT_EQUAL(memcmp(slope, d_out, sizeof slope), 0);
}

/* gelu is the tanh approximation: within 1e-3 of the exact erf form
 * 0.5 z (1 + erf(z / sqrt 2)) everywhere, and exactly 0 at 0. */
static void test_gelu_is_tanh_form(void) {
    for (int i = -60; i <= 60; i++) {
        float z = (float)i / 10.0f, y = z;
        dp_activation_forward(DP_ACT_GELU, &y, 1, 1);
        double exact = 0.5 * z * (1.0 + erf(z / sqrt(2.0)));
        CU_ASSERT(fabs(y - exact) < 1e-3);
        if (i == 0) CU_ASSERT_EQUAL(y, 0.0f);
    }
}

/* gelu and its slope over [-10, 12] against double precision, computed as
 * z sigmoid(2u): the same function as 0.5 z (1 + tanh u), but exact in the
 * negative tail, where 1 + tanh u cancels. Within 1e-6 relative down to -3,
 * 4e-6 down to -6 (values of 1e-8: float's rounding of u, times |2u| = 25,
 * is the error there), 2e-5 where the values are 1e-28, and the slope within
 * 5e-6. */
static void test_gelu_accuracy(void) {
    enum { N = 22001 };
    float *z = malloc(N * sizeof *z), *y = malloc(N * sizeof *y), *g = malloc(N * sizeof *g);
    float *ones = malloc(N * sizeof *ones);
    for (int i = 0; i < N; i++) z[i] = y[i] = -10.0f + (float)i / 1000.0f, ones[i] = 1.0f;
    dp_activation_forward(DP_ACT_GELU, y, 1, N);
    dp_activation_backward(DP_ACT_GELU, z, ones, g, 1, N);
    const double c = sqrt(2.0 / 3.14159265358979323846), a = 0.044715;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double x = z[i], s = 1.0 / (1.0 + exp(-2.0 * c * (x + a * x * x * x)));
        double ref = x * s, slope = s + 2.0 * x * s * (1.0 - s) * c * (1.0 + 3.0 * a * x * x);
        double rel = ref != 0.0 ? fabs(y[i] - ref) / fabs(ref) : fabs(y[i]);
        if (rel > (x >= -3.0 ? 1e-6 : x >= -6.0 ? 4e-6 : 2e-5) || fabs(g[i] - slope) > 5e-6) {
            if (bad++ < 5)
                printf("\n  z %g: gelu %g (%g), slope %g (%g)", x, y[i], ref, g[i], slope);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(z), free(y), free(g), free(ones);
}

/* --------------------------------------------------------------- losses ---- */

typedef struct loss_case {
    const char *name;
    dp_loss_kind kind;
    int fused;
    int K, ycols;
    int targets; /* 0: class ids, 1: one-hot / 0-1 labels, 2: probabilities, 3: real */
    int probs;   /* outputs must be probabilities: 1 per element (sigmoid), 2 per row */
} loss_case;

enum { LB = 5 };

static void make_loss_inputs(const loss_case *c, float *out, float *y, uint64_t seed) {
    int K = c->K;
    for (int r = 0; r < LB; r++) {
        float *o = out + r * K, *yr = y + r * c->ycols;
        for (int k = 0; k < K; k++) {
            if (c->probs == 1) o[k] = uniform_in(seed, r * K + k, 0.1f, 0.9f);
            else if (c->probs == 2) o[k] = uniform_in(seed, r * K + k, 0.2f, 1.0f);
            else o[k] = uniform_in(seed, r * K + k, -3.0f, 3.0f);
        }
        if (c->probs == 2) { /* rows sum to 1, as a softmax output would */
            double s = 0;
            for (int k = 0; k < K; k++) s += o[k];
            for (int k = 0; k < K; k++) o[k] = (float)(o[k] / s);
        }
        int cls = (int)(dp_rng_u64(seed + 9, r) % (uint64_t)K);
        switch (c->targets) {
        case 0: yr[0] = (float)cls; break;
        case 1:
            for (int k = 0; k < c->ycols; k++)
                yr[k] = K == 1 ? (float)(dp_rng_u64(seed + 8, r * 7 + k) & 1) : (float)(k == cls);
            break;
        case 2: {
            double s = 0;
            for (int k = 0; k < c->ycols; k++) s += yr[k] = uniform_in(seed + 7, r * K + k, 0, 1);
            if (c->kind != DP_LOSS_BCE)
                for (int k = 0; k < c->ycols; k++) yr[k] = (float)(yr[k] / s);
            break;
        }
        default:
            for (int k = 0; k < c->ycols; k++) yr[k] = uniform_in(seed + 7, r * K + k, -2, 2);
        }
    }
}

static double loss_at(const loss_case *c, const float *out, const float *y) {
    return dp_loss_forward_backward(c->kind, c->fused, out, y, LB, c->K, c->ycols, NULL).loss;
}

static const loss_case loss_cases[] = {
    {"mse K=3", DP_LOSS_MSE, 0, 3, 3, 3, 0},
    {"mse K=1", DP_LOSS_MSE, 0, 1, 1, 3, 0},
    {"bce fused K=1", DP_LOSS_BCE, 1, 1, 1, 1, 0},
    {"bce fused K=3 soft targets", DP_LOSS_BCE, 1, 3, 3, 2, 0},
    {"bce unfused K=1", DP_LOSS_BCE, 0, 1, 1, 1, 1},
    {"bce unfused K=4", DP_LOSS_BCE, 0, 4, 4, 1, 1},
    {"ce fused one-hot", DP_LOSS_CE, 1, 4, 4, 1, 0},
    {"ce fused class ids", DP_LOSS_CE, 1, 4, 1, 0, 0},
    {"ce fused soft targets", DP_LOSS_CE, 1, 4, 4, 2, 0},
    {"ce unfused one-hot", DP_LOSS_CE, 0, 4, 4, 1, 2},
    {"ce unfused class ids", DP_LOSS_CE, 0, 4, 1, 0, 2},
    {"sparse ce fused", DP_LOSS_SPARSE_CE, 1, 5, 1, 0, 0},
    {"sparse ce unfused", DP_LOSS_SPARSE_CE, 0, 5, 1, 0, 2},
};
#define N_LOSS_CASES (sizeof loss_cases / sizeof loss_cases[0])

static void test_loss_gradients(void) {
    for (size_t ci = 0; ci < N_LOSS_CASES; ci++) {
        const loss_case *c = &loss_cases[ci];
        int K = c->K, n = LB * K;
        float *out = malloc(n * sizeof(float)), *dout = malloc(n * sizeof(float));
        float *y = malloc((size_t)LB * c->ycols * sizeof(float));
        make_loss_inputs(c, out, y, 300 + ci);
        dp_loss_sums s = dp_loss_forward_backward(c->kind, c->fused, out, y, LB, K, c->ycols, dout);
        CU_ASSERT_EQUAL(s.terms, LB);
        CU_ASSERT(isfinite(s.loss));
        int bad = 0;
        for (int i = 0; i < n; i++) {
            float orig = out[i], h = 1e-3f, op = orig + h, om = orig - h;
            out[i] = op;
            double lp = loss_at(c, out, y);
            out[i] = om;
            double lm = loss_at(c, out, y);
            out[i] = orig;
            double num = (lp - lm) / ((double)op - om);
            if (!close_enough(dout[i], num, 1e-3, 1e-5)) {
                bad++;
                printf("\n  %s: dout[%d] analytic %.7g numeric %.7g", c->name, i, dout[i], num);
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        free(out), free(dout), free(y);
    }
}

/* Loss values against the published formulas, written out in double here. */
static void test_loss_values(void) {
    /* mse: mean over K of squared errors, summed over rows. */
    float o1[4] = {1.0f, 2.0f, -1.0f, 0.5f}, t1[4] = {0.0f, 2.5f, 1.0f, 0.5f};
    double want = ((1.0 + 0.25) / 2) + ((4.0 + 0.0) / 2);
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_MSE, 0, o1, t1, 2, 2, 2, NULL).loss,
                           want, 1e-9);

    /* BCE: fused on logits equals -t log s(z) - (1-t) log(1-s(z)) averaged over K. */
    float z[4] = {0.3f, -1.2f, 2.5f, 0.0f}, t2[4] = {1.0f, 0.0f, 0.25f, 1.0f}, p[4];
    want = 0;
    for (int r = 0; r < 2; r++) {
        double row = 0;
        for (int k = 0; k < 2; k++) {
            double sg = 1.0 / (1.0 + exp(-(double)z[r * 2 + k])), t = t2[r * 2 + k];
            row += -(t * log(sg) + (1 - t) * log(1 - sg));
            p[r * 2 + k] = (float)sg;
        }
        want += row / 2;
    }
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_BCE, 1, z, t2, 2, 2, 2, NULL).loss,
                           want, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_BCE, 0, p, t2, 2, 2, 2, NULL).loss,
                           want, 1e-6);

    /* Unfused BCE clips p to [1e-7, 1 - 1e-7] (float32) as Keras: p = 0 with t = 1
     * costs -log(1e-7); the gradient through the clip is zero. */
    float p0[1] = {0.0f}, one[1] = {1.0f}, d0[1];
    double l0 = dp_loss_forward_backward(DP_LOSS_BCE, 0, p0, one, 1, 1, 1, d0).loss;
    CU_ASSERT_DOUBLE_EQUAL(l0, -log((double)1e-7f), 1e-9);
    CU_ASSERT_EQUAL(d0[0], 0.0f);
    float p1[1] = {1.0f}, zero[1] = {0.0f};
    double l1 = dp_loss_forward_backward(DP_LOSS_BCE, 0, p1, zero, 1, 1, 1, NULL).loss;
    CU_ASSERT_DOUBLE_EQUAL(l1, -log(1.0 - (double)(1.0f - 1e-7f)), 1e-6);

    /* CE fused: -log softmax(z)[class]; one-hot and class-id targets agree. */
    float zc[6] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f}, ids[2] = {2.0f, 0.0f};
    float onehot[6] = {0, 0, 1, 1, 0, 0};
    want = 0;
    for (int r = 0; r < 2; r++) {
        double se = 0;
        for (int k = 0; k < 3; k++) se += exp((double)zc[r * 3 + k]);
        want += -((double)zc[r * 3 + (int)ids[r]] - log(se));
    }
    /* The exponentials are float32 (core/fastmath.h): within 1e-6 of double. */
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 1, zc, onehot, 2, 3, 3, NULL).loss,
                           want, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 1, zc, ids, 2, 3, 1, NULL).loss,
                           want, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(
        dp_loss_forward_backward(DP_LOSS_SPARSE_CE, 1, zc, ids, 2, 3, 1, NULL).loss, want, 1e-6);

    /* CE unfused on un-normalized probabilities: Keras divides by the row sum first. */
    float pc[3] = {0.2f, 0.2f, 0.4f}, cls[1] = {2.0f};
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 0, pc, cls, 1, 3, 1, NULL).loss,
                           -log(0.5), 1e-6);
    /* ... and clips a zero probability at 1e-7. */
    float pz[3] = {0.0f, 1.0f, 0.0f};
    CU_ASSERT_DOUBLE_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 0, pz, cls, 1, 3, 1, NULL).loss,
                           -log((double)1e-7f), 1e-6);
}

static void test_bce_fused_extreme_logits(void) {
    float z[4] = {100.0f, -100.0f, 100.0f, -100.0f}, y[4] = {1, 0, 0, 1}, d[4];
    dp_loss_sums s = dp_loss_forward_backward(DP_LOSS_BCE, 1, z, y, 4, 1, 1, d);
    CU_ASSERT(isfinite(s.loss));
    CU_ASSERT_DOUBLE_EQUAL(s.loss, 200.0, 1e-9); /* two rows near 0, two rows of 100 */
    for (int i = 0; i < 4; i++) CU_ASSERT(isfinite(d[i]));
    CU_ASSERT_DOUBLE_EQUAL(d[0], 0.0, 1e-30);
    CU_ASSERT_DOUBLE_EQUAL(d[2], 1.0, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(d[3], -1.0, 1e-7);
    CU_ASSERT_EQUAL(s.correct, 2);

    /* Same for fused CE with a huge logit gap. */
    float zc[2] = {1000.0f, -1000.0f}, wrong[1] = {1.0f}, dc[2];
    s = dp_loss_forward_backward(DP_LOSS_SPARSE_CE, 1, zc, wrong, 1, 2, 1, dc);
    CU_ASSERT_DOUBLE_EQUAL(s.loss, 2000.0, 1e-6);
    CU_ASSERT(isfinite(dc[0]) && isfinite(dc[1]));
}

static void test_accuracy_counts(void) {
    /* K = 1 on probabilities: threshold 0.5, strictly greater counts as class 1. */
    float p[5] = {0.2f, 0.7f, 0.5f, 0.9f, 0.51f}, lab[5] = {0, 1, 1, 0, 1};
    dp_loss_sums s = dp_loss_forward_backward(DP_LOSS_BCE, 0, p, lab, 5, 1, 1, NULL);
    CU_ASSERT_EQUAL(s.correct, 3);
    CU_ASSERT_EQUAL(s.terms, 5);

    /* K = 1 on logits: threshold 0. */
    float z[5] = {-1.0f, 2.0f, 0.0f, 3.0f, 0.1f};
    s = dp_loss_forward_backward(DP_LOSS_BCE, 1, z, lab, 5, 1, 1, NULL);
    CU_ASSERT_EQUAL(s.correct, 3);

    /* K = 3: argmax against class ids or one-hot rows. */
    float o[12] = {0.1f, 0.7f, 0.2f, /* 1 */ 0.5f, 0.3f, 0.2f, /* 0 */
                   0.2f, 0.2f, 0.6f, /* 2 */ 0.3f, 0.4f, 0.3f /* 1 */};
    float ids[4] = {1, 2, 2, 0};
    float oh[12] = {0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0};
    CU_ASSERT_EQUAL(dp_loss_forward_backward(DP_LOSS_SPARSE_CE, 0, o, ids, 4, 3, 1, NULL).correct,
                    2);
    CU_ASSERT_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 0, o, oh, 4, 3, 3, NULL).correct, 2);
    CU_ASSERT_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 1, o, ids, 4, 3, 1, NULL).correct, 2);
    CU_ASSERT_EQUAL(dp_loss_forward_backward(DP_LOSS_MSE, 0, o, oh, 4, 3, 3, NULL).correct, 2);
    CU_ASSERT_EQUAL(dp_loss_forward_backward(DP_LOSS_CE, 0, o, ids, 0, 3, 1, NULL).terms, 0);
}

static void test_bad_class_id(void) {
    /* A class id outside [0, K) cannot be silently ignored: the loss becomes NaN and
     * the row's gradient is zero. */
    float z[6] = {1, 2, 3, 1, 2, 3}, ids[2] = {1.0f, 3.0f}, d[6];
    dp_loss_sums s = dp_loss_forward_backward(DP_LOSS_SPARSE_CE, 1, z, ids, 2, 3, 1, d);
    CU_ASSERT(isnan(s.loss));
    for (int k = 3; k < 6; k++) CU_ASSERT_EQUAL(d[k], 0.0f);
    CU_ASSERT(d[1] < 0.0f); /* the valid row still has softmax - onehot */
}

int main(void) {
    static const test_case cases[] = {
        {"dense gradient, linear", test_dense_grad_linear},
        {"dense gradient, relu", test_dense_grad_relu},
        {"dense gradient, sigmoid", test_dense_grad_sigmoid},
        {"dense gradient, tanh", test_dense_grad_tanh},
        {"dense gradient, softmax", test_dense_grad_softmax},
        {"dense gradient, gelu", test_dense_grad_gelu},
        {"gelu accurate from -10 to 12", test_gelu_accuracy},
        {"dense forward vs double reference", test_dense_forward_values},
        {"dense create, param views, shape errors", test_dense_create_and_views},
        {"layer registry", test_layer_registry},
        {"glorot uniform init", test_glorot_init},
        {"activation forward values", test_activation_values},
        {"activation backward in place", test_activation_backward_aliasing},
        {"gelu is the tanh form", test_gelu_is_tanh_form},
        {"gelu entry points agree", test_gelu_entry_points_agree},
        {"loss gradients vs finite differences", test_loss_gradients},
        {"loss values vs formulas", test_loss_values},
        {"fused losses with extreme logits", test_bce_fused_extreme_logits},
        {"accuracy counts", test_accuracy_counts},
        {"out-of-range class id", test_bad_class_id},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck", cases);
}
