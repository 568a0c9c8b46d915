/* trainset.c - loading, sharding and standardizing one rank's data. */
#include "data/trainset.h"
#include "core/alloc.h"

#include "core/h5lock.h"
#include "core/memlimit.h"
#include "train/eval.h"

#include <stdint.h>
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

/* Where this rank's share of the held-out rows is; validation_split's rows
 * are the tail of /train, otherwise /val. */
static void trainset_heldout(dp_trainset *ts, const dp_comm *c, size_t split_at) {
    size_t count = 0;
    if (ts->n_val_total) {
        int tail = split_at < ts->info.n_train;
        dp_eval_split_rows(ts->n_val_total, c->rank, c->size, &ts->val_first, &count);
        ts->val_src =
            (dp_read_heldout){tail ? "train" : "val", (tail ? split_at : 0) + ts->val_first, count};
    }
    if (ts->info.has_test) {
        dp_eval_split_rows(ts->info.n_test, c->rank, c->size, &ts->test_first, &count);
        ts->test_src = (dp_read_heldout){"test", ts->test_first, count};
    }
}

static size_t trainset_train_rows(const dp_trainset *ts) {
    size_t count = 0;
    for (int s = 0; s < ts->n_shards; s++) count += ts->plan.count[ts->first_shard + s];
    return count;
}

/* Reads this rank's training rows and its share of the held-out rows. */
static int trainset_read(dp_trainset *ts, dp_error *err) {
    size_t first = ts->plan.offset[ts->first_shard], count = trainset_train_rows(ts);
    if (dp_data_read_rows(&ts->info, "train", first, count, ts->classes, &ts->train, err))
        return -1;
    if (ts->n_val_total && dp_data_read_rows(&ts->info, ts->val_src.split, ts->val_src.first,
                                             ts->val_src.count, ts->classes, &ts->val, err))
        return -1;
    if (ts->info.has_test && dp_data_read_rows(&ts->info, "test", ts->test_src.first,
                                               ts->test_src.count, ts->classes, &ts->test, err))
        return -1;
    return 0;
}

/* Collective. Decides whether this run streams: data.in_memory, or under auto
 * whether any rank's rows would exceed the limit (data.memory_mib, else a
 * quarter of the node's memory shared by the ranks on it). */
static void trainset_decide(dp_trainset *ts, const dp_comm *c, const dp_config *cfg) {
    size_t rows = trainset_train_rows(ts) + ts->val_src.count + ts->test_src.count;
    ts->bytes = rows * (ts->width + (size_t)ts->info.y_cols) * sizeof(float);
    if (cfg->in_memory != DP_IN_MEMORY_AUTO) {
        ts->streamed = cfg->in_memory == DP_IN_MEMORY_FALSE;
        return;
    }
    if (cfg->memory_mib > 0) {
        ts->limit = (size_t)cfg->memory_mib << 20;
    } else {
        int per_node = dp_comm_node_size(c);
        ts->limit = (size_t)(dp_memory_limit_bytes() / 4 / (uint64_t)per_node);
    }
    double over = ts->bytes > ts->limit ? 1 : 0;
    dp_comm_max_f64(c, &over, 1);
    ts->streamed = over > 0;
}

/* Adds the column sums of this rank's shards, each into its own row of mine
 * [n_shards, 2 * width], reading the rows block by block in row order: the
 * sums dp_data_sum_columns makes of the rows in memory, to the bit. */
static int trainset_sum_streamed(dp_trainset *ts, double *mine, dp_error *err) {
    size_t w = ts->width, yc = (size_t)ts->info.y_cols;
    size_t block = ((size_t)8 << 20) / ((w + yc) * sizeof(float)) + 1;
    dp_rows r = {.x_width = w, .y_cols = (int)yc};
    r.x = DP_MALLOC(block * w * sizeof(float));
    r.y = DP_MALLOC(block * yc * sizeof(float));
    dp_data_file f;
    dp_h5_lock();
    int rc = dp_data_open(&f, &ts->info, "train", block, err);
    for (int s = 0; rc == 0 && s < ts->n_shards; s++) {
        size_t first = ts->plan.offset[ts->first_shard + s],
               n = ts->plan.count[ts->first_shard + s];
        for (size_t i = 0; rc == 0 && i < n; i += block) {
            r.n = n - i < block ? n - i : block;
            rc = dp_data_read_range(&f, first + i, r.n, ts->classes, r.x, r.y, err);
            if (rc == 0) dp_data_sum_columns(&r, 0, r.n, mine + (size_t)s * 2 * w);
        }
    }
    dp_data_close(&f);
    dp_h5_unlock();
    r.n = 0;
    dp_data_rows_free(&r);
    return rc;
}

