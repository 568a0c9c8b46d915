/* fastmath.h - an expf that vectorizes: no branches, no libm call, so a loop
 * over a row of logits compiles to SIMD code (-O3) where libm's expf would be
 * one call per element. */
#ifndef DPTRAIN_FASTMATH_H
#define DPTRAIN_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* e^x within 2 ulp of expf for x in [-87.3, 88.3]; inputs beyond are clamped
 * (so it never returns inf, NaN or a denormal; a NaN input gives a finite
 * value, the caller checks its inputs). Cody-Waite reduction x = n ln2 + r,
 * |r| <= ln2 / 2, then Cephes's degree-6 polynomial for e^r. */
static inline float dp_expf(float x) {
    x = x < -87.3f ? -87.3f : x > 88.3f ? 88.3f : x;
    float n = (float)(int)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
