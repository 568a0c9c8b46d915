/* reduce.c - fixed-point gradient sums that are exact, so their order cannot matter. */
#include "dptrain/reduce.h"

#include <math.h>

int reduce_pick_exponent(double maxabs, long terms) {
    if (!(maxabs > 0)) return 0;
    int emax, eterms;
    frexp(maxabs, &emax);          /* maxabs < 2^emax */
    frexp((double)(terms > 0 ? terms : 1), &eterms); /* terms < 2^eterms */
    /* Keep the total below 2^62 so the int64 sum cannot overflow. */
    return 62 - emax - eterms;
}

void reduce_accumulate(int64_t *acc, const float *g, size_t n, int e) {
    const double s = ldexp(1.0, e);
    /* Truncation rather than rounding: it vectorizes, and its error, below one
     * step of the 2^-e grid, is some 2^-36 of float32's relative precision. */
    for (size_t i = 0; i < n; i++) acc[i] += (int64_t)((double)g[i] * s);
}

void reduce_convert(int64_t *acc, const float *g, size_t n, int e) {
    const double s = ldexp(1.0, e);
    for (size_t i = 0; i < n; i++) acc[i] = (int64_t)((double)g[i] * s);
}

void reduce_finish(float *out, const int64_t *acc, size_t n, int e, double scale) {
    const double s = ldexp(scale, -e);
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)acc[i] * s);
}

double reduce_max_abs(const float *g, size_t n) {
    /* Sixteen independent lanes: without -ffast-math the compiler may not
     * reorder one running max or sum, but it does vectorize lane-wise work. */
    enum { LANES = 16 };
    float m[LANES] = {0}, poison[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float a = fabsf(g[i + j]);
            m[j] = a > m[j] ? a : m[j];
            /* x * 0 is NaN exactly when x is NaN or Inf. */
            poison[j] += g[i + j] * 0.0f;
        }
    for (; i < n; i++) {
        float a = fabsf(g[i]);
        m[0] = a > m[0] ? a : m[0];
        poison[0] += g[i] * 0.0f;
    }
    float best = 0, bad = 0;
    for (int j = 0; j < LANES; j++) {
        best = m[j] > best ? m[j] : best;
        bad += poison[j];
    }
    /* Non-finite must win, so a poisoned gradient is caught rather than scaled away. */
    return bad == 0 ? best : NAN;
}
