/* test_step_gemm.c - the recurrent layers' packed per-step product
 * (layers/step_gemm.h) against a double-precision reference: awkward sizes,
 * strides, accumulation, packed transposes, nothing written past N, on the
 * AVX-512 kernel where the build has it and on the sgemm fallback. */
#include "layercheck.h"
#include "testlib.h"

#include "layers/step_gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The same file built once more without AVX-512, under other names, so the
 * fallback is tested on every machine. */
#undef __AVX512F__
#define dp_step_packed_floats fallback_packed_floats
#define dp_step_pack fallback_pack
#define dp_step_gemm fallback_gemm
size_t fallback_packed_floats(int K, int N);
void fallback_pack(float *p, const float *src, int K, int N, int sk, int sn);
void fallback_gemm(int M, int N, int K, const float *A, int lda, const float *p, int accumulate,
                   float *C, int ldc);
#include "../../src/layers/step_gemm.c"
#undef dp_step_packed_floats
#undef dp_step_pack
#undef dp_step_gemm

/* The packed per-step product against a double reference, for sizes that
 * exercise full and partial 32-column panels, 8-, 4- and 1-row blocks,
 * strided rows, accumulation and packing a transpose; C holds random values
 * beyond N in each row, which must stay as they were. */
static void check_step_gemm(size_t (*pack_floats)(int, int),
                            void (*pack)(float *, const float *, int, int, int, int),
                            void (*gemm)(int, int, int, const float *, int, const float *, int,
                                         float *, int)) {
    const int sizes[][3] = {{1, 1, 1},   {3, 5, 7},    {8, 32, 16},
                            {13, 33, 9}, {32, 70, 40}, {21, 16, 64}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int trans = 0; trans <= 1; trans++)
            for (int acc = 0; acc <= 1; acc++) {
                int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], lda = K + 3, ldc = N + 5;
                float *A = malloc(sizeof(float) * M * lda), *W = malloc(sizeof(float) * K * N);
                float *C = malloc(sizeof(float) * M * ldc), *C0 = malloc(sizeof(float) * M * ldc);
                float *P = malloc(sizeof(float) * pack_floats(K, N));
                for (int i = 0; i < M * lda; i++) A[i] = uniform_in(300 + s, i, -1, 1);
                for (int i = 0; i < K * N; i++) W[i] = uniform_in(400 + s, i, -1, 1);
                for (int i = 0; i < M * ldc; i++) C[i] = C0[i] = uniform_in(500 + s, i, -1, 1);
                /* element (k, n) is W[k * N + n], or W[n * K + k] when W holds the transpose */
                if (trans) pack(P, W, K, N, 1, K);
                else pack(P, W, K, N, N, 1);
                gemm(M, N, K, A, lda, P, acc, C, ldc);
                double worst = 0.0;
                int pad_ok = 1;
                for (int i = 0; i < M; i++) {
                    for (int n = 0; n < N; n++) {
                        double want = acc ? C0[i * ldc + n] : 0.0;
                        for (int k = 0; k < K; k++)
                            want += (double)A[i * lda + k] * W[trans ? n * K + k : k * N + n];
                        worst = fmax(worst, fabs(C[i * ldc + n] - want));
                    }
                    for (int n = N; n < ldc; n++) pad_ok &= C[i * ldc + n] == C0[i * ldc + n];
                }
                CU_ASSERT(worst < 1e-4);
                CU_ASSERT(pad_ok); /* nothing written past N in a row */
                if (worst >= 1e-4 || !pad_ok)
                    printf("\n  step gemm M %d N %d K %d trans %d acc %d: err %g pad %d", M, N, K,
                           trans, acc, worst, pad_ok);
                free(A), free(W), free(C), free(C0), free(P);
            }
}

static void test_step_gemm(void) {
    check_step_gemm(dp_step_packed_floats, dp_step_pack, dp_step_gemm);
}

static void test_step_gemm_fallback(void) {
    check_step_gemm(fallback_packed_floats, fallback_pack, fallback_gemm);
}

int main(void) {
    static const test_case cases[] = {
        {"packed step product", test_step_gemm},
        {"packed step product, sgemm fallback", test_step_gemm_fallback},
        {NULL, NULL},
    };
    return test_run_suite("step_gemm", cases);
}
