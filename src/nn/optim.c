/* optim.c - sgd, adam, adamw and rmsprop with the update rules of Keras 3
 * (keras/src/optimizers/{sgd,adam,adamw,rmsprop}.py), its learning-rate
 * schedules and its gradient clipping by norm.
 *
 * Per-step scalars (bias corrections, the learning rate) are computed once in
 * double; each update is then one branch-free float loop over the flat arena,
 * with restrict pointers so the compiler can vectorize it. The learning rate is
 * evaluated from o->cfg and o->step on every step. */
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
    case DP_OPTIM_ADAMW:
        o->slot_names[o->n_slots++] = "m";
        o->slot_names[o->n_slots++] = "v";
        break;
    case DP_OPTIM_RMSPROP:
        o->slot_names[o->n_slots++] = "velocity";
        if (o->cfg.momentum > 0) o->slot_names[o->n_slots++] = "momentum";
        break;
    }
    for (int s = 0; s < o->n_slots; s++) o->slots[s] = DP_CALLOC(n, sizeof(float));
    dp_optim_set_tensors(o, 1, &(size_t){0}, &n);
    return 0;
}

void dp_optim_set_tensors(dp_optim *o, int n_tensors, const size_t *off, const size_t *len) {
    free(o->t_off);
    free(o->t_len);
    free(o->clip);
    o->n_tensors = n_tensors;
    o->t_off = DP_MALLOC((size_t)n_tensors * sizeof(size_t));
    o->t_len = DP_MALLOC((size_t)n_tensors * sizeof(size_t));
    o->clip = DP_MALLOC((size_t)n_tensors * sizeof(float));
    for (int t = 0; t < n_tensors; t++) {
        o->t_off[t] = off[t];
        o->t_len[t] = len[t];
        o->clip[t] = 1.0f;
    }
}

int dp_optim_clips(const dp_optim *o) {
    return o->cfg.clipnorm > 0 || o->cfg.global_clipnorm > 0;
}

/* sum (g[i] scale)^2 over [0, n), each term the float the update reads, squared
 * exactly in double. Four interleaved sums, combined in a fixed order: the
 * result depends on the values alone. */
static double sum_squares(const float *restrict g, size_t n, float scale) {
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int j = 0; j < 4; j++) {
            double x = (double)(g[i + (size_t)j] * scale);
            acc[j] += x * x;
        }
    }
    for (; i < n; i++) {
        double x = (double)(g[i] * scale);
        acc[0] += x * x;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* limit / norm when the norm is above the limit, else exactly 1 (also for a
 * NaN or Inf norm: the update must still see and report the bad gradient). */
static float clip_factor(double norm, double limit) {
    return isfinite(norm) && norm > limit ? (float)(limit / norm) : 1.0f;
}

double dp_optim_clip_prepare(dp_optim *o, const float *grads, float scale) {
    if (!dp_optim_clips(o)) return 0;
    double total = 0;
    for (int t = 0; t < o->n_tensors; t++) {
        double ss = sum_squares(grads + o->t_off[t], o->t_len[t], scale);
        total += ss;
        if (o->cfg.clipnorm > 0) o->clip[t] = clip_factor(sqrt(ss), o->cfg.clipnorm);
    }
    double norm = sqrt(total);
    if (o->cfg.global_clipnorm > 0) {
        float f = clip_factor(norm, o->cfg.global_clipnorm);
        for (int t = 0; t < o->n_tensors; t++) o->clip[t] = f;
    }
    return norm;
}

/* Keras CosineDecay._decay_function. */
static double cosine_decay(double step, double decay_steps, double from, double alpha) {
    double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * (step / decay_steps)));
    return from * ((1.0 - alpha) * cosine + alpha);
}

double dp_optim_schedule_at(const dp_optim_cfg *cfg, long long step) {
    const dp_lr_schedule *s = &cfg->schedule;
    double t = (double)step, d = (double)s->decay_steps;
    switch (s->kind) {
    case DP_LR_CONSTANT: break;
    case DP_LR_COSINE_DECAY: {
        /* Without warmup_target, warmup_steps is ignored (as in Keras). */
        if (isnan(s->warmup_target))
            return cosine_decay(fmin(t, d), d, s->initial_learning_rate, s->alpha);
        double w = (double)s->warmup_steps;
        t = fmin(t, d + w);
        if (t < w)
            return (s->warmup_target - s->initial_learning_rate) * (t / w) +
                   s->initial_learning_rate;
        return cosine_decay(t - w, d, s->warmup_target, s->alpha);
    }
    case DP_LR_EXPONENTIAL_DECAY: {
        double p = t / d;
        if (s->staircase) p = floor(p);
        return s->initial_learning_rate * pow(s->decay_rate, p);
    }
    }
    return cfg->learning_rate;
}

double dp_optim_learning_rate(const dp_optim *o) {
    return dp_optim_schedule_at(&o->cfg, o->step);
}

void dp_optim_free(dp_optim *o) {
    for (int s = 0; s < DP_OPTIM_MAX_SLOTS; s++) {
        free(o->slots[s]);
        o->slots[s] = NULL;
    }
    o->n_slots = 0;
    free(o->t_off);
    free(o->t_len);
    free(o->clip);
    o->t_off = o->t_len = NULL;
    o->clip = NULL;
    o->n_tensors = 0;
}

