/* step_gemm.h - (private) a recurrent layer's per-step product with its
 * recurrent kernel, which stays the same for all T steps of a window: packed
 * once per pass instead of once per step as sgemm would. */
#ifndef DPTRAIN_LAYERS_STEP_GEMM_H
#define DPTRAIN_LAYERS_STEP_GEMM_H

#include <stddef.h>

/* The per-step product h[M, K] x U[K, N] with U packed once per pass.
 * sgemm repacks its operands on every call, which for the small batch of
 * one step costs as much as a fifth of the product; with AVX-512 the packed
 * form is panels of 32 columns ([K][32] each, zero-padded) multiplied by a
 * register-blocked kernel, otherwise it is a plain [K, N] copy for sgemm.
 * No alignment is needed. With AVX-512 each C entry is a sum over k in a
 * fixed order whatever M is, so a row's result does not depend on the other
 * rows; with sgemm this is as true as it is of sgemm. */

/* Floats needed to pack a [K, N] matrix. */
size_t dp_step_packed_floats(int K, int N);

/* Packs the [K, N] matrix whose element (k, n) is src[k * sk + n * sn]:
 * sk = N, sn = 1 for U as stored, sk = 1, sn = K for its transpose. */
void dp_step_pack(float *p, const float *src, int K, int N, int sk, int sn);

/* C[M, N] = A[M, K] P (accumulate 0) or C + A P (accumulate 1), where P
 * came from dp_step_pack; lda and ldc are the row strides of A and C. */
void dp_step_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
                  float *C, int ldc);

#endif
