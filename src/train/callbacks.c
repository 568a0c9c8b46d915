/* callbacks.c - the Keras callback rules at an epoch's end, as pure functions of the state. */
#include "train/callbacks.h"

#include <math.h>
#include <string.h>

int dp_callbacks_any(const dp_config *cfg) {
    return cfg->early_stopping.enabled || cfg->reduce_lr.enabled || cfg->ckpt_best.enabled;
}

int dp_callbacks_direction(int monitor, int mode) {
    if (mode == DP_MODE_MIN) return -1;
    if (mode == DP_MODE_MAX) return 1;
    return monitor == DP_MONITOR_ACCURACY || monitor == DP_MONITOR_VAL_ACCURACY ? 1 : -1;
}

/* Written as Keras computes it (monitor_op(value - min_delta', best) with
 * min_delta' = -min_delta in min mode), so the rounding is Keras's too. */
int dp_callbacks_improves(double value, double best, double min_delta, int dir) {
    return dir < 0 ? value + min_delta < best : value - min_delta > best;
}

void dp_callbacks_start(const dp_config *cfg, double lr, dp_ckpt_callbacks *cb) {
    memset(cb, 0, sizeof *cb);
    cb->present = dp_callbacks_any(cfg);
    const dp_early_stopping_cfg *es = &cfg->early_stopping;
    const dp_reduce_lr_cfg *rl = &cfg->reduce_lr;
    const dp_best_ckpt_cfg *bc = &cfg->ckpt_best;
    cb->es_best = -dp_callbacks_direction(es->monitor, es->mode) * INFINITY;
    cb->lr_best = -dp_callbacks_direction(rl->monitor, rl->mode) * INFINITY;
    cb->ckpt_best = -dp_callbacks_direction(bc->monitor, bc->mode) * INFINITY;
    cb->learning_rate = rl->enabled ? lr : NAN;
}

/* ModelCheckpoint(save_best_only=True): a strict improvement saves. */
static void best_ckpt_epoch(const dp_best_ckpt_cfg *c, dp_ckpt_callbacks *cb, int epoch, double v,
                            dp_callback_events *ev) {
    if (!dp_callbacks_improves(v, cb->ckpt_best, 0, dp_callbacks_direction(c->monitor, c->mode)))
        return;
    cb->ckpt_best = v;
    cb->ckpt_best_epoch = epoch;
    ev->save_best = 1;
}

/* ReduceLROnPlateau.on_epoch_end: the cooldown runs down first (and clears
 * the wait), an improvement resets the wait, and outside the cooldown a wait
 * of `patience` epochs cuts the rate unless it is already at min_lr. */
static void reduce_lr_epoch(const dp_reduce_lr_cfg *c, dp_ckpt_callbacks *cb, int epoch, double v,
                            dp_callback_events *ev) {
    (void)epoch;
    if (cb->lr_cooldown > 0) {
        cb->lr_cooldown--;
        cb->lr_wait = 0;
    }
    if (dp_callbacks_improves(v, cb->lr_best, c->min_delta,
                              dp_callbacks_direction(c->monitor, c->mode))) {
        cb->lr_best = v;
        cb->lr_wait = 0;
        return;
    }
    if (cb->lr_cooldown > 0) return;
    if (++cb->lr_wait < c->patience) return;
    double old = cb->learning_rate;
    if (!(old > c->min_lr)) return;
    cb->learning_rate = fmax(old * c->factor, c->min_lr);
    ev->reduced = 1;
    ev->old_lr = old;
    cb->lr_cooldown = c->cooldown;
    cb->lr_wait = 0;
}

/* EarlyStopping.on_epoch_end: the wait counts every epoch and an improvement
 * resets it; a wait of `patience` stops, though never after the first epoch.
 * With restore_best_weights the first epoch's weights are kept even when it
 * does not improve (NaN), so there is always a best to restore. */
static void early_stopping_epoch(const dp_early_stopping_cfg *c, dp_ckpt_callbacks *cb, int epoch,
                                 double v, dp_callback_events *ev) {
    if (c->restore_best_weights && cb->es_best_epoch == 0) {
        cb->es_best_epoch = epoch;
        ev->snapshot_best = 1;
    }
    cb->es_wait++;
    if (dp_callbacks_improves(v, cb->es_best, c->min_delta,
                              dp_callbacks_direction(c->monitor, c->mode))) {
        cb->es_best = v;
        cb->es_best_epoch = epoch;
        if (c->restore_best_weights) ev->snapshot_best = 1;
        cb->es_wait = 0;
        return;
    }
    if (cb->es_wait >= c->patience && epoch > 1) {
        cb->es_stopped_epoch = epoch;
        ev->stop = 1;
    }
}

void dp_callbacks_epoch_end(const dp_config *cfg, dp_ckpt_callbacks *cb, int epoch,
                            const double fig[4], dp_callback_events *ev) {
    memset(ev, 0, sizeof *ev);
    if (cfg->ckpt_best.enabled)
        best_ckpt_epoch(&cfg->ckpt_best, cb, epoch, fig[cfg->ckpt_best.monitor], ev);
    if (cfg->reduce_lr.enabled)
        reduce_lr_epoch(&cfg->reduce_lr, cb, epoch, fig[cfg->reduce_lr.monitor], ev);
    if (cfg->early_stopping.enabled)
        early_stopping_epoch(&cfg->early_stopping, cb, epoch, fig[cfg->early_stopping.monitor], ev);
}
