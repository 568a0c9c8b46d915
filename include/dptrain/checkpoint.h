/* checkpoint.h - HDF5 checkpoints, written atomically by rank 0 (docs/DESIGN.md §6).
 *
 * File layout (h5py-readable):
 *   /format_version            int, attribute of "/"
 *   /config                    string: the effective YAML config text
 *   /model/<i>_<type>/<param>  float32 datasets, e.g. /model/0_dense/kernel [in,out]
 *   /optimizer/<slot>/<i>_<type>/<param>   optimizer state, same shapes
 *   /optimizer                 attributes: name, step
 *   /train                     attributes: epoch, step_in_epoch, global_step, seed, shards,
 *                              and the current epoch's sums so far: epoch_loss_sum,
 *                              epoch_correct, epoch_terms (absent in older files: 0);
 *                              the training seconds: epoch_seconds (the current
 *                              epoch's steps so far) and run_seconds (the run so
 *                              far, over all its starts) (absent in older files:
 *                              NaN)
 *   /data/mean, /data/std      float32 [features] standardization statistics
 *   /data                      attributes scale, offset (float64): features were read
 *                              as x * scale + offset (data.scale, data.offset) before
 *                              standardization; absent in older files (1 and 0)
 *   /metrics                   float64 [epochs, 8]: epoch, loss, accuracy, val_loss,
 *                              val_accuracy, samples_per_s, seconds, learning_rate
 *                              (older checkpoints have the first 7; learning_rate
 *                              then reads as NaN)
 *   /callbacks                 attributes: the callbacks' state (dp_ckpt_callbacks),
 *                              present when the run has a callback
 *   /callbacks/best_weights/<i>_<type>/<param>   early_stopping's best epoch's
 *                              weights, with restore_best_weights
 * Files are named ckpt-<global_step, 12 digits>.h5 so the newest sorts last;
 * checkpoint.best keeps the best epoch's checkpoint as best.h5 beside them
 * (DP_CKPT_BEST_NAME), which is neither listed nor pruned. */
#ifndef DPTRAIN_CHECKPOINT_H
#define DPTRAIN_CHECKPOINT_H

#include <stddef.h>
#include "dptrain/error.h"
#include "dptrain/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The optimizer whose state a checkpoint holds (private; pass NULL to skip it). */
typedef struct dp_optim dp_optim;

#define DP_CKPT_FORMAT_VERSION 1
#define DP_METRICS_COLS 8
#define DP_METRICS_COLS_V1 7 /* before learning_rate was recorded */

#define DP_CKPT_BEST_NAME "best.h5"

/* The callbacks' state after an epoch end, so a resumed run decides as an
 * uninterrupted one would. Epochs are counted from 1; 0 means none. A best
 * value starts at +inf (min mode) or -inf (max mode), as in Keras. */
typedef struct dp_ckpt_callbacks {
    int present;          /* written or read: the run has callbacks */
    double es_best;       /* early_stopping: best monitored value */
    int es_best_epoch;    /* its epoch (the weights in best_weights) */
    int es_wait;          /* epochs since it improved */
    int es_stopped_epoch; /* the epoch it stopped training at */
    double ckpt_best;     /* checkpoint.best: best monitored value */
    int ckpt_best_epoch;  /* the epoch best.h5 holds */
    double lr_best;       /* reduce_lr_on_plateau: best monitored value */
    int lr_wait, lr_cooldown;
    double learning_rate; /* the rate in force; NaN: the optimizer's own */
} dp_ckpt_callbacks;

/* Everything a run needs to continue. The model and optimizer supply the
 * parameter names, shapes and arrays. */
typedef struct dp_ckpt_state {
    int epoch;         /* epochs fully done */
    int step_in_epoch; /* steps done in the current epoch */
    long long global_step;
    unsigned long long seed;
    int shards;
    /* The current epoch's training loss sum, correct count and loss terms
     * over its first step_in_epoch steps, so a resumed epoch reports the
     * figures of the whole epoch (callbacks may watch them). */
    double epoch_loss_sum;
    long long epoch_correct, epoch_terms;
    /* Wall-clock seconds summed over the run's starts (docs/DESIGN.md §5.8):
     * epoch_seconds spent in the current epoch's steps so far, run_seconds in
     * the whole run up to this checkpoint. NaN when read from an older file. */
    double epoch_seconds, run_seconds;
    size_t n_features; /* length of mean/std; 0 when not standardized */
    float *mean, *std; /* [n_features] */
    /* data.scale and data.offset, written as /data's attributes; data_scale 0
     * (a zeroed state) writes neither. Not read back: the config holds them. */
    double data_scale, data_offset;
    const char *config_text;
    size_t n_metrics; /* rows of metrics */
    double *metrics;  /* [n_metrics, DP_METRICS_COLS] */
    dp_ckpt_callbacks cb;
    float *best_weights; /* [n_params] or NULL: /callbacks/best_weights */
} dp_ckpt_state;

/* Reads path into m->params and o's state/step and st (st->mean/std/metrics and
 * best_weights are allocated here, config_text is set to NULL; st->cb is zeroed
 * when the file has no /callbacks). Checks the format version and that
 * every parameter's name and shape match the model: a checkpoint of another
 * model is an error naming the first difference. o or st may be NULL to skip
 * those parts. On failure m, o and st are left unchanged. Returns 0 or -1. */
int dp_ckpt_read(const char *path, dp_model *m, dp_optim *o, dp_ckpt_state *st, dp_error *err);

/* Reads the /config text of checkpoint path into *text (allocated, NUL-terminated;
 * free() it). Returns 0 or -1. */
int dp_ckpt_read_config(const char *path, char **text, dp_error *err);

/* Reads checkpoint path's standardization statistics /data/mean and /data/std
 * into *mean and *std (allocated; free() them) and their length into *n, 0
 * when it has none. Returns 0, or -1 when the file cannot be read (nothing
 * allocated). */
int dp_ckpt_read_stats(const char *path, float **mean, float **std, size_t *n);

/* Lists dir's checkpoints, newest first, into paths (allocated; free with
 * dp_ckpt_free_list). Returns the count (0 when none or no dir), or -1. */
int dp_ckpt_list(const char *dir, char ***paths, dp_error *err);
void dp_ckpt_free_list(char **paths, int n);

/* Frees what dp_ckpt_read allocated in st. */
void dp_ckpt_state_free(dp_ckpt_state *st);

#ifdef __cplusplus
}
#endif

#endif
