/* config_schema.c - the schema tables, one per config section, layer type and
 * optimizer; everything else about a key is read from here. */
#include "config/config_schema.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

/* Values are written through memcpy: the target struct is reached by offset,
 * and a cast of char * to double * would break strict aliasing. */
_Static_assert(sizeof(dp_act) == sizeof(int) && sizeof(dp_loss_kind) == sizeof(int) &&
                   sizeof(dp_optim_kind) == sizeof(int) && sizeof(dp_reduction) == sizeof(int),
               "CS_ENUM writes an int");

/* The tables are laid out by hand, a key per entry: clang-format would put
 * every field on its own line. */
/* clang-format off */
#define FIELD(type, member) .offset = offsetof(type, member), .field = #member
#define AT_LEAST(x) .lo = (x), .hi = INFINITY, .hi_open = 1
#define ABOVE(x) .lo = (x), .lo_open = 1, .hi = INFINITY, .hi_open = 1
#define ANY_NUMBER .lo = -INFINITY, .hi = INFINITY
#define UNIT_OPEN .lo = 0, .hi = 1, .hi_open = 1 /* [0, 1) */
#define END {.key = NULL}

/* ---- names, indexed by the enums in kinds.h and config.h ---- */

static const char *const act_names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "gelu", NULL};
static const char *const loss_names[] = {"mse", "binary_crossentropy", "categorical_crossentropy",
                                         "sparse_categorical_crossentropy", NULL};
static const char *const reduction_names[] = {"exact", "fast", NULL};
static const char *const in_memory_names[] = {"auto", "true", "false", NULL}; /* dp_in_memory */
static const char *const metric_names[] = {"accuracy", NULL};
static const char *const padding_names[] = {"valid", "same", NULL}; /* index = padding_same */
static const char *const emb_init_names[] = {"uniform", "normal", NULL}; /* embeddings_normal */
static const char *const monitor_names[] = {"loss", "accuracy", "val_loss", "val_accuracy", NULL};
static const char *const mode_names[] = {"auto", "min", "max", NULL};

#define ACTIVATION                                                                             \
    {.key = "activation", .type = CS_ENUM, FIELD(dp_layer_cfg, activation), .def = DP_ACT_LINEAR, \
     .names = act_names, .noun = "activation", .help = "applied to the layer's output"}

/* ---- layer types: one table each, then one entry in dp_cs_layer_types ---- */

static const cs_key dense_keys[] = {
    {.key = "units", .type = CS_INT, FIELD(dp_layer_cfg, units), AT_LEAST(1), .required = 1,
     .help = "number of outputs"},
    ACTIVATION,
    END};

static const cs_key conv2d_keys[] = {
    {.key = "filters", .type = CS_INT, FIELD(dp_layer_cfg, filters), AT_LEAST(1), .required = 1,
     .help = "number of output channels"},
    {.key = "kernel_size", .type = CS_INT_PAIR, FIELD(dp_layer_cfg, kernel), AT_LEAST(1),
     .required = 1, .help = "kernel height and width; an integer means square"},
    {.key = "strides", .type = CS_INT_PAIR, FIELD(dp_layer_cfg, strides), AT_LEAST(1), .def = 1,
     .help = "step between kernel positions, down and across"},
    {.key = "padding", .type = CS_ENUM, FIELD(dp_layer_cfg, padding_same), .def = 0,
     .names = padding_names, .noun = "padding",
     .help = "valid: no padding; same: zeros so the output has ceil(input / stride) rows"},
    ACTIVATION,
    END};

static const cs_key maxpool2d_keys[] = {
    {.key = "pool_size", .type = CS_INT_PAIR, FIELD(dp_layer_cfg, pool), AT_LEAST(1), .def = 2,
     .help = "window height and width"},
    /* 0 stands for "not given" until maxpool2d_finish copies pool_size. */
    {.key = "strides", .type = CS_INT_PAIR, FIELD(dp_layer_cfg, strides), AT_LEAST(1), .def = 0,
     .def_note = "pool_size", .help = "step between windows, down and across"},
    END};

/* Keras: the strides of a pooling layer default to its pool size. */
static void maxpool2d_finish(void *target) {
    dp_layer_cfg *l = target;
    if (l->strides[0] == 0) {
        l->strides[0] = l->pool[0];
        l->strides[1] = l->pool[1];
    }
}

static const cs_key flatten_keys[] = {END};

static const cs_key dropout_keys[] = {
    /* rate 1 would drop everything and scale by 1/0. */
    {.key = "rate", .type = CS_NUMBER, FIELD(dp_layer_cfg, rate), UNIT_OPEN, .required = 1,
     .help = "fraction of the inputs zeroed in training (the rest scaled by 1/(1 - rate))"},
    END};

/* ---- sequence layers: activations [T, F] per sample ---- */

static const cs_key embedding_keys[] = {
    {.key = "input_dim", .type = CS_INT, FIELD(dp_layer_cfg, input_dim), AT_LEAST(1),
     .required = 1, .help = "vocabulary size: token ids are in [0, input_dim)"},
    {.key = "output_dim", .type = CS_INT, FIELD(dp_layer_cfg, output_dim), AT_LEAST(1),
     .required = 1, .help = "length of each token's vector"},
    {.key = "embeddings_initializer", .type = CS_ENUM, FIELD(dp_layer_cfg, embeddings_normal),
     .def = 0, .names = emb_init_names, .noun = "initializer",
     .help = "uniform: U(-0.05, 0.05), Keras's default; normal: N(0, stddev)"},
    {.key = "stddev", .type = CS_NUMBER, FIELD(dp_layer_cfg, stddev), ABOVE(0), .def = 0.05,
     .help = "the normal initializer's standard deviation (1: PyTorch's nn.Embedding)"},
    END};

