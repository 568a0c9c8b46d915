/* attention.c - multi-head self-attention: the kernels (attention.h) and the
 * multi_head_attention layer, Keras MultiHeadAttention on [T, F] with
 * query = key = value = the input and value_dim = key_dim.
 *
 * The four projections are GEMMs over all B*T positions. Each (sample, head)
 * then does two small GEMMs, scores = Q K^T / sqrt(Dk) and out = P V; a causal
 * softmax only touches s <= t and leaves P zero above the diagonal, so the
 * P V product needs no mask. */
#include "layers/attention.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas.h"
#include "core/fastmath.h"
#include "layers/init.h"
#include "layers/layer.h"

/* Offsets of the tensors in the slice (attention.h). */
typedef struct attn_offsets {
    size_t wq, bq, wk, bk, wv, bv, wo, bo;
} attn_offsets;

static attn_offsets attn_layout(int F, int H, int Dk) {
    size_t hd = (size_t)H * Dk, proj = (size_t)F * hd + hd;
    attn_offsets o;
    o.wq = 0, o.bq = (size_t)F * hd;
    o.wk = proj, o.bk = proj + (size_t)F * hd;
    o.wv = 2 * proj, o.bv = 2 * proj + (size_t)F * hd;
    o.wo = 3 * proj, o.bo = 3 * proj + hd * F;
    return o;
}

void dp_attn_init(dp_attn *a, int T, int F, int H, int Dk, int causal, int max_batch) {
    memset(a, 0, sizeof *a);
    a->T = T, a->F = F, a->H = H, a->Dk = Dk, a->causal = causal;
    a->cap = max_batch;
    a->scale = (float)(1.0 / sqrt((double)Dk));
    size_t n = (size_t)max_batch * T * H * Dk * sizeof(float);
    a->q = DP_MALLOC(n), a->k = DP_MALLOC(n), a->v = DP_MALLOC(n), a->o = DP_MALLOC(n);
    a->p = DP_MALLOC((size_t)max_batch * H * T * T * sizeof(float));
    a->dp = DP_MALLOC((size_t)T * T * sizeof(float));
}

void dp_attn_free(dp_attn *a) {
    free(a->q), free(a->k), free(a->v), free(a->o);
    free(a->p), free(a->dp);
    memset(a, 0, sizeof *a);
}

void dp_attn_add_params(dp_layer *l, int F, int H, int Dk) {
    const int qk[3] = {F, H, Dk}, qb[2] = {H, Dk}, ok[3] = {H, Dk, F};
    static const char *const proj[3] = {"query", "key", "value"};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_kernel", proj[i]);
        dp_layer_add_param(l, name, 3, qk);
        snprintf(name, sizeof name, "%s_bias", proj[i]);
        dp_layer_add_param(l, name, 2, qb);
    }
    dp_layer_add_param(l, "output_kernel", 3, ok);
    dp_layer_add_param(l, "output_bias", 1, &F);
}

void dp_attn_init_params(int F, int H, int Dk, float *w, uint64_t key, uint64_t first) {
    attn_offsets o = attn_layout(F, H, Dk);
    /* [F, H, Dk]: r = F, fan_in = H F, fan_out = Dk F (Keras's compute_fans). */
    float lim_in = (float)sqrt(6.0 / ((double)F * (H + Dk)));
    /* [H, Dk, F]: r = H, fan_in = Dk H, fan_out = F H. */
    float lim_out = (float)sqrt(6.0 / ((double)H * (Dk + F)));
    size_t nk = (size_t)F * H * Dk, hd = (size_t)H * Dk;
    const size_t kern[3] = {o.wq, o.wk, o.wv}, bias[3] = {o.bq, o.bk, o.bv};
    for (int i = 0; i < 3; i++) {
        dp_init_uniform(w + kern[i], nk, lim_in, key, first + kern[i]);
        memset(w + bias[i], 0, hd * sizeof *w);
    }
    dp_init_uniform(w + o.wo, nk, lim_out, key, first + o.wo);
    memset(w + o.bo, 0, (size_t)F * sizeof *w);
}

/* The bias rows first, then one GEMM adding into them, so the bias costs no
 * extra pass over y. */
void dp_attn_affine(float *y, const float *x, const float *w, const float *b, int N, int k, int n) {
    for (int r = 0; r < N; r++) memcpy(y + (size_t)r * n, b, (size_t)n * sizeof *y);
    dp_gemm(0, 0, N, n, k, 1.0f, x, k, w, n, 1.0f, y, n);
}

