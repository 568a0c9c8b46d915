/* trainset.c - loading, sharding and standardizing one rank's data. */
#include "data/trainset.h"
#include "core/alloc.h"

#include "train/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Classes the labels must fall in, or 0 when labels are not class ids. */
static int trainset_classes(const dp_config *cfg, int k) {
    switch (cfg->loss) {
    case DP_LOSS_BCE: return k == 1 ? 2 : 0;
    case DP_LOSS_CE:
    case DP_LOSS_SPARSE_CE: return k;
    default: return 0;
    }
}

/* A sequence output [T, k] is trained on one class id per position: int32
 * targets [N, T]. Any other pairing is named with the fix. */
static int trainset_check_positions(const dp_trainset *ts, int k, int positions, dp_error *err) {
    int y = ts->info.y_cols;
    if (positions > 1 && (!ts->info.y_is_int || y != positions))
        return dp_error_set(err, ts->info.path,
                            "the model outputs a sequence [%d, %d], which needs int32 class ids "
                            "[N, %d] in /train/y, but it holds %s [N, %d]",
                            positions, k, positions, ts->info.y_is_int ? "int32" : "float32", y);
    if (positions == 1 && ts->info.y_is_int && y > 1)
        return dp_error_set(err, ts->info.path,
                            "/train/y holds int32 [N, %d], one class id per position, but the "
                            "model outputs one prediction [%d] per row; end with "
                            "return_sequences: true or a dense layer on the sequence",
                            y, k);
    return 0;
}

/* Token ids and an embedding first layer go together: int32 x is read as ids
 * (checked against input_dim), float32 x as features. */
static int trainset_check_tokens(dp_trainset *ts, const dp_config *cfg, dp_error *err) {
    const dp_layer_cfg *first = &cfg->layers[0];
    int embedding = cfg->n_layers > 0 && strcmp(first->type, "embedding") == 0;
    char where[256];
    dp_data_where(where, sizeof where, ts->info.path, "train", "x");
    if (embedding && !ts->info.x_is_int)
        return dp_error_set(err, where,
                            "x is float32, but the model's first layer is embedding, which takes "
                            "int32 token ids [N, T]");
    if (!embedding && ts->info.x_is_int)
        return dp_error_set(err, where,
                            "x holds int32 token ids, but the model's first layer is %s; token ids "
                            "need an embedding first layer (or store x as float32)",
                            cfg->n_layers > 0 ? first->type : "missing");
    ts->info.n_tokens = embedding ? first->input_dim : 0;
    return 0;
}

static int trainset_check_shapes(dp_trainset *ts, const dp_config *cfg, int k, int positions,
                                 dp_error *err) {
    char a[64], b[64];
    if (trainset_check_tokens(ts, cfg, err)) return -1;
    if (!dp_shape_equal(&ts->info.x_shape, &cfg->input))
        return dp_error_set(err, ts->info.path, "/train/x rows have shape %s but model.input is %s",
                            dp_shape_format(&ts->info.x_shape, a, sizeof a),
                            dp_shape_format(&cfg->input, b, sizeof b));
    if (trainset_check_positions(ts, k, positions, err)) return -1;
    int y = ts->info.y_cols;
    if (positions > 1) return 0;
    if (ts->info.y_is_int) {
        if (cfg->loss == DP_LOSS_MSE)
            return dp_error_set(err, ts->info.path,
                                "/train/y holds int32 class ids, but loss mse needs float32 "
                                "targets [N, %d]",
                                k);
        if (cfg->loss == DP_LOSS_BCE && k != 1)
            return dp_error_set(err, ts->info.path,
                                "/train/y holds class ids; binary_crossentropy with %d outputs "
                                "needs float32 targets [N, %d]",
                                k, k);
    } else if (y != k || cfg->loss == DP_LOSS_SPARSE_CE) {
        if (cfg->loss == DP_LOSS_SPARSE_CE)
            return dp_error_set(err, ts->info.path,
                                "/train/y is float32 [N, %d], but sparse_categorical_crossentropy "
                                "needs int32 class ids [N]",
                                y);
        return dp_error_set(err, ts->info.path,
                            "/train/y has %d columns but the model has %d outputs", y, k);
    }
    return 0;
}

/* Reads this rank's training rows and its share of the held-out rows. */
static int trainset_read(dp_trainset *ts, const dp_comm *c, size_t split_at, int classes,
                         dp_error *err) {
    const dp_shard_plan *p = &ts->plan;
    size_t first = p->offset[ts->first_shard], count = 0;
    for (int s = 0; s < ts->n_shards; s++) count += p->count[ts->first_shard + s];
    if (dp_data_read_rows(&ts->info, "train", first, count, classes, &ts->train, err)) return -1;
    if (ts->n_val_total) {
        /* validation_split's rows are the tail of /train; otherwise /val. */
        int tail = split_at < ts->info.n_train;
        dp_eval_split_rows(ts->n_val_total, c->rank, c->size, &ts->val_first, &count);
        if (dp_data_read_rows(&ts->info, tail ? "train" : "val",
                              (tail ? split_at : 0) + ts->val_first, count, classes, &ts->val, err))
            return -1;
    }
    if (ts->info.has_test) {
        dp_eval_split_rows(ts->info.n_test, c->rank, c->size, &ts->test_first, &count);
        if (dp_data_read_rows(&ts->info, "test", ts->test_first, count, classes, &ts->test, err))
            return -1;
    }
    return 0;
}

