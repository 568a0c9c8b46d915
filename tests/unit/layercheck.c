/* layercheck.c - the layer fixture and finite-difference checks the CNN layer
 * suites share (layercheck.h). */
#include "layercheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "testlib.h"

const dp_fwd_ctx infer_ctx = {0};

float uniform_in(uint64_t key, uint64_t i, float lo, float hi) {
    return lo + (hi - lo) * dp_rng_uniform(key, i);
}

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|) */
int close_enough(double a, double b, double rel_tol, double abs_tol) {
    return fabs(a - b) <= abs_tol + rel_tol * fmax(fabs(a), fabs(b));
}

dp_layer_cfg make_cfg(const char *type) {
    dp_layer_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.type, sizeof c.type, "%s", type);
    snprintf(c.where, sizeof c.where, "cnn.yaml:3:7");
    c.activation = DP_ACT_LINEAR;
    c.strides[0] = c.strides[1] = 1;
    c.pool[0] = c.pool[1] = 2;
    /* The schema's defaults for the sequence layers' keys. */
    c.recurrent_activation = DP_ACT_SIGMOID;
    c.unit_forget_bias = 1;
    c.epsilon = 1e-3;
    c.causal = 1;
    return c;
}

dp_layer_cfg conv_cfg(int filters, int kh, int kw, int sh, int sw, int same, dp_act act) {
    dp_layer_cfg c = make_cfg("conv2d");
    c.filters = filters;
    c.kernel[0] = kh, c.kernel[1] = kw;
    c.strides[0] = sh, c.strides[1] = sw;
    c.padding_same = same;
    c.activation = act;
    return c;
}

dp_shape shape3(int c, int h, int w) {
    dp_shape s = {3, {c, h, w}};
    return s;
}

dp_layer_cfg seq_cfg(const char *type, int units, int return_sequences, dp_act act, dp_act ract) {
    dp_layer_cfg c = make_cfg(type);
    c.units = units;
    c.return_sequences = return_sequences;
    c.activation = act;
    c.recurrent_activation = ract;
    return c;
}

/* ------------------------------------------------------- generic fixture ---- */

int fx_setup(fixture *f, const dp_layer_ops *ops, const dp_layer_cfg *cfg, const dp_shape *in,
             int B, uint64_t seed, const dp_fwd_ctx *ctx) {
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

void fx_teardown(fixture *f) {
    f->l.ops->free(&f->l);
    free(f->params), free(f->grads), free(f->x), free(f->dx), free(f->y), free(f->dy);
    free(f->zp), free(f->zm);
}

double fx_objective(fixture *f) {
    f->l.ops->forward(&f->l, f->params, f->x, f->y, f->B, &f->ctx);
    double j = 0.0;
    for (size_t i = 0; i < f->B * f->nout; i++) j += (double)f->dy[i] * f->y[i];
    return j;
}

/* Pre-activations (activation switched off) into z. */
void fx_preact(fixture *f, float *z) {
    dp_act saved = f->l.activation;
    f->l.activation = DP_ACT_LINEAR;
    f->l.ops->forward(&f->l, f->params, f->x, z, f->B, &f->ctx);
    f->l.activation = saved;
}

/* Central difference of J w.r.t. *v. Returns 1 and sets *num, or 0 when the
 * stencil straddles relu's kink (some pre-activation changes sign between
 * v - h and v + h), where a finite difference says nothing about the gradient. */
int fx_numeric(fixture *f, float *v, float h, double *num) {
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
int fx_check(fixture *f, const char *label) {
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
            if (bad++ < 10)
                printf("\n  %s: x %zu analytic %.6g numeric %.6g", label, i, dx[i], num);
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

/* ---------------------------------------------------------- the model ---- */

const char fmnist_cnn_yaml[] =
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

/* ---------------------------------------------------- recurrent layers ---- */

double fx_seq_reference_error(fixture *f, seq_reference *ref, int T, int F, int u) {
    fx_objective(f);
    double *want = malloc(sizeof(double) * T * u), worst = 0.0;
    const dp_param_view *p = f->l.params;
    for (int b = 0; b < f->B; b++) {
        ref(f->params + p[0].offset, f->params + p[1].offset, f->params + p[2].offset,
            f->x + (size_t)b * T * F, T, F, u, want);
        for (int i = 0; i < T * u; i++)
            worst = fmax(worst, fabs(f->y[(size_t)b * T * u + i] - want[i]));
    }
    free(want);
    return worst;
}

void check_last_step(const dp_layer_ops *ops, dp_layer_cfg cfg, int B, int T, int F, int u,
                     uint64_t seed) {
    dp_shape in = {2, {T, F}};
    dp_layer_cfg cl = cfg;
    cfg.return_sequences = 1;
    cl.return_sequences = 0;
    fixture fs, fl;
    CU_ASSERT_FATAL(fx_setup(&fs, ops, &cfg, &in, B, seed, NULL) == 0);
    CU_ASSERT_FATAL(fx_setup(&fl, ops, &cl, &in, B, seed, NULL) == 0);
    CU_ASSERT(fs.l.out_shape.ndim == 2 && fs.l.out_shape.dim[0] == T);
    CU_ASSERT(fl.l.out_shape.ndim == 1 && fl.l.out_shape.dim[0] == u);
    fx_objective(&fs);
    fx_objective(&fl);
    float *last = malloc(sizeof(float) * B * u);
    for (int b = 0; b < B; b++)
        memcpy(last + b * u, fs.y + ((size_t)b * T + T - 1) * u, sizeof(float) * u);
    ASSERT_SAME_FLOATS(fl.y, last, (size_t)B * u);
    /* dy only on the last step: the two layers back-propagate the same thing */
    memset(fs.dy, 0, sizeof(float) * B * T * u);
    for (int b = 0; b < B; b++)
        memcpy(fs.dy + ((size_t)b * T + T - 1) * u, fl.dy + b * u, sizeof(float) * u);
    fs.l.ops->backward(&fs.l, fs.params, fs.x, fs.y, fs.dy, fs.dx, fs.grads, B);
    fl.l.ops->backward(&fl.l, fl.params, fl.x, fl.y, fl.dy, fl.dx, fl.grads, B);
    ASSERT_SAME_FLOATS(fs.grads, fl.grads, fs.l.param_count);
    ASSERT_SAME_FLOATS(fs.dx, fl.dx, (size_t)B * T * F);
    free(last);
    fx_teardown(&fs);
    fx_teardown(&fl);
}

double orthonormal_rows_error(const float *m, int rows, int cols) {
    double worst = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < rows; j++) {
            double dot = 0.0;
            for (int k = 0; k < cols; k++) dot += (double)m[i * cols + k] * m[j * cols + k];
            worst = fmax(worst, fabs(dot - (i == j)));
        }
    return worst;
}

int create_fails(const dp_layer_ops *ops, const dp_layer_cfg *cfg, const dp_shape *in,
                 const char *needle) {
    dp_layer l = {.ops = ops};
    dp_error err = {0};
    if (ops->create(&l, cfg, in, 4, &err) == 0) {
        ops->free(&l);
        printf("\n  %s accepted a config it should refuse (%s)", ops->type, needle);
        return 0;
    }
    int ok = strcmp(err.where, cfg->where) == 0 && strstr(err.what, needle) != NULL &&
             strchr(err.what, '\n') == NULL && l.state == NULL;
    if (!ok) printf("\n  unexpected error: %s: %s", err.where, err.what);
    return ok;
}
