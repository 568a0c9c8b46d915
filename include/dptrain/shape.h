/* shape.h - the shape of one sample, without the batch dimension. */
#ifndef DPTRAIN_SHAPE_H
#define DPTRAIN_SHAPE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DP_MAX_DIMS 6

/* [D] for vectors, [T, D] for sequences, [C, H, W] for images (channels first). */
typedef struct dp_shape {
    int ndim;
    int dim[DP_MAX_DIMS];
} dp_shape;

/* Product of the dimensions (1 for ndim 0). */
size_t dp_shape_numel(const dp_shape *s);

/* Writes "[a, b, c]" into buf (always NUL-terminated); returns buf. */
char *dp_shape_format(const dp_shape *s, char *buf, size_t n);

/* 1 if both shapes have the same rank and dimensions, else 0. */
int dp_shape_equal(const dp_shape *a, const dp_shape *b);

#ifdef __cplusplus
}
#endif

#endif
