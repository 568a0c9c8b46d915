/* config.h - the YAML run configuration: parse, override with --set, validate.
 *
 * The file is read with libyaml into a small tree that keeps every node's
 * file:line:column, `--set a.b.c=value` overrides are applied to the tree, and the
 * tree is then checked against the schema tables (one per section, see
 * `dptrain config --explain`) and turned into dp_config.
 * Every error names its place: "seed.yaml:12:7" for file nodes, "--set train.epochs"
 * for overrides. */
#ifndef DPTRAIN_CONFIG_H
#define DPTRAIN_CONFIG_H

#include <stdio.h>

#include "dptrain/error.h"
#include "dptrain/kinds.h"
#include "dptrain/shape.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DP_MAX_LAYERS 64
#define DP_PATH_MAX 1024

/* data.in_memory: where a rank's rows live while it trains (docs/DESIGN.md §4.1). */
typedef enum dp_in_memory { DP_IN_MEMORY_AUTO, DP_IN_MEMORY_TRUE, DP_IN_MEMORY_FALSE } dp_in_memory;

typedef enum dp_reduction {
    DP_REDUCE_EXACT = 0, /* order-independent fixed-point sum (default) */
    DP_REDUCE_FAST,      /* plain float32 MPI_Allreduce */
} dp_reduction;

/* One entry of model.layers. Fields not used by `type` keep their defaults. */
typedef struct dp_layer_cfg {
    char type[32];     /* "dense", ... */
    char where[300];   /* file:line:col of the entry, for errors found later */
    int units;         /* dense */
    dp_act activation; /* dense, conv2d; default linear */
    int filters;       /* conv2d */
    int kernel[2];     /* conv2d kernel_size (height, width); an int means square */
    int strides[2];    /* conv2d (default 1), maxpool2d (default = pool_size) */
    int padding_same;  /* conv2d padding: 0 'valid' (default), 1 'same' */
    int pool[2];       /* maxpool2d pool_size (default 2) */
    double rate;       /* dropout: fraction of inputs dropped, in [0, 1);
                          transformer_block: its `dropout` */
    /* sequence layers (activations [T, F] per sample) */
    int input_dim, output_dim;   /* embedding: vocabulary size, vector size */
    int embeddings_normal;       /* embedding: 0 uniform(-0.05, 0.05) (Keras), 1 normal */
    double stddev;               /* embedding: the normal initializer's, default 0.05 */
    int max_length;              /* positional_embedding: longest window */
    int return_sequences;        /* simple_rnn, lstm, gru: [T, units] instead of [units] */
    dp_act recurrent_activation; /* lstm, gru gates; default sigmoid */
    int unit_forget_bias;        /* lstm: forget-gate bias starts at 1; default 1 */
    double epsilon;              /* layer_norm; default 1e-3 */
    int num_heads, key_dim;      /* multi_head_attention, transformer_block (num_heads) */
    int causal;                  /* attention: position t sees only positions <= t; default 1 */
    int ff_dim;                  /* transformer_block: width of the feed-forward layer */
} dp_layer_cfg;

/* Optimizer settings. The parser leaves absent keys negative and dp_optim_init
 * replaces them with Keras's defaults for `kind`, from the schema's optimizer
 * tables (`dptrain config --explain` lists them). */
typedef enum dp_lr_kind {
    DP_LR_CONSTANT = 0,      /* learning_rate is a number */
    DP_LR_COSINE_DECAY,      /* Keras CosineDecay, with its optional linear warmup */
    DP_LR_EXPONENTIAL_DECAY, /* Keras ExponentialDecay */
} dp_lr_kind;

/* A learning-rate schedule: the rate as a function of the optimizer's step
 * count (Keras's `iterations`, checkpointed, so a resumed run continues it). */
typedef struct dp_lr_schedule {
    dp_lr_kind kind;
    double initial_learning_rate;
    int decay_steps;      /* >= 1 */
    double alpha;         /* cosine: the floor, a fraction of the start; default 0 */
    double warmup_target; /* cosine: the rate warmup reaches; NAN (null): no warmup */
    int warmup_steps;     /* cosine: default 0 */
    double decay_rate;    /* exponential */
    int staircase;        /* exponential: decay in whole intervals; default 0 */
} dp_lr_schedule;

typedef struct dp_optim_cfg {
    dp_optim_kind kind;
    double learning_rate; /* the rate when schedule.kind is DP_LR_CONSTANT */
    double beta1, beta2, epsilon;
    double rho, momentum;
    int nesterov;
    double weight_decay;    /* adamw */
    double clipnorm;        /* > 0: each tensor's gradient norm is at most this; 0: off */
    double global_clipnorm; /* > 0: the whole gradient's norm is at most this; 0: off */
    dp_lr_schedule schedule;
} dp_optim_cfg;

/* The epoch figures a callback can watch, as Keras names them in its logs. */
typedef enum dp_monitor {
    DP_MONITOR_LOSS = 0,
    DP_MONITOR_ACCURACY,
    DP_MONITOR_VAL_LOSS,
    DP_MONITOR_VAL_ACCURACY,
} dp_monitor;

