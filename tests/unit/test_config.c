/* test_config.c - YAML config parsing, --set overrides, and error places.
 * Every expected line:col below is counted by hand from the YAML in the test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_schema.h"
#include "dptrain/config.h"
#include "nn/optim.h"
#include "testlib.h"

#define NAME "t.yaml"

/* A small valid config; line numbers are in the comments. */
#define L01 "data:\n"
#define L02 "  path: d.h5\n"
#define L03 "model:\n"
#define L04 "  input: [4]\n"
#define L05 "  layers:\n"
#define L06 "    - dense: {units: 3, activation: relu}\n"
#define L07 "    - dense: {units: 1}\n"
#define L08 "loss: mse\n"
#define L09 "optimizer: sgd\n"
#define L10 "train:\n"
#define L11 "  epochs: 5\n"
#define L12 "  batch_size: 8\n"
#define BASE L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 L11 L12

static int load(dp_config *cfg, const char *text, char *const *sets, int n_set, dp_error *err) {
    dp_error_clear(err);
    return dp_config_load_text(cfg, NAME, text, strlen(text), sets, n_set, err);
}

/* Loads text, expects failure at `where` with `what` in the message. */
static void expect_error_sets(const char *text, char *const *sets, int n_set, const char *where,
                              const char *what) {
    dp_config cfg;
    dp_error err;
    int rc = load(&cfg, text, sets, n_set, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(err.set, 1);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, what));
    if (rc != -1 || strcmp(err.where, where) != 0 || !strstr(err.what, what))
        fprintf(stderr, "\n  expected %s: ...%s...\n  got      %s: %s\n", where, what, err.where,
                err.what);
    dp_config_free(&cfg);
}

static void expect_error(const char *text, const char *where, const char *what) {
    expect_error_sets(text, NULL, 0, where, what);
}

static int load_ok(dp_config *cfg, const char *text, char *const *sets, int n_set) {
    dp_error err;
    int rc = load(cfg, text, sets, n_set, &err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) fprintf(stderr, "\n  unexpected error %s: %s\n", err.where, err.what);
    return rc;
}

/* ---- the seed config ---- */

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_seed_file(void) {
    const char *path = test_source_path("configs/seed.yaml");
    char path_copy[4096];
    snprintf(path_copy, sizeof path_copy, "%s", path);
    char *text = read_all(path_copy);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);

    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_file(&cfg, path_copy, NULL, 0, &err);
    if (rc) fprintf(stderr, "\n  %s: %s\n", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    CU_ASSERT_STRING_EQUAL(cfg.data_path, "datasets/seed_classification.h5");
    CU_ASSERT_EQUAL(cfg.standardize, 1);
    CU_ASSERT_EQUAL(cfg.validation_split, 0.2);
    CU_ASSERT_EQUAL(cfg.shards, 0);
    CU_ASSERT_EQUAL(cfg.input.ndim, 1);
    CU_ASSERT_EQUAL(cfg.input.dim[0], 20);
    CU_ASSERT_EQUAL_FATAL(cfg.n_layers, 3);
    const int units[3] = {64, 32, 1};
    const dp_act acts[3] = {DP_ACT_RELU, DP_ACT_RELU, DP_ACT_SIGMOID};
    /* Each entry's place: the "dense" key after "    - ", found by scanning the file. */
    int line = 1, k = 0;
    for (const char *p = text; *p && k < 3;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "", line++) {
        if (strncmp(p, "    - dense:", 12) != 0) continue;
        char where[4200];
        snprintf(where, sizeof where, "%s:%d:7", path_copy, line);
        CU_ASSERT_STRING_EQUAL(cfg.layers[k].where, where);
        k++;
    }
    CU_ASSERT_EQUAL(k, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(cfg.layers[i].type, "dense");
        CU_ASSERT_EQUAL(cfg.layers[i].units, units[i]);
        CU_ASSERT_EQUAL(cfg.layers[i].activation, acts[i]);
    }
    CU_ASSERT_EQUAL(cfg.loss, DP_LOSS_BCE);
    CU_ASSERT_EQUAL(cfg.optim.kind, DP_OPTIM_ADAM);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, 0.001);
    CU_ASSERT_EQUAL(cfg.optim.beta1, -1);
    CU_ASSERT_EQUAL(cfg.optim.beta2, -1);
    CU_ASSERT_EQUAL(cfg.optim.epsilon, -1);
    CU_ASSERT_EQUAL(cfg.optim.rho, -1);
    CU_ASSERT_EQUAL(cfg.optim.momentum, -1);
    CU_ASSERT_EQUAL(cfg.optim.nesterov, -1);
    CU_ASSERT_EQUAL(cfg.metric_accuracy, 1);
    CU_ASSERT_EQUAL(cfg.epochs, 50);
    CU_ASSERT_EQUAL(cfg.batch_size, 10);
    CU_ASSERT_EQUAL(cfg.seed, 42ULL);
    CU_ASSERT_EQUAL(cfg.reduction, DP_REDUCE_EXACT);
    CU_ASSERT_EQUAL(cfg.check_every_steps, 200);
    CU_ASSERT_EQUAL(cfg.shared_memory, 1);
    CU_ASSERT_EQUAL(cfg.ckpt_keep, 3);
    CU_ASSERT_EQUAL(cfg.ckpt_every_steps, 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, path_copy);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg.text);
    CU_ASSERT_STRING_EQUAL(cfg.text, text);
    dp_config_free(&cfg);
    CU_ASSERT_PTR_NULL(cfg.text);
}

static void test_missing_file(void) {
    dp_config cfg;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_config_load_file(&cfg, "/nonexistent/dir/x.yaml", NULL, 0, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.where, "/nonexistent/dir/x.yaml");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "cannot open"));
    dp_config_free(&cfg);
}

/* ---- defaults and values ---- */

/* A checkpoint stores the file's text and its overrides as "# --set" lines;
 * loading that text back gives the config that ran, and the same text. */
