/* budget.c - the memory budget per rank of docs/DESIGN.md §9, part by part. */
#include "cmd/budget.h"

#include <string.h>

#include "core/memlimit.h"
#include "data/shard.h"
#include "grad/grad_buckets.h"
#include "grad/grad_shm.h"
#include "layers/activation.h"
#include "nn/optim.h"
#include "train/eval.h"

/* conv2d's patch scratch, as conv2d.c sizes it: chunks of G samples with at
 * least 480 output columns, at most 1.5 MiB of col, dcol and z. */
#define BUDGET_CONV_MIN_COLS 480.0
#define BUDGET_CONV_CHUNK_BYTES (3 << 19)

static double budget_u32(double u) {
    return (double)(((long long)u + 31) / 32 * 32);
}

/* conv2d: its chunk's col, dcol, z and the transposed kernel gradient; when
 * it pools its own output, where each maximum came from (int32) and one
 * sample's pooled gradient. */
static double budget_conv2d(const dp_model *m, int i, double R) {
    const dp_layer *l = &m->layers[i];
    const dp_shape *k = &l->params[0].shape; /* [F, C, kh, kw] */
    double F = k->dim[0], K = (double)k->dim[1] * k->dim[2] * k->dim[3];
    double P = (double)l->out_shape.dim[1] * l->out_shape.dim[2];
    double per_sample = 4.0 * (2.0 * K + F) * P;
    double G = (double)(long long)((BUDGET_CONV_MIN_COLS + P - 1.0) / P);
    if (G * per_sample > BUDGET_CONV_CHUNK_BYTES)
        G = (double)(long long)(BUDGET_CONV_CHUNK_BYTES / per_sample);
    if (G > R) G = R;
    if (G < 1) G = 1;
    double bytes = G * per_sample + 4.0 * K * F;
    if (i + 1 < m->n_layers && m->absorbed[i + 1]) {
        double pooled = (double)dp_shape_numel(&m->layers[i + 1].out_shape);
        bytes += 4.0 * R * pooled + 4.0 * pooled;
    }
    return bytes;
}

/* What layer i keeps for backward (docs/DESIGN.md §9 "layer state" and §9.1),
 * besides its output: R rows of what forward writes, b rows of what only a
 * training step writes (dense's dL/dz, dropout's and the block's masks). */
static double budget_layer_state(const dp_model *m, const dp_config *cfg, int i, double R,
                                 double b) {
    const dp_layer *l = &m->layers[i];
    const dp_layer_cfg *lc = &cfg->layers[i];
    const char *t = l->ops->type;
    double in = (double)dp_shape_numel(&l->in_shape), out = (double)dp_shape_numel(&l->out_shape);
    double T = l->in_shape.ndim == 2 ? l->in_shape.dim[0] : 1;
    double F = l->in_shape.dim[l->in_shape.ndim - 1];
    if (strcmp(t, "dense") == 0)
        return 4.0 * b * out + (dp_activation_needs_input(lc->activation) ? 4.0 * R * out : 0.0);
    if (strcmp(t, "dropout") == 0) return 4.0 * b * in;
    if (strcmp(t, "conv2d") == 0) return budget_conv2d(m, i, R);
    if (strcmp(t, "maxpool2d") == 0) return m->absorbed[i] ? 0.0 : 4.0 * R * out;
    if (strcmp(t, "layer_norm") == 0) return 8.0 * R * T;
    if (strcmp(t, "simple_rnn") == 0) {
        double u = lc->units;
        return 4.0 * (2.0 * R * T * u + R * u + u * budget_u32(u) + u);
    }
    if (strcmp(t, "lstm") == 0) {
        double u = lc->units;
        return 4.0 * (R * T * (F + 7.0 * u) + 2.0 * R * u + u + 4.0 * u * budget_u32(u));
    }
    if (strcmp(t, "gru") == 0) {
        double u = lc->units;
        return 4.0 * (5.0 * R * T * u + 4.0 * R * u + 3.0 * u * budget_u32(u) + 4.0 * u);
    }
    if (strcmp(t, "multi_head_attention") == 0) {
        double H = lc->num_heads, Dk = lc->key_dim;
        return 4.0 * R * T * (4.0 * H * Dk + H * T) + 4.0 * T * T + 12.0 * H * Dk * (F + 1.0);
    }
    if (strcmp(t, "transformer_block") == 0) {
        double H = lc->num_heads, ff = lc->ff_dim;
        double blk =
            4.0 * R * T * (8.0 * F + 2.0 * ff + H * T + 4.0) + 4.0 * T * T + 12.0 * F * (F + 1.0);
        return lc->rate > 0.0 ? blk + 8.0 * b * T * F : blk;
    }
    return 0.0; /* flatten, embedding, positional_embedding, global_average_pooling1d */
}

