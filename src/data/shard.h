/* shard.h - which training rows each shard, rank and step owns (docs/DESIGN.md §5).
 *
 * The N training rows are cut into S contiguous shards. Shard s takes rows_per_step[s] rows
 * per global step (the global batch B split as evenly as possible, the first
 * B % S shards taking one more), and shard sizes are chosen so that every shard
 * lasts exactly `steps` = ceil(N / B) steps: the last step may be short. Rank r of
 * P owns shards [r*S/P, (r+1)*S/P), which are contiguous rows in the file. The plan
 * depends only on (N, S, B), never on P, so the rows of every step are the same
 * whatever the number of ranks. */
#ifndef DPTRAIN_SHARD_H
#define DPTRAIN_SHARD_H

#include <stddef.h>
#include "dptrain/error.h"

typedef struct dp_shard_plan {
    size_t n_rows;      /* N */
    int shards;         /* S */
    int batch;          /* B */
    int steps;          /* steps per epoch */
    int *rows_per_step; /* [S] rows per full step */
    size_t *count;      /* [S] rows in the shard */
    size_t *offset;     /* [S] first row of the shard */
} dp_shard_plan;

/* Makes the plan. Errors: S < 1, B < S (a shard would get no rows per step),
 * N < B (fewer training rows than one global batch). Returns 0 or -1 with err set. */
int dp_shard_plan_make(dp_shard_plan *p, size_t n_rows, int shards, int batch, dp_error *err);

/* First shard and number of shards of `rank` among `nranks`; S % nranks must be 0. */
void dp_shard_plan_rank(const dp_shard_plan *p, int rank, int nranks, int *first, int *n);

/* Rows of shard s used at step t: [*begin, *end) as positions in the shard's
 * per-epoch permutation (may be empty on the last step). */
void dp_shard_plan_step(const dp_shard_plan *p, int s, int t, size_t *begin, size_t *end);

/* Rows in global step t, summed over all shards. */
size_t dp_shard_plan_step_rows(const dp_shard_plan *p, int t);

void dp_shard_plan_free(dp_shard_plan *p);

#endif