static const cs_key positional_embedding_keys[] = {
    {.key = "max_length", .type = CS_INT, FIELD(dp_layer_cfg, max_length), AT_LEAST(1),
     .required = 1, .help = "longest window: rows of the learned [max_length, F] table"},
    END};

#define RETURN_SEQUENCES                                                                   \
    {.key = "return_sequences", .type = CS_BOOL, FIELD(dp_layer_cfg, return_sequences),    \
     .def = 0, .help = "true: the output at every step [T, units]; false: the last [units]"}
#define RECURRENT_ACTIVATIONS                                                              \
    {.key = "activation", .type = CS_ENUM, FIELD(dp_layer_cfg, activation),                \
     .def = DP_ACT_TANH, .names = act_names, .noun = "activation",                         \
     .help = "applied to the candidate state and the output"},                             \
    {.key = "recurrent_activation", .type = CS_ENUM,                                       \
     FIELD(dp_layer_cfg, recurrent_activation), .def = DP_ACT_SIGMOID, .names = act_names, \
     .noun = "activation", .help = "applied to the gates"}
#define UNITS(what)                                                                        \
    {.key = "units", .type = CS_INT, FIELD(dp_layer_cfg, units), AT_LEAST(1), .required = 1, \
     .help = what}

static const cs_key simple_rnn_keys[] = {
    UNITS("size of the hidden state"), RETURN_SEQUENCES,
    {.key = "activation", .type = CS_ENUM, FIELD(dp_layer_cfg, activation), .def = DP_ACT_TANH,
     .names = act_names, .noun = "activation", .help = "applied to the new state"},
    END};

static const cs_key lstm_keys[] = {
    UNITS("size of the hidden and cell state"), RETURN_SEQUENCES, RECURRENT_ACTIVATIONS,
    {.key = "unit_forget_bias", .type = CS_BOOL, FIELD(dp_layer_cfg, unit_forget_bias),
     .def = 1, .help = "start the forget gate's bias at 1, as Keras does"},
    END};

static const cs_key gru_keys[] = {
    UNITS("size of the hidden state"), RETURN_SEQUENCES, RECURRENT_ACTIVATIONS, END};

static const cs_key layer_norm_keys[] = {
    {.key = "epsilon", .type = CS_NUMBER, FIELD(dp_layer_cfg, epsilon), ABOVE(0), .def = 1e-3,
     .help = "added to the variance before the square root"},
    END};

#define NUM_HEADS                                                                          \
    {.key = "num_heads", .type = CS_INT, FIELD(dp_layer_cfg, num_heads), AT_LEAST(1),      \
     .required = 1, .help = "number of attention heads"}
#define CAUSAL                                                                             \
    {.key = "causal", .type = CS_BOOL, FIELD(dp_layer_cfg, causal), .def = 1,              \
     .help = "position t attends only to positions <= t"}

static const cs_key multi_head_attention_keys[] = {
    NUM_HEADS,
    {.key = "key_dim", .type = CS_INT, FIELD(dp_layer_cfg, key_dim), AT_LEAST(1), .required = 1,
     .help = "size of each head's query, key and value"},
    CAUSAL, END};

static const cs_key transformer_block_keys[] = {
    NUM_HEADS,
    {.key = "ff_dim", .type = CS_INT, FIELD(dp_layer_cfg, ff_dim), AT_LEAST(1), .required = 1,
     .help = "width of the gelu feed-forward layer"},
    {.key = "dropout", .type = CS_NUMBER, FIELD(dp_layer_cfg, rate), UNIT_OPEN, .def = 0,
     .help = "dropout on the attention and feed-forward outputs, in training only"},
    CAUSAL,
    {.key = "epsilon", .type = CS_NUMBER, FIELD(dp_layer_cfg, epsilon), ABOVE(0), .def = 1e-3,
     .help = "the layer norms' epsilon"},
    END};

static const cs_key global_average_pooling1d_keys[] = {END};

static const cs_table dense_table = {"{units: 64}", dense_keys, NULL};
static const cs_table conv2d_table = {"{filters: 32, kernel_size: 3}", conv2d_keys, NULL};
static const cs_table maxpool2d_table = {"{pool_size: 2}", maxpool2d_keys, maxpool2d_finish};
static const cs_table flatten_table = {"{}", flatten_keys, NULL};
static const cs_table dropout_table = {"{rate: 0.5}", dropout_keys, NULL};

static const cs_table embedding_table = {"{input_dim: 256, output_dim: 128}", embedding_keys,
                                         NULL};
static const cs_table positional_embedding_table = {"{max_length: 64}", positional_embedding_keys,
                                                    NULL};
static const cs_table simple_rnn_table = {"{units: 256}", simple_rnn_keys, NULL};
static const cs_table lstm_table = {"{units: 256}", lstm_keys, NULL};
static const cs_table gru_table = {"{units: 256}", gru_keys, NULL};
static const cs_table layer_norm_table = {"{}", layer_norm_keys, NULL};
static const cs_table multi_head_attention_table = {"{num_heads: 4, key_dim: 32}",
                                                    multi_head_attention_keys, NULL};
