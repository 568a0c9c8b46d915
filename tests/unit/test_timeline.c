/* test_timeline.c - the timeline recorder: windows, a full buffer, step ranges. */
#include <string.h>

#include "core/timeline.h"
#include "testlib.h"

/* Nothing is recorded before dp_tl_open, outside a window, or after close;
 * inside one, begins and ends come in order with non-decreasing times. */
static void test_window(void) {
    dp_tl_begin(DP_TL_STEP, 1); /* no recorder: a no-op */
    CU_ASSERT_PTR_NULL(dp_tl_on);
    dp_tl_open(100, 10);
    dp_tl_begin(DP_TL_STEP, 1);
    CU_ASSERT_EQUAL(dp_tl_events(0)->n, 0);
    dp_tl_window(1);
    dp_tl_begin(DP_TL_STEP, 2);
    dp_tl_begin(DP_TL_DATA, 0);
    dp_tl_end(DP_TL_DATA, 0);
    dp_tl_async_begin(DP_TL_BUCKET_SUM_WIRE, 3);
    dp_tl_end(DP_TL_STEP, 2);
    dp_tl_window(0);
    dp_tl_async_end(DP_TL_BUCKET_SUM_WIRE, 3); /* window closed: left out */
    const dp_tl_buffer *b = dp_tl_events(0);
    CU_ASSERT_EQUAL_FATAL(b->n, 5);
    static const char ph[] = "BBEbE";
    static const int kind[] = {DP_TL_STEP, DP_TL_DATA, DP_TL_DATA, DP_TL_BUCKET_SUM_WIRE,
                               DP_TL_STEP};
    static const int arg[] = {2, 0, 0, 3, 2};
    for (size_t i = 0; i < b->n; i++) {
        CU_ASSERT_EQUAL(b->ev[i].ph, ph[i]);
        CU_ASSERT_EQUAL(b->ev[i].kind, kind[i]);
        CU_ASSERT_EQUAL(b->ev[i].arg, arg[i]);
        if (i) CU_ASSERT(b->ev[i].ns >= b->ev[i - 1].ns);
    }
    CU_ASSERT_EQUAL(b->dropped, 0);
    dp_tl_close();
    CU_ASSERT_PTR_NULL(dp_tl_on);
    CU_ASSERT_FALSE(dp_tl_is_open());
}

/* A full buffer refuses new spans but still takes the ends of the open ones,
 * so what it holds stays balanced; the refused begins are counted. */
static void test_full_buffer_stays_balanced(void) {
    dp_tl_open(10, 0);
    dp_tl_window(1);
    enum { DEPTH = 5, SPANS = 200 };
    for (int d = 0; d < DEPTH; d++) dp_tl_begin(DP_TL_STEP, d);
    for (int i = 0; i < SPANS; i++) {
        dp_tl_begin(DP_TL_DATA, i);
        dp_tl_end(DP_TL_DATA, i);
    }
    for (int d = DEPTH - 1; d >= 0; d--) dp_tl_end(DP_TL_STEP, d);
    const dp_tl_buffer *b = dp_tl_events(0);
    CU_ASSERT(b->n <= b->cap);
    CU_ASSERT(b->dropped > 0);
    long depth = 0, begins = 0;
    for (size_t i = 0; i < b->n; i++) {
        depth += b->ev[i].ph == 'B' ? 1 : -1;
        begins += b->ev[i].ph == 'B';
        CU_ASSERT(depth >= 0);
    }
    CU_ASSERT_EQUAL(depth, 0);
    CU_ASSERT_EQUAL(begins + b->dropped, DEPTH + SPANS);
    dp_tl_close();
}

/* The writer thread's spans (here from this thread) follow the window too. */
static void test_writer_spans(void) {
    dp_tl_open(10, 10);
    dp_tl_writer_begin(DP_TL_CKPT_WRITE, 7);
    dp_tl_writer_end(DP_TL_CKPT_WRITE, 7);
    CU_ASSERT_EQUAL(dp_tl_events(1)->n, 0);
    dp_tl_window(1);
    dp_tl_writer_begin(DP_TL_CKPT_WRITE, 8);
    dp_tl_window(0); /* a write that began in the window ends after it */
    dp_tl_writer_end(DP_TL_CKPT_WRITE, 8);
    const dp_tl_buffer *w = dp_tl_events(1);
    CU_ASSERT_EQUAL_FATAL(w->n, 2);
    CU_ASSERT_EQUAL(w->ev[0].ph, 'B');
    CU_ASSERT_EQUAL(w->ev[1].ph, 'E');
    CU_ASSERT_EQUAL(w->ev[1].arg, 8);
    CU_ASSERT_EQUAL(dp_tl_events(0)->n, 0);
    dp_tl_close();
}

static void test_parse_steps(void) {
    long long a = 0, b = 0;
    char why[160];
    CU_ASSERT_EQUAL(dp_tl_parse_steps("1:20", &a, &b, why, sizeof why), 0);
    CU_ASSERT(a == 1 && b == 20);
    CU_ASSERT_EQUAL(dp_tl_parse_steps("7:7", &a, &b, why, sizeof why), 0);
    CU_ASSERT(a == 7 && b == 7);
    CU_ASSERT_EQUAL(dp_tl_parse_steps("100000000000:100000000001", &a, &b, why, sizeof why), 0);
    CU_ASSERT(a == 100000000000LL && b == 100000000001LL);
    static const char *bad[] = {"",
                                "5",
                                "5:",
                                ":5",
                                "a:b",
                                "1:2:3",
                                "1:2x",
                                "3:2",
                                "0:4",
                                "-1:4",
                                "1:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why[0] = 0;
        CU_ASSERT_EQUAL(dp_tl_parse_steps(bad[i], &a, &b, why, sizeof why), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, bad[i]));
    }
}

int main(void) {
    static const test_case cases[] = {
        {"windows and order", test_window},
        {"a full buffer stays balanced", test_full_buffer_stays_balanced},
        {"writer spans follow the window", test_writer_spans},
        {"step ranges", test_parse_steps},
        {NULL, NULL}};
    return test_run_suite("timeline", cases);
}
