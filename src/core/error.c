/* error.c - recording and printing the one error a rank reports. */
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
