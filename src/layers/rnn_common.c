/* rnn_common.c - config checks, gate math and the per-step product that
 * the recurrent layers share. */
#include "layers/rnn_common.h"

#include "core/blas.h"
#include "core/fastmath.h"
#include "layers/activation.h"

int dp_rnn_act_ok(dp_act a) {
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
    if (!dp_rnn_act_ok(cfg->activation))
        return dp_error_set(err, cfg->where,
                            "%s activation %s is not supported; use tanh, sigmoid, relu or linear",
                            type, dp_config_name_act(cfg->activation));
    if (gated && !dp_rnn_act_ok(cfg->recurrent_activation))
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
    switch (act) {
    case DP_ACT_SIGMOID:
        for (int i = 0; i < n; i++) v[i] = dp_sigmoidf(v[i]);
        return;
    case DP_ACT_TANH:
        for (int i = 0; i < n; i++) v[i] = dp_tanhf(v[i]);
        return;
    default: dp_activation_forward(act, v, 1, (size_t)n); return;
    }
}

dp_rnn_slope_coef dp_rnn_slope_of(dp_act act) {
    dp_rnn_slope_coef s = {1.0f, 0.0f, 0.0f, 0}; /* linear */
    switch (act) {
    case DP_ACT_RELU: s.relu = 1; break;
    case DP_ACT_SIGMOID: s = (dp_rnn_slope_coef){0.0f, 1.0f, -1.0f, 0}; break; /* y (1 - y) */
    case DP_ACT_TANH: s = (dp_rnn_slope_coef){1.0f, 0.0f, -1.0f, 0}; break;    /* 1 - y^2 */
    default: break;
    }
    return s;
}
