/* attention.h - multi-head self-attention over [T, F], Keras layout, shared by
 * multi_head_attention and transformer_block. */
#ifndef DPTRAIN_LAYERS_ATTENTION_H
#define DPTRAIN_LAYERS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "layers/layer.h"

/* The eight parameter tensors, contiguous in this order (the layer slice of
 * multi_head_attention, and of transformer_block after ln1):
 *   query_kernel [F, H, Dk], query_bias [H, Dk], key_kernel, key_bias,
 *   value_kernel, value_bias (same shapes), output_kernel [H, Dk, F],
 *   output_bias [F].
 * [F, H, Dk] is a row-major [F, H*Dk] matrix, so a projection of all B*T
 * positions is one GEMM, and position t of head h sits at column h*Dk. */
typedef struct dp_attn {
    int T, F, H, Dk, causal;
    int cap;        /* samples the buffers hold (max_batch) */
    float scale;    /* 1 / sqrt(Dk) */
    float *qkv;     /* [cap*T, 3 H*Dk] the projections q | k | v side by side,
                         one GEMM's output; backward turns them into their
                         gradients in place */
    float *w3, *b3; /* [F, 3 H*Dk] and [3 H*Dk]: the three kernels and biases
                         side by side, copied from the parameters each forward */
    float *o;       /* [cap*T, H*Dk] heads' outputs, input of the output projection */
    float *p;       /* [cap, H, T, T] softmax probabilities (0 above the diagonal if causal) */
    float *dp;      /* [T, T] backward scratch */
} dp_attn;

/* Allocates the buffers for up to max_batch samples. */
void dp_attn_init(dp_attn *a, int T, int F, int H, int Dk, int causal, int max_batch);
void dp_attn_free(dp_attn *a);

/* Adds the eight tensors to l's parameters, in the order and with the Keras
 * names above. */
void dp_attn_add_params(dp_layer *l, int F, int H, int Dk);

/* Keras glorot_uniform on each kernel with Keras's fans for > 2-D shapes
 * (r = prod(shape[:-2]), fan_in = shape[-2] r, fan_out = shape[-1] r), zero
 * biases. Value i of the slice w is drawn at counter first + i of key. */
void dp_attn_init_params(int F, int H, int Dk, float *w, uint64_t key, uint64_t first);

/* y[B*T, F] = attention(x[B*T, F]) with the parameters w (layout above). */
void dp_attn_forward(dp_attn *a, const float *w, const float *x, float *y, int B);

/* After dp_attn_forward on the same x: gw += dL/dw, and dx[B*T, F] = dL/dx
 * (overwritten) unless dx is NULL. dy is read before dx is written, so dx may
 * alias dy (not x). The gradients overwrite the kept q, k, v and o, so there
 * is one backward per forward, and no buffers beyond the forward's. */
void dp_attn_backward(dp_attn *a, const float *w, const float *x, const float *dy, float *dx,
                      float *gw, int B);

/* Forward FLOPs of one sample (layer.h's counting): the q, k, v projections
 * with their biases, Q K^T and P V over all T x T pairs (a causal mask still
 * runs the full products), and the output projection with its bias:
 *   T (8 F H Dk + 3 H Dk + F) + 4 H Dk T^2. */
double dp_attn_flops(int T, int F, int H, int Dk);

/* y[N, n] = x[N, k] w[k, n] + b[n]: a dense layer over N rows. */
void dp_attn_affine(float *y, const float *x, const float *w, const float *b, int N, int k, int n);

/* db[n] += column sums of d[N, n], rows in order (the same bits every call). */
void dp_attn_colsum_add(float *db, const float *d, int N, int n);

#endif