/* Which way is better: auto takes min for a loss and max for an accuracy. */
typedef enum dp_monitor_mode {
    DP_MODE_AUTO = 0,
    DP_MODE_MIN,
    DP_MODE_MAX,
} dp_monitor_mode;

/* train.early_stopping: Keras's EarlyStopping callback. */
typedef struct dp_early_stopping_cfg {
    int enabled;              /* the section is in the config */
    int monitor;              /* dp_monitor; default val_loss */
    int mode;                 /* dp_monitor_mode; default auto */
    int patience;             /* epochs without improvement before stopping; default 0 */
    double min_delta;         /* an improvement must beat the best by more; default 0 */
    int restore_best_weights; /* the run ends with the best epoch's weights; default 0 */
} dp_early_stopping_cfg;

/* train.reduce_lr_on_plateau: Keras's ReduceLROnPlateau callback. */
typedef struct dp_reduce_lr_cfg {
    int enabled;
    int monitor, mode;
    double factor;    /* new rate = rate * factor, in (0, 1); default 0.1 */
    int patience;     /* default 10 */
    double min_delta; /* default 1e-4 */
    int cooldown;     /* epochs after a reduction before counting again; default 0 */
    double min_lr;    /* the rate never goes below; default 0 */
} dp_reduce_lr_cfg;

/* checkpoint.best: Keras's ModelCheckpoint with save_best_only, as RUN_DIR/best.h5. */
typedef struct dp_best_ckpt_cfg {
    int enabled;
    int monitor, mode;
} dp_best_ckpt_cfg;

typedef struct dp_config {
    /* data */
    char data_path[DP_PATH_MAX];
    int standardize;         /* default 1 */
    double validation_split; /* [0,1), default 0 */
    int shards;              /* data.shards; 0 = number of ranks */
    int in_memory;           /* dp_in_memory; default auto */
    int prefetch_steps;      /* steps the streaming reader reads ahead, >= 1; default 4 */
    int memory_mib;          /* auto's limit per rank; 0 = a quarter of RAM / ranks per node */
    double data_scale;       /* data.scale: features are x * scale + offset; default 1 */
    double data_offset;      /* data.offset; default 0 */
    /* model */
    dp_shape input;
    int n_layers;
    dp_layer_cfg layers[DP_MAX_LAYERS];
    /* loss, optimizer, metrics */
    dp_loss_kind loss;
    dp_optim_cfg optim;
    int metric_accuracy; /* metrics: [accuracy] */
    /* train */
    int epochs;              /* >= 0 */
    int batch_size;          /* global batch, >= 1 */
    unsigned long long seed; /* default 42 */
    dp_reduction reduction;  /* default exact */
    int check_every_steps;   /* replica hash check period; default 200 */
    int bucket_kib;          /* gradient bucket size for overlapped reduction; 1024 */
    int shared_memory;       /* ranks on one node share the parameters; default 1 */
    dp_early_stopping_cfg early_stopping;
    dp_reduce_lr_cfg reduce_lr;
    /* train: the timeline, a Chrome trace-event JSON ("" = none) of the global
     * steps "A:B" ("" = the run's first 20) */
    char timeline[DP_PATH_MAX];
    char timeline_steps[32];
    /* checkpoint */
    int ckpt_keep;        /* default 3 */
    int ckpt_every_steps; /* 0 = only at epoch ends */
    dp_best_ckpt_cfg ckpt_best;
    /* where the config came from, and its effective text (file + overrides)
     * stored in every checkpoint */
    char source[DP_PATH_MAX];
    char *text; /* owned, NUL-terminated */
} dp_config;

/* Parses `path`, applies the n_set overrides ("dotted.key=value", the value read
 * as YAML, so "[28, 28]" is a list), validates, and fills cfg with defaults for
 * absent optional keys. Returns 0, or -1 with err set. Unknown keys get a
 * "did you mean" suggestion. cfg must be released with dp_config_free either way. */
int dp_config_load_file(dp_config *cfg, const char *path, char *const *sets, int n_set,
                        dp_error *err);

/* As dp_config_load_file, but from text in memory; `name` is used in error places. */
int dp_config_load_text(dp_config *cfg, const char *name, const char *text, size_t len,
                        char *const *sets, int n_set, dp_error *err);

/* As dp_config_load_text, from a config as a checkpoint stores it (/config:
 * the file's text, then one "# --set KEY=VALUE" comment per override): the
 * trailing "# --set" lines are applied as overrides again, so the result is
 * the config that ran. text is NUL-terminated. */
int dp_config_load_saved(dp_config *cfg, const char *name, const char *text, dp_error *err);

/* Releases what config_load_* allocated. Safe on a zeroed struct. */
void dp_config_free(dp_config *cfg);

/* Writes the reference of every config key (dotted path, type, default or
 * "required", range, one line of meaning) to out, from the same schema tables
 * the parser reads. Needs no MPI. Returns 0, or -1 if writing failed. */
int dp_config_explain(FILE *out);

/* Canonical names, as written in YAML ("relu", "binary_crossentropy", "adam"). */
const char *dp_config_name_act(dp_act a);
const char *dp_config_name_loss(dp_loss_kind l);
const char *dp_config_name_optim(dp_optim_kind o);
const char *dp_config_name_monitor(dp_monitor m);

#ifdef __cplusplus
}
#endif

#endif
