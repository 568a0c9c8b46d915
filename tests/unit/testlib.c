/* testlib.c - the CUnit runner every unit suite shares. */
#include "testlib.h"

#include <CUnit/Basic.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_run_suite(const char *suite, const test_case *cases) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s) return 2;
    for (const test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn)) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    /* A suite that ran nothing is a failure, not a pass. */
    return (failed == 0 && run > 0) ? 0 : 1;
}

const char *test_source_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("DPTRAIN_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

const char *test_make_tmpdir(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/dptrain-test-XXXXXX");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return buf;
}

double test_max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
        if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Fails one CUnit assertion with text "<what>(<ea>, <eb>, n=<n>): <detail>" at the
 * caller's place. CUnit copies the text, so one buffer serves every failure. */
static void fail_at(const char *what, const char *ea, const char *eb, size_t n, const char *detail,
                    unsigned line, const char *file, const char *func) {
    static char msg[1024];
    snprintf(msg, sizeof msg, "%s(%s, %s, n=%zu): %s", what, ea, eb, n, detail);
    CU_assertImplementation(CU_FALSE, line, msg, file, func, CU_FALSE);
    /* Also on stderr right away, next to whatever the test printed. */
    fprintf(stderr, "\n  %s:%u: %s\n", file, line, msg);
}

static void pass_at(const char *what, unsigned line, const char *file, const char *func) {
    CU_assertImplementation(CU_TRUE, line, what, file, func, CU_FALSE);
}

int test_assert_same_bytes(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                           unsigned line, const char *file, const char *func) {
    const unsigned char *p = a, *q = b;
    size_t first = n, count = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != q[i]) {
            if (first == n) first = i;
            count++;
        }
    if (count == 0) {
        pass_at("ASSERT_SAME_BYTES", line, file, func);
        return 1;
    }
    char detail[256];
    snprintf(detail, sizeof detail,
             "first difference at byte %zu: 0x%02x vs 0x%02x; %zu of %zu differ", first, p[first],
             q[first], count, n);
    fail_at("ASSERT_SAME_BYTES", ea, eb, n, detail, line, file, func);
    return 0;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint64_t double_bits(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

size_t test_count_different_floats(const float *a, const float *b, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += float_bits(a[i]) != float_bits(b[i]);
    return count;
}

int test_assert_same_floats(const float *a, const float *b, size_t n, const char *ea,
                            const char *eb, unsigned line, const char *file, const char *func) {
    size_t first = n, count = 0;
    for (size_t i = 0; i < n; i++)
        if (float_bits(a[i]) != float_bits(b[i])) {
            if (first == n) first = i;
            count++;
        }
    if (count == 0) {
        pass_at("ASSERT_SAME_FLOATS", line, file, func);
        return 1;
    }
    char detail[256];
    snprintf(detail, sizeof detail,
             "first difference at [%zu]: %.9g (0x%08" PRIx32 ") vs %.9g (0x%08" PRIx32
             "); %zu of %zu differ",
             first, (double)a[first], float_bits(a[first]), (double)b[first], float_bits(b[first]),
             count, n);
    fail_at("ASSERT_SAME_FLOATS", ea, eb, n, detail, line, file, func);
    return 0;
}

int test_assert_same_doubles(const double *a, const double *b, size_t n, const char *ea,
                             const char *eb, unsigned line, const char *file, const char *func) {
    size_t first = n, count = 0;
    for (size_t i = 0; i < n; i++)
        if (double_bits(a[i]) != double_bits(b[i])) {
            if (first == n) first = i;
            count++;
        }
    if (count == 0) {
        pass_at("ASSERT_SAME_DOUBLES", line, file, func);
        return 1;
    }
    char detail[256];
    snprintf(detail, sizeof detail,
             "first difference at [%zu]: %.17g (0x%016" PRIx64 ") vs %.17g (0x%016" PRIx64
             "); %zu of %zu differ",
             first, a[first], double_bits(a[first]), b[first], double_bits(b[first]), count, n);
    fail_at("ASSERT_SAME_DOUBLES", ea, eb, n, detail, line, file, func);
    return 0;
}

int test_assert_different_bytes(const void *a, const void *b, size_t n, const char *ea,
                                const char *eb, unsigned line, const char *file, const char *func) {
    if (n > 0 && memcmp(a, b, n) != 0) {
        pass_at("ASSERT_DIFFERENT_BYTES", line, file, func);
        return 1;
    }
    fail_at("ASSERT_DIFFERENT_BYTES", ea, eb, n, "all bytes are the same", line, file, func);
    return 0;
}

dp_optim_cfg test_optim_cfg_unset(dp_optim_kind kind) {
    dp_optim_cfg c = {.kind = kind,
                      .learning_rate = -1,
                      .beta1 = -1,
                      .beta2 = -1,
                      .epsilon = -1,
                      .rho = -1,
                      .momentum = -1,
                      .nesterov = -1,
                      .weight_decay = -1};
    return c;
}
