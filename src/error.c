/* error.c - recording, printing and allocation failure handling. */
#include "dptrain/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dp_error_set(dp_error *err, const char *where, const char *fmt, ...) {
    if (!err || err->set) return -1;
    err->set = 1;
    snprintf(err->where, sizeof err->where, "%s", where ? where : "dptrain");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->what, sizeof err->what, fmt, ap);
    va_end(ap);
    return -1;
}

void dp_error_clear(dp_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

void dp_error_print(const dp_error *err) {
    fprintf(stderr, "dptrain: error: %s: %s\n", err->where, err->what);
    fflush(stderr);
}

static void *die_oom(size_t n, const char *file, int line) {
    fprintf(stderr, "dptrain: error: %s:%d: out of memory allocating %zu bytes\n", file, line, n);
    abort();
}

void *dp_malloc_check(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    return p ? p : die_oom(n, file, line);
}

void *dp_calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : die_oom(n * size, file, line);
}
