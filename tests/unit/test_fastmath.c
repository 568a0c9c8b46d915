/* test_fastmath.c - dp_expf against libm's expf over its whole range. */
#include "core/fastmath.h"
#include "testlib.h"

#include <math.h>

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
    CU_ASSERT(isfinite(dp_expf(-INFINITY)));
    CU_ASSERT_EQUAL(dp_expf(0.0f), 1.0f);
}

int main(void) {
    static const test_case cases[] = {
        {"expf within 2 ulp", test_expf_accuracy},
        {"expf clamps", test_expf_clamps},
        {NULL, NULL},
    };
    return test_run_suite("fastmath", cases);
}
