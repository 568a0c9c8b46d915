/* grad_buckets.c - the gradient sum across ranks in buckets, overlapped with backward. */
#include "grad/grad_buckets.h"
#include "core/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeline.h"
#include "grad/grad_fixed.h"

/* Lane 0 carries the exact mode's max phases, lane 1 the sums: each lane starts
 * its collectives in bucket order on every rank, whatever the timing. */
enum { LANE_MAX = 0, LANE_SUM = 1 };

dp_reduction dp_grad_buckets_pick_mode(dp_reduction asked, long shards) {
    /* With at most two shards the sum is one IEEE addition per element, and
     * a + b == b + a bit for bit: whichever rank adds, and whatever MPI's
     * algorithm, the float sum is already order-independent. The fixed point
     * is needed from three terms on, where grouping changes the rounding. */
    return shards <= 2 ? DP_REDUCE_FAST : asked;
}

void dp_grad_buckets_init(dp_grad_buckets *r, const dp_model *m, dp_reduction mode, long shards,
                          size_t bucket_bytes, double *seconds) {
    memset(r, 0, sizeof *r);
    r->mode = dp_grad_buckets_pick_mode(mode, shards);
    r->terms = shards;
    r->seconds = seconds;
    r->n_tensors = dp_model_list_tensors(m, NULL, NULL);
    r->t_off = DP_MALLOC(((size_t)r->n_tensors + 1) * sizeof(size_t));
    r->t_len = DP_MALLOC(((size_t)r->n_tensors + 1) * sizeof(size_t));
    dp_model_list_tensors(m, r->t_off, r->t_len);
    /* Buckets from the last layer back; each closes once it holds bucket_bytes. */
    r->buckets = DP_CALLOC((size_t)m->n_layers + 1, sizeof(dp_grad_bucket));
    dp_grad_bucket *b = NULL;
    int t_end = r->n_tensors;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const dp_layer *l = &m->layers[i];
        if (!l->n_params) continue;
        if (!b) {
            b = &r->buckets[r->n_buckets++];
            b->t_first = b->t_count = 0;
            b->off = l->param_offset + l->param_count;
        }
        t_end -= l->n_params;
        b->t_first = t_end;
        b->t_count += l->n_params;
        b->low_layer = i;
        b->len += l->param_count;
        b->off = l->param_offset;
        if (b->len * sizeof(float) >= bucket_bytes) b = NULL;
    }
    if (r->n_buckets == 0) r->n_buckets = 1; /* a model without parameters still reduces its loss */
    for (int k = 0; k < r->n_buckets; k++) {
        r->buckets[k].mx = DP_CALLOC((size_t)r->buckets[k].t_count + 2, sizeof(double));
        if (r->mode == DP_REDUCE_EXACT)
            r->buckets[k].acc = DP_CALLOC(r->buckets[k].len + 2, sizeof(int64_t));
    }
}

static int buckets_is_last(const dp_grad_buckets *r, int k) {
    return k == r->n_buckets - 1;
}

/* Exact mode, phase 1: this rank's max |g| per tensor of bucket k over its
 * micro-batches (and, for the last bucket, |loss| and the stop flag). */
static void buckets_start_max(dp_grad_buckets *r, int k) {
    dp_grad_bucket *b = &r->buckets[k];
    double *mx = b->mx;
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_BUCKET_MAX, k);
    for (int j = 0; j < b->t_count; j++) {
        int t = b->t_first + j;
        mx[j] = 0;
        for (int q = 0; q < r->n_micro; q++) {
            double a = dp_grad_fixed_max_abs(r->micro_grads[q] + r->t_off[t], r->t_len[t]);
            if (!(a <= mx[j])) mx[j] = a;
        }
    }
    int n = b->t_count;
    if (buckets_is_last(r, k)) {
        double l = 0;
        for (int q = 0; q < r->n_micro; q++)
            if (!(fabs(r->micro_sums[q].loss) <= l)) l = fabs(r->micro_sums[q].loss);
        mx[n++] = l;
        mx[n++] = (double)r->stop; /* flag bits: the max keeps the data-error bit */
    }
    double t1 = dp_comm_time();
    dp_comm_imax_f64(r->c, LANE_MAX, mx, (size_t)n, &b->req);
    dp_tl_async_begin(DP_TL_BUCKET_MAX_WIRE, k);
    dp_tl_end(DP_TL_BUCKET_MAX, k);
    r->seconds[DP_TIME_REDUCE] += t1 - t0;
    r->seconds[DP_TIME_COMM] += dp_comm_time() - t1;
    b->phase = DP_BUCKET_MAX_IN_FLIGHT;
}

