/* rng.c - counter-based generator: splitmix64's finalizer over (key, counter).
 *
 * A pure function of its inputs, so any rank can compute any sample's random
 * values without sharing a stream. */
#include "core/rng.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dp_rng_make_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t k = mix64(a + 0x9e3779b97f4a7c15ULL);
    k = mix64(k ^ (b + 0x632be59bd9b4e019ULL));
    k = mix64(k ^ (c + 0x8cb92ba72f3d8dd7ULL));
    return mix64(k ^ (d + 0xd6e8feb86659fd93ULL));
}

uint64_t dp_rng_u64(uint64_t key, uint64_t i) {
    return mix64(key ^ mix64(i * 0x9e3779b97f4a7c15ULL + 1));
}

/* The top 24 bits as a float in [0, 1): exact, every value equally likely. */
static float unit_float(uint64_t r) {
    return (float)(r >> 40) * (1.0f / 16777216.0f);
}

float dp_rng_uniform(uint64_t key, uint64_t i) {
    return unit_float(dp_rng_u64(key, i));
}

void dp_rng_uniform_fill(uint64_t key, uint64_t first, float *out, size_t n) {
    /* The same values as dp_rng_uniform, in a loop the compiler can vectorize. */
    for (size_t i = 0; i < n; i++) out[i] = unit_float(dp_rng_u64(key, first + i));
}

void dp_rng_permute(uint64_t key, uint32_t *perm, size_t n) {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        /* Lemire's multiply-shift maps 64 random bits onto [0, i) without a modulo. */
        uint64_t r = dp_rng_u64(key, i);
        size_t j = (size_t)(((unsigned __int128)r * i) >> 64);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
