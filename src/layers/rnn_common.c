/* rnn_common.c - config checks and row kernels shared by simple_rnn and gru. */
#include "layers/rnn_common.h"

#include <math.h>
#include <string.h>

#include "layers/activation.h"

static int elementwise(dp_act a) {
    return a == DP_ACT_LINEAR || a == DP_ACT_RELU || a == DP_ACT_SIGMOID || a == DP_ACT_TANH;
}

int dp_rnn_check(const char *type, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                 int gated, dp_error *err) {
    if (in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "%s expects a sequence [steps, features] per sample, got %s; "
                            "put an embedding or a [T, F] input before it",
                            type, dp_shape_format(in, buf, sizeof buf));
    }
    if (in->dim[0] < 1 || in->dim[1] < 1)
        return dp_error_set(err, cfg->where, "%s needs at least one step and one feature", type);
    if (cfg->units <= 0)
        return dp_error_set(err, cfg->where, "%s units must be a positive integer, got %d", type,
                            cfg->units);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "%s needs a batch size >= 1, got %d", type, max_batch);
    if (!elementwise(cfg->activation))
        return dp_error_set(err, cfg->where,
                            "%s activation %s is not supported; use tanh, sigmoid, relu or linear",
                            type, dp_config_name_act(cfg->activation));
    if (gated && !elementwise(cfg->recurrent_activation))
        return dp_error_set(
            err, cfg->where,
            "%s recurrent_activation %s is not supported; use sigmoid, tanh, relu or linear", type,
            dp_config_name_act(cfg->recurrent_activation));
    return 0;
}

dp_shape dp_rnn_out_shape(const dp_layer_cfg *cfg, const dp_shape *in) {
    dp_shape s = {0};
    if (cfg->return_sequences) {
        s.ndim = 2;
        s.dim[0] = in->dim[0];
        s.dim[1] = cfg->units;
    } else {
        s.ndim = 1;
        s.dim[0] = cfg->units;
    }
    return s;
}

void dp_rnn_activate(dp_act act, float *v, int n) {
    dp_activation_forward(act, v, 1, (size_t)n);
}

void dp_rnn_fill_rows(float *rows, int nrows, int ld, const float *v, int n) {
    for (int r = 0; r < nrows; r++) memcpy(rows + (size_t)r * ld, v, (size_t)n * sizeof *v);
}

void dp_rnn_col_sums(float *sum, const float *rows, int nrows, int ld, int n) {
    for (int r = 0; r < nrows; r++) {
        const float *row = rows + (size_t)r * ld;
        for (int j = 0; j < n; j++) sum[j] += row[j];
    }
}
