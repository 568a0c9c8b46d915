/* step.c - one global step, the same bits on any number of ranks in exact mode. */
#include "step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/reduce.h"
#include "dptrain/rng.h"

void step_init(dp_stepper *st, const dp_trainset *ts, const dp_model *m, dp_reduction mode,
               unsigned long long seed) {
    memset(st, 0, sizeof *st);
    st->mode = mode;
    st->seed = seed;
    st->n_my = ts->n_shards;
    st->shard_row = DP_CALLOC((size_t)st->n_my, sizeof *st->shard_row);
    st->perm = DP_CALLOC((size_t)st->n_my, sizeof *st->perm);
    st->mb = DP_CALLOC((size_t)st->n_my, sizeof *st->mb);
    int max_mb = 0;
    size_t row = 0;
    for (int k = 0; k < st->n_my; k++) {
        int s = ts->first_shard + k;
        st->shard_row[k] = row;
        st->perm[k] = DP_MALLOC((ts->plan.count[s] + 1) * sizeof(uint32_t));
        row += ts->plan.count[s];
        if (ts->plan.mb[s] > max_mb) max_mb = ts->plan.mb[s];
    }
    st->xb = DP_MALLOC((size_t)max_mb * ts->width * sizeof(float));
    st->yb = DP_MALLOC((size_t)max_mb * (size_t)ts->train.y_cols * sizeof(float));
    st->row_ids = DP_MALLOC((size_t)max_mb * sizeof(uint64_t));
    st->dout = DP_MALLOC((size_t)max_mb * (size_t)model_output_width(m) * sizeof(float));
    if (mode == DP_REDUCE_EXACT) {
        if (st->n_my > 1) st->gstore = DP_MALLOC((size_t)st->n_my * m->n_params * sizeof(float));
        st->acc = DP_MALLOC((m->n_params + 2) * sizeof(int64_t));
    }
    for (int i = 0; i < m->n_layers; i++) st->n_tensors += m->layers[i].n_params;
    st->t_off = DP_MALLOC((size_t)st->n_tensors * sizeof(size_t));
    st->t_len = DP_MALLOC((size_t)st->n_tensors * sizeof(size_t));
    st->maxabs = DP_MALLOC(((size_t)st->n_tensors + 2) * sizeof(double));
    int j = 0;
    for (int i = 0; i < m->n_layers; i++)
        for (int p = 0; p < m->layers[i].n_params; p++, j++) {
            st->t_off[j] = m->layers[i].param_offset + m->layers[i].params[p].offset;
            st->t_len[j] = m->layers[i].params[p].numel;
        }
}

void step_shuffle(dp_stepper *st, const dp_trainset *ts, int epoch) {
    for (int k = 0; k < st->n_my; k++) {
        int s = ts->first_shard + k;
        rng_permute(rng_make_key(st->seed, 0x5eed, (uint64_t)epoch, (uint64_t)s), st->perm[k],
                    ts->plan.count[s]);
    }
}

/* Forward and backward of owned micro-batch k of step t; gradients are added
 * into m->grads. Returns the micro-batch's loss sums (rows 0 when empty). */
static dp_loss_sums step_micro(dp_stepper *st, const dp_trainset *ts, dp_model *m, int k, int t,
                               long long gstep) {
    dp_loss_sums none = {0};
    size_t b, e;
    shard_plan_step(&ts->plan, ts->first_shard + k, t, &b, &e);
    int rows = (int)(e - b);
    if (rows == 0) return none;
    const dp_rows *tr = &ts->train;
    size_t yc = (size_t)tr->y_cols;
    int shard = ts->first_shard + k;
    double t0 = comm_time();
    for (int r = 0; r < rows; r++) {
        size_t in_shard = st->perm[k][b + (size_t)r];
        size_t src = st->shard_row[k] + in_shard;
        st->row_ids[r] = ts->plan.offset[shard] + in_shard;
        memcpy(st->xb + (size_t)r * tr->x_width, tr->x + src * tr->x_width,
               tr->x_width * sizeof(float));
        memcpy(st->yb + (size_t)r * yc, tr->y + src * yc, yc * sizeof(float));
    }
    double t1 = comm_time();
    int kout = model_output_width(m);
    dp_fwd_ctx ctx = {.training = 1, .seed = st->seed, .step = gstep, .row_ids = st->row_ids};
    const float *out = model_forward(m, st->xb, rows, &ctx);
    dp_loss_sums s = loss_forward_backward(m->loss, m->fused, out, st->yb, rows, kout,
                                           tr->y_cols, st->dout);
    model_backward(m, st->xb, st->dout, rows);
    st->seconds[DP_TIME_DATA] += t1 - t0;
    st->seconds[DP_TIME_COMPUTE] += comm_time() - t1;
    return s;
}

/* Exact mode: fixed-point sums with per-tensor scales agreed by a max, so the
 * integer totals, and the gradient made from them, ignore summation order.
 * mb[n_my] holds each micro-batch's loss sums; grads of micro-batch k are at
 * gstore + k * n_params (or m->grads when there is one). */
