/* layer.c - the registry of layer types, looked up by the config's `type`. */
#include "layers/layer.h"

#include <stdio.h>
#include <string.h>

/* Adding a layer type is one line here plus its ops table in src/layers/. */
static const dp_layer_ops *const layer_table[] = {
    &dp_layer_dense_ops,
    &dp_layer_conv2d_ops,
    &dp_layer_maxpool2d_ops,
    &dp_layer_flatten_ops,
    &dp_layer_dropout_ops,
    &dp_layer_embedding_ops,
    &dp_layer_positional_embedding_ops,
    &dp_layer_simple_rnn_ops,
    &dp_layer_lstm_ops,
    &dp_layer_gru_ops,
    &dp_layer_layer_norm_ops,
    &dp_layer_multi_head_attention_ops,
    &dp_layer_transformer_block_ops,
    &dp_layer_global_average_pooling1d_ops,
};

#define N_LAYER_TYPES (sizeof layer_table / sizeof layer_table[0])

void dp_layer_add_param(dp_layer *l, const char *name, int ndim, const int *dims) {
    dp_param_view *v = &l->params[l->n_params++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->shape.ndim = ndim;
    for (int d = 0; d < ndim; d++) v->shape.dim[d] = dims[d];
    v->offset = l->param_count;
    v->numel = dp_shape_numel(&v->shape);
    l->param_count += v->numel;
}

const dp_layer_ops *dp_layer_find_ops(const char *type) {
    for (size_t i = 0; i < N_LAYER_TYPES; i++)
        if (strcmp(layer_table[i]->type, type) == 0) return layer_table[i];
    return NULL;
}

const char *dp_layer_list_types(void) {
    static char buf[512];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_LAYER_TYPES && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? ", " : "",
                                 layer_table[i]->type);
    return buf;
}
