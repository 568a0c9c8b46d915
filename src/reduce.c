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
    for (size_t i = 0; i < n; i++) acc[i] += (int64_t)llrint((double)g[i] * s);
}

void reduce_finish(float *out, const int64_t *acc, size_t n, int e, double scale) {
    const double s = ldexp(scale, -e);
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)acc[i] * s);
}

double reduce_max_abs(const float *g, size_t n) {
    float m = 0;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(g[i]);
        m = a > m ? a : m;
        nan |= a != a;
    }
    /* NaN must win, so a poisoned gradient is caught rather than scaled away. */
    return nan ? NAN : m;
}
