/* grad_shm.c - one parameter copy per node: each rank sums and updates its own range of it. */
#include "grad/grad_shm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad/grad_fixed.h"
#include "core/phases.h"
#include "core/timeline.h"

/* Exact mode: the max |g| of each tensor over this rank's micro-batches, into
 * its row of maxima. Read right after backward, the arenas are still partly
 * in this core's cache. */
static void shm_own_maxima(dp_grad_shm *s) {
    double *mine = s->maxima + (size_t)s->rank * s->n_tensors;
    for (int t = 0; t < s->n_tensors; t++) {
        mine[t] = 0;
        for (int k = 0; k < s->n_my; k++) {
            double v = dp_grad_fixed_max_abs(dp_grad_shm_grads(s, k) + s->t_off[t], s->t_len[t]);
            if (!(v <= mine[t])) mine[t] = v; /* a NaN sticks */
        }
    }
}

/* The node's sum of gradient elements [a, a + len) over its arenas: in fixed
 * point with exponent e (exact, into acc), or in float, in rank order (into
 * out). */
static void shm_sum_node(const dp_grad_shm *s, size_t a, size_t len, int e, int64_t *acc,
                         float *out) {
    const float *g0 = s->grads + a;
    if (s->exact) {
        dp_grad_fixed_convert(acc, g0, len, e);
        for (int q = 1; q < s->arenas; q++)
            dp_grad_fixed_accumulate(acc, g0 + s->stride * (size_t)q, len, e);
        return;
    }
    const float *g1 = g0 + s->stride;
    for (size_t i = 0; i < len; i++) out[i] = g0[i] + g1[i];
    for (int r = 2; r < s->arenas; r++) {
        const float *g = g0 + s->stride * (size_t)r;
        for (size_t i = 0; i < len; i++) out[i] = out[i] + g[i];
    }
}

/* The end of the piece of this rank's range that starts at a: at the range's
 * end, SHARE_PIECE on and, in exact mode, the end of the tensor, whose scale
 * the next one does not share; *t follows the tensor and *e gets its exponent. */
static size_t shm_piece_end(const dp_grad_shm *s, size_t a, int *t, int *e) {
    size_t b = s->hi - a < SHARE_PIECE ? s->hi : a + SHARE_PIECE;
    *e = 0;
    if (s->exact) {
        while (s->t_off[*t] + s->t_len[*t] <= a) (*t)++;
        if (s->t_off[*t] + s->t_len[*t] < b) b = s->t_off[*t] + s->t_len[*t];
        *e = dp_grad_fixed_pick_exponent(s->agreed[*t], s->shards);
    }
    return b;
}

/* Agrees, with the same bits on every rank, the stop flag, the exact maxima
 * and the step's loss and correct count, as grad_buckets.c forms them: in exact
 * mode a fixed-point loss sum with the scale of the largest |loss|, else
 * float sums in rank order (on one node; across nodes, the nodes' sums are
 * then allreduced). Returns -1 on every rank if a maximum or the loss is NaN
 * or Inf. */
static int shm_agree(dp_grad_shm *s, dp_loss_sums *out, int *stop, double *seconds) {
    int T = s->n_tensors, n_micro = s->size * s->n_my;
    const double *notes = s->micro_notes;
    double *v = s->agreed; /* [T] max |g| per tensor, [T] stop, [T + 1] max |loss| */
    for (int t = 0; t < T + 2; t++) v[t] = 0;
    for (int r = 0; r < s->size; r++) {
        for (int t = 0; s->exact && t < T; t++) {
            double x = s->maxima[(size_t)r * T + t];
            if (!(x <= v[t])) v[t] = x; /* a NaN sticks */
        }
        if (s->rank_notes[2 * r] > v[T]) v[T] = s->rank_notes[2 * r];
    }
    for (int q = 0; s->exact && q < n_micro; q++)
        if (!(fabs(notes[2 * q]) <= v[T + 1])) v[T + 1] = fabs(notes[2 * q]);
    double t0 = dp_comm_time();
    if (s->nodes > 1) dp_comm_max_f64(&s->cross, v, (size_t)T + 2);
    *stop = (int)v[T];
    for (int t = 0; t < T + 2; t++)
        if (!isfinite(v[t])) {
            seconds[DP_TIME_COMM] += dp_comm_time() - t0;
            return -1; /* the same on every rank: all return alike */
        }
    double sums[2] = {0, 0}; /* loss (float mode), correct count */
    for (int q = 0; q < n_micro; q++) sums[1] += notes[2 * q + 1];
    int64_t fixed = 0;
    int el = 0;
    if (s->exact) {
        el = dp_grad_fixed_pick_exponent(v[T + 1], s->shards);
        for (int q = 0; q < n_micro; q++) fixed += (int64_t)llrint(ldexp(notes[2 * q], el));
        if (s->nodes > 1) dp_comm_sum_i64(&s->cross, &fixed, 1);
    } else {
        for (int r = 0; r < s->size; r++) {
            double mine = 0;
            for (int k = 0; k < s->n_my; k++) mine += notes[2 * (r * s->n_my + k)];
            sums[0] += mine;
        }
    }
    if (s->nodes > 1) dp_comm_sum_f64(&s->cross, sums, 2);
    seconds[DP_TIME_COMM] += dp_comm_time() - t0;
    out->loss = s->exact ? ldexp((double)fixed, -el) : sums[0];
    out->correct = (long)sums[1];
    return isfinite(out->loss) ? 0 : -1;
}

/* Clipping needs the norm of the whole gradient before any update: each rank
 * has stored its finished range into arena 0 (no other rank reads that range
 * of any arena), and after a fence every rank computes the factors from the
 * whole of arena 0, the gradient every other path hands the optimizer, in the
 * optimizer's fixed order; then each updates its range from there. */
