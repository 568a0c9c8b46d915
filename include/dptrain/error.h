/* error.h - one failure, carried until the ranks agree on it (docs/DESIGN.md §7). */
#ifndef DPTRAIN_ERROR_H
#define DPTRAIN_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

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
 * rank calls it (rank 0 after dp_comm_agree). */
void dp_error_print(const dp_error *err);

#ifdef __cplusplus
}
#endif

#endif
