/* onnx_layers.c - the emitter registry, activations, and the feed-forward and
 * image layers: dense, conv2d, maxpool2d, flatten, dropout. */
#include "onnx/onnx_layers.h"

#include <string.h>

#include "layers/im2col.h"

/* Every type in the layer registry (layers/layer.c). */
static const struct {
    const char *type;
    ox_emit_fn emit;
} emitters[] = {
    {"dense", ox_emit_dense},
    {"conv2d", ox_emit_conv2d},
    {"maxpool2d", ox_emit_maxpool2d},
    {"flatten", ox_emit_flatten},
    {"dropout", ox_emit_dropout},
    {"embedding", ox_emit_embedding},
    {"positional_embedding", ox_emit_positional_embedding},
    {"simple_rnn", ox_emit_simple_rnn},
    {"lstm", ox_emit_lstm},
    {"gru", ox_emit_gru},
    {"layer_norm", ox_emit_layer_norm_layer},
    {"multi_head_attention", ox_emit_multi_head_attention},
    {"transformer_block", ox_emit_transformer_block},
    {"global_average_pooling1d", ox_emit_global_average_pooling1d},
};

ox_emit_fn ox_find_emitter(const char *type) {
    for (size_t i = 0; i < sizeof emitters / sizeof emitters[0]; i++)
        if (strcmp(emitters[i].type, type) == 0) return emitters[i].emit;
    return NULL;
}

/* gelu, tanh form, as activation.c computes it: 0.5 z (1 + tanh(u)) =
 * z sigmoid(2u), u = sqrt(2/pi) (z + 0.044715 z^3). Opset 17 has no Gelu. */
static const char *emit_gelu(ox_graph *g, const char *z) {
    const char *z3 = ox_op(g, "Mul", ox_op(g, "Mul", z, z), z);
    const char *inner =
        ox_op(g, "Add", z, ox_op(g, "Mul", z3, ox_scalar_f32(g, "gelu_a", 0.044715f)));
    const char *u2 =
        ox_op(g, "Mul", inner, ox_scalar_f32(g, "gelu_2c", 2.0f * 0.7978845608028654f));
    return ox_op(g, "Mul", z, ox_op(g, "Sigmoid", u2, NULL));
}

const char *ox_emit_activation(ox_graph *g, dp_act act, const char *x) {
    switch (act) {
    case DP_ACT_LINEAR: return x;
    case DP_ACT_RELU: return ox_op(g, "Relu", x, NULL);
    case DP_ACT_SIGMOID: return ox_op(g, "Sigmoid", x, NULL);
    case DP_ACT_TANH: return ox_op(g, "Tanh", x, NULL);
    case DP_ACT_SOFTMAX: {
        const char *y = ox_op(g, "Softmax", x, NULL);
        ox_attr_int(g, ox_last(g), "axis", -1);
        return y;
    }
    case DP_ACT_GELU: return emit_gelu(g, x);
    }
    return x;
}

/* MatMul broadcasts over leading axes, so one pair of nodes serves [N, k]
 * and a sequence [N, T, k] alike. */
const char *ox_emit_affine(ox_graph *g, const char *x, const float *W, const float *b, int k, int n,
                           const char *name) {
    char what[64];
    const int64_t wd[2] = {k, n}, bd[1] = {n};
    snprintf(what, sizeof what, "%skernel", name);
    const char *wn = ox_init_f32(g, what, W, 2, wd);
    snprintf(what, sizeof what, "%sbias", name);
    const char *bn = ox_init_f32(g, what, b, 1, bd);
    return ox_op(g, "Add", ox_op(g, "MatMul", x, wn), bn);
}

const char *ox_emit_layer_norm(ox_graph *g, const char *x, const float *gamma, const float *beta,
                               int F, float eps) {
    const int64_t d[1] = {F};
    const char *gn = ox_init_f32(g, "gamma", gamma, 1, d), *bn = ox_init_f32(g, "beta", beta, 1, d);
    const char *y = ox_op3(g, "LayerNormalization", x, gn, bn);
    ox_attr_int(g, ox_last(g), "axis", -1);
    ox_attr_float(g, ox_last(g), "epsilon", eps);
    return y;
}

