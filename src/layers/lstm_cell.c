/* lstm_cell.c - the LSTM's fused elementwise step (lstm_cell.h).
 *
 * libm's expf and tanhf are calls the compiler cannot vectorize, and an LSTM
 * step evaluates five of them per unit and row: with them the elementwise work
 * cost as much as all the GEMMs. core/fastmath.h's are branch-free, so each
 * loop compiles to SIMD code. */
#include "layers/lstm_cell.h"

/* GCC keeps to 256-bit vectors on AVX-512 machines unless told otherwise; these
 * loops are arithmetic on data in cache, and the wider vectors made the forward
 * pass about 6% faster. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")
#endif

#include "core/fastmath.h"
#include "layers/rnn_common.h"

/* The default pair (tanh, sigmoid) in one pass over the units. */
static void forward_tanh_sigmoid(int U, float *restrict z, const float *restrict b,
                                 const float *restrict cprev, float *restrict c, float *restrict ac,
                                 float *restrict h) {
    float *zi = z, *zf = z + U, *zg = z + 2 * U, *zo = z + 3 * U;
    const float *bi = b, *bf = b + U, *bg = b + 2 * U, *bo = b + 3 * U;
    for (int j = 0; j < U; j++) {
        float i = dp_sigmoidf(zi[j] + bi[j]);
        float f = dp_sigmoidf(zf[j] + bf[j]);
        float g = dp_tanhf(zg[j] + bg[j]);
        float o = dp_sigmoidf(zo[j] + bo[j]);
        float cj = f * cprev[j] + i * g;
        float a = dp_tanhf(cj);
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
    dp_rnn_activate(ract, z, 2 * U); /* i, f */
    dp_rnn_activate(act, z + 2 * U, U);
    dp_rnn_activate(ract, z + 3 * U, U);
    const float *i = z, *f = z + U, *g = z + 2 * U, *o = z + 3 * U;
    for (int j = 0; j < U; j++) c[j] = ac[j] = f[j] * cprev[j] + i[j] * g[j];
    dp_rnn_activate(act, ac, U);
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
    const dp_rnn_slope_coef ka = dp_rnn_slope_of(act), kr = dp_rnn_slope_of(ract);
    for (int j = 0; j < U; j++) {
        float i = zi[j], f = zf[j], g = zg[j], o = zo[j], a = ac[j], d = dh[j];
        float dcj = dc[j] + d * o * dp_rnn_slope(ka, a);
        zi[j] = dcj * g * dp_rnn_slope(kr, i);
        zf[j] = dcj * cprev[j] * dp_rnn_slope(kr, f);
        zg[j] = dcj * i * dp_rnn_slope(ka, g);
        zo[j] = d * a * dp_rnn_slope(kr, o);
        dc[j] = dcj * f;
    }
}
