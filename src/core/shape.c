/* shape.c - sample shapes: element counts, comparison, printing. */
#include "dptrain/shape.h"

#include <stdio.h>

size_t dp_shape_numel(const dp_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->dim[i];
    return n;
}

char *dp_shape_format(const dp_shape *s, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %d" : "%d", s->dim[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

int dp_shape_equal(const dp_shape *a, const dp_shape *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}
