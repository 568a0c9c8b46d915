/* testlib.c - the CUnit runner every unit suite shares. */
#include "testlib.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
