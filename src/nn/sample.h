/* sample.h - picking the next token from a language model's logits. */
#ifndef DPTRAIN_NN_SAMPLE_H
#define DPTRAIN_NN_SAMPLE_H

#include <stdint.h>

/* Returns a token id in [0, V) drawn from softmax(logits / temperature),
 * restricted to the top_k largest logits when top_k > 0 (every logit equal to
 * the k-th largest is kept). temperature <= 0 means greedy: the first argmax. The draw is the
 * uniform number 0 of rng stream `key`, so the same key gives the same token.
 * scratch holds V floats. */
int dp_sample_token(const float *logits, int V, double temperature, int top_k, uint64_t key,
                    float *scratch);

#endif
