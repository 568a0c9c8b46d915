/* reader.h - (private) the streaming reader: a thread that reads the rows of
 * the coming steps and evaluation chunks from the data file while training
 * runs (docs/DESIGN.md §4.1).
 *
 * The reader predicts what the training loop asks for next: the steps of an
 * epoch in order, then this rank's validation chunks (if any), then the next
 * epoch, and after the last epoch the test chunks. It runs up to `prefetch`
 * items ahead into a ring of slots. A request that does not match the
 * prediction (a stop, a resume, an early stop) drops the ring and restarts the
 * reader there, so the prediction only decides speed, never which rows a step
 * gets. Every item's rows are those the in-memory path would use: the same
 * permutation (keyed by seed, epoch and shard), converted and standardized by
 * the same code, so the bits are the same. The thread never calls MPI, and
 * calls HDF5 only under core/h5lock.h. */
#ifndef DPTRAIN_READER_H
#define DPTRAIN_READER_H

#include <pthread.h>
#include <stdint.h>
#include "data/data.h"
#include "data/shard.h"

typedef enum dp_read_kind { DP_READ_TRAIN, DP_READ_VAL, DP_READ_TEST, DP_READ_END } dp_read_kind;

/* One item: TRAIN (epoch, step), VAL (epoch, this rank's chunk index) or
 * TEST (0, chunk index). */
typedef struct dp_read_pos {
    int kind, epoch;
    long index;
} dp_read_pos;

/* A held-out set as this rank evaluates it: rows [first, first + count) of
 * split `split` (count may be 0). */
typedef struct dp_read_heldout {
    const char *split;
    size_t first, count;
} dp_read_heldout;

/* What the reader reads; the pointers must outlive it. */
typedef struct dp_reader_cfg {
    const dp_data_info *info;
    const dp_shard_plan *plan;
    int first_shard, n_shards; /* this rank's shards */
    unsigned long long seed;   /* keys the permutations */
    int epochs;
    int n_classes;             /* labels' range check (0: none) */
    const float *mean, *std;   /* [width] standardization, or NULL */
    dp_read_heldout val, test; /* chunks of DP_READ_CHUNK rows */
    int prefetch;              /* slots, >= 1 */
} dp_reader_cfg;

#define DP_READ_CHUNK 256 /* rows per evaluation chunk: DP_EVAL_CHUNK */

/* A filled slot: the rows of one item. TRAIN: micro-batch k (owned shard k)
 * is rows [off[k], off[k] + rows[k]) of x and y, and ids holds each row's
 * training-set index; with `raw`, x holds the rows as stored in file order
 * and raw_row[i] says where row i is (dp_data_widen_rows). VAL/TEST: n rows
 * of the chunk, x as float32. */
typedef struct dp_read_slot {
    dp_read_pos pos;
    int state;         /* internal */
    size_t n;          /* rows in the item */
    float *x, *y;      /* [n, width], [n, y_cols] */
    uint64_t *ids;     /* [n] file rows */
    int raw;           /* x as stored: widened by the training thread */
    uint32_t *raw_row; /* [n] with raw: row i's place in x */
    int *off, *rows;   /* [n_shards] TRAIN only */
    dp_error err;      /* a failed read's error */
} dp_read_slot;

typedef struct dp_reader {
    dp_reader_cfg cfg;
    size_t width, y_cols;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started, quit;
    dp_read_slot *slots;   /* [prefetch] ring */
    int head, count;       /* consumer's slot; slots in the ring */
    int held;              /* the consumer holds the head */
    dp_read_pos next;      /* the reader's next item */
    int perm_epoch;        /* epoch the permutations are for; -1: none */
    uint32_t **perm;       /* [n_shards][shard rows] reader thread only */
    dp_data_file files[3]; /* train, val, test; reader thread only */
    double stall;          /* seconds the consumer waited for a slot */
    long misses;           /* requests that restarted the reader */
} dp_reader;

/* Starts the reader thread at `start` (the first item the loop will ask for).
 * Allocates every slot up front. Returns 0, or -1 with err set (nothing left
 * running). */
int dp_reader_start(dp_reader *r, const dp_reader_cfg *cfg, dp_read_pos start, dp_error *err);

/* Returns the slot for `want`, waiting (and counting the wait as stall) until
 * it is read. The slot stays valid until dp_reader_release. Returns NULL with
 * err set when its read failed; the reader then stops reading ahead. */
const dp_read_slot *dp_reader_get(dp_reader *r, dp_read_pos want, dp_error *err);

/* Gives the slot from dp_reader_get back for reuse. */
void dp_reader_release(dp_reader *r);

/* Stops and joins the thread and frees everything. Safe on a zeroed struct. */
void dp_reader_stop(dp_reader *r);

#endif
