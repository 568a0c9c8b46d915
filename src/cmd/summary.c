/* summary.c - `dptrain summary`: the layers, parameters, FLOPs and memory of a model. */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/budget.h"
#include "cmd/cmd_load.h"
#include "dptrain/train.h"

#define MIB 1048576.0

typedef struct sum_args {
    const char *what;  /* CONFIG, CKPT or RUN_DIR */
    const char *data;  /* --data, or NULL for the config's data.path */
    long ranks, batch; /* 0: defaults (1, train.batch_size) */
} sum_args;

static int sum_count(const char *opt, const char *s, long *out, dp_error *err) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < 1 || v > 1000000)
        return dp_error_set(err, opt, "expected a positive whole number up to 1000000, got '%s'",
                            s);
    *out = v;
    return 0;
}

static int sum_parse(int argc, char **argv, sum_args *a, dp_error *err) {
    static const struct option longopts[] = {{"ranks", required_argument, NULL, 'P'},
                                             {"batch", required_argument, NULL, 'B'},
                                             {"data", required_argument, NULL, 'D'},
                                             {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    opterr = 0;
    optind = 2; /* after "dptrain summary" */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'P':
            if (sum_count("--ranks", optarg, &a->ranks, err)) return -1;
            break;
        case 'B':
            if (sum_count("--batch", optarg, &a->batch, err)) return -1;
            break;
        case 'D': a->data = optarg; break;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return dp_error_set(err, "usage", "summary needs a config, checkpoint or run dir");
    if (optind + 1 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 1]);
    a->what = argv[optind];
    return 0;
}

/* 1 when path is a directory or begins with HDF5's signature (a checkpoint),
 * 0 for anything else (read as a config), -1 when it cannot be opened. */
static int sum_is_checkpoint(const char *path, dp_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dp_error_set(err, path, "no such config, checkpoint or run directory");
    if (S_ISDIR(sb.st_mode)) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return dp_error_set(err, path, "cannot read the file");
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return got == sizeof head && memcmp(head, sig, sizeof sig) == 0;
}

/* The data file's row counts and shapes, which the memory budget needs: the
 * file must exist and its rows must fit the model. */
static int sum_data(const dp_config *cfg, const char *path, dp_data_info *info, dp_error *err) {
    if (access(path, F_OK) != 0)
        return dp_error_set(err, path,
                            "no such data file; the memory budget counts its rows: make it "
                            "first, or name it with --data PATH");
    if (dp_data_read_info(path, info, err)) return -1;
    char a[64], b[64];
    if (!dp_shape_equal(&info->x_shape, &cfg->input))
        return dp_error_set(err, path, "/train/x rows have shape %s but model.input is %s",
                            dp_shape_format(&info->x_shape, a, sizeof a),
                            dp_shape_format(&cfg->input, b, sizeof b));
    return 0;
}

/* n with thousands separators into buf. */
static const char *sum_group(double v, char *buf, size_t size) {
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static void sum_print_layers(const dp_model *m) {
    char sh[64], p[32], f[32];
    double flops = 0;
    int known = 1;
    printf("%-28s %-18s %12s %16s\n", "layer (type)", "output shape", "parameters", "FLOPs");
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        double lf = l->ops->flops ? l->ops->flops(l) : 0;
        known &= l->ops->flops != NULL;
        flops += lf;
        printf("%-28s %-18s %12s %16s\n", l->name, dp_shape_format(&l->out_shape, sh, sizeof sh),
               sum_group((double)l->param_count, p, sizeof p),
               l->ops->flops ? sum_group(lf, f, sizeof f) : "?");
    }
    printf("total parameters: %s, %.1f KiB (trainable: %s, non-trainable: 0)\n",
           sum_group((double)m->n_params, p, sizeof p), 4.0 * (double)m->n_params / 1024.0,
           sum_group((double)m->n_params, f, sizeof f));
    printf("forward FLOPs per sample: %s%s (a multiply-add counts 2; activation functions are "
           "not counted)\n",
           sum_group(flops, f, sizeof f), known ? "" : " and the layers marked ?");
}

static void sum_print_budget(const dp_budget *b) {
    char r[32], v[32], t[32];
    printf("memory of the largest rank (rank %d) on %d rank(s) at global batch %d, %d shard(s), "
           "all ranks on one node:\n",
           b->rank, b->ranks, b->batch, b->shards);
    printf("  %-58s %9.1f MiB\n", "runtime: program, MPI, OpenBLAS, HDF5", b->runtime / MIB);
    char line[200];
    snprintf(line, sizeof line, "data%s: %s training, %s validation, %s test rows",
             b->streamed ? " streamed" : "", sum_group((double)b->train_rows, r, sizeof r),
             sum_group((double)b->val_rows, v, sizeof v),
             sum_group((double)b->test_rows, t, sizeof t));
    printf("  %-58s %9.1f MiB\n", line, b->data / MIB);
    printf("  %-58s %9.1f MiB\n",
           b->shared ? "parameters, gradients, optimizer state (shared segment)"
                     : "parameters, gradients, optimizer state",
           b->model / MIB);
    printf("  %-58s %9.1f MiB\n", "checkpoint snapshot", b->snapshot / MIB);
    snprintf(line, sizeof line, "activations and layer state for %d rows", b->rows);
    printf("  %-58s %9.1f MiB\n", line, b->activations / MIB);
    printf("  %-58s %9.1f MiB\n", "total", b->total / MIB);
}

/* Loads the model (built for one row: the budget only reads its shapes) and
 * the data description, then prints. */
static int sum_run(const sum_args *a, dp_error *err) {
    int ckpt = sum_is_checkpoint(a->what, err);
    if (ckpt < 0) return -1;
    dp_loaded l;
    memset(&l, 0, sizeof l);
    int rc = ckpt ? dp_load_checkpoint(&l, a->what, 0, 1, err)
             : (dp_config_load_file(&l.cfg, a->what, NULL, 0, err) ||
                dp_model_build(&l.model, &l.cfg, 1, err))
                 ? -1
                 : 0;
    dp_data_info info;
    dp_budget b;
    if (rc == 0) rc = sum_data(&l.cfg, a->data ? a->data : l.cfg.data_path, &info, err);
    if (rc == 0) {
        rc = dp_memory_budget(&l.model, &l.cfg, &info, a->ranks ? (int)a->ranks : 1,
                              a->batch ? (int)a->batch : l.cfg.batch_size, &b, err);
        /* The batch the user gave is the one to blame, not the config's. */
        if (rc && a->batch && strcmp(err->where, "train.batch_size") == 0)
            snprintf(err->where, sizeof err->where, "--batch");
    }
    if (rc == 0) {
        char s[64];
        printf("model: %s, input %s\n", l.path ? l.path : a->what,
               dp_shape_format(&l.model.in_shape, s, sizeof s));
        sum_print_layers(&l.model);
        sum_print_budget(&b);
    }
    dp_loaded_free(&l);
    return rc;
}

int dp_cmd_summary(int argc, char **argv) {
    /* Under mpirun every rank would print the same: rank 0 alone does. */
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMIX_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    if (rank && atoi(rank) != 0) return DP_EXIT_OK;
    sum_args a;
    dp_error err = {0};
    if (sum_parse(argc, argv, &a, &err)) {
        dp_error_print(&err);
        return DP_EXIT_USAGE;
    }
    if (sum_run(&a, &err)) {
        dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    return DP_EXIT_OK;
}
