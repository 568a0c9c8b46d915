/* exp_poly.h - a vectorizable e^x for the elementwise loops (gelu, softmax). */
#ifndef DPTRAIN_LAYERS_EXP_POLY_H
#define DPTRAIN_LAYERS_EXP_POLY_H

#include <stdint.h>
#include <string.h>

/* e^x within 2 ulp for x in [-87, 88]: x = k ln2 + r with |r| <= ln2/2, 2^k
 * built in the exponent bits and e^r by its Taylor polynomial of degree 7
 * (error below 3e-9 on that interval). x is clamped to [-87, 88], where 2^k
 * stays a normal float (e^-inf gives 1.6e-38, not 0); NaN stays NaN.
 * Branch-free, so a loop over it vectorizes: libm's expf is a call per value.
 * Its comparisons are integer ones on x's bits, because float compares keep
 * a loop from vectorizing under the default -ftrapping-math. */
static inline float dp_exp_poly(float x) {
    int32_t b;
    memcpy(&b, &x, sizeof b);
    /* As signed ints the bits order the floats >= 0 and put all negatives
     * below them; as unsigned ints the negatives sit above, by magnitude. */
    int32_t c = b < 0x42B00000 ? b : 0x42B00000; /* x <= 88 */
    uint32_t u = (uint32_t)c;
    u = u < 0xC2AE0000u ? u : 0xC2AE0000u; /* x >= -87 */
    float xc;
    memcpy(&xc, &u, sizeof xc);
    /* k = round(x / ln2): the offset makes the argument positive, where the
     * int conversion's truncation is a floor. */
    int32_t ki = (int32_t)(xc * 1.44269504f + 128.5f) - 128;
    float k = (float)ki;
    float r = (xc - k * 0.693145752f) - k * 1.42860677e-6f; /* ln2 split in two */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = (ki + 127) << 23;
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    /* + (f - f) with f = x but +-inf made finite: 0, or NaN when x is NaN.
     * Arithmetic rather than a test, to keep loops vectorized. */
    int32_t fb = (b & 0x7fffffff) == 0x7f800000 ? b - 1 : b;
    float f;
    memcpy(&f, &fb, sizeof f);
    return p * two_k + (f - f);
}

#endif
