/* config.c - the config schema: checks the YAML tree key by key and turns it into
 * dp_config, placing every error at the offending key or value. */
#include "dptrain/config.h"
#include "core/alloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

#define LEAF(n) {n, CK_LEAF, NULL, NULL, NULL}
#define MAP(n, kids) {n, CK_MAP, kids, NULL, NULL}
#define LIST(n, elem) {n, CK_LIST, elem, NULL, NULL}
#define END {NULL, CK_LEAF, NULL, NULL, NULL}

/* ---- names ---- */

/* Indexed by the enums in config.h. */
static const char *const act_names[] = {"linear", "relu", "sigmoid", "tanh", "softmax", NULL};
static const char *const loss_names[] = {"mse", "binary_crossentropy", "categorical_crossentropy",
                                         "sparse_categorical_crossentropy", NULL};
static const char *const optim_names[] = {"sgd", "adam", "rmsprop", NULL};
static const char *const reduction_names[] = {"exact", "fast", NULL};
static const char *const metric_names[] = {"accuracy", NULL};
static const char *const padding_names[] = {"valid", "same", NULL}; /* index = padding_same */

const char *dp_config_name_act(dp_act a) {
    return a >= DP_ACT_LINEAR && a <= DP_ACT_SOFTMAX ? act_names[a] : "?";
}

const char *dp_config_name_loss(dp_loss_kind l) {
    return l >= DP_LOSS_MSE && l <= DP_LOSS_SPARSE_CE ? loss_names[l] : "?";
}

const char *dp_config_name_optim(dp_optim_kind o) {
    return o >= DP_OPTIM_SGD && o <= DP_OPTIM_RMSPROP ? optim_names[o] : "?";
}

/* ---- the schema ---- */

static const ck_spec data_keys[] = {LEAF("path"), LEAF("standardize"), LEAF("validation_split"),
                                    LEAF("shards"), END};
static const ck_spec dense_keys[] = {LEAF("units"), LEAF("activation"), END};
static const ck_spec conv2d_keys[] = {LEAF("filters"), LEAF("kernel_size"), LEAF("strides"),
                                      LEAF("padding"), LEAF("activation"), END};
static const ck_spec maxpool2d_keys[] = {LEAF("pool_size"), LEAF("strides"), END};
static const ck_spec flatten_keys[] = {END};
static const ck_spec dropout_keys[] = {LEAF("rate"), END};
/* One entry per layer type; a new type adds a key list here and a parser and an
 * example in layer_parsers below. */
static const ck_spec layer_types[] = {MAP("dense", dense_keys),     MAP("conv2d", conv2d_keys),
                                      MAP("maxpool2d", maxpool2d_keys), MAP("flatten", flatten_keys),
                                      MAP("dropout", dropout_keys), END};
static const ck_spec layer_entry[] = {{"layer", CK_MAP, layer_types, NULL, "layer type"}};
static const ck_spec dim_entry[] = {LEAF("dim")};
static const ck_spec model_keys[] = {LIST("input", dim_entry), LIST("layers", layer_entry), END};
static const ck_spec optim_keys[] = {LEAF("name"),    LEAF("learning_rate"), LEAF("beta_1"),
                                     LEAF("beta_2"),  LEAF("epsilon"),       LEAF("rho"),
                                     LEAF("momentum"), LEAF("nesterov"),     END};
static const ck_spec metric_entry[] = {LEAF("metric")};
static const ck_spec train_keys[] = {LEAF("epochs"),    LEAF("batch_size"),        LEAF("seed"),
                                     LEAF("reduction"), LEAF("check_every_steps"),
                                     LEAF("bucket_kib"), LEAF("shared_memory"), END};
static const ck_spec ckpt_keys[] = {LEAF("keep"), LEAF("every_steps"), END};
static const ck_spec top_keys[] = {MAP("data", data_keys),
                                   MAP("model", model_keys),
                                   LEAF("loss"),
                                   {"optimizer", CK_MAP, optim_keys, "name", NULL},
                                   LIST("metrics", metric_entry),
                                   MAP("train", train_keys),
                                   MAP("checkpoint", ckpt_keys),
                                   END};
static const ck_spec top_spec = MAP("", top_keys);

