/* test_gradcheck_embedding.c - embedding, positional_embedding and
 * global_average_pooling1d: forward against references written here from
 * Keras's definitions, gradients against central finite differences, the
 * initializers' ranges and the create-time errors; and two models from a
 * config, whose loss gradients are checked end to end. */
#include "layercheck.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* create must fail with a `what` holding frag, at cfg's where. */
static void expect_create_error(const dp_layer_ops *ops, const dp_layer_cfg *cfg, int index,
                                const dp_shape *in, const char *frag) {
    dp_layer l = {0};
    dp_error err = {0};
    l.ops = ops;
    l.index = index;
    CU_ASSERT_EQUAL(ops->create(&l, cfg, in, 4, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.where, cfg->where);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, frag));
    if (!strstr(err.what, frag)) printf("\n  got: %s (want '%s')", err.what, frag);
}

/* ------------------------------------------------------------- embedding ---- */

enum { EV = 7, EF = 5, ET = 6, EB = 3 }; /* vocabulary, vector, window, batch */

/* An embedding layer (index 0) over a window of ET ids, with a random table. */
typedef struct emb_fixture {
    dp_layer l;
    float table[EV * EF];
    float grads[EV * EF];
    float ids[EB * ET];
    float y[EB * ET * EF];
    float dy[EB * ET * EF];
} emb_fixture;

static void emb_setup(emb_fixture *e, uint64_t seed) {
    memset(e, 0, sizeof *e);
    dp_layer_cfg cfg = make_cfg("embedding");
    cfg.input_dim = EV;
    cfg.output_dim = EF;
    dp_shape in = {1, {ET}};
    dp_error err = {0};
    e->l.ops = &dp_layer_embedding_ops;
    e->l.index = 0;
    CU_ASSERT_FATAL(dp_layer_embedding_ops.create(&e->l, &cfg, &in, EB, &err) == 0);
    for (int i = 0; i < EV * EF; i++) e->table[i] = uniform_in(seed, (uint64_t)i, -1.0f, 1.0f);
    for (int i = 0; i < EB * ET * EF; i++) e->dy[i] = uniform_in(seed + 2, (uint64_t)i, -1, 1);
    /* Ids with repeats: id 2 appears in every row, id 5 twice in row 1. */
    static const int ids[EB * ET] = {2, 0, 6, 2, 1, 3, 5, 2, 4, 5, 0, 6, 1, 1, 2, 3, 6, 0};
    for (int i = 0; i < EB * ET; i++) e->ids[i] = (float)ids[i];
}

static double emb_objective(emb_fixture *e) {
    e->l.ops->forward(&e->l, e->table, e->ids, e->y, EB, &infer_ctx);
    double j = 0.0;
    for (int i = 0; i < EB * ET * EF; i++) j += (double)e->dy[i] * e->y[i];
    return j;
}

static void test_embedding_shapes(void) {
    emb_fixture e;
    emb_setup(&e, 31);
    CU_ASSERT_EQUAL(e.l.out_shape.ndim, 2);
    CU_ASSERT_EQUAL(e.l.out_shape.dim[0], ET);
    CU_ASSERT_EQUAL(e.l.out_shape.dim[1], EF);
    CU_ASSERT_EQUAL(e.l.n_params, 1);
    CU_ASSERT_STRING_EQUAL(e.l.params[0].name, "embeddings");
    CU_ASSERT_EQUAL(e.l.params[0].shape.dim[0], EV);
    CU_ASSERT_EQUAL(e.l.params[0].shape.dim[1], EF);
    CU_ASSERT_EQUAL(e.l.param_count, (size_t)EV * EF);
    e.l.ops->free(&e.l);
    dp_layer_embedding_ops.free(&e.l);
}

/* Output position n is table row ids[n], bit for bit. */
static void test_embedding_forward_rows(void) {
    emb_fixture e;
    emb_setup(&e, 32);
    emb_objective(&e);
    for (int n = 0; n < EB * ET; n++)
        ASSERT_SAME_FLOATS(e.y + n * EF, e.table + (int)e.ids[n] * EF, EF);
    e.l.ops->free(&e.l);
    dp_layer_embedding_ops.free(&e.l);
}

