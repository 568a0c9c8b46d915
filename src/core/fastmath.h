/* fastmath.h - e^x, sigmoid and tanh that vectorize: no branches and no libm
 * call, so a loop over a row compiles to SIMD code (-O3) where libm's expf
 * or tanhf would be one call per element. The same bits on every machine, as
 * no library version is involved. */
#ifndef DPTRAIN_FASTMATH_H
#define DPTRAIN_FASTMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* e^x within 2 ulp of expf for x in [-87.3, 88.3]; inputs beyond are clamped,
 * so +-inf and overflow give finite values (e^88.3, e^-87.3 ~ 1.2e-38) and
 * never a denormal; NaN gives NaN. Cephes's expf: x = n ln2 + r, |r| <= ln2/2
 * (ln2 split in two so r is exact), a degree-6 polynomial for e^r, and 2^n
 * put into the exponent bits. */
static inline float dp_expf(float x) {
    /* NaN fails the first test and becomes 88.3 here, so the integer
     * conversion below never sees it; it is put back at the end. */
    float v = x < 88.3f ? x : 88.3f;
    v = v > -87.3f ? v : -87.3f;
    /* n = round(v / ln2): adding 1.5 * 2^23 leaves no fraction bits */
    float n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = v - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n, n in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x;
}

/* 1 / (1 + e^-z) within 4e-7 relative error of the exact value for all z
 * (dp_expf's 2 ulp plus the division's rounding); 1 at +inf, a value below
 * 1e-30 (not 0) at -inf; NaN gives NaN. */
static inline float dp_sigmoidf(float z) {
    return 1.0f / (1.0f + dp_expf(-z));
}

/* tanh within 4e-7 relative error of the exact value for all z, odd in z
 * (bit-exact tanh(-z) = -tanh(z)), +-1 at +-inf; NaN gives NaN. Cephes's
 * tanhf: an odd polynomial below |z| = 0.625, where 1 - 2/(e^2|z| + 1) would
 * lose the low bits to cancellation, and that formula above. Both are
 * computed and one is selected, which keeps a loop branch-free. */
static inline float dp_tanhf(float z) {
    float a = fabsf(z);
    float big = 1.0f - 2.0f / (dp_expf(2.0f * a) + 1.0f);
    float s = z * z;
    float small = -5.70498872745e-3f;
    small = small * s + 2.06390887954e-2f;
    small = small * s - 5.37397155531e-2f;
    small = small * s + 1.33314422036e-1f;
    small = small * s - 3.33332819422e-1f;
    small = small * s * a + a;
    float t = a < 0.625f ? small : big;
    return copysignf(t, z);
}

/* Streaming loops over activations ([B*T, ff] is megabytes) run at memory
 * latency, not bandwidth, on machines whose hardware prefetcher does not
 * keep up: gelu's passes ran 2.5x slower on data not in cache than on data
 * in cache. Touching the line DP_PREFETCH_AHEAD floats ahead, once per
 * cache line of DP_PREFETCH_BLOCK floats, hides that. Only addresses inside
 * x[0, n) are prefetched. */
#define DP_PREFETCH_BLOCK 16   /* floats per 64-byte cache line */
#define DP_PREFETCH_AHEAD 1024 /* 4 KiB */

static inline void dp_prefetch_read(const float *x, size_t i, size_t n) {
    if (i + DP_PREFETCH_AHEAD < n) __builtin_prefetch(x + i + DP_PREFETCH_AHEAD, 0);
}

static inline void dp_prefetch_write(float *x, size_t i, size_t n) {
    if (i + DP_PREFETCH_AHEAD < n) __builtin_prefetch(x + i + DP_PREFETCH_AHEAD, 1);
}

#endif
