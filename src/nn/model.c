/* model.c - builds the layer stack over the flat arenas and runs it. */
#include "nn/model.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/activation.h"
#include "core/rng.h"
#include "core/timeline.h"

/* The loss folds the final sigmoid/softmax into a stable cross-entropy; any other
 * pairing of a cross-entropy with the output layer is a config mistake. */
static int model_check_loss(dp_model *m, const dp_config *cfg, dp_error *err) {
    dp_layer *last = &m->layers[m->n_layers - 1];
    const char *where = cfg->layers[m->n_layers - 1].where;
    int seq = m->out_shape.ndim == 2;
    m->positions = seq ? m->out_shape.dim[0] : 1;
    m->classes = seq ? m->out_shape.dim[1] : (int)dp_shape_numel(&m->out_shape);
    int k = m->classes;
    m->loss = cfg->loss;
    m->fused = 0;
    switch (cfg->loss) {
    case DP_LOSS_MSE: return 0;
    case DP_LOSS_BCE:
        if (last->activation != DP_ACT_SIGMOID)
            return dp_error_set(err, where,
                                "loss binary_crossentropy needs a sigmoid output layer, got "
                                "activation %s",
                                dp_config_name_act(last->activation));
        break;
    case DP_LOSS_CE:
    case DP_LOSS_SPARSE_CE:
        if (last->activation != DP_ACT_SOFTMAX)
            return dp_error_set(
                err, where, "loss %s needs a softmax output layer, got activation %s",
                dp_config_name_loss(cfg->loss), dp_config_name_act(last->activation));
        if (k < 2)
            return dp_error_set(err, where,
                                "loss %s needs at least 2 output units (one per class), got %d",
                                dp_config_name_loss(cfg->loss), k);
        break;
    }
    m->fused = 1;
    last->activation = DP_ACT_LINEAR;
    return 0;
}

static int model_build_with(dp_model *m, const dp_config *cfg, int max_batch, int fuse,
                            dp_error *err) {
    memset(m, 0, sizeof *m);
    if (cfg->n_layers < 1) return dp_error_set(err, cfg->source, "model.layers is empty");
    m->in_shape = cfg->input;
    m->max_batch = max_batch;
    dp_shape cur = cfg->input;
    size_t widest = dp_shape_numel(&cur);
    for (int i = 0; i < cfg->n_layers; i++) {
        const dp_layer_cfg *lc = &cfg->layers[i];
        dp_layer *l = &m->layers[i];
        l->ops = dp_layer_find_ops(lc->type);
        if (!l->ops) {
            dp_model_free(m);
            return dp_error_set(err, lc->where, "unknown layer type '%s' (known: %s)", lc->type,
                                dp_layer_list_types());
        }
        snprintf(l->name, sizeof l->name, "%d_%s", i, lc->type);
        l->index = i;
        l->in_shape = cur;
        l->param_offset = m->n_params;
        m->n_layers = i + 1; /* so dp_model_free releases what create allocated */
        if (l->ops->create(l, lc, &cur, max_batch, err)) {
            dp_model_free(m);
            return -1;
        }
        m->n_params += l->param_count;
        cur = l->out_shape;
        size_t w = dp_shape_numel(&cur);
        if (w > widest) widest = w;
    }
    m->out_shape = cur;
    if (model_check_loss(m, cfg, err)) {
        dp_model_free(m);
        return -1;
    }
    m->params = DP_CALLOC(m->n_params, sizeof(float));
    m->grads = DP_CALLOC(m->n_params, sizeof(float));
    for (int i = 0; fuse && i + 1 < m->n_layers; i++) {
        dp_layer *l = &m->layers[i];
        if (!m->absorbed[i] && l->ops->absorb && l->ops->absorb(l, &m->layers[i + 1], max_batch))
            m->absorbed[i + 1] = 1;
    }
    for (int i = 0; i < m->n_layers; i++)
        if (i + 1 == m->n_layers || !m->absorbed[i + 1])
            m->acts[i] = DP_MALLOC((size_t)max_batch * dp_shape_numel(&m->layers[i].out_shape) *
                                   sizeof(float));
    for (int k = 0; k < 2; k++) m->dbuf[k] = DP_MALLOC((size_t)max_batch * widest * sizeof(float));
    return 0;
}

