/* rng.h - counter-based random numbers keyed by (seed, stream, counter).
 *
 * Nothing in dptrain draws from a per-rank stream: every random value is a pure
 * function of its key, so shuffles, initialization and dropout masks are the
 * same whatever the number of ranks (docs/DESIGN.md §5). */
#ifndef DPTRAIN_RNG_H
#define DPTRAIN_RNG_H

#include <stdint.h>
#include <stddef.h>

/* Mixes up to four key words into one 64-bit key (order matters). */
uint64_t dp_rng_make_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* The i-th 64-bit value of the stream named by key. */
uint64_t dp_rng_u64(uint64_t key, uint64_t i);

/* The i-th value of the stream as a float in [0, 1) with 24 random bits. */
float dp_rng_uniform(uint64_t key, uint64_t i);

/* out[k] = dp_rng_uniform(key, first + k) for k < n, many at a time. */
void dp_rng_uniform_fill(uint64_t key, uint64_t first, float *out, size_t n);

/* Fills perm[0..n) with a permutation of 0..n-1 (Fisher-Yates driven by key). */
void dp_rng_permute(uint64_t key, uint32_t *perm, size_t n);

#endif
