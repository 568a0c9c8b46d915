/* test_fastmath.c - dp_expf, dp_sigmoidf and dp_tanhf against libm in double
 * precision over their whole range, at +-inf and at NaN. */
#include "core/fastmath.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>

static double ulps(float x) {
    float a = dp_expf(x), b = expf(x);
    return fabs((double)a - b) / ((double)nextafterf(b, INFINITY) - b);
}

static void test_expf_accuracy(void) {
    double worst = 0.0;
    /* A fine grid over the range, then magnitudes from 1e-30 up to 1. */
    enum { N = 2000000 };
    for (int i = 0; i <= N; i++) worst = fmax(worst, ulps(-87.3f + 175.6f * (float)i / N));
    for (float m = 1e-30f; m < 1.0f; m *= 1.001f) {
        worst = fmax(worst, ulps(m));
        worst = fmax(worst, ulps(-m));
    }
    CU_ASSERT(worst <= 2.0);
}

static void test_expf_clamps(void) {
    CU_ASSERT(isfinite(dp_expf(1000.0f)));
    CU_ASSERT(dp_expf(1000.0f) > 1e38f);
    CU_ASSERT(dp_expf(-1000.0f) > 0.0f);
    CU_ASSERT(dp_expf(-1000.0f) < 1e-37f);
    CU_ASSERT(isfinite(dp_expf(-INFINITY)) && dp_expf(-INFINITY) < 1e-37f);
    CU_ASSERT(isfinite(dp_expf(INFINITY)) && dp_expf(INFINITY) > 1e38f);
    CU_ASSERT(isnan(dp_expf(NAN)));
    CU_ASSERT(isnan(dp_expf(-NAN)));
    CU_ASSERT_EQUAL(dp_expf(0.0f), 1.0f);
}

/* Relative error of tanh and sigmoid against double over [-20, 20] (beyond,
 * both are saturated), through a loop like the layers' own. */
static void test_sigmoid_tanh_accuracy(void) {
    enum { N = 200000 };
    static float v[N], w[N];
    for (int i = 0; i < N; i++) v[i] = w[i] = -20.0f + 40.0f * (float)i / N;
    for (int i = 0; i < N; i++) v[i] = dp_tanhf(v[i]);
    for (int i = 0; i < N; i++) w[i] = dp_sigmoidf(w[i]);
    double worst_t = 0.0, worst_s = 0.0;
    for (int i = 0; i < N; i++) {
        double z = -20.0f + 40.0f * (float)i / N, t = tanh(z), s = 1.0 / (1.0 + exp(-z));
        worst_t = fmax(worst_t, fabs(v[i] - t) / fmax(fabs(t), 1e-30));
        worst_s = fmax(worst_s, fabs(w[i] - s) / s);
    }
    CU_ASSERT(worst_t < 4e-7);
    CU_ASSERT(worst_s < 4e-7);
    if (worst_t >= 4e-7 || worst_s >= 4e-7)
        printf("\n  rel err tanh %g sigmoid %g", worst_t, worst_s);
    /* small magnitudes keep their relative accuracy */
    for (float m = 1e-30f; m < 0.7f; m *= 1.01f) {
        CU_ASSERT(fabs(dp_tanhf(m) - tanh((double)m)) <= 4e-7 * tanh((double)m));
        CU_ASSERT(dp_tanhf(-m) == -dp_tanhf(m));
    }
}

static void test_sigmoid_tanh_limits(void) {
    CU_ASSERT(dp_tanhf(200.0f) == 1.0f && dp_tanhf(-200.0f) == -1.0f);
    CU_ASSERT(dp_tanhf(INFINITY) == 1.0f && dp_tanhf(-INFINITY) == -1.0f);
    CU_ASSERT(dp_tanhf(0.0f) == 0.0f && isnan(dp_tanhf(NAN)));
    CU_ASSERT(dp_sigmoidf(200.0f) == 1.0f && dp_sigmoidf(INFINITY) == 1.0f);
    float lo = dp_sigmoidf(-200.0f), ninf = dp_sigmoidf(-INFINITY);
    CU_ASSERT(lo >= 0.0f && lo < 1e-30f && ninf >= 0.0f && ninf < 1e-30f);
    CU_ASSERT(dp_sigmoidf(0.0f) == 0.5f && isnan(dp_sigmoidf(NAN)));
}

int main(void) {
    static const test_case cases[] = {
        {"expf within 2 ulp", test_expf_accuracy},
        {"expf clamps, keeps NaN", test_expf_clamps},
        {"sigmoid and tanh accuracy", test_sigmoid_tanh_accuracy},
        {"sigmoid and tanh limits", test_sigmoid_tanh_limits},
        {NULL, NULL},
    };
    return test_run_suite("fastmath", cases);
}