void dp_attn_colsum_add(float *db, const float *d, int N, int n) {
    for (int r = 0; r < N; r++) {
        const float *dr = d + (size_t)r * n;
        for (int j = 0; j < n; j++) db[j] += dr[j];
    }
}

/* The sums over a row run in LANES interleaved partial sums: a fixed order
 * (so a row's result never depends on the batch) that vectorizes. */
#define LANES 8

/* sum of a[s] b[s] (or of a[s] when b is NULL) over [0, n) */
static float dot_row(const float *a, const float *b, int n) {
    float acc[LANES] = {0};
    int s = 0;
    if (b)
        for (; s + LANES <= n; s += LANES)
            for (int j = 0; j < LANES; j++) acc[j] += a[s + j] * b[s + j];
    else
        for (; s + LANES <= n; s += LANES)
            for (int j = 0; j < LANES; j++) acc[j] += a[s + j];
    float sum = 0.0f;
    for (; s < n; s++) sum += b ? a[s] * b[s] : a[s];
    for (int j = 0; j < LANES; j++) sum += acc[j];
    return sum;
}

/* Row t of p[T, T] over its first len(t) entries (t + 1 if causal, else T);
 * the rest are zeroed. */
static void softmax_rows(float *p, int T, int causal) {
    for (int t = 0; t < T; t++) {
        float *row = p + (size_t)t * T;
        int n = causal ? t + 1 : T;
        float mx = row[0];
        for (int s = 1; s < n; s++) mx = row[s] > mx ? row[s] : mx;
        for (int s = 0; s < n; s++) row[s] = dp_expf(row[s] - mx);
        float inv = 1.0f / dot_row(row, NULL, n);
        for (int s = 0; s < n; s++) row[s] *= inv;
        for (int s = n; s < T; s++) row[s] = 0.0f;
    }
}

/* In place: d[T, T] = dL/dscores from d = dL/dP and p, over s < len(t); the
 * masked entries are zeroed. */
static void softmax_rows_backward(float *d, const float *p, int T, int causal) {
    for (int t = 0; t < T; t++) {
        float *dr = d + (size_t)t * T;
        const float *pr = p + (size_t)t * T;
        int n = causal ? t + 1 : T;
        float dot = dot_row(pr, dr, n);
        for (int s = 0; s < n; s++) dr[s] = pr[s] * (dr[s] - dot);
        for (int s = n; s < T; s++) dr[s] = 0.0f;
    }
}

void dp_attn_forward(dp_attn *a, const float *w, const float *x, float *y, int B) {
    const int T = a->T, F = a->F, H = a->H, Dk = a->Dk, HD = H * Dk, N = B * T;
    attn_offsets o = attn_layout(F, H, Dk);
    dp_attn_affine(a->q, x, w + o.wq, w + o.bq, N, F, HD);
    dp_attn_affine(a->k, x, w + o.wk, w + o.bk, N, F, HD);
    dp_attn_affine(a->v, x, w + o.wv, w + o.bv, N, F, HD);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t at = (size_t)b * T * HD + (size_t)h * Dk; /* [T, Dk] with row stride HD */
            float *p = a->p + ((size_t)b * H + h) * T * T;   /* [T, T] */
            dp_gemm(0, 1, T, T, Dk, a->scale, a->q + at, HD, a->k + at, HD, 0.0f, p, T);
            softmax_rows(p, T, a->causal);
            dp_gemm(0, 0, T, Dk, T, 1.0f, p, T, a->v + at, HD, 0.0f, a->o + at, HD);
        }
    dp_attn_affine(y, a->o, w + o.wo, w + o.bo, N, HD, F);
}