static const cs_table transformer_block_table = {"{num_heads: 4, ff_dim: 512}",
                                                 transformer_block_keys, NULL};
static const cs_table global_average_pooling1d_table = {"{}", global_average_pooling1d_keys, NULL};

const cs_key dp_cs_layer_types[] = {
    {.key = "dense", .type = CS_SECTION, .sub = &dense_table,
     .help = "fully connected: outputs = activation(inputs W + b)"},
    {.key = "conv2d", .type = CS_SECTION, .sub = &conv2d_table,
     .help = "2-D convolution over channels-first images"},
    {.key = "maxpool2d", .type = CS_SECTION, .sub = &maxpool2d_table,
     .help = "maximum over each window, 'valid' padding"},
    {.key = "flatten", .type = CS_SECTION, .sub = &flatten_table,
     .help = "reshapes each sample to one dimension; takes no keys"},
    {.key = "dropout", .type = CS_SECTION, .sub = &dropout_table,
     .help = "zeroes random inputs in training only, the same for any rank count"},
    {.key = "embedding", .type = CS_SECTION, .sub = &embedding_table,
     .help = "token ids [T] to learned vectors [T, output_dim]; the first layer"},
    {.key = "positional_embedding", .type = CS_SECTION, .sub = &positional_embedding_table,
     .help = "adds a learned vector per position to [T, F]"},
    {.key = "simple_rnn", .type = CS_SECTION, .sub = &simple_rnn_table,
     .help = "fully connected recurrence h = activation(x W + h U + b)"},
    {.key = "lstm", .type = CS_SECTION, .sub = &lstm_table,
     .help = "long short-term memory, Keras's gate order i, f, c, o"},
    {.key = "gru", .type = CS_SECTION, .sub = &gru_table,
     .help = "gated recurrent unit, Keras's reset_after form (gates z, r, h; two biases)"},
    {.key = "layer_norm", .type = CS_SECTION, .sub = &layer_norm_table,
     .help = "normalizes the last axis, then scales by gamma and shifts by beta"},
    {.key = "multi_head_attention", .type = CS_SECTION, .sub = &multi_head_attention_table,
     .help = "self-attention over [T, F] with query, key, value and output projections"},
    {.key = "transformer_block", .type = CS_SECTION, .sub = &transformer_block_table,
     .help = "pre-norm GPT block: x + attention(LN(x)), then x + FF(LN(x)), FF = gelu dense"},
    {.key = "global_average_pooling1d", .type = CS_SECTION, .sub = &global_average_pooling1d_table,
     .help = "mean over the time axis: [T, F] to [F]; takes no keys"},
    END};

/* ---- learning-rate schedules (Keras 3 keras.optimizers.schedules), indexed
 * by dp_lr_kind - 1 ---- */

#define INITIAL_LR(range, what)                                                  \
    {.key = "initial_learning_rate", .type = CS_NUMBER,                           \
     FIELD(dp_optim_cfg, schedule.initial_learning_rate), range, .required = 1, \
     .help = what}
#define DECAY_STEPS(what)                                                                   \
    {.key = "decay_steps", .type = CS_INT, FIELD(dp_optim_cfg, schedule.decay_steps),       \
     AT_LEAST(1), .required = 1, .help = what}

static const cs_key cosine_decay_keys[] = {
    INITIAL_LR(AT_LEAST(0), "the rate at step 0 (0 is usual with a warmup)"),
    DECAY_STEPS("optimizer steps the cosine takes to fall from its start to alpha times it"),
    {.key = "alpha", .type = CS_NUMBER, FIELD(dp_optim_cfg, schedule.alpha), .lo = 0, .hi = 1,
     .def = 0, .help = "the floor, as a fraction of the rate the decay starts from"},
    {.key = "warmup_target", .type = CS_NUMBER, FIELD(dp_optim_cfg, schedule.warmup_target),
     ABOVE(0), .nullable = 1, .def = NAN, .def_note = "null",
     .help = "warm up linearly from initial_learning_rate to this, then decay from it; null: no warmup"},
    {.key = "warmup_steps", .type = CS_INT, FIELD(dp_optim_cfg, schedule.warmup_steps),
     AT_LEAST(0), .def = 0, .help = "steps of the warmup (used only with warmup_target)"},
    END};

static const cs_key exponential_decay_keys[] = {
    INITIAL_LR(ABOVE(0), "the rate at step 0"),
    DECAY_STEPS("steps over which the rate is multiplied by decay_rate"),
    {.key = "decay_rate", .type = CS_NUMBER, FIELD(dp_optim_cfg, schedule.decay_rate), ABOVE(0),
     .required = 1, .help = "rate = initial_learning_rate * decay_rate ^ (step / decay_steps)"},
    {.key = "staircase", .type = CS_BOOL, FIELD(dp_optim_cfg, schedule.staircase), .def = 0,
     .help = "step / decay_steps rounded down: the rate changes every decay_steps steps"},
    END};

static const cs_table cosine_decay_table = {
    "{schedule: cosine_decay, initial_learning_rate: 0.001, decay_steps: 1000}",
    cosine_decay_keys, NULL};
static const cs_table exponential_decay_table = {
    "{schedule: exponential_decay, initial_learning_rate: 0.001, decay_steps: 1000, decay_rate: 0.96}",
    exponential_decay_keys, NULL};

