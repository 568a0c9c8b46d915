/* conv_direct.h - stride-1 convolution computed straight from the image, for
 * layers whose patch depth K = C*kh*kw is small (a first layer on 1 or 3
 * channels). There the patch-matrix sgemm does only K multiply-adds per output
 * value while streaming a [K, P] patch matrix and an [F, P] result through
 * memory; reading a zero-padded copy of the image instead keeps everything in
 * L1 and writes each output once, with the bias and relu applied on the way.
 *
 * Layouts are those of conv2d: x[C, H, W], kernel w[F, K] (K = C*kh*kw in
 * (c, i, j) order), y and dz[F, OH*OW], all for one sample. */
#ifndef DPTRAIN_CONV_DIRECT_H
#define DPTRAIN_CONV_DIRECT_H

#include <stddef.h>

#include "layers/im2col.h"

/* Largest K the direct kernels take; deeper patches suit the sgemm better. */
#define CONV_DIRECT_MAX_K 16

/* 1 when this build has the direct kernels and they take geometry g: stride 1
 * and K <= CONV_DIRECT_MAX_K. */
int dp_conv_direct_fits(const dp_conv_geom *g);

/* Floats of scratch the kernels need: the zero-padded image [C, OH+kh-1, OW+kw-1]. */
size_t dp_conv_direct_scratch_floats(const dp_conv_geom *g);

/* y[F, P] = w[F, K] (*) x + b[F], then max(., 0) if relu, for one sample
 * x[C, H, W]. xp is the scratch (dp_conv_direct_scratch_floats). */
void dp_conv_direct_forward(const dp_conv_geom *g, int F, const float *w, const float *b, int relu,
                            const float *x, float *y, float *xp);

/* dw[F, K] += the kernel gradient of one sample: dw[f][(c, i, j)] gets the sum
 * over output positions of dz[f][oh, ow] * x[c][oh + i - pt][ow + j - pl]
 * (0 in the padding). xp is the scratch. */
void dp_conv_direct_weight_grad(const dp_conv_geom *g, int F, const float *x, const float *dz,
                                float *dw, float *xp);

#endif
