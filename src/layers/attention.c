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
    size_t hd = (size_t)H * Dk, n = (size_t)max_batch * T * hd * sizeof(float);
    a->qkv = DP_MALLOC(3 * n), a->o = DP_MALLOC(n);
    a->w3 = DP_MALLOC((size_t)F * 3 * hd * sizeof(float));
    a->b3 = DP_MALLOC(3 * hd * sizeof(float));
    a->p = DP_MALLOC((size_t)max_batch * H * T * T * sizeof(float));
    a->dp = DP_MALLOC((size_t)T * T * sizeof(float));
}

void dp_attn_free(dp_attn *a) {
    free(a->qkv), free(a->o), free(a->w3), free(a->b3);
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

/* Touches x[0, n) ahead of use, one prefetch per 64-byte line: the bias
 * rows and the per-head loops below read and write megabytes last touched
 * long before (p in the other pass, qkv in the projection GEMM), and waiting
 * on each cache miss cost more than the arithmetic. */
static void prefetch_span(const float *x, size_t n, int write) {
    for (size_t i = 0; i < n; i += 16) {
        if (write) __builtin_prefetch(x + i, 1);
        else __builtin_prefetch(x + i, 0);
    }
}

#define PREFILL_AHEAD 1024 /* floats: 4 KiB */

/* The bias rows first, then one GEMM adding into them, so the bias costs no
 * extra pass over y. */
void dp_attn_affine(float *y, const float *x, const float *w, const float *b, int N, int k, int n) {
    const size_t total = (size_t)N * n;
    for (size_t at = 0; at < total; at += (size_t)n) {
        if (at + PREFILL_AHEAD < total) {
            size_t ahead = at + PREFILL_AHEAD,
                   len = total - ahead < (size_t)n ? total - ahead : (size_t)n;
            prefetch_span(y + ahead, len, 1);
        }
        memcpy(y + at, b, (size_t)n * sizeof *y);
    }
    dp_gemm(0, 0, N, n, k, 1.0f, x, k, w, n, 1.0f, y, n);
}

/* db[n] += column sums of d[N, n] with row stride ld, rows in order. */
static void colsum_add_ld(float *db, const float *d, int N, int n, int ld) {
    for (int r = 0; r < N; r++) {
        const float *dr = d + (size_t)r * ld;
        for (int j = 0; j < n; j++) db[j] += dr[j];
    }
}

void dp_attn_colsum_add(float *db, const float *d, int N, int n) {
    colsum_add_ld(db, d, N, n, n);
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

/* max of a[0, n), n >= 1, in LANES partial maxima: a single running max
 * waits on each compare. */
static float max_row(const float *a, int n) {
    float acc[LANES];
    for (int j = 0; j < LANES; j++) acc[j] = a[0];
    int s = 0;
    for (; s + LANES <= n; s += LANES)
        for (int j = 0; j < LANES; j++) acc[j] = a[s + j] > acc[j] ? a[s + j] : acc[j];
    float mx = a[0];
    for (; s < n; s++) mx = a[s] > mx ? a[s] : mx;
    for (int j = 0; j < LANES; j++) mx = acc[j] > mx ? acc[j] : mx;
    return mx;
}

/* Part h of H of the next sample's rows: qkv [T, L] and o [T, HD]. */
static void prefetch_next(const dp_attn *a, int b, int B, int h, int write_o) {
    if (b + 1 >= B) return;
    const size_t T = (size_t)a->T, HD = (size_t)a->H * a->Dk, L = 3 * HD;
    size_t nq = T * L / a->H, no = T * HD / a->H;
    prefetch_span(a->qkv + (b + 1) * T * L + h * nq, nq, 0);
    prefetch_span(a->o + (b + 1) * T * HD + h * no, no, write_o);
}

/* Row t of p[T, T] over its first len(t) entries (t + 1 if causal, else T);
 * the rest are zeroed. */
static void softmax_rows(float *p, int T, int causal) {
    for (int t = 0; t < T; t++) {
        float *row = p + (size_t)t * T;
        int n = causal ? t + 1 : T;
        float mx = max_row(row, n);
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

/* w3[F, 3HD] and b3[3HD] = the query, key and value kernels and biases side
 * by side, so the three projections are one GEMM that reads x once. */
static void gather_qkv_params(dp_attn *a, const float *w, attn_offsets o) {
    const size_t hd = (size_t)a->H * a->Dk, kern[3] = {o.wq, o.wk, o.wv},
                 bias[3] = {o.bq, o.bk, o.bv};
    for (int i = 0; i < 3; i++) {
        for (int f = 0; f < a->F; f++)
            memcpy(a->w3 + (size_t)f * 3 * hd + i * hd, w + kern[i] + (size_t)f * hd,
                   hd * sizeof(float));
        memcpy(a->b3 + i * hd, w + bias[i], hd * sizeof(float));
    }
}

void dp_attn_forward(dp_attn *a, const float *w, const float *x, float *y, int B) {
    const int T = a->T, F = a->F, H = a->H, Dk = a->Dk, HD = H * Dk, N = B * T, L = 3 * HD;
    attn_offsets o = attn_layout(F, H, Dk);
    gather_qkv_params(a, w, o);
    dp_attn_affine(a->qkv, x, a->w3, a->b3, N, F, L);
    const float *q = a->qkv, *k = a->qkv + HD, *v = a->qkv + 2 * HD; /* row stride L */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            /* [T, Dk] blocks: at in qkv (row stride L), ao in o (row stride HD) */
            size_t at = (size_t)b * T * L + (size_t)h * Dk,
                   ao = (size_t)b * T * HD + (size_t)h * Dk;
            float *p = a->p + ((size_t)b * H + h) * T * T; /* [T, T] */
            prefetch_next(a, b, B, h, 1);
            if (b + 1 < B) prefetch_span(p + (size_t)H * T * T, (size_t)T * T, 1);
            dp_gemm(0, 1, T, T, Dk, a->scale, q + at, L, k + at, L, 0.0f, p, T);
            softmax_rows(p, T, a->causal);
            dp_gemm(0, 0, T, Dk, T, 1.0f, p, T, v + at, L, 0.0f, a->o + ao, HD);
        }
    dp_attn_affine(y, a->o, w + o.wo, w + o.bo, N, HD, F);
}

void dp_attn_backward(dp_attn *a, const float *w, const float *x, const float *dy, float *dx,
                      float *gw, int B) {
    const int T = a->T, F = a->F, H = a->H, Dk = a->Dk, HD = H * Dk, N = B * T, L = 3 * HD;
    attn_offsets o = attn_layout(F, H, Dk);
    /* Output projection: its weight gradient needs o, which then holds dL/do. */
    dp_gemm(1, 0, HD, F, N, 1.0f, a->o, HD, dy, F, 1.0f, gw + o.wo, F);
    dp_attn_colsum_add(gw + o.bo, dy, N, F);
    float *dout = a->o; /* [N, HD] */
    dp_gemm(0, 1, N, HD, F, 1.0f, dy, F, w + o.wo, F, 0.0f, dout, HD);
    /* Per (sample, head), each gradient goes where its last reader is done:
     * dV over V once dP is formed, dQ over dO once dP and dV are, dK over K
     * once dQ has read it, and dQ over Q once dK has. Afterwards qkv holds
     * dQ | dK | dV. */
    float *q = a->qkv, *k = a->qkv + HD, *v = a->qkv + 2 * HD; /* row stride L */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t at = (size_t)b * T * L + (size_t)h * Dk,
                   ao = (size_t)b * T * HD + (size_t)h * Dk;
            const float *p = a->p + ((size_t)b * H + h) * T * T;
            float *ds = a->dp; /* dL/dP, then dL/dscores in place */
            prefetch_next(a, b, B, h, 0);
            if (b + 1 < B) prefetch_span(p + (size_t)H * T * T, (size_t)T * T, 0);
            dp_gemm(0, 1, T, T, Dk, 1.0f, dout + ao, HD, v + at, L, 0.0f, ds, T);
            dp_gemm(1, 0, T, Dk, T, 1.0f, p, T, dout + ao, HD, 0.0f, v + at, L);
            softmax_rows_backward(ds, p, T, a->causal);
            dp_gemm(0, 0, T, Dk, T, a->scale, ds, T, k + at, L, 0.0f, dout + ao, HD);
            dp_gemm(1, 0, T, Dk, T, a->scale, ds, T, q + at, L, 0.0f, k + at, L);
            for (int t = 0; t < T; t++)
                memcpy(q + at + (size_t)t * L, dout + ao + (size_t)t * HD,
                       (size_t)Dk * sizeof(float));
        }
    const size_t kern[3] = {o.wq, o.wk, o.wv}, bias[3] = {o.bq, o.bk, o.bv};
    for (int i = 0; i < 3; i++) {
        dp_gemm(1, 0, F, HD, N, 1.0f, x, F, a->qkv + i * HD, L, 1.0f, gw + kern[i], HD);
        colsum_add_ld(gw + bias[i], a->qkv + i * HD, N, HD, L);
    }
    /* dx = dQKV w3^T: the three projections' input gradients in one GEMM */
    if (dx) dp_gemm(0, 1, N, F, L, 1.0f, a->qkv, L, a->w3, L, 0.0f, dx, F);
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

double dp_attn_flops(int T, int F, int H, int Dk) {
    double t = T, hd = (double)H * Dk;
    return t * (8.0 * F * hd + 3.0 * hd + F) + 4.0 * hd * t * t;
}

static double mha_flops(const dp_layer *l) {
    const dp_attn *a = l->state;
    return dp_attn_flops(a->T, a->F, a->H, a->Dk);
}

const dp_layer_ops dp_layer_multi_head_attention_ops = {
    .type = "multi_head_attention",
    .create = mha_create,
    .init_params = mha_init_params,
    .forward = mha_forward,
    .backward = mha_backward,
    .flops = mha_flops,
    .free = mha_free,
};