int dp_model_build(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err) {
    return model_build_with(m, cfg, max_batch, 1, err);
}

int dp_model_build_unfused(dp_model *m, const dp_config *cfg, int max_batch, dp_error *err) {
    return model_build_with(m, cfg, max_batch, 0, err);
}

void dp_model_init_params(dp_model *m, uint64_t seed) {
    for (int i = 0; i < m->n_layers; i++) {
        dp_layer *l = &m->layers[i];
        l->ops->init_params(l, m->params + l->param_offset,
                            dp_rng_make_key(seed, 0x1417, (uint64_t)i, 0));
    }
}

const float *dp_model_forward(dp_model *m, const float *x, int B, const dp_fwd_ctx *ctx) {
    static const dp_fwd_ctx inference = {0};
    const float *in = x;
    if (!ctx) ctx = &inference;
    for (int i = 0; i < m->n_layers; i++) {
        if (m->absorbed[i]) continue; /* written by layer i - 1 */
        dp_layer *l = &m->layers[i];
        float *out = m->acts[i] ? m->acts[i] : m->acts[i + 1];
        /* Training steps only: evaluation is one span, not one per batch and layer. */
        if (ctx->training) dp_tl_begin(DP_TL_LAYER_FORWARD, i);
        l->ops->forward(l, m->params + l->param_offset, in, out, B, ctx);
        if (ctx->training) dp_tl_end(DP_TL_LAYER_FORWARD, i);
        in = out;
    }
    return in;
}

void dp_model_backward(dp_model *m, const float *x, const float *dout, int B) {
    dp_model_backward_hooked(m, x, dout, B, NULL, NULL);
}

void dp_model_backward_hooked(dp_model *m, const float *x, const float *dout, int B,
                              void (*after)(void *ctx, int layer), void *ctx) {
    /* Layers up to the first with parameters need no input gradient: nothing
     * before them learns (a flatten in front of a dense layer, say). */
    int first = 0;
    while (first + 1 < m->n_layers && m->layers[first].param_count == 0) first++;
    const float *dy = dout;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        dp_layer *l = &m->layers[i];
        if (m->absorbed[i] || i < first) { /* no parameters and nothing to pass on */
            if (after) after(ctx, i);
            continue;
        }
        const float *in = i ? m->acts[i - 1] : x;
        const float *out = m->acts[i] ? m->acts[i] : m->acts[i + 1];
        /* Alternate scratch buffers so dx of one layer is dy of the next. */
        float *dx = i <= first ? NULL : dy == m->dbuf[0] ? m->dbuf[1] : m->dbuf[0];
        dp_tl_begin(DP_TL_LAYER_BACKWARD, i);
        l->ops->backward(l, m->params + l->param_offset, in, out, dy, dx,
                         m->grads + l->param_offset, B);
        dp_tl_end(DP_TL_LAYER_BACKWARD, i);
        if (after) after(ctx, i);
        dy = dx;
    }
}

int dp_model_list_tensors(const dp_model *m, size_t *off, size_t *len) {
    int t = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i].n_params; p++, t++)
            if (off && len) {
                off[t] = m->layers[i].param_offset + m->layers[i].params[p].offset;
                len[t] = m->layers[i].params[p].numel;
            }
    return t;
}

int dp_model_output_width(const dp_model *m) {
    return (int)dp_shape_numel(&m->out_shape);
}

int dp_model_output_positions(const dp_model *m) {
    return m->positions;
}

uint64_t dp_model_hash_params(const dp_model *m) {
    const unsigned char *p = (const unsigned char *)m->params;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < m->n_params * sizeof(float); i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void dp_model_free(dp_model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        if (m->layers[i].ops && m->layers[i].ops->free) m->layers[i].ops->free(&m->layers[i]);
        free(m->acts[i]);
    }
    free(m->params);
    free(m->grads);
    free(m->dbuf[0]);
    free(m->dbuf[1]);
    free(m->probs);
    memset(m, 0, sizeof *m);
}
