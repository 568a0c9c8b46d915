/* evaluate.c - `dptrain evaluate`: a checkpoint's loss and metrics over one split. */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_mpi.h"
#include "core/alloc.h"
#include "data/trainset.h"
#include "dptrain/train.h"
#include "train/eval.h"
#include "train/signals.h"

/* Rows read at a time: whole evaluation chunks, so memory stays bounded
 * however large the split. */
#define EV_BLOCK_ROWS (16 * DP_EVAL_CHUNK)

typedef struct ev_args {
    const char *ckpt, *data, *split;
    int batch; /* 0: the training batch */
    int best, json;
} ev_args;

static int ev_parse(int argc, char **argv, ev_args *a, dp_error *err) {
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},  {"split", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'}, {"best", no_argument, NULL, 'B'},
        {"json", no_argument, NULL, 'j'},        {NULL, 0, NULL, 0}};
    *a = (ev_args){.split = "test"};
    opterr = 0;
    optind = 2; /* after "dptrain evaluate" */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd': a->data = optarg; break;
        case 's': a->split = optarg; break;
        case 'b':
            if (dp_cmd_parse_batch(optarg, &a->batch, err)) return -1;
            break;
        case 'B': a->best = 1; break;
        case 'j': a->json = 1; break;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    if (optind >= argc) return dp_error_set(err, "usage", "evaluate needs a checkpoint or run dir");
    if (optind + 1 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 1]);
    a->ckpt = argv[optind];
    if (strcmp(a->split, "test") && strcmp(a->split, "val") && strcmp(a->split, "train"))
        return dp_error_set(err, "--split", "unknown split '%s' (expected test, val or train)",
                            a->split);
    return 0;
}

/* Where a split's rows lie: `n` rows of the file's /`group` from row `offset`.
 * As in training, validation rows are the tail of /train when
 * data.validation_split is set (else /val), and the training rows are the rest. */
typedef struct ev_split {
    const char *group;
    size_t offset, n;
} ev_split;

static int ev_locate(const dp_data_info *info, const dp_config *cfg, const char *split, ev_split *s,
                     dp_error *err) {
    size_t split_at = (size_t)((double)info->n_train * (1.0 - cfg->validation_split));
    if (!strcmp(split, "test")) {
        if (!info->has_test)
            return dp_error_set(err, info->path,
                                "has no /test split (evaluate --split val or train instead)");
        *s = (ev_split){"test", 0, info->n_test};
    } else if (!strcmp(split, "val")) {
        if (split_at < info->n_train) *s = (ev_split){"train", split_at, info->n_train - split_at};
        else if (info->has_val) *s = (ev_split){"val", 0, info->n_val};
        else
            return dp_error_set(err, info->path,
                                "has no validation rows: data.validation_split is 0 and there is "
                                "no /val split");
    } else {
        *s = (ev_split){"train", 0, split_at};
    }
    if (s->n == 0) return dp_error_set(err, info->path, "the %s split has no rows", split);
    return 0;
}

/* Opens the dataset and finds the split, checking both against the model. */
static int ev_open_data(const ev_args *a, dp_loaded *l, dp_data_info *info, ev_split *s,
                        int *classes, dp_error *err) {
    const char *path = a->data ? a->data : l->cfg.data_path;
    if (dp_data_read_info(path, info, err) ||
        dp_trainset_check_file(info, &l->cfg, l->model.classes, l->model.positions, classes, err) ||
        ev_locate(info, &l->cfg, a->split, s, err))
        return -1;
    size_t width = dp_shape_numel(&info->x_shape);
    if (!info->x_is_int && l->st.n_features > 0 && l->st.n_features != width)
        return dp_error_set(err, l->path,
                            "holds standardization statistics for %zu features, but rows of %s "
                            "have %zu",
                            l->st.n_features, path, width);
    return 0;
}

/* This rank's share of the split, read block by block, standardized with the
 * checkpoint's statistics as training did, and evaluated into sums[3 * chunks].
 * Stops at the first error or stop signal. */
static int ev_run_share(const dp_comm *c, dp_loaded *l, const dp_data_info *info, const ev_split *s,
                        int classes, double *sums, dp_error *err) {
    size_t first, count;
    dp_eval_split_rows(s->n, c->rank, c->size, &first, &count);
    int standardize = !info->x_is_int && l->st.n_features > 0;
    for (size_t done = 0; done < count; done += EV_BLOCK_ROWS) {
        if (dp_signals_pending())
            return dp_error_set(err, "evaluate", "stopped by a signal before the end");
        size_t rows = count - done < EV_BLOCK_ROWS ? count - done : EV_BLOCK_ROWS;
        dp_rows r;
        if (dp_data_read_rows(info, s->group, s->offset + first + done, rows, classes, &r, err))
            return -1;
        if (standardize) dp_data_standardize(&r, l->st.mean, l->st.std);
        dp_eval_run_chunks(&l->model, &r, first + done, sums);
        dp_data_rows_free(&r);
    }
    return 0;
}

/* JSON string body of s: quotes, backslashes and control characters escaped. */
static void ev_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Rank 0's report. Plain: one Keras-like line with enough digits to tell any
 * two floats apart; --json: one object whose numbers read back as the same doubles. */
static void ev_print(const ev_args *a, const dp_loaded *l, size_t rows, dp_loss_sums t) {
    double loss = t.loss / (double)t.terms, acc = (double)t.correct / (double)t.terms;
    if (a->json) {
        printf("{\"loss\": %.17g", loss);
        if (l->cfg.metric_accuracy) printf(", \"accuracy\": %.17g", acc);
        printf(", \"split\": \"%s\", \"rows\": %zu, \"checkpoint\": ", a->split, rows);
        ev_json_string(stdout, l->path);
        printf("}\n");
    } else {
        printf("%s: %zu rows - loss: %.9g", a->split, rows, loss);
        if (l->cfg.metric_accuracy) printf(" - accuracy: %.9g", acc);
        printf(" (%s)\n", l->path);
    }
    fflush(stdout);
}

int dp_cmd_evaluate(const dp_comm *c, int argc, char **argv) {
    ev_args a;
    dp_error err = {0};
    if (ev_parse(argc, argv, &a, &err)) {
        if (c->rank == 0) dp_error_print(&err);
        return DP_EXIT_USAGE;
    }
    dp_loaded l;
    if (dp_cmd_load_all(c, &l, a.ckpt, a.best, a.batch, &err)) {
        if (c->rank == 0) dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    dp_data_info info;
    ev_split s = {0};
    int classes = 0;
    ev_open_data(&a, &l, &info, &s, &classes, &err);
    size_t chunks = (s.n + DP_EVAL_CHUNK - 1) / DP_EVAL_CHUNK;
    double *sums = NULL;
    if (!dp_comm_agree(c, &err)) {
        sums = DP_CALLOC(3 * chunks, sizeof(double)); /* [chunks, 3] */
        ev_run_share(c, &l, &info, &s, classes, sums, &err);
    }
    int rc = DP_EXIT_ERROR;
    if (sums && !dp_comm_agree(c, &err)) {
        /* Each chunk's sums are non-zero on one rank only: the sum adds zeros,
         * exactly, as the training run's evaluation does. */
        dp_comm_sum_f64(c, sums, 3 * chunks);
        if (c->rank == 0) ev_print(&a, &l, s.n, dp_eval_total_chunks(sums, chunks));
        rc = DP_EXIT_OK;
    }
    if (err.set && c->rank == 0) dp_error_print(&err);
    free(sums);
    dp_loaded_free(&l);
    return rc;
}
