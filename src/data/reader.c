/* reader.c - the streaming reader's thread, its ring of slots and its guess of what comes next. */
#include "data/reader.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/h5lock.h"
#include "core/rng.h"
#include "core/test_hold.h"

enum { SLOT_READING = 1, SLOT_READY, SLOT_FAILED };
enum { FILE_TRAIN, FILE_VAL, FILE_TEST };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_pos(dp_read_pos a, dp_read_pos b) {
    return a.kind == b.kind && a.epoch == b.epoch && a.index == b.index;
}

static long chunks(const dp_read_heldout *h) {
    return (long)((h->count + DP_READ_CHUNK - 1) / DP_READ_CHUNK);
}

static dp_read_pos make_pos(int kind, int epoch, long index) {
    return (dp_read_pos){kind, epoch, index};
}

/* What the training loop reads after epoch e's steps and evaluation. */
static dp_read_pos after_epoch(const dp_reader *r, int e) {
    if (e + 1 < r->cfg.epochs) return make_pos(DP_READ_TRAIN, e + 1, 0);
    if (chunks(&r->cfg.test) > 0) return make_pos(DP_READ_TEST, 0, 0);
    return make_pos(DP_READ_END, 0, 0);
}

static dp_read_pos advance(const dp_reader *r, dp_read_pos p) {
    switch (p.kind) {
    case DP_READ_TRAIN:
        if (p.index + 1 < r->cfg.plan->steps) return make_pos(DP_READ_TRAIN, p.epoch, p.index + 1);
        if (chunks(&r->cfg.val) > 0) return make_pos(DP_READ_VAL, p.epoch, 0);
        return after_epoch(r, p.epoch);
    case DP_READ_VAL:
        if (p.index + 1 < chunks(&r->cfg.val)) return make_pos(DP_READ_VAL, p.epoch, p.index + 1);
        return after_epoch(r, p.epoch);
    case DP_READ_TEST:
        if (p.index + 1 < chunks(&r->cfg.test)) return make_pos(DP_READ_TEST, 0, p.index + 1);
        return make_pos(DP_READ_END, 0, 0);
    default: return p;
    }
}

/* Opens file k on first use. Caller holds the HDF5 lock. */
static dp_data_file *reader_file(dp_reader *r, int k, size_t rows_per_read, dp_error *err) {
    static const char *const names[3] = {"train", NULL, "test"};
    dp_data_file *f = &r->files[k];
    if (f->file >= 0) return f;
    const char *split = k == FILE_VAL ? r->cfg.val.split : names[k];
    return dp_data_open(f, r->cfg.info, split, rows_per_read, err) ? NULL : f;
}

/* The file rows of step t of epoch e, micro-batch after micro-batch, as the
 * in-memory path (step.c) takes them. */
static size_t train_ids(dp_reader *r, int e, long t, dp_read_slot *s) {
    const dp_shard_plan *p = r->cfg.plan;
    if (r->perm_epoch != e) {
        for (int k = 0; k < r->cfg.n_shards; k++) {
            int sh = r->cfg.first_shard + k;
            dp_rng_permute(dp_rng_make_key(r->cfg.seed, 0x5eed, (uint64_t)e, (uint64_t)sh),
                           r->perm[k], p->count[sh]);
        }
        r->perm_epoch = e;
    }
    size_t n = 0;
    for (int k = 0; k < r->cfg.n_shards; k++) {
        int sh = r->cfg.first_shard + k;
        size_t b, end;
        dp_shard_plan_step(p, sh, (int)t, &b, &end);
        s->off[k] = (int)n;
        s->rows[k] = (int)(end - b);
        for (size_t i = b; i < end; i++) s->ids[n++] = p->offset[sh] + r->perm[k][i];
    }
    return n;
}