const cs_key dp_cs_schedules[] = {
    {.key = "cosine_decay", .type = CS_SECTION, .sub = &cosine_decay_table,
     .help = "Keras CosineDecay: optional linear warmup, then half a cosine down to alpha"},
    {.key = "exponential_decay", .type = CS_SECTION, .sub = &exponential_decay_table,
     .help = "Keras ExponentialDecay: initial_learning_rate * decay_rate ^ (step / decay_steps)"},
    END};

static const cs_key schedule_common_keys[] = {
    {.key = "schedule", .type = CS_ENUM, FIELD(dp_optim_cfg, schedule.kind), .required = 1,
     .variants = dp_cs_schedules, .noun = "schedule",
     .help = "which schedule; the other keys depend on it"},
    END};
static const cs_table schedule_common = {
    "{schedule: cosine_decay, initial_learning_rate: 0.001, decay_steps: 1000}",
    schedule_common_keys, NULL};

/* ---- optimizers: one table each, indexed by dp_optim_kind; defaults are
 * Keras 3's constructor defaults ---- */

#define LEARNING_RATE(d)                                                                        \
    {.key = "learning_rate", .type = CS_SCHEDULE, FIELD(dp_optim_cfg, learning_rate), ABOVE(0), \
     .def = (d), .sub = &schedule_common, .variants = dp_cs_schedules,                         \
     .help = "step size: a number, or a schedule {schedule: cosine_decay, ...}"}
#define MOMENTUM                                                                               \
    {.key = "momentum", .type = CS_NUMBER, FIELD(dp_optim_cfg, momentum), UNIT_OPEN, .def = 0, \
     .help = "fraction of the previous update added to this one; 0 keeps no momentum state"}
#define EPSILON                                                                                 \
    {.key = "epsilon", .type = CS_NUMBER, FIELD(dp_optim_cfg, epsilon), ABOVE(0), .def = 1e-7, \
     .help = "added to the denominator for numerical stability"}

static const cs_key sgd_keys[] = {
    LEARNING_RATE(0.01), MOMENTUM,
    {.key = "nesterov", .type = CS_BOOL, FIELD(dp_optim_cfg, nesterov), .def = 0,
     .help = "Nesterov momentum: the gradient is applied at the look-ahead point"},
    END};

static const cs_key adam_keys[] = {
    LEARNING_RATE(0.001),
    {.key = "beta_1", .type = CS_NUMBER, FIELD(dp_optim_cfg, beta1), UNIT_OPEN, .def = 0.9,
     .help = "decay rate of the first-moment (mean) estimate"},
    {.key = "beta_2", .type = CS_NUMBER, FIELD(dp_optim_cfg, beta2), UNIT_OPEN, .def = 0.999,
     .help = "decay rate of the second-moment (uncentred variance) estimate"},
    EPSILON, END};

static const cs_key rmsprop_keys[] = {
    LEARNING_RATE(0.001),
    {.key = "rho", .type = CS_NUMBER, FIELD(dp_optim_cfg, rho), UNIT_OPEN, .def = 0.9,
     .help = "decay rate of the mean squared gradient"},
    MOMENTUM, EPSILON, END};

/* Keras 3 AdamW: Adam, with variable -= learning_rate * weight_decay * variable
 * before each update. */
static const cs_key adamw_keys[] = {
    LEARNING_RATE(0.001),
    {.key = "weight_decay", .type = CS_NUMBER, FIELD(dp_optim_cfg, weight_decay), AT_LEAST(0),
     .def = 0.004, .help = "decoupled decay: each step every parameter shrinks by learning_rate * this"},
    {.key = "beta_1", .type = CS_NUMBER, FIELD(dp_optim_cfg, beta1), UNIT_OPEN, .def = 0.9,
     .help = "decay rate of the first-moment (mean) estimate"},
    {.key = "beta_2", .type = CS_NUMBER, FIELD(dp_optim_cfg, beta2), UNIT_OPEN, .def = 0.999,
     .help = "decay rate of the second-moment (uncentred variance) estimate"},
    EPSILON, END};

static const cs_table sgd_table = {"{name: sgd}", sgd_keys, NULL};
static const cs_table adamw_table = {"{name: adamw}", adamw_keys, NULL};
static const cs_table adam_table = {"{name: adam}", adam_keys, NULL};
static const cs_table rmsprop_table = {"{name: rmsprop}", rmsprop_keys, NULL};

const cs_key dp_cs_optimizers[] = {
    {.key = "sgd", .type = CS_SECTION, .sub = &sgd_table,
     .help = "stochastic gradient descent, with optional (Nesterov) momentum"},
    {.key = "adam", .type = CS_SECTION, .sub = &adam_table, .help = "Adam"},
    {.key = "rmsprop", .type = CS_SECTION, .sub = &rmsprop_table, .help = "RMSprop"},
    {.key = "adamw", .type = CS_SECTION, .sub = &adamw_table,
     .help = "AdamW: Adam with decoupled weight decay"},
    END};

