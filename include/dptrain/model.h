/* model.h - build a model from its config, load or initialize its parameters,
 * and run it forward (inference). */
#ifndef DPTRAIN_MODEL_H
#define DPTRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "dptrain/config.h"
#include "dptrain/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A sequential model over flat parameter and gradient arenas. */
typedef struct dp_model dp_model;

/* Builds the layers of cfg->model for batches of up to max_batch rows, with
 * every parameter zero. Returns the model, or NULL with err set (where = the
 * layer's config place). Free it with dp_model_destroy. */
dp_model *dp_model_create(const dp_config *cfg, int max_batch, dp_error *err);

/* Frees a model from dp_model_create. NULL is a no-op. */
void dp_model_destroy(dp_model *m);

/* Initializes every layer's parameters from seed as training does (Glorot
 * uniform kernels, zero biases), so the same seed gives the same bits. */
void dp_model_init_params(dp_model *m, uint64_t seed);

/* Inference: runs the layers on x[B, numel(cfg input)] and returns the output
 * [B, dp_model_output_width(m)], after the output activation (probabilities
 * for classifiers). It stays valid until the next call. 1 <= B <= max_batch. */
const float *dp_model_predict(dp_model *m, const float *x, int B);

/* Number of output values per row. */
int dp_model_output_width(const dp_model *m);

/* Positions per row: T for a sequence output [T, K] (a language model), whose
 * width is then T * K, else 1. */
int dp_model_output_positions(const dp_model *m);

/* Number of parameters, and the arena holding them [dp_model_n_params(m)]. */
size_t dp_model_n_params(const dp_model *m);
const float *dp_model_params(const dp_model *m);

/* 64-bit FNV-1a hash of the parameter bytes: equal hashes, equal models. */
uint64_t dp_model_hash_params(const dp_model *m);

#ifdef __cplusplus
}
#endif

#endif
