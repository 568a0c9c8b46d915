/* share.c - one parameter copy per node: each rank sums and updates its own range of it. */
#include "share.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dptrain/reduce.h"
#include "phases.h"

/* Floats per 64-byte cache line: ranges and arenas start on lines of their
 * own, so no two ranks write one line. */
enum { LINE = 16 };

/* Elements summed and updated at a time: the summed piece (16 KiB, and its
 * 32 KiB fixed-point sum in exact mode) stays in L1 while the optimizer reads it. */
enum { SHARE_PIECE = 4096 };

static size_t share_round_up(size_t n) {
    return (n + LINE - 1) / LINE * LINE;
}

/* Slack for what Open MPI adds to the segment (its window state, a page),
 * and for other users of the directory meanwhile. */
#define SHARE_ROOM_SLACK ((size_t)4 << 20)

/* Whether a segment of `bytes` fits where Open MPI would back it; if not, a
 * reason in why. Open MPI aborts the job when the file cannot be made (only
 * rank 0 learns of it, so it cannot be caught and agreed on afterwards): this
 * is asked first. A container's /dev/shm (64 MiB under Docker by default) is
 * the usual case. */
static int share_check_room(size_t bytes, char *why, size_t len) {
    char dir[1024];
    if (comm_shared_dir(dir, sizeof dir)) return 1; /* not Open MPI's: let it try */
    struct statvfs fs;
    if (access(dir, W_OK | X_OK) || statvfs(dir, &fs)) {
        snprintf(why, len, "cannot create the segment's file in %.200s (%.60s)", dir, strerror(errno));
        return 0;
    }
    double mib = 1024.0 * 1024.0;
    double room = (double)fs.f_bavail * (double)fs.f_frsize;
    if (room < (double)(bytes + SHARE_ROOM_SLACK)) {
        snprintf(why, len, "%.200s has %.1f MiB free and the segment needs %.1f MiB", dir, room / mib,
                 (double)(bytes + SHARE_ROOM_SLACK) / mib);
        return 0;
    }
    return 1;
}

int share_attach(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, dp_reduction mode,
                 const dp_trainset *ts) {
    memset(s, 0, sizeof *s);
    /* Spanning nodes, the ranks keep private copies and reduce over MPI; a
     * mixed scheme would need node leaders. */
    if (c->size < 2 || !comm_on_one_node(c)) return 0;
    size_t n = m->n_params, stride = share_round_up(n);
    int slots = o->n_slots, exact = mode == DP_REDUCE_EXACT, shards = ts->plan.shards;
    int arenas = exact ? shards : c->size;
    int n_tensors = model_list_tensors(m, NULL, NULL);
    size_t floats = stride * (size_t)(1 + slots + arenas);
    size_t doubles = 2 * (size_t)shards + 2 * (size_t)c->size + (size_t)c->size * n_tensors;
    size_t bytes = floats * sizeof(float) + doubles * sizeof(double);
    int room = c->rank != 0 || share_check_room(bytes, s->why, sizeof s->why);
    comm_bcast(c, &room, sizeof room, 0);
    if (!room) return 0;
    float *base = comm_shared_map(c, bytes, &s->win);
    /* The segment's first contents are unspecified: rank 0 zeroes it, as
     * model_build and optim_init zeroed the private buffers it replaces. */
    if (c->rank == 0) memset(base, 0, bytes);
    comm_shared_fence(c, s->win);
    s->rank = c->rank;
    s->size = c->size;
    s->exact = exact;
    s->shards = shards;
    s->first = ts->first_shard;
    s->n_my = ts->n_shards;
    s->stride = stride;
    /* [params | state slots | arenas | mb_notes | rank_notes | maxima] */
    free(m->params);
    free(m->grads);
    m->params = base;
    for (int k = 0; k < slots; k++) {
        free(o->slots[k]);
        o->slots[k] = base + stride * (size_t)(1 + k);
    }
    s->grads = base + stride * (size_t)(1 + slots);
    s->mb_notes = (double *)(base + floats);
    s->rank_notes = s->mb_notes + 2 * shards;
    s->maxima = s->rank_notes + 2 * c->size;
    m->grads = share_grads(s, s->n_my - 1);
    s->lo = n / LINE * (size_t)c->rank / (size_t)c->size * LINE;
    s->hi = c->rank + 1 == c->size ? n : n / LINE * (size_t)(c->rank + 1) / (size_t)c->size * LINE;
    s->n_tensors = n_tensors;
    s->t_off = DP_MALLOC(((size_t)n_tensors + 1) * sizeof(size_t));
    s->t_len = DP_MALLOC(((size_t)n_tensors + 1) * sizeof(size_t));
    model_list_tensors(m, s->t_off, s->t_len);
    s->mx = DP_CALLOC((size_t)n_tensors + 1, sizeof(double));
    s->piece = DP_MALLOC(SHARE_PIECE * sizeof(float));
    s->acc = DP_MALLOC(SHARE_PIECE * sizeof(int64_t));
    return 1;
}

