/* test_onnx_export.c - the ONNX file's contract: opset, input and output
 * types and shapes, one initializer per parameter value, an error naming a
 * layer without an ONNX form, and the atomic write. (ONNX Runtime's numbers
 * are checked against dptrain's in tests/mpi/test_onnx_export.sh.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnx/onnx_export.h"
#include "testlib.h"

static const char *const mlp_yaml = "data: {path: none.h5}\n"
                                    "model:\n"
                                    "  input: [3, 4]\n"
                                    "  layers:\n"
                                    "    - flatten: {}\n"
                                    "    - dense: {units: 5, activation: relu}\n"
                                    "    - dropout: {rate: 0.5}\n"
                                    "    - dense: {units: 3, activation: softmax}\n"
                                    "loss: sparse_categorical_crossentropy\n"
                                    "optimizer: {name: adam}\n"
                                    "train: {epochs: 1, batch_size: 4}\n";

static const char *const lm_yaml = "data: {path: none.h5}\n"
                                   "model:\n"
                                   "  input: [6]\n"
                                   "  layers:\n"
                                   "    - embedding: {input_dim: 7, output_dim: 4}\n"
                                   "    - lstm: {units: 3, return_sequences: true}\n"
                                   "    - dense: {units: 7, activation: softmax}\n"
                                   "loss: sparse_categorical_crossentropy\n"
                                   "optimizer: {name: adam}\n"
                                   "train: {epochs: 1, batch_size: 4}\n";

/* A loaded model as dp_load_checkpoint would give it, from yaml, with
 * initialized parameters and, when standardized, statistics for every input
 * value. */
static void load(dp_loaded *ld, const char *yaml, int standardized) {
    memset(ld, 0, sizeof *ld);
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_config_load_text(&ld->cfg, "t.yaml", yaml, strlen(yaml), NULL, 0, &err) ==
                    0);
    CU_ASSERT_FATAL(dp_model_build(&ld->model, &ld->cfg, 1, &err) == 0);
    dp_model_init_params(&ld->model, 7);
    ld->path = strdup("t.h5");
    if (standardized) {
        size_t n = dp_shape_numel(&ld->model.in_shape);
        ld->st.n_features = n;
        ld->st.mean = calloc(n, sizeof(float));
        ld->st.std = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) ld->st.std[i] = 2.0f;
    }
}

static Onnx__ModelProto *serialize(const dp_loaded *ld) {
    uint8_t *buf;
    size_t len;
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_onnx_serialize(ld, &buf, &len, &err) == 0);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    CU_ASSERT_FATAL(m != NULL);
    return m;
}

/* dims of a graph input or output, with dim 0 as -1 when symbolic "N". */
static int value_dims(const Onnx__ValueInfoProto *v, int64_t *dims) {
    const Onnx__TensorShapeProto *s = v->type->tensor_type->shape;
    for (size_t d = 0; d < s->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = s->dim[d];
        dims[d] = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                          !strcmp(dim->dim_param, "N")
                      ? -1
                      : dim->dim_value;
    }
    return (int)s->n_dim;
}

static size_t count_op(const Onnx__GraphProto *g, const char *op) {
    size_t n = 0;
    for (size_t i = 0; i < g->n_node; i++) n += !strcmp(g->node[i]->op_type, op);
    return n;
}

/* The initializers' float values, those of the standardization excluded. */
static size_t weight_values(const Onnx__GraphProto *g) {
    size_t n = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (t->data_type == 1 && strncmp(t->name, "standardize/", 12) != 0)
            n += t->raw_data.len / sizeof(float);
    }
    return n;
}

static void test_mlp_contract(void) {
    dp_loaded ld;
    load(&ld, mlp_yaml, 1);
    Onnx__ModelProto *m = serialize(&ld);
    CU_ASSERT_EQUAL(m->ir_version, 8);
    CU_ASSERT_EQUAL(m->n_opset_import, 1);
    CU_ASSERT_EQUAL(m->opset_import[0]->version, 17);
    const Onnx__GraphProto *g = m->graph;
    CU_ASSERT_FATAL(g->n_input == 1 && g->n_output == 1);
    CU_ASSERT_STRING_EQUAL(g->input[0]->name, "input");
    CU_ASSERT_STRING_EQUAL(g->output[0]->name, "predictions");
    CU_ASSERT_EQUAL(g->input[0]->type->tensor_type->elem_type, 1); /* float */
    int64_t dims[8];
    CU_ASSERT_EQUAL(value_dims(g->input[0], dims), 3);
    CU_ASSERT(dims[0] == -1 && dims[1] == 3 && dims[2] == 4);
    CU_ASSERT_EQUAL(value_dims(g->output[0], dims), 2);
    CU_ASSERT(dims[0] == -1 && dims[1] == 3);
    /* Standardization first, the softmax the loss had taken over last. */
    CU_ASSERT_STRING_EQUAL(g->node[0]->op_type, "Sub");
    CU_ASSERT_STRING_EQUAL(g->node[0]->input[0], "input");
    CU_ASSERT_STRING_EQUAL(g->node[1]->op_type, "Div");
    CU_ASSERT_STRING_EQUAL(g->node[g->n_node - 2]->op_type, "Softmax");
    CU_ASSERT_STRING_EQUAL(g->node[g->n_node - 1]->output[0], "predictions");
    CU_ASSERT_EQUAL(count_op(g, "Dropout"), 0); /* the identity at inference */
    CU_ASSERT_EQUAL(weight_values(g), ld.model.n_params);
    onnx__model_proto__free_unpacked(m, NULL);
    dp_loaded_free(&ld);
}