static void test_saved_text_round_trip(void) {
    dp_config ran, back;
    char set0[] = "model.layers.0.dense.units=7", set1[] = "train.epochs=9";
    char *sets[] = {set0, set1};
    if (load_ok(&ran, BASE "# a comment of the file's own\n", sets, 2)) return;
    CU_ASSERT_PTR_NOT_NULL(strstr(ran.text, "# --set train.epochs=9\n"));
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_config_load_saved(&back, "ckpt.h5", ran.text, &err), 0);
    CU_ASSERT_EQUAL(back.layers[0].units, 7);
    CU_ASSERT_EQUAL(back.epochs, 9);
    CU_ASSERT_STRING_EQUAL(back.text, ran.text);
    dp_config_free(&back);
    /* Without overrides the text loads as it is. */
    dp_config plain;
    CU_ASSERT_EQUAL_FATAL(dp_config_load_saved(&plain, "ckpt.h5", BASE, &err), 0);
    CU_ASSERT_EQUAL(plain.layers[0].units, 3);
    CU_ASSERT_EQUAL(plain.epochs, 5);
    dp_config_free(&plain);
    dp_config_free(&ran);
}

static void test_defaults(void) {
    dp_config cfg;
    if (load_ok(&cfg, BASE, NULL, 0)) return;
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "d.h5");
    CU_ASSERT_EQUAL(cfg.standardize, 1);
    CU_ASSERT_EQUAL(cfg.validation_split, 0);
    CU_ASSERT_EQUAL(cfg.shards, 0);
    CU_ASSERT_EQUAL(cfg.n_layers, 2);
    CU_ASSERT_EQUAL(cfg.layers[0].activation, DP_ACT_RELU);
    CU_ASSERT_EQUAL(cfg.layers[1].activation, DP_ACT_LINEAR);
    CU_ASSERT_STRING_EQUAL(cfg.layers[1].where, NAME ":7:7");
    CU_ASSERT_EQUAL(cfg.loss, DP_LOSS_MSE);
    CU_ASSERT_EQUAL(cfg.optim.kind, DP_OPTIM_SGD);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, -1);
    CU_ASSERT_EQUAL(cfg.optim.momentum, -1);
    CU_ASSERT_EQUAL(cfg.optim.nesterov, -1);
    CU_ASSERT_EQUAL(cfg.metric_accuracy, 0);
    CU_ASSERT_EQUAL(cfg.epochs, 5);
    CU_ASSERT_EQUAL(cfg.batch_size, 8);
    CU_ASSERT_EQUAL(cfg.seed, 42ULL);
    CU_ASSERT_EQUAL(cfg.reduction, DP_REDUCE_EXACT);
    CU_ASSERT_EQUAL(cfg.check_every_steps, 200);
    CU_ASSERT_EQUAL(cfg.ckpt_keep, 3);
    CU_ASSERT_EQUAL(cfg.ckpt_every_steps, 0);
    CU_ASSERT_STRING_EQUAL(cfg.source, NAME);
    CU_ASSERT_STRING_EQUAL(cfg.text, BASE);
    dp_config_free(&cfg);
}

static void test_all_fields(void) {
    const char *text =
        "data: {path: 'a b.h5', standardize: no, validation_split: 0, shards: 4}\n"
        "model:\n"
        "  input: [3, 28, 28]\n"
        "  layers: [{dense: {units: 10, activation: softmax}}]\n"
        "loss: sparse_categorical_crossentropy\n"
        "optimizer: {name: rmsprop, learning_rate: 1e-3, rho: 0.8, momentum: 0.5, epsilon: 2}\n"
        "metrics: [accuracy]\n"
        "train: {epochs: 0, batch_size: 1, seed: 9007199254740993, reduction: fast,\n"
        "        check_every_steps: 7, shared_memory: false}\n"
        "checkpoint: {keep: 1, every_steps: 250}\n";
    dp_config cfg;
    if (load_ok(&cfg, text, NULL, 0)) return;
    CU_ASSERT_STRING_EQUAL(cfg.data_path, "a b.h5");
    CU_ASSERT_EQUAL(cfg.standardize, 0);
    CU_ASSERT_EQUAL(cfg.shards, 4);
    CU_ASSERT_EQUAL(cfg.input.ndim, 3);
    CU_ASSERT_EQUAL(cfg.input.dim[0], 3);
    CU_ASSERT_EQUAL(cfg.input.dim[2], 28);
    CU_ASSERT_EQUAL(cfg.layers[0].activation, DP_ACT_SOFTMAX);
    CU_ASSERT_EQUAL(cfg.loss, DP_LOSS_SPARSE_CE);
    CU_ASSERT_EQUAL(cfg.optim.kind, DP_OPTIM_RMSPROP);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, 1e-3);
    CU_ASSERT_EQUAL(cfg.optim.rho, 0.8);
    CU_ASSERT_EQUAL(cfg.optim.momentum, 0.5);
    CU_ASSERT_EQUAL(cfg.optim.epsilon, 2.0);
    CU_ASSERT_EQUAL(cfg.optim.beta1, -1);
    CU_ASSERT_EQUAL(cfg.epochs, 0);
    CU_ASSERT_EQUAL(cfg.batch_size, 1);
    /* 2^53 + 1: only exact integer parsing keeps the last bit. */
    CU_ASSERT_EQUAL(cfg.seed, 9007199254740993ULL);
    CU_ASSERT_EQUAL(cfg.reduction, DP_REDUCE_FAST);
    CU_ASSERT_EQUAL(cfg.check_every_steps, 7);
    CU_ASSERT_EQUAL(cfg.ckpt_keep, 1);
    CU_ASSERT_EQUAL(cfg.ckpt_every_steps, 250);
    dp_config_free(&cfg);

    const char *sgd = "data: {path: x}\nmodel: {input: [1], layers: [{dense: {units: 1}}]}\n"
                      "loss: mse\noptimizer: {name: sgd, momentum: 0.9, nesterov: yes}\n"
                      "train: {epochs: 1, batch_size: 1}\n";
    if (load_ok(&cfg, sgd, NULL, 0)) return;
    CU_ASSERT_EQUAL(cfg.optim.momentum, 0.9);
    CU_ASSERT_EQUAL(cfg.optim.nesterov, 1);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, -1);
    dp_config_free(&cfg);
}