/* Mean and std from per-shard sums gathered from every rank and added in shard
 * order: the same bits whatever the number of ranks. */
static void trainset_standardize(dp_trainset *ts, const dp_comm *c) {
    size_t w = ts->width, per = 2 * w;
    double *mine = DP_CALLOC((size_t)ts->n_shards * per, sizeof(double));
    size_t row = 0;
    for (int s = 0; s < ts->n_shards; s++) {
        size_t n = ts->plan.count[ts->first_shard + s];
        dp_data_sum_columns(&ts->train, row, n, mine + (size_t)s * per);
        row += n;
    }
    double *all = DP_MALLOC((size_t)ts->plan.shards * per * sizeof(double));
    dp_comm_allgather(c, mine, all, (size_t)ts->n_shards * per * sizeof(double));
    double *sum = DP_CALLOC(per, sizeof(double));
    for (int s = 0; s < ts->plan.shards; s++)
        for (size_t j = 0; j < per; j++) sum[j] += all[(size_t)s * per + j];
    ts->mean = DP_MALLOC(w * sizeof(float));
    ts->std = DP_MALLOC(w * sizeof(float));
    dp_data_stats_from_sums(sum, ts->plan.n_rows, w, ts->mean, ts->std);
    dp_data_standardize(&ts->train, ts->mean, ts->std);
    if (ts->val.n) dp_data_standardize(&ts->val, ts->mean, ts->std);
    if (ts->test.n) dp_data_standardize(&ts->test, ts->mean, ts->std);
    free(mine);
    free(all);
    free(sum);
}

int dp_trainset_load(dp_trainset *ts, const dp_comm *c, const dp_config *cfg, int k, int positions,
                     dp_error *err) {
    memset(ts, 0, sizeof *ts);
    int classes = trainset_classes(cfg, k);
    size_t split_at = 0;
    int shards = cfg->shards ? cfg->shards : c->size;
    if (dp_data_read_info(cfg->data_path, &ts->info, err) == 0 &&
        trainset_check_shapes(ts, cfg, k, positions, err) == 0) {
        ts->info.scale = cfg->data_scale;
        ts->info.offset = cfg->data_offset;
        ts->width = dp_shape_numel(&ts->info.x_shape);
        /* Keras: split_at = int(N * (1 - validation_split)); validation is the tail. */
        split_at = (size_t)((double)ts->info.n_train * (1.0 - cfg->validation_split));
        ts->n_val_total = ts->info.n_train - split_at;
        if (ts->n_val_total == 0 && ts->info.has_val) ts->n_val_total = ts->info.n_val;
        if (shards % c->size != 0)
            dp_error_set(err, cfg->source,
                         "data.shards %d is not a multiple of the number of ranks %d", shards,
                         c->size);
        else if (dp_shard_plan_make(&ts->plan, split_at, shards, cfg->batch_size, err) == 0)
            dp_shard_plan_rank(&ts->plan, c->rank, c->size, &ts->first_shard, &ts->n_shards);
    }
    if (dp_comm_agree(c, err)) goto fail;
    trainset_read(ts, c, split_at, classes, err);
    if (dp_comm_agree(c, err)) goto fail;
    /* Token ids name table rows: they are never standardized, whatever
     * data.standardize says (and the checkpoint then holds no statistics). */
    if (cfg->standardize && !ts->info.x_is_int) trainset_standardize(ts, c);
    return 0;
fail:
    dp_trainset_free(ts);
    return -1;
}

int dp_trainset_check_file(dp_data_info *info, const dp_config *cfg, int k, int positions,
                           int *classes, dp_error *err) {
    dp_trainset ts = {.info = *info};
    int rc = trainset_check_shapes(&ts, cfg, k, positions, err);
    info->n_tokens = ts.info.n_tokens;
    info->scale = cfg->data_scale;
    info->offset = cfg->data_offset;
    *classes = trainset_classes(cfg, k);
    return rc;
}

void dp_trainset_free(dp_trainset *ts) {
    dp_shard_plan_free(&ts->plan);
    dp_data_rows_free(&ts->train);
    dp_data_rows_free(&ts->val);
    dp_data_rows_free(&ts->test);
    free(ts->mean);
    free(ts->std);
    memset(ts, 0, sizeof *ts);
}
