/* testlib.h - the shared CUnit runner and numeric helpers for unit suites. */
#ifndef DPTRAIN_TESTLIB_H
#define DPTRAIN_TESTLIB_H

#include <CUnit/CUnit.h>
#include <stddef.h>

#include "dptrain/config.h"

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

/* Runs the cases (terminated by {NULL, NULL}) as one suite with the basic runner;
 * returns 0 only if every assertion passed, for use as main's exit status. */
int test_run_suite(const char *suite, const test_case *cases);

/* Path of a file in the source tree (DPTRAIN_SOURCE_DIR or "."), in a static buffer. */
const char *test_source_path(const char *rel);

/* Makes a fresh empty temporary directory and returns its path (static buffer). */
const char *test_make_tmpdir(void);

/* Max |a-b| / max(1, |b|) over n values. */
double test_max_rel_diff(const float *a, const float *b, size_t n);

/* Bitwise comparisons that say where they fail. Each is one CUnit assertion
 * (counted like CU_ASSERT, reported with the caller's file and line); on a
 * difference its text names the first differing index, both values (floats
 * and doubles also as hex bits) and how many elements differ. Floats and
 * doubles compare by their bits, like memcmp: NaN equals the same NaN, and
 * 0.0 differs from -0.0. Each returns 1 when the assertion passed. */
#define ASSERT_SAME_BYTES(a, b, n) \
    test_assert_same_bytes((a), (b), (n), #a, #b, __LINE__, __FILE__, __func__)
#define ASSERT_SAME_FLOATS(a, b, n) \
    test_assert_same_floats((a), (b), (n), #a, #b, __LINE__, __FILE__, __func__)
#define ASSERT_SAME_DOUBLES(a, b, n) \
    test_assert_same_doubles((a), (b), (n), #a, #b, __LINE__, __FILE__, __func__)
/* The opposite: fails, naming the length, when all n bytes are the same. */
#define ASSERT_DIFFERENT_BYTES(a, b, n) \
    test_assert_different_bytes((a), (b), (n), #a, #b, __LINE__, __FILE__, __func__)

int test_assert_same_bytes(const void *a, const void *b, size_t n, const char *ea, const char *eb,
                           unsigned line, const char *file, const char *func);
int test_assert_same_floats(const float *a, const float *b, size_t n, const char *ea,
                            const char *eb, unsigned line, const char *file, const char *func);
int test_assert_same_doubles(const double *a, const double *b, size_t n, const char *ea,
                             const char *eb, unsigned line, const char *file, const char *func);
int test_assert_different_bytes(const void *a, const void *b, size_t n, const char *ea,
                                const char *eb, unsigned line, const char *file, const char *func);

/* An optimizer config of `kind` with every other key unset (-1), as the
 * parser leaves the keys a file does not give. */
dp_optim_cfg test_optim_cfg_unset(dp_optim_kind kind);

/* Number of the n floats whose bits differ between a and b. */
size_t test_count_different_floats(const float *a, const float *b, size_t n);

#endif
