/* sgemm.c - OpenBLAS sgemm GFLOP/s at N^3 on the calling thread count, with
 * the same kernel choice dptrain makes (OPENBLAS_CORETYPE when OpenBLAS falls
 * back to its generic kernels). Prints "GFLOPS CORENAME". Usage: sgemm [N] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/blas.h"

int main(int argc, char **argv) {
    const char *core = dp_blas_pick_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv("/proc/self/exe", argv);
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) {
        a[i] = (float)(i % 7) * 1e-3f;
        b[i] = (float)(i % 5) * 1e-3f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    struct timespec t0, t1;
    int reps = 5;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%.1f %s\n", 2.0 * n * n * n * reps / s / 1e9, openblas_get_corename());
    free(a);
    free(b);
    free(c);
    return 0;
}
