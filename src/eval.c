/* eval.c - inference over held-out rows. */
#include "dptrain/eval.h"

dp_loss_sums eval_run_rows(dp_model *m, const dp_rows *r) {
    dp_loss_sums total = {0};
    int k = model_output_width(m);
    for (size_t i = 0; i < r->n; i += (size_t)m->max_batch) {
        int b = (int)(r->n - i < (size_t)m->max_batch ? r->n - i : (size_t)m->max_batch);
        const float *out = model_forward(m, r->x + i * r->x_width, b, NULL);
        dp_loss_sums s = loss_forward_backward(m->loss, m->fused, out, r->y + i * (size_t)r->y_cols,
                                               b, k, r->y_cols, NULL);
        total.loss += s.loss;
        total.correct += s.correct;
        total.rows += s.rows;
    }
    return total;
}