/* Collective. Mean and std from per-shard sums gathered from every rank and
 * added in shard order: the same bits whatever the number of ranks. */
static int trainset_stats(dp_trainset *ts, const dp_comm *c, dp_error *err) {
    size_t w = ts->width, per = 2 * w;
    double *mine = DP_CALLOC((size_t)ts->n_shards * per, sizeof(double));
    size_t row = 0;
    if (ts->streamed) {
        trainset_sum_streamed(ts, mine, err);
    } else {
        for (int s = 0; s < ts->n_shards; s++) {
            size_t n = ts->plan.count[ts->first_shard + s];
            dp_data_sum_columns(&ts->train, row, n, mine + (size_t)s * per);
            row += n;
        }
    }
    if (dp_comm_agree(c, err)) {
        free(mine);
        return -1;
    }
    double *all = DP_MALLOC((size_t)ts->plan.shards * per * sizeof(double));
    dp_comm_allgather(c, mine, all, (size_t)ts->n_shards * per * sizeof(double));
    double *sum = DP_CALLOC(per, sizeof(double));
    for (int s = 0; s < ts->plan.shards; s++)
        for (size_t j = 0; j < per; j++) sum[j] += all[(size_t)s * per + j];
    dp_data_stats_from_sums(sum, ts->plan.n_rows, w, ts->mean, ts->std);
    free(mine);
    free(all);
    free(sum);
    return 0;
}

/* Standardizes the rows in memory (the reader does it for streamed rows). */
static void trainset_standardize(dp_trainset *ts) {
    if (ts->streamed) return;
    dp_data_standardize(&ts->train, ts->mean, ts->std);
    if (ts->val.n) dp_data_standardize(&ts->val, ts->mean, ts->std);
    if (ts->test.n) dp_data_standardize(&ts->test, ts->mean, ts->std);
}

int dp_trainset_load(dp_trainset *ts, const dp_comm *c, const dp_config *cfg, int k, int positions,
                     const dp_trainset_stats *known, dp_error *err) {
    memset(ts, 0, sizeof *ts);
    ts->classes = trainset_classes(cfg, k);
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
    trainset_heldout(ts, c, split_at);
    trainset_decide(ts, c, cfg);
    if (!ts->streamed) trainset_read(ts, err);
    if (dp_comm_agree(c, err)) goto fail;
    /* Token ids name table rows: they are never standardized, whatever
     * data.standardize says (and the checkpoint then holds no statistics). */
    if (cfg->standardize && !ts->info.x_is_int) {
        ts->mean = DP_MALLOC(ts->width * sizeof(float));
        ts->std = DP_MALLOC(ts->width * sizeof(float));
        double t0 = dp_comm_time();
        if (known && known->n == ts->width) {
            memcpy(ts->mean, known->mean, ts->width * sizeof(float));
            memcpy(ts->std, known->std, ts->width * sizeof(float));
            ts->stats_known = 1;
        } else if (trainset_stats(ts, c, err)) {
            goto fail;
        }
        ts->stats_seconds = dp_comm_time() - t0;
        trainset_standardize(ts);
    }
    return 0;
fail:
    dp_trainset_free(ts);
    return -1;
}

void dp_trainset_reader_cfg(const dp_trainset *ts, const dp_config *cfg, dp_reader_cfg *rc) {
    *rc = (dp_reader_cfg){.info = &ts->info,
                          .plan = &ts->plan,
                          .first_shard = ts->first_shard,
                          .n_shards = ts->n_shards,
                          .seed = cfg->seed,
                          .epochs = cfg->epochs,
                          .n_classes = ts->classes,
                          .mean = ts->mean,
                          .std = ts->std,
                          .val = ts->val_src,
                          .test = ts->test_src,
                          .prefetch = cfg->prefetch_steps};
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
