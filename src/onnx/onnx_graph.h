/* onnx_graph.h - (private) building an ONNX graph as protobuf-c messages.
 *
 * Everything the messages point to (names, weights, attributes) lives in the
 * builder's arena and is freed at once by ox_graph_free. Tensors travel by
 * name: an op's output is a fresh name "<scope>/<Op>_<k>", where the scope is
 * the layer being emitted, so a node in the exported graph says which layer
 * it came from. */
#ifndef DPTRAIN_ONNX_GRAPH_H
#define DPTRAIN_ONNX_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

typedef struct ox_graph {
    void **blocks; /* the arena: every allocation, freed together */
    size_t n_blocks, cap_blocks;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int counter;         /* makes every generated name unique */
    char scope[64];      /* prefix of the names made now: the layer's name */
    size_t weight_bytes; /* raw bytes of the initializers so far */
} ox_graph;

/* ONNX element types used here (TensorProto.DataType). */
enum { OX_FLOAT = 1, OX_INT32 = 6, OX_INT64 = 7, OX_DOUBLE = 11 };

/* Zeroed memory from the arena, or a copy of a string. */
void *ox_alloc(ox_graph *g, size_t n);
char *ox_strdup(ox_graph *g, const char *s);

/* Sets the scope for the names made from now on. */
void ox_scope(ox_graph *g, const char *scope);

/* A float32 initializer "<scope>/<what>" holding a copy of data[prod(dims)];
 * returns its name. */
const char *ox_init_f32(ox_graph *g, const char *what, const float *data, int ndim,
                        const int64_t *dims);

/* An int64 initializer [n] holding v[n]. */
const char *ox_init_i64(ox_graph *g, const char *what, const int64_t *v, int n);

/* A float32 scalar initializer (shape []). */
const char *ox_scalar_f32(ox_graph *g, const char *what, float v);

/* A float64 scalar initializer (shape []). */
const char *ox_scalar_f64(ox_graph *g, const char *what, double v);

/* A node op(in[0..n_in)) with n_out fresh outputs; returns it for attributes
 * and its output names (node->output[i]). */
Onnx__NodeProto *ox_node(ox_graph *g, const char *op, const char *const *in, int n_in, int n_out);

/* One-output shorthands: the node's output name. b may be NULL for a unary op. */
const char *ox_op(ox_graph *g, const char *op, const char *a, const char *b);
const char *ox_op3(ox_graph *g, const char *op, const char *a, const char *b, const char *c);

/* The node made last (for its attributes). */
Onnx__NodeProto *ox_last(ox_graph *g);

/* Attributes on node n. */
void ox_attr_int(ox_graph *g, Onnx__NodeProto *n, const char *name, int64_t v);
void ox_attr_float(ox_graph *g, Onnx__NodeProto *n, const char *name, float v);
void ox_attr_ints(ox_graph *g, Onnx__NodeProto *n, const char *name, const int64_t *v, int count);
void ox_attr_floats(ox_graph *g, Onnx__NodeProto *n, const char *name, const float *v, int count);
void ox_attr_strings(ox_graph *g, Onnx__NodeProto *n, const char *name, const char *const *v,
                     int count);

/* A graph input or output: elem_type tensor of shape [N, dims...] with a
 * symbolic batch dimension N. */
Onnx__ValueInfoProto *ox_value_info(ox_graph *g, const char *name, int elem_type, int ndim,
                                    const int *dims);

/* Frees the arena and the builder's arrays; zeroes *g. */
void ox_graph_free(ox_graph *g);

#endif