/* Which optimizer keys each optimizer takes, indexed by dp_optim_kind. */
static const char *const optim_takes[][6] = {
    {"learning_rate", "momentum", "nesterov", NULL},
    {"learning_rate", "beta_1", "beta_2", "epsilon", NULL},
    {"learning_rate", "rho", "momentum", "epsilon", NULL},
};

/* ---- typed reads; each error is placed at the value and names its key ---- */

typedef struct ctx {
    const char *name; /* file name, for errors with no better place */
    dp_error *err;
} ctx;

static const ct_node *get(const ct_node *map, const char *key) {
    const ct_pair *p = dp_ct_map_find(map, key);
    return p ? p->val : NULL;
}

/* A scalar that is present and not null, or an error saying what was there. */
static int need_scalar(ctx *c, const ct_node *n, const char *path, const char *expected) {
    char got[256];
    if (n->kind == CT_SCALAR && !dp_ct_is_null(n)) return 0;
    return dp_error_set(c->err, n->where, "%s: expected %s, got %s", path, expected,
                        dp_ct_describe(n, got, sizeof got));
}

/* Quoted text is a string in YAML even when it spells a number. */
static int need_plain(ctx *c, const ct_node *n, const char *path, const char *expected) {
    if (need_scalar(c, n, path, expected)) return -1;
    if (n->plain) return 0;
    return dp_error_set(c->err, n->where, "%s: expected %s, got the quoted string '%.200s'", path,
                        expected, n->value);
}

