/* checkpoint.h - HDF5 checkpoints, written atomically by rank 0 (DESIGN §6).
 *
 * File layout (h5py-readable):
 *   /format_version            int, attribute of "/"
 *   /config                    string: the effective YAML config text
 *   /model/<i>_<type>/<param>  float32 datasets, e.g. /model/0_dense/kernel [in,out]
 *   /optimizer/<slot>/<i>_<type>/<param>   optimizer state, same shapes
 *   /optimizer                 attributes: name, step
 *   /train                     attributes: epoch, step_in_epoch, global_step, seed, shards
 *   /data/mean, /data/std      float32 [features] standardization statistics
 *   /metrics                   float64 [epochs, 7]: epoch, loss, accuracy, val_loss,
 *                              val_accuracy, samples_per_s, seconds
 * Files are named ckpt-<global_step, 12 digits>.h5 so the newest sorts last. */
#ifndef DPTRAIN_CHECKPOINT_H
#define DPTRAIN_CHECKPOINT_H

#include <stddef.h>
#include "dptrain/error.h"
#include "dptrain/model.h"
#include "dptrain/optim.h"

#define DP_CKPT_FORMAT_VERSION 1
#define DP_METRICS_COLS 7

/* Everything a run needs to continue. The model and optimizer supply the
 * parameter names, shapes and arrays. */
typedef struct dp_ckpt_state {
    int epoch;                /* epochs fully done */
    int step_in_epoch;        /* steps done in the current epoch */
    long long global_step;
    unsigned long long seed;
    int shards;
    size_t n_features;        /* length of mean/std; 0 when not standardized */
    float *mean, *std;        /* [n_features] */
    const char *config_text;
    size_t n_metrics;         /* rows of metrics */
    double *metrics;          /* [n_metrics, DP_METRICS_COLS] */
} dp_ckpt_state;

/* Writes dir/ckpt-<global_step>.h5 atomically: a temporary file in dir, fsync,
 * rename, fsync of dir; then deletes all but the newest `keep` checkpoints.
 * keep <= 0 keeps all; the file just written is never deleted. o may be NULL
 * (no /optimizer). On failure the previous checkpoints are untouched. Returns 0 or -1. */
int ckpt_write(const char *dir, const dp_model *m, const dp_optim *o,
               const dp_ckpt_state *st, int keep, dp_error *err);

/* Reads path into m->params and o's state/step and st (st->mean/std/metrics are
 * allocated here, config_text is set to NULL). Checks the format version and that
 * every parameter's name and shape match the model: a checkpoint of another
 * model is an error naming the first difference. o or st may be NULL to skip
 * those parts. On failure m, o and st are left unchanged. Returns 0 or -1. */
int ckpt_read(const char *path, dp_model *m, dp_optim *o, dp_ckpt_state *st,
              dp_error *err);

/* Reads the /config text of checkpoint path into *text (allocated, NUL-terminated;
 * free() it). Returns 0 or -1. */
int ckpt_read_config(const char *path, char **text, dp_error *err);

/* mkdir -p dir. Returns 0 or -1 with err set (naming the component at fault). */
int ckpt_make_dir(const char *dir, dp_error *err);

/* Deletes the temporary files of writes that never finished (a writer killed
 * mid-write) from dir. Call only where no other writer uses dir. */
void ckpt_remove_temp(const char *dir);

/* Lists dir's checkpoints, newest first, into paths (allocated; free with
 * ckpt_free_list). Returns the count (0 when none or no dir), or -1. */
int ckpt_list(const char *dir, char ***paths, dp_error *err);
void ckpt_free_list(char **paths, int n);

/* Frees what ckpt_read allocated in st. */
void ckpt_state_free(dp_ckpt_state *st);

#endif
