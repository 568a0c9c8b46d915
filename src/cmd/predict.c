/* predict.c - `dptrain predict`: a checkpoint's outputs for every row of a dataset.
 *
 * The rows are cut into the evaluation's chunks (train/eval.h), each run in the
 * same forward batches wherever it runs, so every row's output is the same bits
 * on any number of ranks. The work goes in rounds: each rank computes a run of
 * whole chunks, rank 0 gathers the round's rows, in order, and writes them, so
 * memory stays bounded however many rows there are. */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_mpi.h"
#include "cmd/predict_io.h"
#include "core/alloc.h"
#include "data/data.h"
#include "dptrain/train.h"
#include "train/eval.h"
#include "train/signals.h"

/* Output bytes one round gathers on rank 0 (at least one chunk per rank). */
#define PR_ROUND_BYTES ((size_t)32 << 20)

typedef struct pr_args {
    const char *ckpt, *input, *dataset, *output;
    int batch; /* 0: the training batch */
    int best;
} pr_args;

static int pr_parse(int argc, char **argv, pr_args *a, dp_error *err) {
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},  {"dataset", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'}, {"batch", required_argument, NULL, 'b'},
        {"best", no_argument, NULL, 'B'},         {NULL, 0, NULL, 0}};
    *a = (pr_args){.dataset = "/test/x"};
    opterr = 0;
    optind = 2; /* after "dptrain predict" */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'i': a->input = optarg; break;
        case 'd': a->dataset = optarg; break;
        case 'o': a->output = optarg; break;
        case 'b':
            if (dp_cmd_parse_batch(optarg, &a->batch, err)) return -1;
            break;
        case 'B': a->best = 1; break;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    if (optind >= argc) return dp_error_set(err, "usage", "predict needs a checkpoint or run dir");
    if (optind + 1 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 1]);
    a->ckpt = argv[optind];
    if (!a->input || !a->input[0])
        return dp_error_set(err, "--input", "predict needs --input IN.h5");
    if (!a->output || !a->output[0])
        return dp_error_set(err, "--output", "predict needs --output OUT.h5");
    if (!a->dataset[0]) return dp_error_set(err, "--dataset", "the dataset name is empty");
    return 0;
}

/* What /classes holds: 2 the argmax of each softmax (first on ties), 1 a
 * single sigmoid's p > 0.5, 0 nothing (regression, multi-label). */
static int pr_class_kind(const dp_model *m) {
    if (m->loss == DP_LOSS_CE || m->loss == DP_LOSS_SPARSE_CE) return 2;
    return m->loss == DP_LOSS_BCE && m->classes == 1 ? 1 : 0;
}

/* The input must be rows the model takes: the same shape, token ids for an
 * embedding model, and as many features as the checkpoint's statistics. */
static int pr_check_input(const dp_pred_input *in, const dp_loaded *l, int embedding,
                          dp_error *err) {
    char a[64], b[64];
    const dp_model *m = &l->model;
    if (embedding && !in->is_int)
        return dp_error_set(err, in->where,
                            "holds floats, but the model's first layer is embedding, which takes "
                            "integer token ids [N, T]");
    if (!dp_shape_equal(&in->row, &m->in_shape))
        return dp_error_set(err, in->where,
                            "rows have shape %s, but the model of %s takes rows of shape %s",
                            dp_shape_format(&in->row, a, sizeof a), l->path,
                            dp_shape_format(&m->in_shape, b, sizeof b));
    size_t width = dp_shape_numel(&in->row);
    if (!embedding && l->st.n_features > 0 && l->st.n_features != width)
        return dp_error_set(err, l->path,
                            "holds standardization statistics for %zu features, but the rows "
                            "have %zu",
                            l->st.n_features, width);
    if (in->n == 0) return dp_error_set(err, in->where, "has no rows to predict");
    return 0;
}

/* Chunks each rank computes per round: as many as keep the round's output on
 * rank 0 under PR_ROUND_BYTES, at least one. Tests set
 * DPTRAIN_TEST_PREDICT_CHUNKS to force small rounds, so that few rows take
 * several (and some ranks sit a round out). */