static int shm_clip_and_update(dp_grad_shm *s, dp_model *m, dp_optim *o, float scale,
                               double *seconds) {
    double t0 = dp_comm_time();
    dp_comm_shared_fence(&s->node, s->win);
    seconds[DP_TIME_COMM] += dp_comm_time() - t0;
    dp_optim_clip_prepare(o, s->grads, scale);
    return dp_optim_update_range(o, s->lo, s->hi - s->lo, m->params + s->lo, s->grads + s->lo,
                                 scale);
}

/* One node: each piece of the range is summed into L1 and applied at once. */
static int shm_update_node(dp_grad_shm *s, dp_model *m, dp_optim *o, double inv_rows,
                           double *seconds) {
    /* The exact mean is final; the float sum is scaled as the optimizer reads it. */
    float scale = s->exact ? 1.0f : (float)inv_rows;
    int bad = 0, t = 0, e, clips = dp_optim_clips(o);
    for (size_t a = s->lo, b; a < s->hi; a = b) {
        b = shm_piece_end(s, a, &t, &e);
        shm_sum_node(s, a, b - a, e, s->acc, s->piece);
        if (s->exact) dp_grad_fixed_finish(s->piece, s->acc, b - a, e, inv_rows);
        if (clips) memcpy(s->grads + a, s->piece, (b - a) * sizeof(float));
        else bad |= dp_optim_update_range(o, a, b - a, m->params + a, s->piece, scale);
    }
    if (clips) bad = shm_clip_and_update(s, m, o, scale, seconds);
    return bad;
}

/* Several nodes: the node's sum of the whole range, allreduced with the other
 * nodes' over the cross group, then applied piece by piece. */
static int shm_update_nodes(dp_grad_shm *s, dp_model *m, dp_optim *o, double inv_rows,
                            double *seconds) {
    size_t lo = s->lo;
    int t = 0, e;
    for (size_t a = lo, b; a < s->hi; a = b) {
        b = shm_piece_end(s, a, &t, &e);
        shm_sum_node(s, a, b - a, e, s->racc ? s->racc + (a - lo) : NULL,
                     s->rsum ? s->rsum + (a - lo) : NULL);
    }
    double t0 = dp_comm_time();
    if (s->exact) dp_comm_sum_i64(&s->cross, s->racc, s->hi - lo);
    else dp_comm_sum_f32(&s->cross, s->rsum, s->hi - lo);
    seconds[DP_TIME_COMM] += dp_comm_time() - t0;
    int bad = 0, clips = dp_optim_clips(o);
    t = 0;
    for (size_t a = lo, b; a < s->hi; a = b) {
        b = shm_piece_end(s, a, &t, &e);
        const float *g = s->exact ? s->piece : s->rsum + (a - lo);
        if (s->exact) dp_grad_fixed_finish(s->piece, s->racc + (a - lo), b - a, e, inv_rows);
        if (clips) memcpy(s->grads + a, g, (b - a) * sizeof(float));
        else
            bad |= dp_optim_update_range(o, a, b - a, m->params + a, g,
                                         s->exact ? 1.0f : (float)inv_rows);
    }
    if (clips) bad = shm_clip_and_update(s, m, o, s->exact ? 1.0f : (float)inv_rows, seconds);
    return bad;
}

int dp_grad_shm_step(dp_grad_shm *s, dp_model *m, dp_optim *o, const dp_loss_sums *micro_sums,
                     size_t rows, dp_loss_sums *out, int *stop, double *seconds) {
    double t0 = dp_comm_time();
    if (s->exact) shm_own_maxima(s);
    for (int k = 0; k < s->n_my; k++) {
        int q = s->rank * s->n_my + k;
        s->micro_notes[2 * q] = micro_sums[k].loss;
        s->micro_notes[2 * q + 1] = (double)micro_sums[k].correct;
    }
    s->rank_notes[2 * s->rank] = (double)*stop;
    double t1 = dp_comm_time();
    seconds[DP_TIME_REDUCE] += t1 - t0;
    dp_comm_shared_fence(&s->node, s->win);
    seconds[DP_TIME_COMM] += dp_comm_time() - t1;
    out->terms = (long)rows;
    /* Agreed by all alike, before any rank touches the parameters. */
    if (shm_agree(s, out, stop, seconds)) return -1;
    t0 = dp_comm_time();
    double comm0 = seconds[DP_TIME_COMM], inv_rows = 1.0 / (double)rows;
    dp_tl_begin(DP_TL_SHARED_SUM, s->rank);
    int bad = s->nodes > 1 ? shm_update_nodes(s, m, o, inv_rows, seconds)
                           : shm_update_node(s, m, o, inv_rows, seconds);
    dp_tl_end(DP_TL_SHARED_SUM, s->rank);
    dp_optim_end_step(o);
    s->rank_notes[2 * s->rank + 1] = bad ? 1.0 : 0.0;
    t1 = dp_comm_time();
    /* The sum and update are OPTIM; the nodes' allreduce inside was COMM. */
    seconds[DP_TIME_OPTIM] += t1 - t0 - (seconds[DP_TIME_COMM] - comm0);
    dp_comm_shared_fence(&s->node, s->win);
    seconds[DP_TIME_COMM] += dp_comm_time() - t1;
    /* Every node updated its copy from the same sums and state: their flags
     * agree, and the node's are everyone's. */
    for (int r = 0; r < s->size; r++)
        if (s->rank_notes[2 * r + 1] > 0) bad = 1;
    return bad ? -1 : 0;
}
