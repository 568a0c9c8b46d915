/* test_grad_buckets.c - the bucket plan of dp_grad_buckets_init: contiguous
 * ranges of the gradient arena, whole layers only, from the last layer
 * backwards, each closed once it holds train.bucket_kib. The plan needs only
 * the model's layout, so the models here are layouts without layer code. */
#include "grad/grad_buckets.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>

/* A layout: layer i has tensors of sizes t[i][0..], ending at 0 (a layer
 * without parameters has none). */
enum { MAX_LAYERS = 12 };
typedef struct layout {
    int n;
    size_t t[MAX_LAYERS][DP_LAYER_MAX_PARAMS + 1];
} layout;

static void build(dp_model *m, const layout *lay) {
    memset(m, 0, sizeof *m);
    m->n_layers = lay->n;
    size_t off = 0;
    for (int i = 0; i < lay->n; i++) {
        dp_layer *l = &m->layers[i];
        l->index = i;
        l->param_offset = off;
        size_t lo = 0;
        for (int p = 0; p < DP_LAYER_MAX_PARAMS && lay->t[i][p]; p++) {
            dp_param_view *v = &l->params[p];
            snprintf(v->name, sizeof v->name, "t%d", p);
            v->shape.ndim = 1;
            v->shape.dim[0] = (int)lay->t[i][p];
            v->offset = lo;
            v->numel = lay->t[i][p];
            lo += v->numel;
            l->n_params++;
        }
        l->param_count = lo;
        off += lo;
    }
    m->n_params = off;
}

/* Plans buckets of `floats` floats (bytes = 4 * floats) for the layout. */
static void plan(dp_grad_buckets *r, dp_model *m, const layout *lay, size_t bytes) {
    build(m, lay);
    double seconds[DP_TIME_PHASES] = {0};
    dp_grad_buckets_init(r, m, DP_REDUCE_FAST, 1, bytes, seconds);
}

/* The bucket that holds layer i's first gradient, or -1. */
static int bucket_of(const dp_grad_buckets *r, const dp_layer *l) {
    for (int k = 0; k < r->n_buckets; k++)
        if (l->param_offset >= r->buckets[k].off &&
            l->param_offset < r->buckets[k].off + r->buckets[k].len)
            return k;
    return -1;
}

/* Every property of a plan for bucket_bytes; returns the number of violations
 * and prints each, so a failure says which bucket and why. */
static int check_plan(const dp_model *m, const dp_grad_buckets *r, size_t bytes) {
    int bad = 0;
#define CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            bad++; \
            printf("\n  plan for %zu bytes: ", bytes); \
            printf(__VA_ARGS__); \
        } \
    } while (0)
    int n_tensors = dp_model_list_tensors(m, NULL, NULL);
    CHECK(r->n_tensors == n_tensors, "%d tensors, the model has %d", r->n_tensors, n_tensors);
    int with_params = 0;
    for (int i = 0; i < m->n_layers; i++) with_params += m->layers[i].n_params > 0;
    CHECK(r->n_buckets >= 1, "no bucket");
    if (with_params == 0) {
        /* Still one bucket, empty, to carry the loss. */
        CHECK(r->n_buckets == 1, "%d buckets for a model without parameters", r->n_buckets);
        CHECK(r->buckets[0].len == 0 && r->buckets[0].t_count == 0, "the bucket is not empty");
        return bad;
    }
    CHECK(r->n_buckets <= with_params, "%d buckets for %d layers with parameters", r->n_buckets,
          with_params);
    /* Contiguous from the end of the arena down to its start, each range once. */
    size_t end = m->n_params;
    int t_end = n_tensors;
    for (int k = 0; k < r->n_buckets; k++) {
        const dp_grad_bucket *b = &r->buckets[k];
        CHECK(b->len > 0, "bucket %d is empty", k);
        CHECK(b->off + b->len == end, "bucket %d ends at %zu, not %zu", k, b->off + b->len, end);
        end = b->off;
        CHECK(b->t_first + b->t_count == t_end, "bucket %d's tensors end at %d, not %d", k,
              b->t_first + b->t_count, t_end);
        t_end = b->t_first;
        /* Its tensors are exactly its range. */
        size_t sum = 0;
        for (int t = b->t_first; t < b->t_first + b->t_count; t++) {
            CHECK(r->t_off[t] >= b->off && r->t_off[t] + r->t_len[t] <= b->off + b->len,
                  "tensor %d [%zu, +%zu) outside bucket %d", t, r->t_off[t], r->t_len[t], k);
            sum += r->t_len[t];
        }
        CHECK(sum == b->len, "bucket %d: tensors hold %zu values of %zu", k, sum, b->len);
        /* Starts where its lowest layer starts; later buckets hold earlier layers. */
        const dp_layer *low = &m->layers[b->low_layer];
        CHECK(low->n_params > 0, "bucket %d's lowest layer %d has no parameters", k, b->low_layer);
        CHECK(low->param_offset == b->off, "bucket %d starts at %zu, inside layer %d", k, b->off,
              b->low_layer);
        if (k > 0)
            CHECK(b->low_layer < r->buckets[k - 1].low_layer,
                  "bucket %d's layer %d is not below %d", k, b->low_layer,
                  r->buckets[k - 1].low_layer);
        /* Closed as soon as it held bucket_bytes: every bucket but the first
         * layers' one holds that much, and would not without its lowest layer. */
        if (k < r->n_buckets - 1)
            CHECK(b->len * sizeof(float) >= bytes, "bucket %d holds %zu bytes, less than %zu", k,
                  b->len * sizeof(float), bytes);
        CHECK((b->len - low->param_count) * sizeof(float) < bytes,
              "bucket %d was full (%zu bytes) before its layer %d", k,
              (b->len - low->param_count) * sizeof(float), b->low_layer);
    }
    CHECK(end == 0, "the buckets start at %zu, not 0", end);
    CHECK(t_end == 0, "the buckets' tensors start at %d, not 0", t_end);
    /* Whole layers: each layer's range lies in one bucket. */
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        if (!l->n_params) continue;
        int k = bucket_of(r, l);
        CHECK(k >= 0, "layer %d in no bucket", i);
        if (k >= 0)
            CHECK(l->param_offset + l->param_count <= r->buckets[k].off + r->buckets[k].len,
                  "layer %d straddles bucket %d's end", i, k);
    }
