/* optim.h - sgd (momentum, nesterov), adam, adamw and rmsprop with Keras's
 * formulas, learning-rate schedules and gradient clipping by norm.
 *
 * One loop over the flat parameter arena per step. State arrays (m, v, ...) use
 * the same layout as the parameters, so they checkpoint like the parameters.
 *
 * Clipping (clipnorm, global_clipnorm) needs the norms of the whole averaged
 * gradient before any element is updated: dp_optim_clip_prepare computes them
 * from the finished gradient, in double, per tensor in element order and then
 * over tensors in tensor order. That order depends only on the model, so every
 * rank, whatever the number of ranks, gets the same factors from the same
 * gradient bits; the update then multiplies each element by its tensor's factor. */
#ifndef DPTRAIN_OPTIM_H
#define DPTRAIN_OPTIM_H

#include <stddef.h>
#include "dptrain/config.h"
#include "dptrain/error.h"

#define DP_OPTIM_MAX_SLOTS 2

typedef struct dp_optim {
    dp_optim_cfg cfg; /* with defaults filled in */
    size_t n;         /* number of parameters */
    long long step;   /* steps taken so far (Keras "iterations") */
    int n_slots;
    const char *slot_names[DP_OPTIM_MAX_SLOTS]; /* "m","v" / "momentum" / "velocity","momentum" */
    float *slots[DP_OPTIM_MAX_SLOTS];           /* each [n], zero-initialized */
    /* The parameter tensors (one covering all n until dp_optim_set_tensors),
     * for clipnorm, and the factors dp_optim_clip_prepare found for them. */
    int n_tensors;
    size_t *t_off, *t_len; /* [n_tensors] */
    float *clip;           /* [n_tensors] 1 where the norm is within the limit */
} dp_optim;

/* Allocates zeroed state for n parameters. Returns 0 or -1 with err set. */
int dp_optim_init(dp_optim *o, const dp_optim_cfg *cfg, size_t n, dp_error *err);

/* Tells o where the model's parameter tensors are (dp_model_list_tensors):
 * clipnorm bounds each one's norm. off and len are copied. */
void dp_optim_set_tensors(dp_optim *o, int n_tensors, const size_t *off, const size_t *len);

/* 1 when clipnorm or global_clipnorm is set: the caller must then call
 * dp_optim_clip_prepare with the whole gradient before updating any range. */
int dp_optim_clips(const dp_optim *o);

/* From the whole averaged gradient, read as (float)(grads[i] * scale) for i in
 * [0, n), sets the factor of each tensor: clipnorm / norm (per tensor, or of
 * the global norm for global_clipnorm) where the norm exceeds the limit, else
 * exactly 1 (and 1 when the norm is NaN or Inf, so the update still reports
 * the non-finite gradient). Returns the global norm (0 when not clipping). */
double dp_optim_clip_prepare(dp_optim *o, const float *grads, float scale);

/* The learning rate the next update uses: the schedule at o->step. */
double dp_optim_learning_rate(const dp_optim *o);

/* The learning rate of cfg at optimizer step `step` (0 for the first update):
 * the number, or Keras's CosineDecay / ExponentialDecay, in double. */
double dp_optim_schedule_at(const dp_optim_cfg *cfg, long long step);

/* Applies one step with the gradient scale * grads[n] (scale = 1/rows turns a
 * summed gradient into the mean as it is read), clipped as configured:
 * params[n] -= update; increments o->step. Returns -1 if any scaled gradient is
 * NaN or Inf (the parameters and state are then unusable: the caller stops),
 * else 0. */
int dp_optim_step(dp_optim *o, float *params, const float *grads, float scale);

/* The update of dp_optim_step for elements [lo, lo + n) only, without counting
 * the step: params[n] and grads[n] are those elements (the caller offsets
 * them), lo places them in the state. Ranks sharing one parameter copy each
 * update their own range, piece by piece, then call dp_optim_end_step once.
 * With clipping, each element's scaled gradient is multiplied by its tensor's
 * factor from the last dp_optim_clip_prepare.
 * Returns -1 if a scaled gradient among them is NaN or Inf, else 0. */
int dp_optim_update_range(const dp_optim *o, size_t lo, size_t n, float *params, const float *grads,
                          float scale);

/* Counts one step taken (o->step++): the next update uses the next step's
 * bias corrections. */
void dp_optim_end_step(dp_optim *o);

/* Frees the state. Safe on a zeroed struct. */
void dp_optim_free(dp_optim *o);

/* Fills unset (negative) fields of cfg with Keras's defaults for cfg->kind,
 * as the config schema's optimizer tables give them. */
void dp_optim_fill_defaults(dp_optim_cfg *cfg);

#endif