/* Reads slot s's item. Runs on the reader thread without the ring's lock. */
static int fill(dp_reader *r, dp_read_slot *s) {
    dp_error *err = &s->err;
    *err = (dp_error){0};
    s->raw = 0;
    long long step = (long long)s->pos.epoch * r->cfg.plan->steps + s->pos.index + 1;
    dp_test_hold("read", s->pos.kind == DP_READ_TRAIN ? step : -1, NULL);
    int rc = 0;
    if (s->pos.kind == DP_READ_TRAIN) {
        s->n = train_ids(r, s->pos.epoch, s->pos.index, s);
        /* Features stay as stored: the training thread widens each
         * micro-batch as it takes it (dp_data_widen_rows), so the rows are
         * fresh in its cache, as copied rows in memory are. */
        s->raw = !r->cfg.info->x_is_int;
        dp_h5_lock();
        dp_data_file *f = reader_file(r, FILE_TRAIN, s->n, err);
        rc = !f || (s->raw ? dp_data_read_ids_raw(f, s->ids, s->n, r->cfg.n_classes, s->x,
                                                  s->raw_row, s->y, err)
                           : dp_data_read_ids(f, s->ids, s->n, r->cfg.n_classes, s->x, s->y, err));
        dp_h5_unlock();
    } else {
        const dp_read_heldout *h = s->pos.kind == DP_READ_VAL ? &r->cfg.val : &r->cfg.test;
        size_t first = h->first + (size_t)s->pos.index * DP_READ_CHUNK;
        size_t left = h->count - (size_t)s->pos.index * DP_READ_CHUNK;
        s->n = left < DP_READ_CHUNK ? left : DP_READ_CHUNK;
        for (size_t i = 0; i < s->n; i++) s->ids[i] = first + i;
        dp_h5_lock();
        dp_data_file *f =
            reader_file(r, s->pos.kind == DP_READ_VAL ? FILE_VAL : FILE_TEST, DP_READ_CHUNK, err);
        rc = !f || dp_data_read_range(f, first, s->n, r->cfg.n_classes, s->x, s->y, err);
        dp_h5_unlock();
    }
    if (rc) return -1;
    if (r->cfg.mean && !s->raw) {
        /* The formula of dp_data_standardize, so the bits are the in-memory ones. */
        dp_rows rows = {.n = s->n, .x_width = r->width, .y_cols = (int)r->y_cols, .x = s->x};
        dp_data_standardize(&rows, r->cfg.mean, r->cfg.std);
    }
    return 0;
}

static void *reader_main(void *arg) {
    dp_reader *r = arg;
    int P = r->cfg.prefetch, failed = 0;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        /* A failed read stops the read-ahead until the consumer asks again. */
        while (!r->quit && (r->count == P || r->next.kind == DP_READ_END || (failed && r->count)))
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->quit) break;
        failed = 0;
        dp_read_slot *s = &r->slots[(r->head + r->count) % P];
        s->pos = r->next;
        s->state = SLOT_READING;
        r->count++;
        r->next = advance(r, r->next);
        pthread_mutex_unlock(&r->lock);
        int rc = fill(r, s);
        pthread_mutex_lock(&r->lock);
        s->state = rc ? SLOT_FAILED : SLOT_READY;
        failed = rc != 0;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    dp_h5_lock();
    for (int k = 0; k < 3; k++) dp_data_close(&r->files[k]);
    dp_h5_unlock();
    return NULL;
}