void dp_attn_backward(dp_attn *a, const float *w, const float *x, const float *dy, float *dx,
                      float *gw, int B) {
    const int T = a->T, F = a->F, H = a->H, Dk = a->Dk, HD = H * Dk, N = B * T;
    attn_offsets o = attn_layout(F, H, Dk);
    /* Output projection: its weight gradient needs o, which then holds dL/do. */
    dp_gemm(1, 0, HD, F, N, 1.0f, a->o, HD, dy, F, 1.0f, gw + o.wo, F);
    dp_attn_colsum_add(gw + o.bo, dy, N, F);
    float *dout = a->o; /* [N, HD] */
    dp_gemm(0, 1, N, HD, F, 1.0f, dy, F, w + o.wo, F, 0.0f, dout, HD);
    /* Per (sample, head), each gradient goes where its last reader is done:
     * dV over V once dP is formed, dQ over dO once dP and dV are, and dK
     * over K once dQ has read it. Afterwards o, k and v hold dQ, dK, dV. */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t at = (size_t)b * T * HD + (size_t)h * Dk;
            const float *p = a->p + ((size_t)b * H + h) * T * T;
            float *ds = a->dp; /* dL/dP, then dL/dscores in place */
            dp_gemm(0, 1, T, T, Dk, 1.0f, dout + at, HD, a->v + at, HD, 0.0f, ds, T);
            dp_gemm(1, 0, T, Dk, T, 1.0f, p, T, dout + at, HD, 0.0f, a->v + at, HD);
            softmax_rows_backward(ds, p, T, a->causal);
            dp_gemm(0, 0, T, Dk, T, a->scale, ds, T, a->k + at, HD, 0.0f, dout + at, HD);
            dp_gemm(1, 0, T, Dk, T, a->scale, ds, T, a->q + at, HD, 0.0f, a->k + at, HD);
        }
    const float *dproj[3] = {dout, a->k, a->v};
    const size_t kern[3] = {o.wq, o.wk, o.wv}, bias[3] = {o.bq, o.bk, o.bv};
    for (int i = 0; i < 3; i++) {
        dp_gemm(1, 0, F, HD, N, 1.0f, x, F, dproj[i], HD, 1.0f, gw + kern[i], HD);
        dp_attn_colsum_add(gw + bias[i], dproj[i], N, HD);
        if (dx)
            dp_gemm(0, 1, N, F, HD, 1.0f, dproj[i], HD, w + kern[i], HD, i ? 1.0f : 0.0f, dx, F);
    }
}

/* ---------------------------------------------- multi_head_attention ---- */

static int mha_create(dp_layer *l, const dp_layer_cfg *cfg, const dp_shape *in, int max_batch,
                      dp_error *err) {
    if (in->ndim != 2) {
        char buf[96];
        return dp_error_set(err, cfg->where,
                            "multi_head_attention expects a sequence [steps, features], got %s; "
                            "put an embedding or a sequence layer before it",
                            dp_shape_format(in, buf, sizeof buf));
    }
    int T = in->dim[0], F = in->dim[1], H = cfg->num_heads, Dk = cfg->key_dim;
    if (H < 1 || Dk < 1)
        return dp_error_set(err, cfg->where,
                            "multi_head_attention needs num_heads >= 1 and key_dim >= 1, got %d "
                            "and %d",
                            H, Dk);
    /* Keras accepts any key_dim, and num_heads * key_dim != F is legitimate
     * (the output projection maps back to F). But a projected width beyond 4 F
     * (wider than a transformer's feed-forward layer) is almost surely
     * key_dim given as the model width instead of the per-head width; it
     * multiplies the attention's memory and time by num_heads for nothing. */
    if ((long long)H * Dk > 4LL * F)
        return dp_error_set(err, cfg->where,
                            "multi_head_attention num_heads * key_dim = %d * %d = %lld is more "
                            "than 4 x the %d input features; key_dim is per head: use key_dim = "
                            "%d / num_heads",
                            H, Dk, (long long)H * Dk, F, F);
    if (max_batch <= 0)
        return dp_error_set(err, cfg->where, "multi_head_attention needs a batch size >= 1, got %d",
                            max_batch);
    l->in_shape = *in;
    l->out_shape = *in;
    l->activation = DP_ACT_LINEAR;
    l->n_params = 0;
    l->param_count = 0;
    dp_attn_add_params(l, F, H, Dk);
    dp_attn *a = DP_CALLOC(1, sizeof *a);
    dp_attn_init(a, T, F, H, Dk, cfg->causal, max_batch);
    l->state = a;
    return 0;
}

static void mha_init_params(dp_layer *l, float *params, uint64_t key) {
    const dp_attn *a = l->state;
    dp_attn_init_params(a->F, a->H, a->Dk, params, key, 0);
}

static void mha_forward(dp_layer *l, const float *params, const float *x, float *y, int B,
                        const dp_fwd_ctx *ctx) {
    (void)ctx;
    dp_attn_forward(l->state, params, x, y, B);
}

static void mha_backward(dp_layer *l, const float *params, const float *x, const float *y,
                         const float *dy, float *dx, float *grads, int B) {
    (void)y;
    if (B <= 0) return;
    dp_attn_backward(l->state, params, x, dy, dx, grads, B);
}

static void mha_free(dp_layer *l) {
    if (l->state) dp_attn_free(l->state);
    free(l->state);
    l->state = NULL;
}

const dp_layer_ops dp_layer_multi_head_attention_ops = {
    .type = "multi_head_attention",
    .create = mha_create,
    .init_params = mha_init_params,
    .forward = mha_forward,
    .backward = mha_backward,
    .free = mha_free,
};