/* Every canonical name must read back as the value it names. */
static void test_names_round_trip(void) {
    char text[512];
    dp_config cfg;
    for (int l = DP_LOSS_MSE; l <= DP_LOSS_SPARSE_CE; l++) {
        snprintf(text, sizeof text, L01 L02 L03 L04 L05 L06 L07 "loss: %s\n" L09 L10 L11 L12,
                 dp_config_name_loss((dp_loss_kind)l));
        if (load_ok(&cfg, text, NULL, 0) == 0) CU_ASSERT_EQUAL((int)cfg.loss, l);
        dp_config_free(&cfg);
    }
    for (int o = DP_OPTIM_SGD; o <= DP_OPTIM_RMSPROP; o++) {
        snprintf(text, sizeof text, L01 L02 L03 L04 L05 L06 L07 L08 "optimizer: %s\n" L10 L11 L12,
                 dp_config_name_optim((dp_optim_kind)o));
        if (load_ok(&cfg, text, NULL, 0) == 0) CU_ASSERT_EQUAL((int)cfg.optim.kind, o);
        dp_config_free(&cfg);
    }
    for (int a = DP_ACT_LINEAR; a <= DP_ACT_GELU; a++) {
        snprintf(text, sizeof text,
                 L01 L02 L03 L04 L05
                 "    - dense: {units: 3, activation: %s}\n" L07 L08 L09 L10 L11 L12,
                 dp_config_name_act((dp_act)a));
        if (load_ok(&cfg, text, NULL, 0) == 0) CU_ASSERT_EQUAL((int)cfg.layers[0].activation, a);
        dp_config_free(&cfg);
    }
    CU_ASSERT_STRING_EQUAL(dp_config_name_loss(DP_LOSS_BCE), "binary_crossentropy");
    CU_ASSERT_STRING_EQUAL(dp_config_name_act(DP_ACT_RELU), "relu");
    CU_ASSERT_STRING_EQUAL(dp_config_name_optim(DP_OPTIM_ADAM), "adam");
}

/* ---- overrides ---- */

/* data.scale: a number or a fraction a/b (YAML reads 1/255 as a string),
 * finite and not 0; data.offset: any finite number; defaults 1 and 0. */
static void test_data_scale(void) {
    dp_config cfg;
    if (load_ok(&cfg, BASE, NULL, 0) == 0) {
        CU_ASSERT(cfg.data_scale == 1 && cfg.data_offset == 0);
        dp_config_free(&cfg);
    }
    if (load_ok(&cfg,
                L01 L02 "  scale: 1/255\n  offset: -0.5\n" L03 L04 L05 L06 L07 L08 L09 L10 L11 L12,
                NULL, 0) == 0) {
        CU_ASSERT(cfg.data_scale == 1.0 / 255); /* the double nearest 1/255, as C divides */
        CU_ASSERT(cfg.data_offset == -0.5);
        dp_config_free(&cfg);
    }
    char *sets[] = {"data.scale=-2e-3", "data.offset=1e3"};
    if (load_ok(&cfg, BASE, sets, 2) == 0) {
        CU_ASSERT(cfg.data_scale == -2e-3 && cfg.data_offset == 1e3);
        dp_config_free(&cfg);
    }
    static const char *const bad[][2] = {
        {"  scale: 0\n", "data.scale: must be a finite number other than 0, got 0"},
        {"  scale: 0/7\n", "data.scale: must be a finite number other than 0, got 0/7"},
        {"  scale: 1/0\n", "data.scale: 1/0 is not a finite number"},
        {"  scale: 1e308/1e-308\n", "is not a finite number"},
        {"  scale: inf\n", "data.scale: expected a number, got 'inf'"},
        {"  scale: 1/2/3\n", "data.scale: expected a number or a fraction a/b, got '1/2/3'"},
        {"  scale: /255\n", "expected a number or a fraction a/b"},
        {"  scale: one/255\n", "expected a number or a fraction a/b"},
        {"  offset: 1/2\n", "data.offset: expected a number, got '1/2'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s", L01 L02, bad[i][0],
                 L03 L04 L05 L06 L07 L08 L09 L10 L11 L12);
        /* The value's column: after "  scale: " or "  offset: ". */
        expect_error(text, strstr(bad[i][0], "offset") ? NAME ":3:11" : NAME ":3:10", bad[i][1]);
    }
}

static void test_set_values(void) {
    char *sets[] = {"train.epochs=2",
                    "model.input=[28, 28]",
                    "train.reduction=fast",
                    "checkpoint.every_steps=100",
                    "model.layers.1.dense.units=7",
                    "optimizer.learning_rate=0.5",
                    "train.epochs=3"};
    dp_config cfg;
    if (load_ok(&cfg, BASE, sets, 7)) return;
    CU_ASSERT_EQUAL(cfg.epochs, 3); /* the later --set wins */
    CU_ASSERT_EQUAL(cfg.input.ndim, 2);
    CU_ASSERT_EQUAL(cfg.input.dim[0], 28);
    CU_ASSERT_EQUAL(cfg.input.dim[1], 28);
    CU_ASSERT_EQUAL(cfg.reduction, DP_REDUCE_FAST);
    CU_ASSERT_EQUAL(cfg.ckpt_every_steps, 100);
    CU_ASSERT_EQUAL(cfg.ckpt_keep, 3);
    CU_ASSERT_EQUAL(cfg.layers[1].units, 7);
    CU_ASSERT_EQUAL(cfg.layers[0].units, 3);
    /* "optimizer: sgd" was widened to {name: sgd, learning_rate: 0.5}. */
    CU_ASSERT_EQUAL(cfg.optim.kind, DP_OPTIM_SGD);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, 0.5);
    const char *tail = "# --set train.epochs=2\n# --set model.input=[28, 28]\n";
    CU_ASSERT_EQUAL(strncmp(cfg.text, BASE, strlen(BASE)), 0);
    CU_ASSERT_EQUAL(strncmp(cfg.text + strlen(BASE), tail, strlen(tail)), 0);
    dp_config_free(&cfg);

    /* A whole layer replaced by a mapping given inline. */
    char *layer[] = {"model.layers.0={dense: {units: 9, activation: tanh}}", "loss=mse"};
    if (load_ok(&cfg, BASE, layer, 2)) return;
    CU_ASSERT_EQUAL(cfg.layers[0].units, 9);
    CU_ASSERT_EQUAL(cfg.layers[0].activation, DP_ACT_TANH);
    CU_ASSERT_STRING_EQUAL(cfg.layers[0].where, "--set model.layers.0");
    dp_config_free(&cfg);
}