static int step_reduce_exact(dp_stepper *st, const dp_comm *c, const dp_trainset *ts,
                             dp_model *m, const dp_loss_sums *mb, size_t rows,
                             dp_loss_sums *out, int *stop) {
    size_t n = m->n_params;
    const float *g0 = st->n_my > 1 ? st->gstore : m->grads;
    int nt = st->n_tensors;
    double tr = comm_time();
    for (int j = 0; j <= nt; j++) st->maxabs[j] = 0;
    for (int k = 0; k < st->n_my; k++) {
        const float *g = g0 + (size_t)k * n;
        for (int j = 0; j < nt; j++) {
            double a = reduce_max_abs(g + st->t_off[j], st->t_len[j]);
            if (!(a <= st->maxabs[j])) st->maxabs[j] = a;
        }
        double l = fabs(mb[k].loss);
        if (!(l <= st->maxabs[nt])) st->maxabs[nt] = l;
    }
    st->maxabs[nt + 1] = *stop ? 1.0 : 0.0;
    double t0 = comm_time();
    st->seconds[DP_TIME_REDUCE] += t0 - tr;
    comm_max_f64(c, st->maxabs, (size_t)nt + 2);
    st->seconds[DP_TIME_COMM] += comm_time() - t0;
    *stop = st->maxabs[nt + 1] > 0;
    for (int j = 0; j <= nt; j++)
        if (!isfinite(st->maxabs[j])) return -1;
    /* Every shard adds one term, so S bounds the number of terms of each sum. */
    long terms = ts->plan.shards;
    tr = comm_time();
    memset(st->acc, 0, (n + 2) * sizeof(int64_t));
    int el = reduce_pick_exponent(st->maxabs[nt], terms);
    for (int k = 0; k < st->n_my; k++) {
        const float *g = g0 + (size_t)k * n;
        for (int j = 0; j < nt; j++)
            reduce_accumulate(st->acc + st->t_off[j], g + st->t_off[j], st->t_len[j],
                              reduce_pick_exponent(st->maxabs[j], terms));
        st->acc[n] += (int64_t)llrint(ldexp(mb[k].loss, el));
        st->acc[n + 1] += mb[k].correct;
    }
    double t1 = comm_time();
    st->seconds[DP_TIME_REDUCE] += t1 - tr;
    comm_sum_i64(c, st->acc, n + 2);
    double t2 = comm_time();
    st->seconds[DP_TIME_COMM] += t2 - t1;
    for (int j = 0; j < nt; j++)
        reduce_finish(m->grads + st->t_off[j], st->acc + st->t_off[j], st->t_len[j],
                      reduce_pick_exponent(st->maxabs[j], terms), 1.0 / (double)rows);
    st->seconds[DP_TIME_REDUCE] += comm_time() - t2;
    out->loss = ldexp((double)st->acc[n], -el);
    out->correct = st->acc[n + 1];
    out->rows = (long)rows;
    return 0;
}

/* Fast mode: one float allreduce of the rank's summed gradient. */
static int step_reduce_fast(dp_stepper *st, const dp_comm *c, dp_model *m,
                            const dp_loss_sums *mine, size_t rows, dp_loss_sums *out, int *stop) {
    double tot[3] = {mine->loss, (double)mine->correct, *stop ? 1.0 : 0.0};
    double t0 = comm_time();
    comm_sum_f32(c, m->grads, m->n_params);
    comm_sum_f64(c, tot, 3);
    double t1 = comm_time();
    st->seconds[DP_TIME_COMM] += t1 - t0;
    *stop = tot[2] > 0;
    if (!isfinite(tot[0])) return -1;
    const float inv = (float)(1.0 / (double)rows);
    int bad = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        m->grads[i] *= inv;
        bad |= !isfinite(m->grads[i]);
    }
    st->seconds[DP_TIME_REDUCE] += comm_time() - t1;
    out->loss = tot[0];
    out->correct = (long)tot[1];
    out->rows = (long)rows;
    return bad ? -1 : 0;
}

int step_run(dp_stepper *st, const dp_comm *c, const dp_trainset *ts, dp_model *m,
             dp_optim *o, int t, long long gstep, dp_loss_sums *sums, int *stop) {
    size_t n = m->n_params;
    dp_loss_sums mine = {0};
    dp_loss_sums *mb = st->mb;
    memset(m->grads, 0, n * sizeof(float));
    for (int k = 0; k < st->n_my; k++) {
        if (st->gstore) memset(m->grads, 0, n * sizeof(float));
        mb[k] = step_micro(st, ts, m, k, t, gstep);
        if (st->gstore) memcpy(st->gstore + (size_t)k * n, m->grads, n * sizeof(float));
        mine.loss += mb[k].loss;
        mine.correct += mb[k].correct;
    }
    size_t rows = shard_plan_step_rows(&ts->plan, t);
    int rc = st->mode == DP_REDUCE_EXACT ? step_reduce_exact(st, c, ts, m, mb, rows, sums, stop)
                                         : step_reduce_fast(st, c, m, &mine, rows, sums, stop);
    if (rc) return -1;
    double t0 = comm_time();
    optim_step(o, m->params, m->grads);
    st->seconds[DP_TIME_OPTIM] += comm_time() - t0;
    return 0;
}

void step_free(dp_stepper *st) {
    for (int k = 0; k < st->n_my; k++) free(st->perm[k]);
    free(st->perm);
    free(st->shard_row);
    free(st->xb);
    free(st->yb);
    free(st->row_ids);
    free(st->dout);
    free(st->gstore);
    free(st->acc);
    free(st->t_off);
    free(st->t_len);
    free(st->maxabs);
    free(st->mb);
    memset(st, 0, sizeof *st);
}
