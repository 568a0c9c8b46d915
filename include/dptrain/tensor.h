/* tensor.h - N-dimensional shapes and the few dense kernels every layer shares. */
#ifndef DPTRAIN_TENSOR_H
#define DPTRAIN_TENSOR_H

#include <stddef.h>

#define DP_MAX_DIMS 6

/* Shape of one sample, without the batch dimension: [D] for vectors, [T,D] for
 * sequences, [C,H,W] for images. */
typedef struct dp_shape {
    int ndim;
    int dim[DP_MAX_DIMS];
} dp_shape;

/* Product of the dimensions (1 for ndim 0). */
size_t tensor_numel_shape(const dp_shape *s);

/* Writes "[a, b, c]" into buf (always NUL-terminated); returns buf. */
char *tensor_format_shape(const dp_shape *s, char *buf, size_t n);

/* 1 if both shapes have the same rank and dimensions. */
int tensor_equal_shape(const dp_shape *a, const dp_shape *b);

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, through cblas_sgemm.
 * ta/tb select A^T / B^T; lda/ldb are the row strides of A and B as stored. */
void tensor_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

/* The OpenBLAS kernel family this CPU should use when OpenBLAS's own detection
 * fell back to its generic one (virtual machines often report a CPU model it
 * does not know), or NULL when its choice stands or OPENBLAS_CORETYPE is set.
 * OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the caller must set it
 * and re-execute the program. */
const char *tensor_pick_blas_core(void);

/* Sets OpenBLAS's thread count (one rank per core wants 1). */
void tensor_set_blas_threads(int n);

/* Makes the calling thread's float arithmetic treat subnormal inputs and
 * results as zero (x86 FTZ and DAZ; a no-op elsewhere), as TensorFlow does.
 * Adam's moments of weights whose inputs are always 0 (image borders) decay
 * into the subnormal range, where every operation on them costs about a
 * hundred cycles: the CNN's optimizer step took 3x longer without it. */
void tensor_flush_denormals(void);

#endif