/* Exact mode, phase 2: fixed-point sum of bucket k with the agreed scales. */
static void buckets_start_sum(dp_grad_buckets *r, int k) {
    dp_grad_bucket *b = &r->buckets[k];
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_BUCKET_SUM, k);
    int n_mx = b->t_count + (buckets_is_last(r, k) ? 2 : 0);
    for (int j = 0; j < n_mx; j++)
        if (!isfinite(b->mx[j])) r->bad = 1;
    size_t n = b->len;
    /* r->bad is identical on every rank after the max, so all ranks skip alike. */
    if (r->bad) memset(b->acc, 0, (n + 2) * sizeof(int64_t));
    else
        for (int j = 0; j < b->t_count; j++) {
            int t = b->t_first + j;
            int e = dp_grad_fixed_pick_exponent(b->mx[j], r->terms);
            int64_t *acc = b->acc + (r->t_off[t] - b->off);
            dp_grad_fixed_convert(acc, r->micro_grads[0] + r->t_off[t], r->t_len[t], e);
            for (int q = 1; q < r->n_micro; q++)
                dp_grad_fixed_accumulate(acc, r->micro_grads[q] + r->t_off[t], r->t_len[t], e);
        }
    b->acc[n] = b->acc[n + 1] = 0;
    if (buckets_is_last(r, k)) {
        int el = dp_grad_fixed_pick_exponent(b->mx[b->t_count], r->terms);
        for (int q = 0; q < r->n_micro; q++) {
            if (!r->bad) b->acc[n] += (int64_t)llrint(ldexp(r->micro_sums[q].loss, el));
            b->acc[n + 1] += r->micro_sums[q].correct;
        }
        r->stop = (int)b->mx[b->t_count + 1];
        n += 2;
    }
    double t1 = dp_comm_time();
    dp_comm_isum_i64(r->c, LANE_SUM, b->acc, n, &b->req);
    dp_tl_async_begin(DP_TL_BUCKET_SUM_WIRE, k);
    dp_tl_end(DP_TL_BUCKET_SUM, k);
    r->seconds[DP_TIME_REDUCE] += t1 - t0;
    r->seconds[DP_TIME_COMM] += dp_comm_time() - t1;
    b->phase = DP_BUCKET_SUM_IN_FLIGHT;
}

/* Fast mode: one float sum per bucket; the extras follow the last bucket. */
static void buckets_start_fast(dp_grad_buckets *r, int k) {
    dp_grad_bucket *b = &r->buckets[k];
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_BUCKET_SUM, k);
    /* Separately kept micro-batch gradients (exact mode, two shards on one rank)
     * are added here, one addition per element like the 2-rank sum. */
    if (r->micro_grads[0] != r->grads)
        for (int q = 0; q + 1 < r->n_micro; q++) {
            const float *g = r->micro_grads[q] + b->off;
            float *out = r->grads + b->off;
            for (size_t i = 0; i < b->len; i++) out[i] = g[i] + out[i];
        }
    r->seconds[DP_TIME_REDUCE] += dp_comm_time() - t0;
    t0 = dp_comm_time();
    dp_comm_isum_f32(r->c, LANE_SUM, r->grads + b->off, b->len, &b->req);
    if (buckets_is_last(r, k)) {
        r->extra[0] = r->extra[1] = 0;
        for (int q = 0; q < r->n_micro; q++) {
            r->extra[0] += r->micro_sums[q].loss;
            r->extra[1] += (double)r->micro_sums[q].correct;
        }
        r->extra[2] = (r->stop & 1) ? 1.0 : 0.0;
        r->extra[3] = (r->stop & 2) ? 1.0 : 0.0;
        dp_comm_isum_f64(r->c, LANE_SUM, r->extra, 4, &r->extra_req);
    }
    dp_tl_async_begin(DP_TL_BUCKET_SUM_WIRE, k);
    dp_tl_end(DP_TL_BUCKET_SUM, k);
    r->seconds[DP_TIME_COMM] += dp_comm_time() - t0;
    b->phase = DP_BUCKET_SUM_IN_FLIGHT;
}

/* Turns bucket k's completed exact sum into the averaged gradient. The fast
 * sum stays a sum: the optimizer scales it by grad_scale as it reads it, and
 * checks it is finite, saving a pass over the gradient. */
static void buckets_complete(dp_grad_buckets *r, int k) {
    dp_grad_bucket *b = &r->buckets[k];
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_BUCKET_DONE, k);
    if (r->mode == DP_REDUCE_EXACT && !r->bad)
        for (int j = 0; j < b->t_count; j++) {
            int t = b->t_first + j;
            dp_grad_fixed_finish(r->grads + r->t_off[t], b->acc + (r->t_off[t] - b->off),
                                 r->t_len[t], dp_grad_fixed_pick_exponent(b->mx[j], r->terms),
                                 1.0 / (double)r->rows);
        }
    dp_tl_end(DP_TL_BUCKET_DONE, k);
    r->seconds[DP_TIME_REDUCE] += dp_comm_time() - t0;
    b->phase = DP_BUCKET_DONE;
}

