/* eval.c - inference over held-out rows, chunk by chunk. */
#include "train/eval.h"

void dp_eval_split_rows(size_t n, int rank, int size, size_t *first, size_t *count) {
    size_t chunks = (n + DP_EVAL_CHUNK - 1) / DP_EVAL_CHUNK;
    size_t c0 = chunks * (size_t)rank / (size_t)size;
    size_t c1 = chunks * (size_t)(rank + 1) / (size_t)size;
    size_t r0 = c0 * DP_EVAL_CHUNK, r1 = c1 * DP_EVAL_CHUNK;
    *first = r0 < n ? r0 : n;
    *count = (r1 < n ? r1 : n) - *first;
}

void dp_eval_run_chunk(dp_model *m, const float *x, const float *y, size_t rows, size_t x_width,
                       int y_cols, double *c) {
    dp_loss_sums s = {0};
    /* Forward batches of at most max_batch rows, the same on every rank
     * count: the model is built for the training batch, which may be
     * smaller than a chunk. */
    for (size_t j = 0; j < rows; j += (size_t)m->max_batch) {
        int b = (int)(rows - j < (size_t)m->max_batch ? rows - j : (size_t)m->max_batch);
        const float *out = dp_model_forward(m, x + j * x_width, b, NULL);
        dp_loss_sums part =
            dp_loss_forward_backward(m->loss, m->fused, out, y + j * (size_t)y_cols,
                                     b * m->positions, m->classes, y_cols / m->positions, NULL);
        s.loss += part.loss;
        s.correct += part.correct;
        s.terms += part.terms;
    }
    c[0] = s.loss;
    c[1] = (double)s.correct;
    c[2] = (double)s.terms;
}

void dp_eval_run_chunks(dp_model *m, const dp_rows *r, size_t first, double *sums) {
    size_t base = first / DP_EVAL_CHUNK;
    for (size_t i = 0; i < r->n; i += DP_EVAL_CHUNK) {
        size_t rows = r->n - i < DP_EVAL_CHUNK ? r->n - i : DP_EVAL_CHUNK;
        dp_eval_run_chunk(m, r->x + i * r->x_width, r->y + i * (size_t)r->y_cols, rows, r->x_width,
                          r->y_cols, sums + 3 * (base + i / DP_EVAL_CHUNK));
    }
}

dp_loss_sums dp_eval_total_chunks(const double *sums, size_t n_chunks) {
    dp_loss_sums t = {0};
    for (size_t i = 0; i < n_chunks; i++) {
        t.loss += sums[3 * i];
        t.correct += (long)sums[3 * i + 1];
        t.terms += (long)sums[3 * i + 2];
    }
    return t;
}
