/* lstm_cell.c - the LSTM's fused elementwise step (lstm_cell.h).
 *
 * libm's expf and tanhf are calls the compiler cannot vectorize, and an LSTM
 * step evaluates five of them per unit and row: with them the elementwise work
 * cost as much as all the GEMMs. The inline versions below are branch-free, so
 * each loop compiles to SIMD code. */
#include "layers/lstm_cell.h"

/* GCC keeps to 256-bit vectors on AVX-512 machines unless told otherwise; these
 * loops are arithmetic on data in cache, and the wider vectors made the forward
 * pass about 6% faster. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x, |relative error| <= 2 ulp, for x clamped to [-87, 88] (outside, the
 * result would overflow or go subnormal). Cephes's expf: x = n ln2 + r with
 * |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n put into the exponent bits. */
static inline float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* Adding 1.5 * 2^23 rounds x log2(e) to the integer n, which then sits in
     * the low mantissa bits of t. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    int32_t ti;
    memcpy(&ti, &t, sizeof ti);
    float r = x - n * 0.693359375f; /* ln2 in two parts keeps r exact */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (ti - 0x4B400000 + 127) * (1 << 23); /* 2^n, n in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* 1 / (1 + e^-z): relative error a few ulp everywhere; no overflow, as the
 * exponent is clamped. */
static inline float fast_sigmoid(float z) {
    return 1.0f / (1.0f + fast_exp(-z));
}

/* Cephes's tanhf: an odd polynomial below |z| = 0.625, where 1 - 2/(e^2z + 1)
 * would lose the low bits to cancellation, and that formula above. Both are
 * computed and one is selected, which keeps the loop branch-free. */
static inline float fast_tanh(float z) {
    float a = z < 0.0f ? -z : z;
    float big = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
    float s = z * z;
    float small = -5.70498872745e-3f;
    small = small * s + 2.06390887954e-2f;
    small = small * s - 5.37397155531e-2f;
    small = small * s + 1.33314422036e-1f;
    small = small * s - 3.33332819422e-1f;
    small = small * s * a + a;
    float r = a < 0.625f ? small : big;
    return z < 0.0f ? -r : r;
}

/* d act / dz expressed through y = act(z), as (y > lo) (a + y (b + c y)), so
 * the generic backward loop has no branches to stop its vectorization. */
typedef struct slope_coef {
    float lo, a, b, c;
} slope_coef;

static slope_coef slope_of(dp_act act) {
    switch (act) {
    case DP_ACT_RELU: return (slope_coef){0.0f, 1.0f, 0.0f, 0.0f};
    case DP_ACT_SIGMOID: return (slope_coef){-INFINITY, 0.0f, 1.0f, -1.0f}; /* y (1 - y) */
    case DP_ACT_TANH: return (slope_coef){-INFINITY, 1.0f, 0.0f, -1.0f};    /* 1 - y^2 */
    default: return (slope_coef){-INFINITY, 1.0f, 0.0f, 0.0f};              /* linear */
    }
}

static inline float slope(slope_coef k, float y) {
    return (y > k.lo ? 1.0f : 0.0f) * (k.a + y * (k.b + k.c * y));
}

int dp_lstm_act_ok(dp_act act) {
    return act == DP_ACT_LINEAR || act == DP_ACT_RELU || act == DP_ACT_SIGMOID ||
           act == DP_ACT_TANH;
}

void dp_lstm_act_apply(dp_act act, float *v, int n) {
    switch (act) {
    case DP_ACT_RELU:
        for (int j = 0; j < n; j++) v[j] = v[j] > 0.0f ? v[j] : 0.0f;
        return;
    case DP_ACT_SIGMOID:
        for (int j = 0; j < n; j++) v[j] = fast_sigmoid(v[j]);
        return;
    case DP_ACT_TANH:
        for (int j = 0; j < n; j++) v[j] = fast_tanh(v[j]);
        return;
    default: return; /* linear */
    }
}

