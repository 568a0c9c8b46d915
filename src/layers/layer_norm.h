/* layer_norm.h - the layer-norm row kernels, shared by layer_norm and
 * transformer_block. */
#ifndef DPTRAIN_LAYERS_LAYER_NORM_H
#define DPTRAIN_LAYERS_LAYER_NORM_H

/* Keras LayerNormalization over the last axis of each of N rows:
 * y[N, F] = (x - mean) * rstd * gamma[F] + beta[F], rstd = 1 / sqrt(var + eps)
 * with the biased variance. Saves mean[N] and rstd[N] for backward. */
void dp_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int N, int F, float eps);

/* Given dy[N, F] and the forward's x, mean and rstd: dgamma[F] and dbeta[F]
 * += their gradients, and dx[N, F] = skip + dL/dx (skip NULL: 0) unless dx is
 * NULL. The skip lets a residual block add its skip gradient in the same
 * pass; dx may alias skip. */
void dp_layernorm_backward(float *dx, const float *skip, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *mean, const float *rstd,
                           const float *gamma, int N, int F);

#endif