int dp_reader_start(dp_reader *r, const dp_reader_cfg *cfg, dp_read_pos start, dp_error *err) {
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->width = dp_shape_numel(&cfg->info->x_shape);
    r->y_cols = (size_t)cfg->info->y_cols;
    r->perm_epoch = -1;
    r->next = start;
    for (int k = 0; k < 3; k++) r->files[k].file = r->files[k].x = r->files[k].y = -1;
    size_t rows = DP_READ_CHUNK;
    size_t step_rows = 0;
    for (int k = 0; k < cfg->n_shards; k++)
        step_rows += (size_t)cfg->plan->rows_per_step[cfg->first_shard + k];
    if (step_rows > rows) rows = step_rows;
    r->perm = DP_CALLOC((size_t)cfg->n_shards, sizeof *r->perm);
    for (int k = 0; k < cfg->n_shards; k++)
        r->perm[k] = DP_MALLOC((cfg->plan->count[cfg->first_shard + k] + 1) * sizeof(uint32_t));
    r->slots = DP_CALLOC((size_t)cfg->prefetch, sizeof *r->slots);
    for (int i = 0; i < cfg->prefetch; i++) {
        dp_read_slot *s = &r->slots[i];
        s->x = DP_MALLOC(rows * r->width * sizeof(float));
        s->y = DP_MALLOC(rows * r->y_cols * sizeof(float));
        s->ids = DP_MALLOC(rows * sizeof(uint64_t));
        s->raw_row = DP_MALLOC(rows * sizeof(uint32_t));
        s->off = DP_CALLOC((size_t)cfg->n_shards + 1, sizeof(int));
        s->rows = DP_CALLOC((size_t)cfg->n_shards + 1, sizeof(int));
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        dp_reader_stop(r);
        return dp_error_set(err, "data", "cannot start the reader thread");
    }
    r->started = 1;
    return 0;
}

/* 1 when want is in the ring, or among the guesses that fill it. Caller
 * holds the lock. */
static int coming(const dp_reader *r, dp_read_pos want) {
    int P = r->cfg.prefetch;
    for (int i = 0; i < r->count; i++)
        if (same_pos(r->slots[(r->head + i) % P].pos, want)) return 1;
    dp_read_pos p = r->next;
    if (same_pos(p, want)) return 1;
    for (int i = r->count + 1; i < P && p.kind != DP_READ_END; i++) {
        p = advance(r, p);
        if (same_pos(p, want)) return 1;
    }
    return 0;
}

const dp_read_slot *dp_reader_get(dp_reader *r, dp_read_pos want, dp_error *err) {
    int P = r->cfg.prefetch;
    double t0 = now();
    pthread_mutex_lock(&r->lock);
    dp_read_slot *s = NULL;
    for (;;) {
        if (r->count > 0) {
            s = &r->slots[r->head];
            int mine = same_pos(s->pos, want);
            /* A wrong guess: the reader goes to want next, and what it read
             * before is dropped as it completes. */
            if (!mine && !coming(r, want)) {
                r->next = want;
                r->misses++;
            }
            if (s->state == SLOT_READING) {
                pthread_cond_wait(&r->cond, &r->lock);
                continue;
            }
            if (mine) break;
            r->head = (r->head + 1) % P;
            r->count--;
            pthread_cond_broadcast(&r->cond);
            continue;
        }
        if (!coming(r, want)) {
            r->next = want;
            r->misses++;
        }
        pthread_cond_broadcast(&r->cond);
        pthread_cond_wait(&r->cond, &r->lock);
    }
    r->held = 1;
    pthread_mutex_unlock(&r->lock);
    r->stall += now() - t0;
    if (s->state == SLOT_FAILED) {
        *err = s->err;
        return NULL;
    }
    return s;
}

void dp_reader_release(dp_reader *r) {
    pthread_mutex_lock(&r->lock);
    if (r->held) {
        r->held = 0;
        r->head = (r->head + 1) % r->cfg.prefetch;
        r->count--;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
}

void dp_reader_stop(dp_reader *r) {
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->quit = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    if (r->slots) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
    }
    for (int i = 0; r->slots && i < r->cfg.prefetch; i++) {
        dp_read_slot *s = &r->slots[i];
        free(s->x);
        free(s->y);
        free(s->ids);
        free(s->raw_row);
        free(s->off);
        free(s->rows);
    }
    for (int k = 0; r->perm && k < r->cfg.n_shards; k++) free(r->perm[k]);
    free(r->perm);
    free(r->slots);
    memset(r, 0, sizeof *r);
}
