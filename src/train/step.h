/* step.h - (private) one global training step: micro-batches, reduction, update. */
#ifndef DPTRAIN_STEP_H
#define DPTRAIN_STEP_H

#include <stdint.h>
#include "core/comm.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "core/phases.h"
#include "grad/grad_buckets.h"
#include "grad/grad_shm.h"
#include "data/trainset.h"

typedef struct dp_stepper {
    double seconds[DP_TIME_PHASES];
    dp_grad_buckets red;
    dp_grad_shm *share; /* the node's shared parameters, or NULL: reduce over MPI */
    int n_my;           /* micro-batches per step on this rank (its shards) */
    size_t *shard_row;  /* [n_my] first local row of each of this rank's shards */
    uint32_t **perm;    /* [n_my][shard rows] this epoch's order of each shard */
    float *xb, *yb;     /* [max_micro_rows, width], [max_micro_rows, ycols] gathered micro-batch */
    uint64_t *row_ids;  /* [max_micro_rows] training-set index of each gathered row */
    unsigned long long seed;
    float *dout;               /* [max_micro_rows, k] dL/dout */
    float *gstore;             /* [n_my - 1, n_params] exact mode: gradients of all but the
                              last micro-batch, which goes to the model's arena */
    const float **micro_grads; /* [n_my] where each micro-batch's gradient is */
    dp_loss_sums *micro_sums;  /* [n_my] loss sums of each owned micro-batch */
    dp_reader *reader;         /* streamed rows: the step's slot comes from here; NULL: in memory */
    const dp_read_slot *slot;  /* the step being gathered */
    const float *xin, *yin;    /* the micro-batch's rows: xb and yb, or the slot's */
    const uint64_t *ids_in;    /* and their training-set indices */
    int epoch;                 /* the epoch dp_step_shuffle set up */
    double first_rows;         /* dp_process_age() when the first step had its rows; 0: not yet */
    dp_error read_err;         /* this rank's failed read (DP_STEP_DATA_ERROR) */
    int read_failed;           /* its rows could not be turned into floats */
} dp_stepper;

/* dp_step_run's stop flags: a stop request, and a rank's failed read of its
 * rows (its read_err says why; the step then trained on nothing and must not be
 * kept). */
enum { DP_STEP_STOP = 1, DP_STEP_DATA_ERROR = 2 };

/* bucket_bytes: gradient buckets of about this size travel while backward goes
 * on. share: when not NULL (attached), steps end in dp_grad_shm_step instead.
 * reader: when not NULL (ts->streamed, started), steps take their rows from it. */
void dp_step_init(dp_stepper *st, const dp_trainset *ts, const dp_model *m, dp_reduction mode,
                  unsigned long long seed, size_t bucket_bytes, dp_grad_shm *share,
                  dp_reader *reader);

/* Orders every owned shard's rows for `epoch` by a permutation keyed by
 * (seed, epoch, global shard index). */
void dp_step_shuffle(dp_stepper *st, const dp_trainset *ts, int epoch);

/* Collective. Runs step t of the epoch (global step number gstep, which keys
 * dropout): forward/backward on each owned micro-batch, reduces the gradient
 * (exactly, or by float allreduce in fast mode) in buckets that start during
 * the last micro-batch's backward, or through the node's shared memory,
 * averages it over the step's rows and applies the optimizer. Fills sums with
 * the step's loss and accuracy totals over all ranks and returns 0, or returns
 * -1 on every rank if the loss or the gradient is NaN or Inf: the caller stops
 * (a NaN loss, and in exact mode a NaN gradient, is caught before the
 * parameters change; a float sum's is caught by the optimizer as it updates).
 * *stop carries this rank's stop request (DP_STEP_STOP) in and the flags of
 * all ranks out, agreed inside the step's own collectives; DP_STEP_DATA_ERROR
 * out means some rank could not read its rows, and the step's update must be
 * thrown away (the caller ends the run with an error). */
int dp_step_run(dp_stepper *st, const dp_comm *c, const dp_trainset *ts, dp_model *m, dp_optim *o,
                int t, long long gstep, dp_loss_sums *sums, int *stop);

void dp_step_free(dp_stepper *st);

#endif