static void test_set_errors(void) {
    char *bad_key[] = {"train.reducton=fast"};
    expect_error_sets(BASE, bad_key, 1, "--set train.reducton", "did you mean 'reduction'?");
    char *bad_top[] = {"trian.epochs=3"};
    expect_error_sets(BASE, bad_top, 1, "--set trian.epochs", "did you mean 'train'?");
    char *far_key[] = {"train.zzzzzz=1"};
    expect_error_sets(BASE, far_key, 1, "--set train.zzzzzz", "valid keys: epochs, batch_size");
    char *no_eq[] = {"train.epochs"};
    expect_error_sets(BASE, no_eq, 1, "--set train.epochs", "expected key=value");
    char *empty_key[] = {"=5"};
    expect_error_sets(BASE, empty_key, 1, "--set =5", "empty key");
    char *empty_part[] = {"train..epochs=5"};
    expect_error_sets(BASE, empty_part, 1, "--set train..epochs", "empty part");
    char *no_value[] = {"train.epochs="};
    expect_error_sets(BASE, no_value, 1, "--set train.epochs", "missing value");
    char *bad_yaml[] = {"model.input=[28, 28"};
    expect_error_sets(BASE, bad_yaml, 1, "--set model.input", "not valid YAML");
    char *bad_type[] = {"train.epochs=abc"};
    expect_error_sets(BASE, bad_type, 1, "--set train.epochs",
                      "train.epochs: expected an integer, got 'abc'");
    char *bad_index[] = {"model.layers.2.dense.units=3"};
    expect_error_sets(BASE, bad_index, 1, "--set model.layers.2.dense.units", "out of range");
    char *leaf[] = {"train.epochs.x=3"};
    expect_error_sets(BASE, leaf, 1, "--set train.epochs.x", "takes a single value");
    char *wrong_optim[] = {"optimizer.rho=0.9"};
    expect_error_sets(BASE, wrong_optim, 1, "--set optimizer.rho", "does not apply to sgd");
    /* Regression (fuzzing, issue 5): indexing below a single-value list entry walked
     * off the schema (a NULL spec) and crashed when the file nests lists there. */
    char *below_leaf[] = {"model.input.0.0.0=1"};
    expect_error_sets(L01 L02 L03 "  input: [[[4]]]\n" L05 L06 L07 L08 L09 L10 L11 L12, below_leaf,
                      1, "--set model.input.0.0.0",
                      "'model.input.0' takes a single value; it has no entry '0'");
    char *below_metric[] = {"metrics.0.0=accuracy"};
    expect_error_sets(BASE "metrics: [[accuracy]]\n", below_metric, 1, "--set metrics.0.0",
                      "'metrics.0' takes a single value");
}

/* ---- errors in the file ---- */

static void test_errors_structure(void) {
    /* libyaml stops at the second ':' on line 1, column 10. */
    expect_error("loss: mse: x\n", NAME ":1:10", "mapping values are not allowed");
    expect_error("", NAME, "config is empty");
    expect_error("# nothing here\n", NAME, "config is empty");
    expect_error("---\n", NAME, "config is empty");
    expect_error("- a\n- b\n", NAME ":1:1", "top level must be a mapping");
    expect_error("loss: mse\n---\nloss: mse\n", NAME ":2:1", "more than one YAML document");
    expect_error(BASE "loss: mse\n", NAME ":13:1",
                 "duplicate key 'loss' (already set at " NAME ":8:1)");
    expect_error(L01 "  path: &p d.h5\n" L03, NAME ":2:9", "anchors");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 "trian:\n" L11 L12, NAME ":10:1",
                 "unknown top-level key 'trian' (did you mean 'train'?)");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09, NAME, "missing required key 'train'");
    /* train's mapping starts at its first key, line 11 column 3. */
    expect_error(BASE "  seed: x\n"
                      "  zzz: 1\n",
                 NAME ":14:3", "unknown key 'zzz' in 'train'; valid keys");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 L12, NAME ":11:3",
                 "missing required key 'train.epochs'");
    expect_error(L01 L03 L04 L05 L06 L07 L08 L09 L10 L11 L12, NAME ":1:6",
                 "data: expected a mapping");
}

static void test_errors_layers(void) {
    expect_error(L01 L02 L03 L04 L05 L06
                 "    - dense: {units: 1, activaton: relu}\n" L08 L09 L10 L11 L12,
                 NAME ":7:25",
                 "unknown key 'activaton' in 'model.layers.1.dense' (did you mean 'activation'?)");
    expect_error(L01 L02 L03 L04 L05 L06 "    - conv: {units: 1}\n" L08 L09 L10 L11 L12,
                 NAME ":7:7", "unknown layer type 'conv'");
    expect_error(L01 L02 L03 L04 L05 L06 "    - conv: {units: 1}\n" L08 L09 L10 L11 L12,
                 NAME ":7:7", "valid layer types: dense");
    expect_error(
        L01 L02 L03 L04 L05 "    - dense: {units: 3, activation: rleu}\n" L07 L08 L09 L10 L11 L12,
        NAME ":6:37",
        "unknown activation 'rleu' (did you mean 'relu'?); valid activations: linear, relu");
    expect_error(L01 L02 L03 L04 L05 L06 "    - dense: {units: abc}\n" L08 L09 L10 L11 L12,
                 NAME ":7:22", "model.layers.1.dense.units: expected an integer, got 'abc'");
    expect_error(L01 L02 L03 L04 L05 L06 "    - dense: {units: 0}\n" L08 L09 L10 L11 L12,
                 NAME ":7:22", "must be >= 1, got 0");
    expect_error(L01 L02 L03 L04 L05 L06 "    - dense: {units: -2}\n" L08 L09 L10 L11 L12,
                 NAME ":7:22", "must be >= 1, got -2");
    expect_error(L01 L02 L03 L04 L05 L06 "    - dense: {activation: relu}\n" L08 L09 L10 L11 L12,
                 NAME ":7:14", "missing required key 'model.layers.1.dense.units'");
    expect_error(L01 L02 L03 L04 L05 L06
                 "    - dense: {units: 1}\n      conv: {}\n" L08 L09 L10 L11 L12,
                 NAME ":7:7", "expected one layer");
    expect_error(L01 L02 L03 L04 "  layers: []\n" L08 L09 L10 L11 L12, NAME ":5:11",
                 "non-empty list");
    expect_error(L01 L02 L03 "  input: [4, 0]\n" L05 L06 L07 L08 L09 L10 L11 L12, NAME ":4:14",
                 "model.input.1: must be >= 1");
    expect_error(L01 L02 L03 "  input: [1, 1, 1, 1, 1, 1, 1]\n" L05 L06 L07 L08 L09 L10 L11 L12,
                 NAME ":4:10", "1 to 6 positive integers");
    expect_error(L01 L02 L03 "  input: 4\n" L05 L06 L07 L08 L09 L10 L11 L12, NAME ":4:10",
                 "model.input: expected a list");
}