/* Moves bucket k on as far as it can go; blocks on its collective if `block`.
 * Sums start strictly in bucket order (their lane's order on every rank). */
static void buckets_advance(dp_grad_buckets *r, int k, int block) {
    dp_grad_bucket *b = &r->buckets[k];
    for (;;) {
        if (b->phase == DP_BUCKET_WAITING || b->phase == DP_BUCKET_DONE) return;
        if (b->phase == DP_BUCKET_MAX_IN_FLIGHT && k > 0 &&
            r->buckets[k - 1].phase < DP_BUCKET_SUM_IN_FLIGHT)
            return;
        double t0 = dp_comm_time();
        if (block) dp_tl_begin(DP_TL_BUCKET_WAIT, k);
        int done = block ? (dp_comm_wait(&b->req), 1) : dp_comm_test(&b->req);
        if (block) dp_tl_end(DP_TL_BUCKET_WAIT, k);
        r->seconds[DP_TIME_COMM] += dp_comm_time() - t0;
        if (!done) return;
        dp_tl_async_end(
            b->phase == DP_BUCKET_MAX_IN_FLIGHT ? DP_TL_BUCKET_MAX_WIRE : DP_TL_BUCKET_SUM_WIRE, k);
        if (b->phase == DP_BUCKET_MAX_IN_FLIGHT) buckets_start_sum(r, k);
        else buckets_complete(r, k);
    }
}

void dp_grad_buckets_begin(dp_grad_buckets *r, const dp_comm *c, float *grads,
                           const float *const *micro_grads, int n_micro,
                           const dp_loss_sums *micro_sums, size_t rows, int stop) {
    r->c = c;
    r->grads = grads;
    r->micro_grads = micro_grads;
    r->n_micro = n_micro;
    r->micro_sums = micro_sums;
    r->rows = rows;
    r->stop = stop;
    r->bad = 0;
    for (int k = 0; k < r->n_buckets; k++) r->buckets[k].phase = DP_BUCKET_WAITING;
}

static void buckets_start(dp_grad_buckets *r, int k) {
    if (r->mode == DP_REDUCE_EXACT) buckets_start_max(r, k);
    else buckets_start_fast(r, k);
}

void dp_grad_buckets_layer_done(void *arg, int layer) {
    dp_grad_buckets *r = arg;
    for (int k = 0; k < r->n_buckets; k++) {
        if (r->buckets[k].phase == DP_BUCKET_WAITING && r->buckets[k].low_layer == layer)
            buckets_start(r, k);
        buckets_advance(r, k, 0);
    }
}

int dp_grad_buckets_finish(dp_grad_buckets *r, dp_loss_sums *out, int *stop) {
    /* Buckets whose backward never ran (an empty micro-batch) start now, in order. */
    for (int k = 0; k < r->n_buckets; k++)
        if (r->buckets[k].phase == DP_BUCKET_WAITING) buckets_start(r, k);
    for (int k = 0; k < r->n_buckets; k++)
        while (r->buckets[k].phase != DP_BUCKET_DONE) {
            /* Earlier buckets first: a later one's sum may wait for theirs to start. */
            for (int q = 0; q < k; q++) buckets_advance(r, q, 0);
            buckets_advance(r, k, 1);
        }
    out->terms = (long)r->rows;
    r->grad_scale = r->mode == DP_REDUCE_EXACT ? 1.0f : (float)(1.0 / (double)r->rows);
    if (r->mode == DP_REDUCE_EXACT) {
        int last = r->n_buckets - 1;
        const dp_grad_bucket *b = &r->buckets[last];
        size_t n = b->len;
        int el = dp_grad_fixed_pick_exponent(b->mx[b->t_count], r->terms);
        out->loss = ldexp((double)b->acc[n], -el);
        out->correct = b->acc[n + 1];
    } else {
        double t0 = dp_comm_time();
        dp_comm_wait(&r->extra_req);
        r->seconds[DP_TIME_COMM] += dp_comm_time() - t0;
        out->loss = r->extra[0];
        out->correct = (long)r->extra[1];
        r->stop = (r->extra[2] > 0 ? 1 : 0) | (r->extra[3] > 0 ? 2 : 0);
        if (!isfinite(out->loss)) r->bad = 1;
    }
    *stop = r->stop;
    return r->bad ? -1 : 0;
}

void dp_grad_buckets_free(dp_grad_buckets *r) {
    for (int k = 0; k < r->n_buckets; k++) {
        free(r->buckets[k].mx);
        free(r->buckets[k].acc);
    }
    free(r->buckets);
    free(r->t_off);
    free(r->t_len);
    memset(r, 0, sizeof *r);
}