static size_t pr_round_chunks(size_t chunk_bytes, int size) {
    const char *t = getenv("DPTRAIN_TEST_PREDICT_CHUNKS");
    long forced = t ? strtol(t, NULL, 10) : 0;
    if (forced > 0) return (size_t)forced;
    size_t per_rank = PR_ROUND_BYTES / ((size_t)size * chunk_bytes);
    return per_rank < 1 ? 1 : per_rank;
}

/* The run of one round and rank: rows [first, first + count). */
static void pr_share(size_t n, size_t round_chunk, size_t per_rank, int rank, size_t *first,
                     size_t *count) {
    size_t c0 = round_chunk + (size_t)rank * per_rank;
    size_t r0 = c0 * DP_EVAL_CHUNK, r1 = (c0 + per_rank) * DP_EVAL_CHUNK;
    *first = r0 < n ? r0 : n;
    *count = (r1 < n ? r1 : n) - *first;
}

/* Runs the model over x[count, in], rows from `first` (a chunk boundary), in
 * the evaluation's batches: chunk by chunk, max_batch rows at a time. */
static void pr_forward(dp_model *m, const float *x, size_t count, float *out) {
    size_t in_w = dp_shape_numel(&m->in_shape), w = dp_shape_numel(&m->out_shape);
    for (size_t c = 0; c < count; c += DP_EVAL_CHUNK) {
        size_t rows = count - c < DP_EVAL_CHUNK ? count - c : DP_EVAL_CHUNK;
        for (size_t j = 0; j < rows; j += (size_t)m->max_batch) {
            int b = (int)(rows - j < (size_t)m->max_batch ? rows - j : (size_t)m->max_batch);
            const float *p = dp_model_predict(m, x + (c + j) * in_w, b);
            memcpy(out + (c + j) * w, p, (size_t)b * w * sizeof(float));
        }
    }
}

/* cls[rows * positions] from probs[rows * positions, k] (pr_class_kind). */
static void pr_classes(int kind, const float *probs, size_t rows, int k, int32_t *cls) {
    for (size_t r = 0; r < rows; r++) {
        const float *p = probs + r * (size_t)k; /* [k] */
        int best = 0;
        if (kind == 1) best = p[0] > 0.5f;
        else
            for (int j = 1; j < k; j++)
                if (p[j] > p[best]) best = j;
        cls[r] = best;
    }
}

typedef struct pr_job {
    const dp_comm *c;
    dp_loaded *l;
    dp_pred_input in;
    dp_pred_output out; /* rank 0 */
    int n_tokens;       /* > 0: the input is token ids */
    int standardize;
    int class_kind;
} pr_job;

/* Collective. Every round, agreeing on errors and stop signals after each. */
static int pr_run(pr_job *j, dp_error *err) {
    const dp_comm *c = j->c;
    dp_model *m = &j->l->model;
    size_t n = j->in.n, in_w = dp_shape_numel(&m->in_shape), w = dp_shape_numel(&m->out_shape);
    size_t chunk_bytes = DP_EVAL_CHUNK * w * sizeof(float);
    size_t per_rank = pr_round_chunks(chunk_bytes, c->size);
    if ((size_t)c->size * per_rank * chunk_bytes > (size_t)1 << 30)
        return dp_error_set(err, "predict",
                            "a row of output has %zu values: too many to gather over %d ranks", w,
                            c->size);
    size_t rows_per_rank = per_rank * DP_EVAL_CHUNK, round_rows = rows_per_rank * (size_t)c->size;
    float *x = DP_MALLOC(rows_per_rank * in_w * sizeof(float)); /* [rows_per_rank, in] */
    float *mine = DP_CALLOC(rows_per_rank * w, sizeof(float));  /* [rows_per_rank, out] */
    float *all = c->rank == 0 ? DP_MALLOC(round_rows * w * sizeof(float)) : NULL;
    int32_t *cls = c->rank == 0 && j->class_kind
                       ? DP_MALLOC(round_rows * (size_t)m->positions * sizeof(int32_t))
                       : NULL;
    size_t *counts = DP_MALLOC((size_t)c->size * sizeof(size_t));
    size_t chunks = (n + DP_EVAL_CHUNK - 1) / DP_EVAL_CHUNK;
    int rc = 0;
    for (size_t rc0 = 0; rc0 < chunks && rc == 0; rc0 += per_rank * (size_t)c->size) {
        size_t first, count, total = 0;
        for (int r = 0; r < c->size; r++) {
            pr_share(n, rc0, per_rank, r, &first, &count);
            counts[r] = count * w * sizeof(float);
            total += count;
        }
        pr_share(n, rc0, per_rank, c->rank, &first, &count);
        if (!err->set && dp_pred_input_read(&j->in, first, count, j->n_tokens, x, err) == 0) {
            if (j->standardize) {
                dp_rows r = {.n = count, .x_width = in_w, .x = x};
                dp_data_standardize(&r, j->l->st.mean, j->l->st.std);
            }
            pr_forward(m, x, count, mine);
        }
        dp_comm_gatherv(c, mine, count * w * sizeof(float), all, counts, 0);
        size_t row0 = rc0 * DP_EVAL_CHUNK;
        if (c->rank == 0 && !err->set) {
            if (cls) pr_classes(j->class_kind, all, total * (size_t)m->positions, m->classes, cls);
            dp_pred_output_write(&j->out, row0, total, all, cls, err);
        }
        if (dp_signals_pending())
            dp_error_set(err, "predict", "stopped by a signal; no output written");
        rc = dp_comm_agree(c, err) ? -1 : 0;
    }
    free(x);
    free(mine);
    free(all);
    free(cls);
    free(counts);
    return rc;
}