static void test_errors_values(void) {
    expect_error(L01 L02 L03 L04 L05 L06 L07 "loss: binary_crossentropi\n" L09 L10 L11 L12,
                 NAME ":8:7",
                 "unknown loss 'binary_crossentropi' (did you mean 'binary_crossentropy'?)");
    expect_error(
        L01 L02 L03 L04 L05 L06 L07 L08 "optimizer: adamm\n" L10 L11 L12, NAME ":9:12",
        "unknown optimizer 'adamm' (did you mean 'adam'?); valid optimizers: sgd, adam, rmsprop");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08
                 "optimizer: {name: adam, learning_rate: -0.1}\n" L10 L11 L12,
                 NAME ":9:40", "optimizer.learning_rate: must be > 0, got -0.1");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08
                 "optimizer: {name: adam, learning_rate: 0}\n" L10 L11 L12,
                 NAME ":9:40", "must be > 0");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 "optimizer: {name: adam, rho: 0.9}\n" L10 L11 L12,
                 NAME ":9:25", "optimizer.rho does not apply to adam");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 "optimizer: {name: adam, beta_1: 1}\n" L10 L11 L12,
                 NAME ":9:33", "optimizer.beta_1: must be in [0, 1)");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 "optimizer: {learning_rate: 0.1}\n" L10 L11 L12,
                 NAME ":9:12", "missing required key 'optimizer.name'");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 "  epochs: -1\n" L12, NAME ":11:11",
                 "train.epochs: must be >= 0, got -1");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 L11 "  batch_size: 0\n", NAME ":12:15",
                 "train.batch_size: must be >= 1, got 0");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 L11 "  batch_size: 3.5\n", NAME ":12:15",
                 "train.batch_size: expected an integer, got '3.5'");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 L11 "  batch_size: [8]\n", NAME ":12:15",
                 "train.batch_size: expected an integer, got a list");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 "  epochs: \"5\"\n" L12, NAME ":11:11",
                 "quoted string '5'");
    /* 2^31 and a value past 2^63 (strtoll's ERANGE). */
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 "  epochs: 2147483648\n" L12,
                 NAME ":11:11", "too large");
    expect_error(L01 L02 L03 L04 L05 L06 L07 L08 L09 L10 "  epochs: 99999999999999999999999\n" L12,
                 NAME ":11:11", "too large");
    expect_error(BASE "  seed: -99999999999999999999999\n", NAME ":13:9", "must be >= 0");
    expect_error(L01 L02 "  validation_split: 1.0\n" L03 L04 L05 L06 L07 L08 L09 L10 L11 L12,
                 NAME ":3:21", "data.validation_split: must be in [0, 1), got 1.0");
    expect_error(L01 L02 "  validation_split: .nan\n" L03 L04 L05 L06 L07 L08 L09 L10 L11 L12,
                 NAME ":3:21", "expected a number");
    expect_error(L01 L02 "  standardize: maybe\n" L03 L04 L05 L06 L07 L08 L09 L10 L11 L12,
                 NAME ":3:16", "expected true or false, got 'maybe'");
    expect_error(BASE "  shared_memory: 2\n", NAME ":13:18",
                 "train.shared_memory: expected true or false, got '2'");
    expect_error(BASE "metrics: [acuracy]\n", NAME ":13:11",
                 "unknown metric 'acuracy' (did you mean 'accuracy'?)");
    expect_error(BASE "checkpoint: {keep: 0}\n", NAME ":13:20", "checkpoint.keep: must be >= 1");
}

/* ---- conv2d, maxpool2d, flatten, dropout ---- */

