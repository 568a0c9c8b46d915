/* train.h - the data-parallel training run: data, model, steps, checkpoints. */
#ifndef DPTRAIN_TRAIN_H
#define DPTRAIN_TRAIN_H

#include "dptrain/config.h"
#include "dptrain/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ranks a run trains on: MPI_COMM_WORLD, privately duplicated. */
typedef struct dp_comm dp_comm;

/* Collective over MPI_COMM_WORLD. Initializes MPI (argc and argv as for
 * MPI_Init) and returns the ranks' handle, or NULL with err set when MPI
 * cannot start. Close it with dp_comm_close, once, after the last run. */
dp_comm *dp_comm_open(int *argc, char ***argv, dp_error *err);

/* Collective. Finalizes MPI and frees c. NULL is a no-op. */
void dp_comm_close(dp_comm *c);

/* This process's rank, from 0, and the number of ranks. */
int dp_comm_rank(const dp_comm *c);
int dp_comm_size(const dp_comm *c);

/* Exit statuses of `dptrain train`, the same on every rank. */
enum {
    DP_EXIT_OK = 0,
    DP_EXIT_ERROR = 1,    /* bad input or a failure; one error line printed by rank 0 */
    DP_EXIT_USAGE = 2,    /* bad command line */
    DP_EXIT_STOPPED = 3,  /* stopped early on request (--stop-after), checkpoint written */
    DP_EXIT_SIGNALED = 4, /* SIGUSR1, SIGTERM or the stop file: stopped at a step
                             boundary, checkpoint written; resume with --resume */
};

typedef struct dp_train_opts {
    const char *run_dir;  /* checkpoints and metrics.jsonl */
    int resume;           /* continue from the newest valid checkpoint in run_dir */
    long long stop_after; /* stop after this many steps of this invocation; 0 = never */
    /* when not NULL, these override train.timeline and train.timeline_steps */
    const char *timeline;
    const char *timeline_steps;
    /* when not NULL: rank 0 looks for this file (at most every 0.2 s) and its
     * appearance stops the run as SIGUSR1 does; the file is removed once the
     * stop's checkpoint is on disk */
    const char *stop_file;
} dp_train_opts;

/* Collective. Trains cfg on all ranks of c. All ranks share the evaluation; rank 0 prints progress
 * and writes checkpoints and metrics. Returns one of the DP_EXIT_* codes, the same
 * on every rank; on DP_EXIT_ERROR rank 0 has printed the error line. */
int dp_train_run(const dp_comm *c, const dp_config *cfg, const dp_train_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
