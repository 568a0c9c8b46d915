/* grad_fixed.c - fixed-point gradient sums that are exact, so their order cannot matter. */
#include "grad/grad_fixed.h"

#include <math.h>
#include <string.h>

int dp_grad_fixed_pick_exponent(double maxabs, long terms) {
    if (!(maxabs > 0)) return 0;
    int emax, eterms;
    frexp(maxabs, &emax);                            /* maxabs < 2^emax */
    frexp((double)(terms > 0 ? terms : 1), &eterms); /* terms < 2^eterms */
    /* Keep the total below 2^62 so the int64 sum cannot overflow. */
    return 62 - emax - eterms;
}

void dp_grad_fixed_accumulate(int64_t *acc, const float *g, size_t n, int e) {
    const double s = ldexp(1.0, e);
    /* Truncation rather than rounding: it vectorizes, and its error, below one
     * step of the 2^-e grid, is some 2^-36 of float32's relative precision. */
    for (size_t i = 0; i < n; i++) acc[i] += (int64_t)((double)g[i] * s);
}

void dp_grad_fixed_convert(int64_t *acc, const float *g, size_t n, int e) {
    const double s = ldexp(1.0, e);
    for (size_t i = 0; i < n; i++) acc[i] = (int64_t)((double)g[i] * s);
}

void dp_grad_fixed_finish(float *out, const int64_t *acc, size_t n, int e, double scale) {
    const double s = ldexp(scale, -e);
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)acc[i] * s);
}

double dp_grad_fixed_max_abs(const float *g, size_t n) {
    /* With the sign bit cleared, a float's bits order like its magnitude, and
     * Inf and NaN lie above every finite value: one unsigned max, which
     * vectorizes (a float max does not, without -ffast-math), finds both. */
    uint32_t best = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, g + i, sizeof b);
        b &= 0x7fffffffu;
        best = b > best ? b : best;
    }
    /* Non-finite must win, so a poisoned gradient is caught rather than scaled away. */
    if (best >= 0x7f800000u) return NAN;
    float f;
    memcpy(&f, &best, sizeof f);
    return f;
}