static int is_integer_text(const char *s) {
    if (*s == '+' || *s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int read_ll(ctx *c, const ct_node *n, const char *path, long long lo, long long hi,
                   long long *out) {
    if (need_plain(c, n, path, "an integer")) return -1;
    const char *s = n->value;
    if (!is_integer_text(s))
        return dp_error_set(c->err, n->where, "%s: expected an integer, got '%.200s'", path, s);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    int negative = s[0] == '-';
    if ((errno == ERANGE && negative) || v < lo)
        return dp_error_set(c->err, n->where, "%s: must be >= %lld, got %.200s", path, lo, s);
    if (errno == ERANGE || v > hi) {
        if (hi == INT_MAX || hi == LLONG_MAX)
            return dp_error_set(c->err, n->where, "%s: %.200s is too large for an integer (at most %lld)",
                                path, s, hi);
        return dp_error_set(c->err, n->where, "%s: must be <= %lld, got %.200s", path, hi, s);
    }
    *out = v;
    return 0;
}

static int read_int(ctx *c, const ct_node *n, const char *path, int lo, int *out) {
    long long v;
    if (read_ll(c, n, path, lo, INT_MAX, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* Decimal numbers only: strtod would also take "inf", "nan" and hex. */
static int read_double(ctx *c, const ct_node *n, const char *path, double *out) {
    if (need_plain(c, n, path, "a number")) return -1;
    const char *s = n->value;
    int ok = strspn(s, "0123456789+-.eE") == strlen(s) && strpbrk(s, "0123456789");
    char *end = NULL;
    double v = ok ? strtod(s, &end) : 0;
    if (!ok || *end)
        return dp_error_set(c->err, n->where, "%s: expected a number, got '%.200s'", path, s);
    if (!isfinite(v))
        return dp_error_set(c->err, n->where, "%s: %.200s is out of range for a number", path, s);
    *out = v;
    return 0;
}

static int read_bool(ctx *c, const ct_node *n, const char *path, int *out) {
    if (need_plain(c, n, path, "true or false")) return -1;
    const char *s = n->value;
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0) *out = 1;
    else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0) *out = 0;
    else return dp_error_set(c->err, n->where, "%s: expected true or false, got '%.200s'", path, s);
    return 0;
}

static int read_enum(ctx *c, const ct_node *n, const char *path, const char *noun,
                     const char *const *names, int *out) {
    char expected[64], msg[700];
    snprintf(expected, sizeof expected, "a%s %s name", strchr("aeiou", noun[0]) ? "n" : "", noun);
    if (need_scalar(c, n, path, expected)) return -1;
    for (int i = 0; names[i]; i++) {
        if (strcmp(n->value, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char plural[64];
    snprintf(plural, sizeof plural, "%s%s", noun, noun[strlen(noun) - 1] == 's' ? "es" : "s");
    snprintf(msg, sizeof msg, "%s: unknown %s '%.200s'", path, noun, n->value);
    dp_cfg_hint(msg, sizeof msg, n->value, names, plural, 1);
    return dp_error_set(c->err, n->where, "%s", msg);
}

/* A mapping whose keys are all in spec. */
static int check_map(ctx *c, const ct_node *n, const char *path, const ck_spec *spec,
                     const char *example) {
    char got[256], msg[700];
    if (n->kind != CT_MAP)
        return dp_error_set(c->err, n->where, "%s: expected a mapping such as %s, got %s", path,
                            example, dp_ct_describe(n, got, sizeof got));
    const char *names[64];
    dp_ck_names(spec, names, 64);
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->pairs[i].key;
        if (dp_ck_find(spec, key)) continue;
        if (path[0]) snprintf(msg, sizeof msg, "unknown key '%.200s' in '%s'", key, path);
        else snprintf(msg, sizeof msg, "unknown top-level key '%.200s'", key);
        if (names[0]) dp_cfg_hint(msg, sizeof msg, key, names, "keys", 0);
        else snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; it takes no keys");
        return dp_error_set(c->err, n->pairs[i].key_where, "%s", msg);
    }
    return 0;
}

/* Looks up map.key, failing when it is required and absent. */
static int lookup(ctx *c, const ct_node *map, const char *section, const char *key, int required,
                  const ct_node **out) {
    *out = get(map, key);
    if (*out || !required) return 0;
    return dp_error_set(c->err, map->where, "missing required key '%s.%s'", section, key);
}

/* ---- sections ---- */

static int parse_data(ctx *c, const ct_node *sec, dp_config *cfg) {
    const ct_node *n;
    if (check_map(c, sec, "data", &top_spec.kids[0], "{path: data.h5}")) return -1;
    if (lookup(c, sec, "data", "path", 1, &n) || need_scalar(c, n, "data.path", "a file path"))
        return -1;
    if (!n->value[0]) return dp_error_set(c->err, n->where, "data.path: must not be empty");
    if (strlen(n->value) >= sizeof cfg->data_path)
        return dp_error_set(c->err, n->where, "data.path: longer than %zu characters",
                            sizeof cfg->data_path - 1);
    snprintf(cfg->data_path, sizeof cfg->data_path, "%s", n->value);
    if ((n = get(sec, "standardize")) && read_bool(c, n, "data.standardize", &cfg->standardize))
        return -1;
    if ((n = get(sec, "validation_split"))) {
        if (read_double(c, n, "data.validation_split", &cfg->validation_split)) return -1;
        if (cfg->validation_split < 0 || cfg->validation_split >= 1)
            return dp_error_set(c->err, n->where, "data.validation_split: must be in [0, 1), got %.200s",
                                n->value);
    }
    if ((n = get(sec, "shards")) && read_int(c, n, "data.shards", 1, &cfg->shards)) return -1;
    return 0;
}

/* The optional `activation` of a layer (linear when absent). */
static int read_activation(ctx *c, const ct_node *params, const char *path, dp_act *out) {
    const ct_node *n = get(params, "activation");
    if (!n) return 0;
    char key[128];
    int a;
    snprintf(key, sizeof key, "%s.activation", path);
    if (read_enum(c, n, key, "activation", act_names, &a)) return -1;
    *out = (dp_act)a;
    return 0;
}

static int parse_dense(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out) {
    char key[128];
    const ct_node *n;
    if (lookup(c, params, path, "units", 1, &n)) return -1;
    snprintf(key, sizeof key, "%s.units", path);
    if (read_int(c, n, key, 1, &out->units)) return -1;
    return read_activation(c, params, path, &out->activation);
}

/* An integer for both entries, or a list [height, width] of two; each >= lo. */
static int read_int_pair(ctx *c, const ct_node *n, const char *path, int lo, int out[2]) {
    char key[160];
    if (n->kind != CT_SEQ) {
        if (read_int(c, n, path, lo, &out[0])) return -1;
        out[1] = out[0];
        return 0;
    }
    if (n->n != 2)
        return dp_error_set(c->err, n->where,
                            "%s: expected an integer or a list of 2 integers [height, width], "
                            "got a list of %zu",
                            path, n->n);
    for (size_t i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "%s.%zu", path, i);
        if (read_int(c, n->items[i], key, lo, &out[i])) return -1;
    }
    return 0;
}

static int parse_conv2d(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out) {
    char key[128];
    const ct_node *n;
    if (lookup(c, params, path, "filters", 1, &n)) return -1;
    snprintf(key, sizeof key, "%s.filters", path);
    if (read_int(c, n, key, 1, &out->filters)) return -1;
    if (lookup(c, params, path, "kernel_size", 1, &n)) return -1;
    snprintf(key, sizeof key, "%s.kernel_size", path);
    if (read_int_pair(c, n, key, 1, out->kernel)) return -1;
    out->strides[0] = out->strides[1] = 1;
    snprintf(key, sizeof key, "%s.strides", path);
    if ((n = get(params, "strides")) && read_int_pair(c, n, key, 1, out->strides)) return -1;
    if ((n = get(params, "padding"))) {
        snprintf(key, sizeof key, "%s.padding", path);
        if (read_enum(c, n, key, "padding", padding_names, &out->padding_same)) return -1;
    }
    return read_activation(c, params, path, &out->activation);
}

/* Keras: pool_size 2, strides default to pool_size, 'valid' padding. */
static int parse_maxpool2d(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out) {
    char key[128];
    const ct_node *n;
    out->pool[0] = out->pool[1] = 2;
    snprintf(key, sizeof key, "%s.pool_size", path);
    if ((n = get(params, "pool_size")) && read_int_pair(c, n, key, 1, out->pool)) return -1;
    out->strides[0] = out->pool[0];
    out->strides[1] = out->pool[1];
    snprintf(key, sizeof key, "%s.strides", path);
    if ((n = get(params, "strides")) && read_int_pair(c, n, key, 1, out->strides)) return -1;
    return 0;
}

static int parse_flatten(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out) {
    (void)c, (void)params, (void)path, (void)out;
    return 0;
}

static int parse_dropout(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out) {
    char key[128];
    const ct_node *n;
    if (lookup(c, params, path, "rate", 1, &n)) return -1;
    snprintf(key, sizeof key, "%s.rate", path);
    if (read_double(c, n, key, &out->rate)) return -1;
    /* rate 1 would drop everything and scale by 1/0. */
    if (out->rate < 0 || out->rate >= 1)
        return dp_error_set(c->err, n->where, "%s: must be in [0, 1), got %.200s", key, n->value);
    return 0;
}

typedef int (*layer_parse_fn)(ctx *c, const ct_node *params, const char *path, dp_layer_cfg *out);

/* Indexed like layer_types: the parser and an example for "expected a mapping". */
static const struct {
    layer_parse_fn parse;
    const char *example;
} layer_parsers[] = {
    {parse_dense, "{units: 64}"},
    {parse_conv2d, "{filters: 32, kernel_size: 3}"},
    {parse_maxpool2d, "{pool_size: 2}"},
    {parse_flatten, "{}"},
    {parse_dropout, "{rate: 0.5}"},
};
_Static_assert(sizeof layer_parsers / sizeof layer_parsers[0] ==
                   sizeof layer_types / sizeof layer_types[0] - 1,
               "one parser per layer type");

static int parse_layer(ctx *c, const ct_node *entry, int i, dp_layer_cfg *out) {
    char path[64], got[256], msg[700];
    snprintf(path, sizeof path, "model.layers.%d", i);
    if (entry->kind != CT_MAP || entry->n != 1)
        return dp_error_set(c->err, entry->where,
                            "%s: expected one layer such as {dense: {units: 64}}, got %s%s", path,
                            entry->kind == CT_MAP ? "a mapping with " : "",
                            entry->kind == CT_MAP ? (entry->n ? "several keys" : "no keys")
                                                  : dp_ct_describe(entry, got, sizeof got));
    const ct_pair *p = &entry->pairs[0];
    const ck_spec *type = dp_ck_find(&layer_entry[0], p->key);
    if (!type) {
        const char *names[64];
        dp_ck_names(&layer_entry[0], names, 64);
        snprintf(msg, sizeof msg, "%s: unknown layer type '%.200s'", path, p->key);
        dp_cfg_hint(msg, sizeof msg, p->key, names, "layer types", 1);
        return dp_error_set(c->err, p->key_where, "%s", msg);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->type, sizeof out->type, "%s", type->name);
    snprintf(out->where, sizeof out->where, "%s", entry->where);
    out->activation = DP_ACT_LINEAR;

    /* "- dense:" with nothing after it reads as null: report the missing keys. */
    ct_node empty = {.kind = CT_MAP, .where = p->val->where};
    const ct_node *params = dp_ct_is_null(p->val) ? &empty : p->val;
    size_t len = strlen(path);
    snprintf(path + len, sizeof path - len, ".%s", type->name);
    size_t t = (size_t)(type - layer_types);
    if (check_map(c, params, path, type, layer_parsers[t].example)) return -1;
    return layer_parsers[t].parse(c, params, path, out);
}

static int parse_model(ctx *c, const ct_node *sec, dp_config *cfg) {
    const ct_node *n;
    char got[256], key[64];
    if (check_map(c, sec, "model", &top_spec.kids[1], "{input: [20], layers: [...]}")) return -1;

    if (lookup(c, sec, "model", "input", 1, &n)) return -1;
    if (n->kind != CT_SEQ || n->n < 1 || n->n > DP_MAX_DIMS)
        return dp_error_set(c->err, n->where,
                            "model.input: expected a list of 1 to %d positive integers such as [20], got %s%s",
                            DP_MAX_DIMS, n->kind == CT_SEQ ? (n->n ? "a longer list" : "an empty list") : "",
                            n->kind == CT_SEQ ? "" : dp_ct_describe(n, got, sizeof got));
    cfg->input.ndim = (int)n->n;
    for (size_t i = 0; i < n->n; i++) {
        snprintf(key, sizeof key, "model.input.%zu", i);
        if (read_int(c, n->items[i], key, 1, &cfg->input.dim[i])) return -1;
    }

    if (lookup(c, sec, "model", "layers", 1, &n)) return -1;
    if (n->kind != CT_SEQ || n->n == 0)
        return dp_error_set(c->err, n->where,
                            "model.layers: expected a non-empty list of layers such as "
                            "[{dense: {units: 1}}], got %s",
                            n->kind == CT_SEQ ? "an empty list" : dp_ct_describe(n, got, sizeof got));
    if (n->n > DP_MAX_LAYERS)
        return dp_error_set(c->err, n->where, "model.layers: %zu layers, at most %d are supported",
                            n->n, DP_MAX_LAYERS);
    cfg->n_layers = (int)n->n;
    for (size_t i = 0; i < n->n; i++)
        if (parse_layer(c, n->items[i], (int)i, &cfg->layers[i])) return -1;
    return 0;
}

static int parse_optimizer(ctx *c, const ct_node *n, dp_optim_cfg *o) {
    char got[256];
    int kind;
    o->learning_rate = o->beta1 = o->beta2 = o->epsilon = o->rho = o->momentum = -1;
    o->nesterov = -1;
    if (n->kind == CT_SCALAR) {
        if (read_enum(c, n, "optimizer", "optimizer", optim_names, &kind)) return -1;
        o->kind = (dp_optim_kind)kind;
        return 0;
    }
    if (n->kind != CT_MAP)
        return dp_error_set(c->err, n->where,
                            "optimizer: expected a name such as adam or a mapping such as "
                            "{name: adam, learning_rate: 0.001}, got %s",
                            dp_ct_describe(n, got, sizeof got));
    if (check_map(c, n, "optimizer", &top_spec.kids[3], "{name: adam}")) return -1;
    const ct_node *v;
    if (lookup(c, n, "optimizer", "name", 1, &v) ||
        read_enum(c, v, "optimizer.name", "optimizer", optim_names, &kind))
        return -1;
    o->kind = (dp_optim_kind)kind;

    const char *const *takes = optim_takes[kind];
    for (size_t i = 0; i < n->n; i++) {
        const ct_pair *p = &n->pairs[i];
        int ok = strcmp(p->key, "name") == 0;
        for (int j = 0; takes[j] && !ok; j++) ok = strcmp(p->key, takes[j]) == 0;
        if (!ok) {
            char list[256];
            return dp_error_set(c->err, p->key_where, "optimizer.%s does not apply to %s (%s takes: %s)",
                                p->key, optim_names[kind], optim_names[kind],
                                dp_cfg_join(takes, list, sizeof list));
        }
    }

    /* [lo, hi) bounds; lo_open excludes lo itself. */
    static const struct {
        const char *key;
        size_t offset;
        double lo, hi;
        int lo_open;
    } fields[] = {
        {"learning_rate", offsetof(dp_optim_cfg, learning_rate), 0, INFINITY, 1},
        {"beta_1", offsetof(dp_optim_cfg, beta1), 0, 1, 0},
        {"beta_2", offsetof(dp_optim_cfg, beta2), 0, 1, 0},
        {"epsilon", offsetof(dp_optim_cfg, epsilon), 0, INFINITY, 1},
        {"rho", offsetof(dp_optim_cfg, rho), 0, 1, 0},
        {"momentum", offsetof(dp_optim_cfg, momentum), 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char path[64];
        double x;
        if (!(v = get(n, fields[i].key))) continue;
        snprintf(path, sizeof path, "optimizer.%s", fields[i].key);
        if (read_double(c, v, path, &x)) return -1;
        int low = fields[i].lo_open ? x <= fields[i].lo : x < fields[i].lo;
        if (low || x >= fields[i].hi) {
            if (isinf(fields[i].hi))
                return dp_error_set(c->err, v->where, "%s: must be > 0, got %.200s", path, v->value);
            return dp_error_set(c->err, v->where, "%s: must be in [0, 1), got %.200s", path, v->value);
        }
        *(double *)((char *)o + fields[i].offset) = x;
    }
    if ((v = get(n, "nesterov")) && read_bool(c, v, "optimizer.nesterov", &o->nesterov)) return -1;
    return 0;
}

static int parse_metrics(ctx *c, const ct_node *n, dp_config *cfg) {
    char got[256], key[64];
    if (dp_ct_is_null(n)) return 0;
    if (n->kind != CT_SEQ)
        return dp_error_set(c->err, n->where, "metrics: expected a list such as [accuracy], got %s",
                            dp_ct_describe(n, got, sizeof got));
    for (size_t i = 0; i < n->n; i++) {
        int m;
        snprintf(key, sizeof key, "metrics.%zu", i);
        if (read_enum(c, n->items[i], key, "metric", metric_names, &m)) return -1;
        cfg->metric_accuracy = 1; /* the only metric so far */
    }
    return 0;
}

static int parse_train(ctx *c, const ct_node *sec, dp_config *cfg) {
    const ct_node *n;
    if (check_map(c, sec, "train", &top_spec.kids[5], "{epochs: 10, batch_size: 32}")) return -1;
    if (lookup(c, sec, "train", "epochs", 1, &n) || read_int(c, n, "train.epochs", 0, &cfg->epochs))
        return -1;
    if (lookup(c, sec, "train", "batch_size", 1, &n) ||
        read_int(c, n, "train.batch_size", 1, &cfg->batch_size))
        return -1;
    if ((n = get(sec, "seed"))) {
        long long s;
        if (read_ll(c, n, "train.seed", 0, LLONG_MAX, &s)) return -1;
        cfg->seed = (unsigned long long)s;
    }
    if ((n = get(sec, "reduction"))) {
        int r;
        if (read_enum(c, n, "train.reduction", "reduction", reduction_names, &r)) return -1;
        cfg->reduction = (dp_reduction)r;
    }
    if ((n = get(sec, "bucket_kib")) && read_int(c, n, "train.bucket_kib", 1, &cfg->bucket_kib))
        return -1;
    if ((n = get(sec, "shared_memory")) &&
        read_bool(c, n, "train.shared_memory", &cfg->shared_memory))
        return -1;
    if ((n = get(sec, "check_every_steps")) &&
        read_int(c, n, "train.check_every_steps", 1, &cfg->check_every_steps))
        return -1;
    return 0;
}

static int parse_checkpoint(ctx *c, const ct_node *sec, dp_config *cfg) {
    const ct_node *n;
    if (check_map(c, sec, "checkpoint", &top_spec.kids[6], "{keep: 3}")) return -1;
    if ((n = get(sec, "keep")) && read_int(c, n, "checkpoint.keep", 1, &cfg->ckpt_keep)) return -1;
    if ((n = get(sec, "every_steps")) &&
        read_int(c, n, "checkpoint.every_steps", 0, &cfg->ckpt_every_steps))
        return -1;
    return 0;
}

static int parse_root(ctx *c, const ct_node *root, dp_config *cfg) {
    char got[256];
    if (root->kind != CT_MAP)
        return dp_error_set(c->err, root->where,
                            "the top level must be a mapping of sections (data, model, loss, "
                            "optimizer, train, ...), got %s",
                            dp_ct_describe(root, got, sizeof got));
    if (check_map(c, root, "", &top_spec, "")) return -1;
    static const char *const required[] = {"data", "model", "loss", "optimizer", "train"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!get(root, required[i]))
            return dp_error_set(c->err, c->name, "missing required key '%s'", required[i]);

    const ct_node *n;
    int loss;
    if (parse_data(c, get(root, "data"), cfg) || parse_model(c, get(root, "model"), cfg) ||
        read_enum(c, get(root, "loss"), "loss", "loss", loss_names, &loss) ||
        parse_optimizer(c, get(root, "optimizer"), &cfg->optim))
        return -1;
    cfg->loss = (dp_loss_kind)loss;
    if ((n = get(root, "metrics")) && parse_metrics(c, n, cfg)) return -1;
    if (parse_train(c, get(root, "train"), cfg)) return -1;
    if ((n = get(root, "checkpoint")) && parse_checkpoint(c, n, cfg)) return -1;
    return 0;
}

/* ---- loading ---- */

/* The file text, then one "# --set ..." comment per override, so a checkpoint
 * records exactly what ran. */
static char *effective_text(const char *text, size_t len, char *const *sets, int n_set) {
    size_t cap = len + 2;
    for (int i = 0; i < n_set; i++) cap += strlen(sets[i]) * 2 + 16;
    char *out = DP_MALLOC(cap);
    size_t used = len;
    if (len) memcpy(out, text, len);
    if (used > 0 && out[used - 1] != '\n') out[used++] = '\n';
    for (int i = 0; i < n_set; i++) {
        used += (size_t)snprintf(out + used, cap - used, "# --set ");
        for (const char *s = sets[i]; *s; s++) {
            /* A newline in a value would end the comment early. */
            if (*s == '\n' || *s == '\r') {
                out[used++] = '\\';
                out[used++] = *s == '\n' ? 'n' : 'r';
            } else {
                out[used++] = *s;
            }
        }
        out[used++] = '\n';
    }
    out[used] = '\0';
    return out;
}

static void set_defaults(dp_config *cfg) {
    cfg->standardize = 1;
    cfg->validation_split = 0;
    cfg->shards = 0;
    cfg->loss = DP_LOSS_MSE;
    cfg->optim.kind = DP_OPTIM_ADAM;
    cfg->optim.learning_rate = cfg->optim.beta1 = cfg->optim.beta2 = -1;
    cfg->optim.epsilon = cfg->optim.rho = cfg->optim.momentum = -1;
    cfg->optim.nesterov = -1;
    cfg->seed = 42;
    cfg->reduction = DP_REDUCE_EXACT;
    cfg->check_every_steps = 200;
    cfg->bucket_kib = 1024;
    cfg->shared_memory = 1;
    cfg->ckpt_keep = 3;
    cfg->ckpt_every_steps = 0;
}

int dp_config_load_text(dp_config *cfg, const char *name, const char *text, size_t len,
                     char *const *sets, int n_set, dp_error *err) {
    memset(cfg, 0, sizeof *cfg);
    set_defaults(cfg);
    snprintf(cfg->source, sizeof cfg->source, "%s", name);
    cfg->text = effective_text(text, len, sets, n_set);

    ctx c = {name, err};
    ct_node *root = NULL;
    if (dp_ct_parse(name, NULL, text, len, &root, err)) return -1;
    if (!root) return dp_error_set(err, name, "config is empty");
    int rc = 0;
    for (int i = 0; i < n_set && rc == 0; i++) {
        /* --set can build the document up from nothing but a mapping. */
        if (root->kind != CT_MAP) break;
        rc = dp_ct_apply_set(root, &top_spec, sets[i], err);
    }
    if (rc == 0) rc = parse_root(&c, root, cfg);
    dp_ct_free(root);
    return rc;
}

int dp_config_load_file(dp_config *cfg, const char *path, char *const *sets, int n_set,
                     dp_error *err) {
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f) return dp_error_set(err, path, "cannot open config file: %s", strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = DP_MALLOC(cap);
    for (;;) {
        if (len == cap) {
            char *bigger = DP_MALLOC(cap * 2);
            memcpy(bigger, buf, len);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f) ? errno : 0;
    fclose(f);
    if (bad) {
        free(buf);
        return dp_error_set(err, path, "cannot read config file: %s", strerror(bad));
    }
    int rc = dp_config_load_text(cfg, path, buf, len, sets, n_set, err);
    free(buf);
    return rc;
}

void dp_config_free(dp_config *cfg) {
    if (!cfg) return;
    free(cfg->text);
    cfg->text = NULL;
}
