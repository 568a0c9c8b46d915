/* grad_fixed.h - exact, order-independent gradient sums (docs/DESIGN.md §5).
 *
 * Each micro-batch gradient g[n] is converted to int64 fixed point with a
 * power-of-two scale shared by all ranks (agreed by a max over |g|), the
 * integers are added (exact, so any order and grouping gives the same bits)
 * and converted back once. */
#ifndef DPTRAIN_GRAD_FIXED_H
#define DPTRAIN_GRAD_FIXED_H

#include <stddef.h>
#include <stdint.h>

/* Exponent e such that |x| * 2^e * terms stays below 2^62 for every |x| <= maxabs:
 * the scale to use when `terms` values of magnitude up to maxabs are summed. */
int dp_grad_fixed_pick_exponent(double maxabs, long terms);

/* acc[n] += trunc(g[n] * 2^e). */
void dp_grad_fixed_accumulate(int64_t *acc, const float *g, size_t n, int e);

/* out[n] = acc[n] * 2^-e * scale, rounded once to float. */
void dp_grad_fixed_finish(float *out, const int64_t *acc, size_t n, int e, double scale);

/* acc[n] = trunc(g[n] * 2^e): the first term, without reading acc. */
void dp_grad_fixed_convert(int64_t *acc, const float *g, size_t n, int e);

/* max |g[i]| over n values (0 for n == 0). */
double dp_grad_fixed_max_abs(const float *g, size_t n);

#endif
