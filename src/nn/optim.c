/* optim.c - sgd, adam and rmsprop with the update rules of Keras 3
 * (keras/src/optimizers/{sgd,adam,rmsprop}.py).
 *
 * Per-step scalars (bias corrections, the learning rate) are computed once in
 * double; each update is then one branch-free float loop over the flat arena,
 * with restrict pointers so the compiler can vectorize it. The learning rate is
 * read from o->cfg on every step, so a schedule may change it between steps. */
#include "nn/optim.h"
#include "config/config_schema.h"
#include "core/alloc.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The defaults and ranges are the config schema's optimizer tables, so the
 * parser, `dptrain config --explain` and the optimizer cannot disagree. */
void dp_optim_fill_defaults(dp_optim_cfg *cfg) {
    dp_cs_optim_fill_defaults(cfg);
}

int dp_optim_init(dp_optim *o, const dp_optim_cfg *cfg, size_t n, dp_error *err) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    dp_optim_fill_defaults(&o->cfg);
    if (dp_cs_optim_check(&o->cfg, err)) return -1;
    o->n = n;
    switch (o->cfg.kind) {
    case DP_OPTIM_SGD:
        if (o->cfg.momentum > 0) o->slot_names[o->n_slots++] = "momentum";
        break;
    case DP_OPTIM_ADAM:
        o->slot_names[o->n_slots++] = "m";
        o->slot_names[o->n_slots++] = "v";
        break;
    case DP_OPTIM_RMSPROP:
        o->slot_names[o->n_slots++] = "velocity";
        if (o->cfg.momentum > 0) o->slot_names[o->n_slots++] = "momentum";
        break;
    }
    for (int s = 0; s < o->n_slots; s++) o->slots[s] = DP_CALLOC(n, sizeof(float));
    return 0;
}

void dp_optim_free(dp_optim *o) {
    for (int s = 0; s < DP_OPTIM_MAX_SLOTS; s++) {
        free(o->slots[s]);
        o->slots[s] = NULL;
    }
    o->n_slots = 0;
}

/* Each update reads the gradient as gs = g[i] * scale (the 1/rows of the mean,
 * folded in so the summed gradient is read once) and ORs into the return value
 * whether any gs is NaN or Inf: !(|gs| <= FLT_MAX) is branch-free and
 * vectorizes. */

/* p[n] -= lr gs */
static int sgd_plain(size_t n, float *restrict p, const float *restrict g, float scale, float lr) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        bad |= !(fabsf(gi) <= FLT_MAX);
        p[i] -= lr * gi;
    }
    return bad;
}

/* m[n] = mu m - lr gs; p += mu m - lr gs (nesterov) or p += m. */
static int sgd_momentum(size_t n, float *restrict p, const float *restrict g, float scale,
                        float *restrict m, float lr, float mu, int nesterov) {
    int bad = 0;
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * scale;
            bad |= !(fabsf(gi) <= FLT_MAX);
            float mi = mu * m[i] - lr * gi;
            m[i] = mi;
            p[i] += mu * mi - lr * gi;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * scale;
            bad |= !(fabsf(gi) <= FLT_MAX);
            float mi = mu * m[i] - lr * gi;
            m[i] = mi;
            p[i] += mi;
        }
    }
    return bad;
}

/* m[n] += (gs - m)(1 - b1); v[n] += (gs^2 - v)(1 - b2); p -= lr_t m / (sqrt(v) + eps). */
static int adam_update(size_t n, float *restrict p, const float *restrict g, float scale,
                       float *restrict m, float *restrict v, float one_m_b1, float one_m_b2,
                       float lr_t, float eps) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        bad |= !(fabsf(gi) <= FLT_MAX);
        float mi = m[i] + (gi - m[i]) * one_m_b1;
        float vi = v[i] + (gi * gi - v[i]) * one_m_b2;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr_t * mi / (sqrtf(vi) + eps);
    }
    return bad;
}

/* v[n] = rho v + (1 - rho) gs^2; inc = lr gs / sqrt(v + eps); p -= inc. */
static int rmsprop_plain(size_t n, float *restrict p, const float *restrict g, float scale,
                         float *restrict v, float lr, float rho, float eps) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        bad |= !(fabsf(gi) <= FLT_MAX);
        float vi = rho * v[i] + (1.0f - rho) * (gi * gi);
        v[i] = vi;
        p[i] -= lr * gi / sqrtf(vi + eps);
    }
    return bad;
}

/* As rmsprop_plain, then mom[n] = mu mom + inc; p -= mom. */
static int rmsprop_momentum(size_t n, float *restrict p, const float *restrict g, float scale,
                            float *restrict v, float *restrict mom, float lr, float rho, float eps,
                            float mu) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        bad |= !(fabsf(gi) <= FLT_MAX);
        float vi = rho * v[i] + (1.0f - rho) * (gi * gi);
        v[i] = vi;
        float mi = mu * mom[i] + lr * gi / sqrtf(vi + eps);
        mom[i] = mi;
        p[i] -= mi;
    }
    return bad;
}

int dp_optim_step(dp_optim *o, float *params, const float *grads, float scale) {
    int bad = dp_optim_update_range(o, 0, o->n, params, grads, scale);
    dp_optim_end_step(o);
    return bad;
}

void dp_optim_end_step(dp_optim *o) {
    o->step++;
}

int dp_optim_update_range(const dp_optim *o, size_t lo, size_t n, float *params, const float *grads,
                          float scale) {
    const dp_optim_cfg *c = &o->cfg;
    float lr = (float)c->learning_rate;
    int bad = 0;
    /* The state of [lo, lo + n); a kind's unused slots are NULL. */
    float *s0 = o->slots[0] ? o->slots[0] + lo : NULL, *s1 = o->slots[1] ? o->slots[1] + lo : NULL;
    switch (c->kind) {
    case DP_OPTIM_SGD:
        if (c->momentum > 0)
            bad = sgd_momentum(n, params, grads, scale, s0, lr, (float)c->momentum, c->nesterov);
        else bad = sgd_plain(n, params, grads, scale, lr);
        break;
    case DP_OPTIM_ADAM: {
        double t = (double)(o->step + 1);
        double lr_t = c->learning_rate * sqrt(1.0 - pow(c->beta2, t)) / (1.0 - pow(c->beta1, t));
        bad = adam_update(n, params, grads, scale, s0, s1, (float)(1.0 - c->beta1),
                          (float)(1.0 - c->beta2), (float)lr_t, (float)c->epsilon);
        break;
    }
    case DP_OPTIM_RMSPROP:
        if (c->momentum > 0)
            bad = rmsprop_momentum(n, params, grads, scale, s0, s1, lr, (float)c->rho,
                                   (float)c->epsilon, (float)c->momentum);
        else bad = rmsprop_plain(n, params, grads, scale, s0, lr, (float)c->rho, (float)c->epsilon);
        break;
    }
    return bad ? -1 : 0;
}
