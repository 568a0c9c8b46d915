/* sample.c - temperature and top-k sampling over one position's logits. */
#include "nn/sample.h"

#include <math.h>

#include "core/rng.h"

static int sample_argmax(const float *v, int V) {
    int best = 0;
    for (int k = 1; k < V; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

/* The k-th largest value of v[V] (1-based), by counting: V is a vocabulary
 * (256 bytes), so O(V * distinct) is cheaper than sorting a copy. */
static float sample_kth_largest(const float *v, int V, int k) {
    float bound = INFINITY, kth = -INFINITY;
    int above = 0;
    while (above < k) {
        kth = -INFINITY;
        for (int i = 0; i < V; i++)
            if (v[i] < bound && v[i] > kth) kth = v[i];
        if (kth == -INFINITY) break;
        for (int i = 0; i < V; i++) above += v[i] == kth;
        bound = kth;
    }
    return kth;
}

int dp_sample_token(const float *logits, int V, double temperature, int top_k, uint64_t key,
                    float *scratch) {
    int best = sample_argmax(logits, V);
    if (temperature <= 0.0 || top_k == 1) return best;
    /* Ties at the k-th value are all kept: which of equal logits is "in" the
     * top k would otherwise depend on their order. */
    float floor_v = top_k > 0 && top_k < V ? sample_kth_largest(logits, V, top_k) : -INFINITY;
    double total = 0.0, mx = logits[best];
    for (int i = 0; i < V; i++) {
        double p = logits[i] >= floor_v ? exp(((double)logits[i] - mx) / temperature) : 0.0;
        scratch[i] = (float)p;
        total += (float)p;
    }
    /* 53 random bits: u in [0, 1). */
    double u = (double)(dp_rng_u64(key, 0) >> 11) * 0x1.0p-53 * total, acc = 0.0;
    int last = best;
    for (int i = 0; i < V; i++) {
        if (scratch[i] == 0.0f) continue;
        acc += scratch[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding left u at the very top */
}
