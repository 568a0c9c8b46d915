/* shard.c - the row plan that makes every step's rows independent of the rank count. */
#include "data/shard.h"
#include "core/alloc.h"

#include <stdlib.h>

int dp_shard_plan_make(dp_shard_plan *p, size_t n_rows, int shards, int batch, dp_error *err) {
    *p = (dp_shard_plan){0};
    if (shards < 1) return dp_error_set(err, "data.shards", "must be at least 1, got %d", shards);
    if (batch < shards)
        return dp_error_set(err, "train.batch_size",
                            "global batch %d is smaller than data.shards %d: every shard "
                            "needs at least one row per step",
                            batch, shards);
    if (n_rows < (size_t)batch)
        return dp_error_set(err, "train.batch_size",
                            "%zu training rows are fewer than one global batch of %d", n_rows,
                            batch);
    p->n_rows = n_rows;
    p->shards = shards;
    p->batch = batch;
    size_t full = n_rows / (size_t)batch, rest = n_rows % (size_t)batch;
    p->steps = (int)(full + (rest > 0));
    p->rows_per_step = DP_CALLOC((size_t)shards, sizeof *p->rows_per_step);
    p->count = DP_CALLOC((size_t)shards, sizeof *p->count);
    p->offset = DP_CALLOC((size_t)shards, sizeof *p->offset);
    size_t off = 0;
    for (int s = 0; s < shards; s++) {
        p->rows_per_step[s] = batch / shards + (s < batch % shards);
        /* The short last step is split like a batch of `rest` rows; rest < batch
         * keeps each shard's share within its rows_per_step. */
        size_t last = rest / (size_t)shards + ((size_t)s < rest % (size_t)shards);
        p->count[s] = full * (size_t)p->rows_per_step[s] + last;
        p->offset[s] = off;
        off += p->count[s];
    }
    return 0;
}

void dp_shard_plan_rank(const dp_shard_plan *p, int rank, int nranks, int *first, int *n) {
    *n = p->shards / nranks;
    *first = rank * *n;
}

void dp_shard_plan_step(const dp_shard_plan *p, int s, int t, size_t *begin, size_t *end) {
    size_t b = (size_t)t * (size_t)p->rows_per_step[s];
    size_t e = b + (size_t)p->rows_per_step[s];
    if (b > p->count[s]) b = p->count[s];
    if (e > p->count[s]) e = p->count[s];
    *begin = b;
    *end = e;
}

size_t dp_shard_plan_step_rows(const dp_shard_plan *p, int t) {
    size_t rows = 0;
    for (int s = 0; s < p->shards; s++) {
        size_t b, e;
        dp_shard_plan_step(p, s, t, &b, &e);
        rows += e - b;
    }
    return rows;
}

void dp_shard_plan_free(dp_shard_plan *p) {
    free(p->rows_per_step);
    free(p->count);
    free(p->offset);
    *p = (dp_shard_plan){0};
}
