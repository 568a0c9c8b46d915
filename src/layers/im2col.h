/* im2col.h - patch matrices that turn a 2-D convolution into one sgemm.
 *
 * For an input x[C, H, W] and a kh x kw window moved with strides (sh, sw) over
 * x padded with zeros (pt rows on top, pl columns on the left; the bottom and
 * right padding follow from OH, OW), the patch matrix is
 *   col[(c*kh + i)*kw + j][oh*OW + ow] = x[c][oh*sh + i - pt][ow*sw + j - pl]
 * (0 where the index falls in the padding), so a kernel stored as [F, C, kh, kw]
 * is the matrix [F, C*kh*kw] and the convolution is kernel x col. */
#ifndef DPTRAIN_IM2COL_H
#define DPTRAIN_IM2COL_H

typedef struct dp_conv_geom {
    int C, H, W; /* input [C, H, W] */
    int kh, kw;  /* window */
    int sh, sw;  /* strides */
    int pt, pl;  /* zero rows above, zero columns to the left */
    int OH, OW;  /* output positions */
} dp_conv_geom;

/* Output size and leading padding along one axis of length n, window k, stride s:
 * 'valid' (same = 0) or TensorFlow's 'same' (out = ceil(n / s), total padding
 * max((out - 1) * s + k - n, 0), the odd unit at the end). Returns the output
 * size, which is < 1 when the window does not fit. */
int dp_im2col_out_size(int n, int k, int s, int same, int *pad_before);

/* col[C*kh*kw, ld] (columns 0 .. OH*OW-1 written) from x[C, H, W]. ld >= OH*OW
 * lets several samples share one wide matrix. */
void dp_im2col_forward(const dp_conv_geom *g, const float *x, float *col, int ld);

/* The adjoint of dp_im2col_forward: dx[C, H, W] = the sum of the entries of
 * col[C*kh*kw, ld] that were copied from each input position (padding dropped).
 * dx is overwritten. */
void dp_im2col_backward(const dp_conv_geom *g, const float *col, int ld, float *dx);

#endif
