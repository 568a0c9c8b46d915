/* grad_shm.h - (private) the ranks of a node sharing one copy of the parameters
 * and the optimizer state, and summing gradients through shared memory
 * (docs/DESIGN.md §5, §8).
 *
 * On each node, the parameters, the optimizer state and the node's gradient
 * arenas live in one shared segment. After backward, a fence; each rank sums
 * its own range of the gradient over the node's arenas; with several nodes,
 * the ranks at the same place on every node (one "cross" group per place)
 * then allreduce that range, so each node sends one gradient's worth instead
 * of one per rank; each rank applies the optimizer to its range of the node's
 * copy; a closing fence, and every rank's next forward reads the updated
 * parameters. Each rank so does 1/L of the update work (L ranks per node), and
 * on one node no gradient moves over MPI. Every node applies the same update
 * to the same state, so the copies stay equal (the replica check compares them).
 *
 * The sums are those of grad_buckets.c:
 * - float (S <= 2, or reduction: fast): one arena per rank, added in rank
 *   order on the node; on two ranks that is the allreduce's one addition per
 *   element, the same bits;
 * - exact (S > 2): one arena per shard of the node. Before the first fence
 *   each rank notes the max |g| of every tensor over its own micro-batches;
 *   after it, the node's maxima (and, across nodes, their maximum) give every
 *   rank the same scales, and each rank adds its range of the arenas in fixed
 *   point. Integer sums do not depend on order or grouping: the same bits as
 *   the MPI allreduce and as one rank, on any number of nodes. */
#ifndef DPTRAIN_GRAD_SHM_H
#define DPTRAIN_GRAD_SHM_H

#include <stddef.h>
#include <stdint.h>
#include "core/comm.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "data/trainset.h"

/* Floats per 64-byte cache line: ranges and arenas start on lines of their
 * own, so no two ranks write one line. */
enum { SHARE_LINE = 16 };

/* Elements summed and updated at a time: the summed piece (16 KiB, and its
 * 32 KiB fixed-point sum in exact mode) stays in L1 while the optimizer reads it. */
enum { SHARE_PIECE = 4096 };

typedef struct dp_grad_shm {
    dp_comm node;  /* the ranks on this rank's node */
    dp_comm cross; /* the ranks at this rank's place on every node */
    int nodes;     /* nodes, each with a copy of its own */
    dp_comm_win win;
    int rank, size;      /* this rank's place on its node, and ranks per node (L) */
    int exact;           /* fixed-point sum over shards, else float sum over ranks */
    int shards;          /* S, over all nodes */
    int n_my;            /* micro-batches (shards) per rank */
    int arenas;          /* the node's arenas: L * n_my (exact) or L */
    size_t lo, hi;       /* this rank's range of the parameters */
    float *grads;        /* [arenas, stride] the node's gradient arenas */
    size_t stride;       /* floats from one arena to the next */
    double *micro_notes; /* [L * n_my, 2] each micro-batch of the node: loss sum, correct count */
    double *rank_notes;  /* [L, 2] each rank of the node: stop request, bad update */
    double *maxima;      /* [L, n_tensors] exact: each rank's max |g| per tensor */
    int n_tensors;
    size_t *t_off, *t_len; /* [n_tensors] private: the tensors' places in the arenas */
    double *agreed;        /* [n_tensors + 2] private: max |g| per tensor, stop, max |loss| */
    float *piece;          /* [SHARE_PIECE] private: one summed piece of the range */
    int64_t *acc;          /* [SHARE_PIECE] private, exact: its fixed-point sum */
    float *rsum;           /* [hi - lo] private, several nodes, float: the range's sum */
    int64_t *racc;         /* [hi - lo] private, several nodes, exact: the same in fixed point */
    char why[1024];        /* rank 0: why ranks that share a node share nothing, or "" */
} dp_grad_shm;

/* Collective. With more than one rank on every node and the same number on
 * each, moves m's parameters and gradients and o's state into a segment
 * shared by the node's ranks, for reduction `mode` (as dp_grad_buckets_pick_mode
 * gives it) over ts's shards, and returns 1 on every rank; else returns 0 on
 * every rank and changes nothing. It also returns 0 when a node's segment
 * would not fit in the directory Open MPI backs it with; rank 0's s->why then
 * says so (else it is ""). The segments start zeroed: rank 0 initializes or
 * loads the parameters after this, and dp_grad_shm_publish shows them to all. m->grads
 * is then the arena of this rank's last micro-batch. */
int dp_grad_shm_attach(dp_grad_shm *s, const dp_comm *c, dp_model *m, dp_optim *o,
                       dp_reduction mode, const dp_trainset *ts);

/* Where this rank's micro-batch k (0 <= k < n_my) adds its gradient. */
float *dp_grad_shm_grads(const dp_grad_shm *s, int k);

/* Collective. Ends the step once this rank's backward passes have added their
 * gradients into the dp_grad_shm_grads arenas: agrees the loss sums (this rank's in
 * micro_sums[n_my]) and stop flag over all ranks, with the same bits on every rank,
 * then sums this rank's range of the gradient, averages it over rows and
 * applies o to it. On one node the bits are those of grad_buckets.c. Fills out and
 * *stop (the largest of the ranks' flag values, dp_step_run) and returns 0, or -1 on every rank if the loss or the
 * gradient is NaN or Inf. seconds gets COMM time, REDUCE time for the exact
 * maxima and the notes, and OPTIM time for the sum and update together. */
int dp_grad_shm_step(dp_grad_shm *s, dp_model *m, dp_optim *o, const dp_loss_sums *micro_sums,
                     size_t rows, dp_loss_sums *out, int *stop, double *seconds);

/* Collective. Rank 0's stores to m's parameters and o's state reach every
 * node's copy and become visible to all ranks. */
void dp_grad_shm_publish(const dp_grad_shm *s, dp_model *m, dp_optim *o);

/* Collective. Unmaps the segment; m and o are left without parameters,
 * gradients or state (dp_model_free and dp_optim_free then free nothing of them). */
void dp_grad_shm_detach(dp_grad_shm *s, dp_model *m, dp_optim *o);

#endif
