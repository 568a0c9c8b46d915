/* test_sample.c - next-token sampling: greedy, top-k, temperature, the
 * frequencies of draws against the softmax they sample from. */
#include "nn/sample.h"
#include "testlib.h"

#include <math.h>

static void test_greedy(void) {
    const float z[5] = {0.1f, 2.0f, -1.0f, 2.0f, 0.5f};
    float scratch[5];
    /* The first of equal maxima, whatever the key. */
    for (uint64_t key = 0; key < 20; key++) {
        CU_ASSERT_EQUAL(dp_sample_token(z, 5, 0.0, 0, key, scratch), 1);
        CU_ASSERT_EQUAL(dp_sample_token(z, 5, 1.0, 1, key, scratch), 1);
    }
}

/* Draws over many keys follow softmax(z / temperature) within sampling noise;
 * top-k never picks outside the k largest. */
static void test_frequencies(void) {
    const float z[4] = {(float)log(0.5), (float)log(0.3), (float)log(0.15), (float)log(0.05)};
    float scratch[4];
    enum { N = 20000 };
    int count[4] = {0}, count_k2[4] = {0}, count_hot[4] = {0};
    for (uint64_t key = 0; key < N; key++) {
        count[dp_sample_token(z, 4, 1.0, 0, key * 7919 + 1, scratch)]++;
        count_k2[dp_sample_token(z, 4, 1.0, 2, key * 7919 + 1, scratch)]++;
        count_hot[dp_sample_token(z, 4, 2.0, 0, key * 7919 + 1, scratch)]++;
    }
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    double hot_total = 0.0, hot[4];
    for (int i = 0; i < 4; i++) hot_total += hot[i] = sqrt(p[i]);
    for (int i = 0; i < 4; i++) {
        /* 5 standard deviations of a binomial count. */
        double sd = sqrt(N * p[i] * (1 - p[i]));
        CU_ASSERT(fabs(count[i] - N * p[i]) < 5 * sd);
        double ph = hot[i] / hot_total;
        CU_ASSERT(fabs(count_hot[i] - N * ph) < 5 * sqrt(N * ph * (1 - ph)));
    }
    CU_ASSERT_EQUAL(count_k2[2] + count_k2[3], 0);
    double p2 = 0.5 / 0.8;
    CU_ASSERT(fabs(count_k2[0] - N * p2) < 5 * sqrt(N * p2 * (1 - p2)));
    /* The same key, the same token. */
    CU_ASSERT_EQUAL(dp_sample_token(z, 4, 1.0, 0, 99, scratch),
                    dp_sample_token(z, 4, 1.0, 0, 99, scratch));
}

int main(void) {
    static const test_case cases[] = {
        {"greedy and top-1", test_greedy},
        {"frequencies, temperature and top-k", test_frequencies},
        {NULL, NULL},
    };
    return test_run_suite("sample", cases);
}
