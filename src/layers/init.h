/* init.h - Keras's weight initializers, as pure functions of an rng key, so a
 * layer's initial weights are the same bits on any number of ranks. */
#ifndef DPTRAIN_LAYERS_INIT_H
#define DPTRAIN_LAYERS_INIT_H

#include <stddef.h>
#include <stdint.h>

/* w[n] ~ U(-limit, limit), value i drawn from stream `key` at counter first + i. */
void dp_init_uniform(float *w, size_t n, float limit, uint64_t key, uint64_t first);

/* w[n] ~ N(0, stddev^2), value i from stream `key` (Box-Muller). */
void dp_init_normal(float *w, size_t n, double stddev, uint64_t key);

/* Glorot uniform for a kernel [fan_in, fan_out]: limit sqrt(6 / (fan_in + fan_out)). */
void dp_init_glorot_uniform(float *w, int fan_in, int fan_out, uint64_t key);

/* Keras Orthogonal (gain 1) for w[rows, cols]: the rows (if rows <= cols) or
 * the columns are orthonormal. A matrix of standard normals from `key` is
 * orthonormalized by modified Gram-Schmidt in double, which gives the Q of a
 * QR factorization with a positive diagonal in R, as Keras's sign fix does. */
void dp_init_orthogonal(float *w, int rows, int cols, uint64_t key);

#endif