/* Token ids in as int32 [N, T]; the LSTM as one ONNX LSTM node; no
 * standardization when the checkpoint has no statistics. */
static void test_lm_contract(void) {
    dp_loaded ld;
    load(&ld, lm_yaml, 0);
    Onnx__ModelProto *m = serialize(&ld);
    const Onnx__GraphProto *g = m->graph;
    CU_ASSERT_EQUAL(g->input[0]->type->tensor_type->elem_type, 6); /* int32 */
    int64_t dims[8];
    CU_ASSERT_EQUAL(value_dims(g->input[0], dims), 2);
    CU_ASSERT(dims[0] == -1 && dims[1] == 6);
    CU_ASSERT_EQUAL(value_dims(g->output[0], dims), 3);
    CU_ASSERT(dims[0] == -1 && dims[1] == 6 && dims[2] == 7);
    CU_ASSERT_STRING_EQUAL(g->node[0]->op_type, "Gather");
    CU_ASSERT_EQUAL(count_op(g, "LSTM"), 1);
    CU_ASSERT_EQUAL(count_op(g, "Sub"), 0);
    /* ONNX's LSTM bias has a recurrent half (zeros) beside Keras's 4 u. */
    CU_ASSERT_EQUAL(weight_values(g), ld.model.n_params + 4 * 3);
    onnx__model_proto__free_unpacked(m, NULL);
    dp_loaded_free(&ld);
}

static int never(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int mb, dp_error *e) {
    (void)l, (void)cfg, (void)in, (void)mb, (void)e;
    return -1;
}

/* A layer type the exporter does not know is one error naming the layer. */
static void test_unknown_layer(void) {
    static const dp_layer_ops mystery = {.type = "mystery", .create = never};
    dp_loaded ld;
    load(&ld, mlp_yaml, 0);
    const dp_layer_ops *real = ld.model.layers[1].ops;
    ld.model.layers[1].ops = &mystery;
    uint8_t *buf = (uint8_t *)"untouched";
    size_t len = 5;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_onnx_serialize(&ld, &buf, &len, &err), -1);
    CU_ASSERT_PTR_NULL(buf);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "layer 1 (mystery) cannot be exported"));
    ld.model.layers[1].ops = real;
    dp_loaded_free(&ld);
}

static size_t dir_entries(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    unsigned long n = 0;
    CU_ASSERT(p && fscanf(p, "%lu", &n) == 1);
    if (p) pclose(p);
    return n;
}

/* The file appears whole under its name, replaces an older one, and leaves
 * no temporary file; a missing directory is an error that creates nothing. */
static void test_atomic_write(void) {
    const char *dir = test_make_tmpdir();
    char path[600], missing[600];
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    snprintf(missing, sizeof missing, "%s/no/m.onnx", dir);
    dp_error err = {0};
    const uint8_t a[4] = {1, 2, 3, 4}, b[2] = {9, 8};
    CU_ASSERT_EQUAL(dp_onnx_write_file(path, a, sizeof a, &err), 0);
    CU_ASSERT_EQUAL(dp_onnx_write_file(path, b, sizeof b, &err), 0);
    uint8_t got[8];
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(got, 1, sizeof got, f), sizeof b);
    fclose(f);
    ASSERT_SAME_BYTES(got, b, sizeof b);
    CU_ASSERT_EQUAL(dir_entries(dir), 1);
    CU_ASSERT_EQUAL(dp_onnx_write_file(missing, a, sizeof a, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "directory"));
    CU_ASSERT_EQUAL(dir_entries(dir), 1);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    static const test_case cases[] = {
        {"MLP: opset, input, output, standardization, weights", test_mlp_contract},
        {"language model: int32 ids, LSTM node, weights", test_lm_contract},
        {"a layer without an ONNX form is named", test_unknown_layer},
        {"atomic write", test_atomic_write},
        {NULL, NULL}};
    return test_run_suite("onnx_export", cases);
}