/* The table gradient is the sum of dy over the positions holding each id (a
 * reference in double; id 2 is at four positions), and matches finite
 * differences of J = sum(dy .* y). */
static void test_embedding_gradient(void) {
    emb_fixture e;
    emb_setup(&e, 33);
    emb_objective(&e);
    e.l.ops->backward(&e.l, e.table, e.ids, e.y, e.dy, NULL, e.grads, EB);
    double want[EV * EF] = {0};
    for (int n = 0; n < EB * ET; n++)
        for (int f = 0; f < EF; f++) want[(int)e.ids[n] * EF + f] += e.dy[n * EF + f];
    int bad = 0;
    for (int i = 0; i < EV * EF; i++) {
        if (!close_enough(e.grads[i], want[i], 1e-5, 1e-6)) bad++;
        const float h = 1e-2f, orig = e.table[i];
        e.table[i] = orig + h;
        double jp = emb_objective(&e);
        e.table[i] = orig - h;
        double jm = emb_objective(&e);
        e.table[i] = orig;
        double num = (jp - jm) / ((double)(orig + h) - (double)(orig - h));
        if (!close_enough(e.grads[i], num, 1e-2, 2e-3)) {
            if (bad++ < 10) printf("\n  table %d analytic %g numeric %g", i, e.grads[i], num);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* Backward accumulates: a second call doubles the gradient. */
    float g1[EV * EF];
    memcpy(g1, e.grads, sizeof g1);
    e.l.ops->backward(&e.l, e.table, e.ids, e.y, e.dy, NULL, e.grads, EB);
    for (int i = 0; i < EV * EF; i++) CU_ASSERT(close_enough(e.grads[i], 2.0 * g1[i], 1e-5, 1e-6));
    e.l.ops->free(&e.l);
    dp_layer_embedding_ops.free(&e.l);
}

/* An id outside [0, V) (or NaN) reads nothing outside the table: its vector
 * is zero and it adds no gradient. */
static void test_embedding_bad_ids(void) {
    emb_fixture e;
    emb_setup(&e, 34);
    e.ids[1] = (float)EV;
    e.ids[4] = -1.0f;
    e.ids[7] = NAN;
    e.ids[8] = 1e30f;
    emb_objective(&e);
    static const float zero[EF] = {0};
    for (int n = 0; n < EB * ET; n++) {
        if (n == 1 || n == 4 || n == 7 || n == 8) ASSERT_SAME_FLOATS(e.y + n * EF, zero, EF);
        else ASSERT_SAME_FLOATS(e.y + n * EF, e.table + (int)e.ids[n] * EF, EF);
    }
    e.l.ops->backward(&e.l, e.table, e.ids, e.y, e.dy, NULL, e.grads, EB);
    double want[EV * EF] = {0};
    for (int n = 0; n < EB * ET; n++) {
        if (n == 1 || n == 4 || n == 7 || n == 8) continue;
        for (int f = 0; f < EF; f++) want[(int)e.ids[n] * EF + f] += e.dy[n * EF + f];
    }
    for (int i = 0; i < EV * EF; i++) CU_ASSERT(close_enough(e.grads[i], want[i], 1e-5, 1e-6));
    e.l.ops->free(&e.l);
    dp_layer_embedding_ops.free(&e.l);
}

/* Keras's uniform(-0.05, 0.05), a pure function of the key. */
static void test_embedding_init(void) {
    dp_layer_cfg cfg = make_cfg("embedding");
    cfg.input_dim = 256;
    cfg.output_dim = 32;
    dp_shape in = {1, {8}};
    dp_layer l = {0};
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_layer_embedding_ops.create(&l, &cfg, &in, 2, &err) == 0);
    size_t n = l.param_count;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    l.ops = &dp_layer_embedding_ops;
    l.ops->init_params(&l, a, 77);
    l.ops->init_params(&l, b, 77);
    l.ops->init_params(&l, c, 78);
    ASSERT_SAME_FLOATS(a, b, n);
    ASSERT_DIFFERENT_BYTES(a, c, n * sizeof *a);
    float lo = 1, hi = -1;
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fminf(lo, a[i]), hi = fmaxf(hi, a[i]);
        mean += a[i];
    }
    mean /= (double)n;
    CU_ASSERT(lo >= -0.05f && hi <= 0.05f);
    CU_ASSERT(lo < -0.049f && hi > 0.049f); /* 8192 draws fill the range */
    CU_ASSERT(fabs(mean) < 0.002);          /* std of the mean: 0.05 / sqrt(3 * 8192) */
    l.ops->free(&l);

    /* embeddings_initializer: normal, N(0, stddev^2): PyTorch's nn.Embedding at 1. */
    cfg.embeddings_normal = 1;
    cfg.stddev = 1.0;
    CU_ASSERT_FATAL(dp_layer_embedding_ops.create(&l, &cfg, &in, 2, &err) == 0);
    l.ops = &dp_layer_embedding_ops;
    l.ops->init_params(&l, a, 77);
    l.ops->init_params(&l, b, 77);
    ASSERT_SAME_FLOATS(a, b, n);
    double sum = 0, sq = 0;
    int beyond2 = 0;
    for (size_t i = 0; i < n; i++) {
        sum += a[i], sq += (double)a[i] * a[i];
        beyond2 += fabsf(a[i]) > 2.0f;
    }
    mean = sum / (double)n;
    double sd = sqrt(sq / (double)n - mean * mean);
    CU_ASSERT(fabs(mean) < 0.05); /* 4.5 standard errors of 1 / sqrt(8192) */
    CU_ASSERT(fabs(sd - 1.0) < 0.05);
    /* About 4.6% of a normal lies beyond 2 sd; a uniform of sd 1 has none. */
    CU_ASSERT(beyond2 > 200 && beyond2 < 560);
    free(a), free(b), free(c);
    l.ops->free(&l);
}

