/* eval.h - loss and accuracy of a model over held rows (validation, test). */
#ifndef DPTRAIN_EVAL_H
#define DPTRAIN_EVAL_H

#include "dptrain/data.h"
#include "dptrain/loss.h"
#include "dptrain/model.h"

/* Runs the model in inference mode over all rows of r in chunks of at most
 * m->max_batch and returns the summed loss, correct count and row count. */
dp_loss_sums eval_run_rows(dp_model *m, const dp_rows *r);

#endif
