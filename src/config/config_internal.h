/* config_internal.h - what the config_*.c files share: the YAML tree with places,
 * `--set` applied to it, and name suggestions. The schema is in config_schema.h. */
#ifndef DPTRAIN_CONFIG_INTERNAL_H
#define DPTRAIN_CONFIG_INTERNAL_H

#include <stddef.h>

#include "dptrain/error.h"

typedef enum ct_kind { CT_SCALAR, CT_SEQ, CT_MAP } ct_kind;

typedef struct ct_node ct_node;

typedef struct ct_pair {
    char *key;
    char *key_where; /* place of the key itself, for "unknown key" errors */
    ct_node *val;
} ct_pair;

struct ct_node {
    ct_kind kind;
    char *where;   /* "file:line:col", or "--set key" for override values */
    char *value;   /* CT_SCALAR: the text, NUL-terminated */
    int plain;     /* CT_SCALAR: unquoted, so it may be a number, bool or null */
    size_t n, cap; /* CT_SEQ: items; CT_MAP: pairs */
    ct_node **items;
    ct_pair *pairs;
};

/* Reads one YAML document into *root. Places are "name:line:col" unless `label`
 * is given, in which case every node's place is `label` (override values).
 * An empty stream or document leaves *root NULL and returns 0. Rejects aliases,
 * anchors, duplicate keys, non-scalar keys and several documents. */
int dp_ct_parse(const char *name, const char *label, const char *text, size_t len, ct_node **root,
                dp_error *err);

/* Frees a node and everything below it; NULL is fine. */
void dp_ct_free(ct_node *n);

/* An empty mapping placed at `where`. */
ct_node *dp_ct_new_map(const char *where);

/* The pair for `key` in a mapping, or NULL. */
ct_pair *dp_ct_map_find(const ct_node *map, const char *key);

/* Sets map[key] = val, replacing (and freeing) any old value; takes val. */
void dp_ct_map_put(ct_node *map, const char *key, const char *key_where, ct_node *val);

/* 1 for a plain scalar that YAML reads as null ("", "~", "null"). */
int dp_ct_is_null(const ct_node *n);

/* "a list", "a mapping", "an empty value" or "'text'", for "got ..." messages. */
const char *dp_ct_describe(const ct_node *n, char *buf, size_t cap);

typedef struct cs_key cs_key; /* a key of the schema, config_schema.h */

/* Applies one "dotted.key=value" override to the tree under `root` (a mapping),
 * checking each key against the schema below `top` (dp_cs_root). Errors are
 * placed at "--set <key>". */
int dp_ct_apply_set(ct_node *root, const cs_key *top, const char *arg, dp_error *err);

/* The candidate (NULL-terminated list) nearest to `word` by edit distance,
 * ignoring case, or NULL if none is close enough to be a plausible typo. */
const char *dp_cfg_suggest(const char *word, const char *const *cands);

/* Writes "a, b, c" into buf. */
char *dp_cfg_join(const char *const *names, char *buf, size_t cap);

/* Appends " (did you mean 'x'?)" when a candidate is close, and "; valid <what>:
 * a, b, c" when none is or when `always_list` is set. */
void dp_cfg_hint(char *msg, size_t cap, const char *word, const char *const *cands,
                 const char *what, int always_list);

#endif
