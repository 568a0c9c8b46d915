/* timeline.h - (private) the per-rank recorder of timeline spans (docs/DESIGN.md §8.1).
 *
 * While a window of steps is being recorded, dp_tl_on points at this rank's
 * recorder and every span's begin and end appends one 16-byte event (a
 * CLOCK_MONOTONIC reading, a kind and an argument) to a buffer allocated
 * before training; otherwise dp_tl_on is NULL and a span costs one load and a
 * branch. Nothing in the hot path allocates, locks or writes a file.
 * Spans of one thread nest, so begin/end pairs become complete events when
 * written (train/timeline_run.c). The bucket reductions in flight overlap
 * each other and the backward pass: they are async spans ('b'/'e'), matched by
 * kind and bucket. The checkpoint writer thread has a buffer of its own. */
#ifndef DPTRAIN_TIMELINE_H
#define DPTRAIN_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

/* What a span is; arg says which layer, bucket or step. The names are in
 * train/timeline_run.c. */
typedef enum dp_tl_kind {
    DP_TL_STEP,           /* one global step; arg: its number, from 1 */
    DP_TL_DATA,           /* gathering a micro-batch's rows; arg: micro-batch */
    DP_TL_FORWARD,        /* the model's forward pass; arg: micro-batch */
    DP_TL_LAYER_FORWARD,  /* one layer's forward; arg: layer */
    DP_TL_LOSS,           /* the loss and its gradient; arg: micro-batch */
    DP_TL_BACKWARD,       /* the model's backward pass; arg: micro-batch */
    DP_TL_LAYER_BACKWARD, /* one layer's backward; arg: layer */
    DP_TL_BUCKET_MAX, /* exact mode: a bucket's max |g|, then its allreduce posted; arg: bucket */
    DP_TL_BUCKET_SUM, /* a bucket's sum converted and its allreduce posted; arg: bucket */
    DP_TL_BUCKET_MAX_WIRE, /* async: the max allreduce in flight; arg: bucket */
    DP_TL_BUCKET_SUM_WIRE, /* async: the sum allreduce in flight; arg: bucket */
    DP_TL_BUCKET_WAIT,     /* blocked on a bucket's allreduce; arg: bucket */
    DP_TL_BUCKET_DONE,     /* a completed sum turned into the mean gradient; arg: bucket */
    DP_TL_REDUCE,          /* finishing the gradient sum (MPI path) */
    DP_TL_SHARED,          /* the shared-memory sum and update (grad_shm.c) */
    DP_TL_SHARED_SUM,      /* this rank's range summed and updated in shared memory */
    DP_TL_BARRIER,         /* a wait for every rank; arg: 0 fence, 1 agreement, 2 replica check */
    DP_TL_OPTIMIZER,       /* the optimizer update */
    DP_TL_EVAL,            /* evaluation; arg: 0 validation, 1 test */
    DP_TL_CKPT,       /* a checkpoint handed to the writer and agreed; arg: 0 submit, 1 flush */
    DP_TL_CKPT_WRITE, /* writer thread: a checkpoint file written */
    DP_TL_KINDS
} dp_tl_kind;

typedef struct dp_tl_event {
    int64_t ns;   /* CLOCK_MONOTONIC, nanoseconds */
    int32_t arg;  /* layer, bucket, micro-batch or step */
    uint8_t kind; /* dp_tl_kind */
    char ph;      /* 'B' begin, 'E' end, 'b' async begin, 'e' async end */
} dp_tl_event;

typedef struct dp_tl_buffer {
    dp_tl_event *ev; /* [cap] */
    size_t n, cap;
    long dropped; /* begins refused because the buffer was full */
    long refused; /* spans open whose begin was refused */
} dp_tl_buffer;

typedef struct dp_timeline dp_timeline;

/* This rank's recorder while a window is recorded, else NULL. */
extern dp_timeline *dp_tl_on;

/* Appends one event; only through the inline wrappers below. A full buffer
 * refuses begins (and the ends that match them: spans nest) but keeps room
 * for the ends of the spans already open, so every recorded begin has its
 * end. Async spans get no such room: a lost end leaves its begin unpaired. */
void dp_tl_record(dp_timeline *t, int kind, char ph, int arg);

static inline void dp_tl_begin(int kind, int arg) {
    if (dp_tl_on) dp_tl_record(dp_tl_on, kind, 'B', arg);
}
static inline void dp_tl_end(int kind, int arg) {
    if (dp_tl_on) dp_tl_record(dp_tl_on, kind, 'E', arg);
}
/* An async span: overlaps other spans of the thread; matched by kind and arg. */
static inline void dp_tl_async_begin(int kind, int arg) {
    if (dp_tl_on) dp_tl_record(dp_tl_on, kind, 'b', arg);
}
static inline void dp_tl_async_end(int kind, int arg) {
    if (dp_tl_on) dp_tl_record(dp_tl_on, kind, 'e', arg);
}

/* The checkpoint writer thread's span: recorded only while a window is open
 * (read atomically: the main thread opens and closes windows). */
void dp_tl_writer_begin(int kind, int arg);
void dp_tl_writer_end(int kind, int arg);

/* Nanoseconds of CLOCK_MONOTONIC. */
int64_t dp_tl_now(void);

/* Allocates the recorder with room for main_cap events of the main thread and
 * writer_cap of the checkpoint writer's. Must precede the writer thread's start. */
void dp_tl_open(size_t main_cap, size_t writer_cap);

/* Opens (on = 1) or closes the recording window. Main thread only. */
void dp_tl_window(int on);

/* 1 between dp_tl_open and dp_tl_close. */
int dp_tl_is_open(void);

/* The events recorded by the main thread (thread 0) or the writer (thread 1).
 * Read the writer's only after the writer thread has stopped or is idle. */
const dp_tl_buffer *dp_tl_events(int thread);

/* Closes any window and frees the recorder. */
void dp_tl_close(void);

/* Parses a step range "A:B" (1 <= A <= B, global step numbers, both
 * included) into first and last; returns 0, or -1 with a reason in why. */
int dp_tl_parse_steps(const char *s, long long *first, long long *last, char *why, size_t len);

#endif