/* kernel [in, out], bias [out]: y = act(x kernel + bias) on [N, in] or [N, T, in]. */
const char *ox_emit_dense(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                          const char *x, dp_error *err) {
    (void)cfg, (void)err;
    int k = l->params[0].shape.dim[0], n = l->params[0].shape.dim[1];
    const char *z = ox_emit_affine(g, x, ox_param(l, w, 0), ox_param(l, w, 1), k, n, "");
    return ox_emit_activation(g, l->activation, z);
}

/* kernel [F, C, kh, kw] is ONNX's OIHW as it stands. Keras's 'same' padding
 * puts the odd pixel after (pad before = total / 2), written out as explicit
 * pads rather than auto_pad so the numbers are the ones im2col uses. */
const char *ox_emit_conv2d(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                           const char *x, dp_error *err) {
    (void)err;
    const int *kd = l->params[0].shape.dim;
    const int64_t wd[4] = {kd[0], kd[1], kd[2], kd[3]}, bd[1] = {kd[0]};
    int H = l->in_shape.dim[1], W = l->in_shape.dim[2], pt, pl;
    int OH = dp_im2col_out_size(H, cfg->kernel[0], cfg->strides[0], cfg->padding_same, &pt);
    int OW = dp_im2col_out_size(W, cfg->kernel[1], cfg->strides[1], cfg->padding_same, &pl);
    int th = (OH - 1) * cfg->strides[0] + cfg->kernel[0] - H,
        tw = (OW - 1) * cfg->strides[1] + cfg->kernel[1] - W;
    if (!cfg->padding_same) th = tw = 0;
    if (th < 0) th = 0;
    if (tw < 0) tw = 0;
    const int64_t pads[4] = {pt, pl, th - pt, tw - pl};
    const int64_t ks[2] = {cfg->kernel[0], cfg->kernel[1]},
                  st[2] = {cfg->strides[0], cfg->strides[1]};
    const char *in[3] = {x, ox_init_f32(g, "kernel", ox_param(l, w, 0), 4, wd),
                         ox_init_f32(g, "bias", ox_param(l, w, 1), 1, bd)};
    Onnx__NodeProto *n = ox_node(g, "Conv", in, 3, 1);
    ox_attr_ints(g, n, "kernel_shape", ks, 2);
    ox_attr_ints(g, n, "strides", st, 2);
    ox_attr_ints(g, n, "pads", pads, 4);
    return ox_emit_activation(g, l->activation, n->output[0]);
}

/* 'valid' windows, floor of the output size: MaxPool's defaults. */
const char *ox_emit_maxpool2d(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                              const float *w, const char *x, dp_error *err) {
    (void)l, (void)w, (void)err;
    const int64_t ks[2] = {cfg->pool[0], cfg->pool[1]}, st[2] = {cfg->strides[0], cfg->strides[1]};
    const char *y = ox_op(g, "MaxPool", x, NULL);
    ox_attr_ints(g, ox_last(g), "kernel_shape", ks, 2);
    ox_attr_ints(g, ox_last(g), "strides", st, 2);
    return y;
}

/* Row-major, as flatten.c: [N, d0, d1, ...] -> [N, d0 d1 ...]. */
const char *ox_emit_flatten(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                            const char *x, dp_error *err) {
    (void)l, (void)cfg, (void)w, (void)err;
    const char *y = ox_op(g, "Flatten", x, NULL);
    ox_attr_int(g, ox_last(g), "axis", 1);
    return y;
}

/* Inference: the identity, so no node at all. */
const char *ox_emit_dropout(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                            const char *x, dp_error *err) {
    (void)g, (void)l, (void)cfg, (void)w, (void)err;
    return x;
}
