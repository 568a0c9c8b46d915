/* optim.h - sgd (momentum, nesterov), adam and rmsprop with Keras's formulas.
 *
 * One loop over the flat parameter arena per step. State arrays (m, v, ...) use
 * the same layout as the parameters, so they checkpoint like the parameters. */
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
} dp_optim;

/* Allocates zeroed state for n parameters. Returns 0 or -1 with err set. */
int dp_optim_init(dp_optim *o, const dp_optim_cfg *cfg, size_t n, dp_error *err);

/* Applies one step with the gradient scale * grads[n] (scale = 1/rows turns a
 * summed gradient into the mean as it is read): params[n] -= update; increments
 * o->step. Returns -1 if any scaled gradient is NaN or Inf (the parameters and
 * state are then unusable: the caller stops), else 0. */
int dp_optim_step(dp_optim *o, float *params, const float *grads, float scale);

/* The update of dp_optim_step for elements [lo, lo + n) only, without counting
 * the step: params[n] and grads[n] are those elements (the caller offsets
 * them), lo places them in the state. Ranks sharing one parameter copy each
 * update their own range, piece by piece, then call dp_optim_end_step once.
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
