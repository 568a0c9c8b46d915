/* timeline_run.h - (private) a run's timeline: its settings, the window of
 * steps it records, and the Chrome trace-event file rank 0 writes at the end
 * (docs/DESIGN.md §8.1). The recorder itself is core/timeline.h. */
#ifndef DPTRAIN_TIMELINE_RUN_H
#define DPTRAIN_TIMELINE_RUN_H

#include <stdint.h>
#include "core/comm.h"
#include "dptrain/config.h"
#include "dptrain/train.h"
#include "nn/model.h"

/* Steps recorded when no range is given: the first this many of the run. */
enum { DP_TL_DEFAULT_STEPS = 20 };

typedef struct dp_tl_run {
    int on;                 /* a timeline was asked for */
    char path[DP_PATH_MAX]; /* the JSON file */
    long long first, last;  /* the window, global step numbers from 1; first 0: not yet
                               fixed (the default window starts at the run's first step) */
    long long seen;         /* the last step recorded, 0 before the first */
    int64_t origin;         /* the time origin all ranks share, CLOCK_MONOTONIC ns */
    int started;            /* the recorder is allocated */
} dp_tl_run;

/* Collective. Takes the timeline path and step range from cfg (train.timeline,
 * train.timeline_steps), opts overriding them, and checks them before anything
 * is written: the range parses, and (rank 0) the path's directory exists and
 * the path is not a directory. Returns 0, or -1 on every rank with err set. */
int dp_tl_run_setup(dp_tl_run *t, const dp_comm *c, const dp_config *cfg, const dp_train_opts *opts,
                    dp_error *err);

/* Collective when on. Allocates the recorder for the window (sized from m's
 * layers, n_micro micro-batches and n_buckets buckets a step) and agrees the
 * time origin. Call before the checkpoint writer thread starts. */
void dp_tl_run_start(dp_tl_run *t, const dp_comm *c, const dp_model *m, int n_micro, int n_buckets);

/* Opens the recording window before global step `step` (from 1) when it is in
 * range, and closes it after the last one: what follows the last step in the
 * window (evaluation, checkpoints) up to the next step is recorded too. */
void dp_tl_run_step(dp_tl_run *t, long long step);

/* Collective when on. Closes the window, gathers every rank's events to rank
 * 0, which writes the file atomically (temporary name, fsync, rename) and frees
 * the recorder. Call after the checkpoint writer thread has stopped. Returns 0,
 * or -1 when rank 0 could not write the file (it printed the error line). */
int dp_tl_run_finish(dp_tl_run *t, const dp_comm *c, const dp_model *m);

#endif
