/* test_init.c - the Keras initializers: ranges, orthogonality, determinism. */
#include "layers/init.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>

/* W W^T = I for a wide matrix (orthonormal rows), W^T W = I for a tall one. */
static void check_orthonormal(int rows, int cols) {
    float *w = malloc((size_t)rows * cols * sizeof *w);
    dp_init_orthogonal(w, rows, cols, 77);
    int n = rows <= cols ? rows : cols;
    double worst = 0.0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double dot = 0.0;
            if (rows <= cols)
                for (int i = 0; i < cols; i++) dot += (double)w[a * cols + i] * w[b * cols + i];
            else
                for (int i = 0; i < rows; i++) dot += (double)w[i * cols + a] * w[i * cols + b];
            double err = fabs(dot - (a == b));
            if (err > worst) worst = err;
        }
    CU_ASSERT(worst < 1e-5);
    /* Not a permutation or a scaled identity: entries are spread out. */
    int big = 0;
    for (int i = 0; i < rows * cols; i++) big += fabsf(w[i]) > 0.9f;
    CU_ASSERT(big < n);
    float *again = malloc((size_t)rows * cols * sizeof *again);
    dp_init_orthogonal(again, rows, cols, 77);
    ASSERT_SAME_FLOATS(w, again, (size_t)rows * cols);
    dp_init_orthogonal(again, rows, cols, 78);
    CU_ASSERT(again[0] != w[0]);
    free(w);
    free(again);
}

static void test_orthogonal(void) {
    check_orthonormal(8, 8);
    check_orthonormal(6, 24); /* an LSTM's recurrent kernel [units, 4 units] */
    check_orthonormal(24, 6);
}

static void test_glorot_uniform(void) {
    enum { I = 30, O = 20 };
    float w[I * O];
    dp_init_glorot_uniform(w, I, O, 5);
    float limit = sqrtf(6.0f / (I + O)), mx = 0.0f;
    double mean = 0.0;
    for (int i = 0; i < I * O; i++) {
        CU_ASSERT(fabsf(w[i]) <= limit);
        if (fabsf(w[i]) > mx) mx = fabsf(w[i]);
        mean += w[i];
    }
    CU_ASSERT(mx > 0.9f * limit); /* fills the range */
    CU_ASSERT(fabs(mean / (I * O)) < 0.1 * limit);
}

int main(void) {
    static const test_case cases[] = {
        {"orthogonal", test_orthogonal},
        {"glorot uniform", test_glorot_uniform},
        {NULL, NULL},
    };
    return test_run_suite("init", cases);
}
