/* model_api.c - the public model handle: create, predict, read the arenas. */
#include "nn/model.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "layers/activation.h"

dp_model *dp_model_create(const dp_config *cfg, int max_batch, dp_error *err) {
    dp_model *m = DP_CALLOC(1, sizeof *m);
    if (dp_model_build(m, cfg, max_batch, err)) {
        dp_model_free(m);
        free(m);
        return NULL;
    }
    return m;
}

void dp_model_destroy(dp_model *m) {
    if (!m) return;
    dp_model_free(m);
    free(m);
}

const float *dp_model_predict(dp_model *m, const float *x, int B) {
    const float *out = dp_model_forward(m, x, B, NULL);
    if (!m->fused) return out;
    /* The loss took over the final sigmoid or softmax: apply it here, on a
     * copy, so the logits stay as backward expects them. */
    size_t k = (size_t)m->classes, rows = (size_t)B * (size_t)m->positions;
    if (!m->probs)
        m->probs = DP_MALLOC((size_t)m->max_batch * (size_t)m->positions * k * sizeof(float));
    memcpy(m->probs, out, rows * k * sizeof(float));
    dp_activation_forward(m->loss == DP_LOSS_BCE ? DP_ACT_SIGMOID : DP_ACT_SOFTMAX, m->probs, rows,
                          k);
    return m->probs;
}

size_t dp_model_n_params(const dp_model *m) {
    return m->n_params;
}

const float *dp_model_params(const dp_model *m) {
    return m->params;
}