/* Layer outputs and every layer's state at R rows; the two backward buffers
 * as far as backward writes them: b rows of the input gradient each layer
 * passes back, alternating between the two (none for the layers up to the
 * first with parameters, model.c), although each is allocated for R rows of
 * the widest output; the micro-batch staging of b rows. */
static double budget_activations(const dp_model *m, const dp_config *cfg, double R, double b,
                                 double w, double c) {
    double outs = 0, state = 0, dbuf[2] = {0, 0};
    int first = 0, k = 0;
    while (first + 1 < m->n_layers && m->layers[first].param_count == 0) first++;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const dp_layer *l = &m->layers[i];
        /* An absorbed layer's output is written by the layer before it, into
         * its own buffer; that layer's full-size output never exists. */
        if (!(i + 1 < m->n_layers && m->absorbed[i + 1]))
            outs += (double)dp_shape_numel(&l->out_shape);
        if (i > first && !m->absorbed[i]) {
            double dx = (double)dp_shape_numel(&l->in_shape);
            if (dx > dbuf[k]) dbuf[k] = dx;
            k ^= 1;
        }
        state += budget_layer_state(m, cfg, i, R, b);
    }
    double K = dp_model_output_width(m);
    return 4.0 * R * outs + 4.0 * b * (dbuf[0] + dbuf[1]) + state +
           b * (4.0 * w + 4.0 * c + 4.0 * K + 8.0);
}

/* Parameters, gradients and optimizer slots, with the extra gradient copies
 * and fixed-point sums of the exact mode, as docs/DESIGN.md §9 lists them.
 * With a shared segment, rank 0 zeroes all of it; another rank touches the
 * parameters, its own shards' arenas, and its 1/L range of the other arenas
 * and of the optimizer slots. */
static double budget_model(const dp_budget *o, int rank, const dp_config *cfg, double n, double k,
                           double n_tensors) {
    double my_shards = (double)o->shards / o->ranks;
    double bytes;
    if (o->shared) {
        double L = o->ranks, A = o->exact ? L * my_shards : L, own = o->exact ? my_shards : 1;
        double stride = (double)(((long long)n + SHARE_LINE - 1) / SHARE_LINE * SHARE_LINE);
        double notes = 8.0 * (2.0 * L * my_shards + 2.0 * L + L * n_tensors);
        if (rank == 0) bytes = 4.0 * stride * (1.0 + k + A) + notes;
        else bytes = 4.0 * stride * (1.0 + own + (A - own + k) / L) + notes;
        bytes += SHARE_PIECE * (4.0 + 8.0);
    } else {
        bytes = 4.0 * (2.0 + k) * n;
        if (cfg->reduction == DP_REDUCE_EXACT && my_shards > 1) bytes += 4.0 * (my_shards - 1) * n;
    }
    /* The bucket plan's int64 sums: allocated with a shared segment too, but
     * only written over MPI. */
    if (o->exact && !o->shared) bytes += 8.0 * n;
    return bytes;
}

/* The budget of one rank: its shards, its share of the held-out rows, and the
 * rows its forward passes run on, the larger of its micro-batch and its
 * evaluation batches (up to R rows of a 256-row chunk; a rank without
 * held-out rows never runs more than its micro-batch). */
