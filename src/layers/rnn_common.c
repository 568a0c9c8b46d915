/* rnn_common.c - config checks, gate math and the per-step product that
 * the recurrent layers share. */
#include "layers/rnn_common.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/rng.h"
#include "core/fastmath.h"
#include "layers/activation.h"
#include "layers/init.h"
#include "layers/step_gemm.h"

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

int dp_rnn_core_create(dp_layer *l, dp_rnn_core *c, const char *type, const dp_layer_cfg *cfg,
                       const dp_shape *in, int max_batch, int gates, int bias_rows,
                       size_t sb_floats, dp_error *err) {
    if (dp_rnn_check(type, cfg, in, max_batch, gates > 1, err) != 0) return -1;
    int T = in->dim[0], F = in->dim[1], u = cfg->units, k = gates * u;
    l->in_shape = *in;
    l->out_shape = dp_rnn_out_shape(cfg, in);
    /* The activations are inside the recurrence: nothing for the model to fold. */
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    const int kd[2] = {F, k}, rd[2] = {u, k}, bd[2] = {bias_rows, k};
    dp_layer_add_param(l, "kernel", 2, kd);
    dp_layer_add_param(l, "recurrent_kernel", 2, rd);
    if (bias_rows == 1) dp_layer_add_param(l, "bias", 1, &k);
    else dp_layer_add_param(l, "bias", 2, bd);
    c->T = T, c->F = F, c->u = u, c->seq = cfg->return_sequences;
    c->act = cfg->activation;
    c->ract = cfg->recurrent_activation;
    c->hp = DP_MALLOC((size_t)max_batch * T * u * sizeof(float));
    c->dh = DP_MALLOC((size_t)max_batch * u * sizeof(float));
    size_t pf = dp_step_packed_floats(u, k), pb = dp_step_packed_floats(k, u);
    c->pk = DP_MALLOC((pf > pb ? pf : pb) * sizeof(float));
    c->sb = DP_MALLOC(sb_floats * sizeof(float));
    return 0;
}

void dp_rnn_core_init_params(const dp_layer *l, const dp_rnn_core *c, float *params, uint64_t key) {
    int k = (int)(l->params[1].numel / (size_t)c->u);
    dp_init_glorot_uniform(params + l->params[0].offset, c->F, k, key);
    dp_init_orthogonal(params + l->params[1].offset, c->u, k, dp_rng_make_key(key, 1, 0, 0));
    memset(params + l->params[2].offset, 0, l->params[2].numel * sizeof(float));
}

void dp_rnn_core_free(dp_rnn_core *c) {
    free(c->hp);
    free(c->dh);
    free(c->pk);
    free(c->sb);
}