static void test_embedding_errors(void) {
    dp_layer_cfg cfg = make_cfg("embedding");
    cfg.input_dim = 10;
    cfg.output_dim = 4;
    dp_shape ids = {1, {5}}, seq = {2, {5, 3}};
    expect_create_error(&dp_layer_embedding_ops, &cfg, 1, &ids,
                        "embedding takes token ids, so it must be the first layer");
    expect_create_error(&dp_layer_embedding_ops, &cfg, 0, &seq, "token ids [T]");
    cfg.input_dim = (1 << 24) + 1;
    expect_create_error(&dp_layer_embedding_ops, &cfg, 0, &ids, "input_dim 16777217");
}

/* -------------------------------------------------- positional_embedding ---- */

static void test_positional_forward_and_gradient(void) {
    enum { B = 3, T = 4, F = 5, M = 6 };
    dp_layer_cfg cfg = make_cfg("positional_embedding");
    cfg.max_length = M;
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_positional_embedding_ops, &cfg, &seq, B, 41, NULL) == 0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 2);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], T);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[1], F);
    CU_ASSERT_STRING_EQUAL(f.l.params[0].name, "embeddings");
    CU_ASSERT_EQUAL(f.l.params[0].shape.dim[0], M);
    CU_ASSERT_EQUAL(f.l.params[0].shape.dim[1], F);
    fx_objective(&f);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < F; j++) {
                size_t i = ((size_t)b * T + t) * F + j;
                bad += f.y[i] != f.x[i] + f.params[t * F + j];
            }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(fx_check(&f, "positional_embedding"), 0);
    /* Rows [T, M) of the table are not used: their gradient stays zero. */
    for (size_t i = (size_t)T * F; i < (size_t)M * F; i++) CU_ASSERT_EQUAL(f.grads[i], 0.0f);
    fx_teardown(&f);
}

/* A window as long as max_length uses the whole table. */
static void test_positional_full_window(void) {
    dp_layer_cfg cfg = make_cfg("positional_embedding");
    cfg.max_length = 3;
    dp_shape seq = {2, {3, 2}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_positional_embedding_ops, &cfg, &seq, 2, 42, NULL) == 0);
    CU_ASSERT_EQUAL(fx_check(&f, "positional_embedding, T = max_length"), 0);
    fx_teardown(&f);
}