/* Opens and checks the input on every rank, then rank 0 creates the output. */
static int pr_open(pr_job *j, const pr_args *a, dp_error *err) {
    const dp_config *cfg = &j->l->cfg;
    int embedding = cfg->n_layers > 0 && strcmp(cfg->layers[0].type, "embedding") == 0;
    j->n_tokens = embedding ? cfg->layers[0].input_dim : 0;
    j->standardize = !embedding && j->l->st.n_features > 0;
    j->class_kind = pr_class_kind(&j->l->model);
    if (dp_pred_input_open(&j->in, a->input, a->dataset, err) == 0) {
        j->in.scale = cfg->data_scale; /* the checkpoint's config: as training read x */
        j->in.offset = cfg->data_offset;
        pr_check_input(&j->in, j->l, embedding, err);
    }
    if (dp_comm_agree(j->c, err)) return -1;
    if (j->c->rank == 0) {
        const dp_model *m = &j->l->model;
        int class_ndim = j->class_kind ? (m->positions > 1 ? 2 : 1) : 0;
        dp_pred_output_create(&j->out, a->output, j->in.n, &m->out_shape, class_ndim, m->positions,
                              err);
    }
    return dp_comm_agree(j->c, err) ? -1 : 0;
}

int dp_cmd_predict(const dp_comm *c, int argc, char **argv) {
    pr_args a;
    dp_error err = {0};
    if (pr_parse(argc, argv, &a, &err)) {
        if (c->rank == 0) dp_error_print(&err);
        return DP_EXIT_USAGE;
    }
    /* A bad output path fails before any work. */
    if (c->rank == 0) dp_pred_output_check(a.output, &err);
    if (dp_comm_agree(c, &err)) {
        if (c->rank == 0) dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    dp_loaded l;
    if (dp_cmd_load_all(c, &l, a.ckpt, a.best, a.batch, &err)) {
        if (c->rank == 0) dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    pr_job j = {.c = c, .l = &l};
    j.in.file = j.in.ds = -1;
    int rc = DP_EXIT_ERROR;
    if (pr_open(&j, &a, &err) == 0 && pr_run(&j, &err) == 0) {
        if (c->rank == 0) dp_pred_output_commit(&j.out, &err);
        if (!dp_comm_agree(c, &err)) rc = DP_EXIT_OK;
    }
    if (c->rank == 0) {
        dp_pred_output_abort(&j.out); /* no-op after a commit */
        if (err.set) dp_error_print(&err);
        else printf("predict: %zu rows -> %s\n", j.in.n, a.output);
        fflush(stdout);
    }
    dp_pred_input_close(&j.in);
    dp_loaded_free(&l);
    return rc;
}
