/* share.c - one parameter copy per node: each rank updates its own range of it. */
#include "share.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "phases.h"

/* Floats per 64-byte cache line: ranges and arenas start on lines of their
 * own, so no two ranks write one line. */
enum { LINE = 16 };

/* Floats summed and updated at a time: 16 KiB of each array, well inside L1. */
enum { PIECE = 4096 };

static size_t share_round_up(size_t n) {
    return (n + LINE - 1) / LINE * LINE;
}

int share_attach(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o) {
    memset(s, 0, sizeof *s);
    if (c->size < 2) return 0;
    size_t n = m->n_params, stride = share_round_up(n);
    int slots = o->n_slots;
    size_t floats = stride * (size_t)(1 + slots + c->size);
    size_t bytes = floats * sizeof(float) + 4 * (size_t)c->size * sizeof(double);
    float *base = comm_shared_map(c, bytes, &s->win);
    if (!base) return 0;
    /* The segment's first contents are unspecified: rank 0 zeroes it, as
     * model_build and optim_init zeroed the private buffers it replaces. */
    if (c->rank == 0) memset(base, 0, bytes);
    comm_shared_fence(c, s->win);
    /* [params | state slot 0 .. slots-1 | gradient of rank 0 .. size-1 | notes] */
    free(m->params);
    free(m->grads);
    m->params = base;
    for (int k = 0; k < slots; k++) {
        free(o->slots[k]);
        o->slots[k] = base + stride * (size_t)(1 + k);
    }
    s->rank = c->rank;
    s->size = c->size;
    s->stride = stride;
    s->grads = base + stride * (size_t)(1 + slots);
    s->notes = (double *)(base + floats);
    m->grads = s->grads + stride * (size_t)c->rank;
    s->piece = DP_MALLOC(PIECE * sizeof(float));
    s->lo = n / LINE * (size_t)c->rank / (size_t)c->size * LINE;
    s->hi = c->rank + 1 == c->size ? n : n / LINE * (size_t)(c->rank + 1) / (size_t)c->size * LINE;
    return 1;
}

int share_step(dp_share *s, const dp_comm *c, dp_model *m, dp_optim *o, const dp_loss_sums *mb,
               int n_mb, size_t rows, dp_loss_sums *out, int *stop, double *seconds) {
    double *note = s->notes + 4 * s->rank;
    note[0] = note[1] = 0;
    for (int q = 0; q < n_mb; q++) {
        note[0] += mb[q].loss;
        note[1] += (double)mb[q].correct;
    }
    note[2] = *stop ? 1.0 : 0.0;
    double t0 = comm_time();
    comm_shared_fence(c, s->win);
    seconds[DP_TIME_COMM] += comm_time() - t0;
    /* Every rank adds the same notes in the same order: the same bits everywhere. */
    double loss = 0, correct = 0;
    *stop = 0;
    for (int r = 0; r < s->size; r++) {
        loss += s->notes[4 * r];
        correct += s->notes[4 * r + 1];
        if (s->notes[4 * r + 2] > 0) *stop = 1;
    }
    out->loss = loss;
    out->correct = (long)correct;
    out->rows = (long)rows;
    /* Agreed by all alike, before any rank touches the parameters. */
    if (!isfinite(loss)) return -1;
    t0 = comm_time();
    /* Piece by piece into a scratch buffer that stays in L1: the optimizer
     * reads each summed piece from there, and no summed gradient is ever
     * written back to memory. */
    float scale = (float)(1.0 / (double)rows);
    int bad = 0;
    for (size_t a = s->lo; a < s->hi; a += PIECE) {
        size_t len = s->hi - a < PIECE ? s->hi - a : PIECE;
        const float *g0 = s->grads + a, *g1 = g0 + s->stride;
        for (size_t i = 0; i < len; i++) s->piece[i] = g0[i] + g1[i];
        for (int r = 2; r < s->size; r++) {
            const float *g = g0 + s->stride * (size_t)r;
            for (size_t i = 0; i < len; i++) s->piece[i] = s->piece[i] + g[i];
        }
        bad |= optim_update_range(o, a, len, m->params + a, s->piece, scale);
    }
    optim_end_step(o);
    note[3] = bad ? 1.0 : 0.0;
    double t1 = comm_time();
    seconds[DP_TIME_OPTIM] += t1 - t0;
    comm_shared_fence(c, s->win);
    seconds[DP_TIME_COMM] += comm_time() - t1;
    for (int r = 0; r < s->size; r++)
        if (s->notes[4 * r + 3] > 0) bad = 1;
    return bad ? -1 : 0;
}

void share_publish(const dp_share *s, const dp_comm *c) {
    comm_shared_fence(c, s->win);
}

void share_detach(dp_share *s, dp_model *m, dp_optim *o) {
    m->params = m->grads = NULL;
    for (int k = 0; k < o->n_slots; k++) o->slots[k] = NULL;
    comm_shared_unmap(&s->win);
    free(s->piece);
    memset(s, 0, sizeof *s);
}
