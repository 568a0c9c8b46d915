/* config_schema.h - the config schema, one table per section: every key's type,
 * place in the target struct, range, default, whether it is required, and help.
 *
 * The parser (config.c), `--set` (config_tree.c), the did-you-mean hints, the
 * optimizer's defaults and `dptrain config --explain` all read these tables, so
 * a new key is one entry here plus the code that uses its value. */
#ifndef DPTRAIN_CONFIG_SCHEMA_H
#define DPTRAIN_CONFIG_SCHEMA_H

#include <stddef.h>
#include <string.h>

#include "dptrain/config.h"
#include "dptrain/error.h"

typedef enum cs_type {
    /* single values */
    CS_STRING,   /* char[hi + 1] or larger; lo and hi bound the length */
    CS_BOOL,     /* int 0 or 1 */
    CS_INT,      /* int >= lo */
    CS_UINT64,   /* unsigned long long >= lo, read as a signed 64-bit integer */
    CS_NUMBER,   /* finite double in the range */
    CS_ENUM,     /* int: the index in `names`, or in `variants` when names is NULL */
    CS_INT_PAIR, /* int[2] >= lo: an integer for both, or [height, width] */
    /* structure */
    CS_SECTION,   /* a mapping with the keys of `sub`, written into the same target */
    CS_OPTIMIZER, /* a name, or {name: NAME, keys of that variant}; see `variants` */
    CS_SCHEDULE,  /* a number (a CS_NUMBER at offset), or a mapping {schedule: NAME,
                     keys of that variant}: sub's first key is the name, an enum
                     written as 1 + the variant's index; the variants' keys are
                     offsets into the same target as this key's */
    CS_ONE_OF,    /* a mapping with one key, a variant's name, over its keys */
    CS_DIMS,      /* a list of 1 to DP_MAX_DIMS `elem`s into a dp_shape */
    CS_LAYERS,    /* a non-empty list of `elem`s (a CS_ONE_OF) into the layers */
    CS_METRICS,   /* a list of `elem` names, each setting its flag */
} cs_type;

typedef struct cs_key cs_key;

/* The keys of one mapping, in the order they are parsed and listed. */
typedef struct cs_table {
    const char *example; /* a valid value, for "expected a mapping such as ..." */
    const cs_key *keys;  /* terminated by a NULL key */
    /* Defaults that depend on other keys (maxpool2d strides = pool_size),
     * applied after the keys are read; NULL when there are none. */
    void (*finish)(void *target);
} cs_table;

struct cs_key {
    const char *key;
    cs_type type;
    size_t offset;     /* into the target struct */
    const char *field; /* the member's name, for errors about a struct given in code */
    /* The range, for numbers; CS_INT and CS_UINT64 use lo only (closed), and
     * CS_STRING bounds the length. hi = INFINITY means no upper bound. */
    double lo, hi;
    int lo_open, hi_open;
    int required;
    int nullable;             /* null is accepted and leaves the default */
    int ratio;                /* CS_NUMBER: a fraction "a/b" (1/255) is accepted too */
    int nonzero;              /* CS_NUMBER: 0 is rejected */
    double def;               /* the default of an optional key, in the key's type */
    const char *def_note;     /* set when the default is not a plain value ("pool_size") */
    const char *help;         /* one line */
    const char *const *names; /* CS_ENUM, CS_METRICS' elem: valid names, NULL-terminated */
    const char *noun;         /* CS_ENUM: "activation"; CS_STRING: "a file path";
                                 CS_ONE_OF: what its keys are ("layer type") */
    const cs_table *sub;      /* CS_SECTION, CS_OPTIMIZER and CS_SCHEDULE (their common keys) */
    const cs_key *variants;   /* CS_OPTIMIZER, CS_SCHEDULE, CS_ONE_OF, CS_ENUM without names:
                                 one CS_SECTION per kind, NULL-terminated */
    const cs_key *elem;       /* CS_DIMS, CS_LAYERS, CS_METRICS: one entry */
};

/* A value of the target struct at a key's offset. Through memcpy: a cast of
 * char * to double * would break strict aliasing. */
static inline double cs_get_double(const void *target, size_t offset) {
    double v;
    memcpy(&v, (const char *)target + offset, sizeof v);
    return v;
}

static inline int cs_get_int(const void *target, size_t offset) {
    int v;
    memcpy(&v, (const char *)target + offset, sizeof v);
    return v;
}

static inline void cs_put_double(void *target, size_t offset, double v) {
    memcpy((char *)target + offset, &v, sizeof v);
}

static inline void cs_put_int(void *target, size_t offset, int v) {
    memcpy((char *)target + offset, &v, sizeof v);
}

/* The whole document: a CS_SECTION whose keys are the top-level keys. */
extern const cs_key dp_cs_root;

/* The optimizers, indexed by dp_optim_kind, the learning-rate schedules,
 * indexed by dp_lr_kind - 1, and the layer types, each a CS_SECTION over its keys. */
extern const cs_key dp_cs_optimizers[];
extern const cs_key dp_cs_schedules[];
extern const cs_key dp_cs_layer_types[];

/* 1 for keys that hold one value, 0 for mappings and lists. */
int dp_cs_is_value(const cs_key *k);

/* 1 for keys whose value is a list (CS_DIMS, CS_LAYERS, CS_METRICS). */
int dp_cs_is_list(const cs_key *k);

/* The key `name` among the keys of a mapping key (CS_SECTION; CS_OPTIMIZER and
 * CS_SCHEDULE: its own keys and every variant's; CS_ONE_OF: its variants), or NULL. */
const cs_key *dp_cs_find(const cs_key *map, const char *name);

/* Writes the names of that mapping's keys into names[] (NULL-terminated, at
 * most cap-1, each once, in table order). */
void dp_cs_names(const cs_key *map, const char **names, size_t cap);

/* Writes the names a CS_ENUM key accepts into names[] (NULL-terminated). */
void dp_cs_enum_names(const cs_key *k, const char **names, size_t cap);

/* Writes the key's default into target + offset; structure keys recurse (a
 * CS_SECTION into the same target). Required keys are left alone, and the
 * optimizer's keys are set to -1 ("unset", filled in by dp_optim_init). */
void dp_cs_apply_defaults(const cs_key *k, void *target);

/* "> 0", "in [0, 1)", ">= 1" or "1 to 1023 characters"; "" when unbounded. */
const char *dp_cs_range_text(const cs_key *k, char *buf, size_t cap);

/* 1 when the double x is in the key's range; 0 for NaN. */
int dp_cs_in_range(const cs_key *k, double x);

/* The value at target + offset as the config would write it ("0.001", "true",
 * "relu", "[2, 2]"), for single-value keys. */
const char *dp_cs_format_value(const cs_key *k, const void *target, char *buf, size_t cap);

/* Fills cfg's negative ("unset") fields with the defaults of cfg->kind's
 * table, and the fields that kind does not use with 0. */
void dp_cs_optim_fill_defaults(dp_optim_cfg *cfg);

/* Checks every field cfg->kind uses against its range in the table, the
 * schedule's fields, and that at most one of clipnorm and global_clipnorm is
 * set. Returns 0 or -1 with err set at "optimizer", naming the field. */
int dp_cs_optim_check(const dp_optim_cfg *cfg, dp_error *err);

#endif
