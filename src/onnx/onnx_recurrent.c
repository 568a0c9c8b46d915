/* onnx_recurrent.c - simple_rnn, lstm and gru as ONNX's RNN, LSTM and GRU.
 *
 * The ONNX operators read their weights per gate, transposed: W [1, G u, F]
 * and R [1, G u, u] where dptrain (Keras) keeps kernel [F, G u] and
 * recurrent_kernel [u, G u], and their bias B [1, 2 G u] is the input-side
 * bias then the recurrent-side one. The gate blocks are reordered where the
 * orders differ: Keras's LSTM is (i, f, c, o), ONNX's (i, o, f, c); both GRUs
 * are (z, r, h), and Keras's reset_after is ONNX's linear_before_reset = 1.
 * ONNX Runtime runs only the time-major layout, so the sequence is transposed
 * to [T, N, F] and back. */
#include "onnx/onnx_layers.h"

#include <string.h>

#include "layers/rnn_common.h"

/* ONNX's name of a recurrent activation (dp_rnn_act_ok's four); linear is
 * Affine with alpha 1 and beta 0. */
static const char *act_name(dp_act a) {
    switch (a) {
    case DP_ACT_RELU: return "Relu";
    case DP_ACT_SIGMOID: return "Sigmoid";
    case DP_ACT_TANH: return "Tanh";
    default: return "Affine";
    }
}

/* dst[G u, n] = src[n, G u] transposed, ONNX gate block b taken from Keras
 * block map[b]: dst[b u + j, i] = src[i, map[b] u + j]. */
static const char *gates_transposed(ox_graph *g, const char *what, const float *src, int n, int u,
                                    int G, const int *map) {
    float *dst = ox_alloc(g, (size_t)G * u * n * sizeof *dst);
    for (int b = 0; b < G; b++)
        for (int j = 0; j < u; j++)
            for (int i = 0; i < n; i++)
                dst[((size_t)b * u + j) * n + i] = src[(size_t)i * G * u + (size_t)map[b] * u + j];
    const int64_t dims[3] = {1, (int64_t)G * u, n};
    return ox_init_f32(g, what, dst, 3, dims);
}

/* The node op(X, W, R, B) over x [N, T, F] with activations acts[n_acts];
 * returns [N, T, u] (return_sequences) or the last state [N, u]. lbr >= 0
 * sets linear_before_reset. */
static const char *emit_recurrent(ox_graph *g, const char *op, const char *x, const char *W,
                                  const char *R, const char *B, int u, const dp_act *acts,
                                  int n_acts, int lbr, int seq) {
    const int64_t tnf[3] = {1, 0, 2};
    const char *xt = ox_op(g, "Transpose", x, NULL);
    ox_attr_ints(g, ox_last(g), "perm", tnf, 3);
    const char *in[4] = {xt, W, R, B};
    Onnx__NodeProto *n = ox_node(g, op, in, 4, 2); /* Y [T, 1, N, u], Y_h [1, N, u] */
    ox_attr_int(g, n, "hidden_size", u);
    const char *names[3];
    float alpha[3], beta[3];
    int n_lin = 0;
    for (int i = 0; i < n_acts; i++) {
        names[i] = act_name(acts[i]);
        if (!strcmp(names[i], "Affine")) alpha[n_lin] = 1.0f, beta[n_lin++] = 0.0f;
    }
    ox_attr_strings(g, n, "activations", names, n_acts);
    if (n_lin) {
        /* Only the functions that take parameters consume these, in order. */
        ox_attr_floats(g, n, "activation_alpha", alpha, n_lin);
        ox_attr_floats(g, n, "activation_beta", beta, n_lin);
    }
    if (lbr >= 0) ox_attr_int(g, n, "linear_before_reset", lbr);
    if (!seq) {
        const int64_t axis0[1] = {0};
        return ox_op(g, "Squeeze", n->output[1], ox_init_i64(g, "axes", axis0, 1));
    }
    const int64_t axis1[1] = {1};
    const char *y = ox_op(g, "Squeeze", n->output[0], ox_init_i64(g, "axes", axis1, 1));
    const char *yt = ox_op(g, "Transpose", y, NULL);
    ox_attr_ints(g, ox_last(g), "perm", tnf, 3);
    return yt;
}

