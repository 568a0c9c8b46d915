/* trainset.h - (private) the rows one rank trains on, and its share of the held-out rows. */
#ifndef DPTRAIN_TRAINSET_H
#define DPTRAIN_TRAINSET_H

#include "core/comm.h"
#include "dptrain/config.h"
#include "data/data.h"
#include "data/reader.h"
#include "data/shard.h"

typedef struct dp_trainset {
    dp_data_info info;
    dp_shard_plan plan;
    int first_shard, n_shards;         /* the shards this rank owns */
    dp_rows train;                     /* rows of this rank's shards, shard after shard */
    dp_rows val, test;                 /* this rank's share of the held-out rows (eval.h) */
    size_t val_first, test_first;      /* their first row within the held-out set */
    size_t n_val_total;                /* validation rows in all (known on every rank) */
    float *mean, *std;                 /* [width] standardization statistics, NULL when off */
    size_t width;                      /* floats per input row */
    int classes;                       /* labels' range (0: not class ids) */
    int streamed;                      /* rows stay in the file: the reader reads them (reader.h) */
    size_t bytes;                      /* what this rank's rows take in memory (or would) */
    size_t limit;                      /* data.in_memory auto: the most a rank may hold, bytes */
    int stats_known;                   /* mean and std came from `known` (no pass) */
    double stats_seconds;              /* the standardization pass over the rows */
    dp_read_heldout val_src, test_src; /* where this rank's held-out rows are in the file */
} dp_trainset;

/* Standardization statistics known before the data is read (a checkpoint's). */
typedef struct dp_trainset_stats {
    size_t n; /* 0: none */
    const float *mean, *std;
} dp_trainset_stats;

/* Collective. Opens cfg's dataset, checks it against the model's input shape and
 * output: k values at each of `positions` positions (model.h), splits validation rows off the end of /train (Keras's
 * validation_split), cuts the rest into shards, reads this rank's rows and its
 * share of the validation and test rows, and standardizes with statistics summed per shard
 * in shard order, so they are the same bits for any number of ranks. Streamed
 * (data.in_memory, or auto above the memory limit), it reads no rows: the
 * statistics come from one pass over the rank's rows in blocks, and the reader
 * (reader.h) reads the rows later. Statistics in `known` (n == width) are
 * taken as they are, without a pass: a resumed run's. int32 token ids
 * and an embedding first layer require each other; every rank checks the ids of the rows
 * it reads against the embedding's input_dim, and ids are never standardized.
 * Errors are agreed: returns -1 on every rank if any rank failed. */
int dp_trainset_load(dp_trainset *ts, const dp_comm *c, const dp_config *cfg, int k, int positions,
                     const dp_trainset_stats *known, dp_error *err);

/* The reader's configuration for this rank's rows (after dp_trainset_load). */
void dp_trainset_reader_cfg(const dp_trainset *ts, const dp_config *cfg, dp_reader_cfg *rc);

/* The checks dp_trainset_load makes of a dataset file against the model, for
 * the commands that run a trained model over one (evaluate): info (from
 * dp_data_read_info) must fit the model's input and output as above, and gets
 * its n_tokens. *classes receives the class count the labels must fall in (0:
 * not class ids). Returns 0 or -1 with err set. */
int dp_trainset_check_file(dp_data_info *info, const dp_config *cfg, int k, int positions,
                           int *classes, dp_error *err);

void dp_trainset_free(dp_trainset *ts);

#endif
