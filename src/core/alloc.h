/* alloc.h - (private) malloc and calloc that never return NULL. */
#ifndef DPTRAIN_CORE_ALLOC_H
#define DPTRAIN_CORE_ALLOC_H

#include <stddef.h>

/* On exhaustion they print the call site and abort, which mpirun turns into a
 * job-wide exit instead of a hang. */
void *dp_malloc_check(size_t n, const char *file, int line);
void *dp_calloc_check(size_t n, size_t size, const char *file, int line);
#define DP_MALLOC(n) dp_malloc_check((n), __FILE__, __LINE__)
#define DP_CALLOC(n, s) dp_calloc_check((n), (s), __FILE__, __LINE__)

#endif