/* The default pair (tanh, sigmoid) in one pass over the units. */
static void forward_tanh_sigmoid(int U, float *restrict z, const float *restrict b,
                                 const float *restrict cprev, float *restrict c, float *restrict ac,
                                 float *restrict h) {
    float *zi = z, *zf = z + U, *zg = z + 2 * U, *zo = z + 3 * U;
    const float *bi = b, *bf = b + U, *bg = b + 2 * U, *bo = b + 3 * U;
    for (int j = 0; j < U; j++) {
        float i = fast_sigmoid(zi[j] + bi[j]);
        float f = fast_sigmoid(zf[j] + bf[j]);
        float g = fast_tanh(zg[j] + bg[j]);
        float o = fast_sigmoid(zo[j] + bo[j]);
        float cj = f * cprev[j] + i * g;
        float a = fast_tanh(cj);
        zi[j] = i, zf[j] = f, zg[j] = g, zo[j] = o;
        c[j] = cj;
        ac[j] = a;
        h[j] = o * a;
    }
}

void dp_lstm_cell_forward(dp_act act, dp_act ract, int U, float *restrict z,
                          const float *restrict b, const float *restrict cprev, float *restrict c,
                          float *restrict ac, float *restrict h) {
    if (act == DP_ACT_TANH && ract == DP_ACT_SIGMOID) {
        forward_tanh_sigmoid(U, z, b, cprev, c, ac, h);
        return;
    }
    for (int j = 0; j < 4 * U; j++) z[j] += b[j];
    dp_lstm_act_apply(ract, z, 2 * U); /* i, f */
    dp_lstm_act_apply(act, z + 2 * U, U);
    dp_lstm_act_apply(ract, z + 3 * U, U);
    const float *i = z, *f = z + U, *g = z + 2 * U, *o = z + 3 * U;
    for (int j = 0; j < U; j++) c[j] = ac[j] = f[j] * cprev[j] + i[j] * g[j];
    dp_lstm_act_apply(act, ac, U);
    for (int j = 0; j < U; j++) h[j] = o[j] * ac[j];
}

/* With c = f cprev + i g and h = o act(c):
 *   dc_t = dc (through c_{t+1}) + dh o act'(c),   dL/dc_{t-1} = dc_t f,
 *   dz_i = dc_t g ract'(i),  dz_f = dc_t cprev ract'(f),
 *   dz_g = dc_t i act'(g),   dz_o = dh act(c) ract'(o). */
void dp_lstm_cell_backward(dp_act act, dp_act ract, int U, float *restrict z,
                           const float *restrict cprev, const float *restrict ac,
                           const float *restrict dh, float *restrict dc) {
    float *zi = z, *zf = z + U, *zg = z + 2 * U, *zo = z + 3 * U;
    if (act == DP_ACT_TANH && ract == DP_ACT_SIGMOID) {
        for (int j = 0; j < U; j++) {
            float i = zi[j], f = zf[j], g = zg[j], o = zo[j], a = ac[j], d = dh[j];
            float dcj = dc[j] + d * o * (1.0f - a * a);
            zi[j] = dcj * g * i * (1.0f - i);
            zf[j] = dcj * cprev[j] * f * (1.0f - f);
            zg[j] = dcj * i * (1.0f - g * g);
            zo[j] = d * a * o * (1.0f - o);
            dc[j] = dcj * f;
        }
        return;
    }
    slope_coef ka = slope_of(act), kr = slope_of(ract);
    for (int j = 0; j < U; j++) {
        float i = zi[j], f = zf[j], g = zg[j], o = zo[j], a = ac[j], d = dh[j];
        float dcj = dc[j] + d * o * slope(ka, a);
        zi[j] = dcj * g * slope(kr, i);
        zf[j] = dcj * cprev[j] * slope(kr, f);
        zg[j] = dcj * i * slope(ka, g);
        zo[j] = d * a * slope(kr, o);
        dc[j] = dcj * f;
    }
}