static const cs_key optim_common_keys[] = {
    {.key = "name", .type = CS_ENUM, FIELD(dp_optim_cfg, kind), .required = 1,
     .variants = dp_cs_optimizers, .noun = "optimizer",
     .help = "which optimizer; the other keys depend on it"},
    /* Keras: applied to the averaged gradient before the update; at most one. */
    {.key = "clipnorm", .type = CS_NUMBER, FIELD(dp_optim_cfg, clipnorm), ABOVE(0), .nullable = 1,
     .def = 0, .def_note = "null",
     .help = "each parameter tensor's gradient is scaled down to this L2 norm if above it"},
    {.key = "global_clipnorm", .type = CS_NUMBER, FIELD(dp_optim_cfg, global_clipnorm), ABOVE(0),
     .nullable = 1, .def = 0, .def_note = "null",
     .help = "the whole gradient is scaled down to this L2 norm if above it; not with clipnorm"},
    END};
static const cs_table optim_common = {"{name: adam}", optim_common_keys, NULL};

/* ---- the sections ---- */

static const cs_key data_keys[] = {
    {.key = "path", .type = CS_STRING, FIELD(dp_config, data_path), .lo = 1, .hi = DP_PATH_MAX - 1,
     .required = 1, .noun = "a file path",
     .help = "HDF5 file with /train (and optionally /val, /test), relative to the working directory"},
    {.key = "standardize", .type = CS_BOOL, FIELD(dp_config, standardize), .def = 1,
     .help = "scale each feature by the mean and std of the training rows, over all ranks"},
    {.key = "validation_split", .type = CS_NUMBER, FIELD(dp_config, validation_split), UNIT_OPEN,
     .def = 0, .help = "fraction of the /train rows held out for validation (the last ones)"},
    {.key = "shards", .type = CS_INT, FIELD(dp_config, shards), AT_LEAST(1), .def = 0,
     .def_note = "ranks", .help = "shards the training rows are cut into; a multiple of the rank count"},
    {.key = "scale", .type = CS_NUMBER, FIELD(dp_config, data_scale), ANY_NUMBER, .nonzero = 1,
     .ratio = 1, .def = 1,
     .help = "features are read as x * scale + offset, before standardization; a number or a "
             "fraction such as 1/255 (uint8 pixels to [0, 1])"},
    {.key = "offset", .type = CS_NUMBER, FIELD(dp_config, data_offset), ANY_NUMBER, .def = 0,
     .help = "added to x * scale as features are read (token ids are never scaled)"},
    {.key = "in_memory", .type = CS_ENUM, FIELD(dp_config, in_memory), .def = DP_IN_MEMORY_AUTO,
     .names = in_memory_names, .noun = "in_memory setting",
     .help = "true: read each rank's rows into memory at the start; false: stream each step's "
             "rows from the file on a reader thread; auto: stream when a rank's rows exceed "
             "data.memory_mib"},
    {.key = "prefetch_steps", .type = CS_INT, FIELD(dp_config, prefetch_steps), AT_LEAST(1),
     .def = 4, .help = "steps (or evaluation chunks) the streaming reader reads ahead of training"},
    {.key = "memory_mib", .type = CS_INT, FIELD(dp_config, memory_mib), AT_LEAST(0), .def = 0,
     .def_note = "RAM / 4 / ranks per node",
     .help = "in_memory auto: a rank whose rows need more MiB than this streams them; 0: a "
             "quarter of the node's memory (or its cgroup limit) shared by its ranks"},
    END};

static const cs_key dim_entry = {.key = "dim", .type = CS_INT, AT_LEAST(1),
                                 .help = "one dimension of a sample"};

static const cs_key layer_entry = {.key = "layer", .type = CS_ONE_OF, .variants = dp_cs_layer_types,
                                   .noun = "layer type", .help = "one layer: {type: {keys}}"};

static const cs_key model_keys[] = {
    {.key = "input", .type = CS_DIMS, FIELD(dp_config, input), .required = 1, .elem = &dim_entry,
     .help = "shape of one sample, channels first: [20] or [1, 28, 28]"},
    {.key = "layers", .type = CS_LAYERS, FIELD(dp_config, layers), .required = 1,
     .elem = &layer_entry, .help = "the layers in order, each {type: {keys}}"},
    END};

static const cs_key metric_entry = {.key = "metric", .type = CS_ENUM, .names = metric_names,
                                    .noun = "metric", .help = "a metric name"};

/* ---- callbacks: Keras's names, defaults and meanings ---- */

#define MONITOR(T)                                                                             \
    {.key = "monitor", .type = CS_ENUM, FIELD(T, monitor), .def = DP_MONITOR_VAL_LOSS,         \
     .names = monitor_names, .noun = "monitor",                                                \
     .help = "the epoch figure watched; accuracy needs metrics: [accuracy], val_* validation rows"}
#define MODE(T)                                                                                \
    {.key = "mode", .type = CS_ENUM, FIELD(T, mode), .def = DP_MODE_AUTO,                      \
     .names = mode_names, .noun = "mode",                                                      \
     .help = "min: lower is better; max: higher is; auto: min for a loss, max for an accuracy"}

static const cs_key early_stopping_keys[] = {
    MONITOR(dp_early_stopping_cfg), MODE(dp_early_stopping_cfg),
    {.key = "patience", .type = CS_INT, FIELD(dp_early_stopping_cfg, patience), AT_LEAST(0),
     .def = 0, .help = "epochs without improvement after which training stops"},
    {.key = "min_delta", .type = CS_NUMBER, FIELD(dp_early_stopping_cfg, min_delta), AT_LEAST(0),
     .def = 0, .help = "an epoch improves only if it beats the best by more than this"},
    {.key = "restore_best_weights", .type = CS_BOOL,
     FIELD(dp_early_stopping_cfg, restore_best_weights), .def = 0,
     .help = "the run ends (stopped or not) with the weights of the best epoch"},
    END};