/* Each update reads the gradient as gs = g[i] * scale * clip (scale: the
 * 1/rows of the mean, folded in so the summed gradient is read once; clip: the
 * tensor's clipping factor, exactly 1 when it does not clip) and ORs into the return value
 * whether any gs is NaN or Inf: !(|gs| <= FLT_MAX) is branch-free and
 * vectorizes. */

/* p[n] -= lr gs */
static int sgd_plain(size_t n, float *restrict p, const float *restrict g, float scale, float clip,
                     float lr) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale * clip;
        bad |= !(fabsf(gi) <= FLT_MAX);
        p[i] -= lr * gi;
    }
    return bad;
}

/* m[n] = mu m - lr gs; p += mu m - lr gs (nesterov) or p += m. */
static int sgd_momentum(size_t n, float *restrict p, const float *restrict g, float scale,
                        float clip, float *restrict m, float lr, float mu, int nesterov) {
    int bad = 0;
    if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * scale * clip;
            bad |= !(fabsf(gi) <= FLT_MAX);
            float mi = mu * m[i] - lr * gi;
            m[i] = mi;
            p[i] += mu * mi - lr * gi;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * scale * clip;
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
                       float clip, float *restrict m, float *restrict v, float one_m_b1,
                       float one_m_b2, float lr_t, float eps) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale * clip;
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
                         float clip, float *restrict v, float lr, float rho, float eps) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale * clip;
        bad |= !(fabsf(gi) <= FLT_MAX);
        float vi = rho * v[i] + (1.0f - rho) * (gi * gi);
        v[i] = vi;
        p[i] -= lr * gi / sqrtf(vi + eps);
    }
    return bad;
}

/* As rmsprop_plain, then mom[n] = mu mom + inc; p -= mom. */
static int rmsprop_momentum(size_t n, float *restrict p, const float *restrict g, float scale,
                            float clip, float *restrict v, float *restrict mom, float lr, float rho,
                            float eps, float mu) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale * clip;
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
    dp_optim_clip_prepare(o, grads, scale);
    int bad = dp_optim_update_range(o, 0, o->n, params, grads, scale);
    dp_optim_end_step(o);
    return bad;
}

void dp_optim_end_step(dp_optim *o) {
    o->step++;
}

/* AdamW's decoupled decay, before the Adam update: p[n] -= p * (lr wd). */
static void decay_weights(size_t n, float *restrict p, float lr_wd) {
    for (size_t i = 0; i < n; i++) p[i] -= p[i] * lr_wd;
}

/* The update of [lo, lo + n), all of it with the clipping factor clip. */
static int update_piece(const dp_optim *o, size_t lo, size_t n, float *params, const float *grads,
                        float scale, float clip) {
    const dp_optim_cfg *c = &o->cfg;
    double lr_d = dp_optim_learning_rate(o);
    float lr = (float)lr_d;
    int bad = 0;
    /* The state of [lo, lo + n); a kind's unused slots are NULL. */
    float *s0 = o->slots[0] ? o->slots[0] + lo : NULL, *s1 = o->slots[1] ? o->slots[1] + lo : NULL;
    switch (c->kind) {
    case DP_OPTIM_SGD:
        if (c->momentum > 0)
            bad = sgd_momentum(n, params, grads, scale, clip, s0, lr, (float)c->momentum,
                               c->nesterov);
        else bad = sgd_plain(n, params, grads, scale, clip, lr);
        break;
    case DP_OPTIM_ADAM:
    case DP_OPTIM_ADAMW: {
        /* AdamW: Keras decays every variable, with the rate in force, before
         * the Adam update. */
        if (c->kind == DP_OPTIM_ADAMW) decay_weights(n, params, (float)(lr_d * c->weight_decay));
        double t = (double)(o->step + 1);
        double lr_t = lr_d * sqrt(1.0 - pow(c->beta2, t)) / (1.0 - pow(c->beta1, t));
        bad = adam_update(n, params, grads, scale, clip, s0, s1, (float)(1.0 - c->beta1),
                          (float)(1.0 - c->beta2), (float)lr_t, (float)c->epsilon);
        break;
    }
    case DP_OPTIM_RMSPROP:
        if (c->momentum > 0)
            bad = rmsprop_momentum(n, params, grads, scale, clip, s0, s1, lr, (float)c->rho,
                                   (float)c->epsilon, (float)c->momentum);
        else
            bad = rmsprop_plain(n, params, grads, scale, clip, s0, lr, (float)c->rho,
                                (float)c->epsilon);
        break;
    }
    return bad;
}

int dp_optim_update_range(const dp_optim *o, size_t lo, size_t n, float *params, const float *grads,
                          float scale) {
    int bad = 0;
    if (!(o->cfg.clipnorm > 0)) { /* one factor for all: 1, or the global one */
        bad = update_piece(o, lo, n, params, grads, scale, o->clip[0]);
        return bad ? -1 : 0;
    }
    /* Per tensor: the range is cut at the tensors' ends. */
    size_t hi = lo + n;
    for (int t = 0; t < o->n_tensors; t++) {
        size_t a = o->t_off[t] > lo ? o->t_off[t] : lo;
        size_t b = o->t_off[t] + o->t_len[t] < hi ? o->t_off[t] + o->t_len[t] : hi;
        if (a < b)
            bad |=
                update_piece(o, a, b - a, params + (a - lo), grads + (a - lo), scale, o->clip[t]);
    }
    return bad ? -1 : 0;
}
