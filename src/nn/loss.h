/* loss.h - losses and the accuracy metric over one batch.
 *
 * When `fused` is set the model's output is logits and the loss applies the
 * final sigmoid (BCE) or softmax (CE) itself, in the numerically stable form. */
#ifndef DPTRAIN_LOSS_H
#define DPTRAIN_LOSS_H

#include "dptrain/config.h"

/* Per-batch totals; losses are summed (not averaged) so batches and ranks can be
 * combined exactly and divided once by the number of terms. A term is one row,
 * or one position of a row when the model outputs a sequence [T, K] (a language
 * model): then the loss and accuracy average over all B*T positions, as Keras. */
typedef struct dp_loss_sums {
    double loss;  /* sum over terms of the per-term loss */
    long correct; /* terms whose prediction matches the target */
    long terms;   /* rows, or rows * positions */
} dp_loss_sums;

/* out[B,K]: model output (logits when fused). For a sequence output pass its
 * B*T positions as the B rows, each with ycols / T targets. y[B,ycols]: targets, ycols == K
 * (one-hot or regression values) or ycols == 1 (class ids; for K == 1 the 0/1 label).
 * Per-row loss follows Keras: mse and BCE are averaged over K, CE is summed.
 * If dout is not NULL it receives d(sum of row losses)/d(out) [B,K].
 * Accuracy: K == 1 compares the thresholded prediction (0.5, or logit 0) with
 * the label; K > 1 compares the argmax with the class id or one-hot argmax.
 * Returns the sums for these B rows. */
dp_loss_sums dp_loss_forward_backward(dp_loss_kind kind, int fused, const float *out,
                                      const float *y, int B, int K, int ycols, float *dout);

#endif