static const cs_key reduce_lr_keys[] = {
    MONITOR(dp_reduce_lr_cfg), MODE(dp_reduce_lr_cfg),
    {.key = "factor", .type = CS_NUMBER, FIELD(dp_reduce_lr_cfg, factor), .lo = 0, .lo_open = 1,
     .hi = 1, .hi_open = 1, .def = 0.1, .help = "the learning rate is multiplied by this"},
    {.key = "patience", .type = CS_INT, FIELD(dp_reduce_lr_cfg, patience), AT_LEAST(0), .def = 10,
     .help = "epochs without improvement after which the rate is reduced"},
    {.key = "min_delta", .type = CS_NUMBER, FIELD(dp_reduce_lr_cfg, min_delta), AT_LEAST(0),
     .def = 1e-4, .help = "an epoch improves only if it beats the best by more than this"},
    {.key = "cooldown", .type = CS_INT, FIELD(dp_reduce_lr_cfg, cooldown), AT_LEAST(0), .def = 0,
     .help = "epochs after a reduction during which no plateau is counted"},
    {.key = "min_lr", .type = CS_NUMBER, FIELD(dp_reduce_lr_cfg, min_lr), AT_LEAST(0), .def = 0,
     .help = "the rate is never reduced below this"},
    END};

static const cs_key best_ckpt_keys[] = {
    MONITOR(dp_best_ckpt_cfg), MODE(dp_best_ckpt_cfg), END};

/* Each section's presence turns its callback on. */
static void early_stopping_finish(void *target) {
    ((dp_early_stopping_cfg *)target)->enabled = 1;
}
static void reduce_lr_finish(void *target) {
    ((dp_reduce_lr_cfg *)target)->enabled = 1;
}
static void best_ckpt_finish(void *target) {
    ((dp_best_ckpt_cfg *)target)->enabled = 1;
}

static const cs_table early_stopping_table = {"{monitor: val_loss, patience: 3}",
                                              early_stopping_keys, early_stopping_finish};
static const cs_table reduce_lr_table = {"{monitor: val_loss, factor: 0.5, patience: 2}",
                                         reduce_lr_keys, reduce_lr_finish};
static const cs_table best_ckpt_table = {"{monitor: val_loss}", best_ckpt_keys, best_ckpt_finish};

static const cs_key train_keys[] = {
    {.key = "epochs", .type = CS_INT, FIELD(dp_config, epochs), AT_LEAST(0), .required = 1,
     .help = "passes over the training rows"},
    {.key = "batch_size", .type = CS_INT, FIELD(dp_config, batch_size), AT_LEAST(1), .required = 1,
     .help = "the global batch, split across the ranks"},
    {.key = "seed", .type = CS_UINT64, FIELD(dp_config, seed), AT_LEAST(0), .def = 42,
     .help = "seeds the weights, the shuffle and dropout"},
    {.key = "reduction", .type = CS_ENUM, FIELD(dp_config, reduction), .def = DP_REDUCE_EXACT,
     .names = reduction_names, .noun = "reduction",
     .help = "exact: a fixed-point sum, the same bits for any rank count; fast: float allreduce"},
    {.key = "check_every_steps", .type = CS_INT, FIELD(dp_config, check_every_steps), AT_LEAST(1),
     .def = 200, .help = "how often the replicas compare a hash of their parameters"},
    {.key = "bucket_kib", .type = CS_INT, FIELD(dp_config, bucket_kib), AT_LEAST(1), .def = 1024,
     .help = "size of the gradient buckets reduced during the backward pass"},
    {.key = "shared_memory", .type = CS_BOOL, FIELD(dp_config, shared_memory), .def = 1,
     .help = "ranks that all run on one node share one copy of the parameters"},
    {.key = "early_stopping", .type = CS_SECTION, FIELD(dp_config, early_stopping),
     .sub = &early_stopping_table, .nullable = 1, .def_note = "null",
     .help = "stop when the monitored figure stops improving (Keras EarlyStopping)"},
    {.key = "reduce_lr_on_plateau", .type = CS_SECTION, FIELD(dp_config, reduce_lr),
     .sub = &reduce_lr_table, .nullable = 1, .def_note = "null",
     .help = "cut a constant learning rate when the figure plateaus (Keras ReduceLROnPlateau)"},
    {.key = "timeline", .type = CS_STRING, FIELD(dp_config, timeline), .lo = 0,
     .hi = DP_PATH_MAX - 1, .noun = "a file path", .def_note = "none",
     .help = "write a Chrome trace-event JSON of every rank's spans to this file (Perfetto, "
             "chrome://tracing)"},
    {.key = "timeline_steps", .type = CS_STRING, FIELD(dp_config, timeline_steps), .lo = 0,
     .hi = 31, .noun = "a step range A:B", .def_note = "first 20",
     .help = "steps A:B (global, from 1, both included) the timeline records; default: the "
             "first 20 steps this run takes"},
    END};

