/* timing.h - the benchmarks' clock and the comparison that sorts their
 * timings (to take minimum and median). Header-only: each benchmark is one
 * program built from one file. */
#ifndef DPTRAIN_BENCH_TIMING_H
#define DPTRAIN_BENCH_TIMING_H

#include <time.h>

/* Monotonic seconds. */
static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* qsort comparison of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
