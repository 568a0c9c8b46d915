/* share.h - (private) ranks on one node sharing one copy of the parameters and
 * the optimizer state, and summing gradients through shared memory (DESIGN §5, §8).
 *
 * When every rank runs on one node, the parameters, the optimizer state and
 * each rank's gradient arena live in one shared segment. A step then needs no
 * allreduce: after backward, a fence; each rank sums its own range of the
 * gradient over the ranks' arenas, in rank order, and applies the optimizer to
 * that range of the one parameter copy; a second fence, and every rank's next
 * forward reads the updated parameters. Each rank so does 1/P of the update
 * work and moves no gradient over MPI. On two ranks the sum is the one float
 * addition per element of the allreduce, so the bits do not change. */
#ifndef DPTRAIN_SHARE_H
#define DPTRAIN_SHARE_H

#include <stddef.h>
#include "dptrain/comm.h"
#include "dptrain/loss.h"
#include "dptrain/model.h"
#include "dptrain/optim.h"

typedef struct dp_share {
    dp_comm_win win;
    int rank, size;
    size_t lo, hi;      /* this rank's range of the parameters */
    float *grads;       /* [size, stride] every rank's gradient arena, rank 0 first */
    size_t stride;      /* floats from one rank's arena to the next */
    double *notes;      /* [size, 4] per rank: loss, correct count, stop, bad gradient */
    float *piece;       /* [PIECE of share.c] private: one piece of this rank's range, summed */
} dp_share;

/* Collective. With more than one rank, all on one node, moves m's parameters
 * and gradients and o's state into a segment shared by the ranks (zeroed, so
 * rank 0 must initialize or load the parameters after this) and returns 1 on
 * every rank; else returns 0 on every rank and changes nothing. */
int share_attach(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o);

/* Collective. Ends this rank's step once its backward has added its gradient
 * into m->grads: agrees the step's loss sums (this rank's in mb[n_mb]) and
 * stop flag over the ranks, with the same bits on every rank, then sums this
 * rank's range of the gradient and applies o to it, scaled by 1/rows. Fills
 * out and *stop (OR over ranks) and returns 0, or -1 on every rank if the loss
 * or the gradient is NaN or Inf. seconds gets COMM time, and OPTIM time for
 * the sum and update together. */
int share_step(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, const dp_loss_sums *mb,
               int n_mb, size_t rows, dp_loss_sums *out, int *stop, double *seconds);

/* Collective. Rank 0's stores to the parameters and state become visible to all. */
void share_publish(const dp_share *s, const dp_comm *c);

/* Collective. Unmaps the segment; m and o are left without parameters,
 * gradients or state (model_free and optim_free then free nothing of them). */
void share_detach(dp_share *s, dp_model *m, dp_optim *o);

#endif