static const cs_key checkpoint_keys[] = {
    {.key = "keep", .type = CS_INT, FIELD(dp_config, ckpt_keep), AT_LEAST(1), .def = 3,
     .help = "how many of the newest checkpoints are kept"},
    {.key = "every_steps", .type = CS_INT, FIELD(dp_config, ckpt_every_steps), AT_LEAST(0),
     .def = 0, .help = "also write one every this many steps; 0: only at epoch ends"},
    {.key = "best", .type = CS_SECTION, FIELD(dp_config, ckpt_best), .sub = &best_ckpt_table,
     .nullable = 1, .def_note = "null",
     .help = "keep RUN_DIR/best.h5, the checkpoint of the best epoch so far (save_best_only)"},
    END};

static const cs_table data_table = {"{path: data.h5}", data_keys, NULL};
static const cs_table model_table = {"{input: [20], layers: [...]}", model_keys, NULL};
static const cs_table train_table = {"{epochs: 10, batch_size: 32}", train_keys, NULL};
static const cs_table checkpoint_table = {"{keep: 3}", checkpoint_keys, NULL};

static const cs_key root_keys[] = {
    {.key = "data", .type = CS_SECTION, .required = 1, .sub = &data_table,
     .help = "where the samples come from"},
    {.key = "model", .type = CS_SECTION, .required = 1, .sub = &model_table,
     .help = "the input shape and the layers"},
    {.key = "loss", .type = CS_ENUM, FIELD(dp_config, loss), .required = 1, .names = loss_names,
     .noun = "loss", .help = "what training minimizes; the cross-entropies are computed from the logits"},
    {.key = "optimizer", .type = CS_OPTIMIZER, FIELD(dp_config, optim), .required = 1,
     .sub = &optim_common, .variants = dp_cs_optimizers,
     .help = "a name (optimizer: adam) or a mapping with name and that optimizer's keys"},
    {.key = "metrics", .type = CS_METRICS, FIELD(dp_config, metric_accuracy), .def = 0,
     .def_note = "[]", .elem = &metric_entry, .help = "reported besides the loss"},
    {.key = "train", .type = CS_SECTION, .required = 1, .sub = &train_table,
     .help = "the training loop"},
    {.key = "checkpoint", .type = CS_SECTION, .sub = &checkpoint_table,
     .help = "checkpoints in the run directory"},
    END};

static const cs_table root_table = {"", root_keys, NULL};

const cs_key dp_cs_root = {.key = "", .type = CS_SECTION, .sub = &root_table};

/* ---- canonical names ---- */

/* clang-format on */

const char *dp_config_name_act(dp_act a) {
    return a >= DP_ACT_LINEAR && a <= DP_ACT_GELU ? act_names[a] : "?";
}

const char *dp_config_name_loss(dp_loss_kind l) {
    return l >= DP_LOSS_MSE && l <= DP_LOSS_SPARSE_CE ? loss_names[l] : "?";
}

const char *dp_config_name_monitor(dp_monitor m) {
    return m >= DP_MONITOR_LOSS && m <= DP_MONITOR_VAL_ACCURACY ? monitor_names[m] : "?";
}

static size_t count_keys(const cs_key *keys) {
    size_t n = 0;
    while (keys[n].key) n++;
    return n;
}

const char *dp_config_name_optim(dp_optim_kind o) {
    return (int)o >= 0 && (size_t)o < count_keys(dp_cs_optimizers) ? dp_cs_optimizers[o].key : "?";
}

/* ---- walking ---- */

int dp_cs_is_value(const cs_key *k) {
    return k->type <= CS_INT_PAIR;
}

int dp_cs_is_list(const cs_key *k) {
    return k->type == CS_DIMS || k->type == CS_LAYERS || k->type == CS_METRICS;
}

static const cs_key *find_in(const cs_key *keys, const char *name) {
    for (const cs_key *k = keys; k && k->key; k++)
        if (strcmp(k->key, name) == 0) return k;
    return NULL;
}

const cs_key *dp_cs_find(const cs_key *map, const char *name) {
    if (map->type == CS_ONE_OF) return find_in(map->variants, name);
    const cs_key *k = map->sub ? find_in(map->sub->keys, name) : NULL;
    /* The optimizer's keys are those of every optimizer; which apply is
     * checked once the name is known. */
    int variants = map->type == CS_OPTIMIZER || map->type == CS_SCHEDULE;
    for (const cs_key *v = variants ? map->variants : NULL; !k && v && v->key; v++)
        k = find_in(v->sub->keys, name);
    return k;
}

static void add_name(const char **names, size_t cap, size_t *n, const char *name) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0) return;
    if (*n + 1 < cap) names[(*n)++] = name;
}

void dp_cs_names(const cs_key *map, const char **names, size_t cap) {
    size_t n = 0;
    if (map->type == CS_ONE_OF) {
        for (const cs_key *v = map->variants; v->key; v++) add_name(names, cap, &n, v->key);
    } else {
        for (const cs_key *k = map->sub ? map->sub->keys : NULL; k && k->key; k++)
            add_name(names, cap, &n, k->key);
        int variants = map->type == CS_OPTIMIZER || map->type == CS_SCHEDULE;
        for (const cs_key *v = variants ? map->variants : NULL; v && v->key; v++)
            for (const cs_key *k = v->sub->keys; k->key; k++) add_name(names, cap, &n, k->key);
    }
    names[n] = NULL;
}