/* keras_hub's glorot_uniform on [max_length, F]. */
static void test_positional_init(void) {
    enum { M = 64, F = 32 };
    dp_layer_cfg cfg = make_cfg("positional_embedding");
    cfg.max_length = M;
    dp_shape seq = {2, {16, F}};
    dp_layer l = {0};
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_layer_positional_embedding_ops.create(&l, &cfg, &seq, 2, &err) == 0);
    float *w = malloc(l.param_count * sizeof *w);
    dp_layer_positional_embedding_ops.init_params(&l, w, 5);
    float limit = (float)sqrt(6.0 / (M + F)), lo = 1, hi = -1;
    for (size_t i = 0; i < l.param_count; i++) lo = fminf(lo, w[i]), hi = fmaxf(hi, w[i]);
    CU_ASSERT(lo >= -limit && hi <= limit);
    CU_ASSERT(lo < -0.98f * limit && hi > 0.98f * limit);
    free(w);
    dp_layer_positional_embedding_ops.free(&l);
}

static void test_positional_errors(void) {
    dp_layer_cfg cfg = make_cfg("positional_embedding");
    cfg.max_length = 8;
    dp_shape long_seq = {2, {9, 4}}, flat = {1, {9}};
    expect_create_error(&dp_layer_positional_embedding_ops, &cfg, 1, &long_seq,
                        "window of 9 positions is longer than max_length 8");
    expect_create_error(&dp_layer_positional_embedding_ops, &cfg, 1, &flat, "[T, F]");
}

/* ---------------------------------------------- global_average_pooling1d ---- */

static void test_pooling(void) {
    enum { B = 3, T = 5, F = 4 };
    dp_layer_cfg cfg = make_cfg("global_average_pooling1d");
    dp_shape seq = {2, {T, F}};
    fixture f;
    CU_ASSERT_FATAL(fx_setup(&f, &dp_layer_global_average_pooling1d_ops, &cfg, &seq, B, 51, NULL) ==
                    0);
    CU_ASSERT_EQUAL(f.l.out_shape.ndim, 1);
    CU_ASSERT_EQUAL(f.l.out_shape.dim[0], F);
    CU_ASSERT_EQUAL(f.l.param_count, 0);
    fx_objective(&f);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < F; j++) {
            double mean = 0;
            for (int t = 0; t < T; t++) mean += f.x[((size_t)b * T + t) * F + j];
            mean /= T;
            CU_ASSERT(close_enough(f.y[b * F + j], mean, 1e-6, 1e-7));
        }
    CU_ASSERT_EQUAL(fx_check(&f, "global_average_pooling1d"), 0);
    fx_teardown(&f);

    dp_shape flat = {1, {6}};
    expect_create_error(&dp_layer_global_average_pooling1d_ops, &cfg, 1, &flat, "[T, F]");
}

/* ------------------------------------------------------------- models ---- */