static void budget_rank(const dp_model *m, const dp_config *cfg, const dp_data_info *info,
                        const dp_shard_plan *plan, size_t n_val, int rank, double k,
                        dp_budget *out) {
    int first, mine, b = 0;
    dp_shard_plan_rank(plan, rank, out->ranks, &first, &mine);
    out->rank = rank;
    out->train_rows = 0;
    for (int s = first; s < first + mine; s++) {
        out->train_rows += plan->count[s];
        if (plan->rows_per_step[s] > b) b = plan->rows_per_step[s];
    }
    size_t skip;
    out->test_rows = 0;
    dp_eval_split_rows(n_val, rank, out->ranks, &skip, &out->val_rows);
    if (info->has_test) dp_eval_split_rows(info->n_test, rank, out->ranks, &skip, &out->test_rows);
    size_t held = out->val_rows > out->test_rows ? out->val_rows : out->test_rows;
    if (held > DP_EVAL_CHUNK) held = DP_EVAL_CHUNK;
    if (held > (size_t)out->batch) held = (size_t)out->batch;
    out->rows = held > (size_t)b ? (int)held : b;
    double n = (double)m->n_params, w = (double)dp_shape_numel(&info->x_shape), c = info->y_cols;
    double rows = (double)(out->train_rows + out->val_rows + out->test_rows);
    out->data = 4.0 * rows * (w + c) + 4.0 * ((double)out->train_rows + mine);
    if (out->streamed) {
        /* The reader's ring (reader.c): prefetch slots of a step's rows or an
         * evaluation chunk, with their file row ids; and its permutations. */
        double slot = (double)(b * mine > DP_EVAL_CHUNK ? b * mine : DP_EVAL_CHUNK);
        out->data = (double)cfg->prefetch_steps * slot * (4.0 * (w + c) + 8.0) +
                    4.0 * ((double)out->train_rows + mine);
    }
    out->model = budget_model(out, rank, cfg, n, k, dp_model_list_tensors(m, NULL, NULL));
    out->snapshot = rank == 0 ? 4.0 * (1.0 + k) * n : 0.0;
    out->activations = budget_activations(m, cfg, out->rows, b, w, c);
    out->runtime = DP_BUDGET_RUNTIME_BYTES;
    if (out->ranks > 1)
        out->runtime +=
            DP_BUDGET_RUNTIME_MULTI_BYTES + DP_BUDGET_RUNTIME_PEER_BYTES * (out->ranks - 1);
    out->total = out->data + out->model + out->snapshot + out->activations + out->runtime;
}

int dp_memory_budget(const dp_model *m, const dp_config *cfg, const dp_data_info *info, int ranks,
                     int batch, dp_budget *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    int shards = cfg->shards ? cfg->shards : ranks;
    if (shards % ranks != 0)
        return dp_error_set(err, cfg->source,
                            "data.shards %d is not a multiple of the number of ranks %d", shards,
                            ranks);
    /* Keras: the validation rows are the tail of /train (trainset.c). */
    size_t split_at = (size_t)((double)info->n_train * (1.0 - cfg->validation_split));
    size_t n_val = info->n_train - split_at;
    if (n_val == 0 && info->has_val) n_val = info->n_val;
    dp_shard_plan plan;
    if (dp_shard_plan_make(&plan, split_at, shards, batch, err)) return -1;
    dp_optim o;
    if (dp_optim_init(&o, &cfg->optim, 1, err)) {
        dp_shard_plan_free(&plan);
        return -1;
    }
    double k = o.n_slots;
    dp_optim_free(&o);
    dp_budget one = {.ranks = ranks,
                     .batch = batch,
                     .shards = shards,
                     .shared = ranks > 1 && cfg->shared_memory,
                     .exact = dp_grad_buckets_pick_mode(cfg->reduction, shards) == DP_REDUCE_EXACT};
    /* Ranks differ in their rows and in what rank 0 alone holds. Streaming
     * is decided as trainset.c does, with every rank on one node. */
    double limit = cfg->memory_mib > 0 ? (double)cfg->memory_mib * 1048576.0
                                       : (double)dp_memory_limit_bytes() / 4.0 / ranks;
    one.streamed = cfg->in_memory == DP_IN_MEMORY_FALSE;
    for (int r = 0; cfg->in_memory == DP_IN_MEMORY_AUTO && r < ranks; r++) {
        budget_rank(m, cfg, info, &plan, n_val, r, k, &one);
        double w = (double)dp_shape_numel(&info->x_shape), c = info->y_cols;
        if (4.0 * (double)(one.train_rows + one.val_rows + one.test_rows) * (w + c) > limit)
            one.streamed = 1;
    }
    for (int r = 0; r < ranks; r++) {
        budget_rank(m, cfg, info, &plan, n_val, r, k, &one);
        if (r == 0 || one.total > out->total) *out = one;
    }
    dp_shard_plan_free(&plan);
    return 0;
}
