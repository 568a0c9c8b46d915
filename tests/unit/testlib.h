/* testlib.h - the shared CUnit runner and numeric helpers for unit suites. */
#ifndef DPTRAIN_TESTLIB_H
#define DPTRAIN_TESTLIB_H

#include <CUnit/CUnit.h>
#include <stddef.h>

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

#endif
