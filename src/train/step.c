/* step.c - one global step, the same bits on any number of ranks in exact mode. */
#include "train/step.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "core/proc_age.h"
#include "core/rng.h"
#include "core/timeline.h"

void dp_step_init(dp_stepper *st, const dp_trainset *ts, const dp_model *m, dp_reduction mode,
                  unsigned long long seed, size_t bucket_bytes, dp_grad_shm *share,
                  dp_reader *reader) {
    memset(st, 0, sizeof *st);
    st->seed = seed;
    st->reader = reader;
    st->share = share;
    st->n_my = ts->n_shards;
    st->shard_row = DP_CALLOC((size_t)st->n_my, sizeof *st->shard_row);
    st->perm = DP_CALLOC((size_t)st->n_my, sizeof *st->perm);
    st->micro_sums = DP_CALLOC((size_t)st->n_my, sizeof *st->micro_sums);
    st->micro_grads = DP_CALLOC((size_t)st->n_my, sizeof *st->micro_grads);
    int max_micro_rows = 0;
    size_t row = 0;
    for (int k = 0; k < st->n_my; k++) {
        int s = ts->first_shard + k;
        st->shard_row[k] = row;
        /* Streamed, the reader keeps the permutations. */
        if (!reader) st->perm[k] = DP_MALLOC((ts->plan.count[s] + 1) * sizeof(uint32_t));
        row += ts->plan.count[s];
        if (ts->plan.rows_per_step[s] > max_micro_rows) max_micro_rows = ts->plan.rows_per_step[s];
    }
    st->xb = DP_MALLOC((size_t)max_micro_rows * ts->width * sizeof(float));
    st->yb = DP_MALLOC((size_t)max_micro_rows * (size_t)ts->info.y_cols * sizeof(float));
    st->row_ids = DP_MALLOC((size_t)max_micro_rows * sizeof(uint64_t));
    st->dout = DP_MALLOC((size_t)max_micro_rows * (size_t)dp_model_output_width(m) * sizeof(float));
    /* Exact mode sums micro-batches as separate terms, so all but the last (which
     * stays in the arena) are kept; fast mode just accumulates them. Shared,
     * the segment has their arenas. */
    if (mode == DP_REDUCE_EXACT && st->n_my > 1 && !share)
        st->gstore = DP_MALLOC((size_t)(st->n_my - 1) * m->n_params * sizeof(float));
    for (int k = 0; k < st->n_my; k++)
        st->micro_grads[k] = share                            ? dp_grad_shm_grads(share, k)
                             : k + 1 < st->n_my && st->gstore ? st->gstore + (size_t)k * m->n_params
                                                              : m->grads;
    dp_grad_buckets_init(&st->red, m, mode, ts->plan.shards, bucket_bytes, st->seconds);
}

void dp_step_shuffle(dp_stepper *st, const dp_trainset *ts, int epoch) {
    st->epoch = epoch;
    for (int k = 0; !st->reader && k < st->n_my; k++) {
        int s = ts->first_shard + k;
        dp_rng_permute(dp_rng_make_key(st->seed, 0x5eed, (uint64_t)epoch, (uint64_t)s), st->perm[k],
                       ts->plan.count[s]);
    }
}

/* Gathers owned micro-batch k of step t into xb/yb; returns its row count. */
static int step_gather(dp_stepper *st, const dp_trainset *ts, int k, int t) {
    size_t b, e;
    dp_shard_plan_step(&ts->plan, ts->first_shard + k, t, &b, &e);
    int rows = (int)(e - b);
    const dp_rows *tr = &ts->train;
    size_t w = ts->width, yc = (size_t)ts->info.y_cols;
    int shard = ts->first_shard + k;
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_DATA, k);
    if (st->reader) {
        if (k == 0) {
            dp_read_pos want = {DP_READ_TRAIN, st->epoch, t};
            st->slot = dp_reader_get(st->reader, want, &st->read_err);
        }
        /* Labels and row ids are used where they are in the slot
         * (dp_step_run releases it). Features come as stored and are widened
         * into xb here, just before the step reads them, as rows held in
         * memory are copied there. A failed read trains on nothing, and the
         * step's flags end the run. */
        const dp_read_slot *sl = st->slot;
        rows = sl ? sl->rows[k] : 0;
        size_t off = sl ? (size_t)sl->off[k] : 0;
        st->xin = sl ? sl->x + off * w : st->xb;
        st->yin = sl ? sl->y + off * yc : st->yb;
        st->ids_in = sl ? sl->ids + off : st->row_ids;
        if (sl && sl->raw && rows > 0) {
            st->xin = st->xb;
            if (dp_data_widen_rows(&ts->info, sl->x, sl->raw_row + off, sl->ids + off, (size_t)rows,
                                   ts->mean, ts->std, st->xb, &st->read_err)) {
                st->read_failed = 1;
                rows = 0;
            }
        }
    } else {
        st->xin = st->xb;
        st->yin = st->yb;
        st->ids_in = st->row_ids;
    }
    for (int r = 0; !st->reader && r < rows; r++) {
        size_t in_shard = st->perm[k][b + (size_t)r];
        size_t src = st->shard_row[k] + in_shard;
        st->row_ids[r] = ts->plan.offset[shard] + in_shard;
        memcpy(st->xb + (size_t)r * w, tr->x + src * w, w * sizeof(float));
        memcpy(st->yb + (size_t)r * yc, tr->y + src * yc, yc * sizeof(float));
    }
    if (!st->first_rows) st->first_rows = dp_process_age();
    dp_tl_end(DP_TL_DATA, k);
    st->seconds[DP_TIME_DATA] += dp_comm_time() - t0;
    return rows;
}

