/* ckpt_writer.h - rank 0's background checkpoint writer.
 *
 * A checkpoint's cost is mostly waiting for the disk (fsync), so rank 0 copies
 * the state and a writer thread writes it while training goes on: the other
 * ranks are held up only for the copy. One write is in flight at a time; the
 * next submit waits for it. Only the writer thread calls HDF5 while a write is
 * in flight, and only the submitting thread calls MPI. */
#ifndef DPTRAIN_CKPT_WRITER_H
#define DPTRAIN_CKPT_WRITER_H

#include <pthread.h>
#include "ckpt/ckpt.h"

typedef struct dp_ckpt_writer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started, pending, quit;
    char dir[DP_PATH_MAX];
    int keep;
    dp_model model;                   /* shallow copy whose params point at `params` */
    dp_optim optim;                   /* shallow copy whose slots point at `slots` */
    dp_ckpt_state st;                 /* copy; metrics point at `metrics` */
    float *params;                    /* [n_params] snapshot */
    float *slots[DP_OPTIM_MAX_SLOTS]; /* [n_params] snapshots */
    double *metrics;                  /* [n_metrics, DP_METRICS_COLS] snapshot */
    float *best_weights;              /* [n_params] snapshot of st->best_weights */
    int targets;                      /* DP_CKPT_TO_* of the pending write */
    size_t metrics_cap;
    dp_error err; /* result of the last finished write */
} dp_ckpt_writer;

/* Starts the writer thread for checkpoints of m/o into dir. Returns 0 or -1. */
int dp_ckpt_writer_start(dp_ckpt_writer *w, const char *dir, int keep, const dp_model *m,
                         const dp_optim *o, dp_error *err);

/* Where one snapshot goes: the step's ckpt-<step>.h5 (pruned to `keep`),
 * best.h5, or both, written in that order. */
enum { DP_CKPT_TO_STEP = 1, DP_CKPT_TO_BEST = 2 };

/* Waits for the previous write, copies m's parameters, o's state and st, and
 * hands them to the thread. Returns -1 with err set if the previous write failed
 * (the new one is then not started), else 0. */
int dp_ckpt_writer_submit(dp_ckpt_writer *w, const dp_model *m, const dp_optim *o,
                          const dp_ckpt_state *st, dp_error *err);

/* As dp_ckpt_writer_submit, to the files `targets` (DP_CKPT_TO_* bits) names. */
int dp_ckpt_writer_submit_to(dp_ckpt_writer *w, const dp_model *m, const dp_optim *o,
                             const dp_ckpt_state *st, int targets, dp_error *err);

/* Waits until no write is in flight. Returns -1 with err set if the last write
 * failed, else 0. */
int dp_ckpt_writer_wait(dp_ckpt_writer *w, dp_error *err);

/* Waits for the last write and ends the thread. Safe on a zeroed struct. */
void dp_ckpt_writer_stop(dp_ckpt_writer *w);

#endif