static void test_cnn_layer_keys(void) {
    const char *text = L01 L02 L03
        "  input: [1, 28, 28]\n" L05 "    - conv2d: {filters: 8, kernel_size: 3}\n"
        "    - conv2d: {filters: 4, kernel_size: [2, 3], strides: [2, 1], padding: same, activation: relu}\n"
        "    - maxpool2d: {pool_size: [2, 3], strides: 1}\n"
        "    - maxpool2d:\n"
        "    - maxpool2d: {pool_size: 3}\n"
        "    - flatten:\n"
        "    - dropout: {rate: 0.25}\n"
        "    - flatten: {}\n"
        "    - dropout: {rate: 0}\n"
        "    - conv2d: {filters: 2, kernel_size: [5, 1], strides: 3, padding: valid, activation: tanh}\n" L07
            L08 L09 L10 L11 L12;
    dp_config cfg;
    if (load_ok(&cfg, text, NULL, 0)) return;
    CU_ASSERT_EQUAL_FATAL(cfg.n_layers, 11);
    const dp_layer_cfg *l = cfg.layers;
    /* conv2d defaults: strides 1, padding valid, activation linear; an int kernel is square */
    CU_ASSERT_STRING_EQUAL(l[0].type, "conv2d");
    CU_ASSERT_STRING_EQUAL(l[0].where, NAME ":6:7");
    CU_ASSERT_EQUAL(l[0].filters, 8);
    CU_ASSERT_EQUAL(l[0].kernel[0], 3);
    CU_ASSERT_EQUAL(l[0].kernel[1], 3);
    CU_ASSERT_EQUAL(l[0].strides[0], 1);
    CU_ASSERT_EQUAL(l[0].strides[1], 1);
    CU_ASSERT_EQUAL(l[0].padding_same, 0);
    CU_ASSERT_EQUAL(l[0].activation, DP_ACT_LINEAR);
    /* list forms are [height, width] */
    CU_ASSERT_EQUAL(l[1].filters, 4);
    CU_ASSERT_EQUAL(l[1].kernel[0], 2);
    CU_ASSERT_EQUAL(l[1].kernel[1], 3);
    CU_ASSERT_EQUAL(l[1].strides[0], 2);
    CU_ASSERT_EQUAL(l[1].strides[1], 1);
    CU_ASSERT_EQUAL(l[1].padding_same, 1);
    CU_ASSERT_EQUAL(l[1].activation, DP_ACT_RELU);
    /* maxpool2d: explicit strides; the Keras defaults pool 2, strides = pool */
    CU_ASSERT_STRING_EQUAL(l[2].type, "maxpool2d");
    CU_ASSERT_EQUAL(l[2].pool[0], 2);
    CU_ASSERT_EQUAL(l[2].pool[1], 3);
    CU_ASSERT_EQUAL(l[2].strides[0], 1);
    CU_ASSERT_EQUAL(l[2].strides[1], 1);
    CU_ASSERT_EQUAL(l[3].pool[0], 2);
    CU_ASSERT_EQUAL(l[3].pool[1], 2);
    CU_ASSERT_EQUAL(l[3].strides[0], 2);
    CU_ASSERT_EQUAL(l[3].strides[1], 2);
    CU_ASSERT_STRING_EQUAL(l[3].where, NAME ":9:7");
    CU_ASSERT_EQUAL(l[4].pool[0], 3);
    CU_ASSERT_EQUAL(l[4].pool[1], 3);
    CU_ASSERT_EQUAL(l[4].strides[0], 3);
    CU_ASSERT_EQUAL(l[4].strides[1], 3);
    CU_ASSERT_STRING_EQUAL(l[5].type, "flatten");
    CU_ASSERT_STRING_EQUAL(l[6].type, "dropout");
    CU_ASSERT_EQUAL(l[6].rate, 0.25);
    CU_ASSERT_STRING_EQUAL(l[7].type, "flatten");
    CU_ASSERT_EQUAL(l[8].rate, 0.0);
    CU_ASSERT_EQUAL(l[9].kernel[0], 5);
    CU_ASSERT_EQUAL(l[9].kernel[1], 1);
    CU_ASSERT_EQUAL(l[9].strides[0], 3);
    CU_ASSERT_EQUAL(l[9].strides[1], 3);
    CU_ASSERT_EQUAL(l[9].padding_same, 0);
    CU_ASSERT_EQUAL(l[9].activation, DP_ACT_TANH);
    CU_ASSERT_STRING_EQUAL(l[10].type, "dense");
    dp_config_free(&cfg);

    /* --set reaches the new keys, in both forms. */
    char *sets[] = {"model.layers.0.conv2d.kernel_size=[5, 4]",
                    "model.layers.0.conv2d.padding=same", "model.layers.6.dropout.rate=0.5",
                    "model.layers.3.maxpool2d.pool_size=4", "model.layers.1.conv2d.strides=2"};
    if (load_ok(&cfg, text, sets, 5)) return;
    CU_ASSERT_EQUAL(cfg.layers[0].kernel[0], 5);
    CU_ASSERT_EQUAL(cfg.layers[0].kernel[1], 4);
    CU_ASSERT_EQUAL(cfg.layers[0].padding_same, 1);
    CU_ASSERT_EQUAL(cfg.layers[6].rate, 0.5);
    CU_ASSERT_EQUAL(cfg.layers[3].pool[0], 4);
    CU_ASSERT_EQUAL(cfg.layers[3].strides[1], 4); /* still follows pool_size */
    CU_ASSERT_EQUAL(cfg.layers[1].strides[0], 2);
    CU_ASSERT_EQUAL(cfg.layers[1].strides[1], 2);
    dp_config_free(&cfg);
}

/* Line 6 is the layer under test; columns counted from the 1-based start of line. */
#define CNN(layer) L01 L02 L03 "  input: [1, 28, 28]\n" L05 layer "\n" L07 L08 L09 L10 L11 L12

static void test_cnn_layer_errors(void) {
    expect_error(
        CNN("    - conv2d: {filters: 8, kernel_size: 3, padding: full}"), NAME ":6:53",
        "model.layers.0.conv2d.padding: unknown padding 'full'; valid paddings: valid, same");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: 3, padding: smae}"), NAME ":6:53",
                 "unknown padding 'smae' (did you mean 'same'?)");
    expect_error(CNN("    - dropout: {rate: 1.0}"), NAME ":6:23",
                 "model.layers.0.dropout.rate: must be in [0, 1), got 1.0");
    expect_error(CNN("    - dropout: {rate: -0.1}"), NAME ":6:23", "must be in [0, 1), got -0.1");
    expect_error(CNN("    - dropout: {}"), NAME ":6:16",
                 "missing required key 'model.layers.0.dropout.rate'");
    expect_error(CNN("    - conv2d: {filters: 0, kernel_size: 3}"), NAME ":6:25",
                 "model.layers.0.conv2d.filters: must be >= 1, got 0");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: [3]}"), NAME ":6:41",
                 "model.layers.0.conv2d.kernel_size: expected an integer or a list of 2 integers "
                 "[height, width], got a list of 1");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: [3, 3, 3]}"), NAME ":6:41",
                 "got a list of 3");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: three}"), NAME ":6:41",
                 "model.layers.0.conv2d.kernel_size: expected an integer, got 'three'");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: {h: 3}}"), NAME ":6:41",
                 "kernel_size: expected an integer, got a mapping");
    expect_error(CNN("    - conv2d: {filters: \"8\", kernel_size: 3}"), NAME ":6:25",
                 "model.layers.0.conv2d.filters: expected an integer, got the quoted string '8'");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: 3, strides: [1, x]}"), NAME ":6:57",
                 "model.layers.0.conv2d.strides.1: expected an integer, got 'x'");
    expect_error(CNN("    - conv2d: {filters: 8}"), NAME ":6:15",
                 "missing required key 'model.layers.0.conv2d.kernel_size'");
    expect_error(CNN("    - maxpool2d: {pool_size: [2, 0]}"), NAME ":6:34",
                 "model.layers.0.maxpool2d.pool_size.1: must be >= 1, got 0");
    expect_error(CNN("    - maxpool2d: {pool: 2}"), NAME ":6:19",
                 "unknown key 'pool' in 'model.layers.0.maxpool2d' (did you mean 'pool_size'?)");
    expect_error(CNN("    - flatten: {units: 3}"), NAME ":6:17",
                 "unknown key 'units' in 'model.layers.0.flatten'; it takes no keys");
    expect_error(CNN("    - flatten: 3"), NAME ":6:16",
                 "model.layers.0.flatten: expected a mapping such as {}");
    expect_error(CNN("    - dropout: 0.5"), NAME ":6:16", "expected a mapping such as {rate: 0.5}");
    expect_error(CNN("    - conv2d: {filters: 8, kernel_size: 3, activation: softmx}"),
                 NAME ":6:56", "unknown activation 'softmx' (did you mean 'softmax'?)");
    expect_error(CNN("    - conv2dd: {filters: 8}"), NAME ":6:7",
                 "unknown layer type 'conv2dd' (did you mean 'conv2d'?); valid layer types: dense, "
                 "conv2d, maxpool2d, flatten, dropout");
    char *bad_set[] = {"model.layers.0.dropout.rate=1"};
    expect_error_sets(CNN("    - dropout: {rate: 0.5}"), bad_set, 1,
                      "--set model.layers.0.dropout.rate", "must be in [0, 1), got 1");
}

