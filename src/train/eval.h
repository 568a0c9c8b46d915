/* eval.h - loss and accuracy of a model over held-out rows (validation, test).
 *
 * The held-out rows are cut into chunks of DP_EVAL_CHUNK rows and every rank
 * evaluates a consecutive run of whole chunks, so evaluation is shared instead
 * of stalling the other ranks behind rank 0. Each chunk is the same rows, run
 * in the same forward batches, wherever it runs, so per-chunk sums, added in
 * chunk order, are the same bits for any number of ranks. */
#ifndef DPTRAIN_EVAL_H
#define DPTRAIN_EVAL_H

#include <stddef.h>
#include "data/data.h"
#include "nn/loss.h"
#include "nn/model.h"

#define DP_EVAL_CHUNK 256

/* The rows [*first, *first + *count) of n held-out rows that `rank` of `size`
 * evaluates: whole chunks, split as evenly as the chunk count allows. */
void dp_eval_split_rows(size_t n, int rank, int size, size_t *first, size_t *count);

/* Runs the model in inference mode over r, whose rows start at row `first` of
 * the held-out set (a multiple of DP_EVAL_CHUNK), each chunk in forward batches
 * of m->max_batch rows (fewer at its end). Writes chunk i's loss sum, correct count and
 * loss-term count (loss.h) to sums[3 * i + 0..2], indexed from the set's first chunk; other
 * entries are left untouched. */
void dp_eval_run_chunks(dp_model *m, const dp_rows *r, size_t first, double *sums);

/* Runs one chunk of `rows` rows, x [rows, width] and y [rows, y_cols], as
 * dp_eval_run_chunks runs each of its chunks, and writes its loss sum, correct
 * count and loss-term count to c[0..2]. */
void dp_eval_run_chunk(dp_model *m, const float *x, const float *y, size_t rows, size_t x_width,
                       int y_cols, double *c);

/* Adds per-chunk sums[3 * n_chunks] in chunk order. */
dp_loss_sums dp_eval_total_chunks(const double *sums, size_t n_chunks);

#endif
