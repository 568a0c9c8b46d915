/* maxpool.h - max-pooling kernels for one sample, shared by the maxpool2d layer
 * and by a conv2d layer that pools its own output (layer.h, absorb).
 *
 * A sample's input is C planes [H, W]; plane c starts at x + c*xs, so the
 * planes may sit inside a wider matrix (xs = H*W when they are contiguous).
 * Windows are ph x pw moved by (sh, sw), 'valid' padding:
 * OH = (H - ph) / sh + 1, OW = (W - pw) / sw + 1. */
#ifndef DPTRAIN_MAXPOOL_H
#define DPTRAIN_MAXPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct dp_pool_geom {
    int C, H, W; /* input planes */
    int ph, pw;  /* window */
    int sh, sw;  /* strides */
    int OH, OW;  /* output positions */
} dp_pool_geom;

/* y[C, OH, OW] = the window maxima, arg[C, OH, OW] = where each came from as
 * c*H*W + h*W + w (the first maximum in row-major order on ties). */
void dp_maxpool_forward_sample(const dp_pool_geom *g, const float *x, size_t xs, float *y,
                               int32_t *arg);

/* Writes every plane of dx whole (plane c at dx + c*xs): dy[C, OH, OW] summed at
 * each output's arg, 0 elsewhere. */
void dp_maxpool_backward_sample(const dp_pool_geom *g, const int32_t *arg, const float *dy,
                                float *dx, size_t xs);

struct dp_layer;

/* g = the geometry of a maxpool2d layer built by its create; -1 for any other
 * layer type. */
int dp_maxpool2d_geom(const struct dp_layer *l, dp_pool_geom *g);

#endif
