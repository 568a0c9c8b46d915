/* train.h - the data-parallel training run: data, model, steps, checkpoints. */
#ifndef DPTRAIN_TRAIN_H
#define DPTRAIN_TRAIN_H

#include "dptrain/comm.h"
#include "dptrain/config.h"

/* Exit statuses of `dptrain train`, the same on every rank. */
enum {
    DP_EXIT_OK = 0,
    DP_EXIT_ERROR = 1,   /* bad input or a failure; one error line printed by rank 0 */
    DP_EXIT_USAGE = 2,   /* bad command line */
    DP_EXIT_STOPPED = 3, /* stopped early on request (--stop-after), checkpoint written */
    DP_EXIT_SIGNALED = 4, /* SIGUSR1 or SIGTERM: stopped at a step boundary, checkpoint
                             written; resume with --resume */
};

typedef struct dp_train_opts {
    const char *run_dir;        /* checkpoints and metrics.jsonl */
    int resume;                 /* continue from the newest valid checkpoint in run_dir */
    long long stop_after;       /* stop after this many steps of this invocation; 0 = never */
} dp_train_opts;

/* Collective. Trains cfg on all ranks of c. Rank 0 prints progress, evaluates,
 * and writes checkpoints and metrics. Returns one of the DP_EXIT_* codes, the same
 * on every rank; on DP_EXIT_ERROR rank 0 has printed the error line. */
int train_run(const dp_comm *c, const dp_config *cfg, const dp_train_opts *opts);

#endif