#undef CHECK
    return bad;
}

/* Plans and checks the layout for a bucket size; keeps the plan in r. */
static void plan_checked(dp_grad_buckets *r, dp_model *m, const layout *lay, size_t bytes) {
    plan(r, m, lay, bytes);
    CU_ASSERT_EQUAL(check_plan(m, r, bytes), 0);
}

/* dense 20->64, dropout, dense 64->32, dense 32->1, as configs/seed.yaml. */
static const layout SEED = {4, {{1280, 64}, {0}, {2048, 32}, {32, 1}}};

static void test_huge_bucket_is_one(void) {
    dp_model m;
    dp_grad_buckets r;
    plan_checked(&r, &m, &SEED, (size_t)1 << 40);
    CU_ASSERT_EQUAL(r.n_buckets, 1);
    CU_ASSERT_EQUAL(r.buckets[0].off, 0);
    CU_ASSERT_EQUAL(r.buckets[0].len, m.n_params);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 0);
    CU_ASSERT_EQUAL(r.buckets[0].t_first, 0);
    CU_ASSERT_EQUAL(r.buckets[0].t_count, 6);
    dp_grad_buckets_free(&r);
    /* Exactly the arena's size is enough too. */
    plan_checked(&r, &m, &SEED, m.n_params * sizeof(float));
    CU_ASSERT_EQUAL(r.n_buckets, 1);
    dp_grad_buckets_free(&r);
}

static void test_tiny_bucket_per_layer(void) {
    dp_model m;
    dp_grad_buckets r;
    for (size_t bytes = 1; bytes <= 4 * 33; bytes *= 2) {
        plan_checked(&r, &m, &SEED, bytes);
        CU_ASSERT_EQUAL(r.n_buckets, 3);
        static const int low[3] = {3, 2, 0};
        for (int k = 0; k < r.n_buckets && k < 3; k++) {
            CU_ASSERT_EQUAL(r.buckets[k].low_layer, low[k]);
            CU_ASSERT_EQUAL(r.buckets[k].t_count, 2);
            CU_ASSERT_EQUAL(r.buckets[k].len, m.layers[low[k]].param_count);
        }
        dp_grad_buckets_free(&r);
    }
}

/* The last layers go first: with room for the last two layers, they share. */
static void test_backwards_from_last_layer(void) {
    dp_model m;
    dp_grad_buckets r;
    plan_checked(&r, &m, &SEED, (2080 + 33) * sizeof(float));
    CU_ASSERT_EQUAL_FATAL(r.n_buckets, 2);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 2);
    CU_ASSERT_EQUAL(r.buckets[0].off, 1344);
    CU_ASSERT_EQUAL(r.buckets[0].len, 2080 + 33);
    CU_ASSERT_EQUAL(r.buckets[0].t_first, 2);
    CU_ASSERT_EQUAL(r.buckets[0].t_count, 4);
    CU_ASSERT_EQUAL(r.buckets[1].low_layer, 0);
    CU_ASSERT_EQUAL(r.buckets[1].off, 0);
    CU_ASSERT_EQUAL(r.buckets[1].len, 1344);
    dp_grad_buckets_free(&r);
    /* One float less, and the last layer's bucket closes after layer 2 all the same. */
    plan_checked(&r, &m, &SEED, (2080 + 33) * sizeof(float) - 4);
    CU_ASSERT_EQUAL(r.n_buckets, 2);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 2);
    dp_grad_buckets_free(&r);
    /* One float more: layer 2 does not fill it, so layer 0 joins. */
    plan_checked(&r, &m, &SEED, (2080 + 33) * sizeof(float) + 4);
    CU_ASSERT_EQUAL(r.n_buckets, 1);
    dp_grad_buckets_free(&r);
}