/* ---- dptrain config --explain ---- */

/* The reference as one string (static, replaced on each call). */
static const char *explain_text(void) {
    static char *text;
    size_t len;
    free(text);
    text = NULL;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(dp_config_explain(f), 0);
    fclose(f);
    return text;
}

/* Column `col` (0 path, 1 type, 2 default, 3 range) of the line for `path`,
 * columns being separated by two or more spaces; "" when absent. Also checks
 * that the next line is the key's help. */
static const char *explain_column(const char *text, const char *path, int col, const char *help) {
    static char out[256];
    char want[160];
    out[0] = '\0';
    snprintf(want, sizeof want, "\n%s  ", path);
    const char *line = strstr(text, want);
    CU_ASSERT_PTR_NOT_NULL(line);
    if (!line) {
        fprintf(stderr, "\n  --explain has no line for '%s'\n", path);
        return out;
    }
    line++;
    const char *end = strchr(line, '\n');
    if (help) {
        char next[512];
        snprintf(next, sizeof next, "\n    %s\n", help);
        CU_ASSERT_EQUAL(strncmp(end, next, strlen(next)), 0);
    }
    for (int c = 0; c <= col && line < end; c++) {
        const char *stop = strstr(line, "  ");
        if (!stop || stop > end) stop = end;
        if (c == col) snprintf(out, sizeof out, "%.*s", (int)(stop - line), line);
        line = stop;
        while (*line == ' ') line++;
    }
    return out;
}

/* The default column must be what loading leaves in `target` for the key. */
static void expect_default(const char *text, const char *path, const cs_key *k,
                           const void *target) {
    char want[256];
    const char *got = explain_column(text, path, 2, k->help);
    if (k->required) snprintf(want, sizeof want, "required");
    else if (k->def_note) snprintf(want, sizeof want, "%s", k->def_note);
    else if (!dp_cs_is_value(k) && k->type != CS_SCHEDULE) snprintf(want, sizeof want, "-");
    else dp_cs_format_value(k, target, want, sizeof want);
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  %s: --explain says %s, loading gives %s\n", path, got, want);
}

/* Every table entry has its line and help, and there are no other lines. */
static void test_explain_lists_every_key(void) {
    const char *text = explain_text();
    char path[160];
    int entries = 0;
    for (const cs_key *k = dp_cs_root.sub->keys; k->key; k++, entries++) {
        explain_column(text, k->key, 0, k->help);
        for (const cs_key *kid = k->type == CS_SECTION ? k->sub->keys : NULL; kid && kid->key;
             kid++, entries++) {
            snprintf(path, sizeof path, "%s.%s", k->key, kid->key);
            explain_column(text, path, 0, kid->help);
            /* A section within a section (train.early_stopping): its keys too. */
            for (const cs_key *f = kid->type == CS_SECTION ? kid->sub->keys : NULL; f && f->key;
                 f++, entries++) {
                snprintf(path, sizeof path, "%s.%s.%s", k->key, kid->key, f->key);
                explain_column(text, path, 0, f->help);
            }
        }
        const cs_key *layers = k->type == CS_SECTION ? dp_cs_find(k, "layers") : NULL;
        for (const cs_key *t = layers ? layers->elem->variants : NULL; t && t->key;
             t++, entries++) {
            snprintf(path, sizeof path, "%s.layers.N.%s", k->key, t->key);
            explain_column(text, path, 0, t->help);
            for (const cs_key *f = t->sub->keys; f->key; f++, entries++) {
                snprintf(path, sizeof path, "%s.layers.N.%s.%s", k->key, t->key, f->key);
                explain_column(text, path, 0, f->help);
            }
        }
        if (k->type != CS_OPTIMIZER) continue;
        for (const cs_key *f = k->sub->keys; f->key; f++, entries++) {
            snprintf(path, sizeof path, "%s.%s", k->key, f->key);
            explain_column(text, path, 0, f->help);
        }
        const cs_key *schedule = NULL;
        for (const cs_key *v = k->variants; v->key; v++, entries++) {
            snprintf(path, sizeof path, "%s (%s)", k->key, v->key);
            explain_column(text, path, 0, v->help);
            for (const cs_key *f = v->sub->keys; f->key; f++, entries++) {
                snprintf(path, sizeof path, "%s.%s (%s)", k->key, f->key, v->key);
                explain_column(text, path, 0, f->help);
                if (f->type == CS_SCHEDULE) schedule = f;
            }
        }
        /* The schedules' keys, listed once for every optimizer's learning_rate. */
        CU_ASSERT_PTR_NOT_NULL_FATAL(schedule);
        for (const cs_key *f = schedule->sub->keys; f->key; f++, entries++) {
            snprintf(path, sizeof path, "%s.learning_rate.%s", k->key, f->key);
            explain_column(text, path, 0, f->help);
        }
        for (const cs_key *v = schedule->variants; v->key; v++, entries++) {
            snprintf(path, sizeof path, "%s.learning_rate (%s)", k->key, v->key);
            explain_column(text, path, 0, v->help);
            for (const cs_key *f = v->sub->keys; f->key; f++, entries++) {
                snprintf(path, sizeof path, "%s.learning_rate.%s (%s)", k->key, f->key, v->key);
                explain_column(text, path, 0, f->help);
            }
        }
    }
    /* Each entry is two lines (key, help), after a header of five. */
    int lines = 0;
    for (const char *s = text; *s; s++) lines += *s == '\n';
    CU_ASSERT_EQUAL(lines, 5 + 2 * entries);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nKEY "));
    /* Spot checks against the numbers Keras documents. */
    CU_ASSERT_STRING_EQUAL(explain_column(text, "optimizer.learning_rate (sgd)", 2, NULL), "0.01");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "optimizer.beta_2 (adam)", 2, NULL), "0.999");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "optimizer.momentum (sgd)", 3, NULL), "in [0, 1)");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "train.seed", 2, NULL), "42");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "optimizer.weight_decay (adamw)", 2, NULL),
                           "0.004");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "optimizer.global_clipnorm", 2, NULL), "null");
    CU_ASSERT_STRING_EQUAL(
        explain_column(text, "optimizer.learning_rate.warmup_target (cosine_decay)", 2, NULL),
        "null");
    CU_ASSERT_STRING_EQUAL(
        explain_column(text, "optimizer.learning_rate.decay_steps (exponential_decay)", 2, NULL),
        "required");
    CU_ASSERT_STRING_EQUAL(explain_column(text, "train.epochs", 2, NULL), "required");
}

