/* alloc.c - allocations that stop the job instead of returning NULL. */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn static void die_oom(size_t n, const char *file, int line) {
    fprintf(stderr, "dptrain: error: %s:%d: out of memory allocating %zu bytes\n", file, line, n);
    abort();
}

void *dp_malloc_check(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) die_oom(n, file, line);
    return p;
}

void *dp_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die_oom(n * size, file, line);
    return p;
}
