/* share.h - (private) ranks on one node sharing one copy of the parameters and
 * the optimizer state, and summing gradients through shared memory (DESIGN §5, §8).
 *
 * When every rank runs on one node, the parameters, the optimizer state and
 * the gradient arenas live in one shared segment. A step then needs no
 * allreduce: after backward, a fence; each rank sums its own range of the
 * gradient over the arenas and applies the optimizer to that range of the one
 * parameter copy; a closing fence, and every rank's next forward reads the
 * updated parameters. Each rank so does 1/P of the update work and moves no
 * gradient over MPI.
 *
 * The sums are the reducer's, with the same bits:
 * - float (S <= 2, or reduction: fast): one arena per rank, added in rank
 *   order; on two ranks that is the allreduce's one addition per element;
 * - exact (S > 2): one arena per shard. Before the first fence each rank
 *   notes the max |g| of every tensor over its own micro-batches; after it,
 *   each rank adds its range of the S arenas in fixed point with the scales
 *   those maxima give. Integer sums do not depend on order or grouping. */
#ifndef DPTRAIN_SHARE_H
#define DPTRAIN_SHARE_H

#include <stddef.h>
#include <stdint.h>
#include "dptrain/comm.h"
#include "dptrain/loss.h"
#include "dptrain/model.h"
#include "dptrain/optim.h"
#include "trainset.h"

typedef struct dp_share {
    dp_comm_win win;
    int rank, size;
    int exact;            /* fixed-point sum over shards, else float sum over ranks */
    int shards, first;    /* S, and this rank's first shard */
    int n_my;             /* micro-batches (shards) per rank */
    size_t lo, hi;        /* this rank's range of the parameters */
    float *grads;         /* [shards (exact) or size, stride] the gradient arenas */
    size_t stride;        /* floats from one arena to the next */
    double *mb_notes;     /* [shards, 2] each micro-batch's loss sum and correct count */
    double *rank_notes;   /* [size, 2] each rank's stop request and bad update */
    double *maxima;       /* [size, n_tensors] exact: each rank's max |g| per tensor */
    int n_tensors;
    size_t *t_off, *t_len; /* [n_tensors] private: the tensors' places in the arenas */
    double *mx;           /* [n_tensors] private: agreed max |g| per tensor */
    float *piece;         /* [SHARE_PIECE] private: one summed piece of the range */
    int64_t *acc;         /* [SHARE_PIECE] private, exact: its fixed-point sum */
    char why[320];        /* rank 0: why the ranks on one node share nothing, or "" */
} dp_share;

/* Collective. With more than one rank, all on one node, moves m's parameters
 * and gradients and o's state into a segment shared by the ranks, for
 * reduction `mode` (as reducer_pick_mode gives it) over ts's shards, and
 * returns 1 on every rank; else returns 0 on every rank and changes nothing.
 * It also returns 0 when the segment would not fit in the directory Open MPI
 * backs it with; rank 0's s->why then says so (else it is "").
 * The segment starts zeroed: rank 0 initializes or loads the parameters after
 * this, and share_publish shows them to all. m->grads is then the arena of
 * this rank's last micro-batch. */
int share_attach(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, dp_reduction mode,
                 const dp_trainset *ts);

/* Where this rank's micro-batch k (0 <= k < n_my) adds its gradient. */
float *share_grads(const dp_share *s, int k);

/* Collective. Ends the step once this rank's backward passes have added their
 * gradients into the share_grads arenas: agrees the loss sums (this rank's in
 * mb[n_my]) and stop flag over the ranks, with the same bits on every rank and
 * as the reducer's, then sums this rank's range of the gradient, averages it
 * over rows and applies o to it. Fills out and *stop (OR over ranks) and
 * returns 0, or -1 on every rank if the loss or the gradient is NaN or Inf.
 * seconds gets COMM time, REDUCE time for the exact maxima and the notes, and
 * OPTIM time for the sum and update together. */
int share_step(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, const dp_loss_sums *mb,
               size_t rows, dp_loss_sums *out, int *stop, double *seconds);

/* Collective. Rank 0's stores to the parameters and state become visible to all. */
void share_publish(const dp_share *s, const dp_comm *c);

/* Collective. Unmaps the segment; m and o are left without parameters,
 * gradients or state (model_free and optim_free then free nothing of them). */
void share_detach(dp_share *s, dp_model *m, dp_optim *o);

#endif
