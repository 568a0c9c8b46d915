/* onnx_graph.c - the ONNX graph builder: arena, names, nodes, initializers. */
#include "onnx/onnx_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Weights go out as raw_data, which ONNX defines as little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX export writes raw little-endian tensors: big-endian hosts are not supported"
#endif

/* Appends p to *arr (a growable array of pointers). */
static void push(void ***arr, size_t *n, size_t *cap, void *p) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **grown = realloc(*arr, c * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "dptrain: out of memory building the ONNX graph\n");
            abort();
        }
        *arr = grown, *cap = c;
    }
    (*arr)[(*n)++] = p;
}

void *ox_alloc(ox_graph *g, size_t n) {
    void *p = DP_CALLOC(1, n ? n : 1);
    push(&g->blocks, &g->n_blocks, &g->cap_blocks, p);
    return p;
}

char *ox_strdup(ox_graph *g, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ox_alloc(g, n);
    memcpy(d, s, n);
    return d;
}

void ox_scope(ox_graph *g, const char *scope) {
    snprintf(g->scope, sizeof g->scope, "%s", scope);
}

/* "<scope>/<what>_<k>": unique whatever what is. */
static char *fresh_name(ox_graph *g, const char *what) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s/%s_%d", g->scope, what, g->counter++);
    return ox_strdup(g, buf);
}

static Onnx__TensorProto *new_tensor(ox_graph *g, const char *what, int type, int ndim,
                                     const int64_t *dims, const void *data, size_t bytes) {
    Onnx__TensorProto *t = ox_alloc(g, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = fresh_name(g, what);
    t->has_data_type = 1;
    t->data_type = type;
    t->n_dims = (size_t)ndim;
    t->dims = ox_alloc(g, (size_t)ndim * sizeof *t->dims);
    for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = ox_alloc(g, bytes);
    if (bytes) memcpy(t->raw_data.data, data, bytes);
    g->weight_bytes += bytes;
    push((void ***)&g->inits, &g->n_inits, &g->cap_inits, t);
    return t;
}

const char *ox_init_f32(ox_graph *g, const char *what, const float *data, int ndim,
                        const int64_t *dims) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)dims[d];
    return new_tensor(g, what, OX_FLOAT, ndim, dims, data, n * sizeof(float))->name;
}

const char *ox_init_i64(ox_graph *g, const char *what, const int64_t *v, int n) {
    const int64_t dims[1] = {n};
    return new_tensor(g, what, OX_INT64, 1, dims, v, (size_t)n * sizeof *v)->name;
}

const char *ox_scalar_f32(ox_graph *g, const char *what, float v) {
    return new_tensor(g, what, OX_FLOAT, 0, NULL, &v, sizeof v)->name;
}

const char *ox_scalar_f64(ox_graph *g, const char *what, double v) {
    return new_tensor(g, what, OX_DOUBLE, 0, NULL, &v, sizeof v)->name;
}

Onnx__NodeProto *ox_node(ox_graph *g, const char *op, const char *const *in, int n_in, int n_out) {
    Onnx__NodeProto *n = ox_alloc(g, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = ox_strdup(g, op);
    n->name = fresh_name(g, op);
    n->n_input = (size_t)n_in;
    n->input = ox_alloc(g, (size_t)n_in * sizeof *n->input);
    for (int i = 0; i < n_in; i++) n->input[i] = ox_strdup(g, in[i]);
    n->n_output = (size_t)n_out;
    n->output = ox_alloc(g, (size_t)n_out * sizeof *n->output);
    for (int i = 0; i < n_out; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s.out%d", op, i);
        n->output[i] = n_out == 1 ? n->name : fresh_name(g, what);
    }
    push((void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, n);
    return n;
}

const char *ox_op(ox_graph *g, const char *op, const char *a, const char *b) {
    const char *in[2] = {a, b};
    return ox_node(g, op, in, b ? 2 : 1, 1)->output[0];
}

const char *ox_op3(ox_graph *g, const char *op, const char *a, const char *b, const char *c) {
    const char *in[3] = {a, b, c};
    return ox_node(g, op, in, 3, 1)->output[0];
}

Onnx__NodeProto *ox_last(ox_graph *g) {
    return g->nodes[g->n_nodes - 1];
}

/* Appends a fresh attribute `name` to node n. */
static Onnx__AttributeProto *new_attr(ox_graph *g, Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = ox_alloc(g, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ox_strdup(g, name);
    a->has_type = 1;
    a->type = type;
    Onnx__AttributeProto **grown = ox_alloc(g, (n->n_attribute + 1) * sizeof *grown);
    if (n->n_attribute) memcpy(grown, n->attribute, n->n_attribute * sizeof *grown);
    grown[n->n_attribute++] = a;
    n->attribute = grown;
    return a;
}

void ox_attr_int(ox_graph *g, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void ox_attr_float(ox_graph *g, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void ox_attr_ints(ox_graph *g, Onnx__NodeProto *n, const char *name, const int64_t *v, int count) {
    Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)count;
    a->ints = ox_alloc(g, (size_t)count * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)count * sizeof *a->ints);
}

void ox_attr_floats(ox_graph *g, Onnx__NodeProto *n, const char *name, const float *v, int count) {
    Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = (size_t)count;
    a->floats = ox_alloc(g, (size_t)count * sizeof *a->floats);
    memcpy(a->floats, v, (size_t)count * sizeof *a->floats);
}

void ox_attr_strings(ox_graph *g, Onnx__NodeProto *n, const char *name, const char *const *v,
                     int count) {
    Onnx__AttributeProto *a = new_attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    a->n_strings = (size_t)count;
    a->strings = ox_alloc(g, (size_t)count * sizeof *a->strings);
    for (int i = 0; i < count; i++) {
        a->strings[i].len = strlen(v[i]);
        a->strings[i].data = (uint8_t *)ox_strdup(g, v[i]);
    }
}

Onnx__ValueInfoProto *ox_value_info(ox_graph *g, const char *name, int elem_type, int ndim,
                                    const int *dims) {
    Onnx__TensorShapeProto *shape = ox_alloc(g, sizeof *shape);
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = (size_t)ndim + 1;
    shape->dim = ox_alloc(g, shape->n_dim * sizeof *shape->dim);
    for (size_t d = 0; d < shape->n_dim; d++) {
        Onnx__TensorShapeProto__Dimension *dim = ox_alloc(g, sizeof *dim);
        onnx__tensor_shape_proto__dimension__init(dim);
        if (d == 0) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = ox_strdup(g, "N");
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d - 1];
        }
        shape->dim[d] = dim;
    }
    Onnx__TypeProto__Tensor *tt = ox_alloc(g, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tt->shape = shape;
    Onnx__TypeProto *type = ox_alloc(g, sizeof *type);
    onnx__type_proto__init(type);
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    Onnx__ValueInfoProto *v = ox_alloc(g, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = ox_strdup(g, name);
    v->type = type;
    return v;
}

void ox_graph_free(ox_graph *g) {
    for (size_t i = 0; i < g->n_blocks; i++) free(g->blocks[i]);
    free(g->blocks);
    free(g->nodes);
    free(g->inits);
    memset(g, 0, sizeof *g);
}
