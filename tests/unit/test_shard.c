/* test_shard.c - which rows each shard, rank and step gets. */
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "testlib.h"

/* Every row of [0, N) is used exactly once per epoch, each step takes exactly
 * B rows except a short last one, and shards are contiguous and in order. */
static void check_plan_covers(size_t n, int s, int b) {
    dp_shard_plan p;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_shard_plan_make(&p, n, s, b, &err), 0);
    CU_ASSERT_EQUAL(p.steps, (int)((n + (size_t)b - 1) / (size_t)b));
    size_t total = 0;
    for (int i = 0; i < s; i++) {
        CU_ASSERT_EQUAL(p.offset[i], total);
        total += p.count[i];
        /* Each shard lasts exactly `steps` steps: its last step is not empty
         * unless the whole step is short, and it has no rows left over. */
        size_t used = 0;
        for (int t = 0; t < p.steps; t++) {
            size_t lo, hi;
            dp_shard_plan_step(&p, i, t, &lo, &hi);
            CU_ASSERT_EQUAL(lo, used);
            used = hi;
        }
        CU_ASSERT_EQUAL(used, p.count[i]);
    }
    CU_ASSERT_EQUAL(total, n);
    size_t rows = 0;
    for (int t = 0; t < p.steps; t++) {
        size_t r = dp_shard_plan_step_rows(&p, t);
        if (t + 1 < p.steps) CU_ASSERT_EQUAL(r, (size_t)b);
        CU_ASSERT(r >= 1 && r <= (size_t)b);
        rows += r;
    }
    CU_ASSERT_EQUAL(rows, n);
    dp_shard_plan_free(&p);
}

static void test_plan_covers_all_rows(void) {
    static const size_t ns[] = {560, 561, 569, 1000, 10, 97};
    static const int ss[] = {1, 2, 3, 4, 8};
    static const int bs[] = {8, 10, 12, 64};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t c = 0; c < sizeof ss / sizeof *ss; c++)
            for (size_t d = 0; d < sizeof bs / sizeof *bs; d++)
                if (bs[d] >= ss[c] && ns[a] >= (size_t)bs[d])
                    check_plan_covers(ns[a], ss[c], bs[d]);
}

/* The seed on 2 shards: 560 rows, batch 10, two shards of 280 taking 5 rows a step. */
static void test_plan_seed_by_hand(void) {
    dp_shard_plan p;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_shard_plan_make(&p, 560, 2, 10, &err), 0);
    CU_ASSERT_EQUAL(p.steps, 56);
    CU_ASSERT_EQUAL(p.rows_per_step[0], 5);
    CU_ASSERT_EQUAL(p.rows_per_step[1], 5);
    CU_ASSERT_EQUAL(p.count[0], 280);
    CU_ASSERT_EQUAL(p.offset[1], 280);
    dp_shard_plan_free(&p);
    /* 4 shards, batch 10: micro-batches 3,3,2,2 and shards sized to match. */
    CU_ASSERT_EQUAL_FATAL(dp_shard_plan_make(&p, 565, 4, 10, &err), 0);
    CU_ASSERT_EQUAL(p.steps, 57);
    CU_ASSERT_EQUAL(p.rows_per_step[0], 3);
    CU_ASSERT_EQUAL(p.rows_per_step[3], 2);
    /* 56 full steps plus a last step of 5 rows split 2,1,1,1. */
    CU_ASSERT_EQUAL(p.count[0], 56 * 3 + 2);
    CU_ASSERT_EQUAL(p.count[1], 56 * 3 + 1);
    CU_ASSERT_EQUAL(p.count[2], 56 * 2 + 1);
    CU_ASSERT_EQUAL(p.count[3], 56 * 2 + 1);
    dp_shard_plan_free(&p);
}

/* Ranks own consecutive, disjoint groups of shards covering all of them. */
static void test_rank_ownership(void) {
    dp_shard_plan p;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_shard_plan_make(&p, 1000, 8, 16, &err), 0);
    static const int ps[] = {1, 2, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        int next = 0;
        for (int r = 0; r < ps[i]; r++) {
            int first, n;
            dp_shard_plan_rank(&p, r, ps[i], &first, &n);
            CU_ASSERT_EQUAL(first, next);
            CU_ASSERT_EQUAL(n, 8 / ps[i]);
            next = first + n;
        }
        CU_ASSERT_EQUAL(next, 8);
    }
    dp_shard_plan_free(&p);
}

static void test_plan_errors(void) {
    dp_shard_plan p;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_shard_plan_make(&p, 100, 4, 3, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "smaller than data.shards"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_shard_plan_make(&p, 5, 1, 10, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "fewer than one global batch"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_shard_plan_make(&p, 5, 0, 10, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.where, "data.shards");
}

int main(void) {
    static const test_case cases[] = {
        {"every row once per epoch, for many N, S, B", test_plan_covers_all_rows},
        {"seed plan by hand", test_plan_seed_by_hand},
        {"ranks own consecutive shards", test_rank_ownership},
        {"plan errors", test_plan_errors},
        {NULL, NULL}};
    return test_run_suite("shard", cases);
}
