/* lstm_gemm.h - (private) the LSTM's per-step product with its recurrent
 * kernel, which stays the same for all T steps of a window: packed once per
 * pass instead of once per step as sgemm would. */
#ifndef DPTRAIN_LAYERS_LSTM_GEMM_H
#define DPTRAIN_LAYERS_LSTM_GEMM_H

#include <stddef.h>

/* Floats of a packed [K, N] matrix (N rounded up to whole panels). */
size_t dp_lstm_packed_size(int K, int N);

/* Packs the [K, N] matrix whose element (k, n) is w[k*sk + n*sn] for
 * dp_lstm_gemm_packed: panels of columns, each [K, panel width], the last one
 * padded with zeros. p holds dp_lstm_packed_size(K, N) floats, 64-byte aligned. */
void dp_lstm_pack(const float *w, size_t sk, size_t sn, int K, int N, float *p);

/* c[M, N] (row stride ldc) = a[M, K] (row stride lda) w, or c += a w when
 * accumulate, with w packed by dp_lstm_pack. With AVX-512 each element of c
 * is summed over k in the same order whatever M, so a row's result does not
 * depend on the other rows; elsewhere this is as true as it is of sgemm. */
void dp_lstm_gemm_packed(int M, int N, int K, const float *a, int lda, const float *p, float *c,
                         int ldc, int accumulate);

#endif