float *share_grads(const dp_share *s, int k) {
    int arena = s->exact ? s->first + k : s->rank;
    return s->grads + s->stride * (size_t)arena;
}

/* Exact mode: the max |g| of each tensor over this rank's micro-batches, into
 * its row of maxima. Read right after backward, the arenas are still partly
 * in this core's cache. */
static void share_own_maxima(dp_share *s) {
    double *mine = s->maxima + (size_t)s->rank * s->n_tensors;
    for (int t = 0; t < s->n_tensors; t++) {
        mine[t] = 0;
        for (int k = 0; k < s->n_my; k++) {
            double v = reduce_max_abs(share_grads(s, k) + s->t_off[t], s->t_len[t]);
            if (!(v <= mine[t])) mine[t] = v; /* a NaN sticks */
        }
    }
}

/* Sums elements [a, a + len) of the gradient into s->piece, as the mean: in
 * fixed point with exponent e over the shards' arenas (exact), or in float
 * over the ranks' arenas, in rank order (then still a sum: the optimizer
 * scales it). */
static void share_sum_piece(dp_share *s, size_t a, size_t len, int e, double inv_rows) {
    const float *g0 = s->grads + a;
    if (s->exact) {
        reduce_convert(s->acc, g0, len, e);
        for (int q = 1; q < s->shards; q++)
            reduce_accumulate(s->acc, g0 + s->stride * (size_t)q, len, e);
        reduce_finish(s->piece, s->acc, len, e, inv_rows);
        return;
    }
    const float *g1 = g0 + s->stride;
    for (size_t i = 0; i < len; i++) s->piece[i] = g0[i] + g1[i];
    for (int r = 2; r < s->size; r++) {
        const float *g = g0 + s->stride * (size_t)r;
        for (size_t i = 0; i < len; i++) s->piece[i] = s->piece[i] + g[i];
    }
}

/* Agrees the step's loss and correct count from every micro-batch's notes,
 * as the reducer forms them: in exact mode a fixed-point sum with the scale
 * of the largest |loss|, else per-rank float sums added in rank order.
 * Returns -1 if the loss is NaN or Inf. */
static int share_agree_loss(const dp_share *s, dp_loss_sums *out) {
    const double *mb = s->mb_notes;
    double correct = 0;
    for (int q = 0; q < s->shards; q++) correct += mb[2 * q + 1];
    out->correct = (long)correct;
    if (s->exact) {
        double lmax = 0;
        for (int q = 0; q < s->shards; q++)
            if (!(fabs(mb[2 * q]) <= lmax)) lmax = fabs(mb[2 * q]);
        if (!isfinite(lmax)) return -1;
        int el = reduce_pick_exponent(lmax, s->shards);
        int64_t sum = 0;
        for (int q = 0; q < s->shards; q++) sum += (int64_t)llrint(ldexp(mb[2 * q], el));
        out->loss = ldexp((double)sum, -el);
        return 0;
    }
    double loss = 0;
    for (int r = 0; r < s->size; r++) {
        double mine = 0;
        for (int k = 0; k < s->n_my; k++) mine += mb[2 * (r * s->n_my + k)];
        loss += mine;
    }
    out->loss = loss;
    return isfinite(loss) ? 0 : -1;
}

