/* test_eval.c - held-out rows split into whole chunks across ranks. */
#include "train/eval.h"
#include "testlib.h"

/* Every row goes to exactly one rank, in rank order, in whole chunks. */
static void test_split_covers_rows(void) {
    static const size_t ns[] = {0, 1, 255, 256, 257, 6000, 10000};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (int size = 1; size <= 5; size++) {
            size_t next = 0;
            for (int rank = 0; rank < size; rank++) {
                size_t first, count;
                dp_eval_split_rows(ns[a], rank, size, &first, &count);
                CU_ASSERT_EQUAL(first, next);
                CU_ASSERT_EQUAL(first % DP_EVAL_CHUNK, 0);
                next = first + count;
            }
            CU_ASSERT_EQUAL(next, ns[a]);
        }
}

/* 10000 test rows = 40 chunks (the last short): 2 ranks take 20 chunks each. */
static void test_split_by_hand(void) {
    size_t first, count;
    dp_eval_split_rows(10000, 1, 2, &first, &count);
    CU_ASSERT_EQUAL(first, 20 * 256);
    CU_ASSERT_EQUAL(count, 10000 - 20 * 256);
    dp_eval_split_rows(10000, 0, 3, &first, &count);
    CU_ASSERT_EQUAL(count, 13 * 256);
}

static void test_total_in_chunk_order(void) {
    double sums[9] = {1.5, 1, 2, 2.25, 2, 3, 0.5, 0, 1};
    dp_loss_sums t = dp_eval_total_chunks(sums, 3);
    CU_ASSERT_DOUBLE_EQUAL(t.loss, 4.25, 0);
    CU_ASSERT_EQUAL(t.correct, 3);
    CU_ASSERT_EQUAL(t.terms, 6);
}

int main(void) {
    static const test_case cases[] = {
        {"whole chunks, every row once, in rank order", test_split_covers_rows},
        {"split by hand", test_split_by_hand},
        {"chunk sums added", test_total_in_chunk_order},
        {NULL, NULL}};
    return test_run_suite("eval", cases);
}