void dp_cs_enum_names(const cs_key *k, const char **names, size_t cap) {
    size_t n = 0;
    if (k->names)
        for (const char *const *s = k->names; *s && n + 1 < cap; s++) names[n++] = *s;
    else
        for (const cs_key *v = k->variants; v && v->key && n + 1 < cap; v++) names[n++] = v->key;
    names[n] = NULL;
}

/* ---- values ---- */

void dp_cs_apply_defaults(const cs_key *k, void *target) {
    char *at = (char *)target + k->offset;
    switch (k->type) {
    case CS_BOOL:
    case CS_INT:
    case CS_ENUM:
    case CS_METRICS:
        if (!k->required) cs_put_int(at, 0, (int)k->def);
        break;
    case CS_INT_PAIR:
        if (!k->required) {
            cs_put_int(at, 0, (int)k->def);
            cs_put_int(at, sizeof(int), (int)k->def);
        }
        break;
    case CS_UINT64:
        if (!k->required) {
            unsigned long long v = (unsigned long long)k->def;
            memcpy(at, &v, sizeof v);
        }
        break;
    case CS_NUMBER:
        if (!k->required) cs_put_double(at, 0, k->def);
        break;
    case CS_SECTION:
        for (const cs_key *kid = k->sub->keys; kid->key; kid++) dp_cs_apply_defaults(kid, at);
        break;
    case CS_OPTIMIZER:
        for (const cs_key *kid = k->sub->keys; kid->key; kid++) dp_cs_apply_defaults(kid, at);
        /* Unset until the kind is known: dp_optim_init fills them. */
        for (const cs_key *v = k->variants; v->key; v++) {
            for (const cs_key *kid = v->sub->keys; kid->key; kid++) {
                if (kid->type == CS_SCHEDULE) dp_cs_apply_defaults(kid, at);
                if (kid->type == CS_NUMBER || kid->type == CS_SCHEDULE)
                    cs_put_double(at, kid->offset, -1);
                else cs_put_int(at, kid->offset, -1);
            }
        }
        break;
    case CS_SCHEDULE:
        /* A plain number until a mapping says otherwise; the schedules' keys
         * are offsets into the same target as this key's. */
        if (!k->required) cs_put_double(at, 0, k->def);
        cs_put_int(target, k->sub->keys[0].offset, 0);
        for (const cs_key *v = k->variants; v->key; v++)
            for (const cs_key *kid = v->sub->keys; kid->key; kid++)
                dp_cs_apply_defaults(kid, target);
        break;
    case CS_STRING:
    case CS_ONE_OF:
    case CS_DIMS:
    case CS_LAYERS: break;
    }
}

const char *dp_cs_range_text(const cs_key *k, char *buf, size_t cap) {
    const char *names[64];
    buf[0] = '\0';
    switch (k->type) {
    case CS_STRING: snprintf(buf, cap, "%g to %g characters", k->lo, k->hi); break;
    case CS_BOOL: snprintf(buf, cap, "true or false"); break;
    case CS_ENUM:
        dp_cs_enum_names(k, names, 64);
        dp_cfg_join(names, buf, cap);
        break;
    case CS_INT:
    case CS_UINT64:
    case CS_NUMBER:
    case CS_INT_PAIR:
    case CS_SCHEDULE:
        if (isinf(k->hi) && isinf(k->lo))
            snprintf(buf, cap, "%s",
                     k->nonzero ? "a finite number other than 0" : "a finite number");
        else if (isinf(k->hi)) snprintf(buf, cap, "%s %g", k->lo_open ? ">" : ">=", k->lo);
        else
            snprintf(buf, cap, "in %c%g, %g%c", k->lo_open ? '(' : '[', k->lo, k->hi,
                     k->hi_open ? ')' : ']');
        break;
    default: break;
    }
    return buf;
}

int dp_cs_in_range(const cs_key *k, double x) {
    if (k->nonzero && x == 0) return 0;
    int lo_ok = k->lo_open ? x > k->lo : x >= k->lo;
    int hi_ok = k->hi_open ? x < k->hi : x <= k->hi;
    return lo_ok && hi_ok;
}

const char *dp_cs_format_value(const cs_key *k, const void *target, char *buf, size_t cap) {
    const char *at = (const char *)target + k->offset;
    const char *names[64];
    buf[0] = '\0';
    switch (k->type) {
    case CS_STRING: snprintf(buf, cap, "%s", at); break;
    case CS_BOOL: snprintf(buf, cap, "%s", cs_get_int(at, 0) ? "true" : "false"); break;
    case CS_INT: snprintf(buf, cap, "%d", cs_get_int(at, 0)); break;
    case CS_UINT64: {
        unsigned long long v;
        memcpy(&v, at, sizeof v);
        snprintf(buf, cap, "%llu", v);
        break;
    }
    case CS_NUMBER:
    case CS_SCHEDULE: snprintf(buf, cap, "%g", cs_get_double(at, 0)); break;
    case CS_ENUM: {
        dp_cs_enum_names(k, names, 64);
        int i = cs_get_int(at, 0), n = 0;
        while (names[n]) n++;
        snprintf(buf, cap, "%s", i >= 0 && i < n ? names[i] : "?");
        break;
    }
    case CS_INT_PAIR: {
        int h = cs_get_int(at, 0), w = cs_get_int(at, sizeof(int));
        if (h == w) snprintf(buf, cap, "%d", h);
        else snprintf(buf, cap, "[%d, %d]", h, w);
        break;
    }
    default: break;
    }
    return buf;
}
