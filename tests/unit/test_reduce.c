/* test_reduce.c - the exact reduction: same bits in any order, float32-accurate. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grad/grad_fixed.h"
#include "core/rng.h"
#include "testlib.h"

enum { TERMS = 16, N = 4096 };

/* Gradient-like values: signs mixed, magnitudes over many decades. */
static void fill_terms(float g[TERMS][N]) {
    for (int k = 0; k < TERMS; k++)
        for (int i = 0; i < N; i++) {
            double u = dp_rng_uniform(dp_rng_make_key(7, (uint64_t)k, 0, 0), (uint64_t)i);
            double e = dp_rng_uniform(dp_rng_make_key(8, (uint64_t)k, 0, 0), (uint64_t)i);
            g[k][i] = (float)((u - 0.5) * pow(10.0, -6.0 * e));
        }
}

static double max_abs_all(float g[TERMS][N]) {
    double m = 0;
    for (int k = 0; k < TERMS; k++) m = fmax(m, dp_grad_fixed_max_abs(g[k], N));
    return m;
}

/* Sums the terms in the order given by perm, grouped into `groups` partial
 * int64 sums that are then added, as ranks would. */
static void sum_in_order(float g[TERMS][N], const uint32_t *perm, int groups, int e, float *out) {
    int64_t *part = calloc((size_t)groups * N, sizeof(int64_t));
    int64_t *acc = calloc(N, sizeof(int64_t));
    for (int k = 0; k < TERMS; k++)
        dp_grad_fixed_accumulate(part + (size_t)(k % groups) * N, g[perm[k]], N, e);
    for (int gidx = groups - 1; gidx >= 0; gidx--)
        for (int i = 0; i < N; i++) acc[i] += part[(size_t)gidx * N + i];
    dp_grad_fixed_finish(out, acc, N, e, 1.0 / TERMS);
    free(part);
    free(acc);
}

static void test_order_independent(void) {
    static float g[TERMS][N];
    static float ref[N], got[N];
    fill_terms(g);
    int e = dp_grad_fixed_pick_exponent(max_abs_all(g), TERMS);
    uint32_t perm[TERMS];
    for (int k = 0; k < TERMS; k++) perm[k] = (uint32_t)k;
    sum_in_order(g, perm, 1, e, ref);
    static const int groupings[] = {1, 2, 4, 8, 16};
    for (int trial = 0; trial < 10; trial++) {
        dp_rng_permute(dp_rng_make_key(99, (uint64_t)trial, 0, 0), perm, TERMS);
        sum_in_order(g, perm, groupings[trial % 5], e, got);
        ASSERT_SAME_FLOATS(ref, got, N);
    }
    /* Plain float sums in two orders differ somewhere: the property is not free. */
    int differ = 0;
    for (int i = 0; i < N; i++) {
        float a = 0, b = 0;
        for (int k = 0; k < TERMS; k++) a += g[k][i];
        for (int k = TERMS - 1; k >= 0; k--) b += g[k][i];
        differ |= a != b;
    }
    CU_ASSERT(differ);
}

/* Error against a double sum stays within float32 rounding of the result, and
 * is no worse than plain float32 summation's worst error. */
static void test_accuracy_against_double(void) {
    static float g[TERMS][N];
    static float got[N];
    fill_terms(g);
    int e = dp_grad_fixed_pick_exponent(max_abs_all(g), TERMS);
    uint32_t perm[TERMS];
    for (int k = 0; k < TERMS; k++) perm[k] = (uint32_t)k;
    sum_in_order(g, perm, 4, e, got);
    double worst_exact = 0, worst_float = 0;
    for (int i = 0; i < N; i++) {
        double d = 0;
        float f = 0;
        for (int k = 0; k < TERMS; k++) {
            d += g[k][i];
            f += g[k][i];
        }
        d /= TERMS;
        f /= TERMS;
        double scale = fmax(fabs(d), 1e-30);
        /* The fixed-point grid is 2^-e; relative to the tensor's max it is far
         * below float32's epsilon, so only the final rounding to float shows. */
        CU_ASSERT(fabs(got[i] - d) <= fabs(d) * 0x1p-24 + ldexp(1.0, -e));
        worst_exact = fmax(worst_exact, fabs(got[i] - d) / scale);
        worst_float = fmax(worst_float, fabs(f - d) / scale);
    }
    CU_ASSERT(worst_exact <= worst_float);
}

static void test_exponent_headroom(void) {
    /* The largest possible total, TERMS * maxabs, must still fit in int64. */
    double maxabs = 3.75;
    int e = dp_grad_fixed_pick_exponent(maxabs, TERMS);
    CU_ASSERT(ldexp(maxabs * TERMS, e) < 0x1p62);
    CU_ASSERT(ldexp(maxabs * TERMS, e) >= 0x1p60);
    CU_ASSERT_EQUAL(dp_grad_fixed_pick_exponent(0.0, TERMS), 0);
    float nan_in[3] = {1.0f, NAN, 2.0f};
    CU_ASSERT(isnan(dp_grad_fixed_max_abs(nan_in, 3)));
}

/* dp_grad_fixed_max_abs against a plain double loop, on every length up to 70 (the
 * vector body and its tail) and at every position of the maximum, with
 * negative values, -0, subnormals and the largest finite float; Inf and NaN
 * anywhere give NaN. */
static void test_max_abs(void) {
    enum { LEN = 70 };
    float g[LEN];
    for (int n = 0; n <= LEN; n++)
        for (int at = 0; at < (n ? n : 1); at++) {
            for (int i = 0; i < n; i++) g[i] = (i % 3 ? 1.0f : -1.0f) * (float)(i % 7) * 0.25f;
            if (n) g[at] = (at % 2 ? -1.0f : 1.0f) * (3.0f + (float)at);
            double want = 0;
            for (int i = 0; i < n; i++) want = fmax(want, fabs((double)g[i]));
            CU_ASSERT_EQUAL(dp_grad_fixed_max_abs(g, (size_t)n), want);
            if (!n) continue;
            float keep = g[at];
            g[at] = at % 2 ? -INFINITY : INFINITY;
            CU_ASSERT(isnan(dp_grad_fixed_max_abs(g, (size_t)n)));
            g[at] = -NAN;
            CU_ASSERT(isnan(dp_grad_fixed_max_abs(g, (size_t)n)));
            g[at] = keep;
        }
    float odd[4] = {-0.0f, 0x1p-140f, -FLT_MAX, 1.0f};
    CU_ASSERT_EQUAL(dp_grad_fixed_max_abs(odd, 2), (double)0x1p-140f);
    CU_ASSERT_EQUAL(dp_grad_fixed_max_abs(odd, 4), (double)FLT_MAX);
    CU_ASSERT_EQUAL(dp_grad_fixed_max_abs(odd, 1), 0.0);
}

int main(void) {
    static const test_case cases[] = {
        {"max |g| against a double loop, Inf and NaN", test_max_abs},
        {"same bits for any order and grouping", test_order_independent},
        {"error within float32 rounding of a double sum", test_accuracy_against_double},
        {"exponent leaves headroom and NaN propagates", test_exponent_headroom},
        {NULL, NULL}};
    return test_run_suite("reduce", cases);
}
