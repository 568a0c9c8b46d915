/* onnx_sequence.c - embedding, positional_embedding, layer_norm,
 * global_average_pooling1d, multi_head_attention and transformer_block. */
#include "onnx/onnx_layers.h"

#include <math.h>

/* Masked scores: far below any real one, so their softmax weight is exactly
 * 0 in float32, as dptrain's causal softmax leaves them; finite, so runtimes
 * that mistrust infinities take it too. */
#define MASKED_SCORE (-1e9f)

/* Table rows by id: Gather(embeddings [V, D], ids [N, T]) = [N, T, D]. An id
 * outside [0, V) is an error in ONNX Runtime; dptrain's data reader rejects
 * such ids before they reach the layer. */
const char *ox_emit_embedding(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                              const float *w, const char *x, dp_error *err) {
    (void)cfg, (void)err;
    const int64_t dims[2] = {l->params[0].shape.dim[0], l->params[0].shape.dim[1]};
    const char *y = ox_op(g, "Gather", ox_init_f32(g, "embeddings", ox_param(l, w, 0), 2, dims), x);
    ox_attr_int(g, ox_last(g), "axis", 0);
    return y;
}

/* y = x + embeddings[0:T], the first T of max_length rows. */
const char *ox_emit_positional_embedding(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                                         const float *w, const char *x, dp_error *err) {
    (void)cfg, (void)err;
    const int64_t dims[2] = {l->in_shape.dim[0], l->in_shape.dim[1]};
    return ox_op(g, "Add", x, ox_init_f32(g, "embeddings", ox_param(l, w, 0), 2, dims));
}

/* gamma [F], beta [F] over the last axis of [N, F] or [N, T, F]. */
const char *ox_emit_layer_norm_layer(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                                     const float *w, const char *x, dp_error *err) {
    (void)err;
    return ox_emit_layer_norm(g, x, ox_param(l, w, 0), ox_param(l, w, 1), l->params[0].shape.dim[0],
                              (float)cfg->epsilon);
}

/* [N, T, F] -> [N, F], the mean over T. */
const char *ox_emit_global_average_pooling1d(ox_graph *g, const dp_layer *l,
                                             const dp_layer_cfg *cfg, const float *w, const char *x,
                                             dp_error *err) {
    (void)l, (void)cfg, (void)w, (void)err;
    const int64_t axes[1] = {1};
    const char *y = ox_op(g, "ReduceMean", x, NULL);
    ox_attr_ints(g, ox_last(g), "axes", axes, 1);
    ox_attr_int(g, ox_last(g), "keepdims", 0);
    return y;
}

/* x [N, T, a*b] -> [N, a, T, b] (perm 0 2 1 3), or -> [N, a, b, T] (perm 0 2 3 1)
 * for the keys, so that the scores are one batched MatMul. */
static const char *split_heads(ox_graph *g, const char *x, int H, int Dk, int keys) {
    const int64_t shape[4] = {0, 0, H, Dk}, q[4] = {0, 2, 1, 3}, k[4] = {0, 2, 3, 1};
    const char *r = ox_op(g, "Reshape", x, ox_init_i64(g, "heads_shape", shape, 4));
    const char *t = ox_op(g, "Transpose", r, NULL);
    ox_attr_ints(g, ox_last(g), "perm", keys ? k : q, 4);
    return t;
}

/* Keras MultiHeadAttention(x, x, x) from the eight tensors starting at
 * parameter `first` of l (attention.h): query, key and value kernels
 * [F, H, Dk] (a [F, H Dk] matrix), their biases [H, Dk], output kernel
 * [H, Dk, F] and bias [F]. scores = Q K^T / sqrt(Dk), masked above the
 * diagonal when causal; out = softmax(scores) V, heads side by side, then
 * the output projection. */
static const char *emit_attention(ox_graph *g, const dp_layer *l, const float *w, int first,
                                  int causal, const char *x) {
    const int *qd = l->params[first].shape.dim;
    const int T = l->in_shape.dim[0], F = qd[0], H = qd[1], Dk = qd[2], HD = H * Dk;
    const char *proj[3];
    static const char *const names[3] = {"query_", "key_", "value_"};
    for (int i = 0; i < 3; i++)
        proj[i] = ox_emit_affine(g, x, ox_param(l, w, first + 2 * i),
                                 ox_param(l, w, first + 2 * i + 1), F, HD, names[i]);
    const char *q = split_heads(g, proj[0], H, Dk, 0), *kt = split_heads(g, proj[1], H, Dk, 1),
               *v = split_heads(g, proj[2], H, Dk, 0);
    const char *s = ox_op(g, "Mul", ox_op(g, "MatMul", q, kt),
                          ox_scalar_f32(g, "scale", (float)(1.0 / sqrt((double)Dk))));
    if (causal) {
        float *mask = ox_alloc(g, (size_t)T * T * sizeof *mask);
        for (int t = 0; t < T; t++)
            for (int u = t + 1; u < T; u++) mask[(size_t)t * T + u] = MASKED_SCORE;
        const int64_t md[2] = {T, T};
        s = ox_op(g, "Add", s, ox_init_f32(g, "causal_mask", mask, 2, md));
    }
    const char *p = ox_op(g, "Softmax", s, NULL);
    ox_attr_int(g, ox_last(g), "axis", -1);
    const char *o = ox_op(g, "MatMul", p, v); /* [N, H, T, Dk] */
    const int64_t back[4] = {0, 2, 1, 3}, merged[3] = {0, 0, HD};
    const char *ot = ox_op(g, "Transpose", o, NULL);
    ox_attr_ints(g, ox_last(g), "perm", back, 4);
    const char *om = ox_op(g, "Reshape", ot, ox_init_i64(g, "merged_shape", merged, 3));
    return ox_emit_affine(g, om, ox_param(l, w, first + 6), ox_param(l, w, first + 7), HD, F,
                          "output_");
}

const char *ox_emit_multi_head_attention(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                                         const float *w, const char *x, dp_error *err) {
    (void)err;
    return emit_attention(g, l, w, 0, cfg->causal, x);
}

/* Parameters as transformer_block.c: ln1 gamma, beta; the attention's eight;
 * ln2 gamma, beta; ff1 kernel, bias; ff2 kernel, bias.
 *   y1 = x + MHA(LN1(x)),  y = y1 + W2 gelu(W1 LN2(y1) + b1) + b2. */
const char *ox_emit_transformer_block(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                                      const float *w, const char *x, dp_error *err) {
    (void)err;
    const int F = l->in_shape.dim[1], ff = l->params[12].shape.dim[1];
    const float eps = (float)cfg->epsilon;
    const char *ln1 = ox_emit_layer_norm(g, x, ox_param(l, w, 0), ox_param(l, w, 1), F, eps);
    const char *y1 = ox_op(g, "Add", x, emit_attention(g, l, w, 2, cfg->causal, ln1));
    const char *ln2 = ox_emit_layer_norm(g, y1, ox_param(l, w, 10), ox_param(l, w, 11), F, eps);
    const char *h = ox_emit_affine(g, ln2, ox_param(l, w, 12), ox_param(l, w, 13), F, ff, "ff1_");
    const char *f = ox_emit_affine(g, ox_emit_activation(g, DP_ACT_GELU, h), ox_param(l, w, 14),
                                   ox_param(l, w, 15), ff, F, "ff2_");
    return ox_op(g, "Add", y1, f);
}