/* The bias input B [1, 2 G u]: the input-side bias (gate blocks reordered
 * by map), then rec[G u] or zeros. */
static const char *bias_pair(ox_graph *g, const float *in, const float *rec, int u, int G,
                             const int *map) {
    float *b = ox_alloc(g, (size_t)2 * G * u * sizeof *b);
    for (int k = 0; k < G; k++)
        memcpy(b + (size_t)k * u, in + (size_t)map[k] * u, (size_t)u * sizeof *b);
    if (rec) memcpy(b + (size_t)G * u, rec, (size_t)G * u * sizeof *b);
    const int64_t dims[2] = {1, (int64_t)2 * G * u};
    return ox_init_f32(g, "bias", b, 2, dims);
}

/* kernel [F, u], recurrent_kernel [u, u], bias [u]: h_t = act(x W + h U + b). */
const char *ox_emit_simple_rnn(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg,
                               const float *w, const char *x, dp_error *err) {
    (void)err;
    static const int id[1] = {0};
    int F = l->params[0].shape.dim[0], u = l->params[0].shape.dim[1];
    const char *W = gates_transposed(g, "kernel", ox_param(l, w, 0), F, u, 1, id);
    const char *R = gates_transposed(g, "recurrent_kernel", ox_param(l, w, 1), u, u, 1, id);
    const char *B = bias_pair(g, ox_param(l, w, 2), NULL, u, 1, id);
    return emit_recurrent(g, "RNN", x, W, R, B, u, &cfg->activation, 1, -1, cfg->return_sequences);
}

/* Keras gates (i, f, c, o) to ONNX's (i, o, f, c). ONNX's activations are
 * f for the gates (recurrent_activation), g for the candidate and h for the
 * cell output (both activation). */
const char *ox_emit_lstm(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                         const char *x, dp_error *err) {
    (void)err;
    static const int iofc[4] = {0, 3, 1, 2};
    int F = l->params[0].shape.dim[0], U = l->params[0].shape.dim[1] / 4;
    const char *W = gates_transposed(g, "kernel", ox_param(l, w, 0), F, U, 4, iofc);
    const char *R = gates_transposed(g, "recurrent_kernel", ox_param(l, w, 1), U, U, 4, iofc);
    const char *B = bias_pair(g, ox_param(l, w, 2), NULL, U, 4, iofc);
    const dp_act acts[3] = {cfg->recurrent_activation, cfg->activation, cfg->activation};
    return emit_recurrent(g, "LSTM", x, W, R, B, U, acts, 3, -1, cfg->return_sequences);
}

/* bias [2, 3u] is already (input side, recurrent side) of (z, r, h). */
const char *ox_emit_gru(ox_graph *g, const dp_layer *l, const dp_layer_cfg *cfg, const float *w,
                        const char *x, dp_error *err) {
    (void)err;
    static const int zrh[3] = {0, 1, 2};
    int F = l->params[0].shape.dim[0], u = l->params[0].shape.dim[1] / 3;
    const float *b = ox_param(l, w, 2);
    const char *W = gates_transposed(g, "kernel", ox_param(l, w, 0), F, u, 3, zrh);
    const char *R = gates_transposed(g, "recurrent_kernel", ox_param(l, w, 1), u, u, 3, zrh);
    const char *B = bias_pair(g, b, b + 3 * u, u, 3, zrh);
    const dp_act acts[2] = {cfg->recurrent_activation, cfg->activation};
    return emit_recurrent(g, "GRU", x, W, R, B, u, acts, 2, 1, cfg->return_sequences);
}