/* A layer bigger than a bucket: alone when it starts a bucket, and it closes
 * the bucket it joins, so nothing below it shares its bucket. */
static void test_layer_bigger_than_bucket(void) {
    dp_model m;
    dp_grad_buckets r;
    /* 10 | 1000 | 10 | 1000 + 5 | 10, buckets of 100 floats. */
    static const layout big = {5, {{10}, {1000}, {10}, {1000, 5}, {10}}};
    plan_checked(&r, &m, &big, 100 * sizeof(float));
    CU_ASSERT_EQUAL_FATAL(r.n_buckets, 3);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 3); /* layers 4 and 3 */
    CU_ASSERT_EQUAL(r.buckets[0].len, 1015);
    CU_ASSERT_EQUAL(r.buckets[1].low_layer, 1); /* layers 2 and 1 */
    CU_ASSERT_EQUAL(r.buckets[1].len, 1010);
    CU_ASSERT_EQUAL(r.buckets[2].low_layer, 0);
    CU_ASSERT_EQUAL(r.buckets[2].len, 10);
    dp_grad_buckets_free(&r);
    /* Big layers last and first: each starts its own bucket and is alone. */
    static const layout ends = {3, {{1000}, {10}, {1000}}};
    plan_checked(&r, &m, &ends, 100 * sizeof(float));
    CU_ASSERT_EQUAL_FATAL(r.n_buckets, 2);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 2);
    CU_ASSERT_EQUAL(r.buckets[0].len, 1000);
    CU_ASSERT_EQUAL(r.buckets[1].low_layer, 0);
    CU_ASSERT_EQUAL(r.buckets[1].len, 1010);
    dp_grad_buckets_free(&r);
}

/* Layers without parameters (dropout, flatten, maxpool) are in no bucket and
 * never a bucket's lowest layer, wherever they are. */
static void test_layers_without_params(void) {
    dp_model m;
    dp_grad_buckets r;
    static const layout around = {7, {{0}, {0}, {50, 5}, {0}, {30, 3}, {0}, {0}}};
    plan_checked(&r, &m, &around, 1);
    CU_ASSERT_EQUAL_FATAL(r.n_buckets, 2);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 4);
    CU_ASSERT_EQUAL(r.buckets[0].off, 55);
    CU_ASSERT_EQUAL(r.buckets[1].low_layer, 2);
    CU_ASSERT_EQUAL(r.buckets[1].off, 0);
    dp_grad_buckets_free(&r);
    plan_checked(&r, &m, &around, (size_t)1 << 30);
    CU_ASSERT_EQUAL(r.n_buckets, 1);
    CU_ASSERT_EQUAL(r.buckets[0].low_layer, 2);
    CU_ASSERT_EQUAL(r.buckets[0].len, 88);
    dp_grad_buckets_free(&r);
    /* No parameters at all: one empty bucket still carries the loss. */
    static const layout none = {2, {{0}, {0}}};
    plan_checked(&r, &m, &none, 1024);
    CU_ASSERT_EQUAL(r.n_buckets, 1);
    CU_ASSERT_EQUAL(r.n_tensors, 0);
    CU_ASSERT_EQUAL(r.buckets[0].len, 0);
    dp_grad_buckets_free(&r);
}

/* Many layouts and sizes: every plan has every property. */
static void test_random_layouts(void) {
    unsigned s = 2024u;
    int failed = 0;
    for (int trial = 0; trial < 300 && failed < 3; trial++) {
        layout lay;
        memset(&lay, 0, sizeof lay);
        s = s * 1664525u + 1013904223u;
        lay.n = 1 + (int)((s >> 8) % MAX_LAYERS);
        for (int i = 0; i < lay.n; i++) {
            s = s * 1664525u + 1013904223u;
            int nt = (int)((s >> 8) % (DP_LAYER_MAX_PARAMS + 1));
            if ((s >> 20) % 3 == 0) nt = 0;
            for (int p = 0; p < nt; p++) {
                s = s * 1664525u + 1013904223u;
                lay.t[i][p] = 1 + (s >> 8) % ((s >> 28) % 2 ? 5000 : 50);
            }
        }
        s = s * 1664525u + 1013904223u;
        size_t bytes = 1 + (s >> 8) % 40000;
        dp_model m;
        dp_grad_buckets r;
        plan(&r, &m, &lay, bytes);
        int bad = check_plan(&m, &r, bytes);
        CU_ASSERT_EQUAL(bad, 0);
        if (bad) printf("\n  (trial %d, %d layers)", trial, lay.n), failed++;
        dp_grad_buckets_free(&r);
    }
}

int main(void) {
    static const test_case cases[] = {
        {"huge_bucket_is_one", test_huge_bucket_is_one},
        {"tiny_bucket_per_layer", test_tiny_bucket_per_layer},
        {"backwards_from_last_layer", test_backwards_from_last_layer},
        {"layer_bigger_than_bucket", test_layer_bigger_than_bucket},
        {"layers_without_params", test_layers_without_params},
        {"random_layouts", test_random_layouts},
        {NULL, NULL},
    };
    return test_run_suite("grad_buckets", cases);
}