int share_step(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, const dp_loss_sums *mb,
               size_t rows, dp_loss_sums *out, int *stop, double *seconds) {
    double t0 = comm_time();
    if (s->exact) share_own_maxima(s);
    for (int k = 0; k < s->n_my; k++) {
        s->mb_notes[2 * (s->first + k)] = mb[k].loss;
        s->mb_notes[2 * (s->first + k) + 1] = (double)mb[k].correct;
    }
    s->rank_notes[2 * s->rank] = *stop ? 1.0 : 0.0;
    double t1 = comm_time();
    seconds[DP_TIME_REDUCE] += t1 - t0;
    comm_shared_fence(c, s->win);
    seconds[DP_TIME_COMM] += comm_time() - t1;
    /* Every rank reads the same notes in the same order: the same bits everywhere. */
    *stop = 0;
    for (int r = 0; r < s->size; r++)
        if (s->rank_notes[2 * r] > 0) *stop = 1;
    out->rows = (long)rows;
    int bad = share_agree_loss(s, out);
    for (int t = 0; s->exact && t < s->n_tensors; t++) {
        s->mx[t] = 0;
        for (int r = 0; r < s->size; r++) {
            double v = s->maxima[(size_t)r * s->n_tensors + t];
            if (!(v <= s->mx[t])) s->mx[t] = v;
        }
        if (!isfinite(s->mx[t])) bad = 1;
    }
    /* Agreed by all alike, before any rank touches the parameters. */
    if (bad) return -1;
    t0 = comm_time();
    double inv_rows = 1.0 / (double)rows;
    /* The exact mean is final; the float sum is scaled as the optimizer reads it. */
    float scale = s->exact ? 1.0f : (float)inv_rows;
    int t = 0;
    for (size_t a = s->lo; a < s->hi;) {
        /* Pieces end at the range, at SHARE_PIECE and, in exact mode, at the
         * end of a tensor, whose scale the next one does not share. */
        size_t b = s->hi - a < SHARE_PIECE ? s->hi : a + SHARE_PIECE;
        int e = 0;
        if (s->exact) {
            while (s->t_off[t] + s->t_len[t] <= a) t++;
            if (s->t_off[t] + s->t_len[t] < b) b = s->t_off[t] + s->t_len[t];
            e = reduce_pick_exponent(s->mx[t], s->shards);
        }
        share_sum_piece(s, a, b - a, e, inv_rows);
        bad |= optim_update_range(o, a, b - a, m->params + a, s->piece, scale);
        a = b;
    }
    optim_end_step(o);
    s->rank_notes[2 * s->rank + 1] = bad ? 1.0 : 0.0;
    t1 = comm_time();
    seconds[DP_TIME_OPTIM] += t1 - t0;
    comm_shared_fence(c, s->win);
    seconds[DP_TIME_COMM] += comm_time() - t1;
    for (int r = 0; r < s->size; r++)
        if (s->rank_notes[2 * r + 1] > 0) bad = 1;
    return bad ? -1 : 0;
}

void share_publish(const dp_share *s, const dp_comm *c) {
    comm_shared_fence(c, s->win);
}

void share_detach(dp_share *s, dp_model *m, dp_optim *o) {
    m->params = m->grads = NULL;
    for (int k = 0; k < o->n_slots; k++) o->slots[k] = NULL;
    comm_shared_unmap(&s->win);
    free(s->t_off);
    free(s->t_len);
    free(s->mx);
    free(s->piece);
    free(s->acc);
    memset(s, 0, sizeof *s);
}
