/* blas.h - (private) the sgemm every layer shares, and the OpenBLAS and FPU
 * settings a rank runs with. */
#ifndef DPTRAIN_CORE_BLAS_H
#define DPTRAIN_CORE_BLAS_H

#include "dptrain/shape.h"

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, through cblas_sgemm.
 * ta/tb select A^T / B^T; lda/ldb are the row strides of A and B as stored. */
void dp_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* The OpenBLAS kernel family this CPU should use when OpenBLAS's own detection
 * fell back to its generic one (virtual machines often report a CPU model it
 * does not know), or NULL when its choice stands or OPENBLAS_CORETYPE is set.
 * OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the caller must set it
 * and re-execute the program. */
const char *dp_blas_pick_core(void);

/* Sets OpenBLAS's thread count (one rank per core wants 1). */
void dp_blas_set_threads(int n);

/* Makes the calling thread's float arithmetic treat subnormal inputs and
 * results as zero (x86 FTZ and DAZ; a no-op elsewhere), as TensorFlow does.
 * Adam's moments of weights whose inputs are always 0 (image borders) decay
 * into the subnormal range, where every operation on them costs about a
 * hundred cycles: the CNN's optimizer step took 3x longer without it. */
void dp_flush_denormals(void);

#endif
