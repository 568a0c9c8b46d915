/* init.c - Keras's weight initializers over the counter-based rng. */
#include "layers/init.h"

#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/rng.h"

void dp_init_uniform(float *w, size_t n, float limit, uint64_t key, uint64_t first) {
    for (size_t i = 0; i < n; i++) w[i] = (2.0f * dp_rng_uniform(key, first + i) - 1.0f) * limit;
}

void dp_init_glorot_uniform(float *w, int fan_in, int fan_out, uint64_t key) {
    float limit = (float)sqrt(6.0 / (fan_in + fan_out));
    dp_init_uniform(w, (size_t)fan_in * (size_t)fan_out, limit, key, 0);
}

/* Standard normal number i of stream key (Box-Muller on two uniforms in (0, 1]). */
static double normal_at(uint64_t key, uint64_t i) {
    double u1 = ((double)(dp_rng_u64(key, 2 * i) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(dp_rng_u64(key, 2 * i + 1) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void dp_init_normal(float *w, size_t n, double stddev, uint64_t key) {
    for (size_t i = 0; i < n; i++) w[i] = (float)(stddev * normal_at(key, i));
}

void dp_init_orthogonal(float *w, int rows, int cols, uint64_t key) {
    /* Orthonormalize the n shorter vectors of length len: the rows when rows <= cols. */
    int by_rows = rows <= cols;
    int n = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double *a = DP_MALLOC((size_t)n * (size_t)len * sizeof *a); /* [n, len] */
    for (size_t i = 0; i < (size_t)n * (size_t)len; i++) a[i] = normal_at(key, i);
    for (int k = 0; k < n; k++) {
        double *v = a + (size_t)k * len;
        for (int j = 0; j < k; j++) {
            const double *q = a + (size_t)j * len;
            double dot = 0.0;
            for (int i = 0; i < len; i++) dot += q[i] * v[i];
            for (int i = 0; i < len; i++) v[i] -= dot * q[i];
        }
        double norm = 0.0;
        for (int i = 0; i < len; i++) norm += v[i] * v[i];
        norm = sqrt(norm);
        for (int i = 0; i < len; i++) v[i] /= norm;
    }
    for (int k = 0; k < n; k++)
        for (int i = 0; i < len; i++) {
            float x = (float)a[(size_t)k * len + i];
            if (by_rows) w[(size_t)k * cols + i] = x;
            else w[(size_t)i * cols + k] = x;
        }
    free(a);
}
