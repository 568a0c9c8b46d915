/* trainset.h - (private) the rows one rank trains on, and its share of the held-out rows. */
#ifndef DPTRAIN_TRAINSET_H
#define DPTRAIN_TRAINSET_H

#include "core/comm.h"
#include "dptrain/config.h"
#include "data/data.h"
#include "data/shard.h"

typedef struct dp_trainset {
    dp_data_info info;
    dp_shard_plan plan;
    int first_shard, n_shards;    /* the shards this rank owns */
    dp_rows train;                /* rows of this rank's shards, shard after shard */
    dp_rows val, test;            /* this rank's share of the held-out rows (eval.h) */
    size_t val_first, test_first; /* their first row within the held-out set */
    size_t n_val_total;           /* validation rows in all (known on every rank) */
    float *mean, *std;            /* [width] standardization statistics, NULL when off */
    size_t width;                 /* floats per input row */
} dp_trainset;

/* Collective. Opens cfg's dataset, checks it against the model's input shape and
 * output: k values at each of `positions` positions (model.h), splits validation rows off the end of /train (Keras's
 * validation_split), cuts the rest into shards, reads this rank's rows and its
 * share of the validation and test rows, and standardizes with statistics summed per shard
 * in shard order, so they are the same bits for any number of ranks. int32 token ids
 * and an embedding first layer require each other; every rank checks the ids of the rows
 * it reads against the embedding's input_dim, and ids are never standardized.
 * Errors are agreed: returns -1 on every rank if any rank failed. */
int dp_trainset_load(dp_trainset *ts, const dp_comm *c, const dp_config *cfg, int k, int positions,
                     dp_error *err);

/* The checks dp_trainset_load makes of a dataset file against the model, for
 * the commands that run a trained model over one (evaluate): info (from
 * dp_data_read_info) must fit the model's input and output as above, and gets
 * its n_tokens. *classes receives the class count the labels must fall in (0:
 * not class ids). Returns 0 or -1 with err set. */
int dp_trainset_check_file(dp_data_info *info, const dp_config *cfg, int k, int positions,
                           int *classes, dp_error *err);

void dp_trainset_free(dp_trainset *ts);

#endif
