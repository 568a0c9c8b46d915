/* callbacks.h - Keras's EarlyStopping, ReduceLROnPlateau and ModelCheckpoint
 * (save_best_only) rules, applied at an epoch's end (docs/DESIGN.md §5.10).
 *
 * Pure decisions over the state in dp_ckpt_callbacks and the epoch's figures:
 * no MPI, no files. Every rank calls them with the same figures (rank 0's,
 * broadcast) and state, so every rank decides alike; train.c acts on the
 * events (writes best.h5, keeps or restores weights, stops). */
#ifndef DPTRAIN_CALLBACKS_H
#define DPTRAIN_CALLBACKS_H

#include "dptrain/checkpoint.h"
#include "dptrain/config.h"

/* What one epoch's end asks of the run. */
typedef struct dp_callback_events {
    int save_best;     /* checkpoint.best improved: best.h5 gets this epoch */
    int snapshot_best; /* early_stopping with restore_best_weights: keep these weights */
    int reduced;       /* the learning rate was cut from old_lr to cb->learning_rate */
    double old_lr;
    int stop; /* early_stopping ends training after this epoch */
} dp_callback_events;

/* 1 when the config has at least one callback. */
int dp_callbacks_any(const dp_config *cfg);

/* +1 when higher values of `monitor` are better under `mode`, -1 when lower
 * are (auto: max for an accuracy, min for a loss, as Keras infers). */
int dp_callbacks_direction(int monitor, int mode);

/* Keras's improvement test: value beats best by more than min_delta in the
 * direction dir (min: value + min_delta < best; max: value - min_delta > best).
 * NaN never improves. */
int dp_callbacks_improves(double value, double best, double min_delta, int dir);

/* The state of a fresh run: bests at +inf (min) or -inf (max), counters 0,
 * learning_rate = lr when reduce_lr_on_plateau is on (else NaN), present set
 * when any callback is on. */
void dp_callbacks_start(const dp_config *cfg, double lr, dp_ckpt_callbacks *cb);

/* Applies epoch `epoch` (from 1) with figures fig[4] = loss, accuracy,
 * val_loss, val_accuracy (indexed by dp_monitor) to cb, in Keras's order:
 * checkpoint.best, reduce_lr_on_plateau, early_stopping. Fills ev. */
void dp_callbacks_epoch_end(const dp_config *cfg, dp_ckpt_callbacks *cb, int epoch,
                            const double fig[4], dp_callback_events *ev);

#endif