/* The printed defaults are the values a minimal config loads with, layer by
 * layer type, and the optimizers' are what dp_optim_init fills in. */
static void test_explain_defaults(void) {
    const char *text = explain_text();
    char path[160];
    dp_config cfg;
    if (load_ok(&cfg, BASE, NULL, 0)) return;
    for (const cs_key *k = dp_cs_root.sub->keys; k->key; k++) {
        expect_default(text, k->key, k, &cfg);
        if (k->type != CS_SECTION) continue;
        for (const cs_key *kid = k->sub->keys; kid->key; kid++) {
            snprintf(path, sizeof path, "%s.%s", k->key, kid->key);
            expect_default(text, path, kid, &cfg);
        }
    }
    const cs_key *opt = dp_cs_find(&dp_cs_root, "optimizer");
    CU_ASSERT_PTR_NOT_NULL_FATAL(opt);
    for (int o = 0; opt->variants[o].key; o++) {
        dp_optim_cfg oc = cfg.optim; /* as parsed: every key unset */
        oc.kind = (dp_optim_kind)o;
        dp_optim_fill_defaults(&oc);
        for (const cs_key *f = opt->variants[o].sub->keys; f->key; f++) {
            snprintf(path, sizeof path, "optimizer.%s (%s)", f->key, opt->variants[o].key);
            expect_default(text, path, f, &oc);
        }
    }
    dp_config_free(&cfg);

    /* One layer of each type with only its required keys. */
    const char *layers =
        L01 L02 L03 "  input: [1, 28, 28]\n" L05 "    - conv2d: {filters: 2, kernel_size: 3}\n"
                    "    - maxpool2d:\n"
                    "    - flatten:\n"
                    "    - dropout: {rate: 0.5}\n"
                    "    - dense: {units: 1}\n" L08 L09 L10 L11 L12;
    if (load_ok(&cfg, layers, NULL, 0)) return;
    int covered = 0;
    for (const cs_key *t = dp_cs_layer_types; t->key; t++) {
        for (int i = 0; i < cfg.n_layers; i++) {
            if (strcmp(cfg.layers[i].type, t->key) != 0) continue;
            covered++;
            for (const cs_key *f = t->sub->keys; f->key; f++) {
                snprintf(path, sizeof path, "model.layers.N.%s.%s", t->key, f->key);
                expect_default(text, path, f, &cfg.layers[i]);
            }
        }
    }
    CU_ASSERT_EQUAL(covered, 5);
    /* The one default that is not a value: maxpool2d strides follow pool_size. */
    CU_ASSERT_EQUAL(cfg.layers[1].strides[0], cfg.layers[1].pool[0]);
    CU_ASSERT_EQUAL(cfg.layers[1].strides[1], cfg.layers[1].pool[1]);
    dp_config_free(&cfg);
}

/* The parser and dp_optim_init read one range per optimizer key: momentum 1
 * is refused by both, for every optimizer that takes it. */
static void test_optim_one_range(void) {
    const char *names[] = {"sgd", "rmsprop"};
    for (int i = 0; i < 2; i++) {
        char line[64], text[512], where[64];
        snprintf(line, sizeof line, "optimizer: {name: %s, momentum: 1}\n", names[i]);
        snprintf(text, sizeof text, L01 L02 L03 L04 L05 L06 L07 L08 "%s" L10 L11 L12, line);
        /* the value's column: just after "momentum: " */
        snprintf(where, sizeof where, NAME ":9:%d", (int)(strstr(line, "momentum: ") - line) + 11);
        expect_error(text, where, "optimizer.momentum: must be in [0, 1), got 1");
    }
    dp_optim_cfg oc = test_optim_cfg_unset(DP_OPTIM_SGD);
    for (int kind = DP_OPTIM_SGD; kind <= DP_OPTIM_RMSPROP;
         kind += DP_OPTIM_RMSPROP - DP_OPTIM_SGD) {
        dp_optim o;
        dp_error err = {0};
        oc.kind = (dp_optim_kind)kind;
        oc.momentum = 1;
        CU_ASSERT_EQUAL(dp_optim_init(&o, &oc, 1, &err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "momentum must be in [0, 1), got 1"));
        dp_optim_free(&o);
        oc.momentum = 0.99;
        CU_ASSERT_EQUAL(dp_optim_init(&o, &oc, 1, &err), 0);
        dp_optim_free(&o);
    }
}

/* A zeroed config (never loaded) must be safe to free. */
static void test_free_zeroed(void) {
    dp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    dp_config_free(&cfg);
    CU_ASSERT_PTR_NULL(cfg.text);
}

int main(void) {
    static const test_case cases[] = {
        {"seed file", test_seed_file},
        {"missing file", test_missing_file},
        {"defaults", test_defaults},
        {"data scale", test_data_scale},
        {"saved text round trip", test_saved_text_round_trip},
        {"all fields", test_all_fields},
        {"names round trip", test_names_round_trip},
        {"set values", test_set_values},
        {"set errors", test_set_errors},
        {"errors: structure", test_errors_structure},
        {"errors: layers", test_errors_layers},
        {"errors: values", test_errors_values},
        {"cnn layer keys, defaults, --set", test_cnn_layer_keys},
        {"errors: cnn layers", test_cnn_layer_errors},
        {"explain: every key", test_explain_lists_every_key},
        {"explain: defaults", test_explain_defaults},
        {"optimizer: one range per key", test_optim_one_range},
        {"free zeroed", test_free_zeroed},
        {NULL, NULL},
    };
    return test_run_suite("config", cases);
}