int dp_step_run(dp_stepper *st, const dp_comm *c, const dp_trainset *ts, dp_model *m, dp_optim *o,
                int t, long long gstep, dp_loss_sums *sums, int *stop) {
    size_t n = m->n_params;
    int yc = ts->info.y_cols;
    /* The mean is over loss terms: rows, or rows * positions (loss.h). */
    size_t terms = dp_shard_plan_step_rows(&ts->plan, t) * (size_t)m->positions;
    dp_fwd_ctx ctx = {.training = 1, .seed = st->seed, .step = gstep, .row_ids = st->row_ids};
    float *arena = m->grads;
    memset(arena, 0, n * sizeof(float));
    for (int k = 0; k < st->n_my; k++) {
        int last = k + 1 == st->n_my;
        int rows = step_gather(st, ts, k, t);
        if (st->reader && (!st->slot || st->read_failed)) *stop |= DP_STEP_DATA_ERROR;
        /* Exact mode keeps each micro-batch's gradient apart: backward writes
         * straight into its own buffer (layers take the arena from m). */
        if (st->micro_grads[k] != arena) {
            m->grads = (float *)st->micro_grads[k];
            memset(m->grads, 0, n * sizeof(float));
        }
        double t0 = dp_comm_time();
        /* Time the backward hook spends reducing is not compute. */
        double hook0 = st->seconds[DP_TIME_COMM] + st->seconds[DP_TIME_REDUCE];
        st->micro_sums[k] = (dp_loss_sums){0};
        if (rows > 0) {
            dp_tl_begin(DP_TL_FORWARD, k);
            ctx.row_ids = st->ids_in;
            const float *out = dp_model_forward(m, st->xin, rows, &ctx);
            dp_tl_end(DP_TL_FORWARD, k);
            dp_tl_begin(DP_TL_LOSS, k);
            st->micro_sums[k] =
                dp_loss_forward_backward(m->loss, m->fused, out, st->yin, rows * m->positions,
                                         m->classes, yc / m->positions, st->dout);
            dp_tl_end(DP_TL_LOSS, k);
        }
        dp_tl_begin(DP_TL_BACKWARD, k);
        if (last && !st->share) {
            /* The reduction starts bucket by bucket inside this backward. */
            dp_grad_buckets_begin(&st->red, c, m->grads, st->micro_grads, st->n_my, st->micro_sums,
                                  terms, *stop);
            if (rows > 0)
                dp_model_backward_hooked(m, st->xin, st->dout, rows, dp_grad_buckets_layer_done,
                                         &st->red);
        } else if (rows > 0) {
            dp_model_backward(m, st->xin, st->dout, rows);
        }
        dp_tl_end(DP_TL_BACKWARD, k);
        m->grads = arena;
        double hook = st->seconds[DP_TIME_COMM] + st->seconds[DP_TIME_REDUCE] - hook0;
        st->seconds[DP_TIME_COMPUTE] += dp_comm_time() - t0 - hook;
    }
    if (st->reader) dp_reader_release(st->reader);
    if (st->share) {
        dp_tl_begin(DP_TL_SHARED, 0);
        int rc = dp_grad_shm_step(st->share, m, o, st->micro_sums, terms, sums, stop, st->seconds);
        dp_tl_end(DP_TL_SHARED, 0);
        return rc;
    }
    dp_tl_begin(DP_TL_REDUCE, 0);
    int failed = dp_grad_buckets_finish(&st->red, sums, stop);
    dp_tl_end(DP_TL_REDUCE, 0);
    if (failed) return -1;
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_OPTIMIZER, 0);
    /* Every rank holds the same summed gradient, so all agree on a non-finite one. */
    int bad = dp_optim_step(o, m->params, m->grads, st->red.grad_scale);
    dp_tl_end(DP_TL_OPTIMIZER, 0);
    st->seconds[DP_TIME_OPTIM] += dp_comm_time() - t0;
    return bad;
}

void dp_step_free(dp_stepper *st) {
    for (int k = 0; k < st->n_my; k++) free(st->perm[k]);
    dp_grad_buckets_free(&st->red);
    free(st->perm);
    free(st->shard_row);
    free(st->xb);
    free(st->yb);
    free(st->row_ids);
    free(st->dout);
    free(st->gstore);
    free(st->micro_grads);
    free(st->micro_sums);
    memset(st, 0, sizeof *st);
}
