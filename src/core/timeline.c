/* timeline.c - record timeline spans into preallocated per-rank buffers. */
#include "core/timeline.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Ends kept free when begins are refused: deeper than any nesting of spans. */
enum { TL_RESERVE = 64 };

struct dp_timeline {
    dp_tl_buffer main, writer;
    atomic_int recording; /* read by the writer thread */
};

dp_timeline *dp_tl_on = NULL;
static dp_timeline tl_state;
static int tl_opened;

int64_t dp_tl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void tl_put(dp_tl_buffer *b, int kind, char ph, int arg) {
    int full = b->n + TL_RESERVE >= b->cap;
    if (ph == 'E' && b->refused) { /* the innermost open span is a refused one */
        b->refused--;
        return;
    }
    if (ph != 'E' && full) {
        b->dropped += ph != 'e';
        b->refused += ph == 'B';
        return;
    }
    if (b->n >= b->cap) return; /* only with spans nested deeper than TL_RESERVE */
    dp_tl_event *e = &b->ev[b->n++];
    e->ns = dp_tl_now();
    e->arg = arg;
    e->kind = (uint8_t)kind;
    e->ph = ph;
}

void dp_tl_record(dp_timeline *t, int kind, char ph, int arg) {
    tl_put(&t->main, kind, ph, arg);
}

void dp_tl_writer_begin(int kind, int arg) {
    if (tl_opened && atomic_load_explicit(&tl_state.recording, memory_order_relaxed))
        tl_put(&tl_state.writer, kind, 'B', arg);
}

/* An end whose begin was not recorded is dropped when written out. */
void dp_tl_writer_end(int kind, int arg) {
    if (tl_opened && tl_state.writer.n) tl_put(&tl_state.writer, kind, 'E', arg);
}

static void tl_alloc(dp_tl_buffer *b, size_t cap) {
    memset(b, 0, sizeof *b);
    b->cap = cap + TL_RESERVE;
    b->ev = DP_MALLOC(b->cap * sizeof(dp_tl_event));
}

void dp_tl_open(size_t main_cap, size_t writer_cap) {
    dp_tl_close();
    tl_alloc(&tl_state.main, main_cap);
    tl_alloc(&tl_state.writer, writer_cap);
    atomic_init(&tl_state.recording, 0);
    tl_opened = 1;
}

void dp_tl_window(int on) {
    if (!tl_opened) return;
    /* Spans open across a window's edge lose an end anyway: count afresh. */
    if (on && !dp_tl_on) tl_state.main.refused = 0;
    dp_tl_on = on ? &tl_state : NULL;
    atomic_store_explicit(&tl_state.recording, on, memory_order_relaxed);
}

int dp_tl_is_open(void) {
    return tl_opened;
}

const dp_tl_buffer *dp_tl_events(int thread) {
    return thread ? &tl_state.writer : &tl_state.main;
}

void dp_tl_close(void) {
    dp_tl_on = NULL;
    if (!tl_opened) return;
    free(tl_state.main.ev);
    free(tl_state.writer.ev);
    memset(&tl_state.main, 0, sizeof tl_state.main);
    memset(&tl_state.writer, 0, sizeof tl_state.writer);
    tl_opened = 0;
}

int dp_tl_parse_steps(const char *s, long long *first, long long *last, char *why, size_t len) {
    char *end;
    errno = 0;
    long long a = strtoll(s, &end, 10);
    if (end == s || *end != ':' || errno) goto bad;
    const char *p = end + 1;
    long long b = strtoll(p, &end, 10);
    if (end == p || *end || errno) goto bad;
    if (a < 1 || b < a) {
        snprintf(why, len, "expected 1 <= A <= B in A:B, got '%s'", s);
        return -1;
    }
    *first = a;
    *last = b;
    return 0;
bad:
    snprintf(why, len, "expected a step range A:B such as 1:20, got '%s'", s);
    return -1;
}