/* Builds the model of yaml for batches of B rows, or fails the test. */
static void build_model(dp_model *m, dp_config *cfg, const char *yaml, int B) {
    dp_error err = {0};
    int rc = dp_config_load_text(cfg, "seq.yaml", yaml, strlen(yaml), NULL, 0, &err);
    if (rc == 0) rc = dp_model_build(m, cfg, B, &err);
    if (rc) printf("\n  %s: %s", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* Sum of the loss over B rows of P positions each, K classes. */
static double model_loss(dp_model *m, const float *x, const float *y, int B, int P, int K) {
    const float *out = dp_model_forward(m, x, B, NULL);
    return dp_loss_forward_backward(m->loss, m->fused, out, y, B * P, K, 1, NULL).loss;
}

/* Backward of the whole model against central differences of its loss, for
 * every parameter; returns the mismatches (printed). */
static int check_model_gradient(dp_model *m, const float *x, const float *y, int B, int P, int K,
                                const char *label) {
    float *dout = malloc((size_t)B * P * K * sizeof *dout);
    memset(m->grads, 0, m->n_params * sizeof(float));
    const float *out = dp_model_forward(m, x, B, NULL);
    dp_loss_forward_backward(m->loss, m->fused, out, y, B * P, K, 1, dout);
    dp_model_backward(m, x, dout, B);
    int bad = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        float orig = m->params[i], h = 1e-3f, p = orig + h, q = orig - h;
        m->params[i] = p;
        double lp = model_loss(m, x, y, B, P, K);
        m->params[i] = q;
        double lq = model_loss(m, x, y, B, P, K);
        m->params[i] = orig;
        double num = (lp - lq) / ((double)p - q);
        if (!close_enough(m->grads[i], num, 1e-2, 1e-3) && bad++ < 10)
            printf("\n  %s param %zu: analytic %.6g numeric %.6g", label, i, m->grads[i], num);
    }
    free(dout);
    return bad;
}

/* A token model from a config, end to end: ids [T] -> embedding ->
 * positional_embedding -> dense tanh -> dense softmax at every position, with
 * a class id per position; every parameter's loss gradient, the table's
 * included, against finite differences. */
static void test_token_model_gradient(void) {
    static const char yaml[] = "data: {path: tok.h5}\n"
                               "model:\n"
                               "  input: [5]\n"
                               "  layers:\n"
                               "    - embedding: {input_dim: 6, output_dim: 4}\n"
                               "    - positional_embedding: {max_length: 7}\n"
                               "    - dense: {units: 5, activation: tanh}\n"
                               "    - dense: {units: 6, activation: softmax}\n"
                               "loss: sparse_categorical_crossentropy\n"
                               "optimizer: sgd\n"
                               "train: {epochs: 1, batch_size: 3}\n";
    enum { B = 3, T = 5, V = 6 };
    dp_config cfg;
    dp_model m;
    build_model(&m, &cfg, yaml, B);
    dp_shape seq = {2, {T, V}};
    CU_ASSERT_TRUE(dp_shape_equal(&m.out_shape, &seq));
    CU_ASSERT_EQUAL(dp_model_output_positions(&m), T);
    CU_ASSERT_EQUAL(m.n_params, 6 * 4 + 7 * 4 + (4 * 5 + 5) + (5 * 6 + 6));
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = uniform_in(61, i, -1, 1);
    static const float ids[B * T] = {0, 3, 3, 5, 1, 2, 2, 4, 0, 5, 1, 0, 3, 3, 2};
    static const float y[B * T] = {3, 3, 5, 1, 2, 2, 4, 0, 5, 1, 0, 3, 3, 2, 4};
    CU_ASSERT_EQUAL(check_model_gradient(&m, ids, y, B, T, V, "token model"), 0);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

/* A sequence classifier: embedding -> global_average_pooling1d -> dense
 * softmax, one class per row. */
static void test_pooled_model_gradient(void) {
    static const char yaml[] = "data: {path: tok.h5}\n"
                               "model:\n"
                               "  input: [4]\n"
                               "  layers:\n"
                               "    - embedding: {input_dim: 5, output_dim: 3}\n"
                               "    - global_average_pooling1d: {}\n"
                               "    - dense: {units: 3, activation: softmax}\n"
                               "loss: sparse_categorical_crossentropy\n"
                               "optimizer: sgd\n"
                               "train: {epochs: 1, batch_size: 2}\n";
    enum { B = 2, T = 4, K = 3 };
    dp_config cfg;
    dp_model m;
    build_model(&m, &cfg, yaml, B);
    CU_ASSERT_EQUAL(dp_model_output_positions(&m), 1);
    CU_ASSERT_EQUAL(dp_model_output_width(&m), K);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = uniform_in(62, i, -1, 1);
    static const float ids[B * T] = {4, 0, 4, 2, 1, 3, 3, 0};
    static const float y[B] = {2, 0};
    CU_ASSERT_EQUAL(check_model_gradient(&m, ids, y, B, 1, K, "pooled model"), 0);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

int main(void) {
    static const test_case cases[] = {
        {"embedding shapes", test_embedding_shapes},
        {"embedding forward is table rows", test_embedding_forward_rows},
        {"embedding table gradient", test_embedding_gradient},
        {"embedding ids outside the table", test_embedding_bad_ids},
        {"embedding init uniform(-0.05, 0.05)", test_embedding_init},
        {"embedding create errors", test_embedding_errors},
        {"positional_embedding forward and gradient", test_positional_forward_and_gradient},
        {"positional_embedding T = max_length", test_positional_full_window},
        {"positional_embedding init glorot", test_positional_init},
        {"positional_embedding create errors", test_positional_errors},
        {"global_average_pooling1d", test_pooling},
        {"token model gradient", test_token_model_gradient},
        {"pooled model gradient", test_pooled_model_gradient},
        {NULL, NULL},
    };
    return test_run_suite("gradcheck_embedding", cases);
}
