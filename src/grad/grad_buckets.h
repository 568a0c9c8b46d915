/* grad_buckets.h - (private) the gradient sum across micro-batches and ranks, in
 * buckets that start while backward is still running (docs/DESIGN.md §5, §8).
 *
 * Buckets are contiguous ranges of the gradient arena covering whole layers,
 * formed from the last layer backwards, so the first bucket is complete as
 * soon as the last layers' backward is done. In exact mode a bucket travels in
 * two nonblocking collectives: a max of |g| per tensor, which fixes each
 * tensor's fixed-point scale, then an int64 sum. In fast mode it is one float
 * sum. The loss, accuracy count and stop flag ride with the last bucket. */
#ifndef DPTRAIN_GRAD_BUCKETS_H
#define DPTRAIN_GRAD_BUCKETS_H

#include <stdint.h>
#include "core/comm.h"
#include "dptrain/config.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "core/phases.h"

/* Where a bucket is in its step. The exact mode goes through both in-flight
 * phases (the max, then the sum); the fast mode goes straight to the sum. */
typedef enum dp_bucket_phase {
    DP_BUCKET_WAITING = 0,   /* its layers' backward is still running */
    DP_BUCKET_MAX_IN_FLIGHT, /* exact mode: the max |g| allreduce */
    DP_BUCKET_SUM_IN_FLIGHT, /* the sum allreduce */
    DP_BUCKET_DONE,
} dp_bucket_phase;

typedef struct dp_grad_bucket {
    int low_layer;        /* complete once this layer's backward is done */
    int t_first, t_count; /* its tensors, in arena order */
    size_t off, len;      /* its range of the arena */
    dp_bucket_phase phase;
    dp_comm_req req;
    double *mx;   /* [t_count + 2] max |g| per tensor; the last bucket adds
                              |loss| and the stop flag */
    int64_t *acc; /* [len + 2] exact mode: fixed-point sums; the last bucket
                              adds the loss and the correct count */
} dp_grad_bucket;

typedef struct dp_grad_buckets {
    dp_reduction mode;
    long terms; /* S: micro-batches summed per step */
    int n_buckets;
    dp_grad_bucket *buckets; /* [n_buckets], first = last layers */
    int n_tensors;
    size_t *t_off, *t_len; /* [n_tensors] */
    double extra[4];       /* fast mode: loss, correct, stop bit 1, stop bit 2 */
    dp_comm_req extra_req;
    /* per step */
    const dp_comm *c;
    float *grads;                    /* the model's arena: last micro-batch's gradient in,
                                 the summed gradient out, times grad_scale the mean */
    const float *const *micro_grads; /* [n_micro] micro-batch gradients (exact mode); the last
                                 is grads */
    int n_micro;
    const dp_loss_sums *micro_sums; /* [n_micro] */
    size_t rows;
    float grad_scale; /* after dp_grad_buckets_finish: 1/rows for the fast sum, 1 when
                                 the exact sum already is the mean */
    int stop, bad;
    double *seconds; /* [DP_TIME_PHASES] where to add REDUCE and COMM time */
} dp_grad_buckets;

/* The mode a reduction over `shards` micro-batches runs in when `asked` is
 * configured: up to two terms, the float sum is already exact (grad_buckets.c). */
dp_reduction dp_grad_buckets_pick_mode(dp_reduction asked, long shards);

/* Plans buckets of about bucket_bytes for model m. */
void dp_grad_buckets_init(dp_grad_buckets *r, const dp_model *m, dp_reduction mode, long shards,
                          size_t bucket_bytes, double *seconds);

/* Starts a step. micro_grads[n_micro] are this rank's micro-batch gradients (exact mode;
 * the last must be m->grads, whose backward is about to run), micro_sums their loss
 * sums, rows the step's rows over all ranks, stop this rank's stop request. */
void dp_grad_buckets_begin(dp_grad_buckets *r, const dp_comm *c, float *grads,
                           const float *const *micro_grads, int n_micro,
                           const dp_loss_sums *micro_sums, size_t rows, int stop);

/* Backward hook: layer's gradients are final; starts the buckets it completes
 * and advances the ones in flight. Matches dp_model_backward_hooked's callback. */
void dp_grad_buckets_layer_done(void *r, int layer);

/* Completes every bucket. grads then holds the sum over all micro-batches of all
 * ranks, and grads times grad_scale the mean (the optimizer applies the scale
 * and rejects a non-finite result). Returns 0 and fills out and *stop (flag
 * bits 1 and 2, each set when a rank set it; with bit 2 bit 1 may be lost), or -1 on every rank when the loss is NaN or Inf, or, in exact mode, a
 * gradient. */
int dp_grad_buckets_finish(dp_grad_buckets *r, dp_loss_sums *out, int *stop);

void dp_grad_buckets_free(dp_grad_buckets *r);

#endif
