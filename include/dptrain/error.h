/* error.h - one failure, carried until the ranks agree on it (DESIGN §7). */
#ifndef DPTRAIN_ERROR_H
#define DPTRAIN_ERROR_H

#include <stddef.h>

/* The first error a rank meets. Later ones are dropped so the root cause is what
 * gets reported. `where` is file:line:col for config errors, a dataset path or
 * file name for data errors. */
typedef struct dp_error {
    int set;
    char where[256];
    char what[768];
} dp_error;

/* Records an error unless one is already set. Always returns -1 so callers can
 * write `return dp_error_set(err, ...)`. `err` may be NULL (then it only returns). */
int dp_error_set(dp_error *err, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Forgets any recorded error. */
void dp_error_clear(dp_error *err);

/* Prints `dptrain: error: <where>: <what>` on stderr; the caller decides which
 * rank calls it (rank 0 after comm_agree). */
void dp_error_print(const dp_error *err);

/* malloc/calloc that never return NULL: on exhaustion they print the call site
 * and abort, which mpirun turns into a job-wide exit instead of a hang. */
void *dp_malloc_check(size_t n, const char *file, int line);
void *dp_calloc_check(size_t n, size_t size, const char *file, int line);
#define DP_MALLOC(n) dp_malloc_check((n), __FILE__, __LINE__)
#define DP_CALLOC(n, s) dp_calloc_check((n), (s), __FILE__, __LINE__)

#endif
