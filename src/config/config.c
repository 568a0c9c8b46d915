/* config.c - the config walker: checks the YAML tree against the schema tables
 * (config_schema.c) key by key and turns it into dp_config, placing every error
 * at the offending key or value. */
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
#include "config/config_schema.h"

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
            return dp_error_set(c->err, n->where,
                                "%s: %.200s is too large for an integer (at most %lld)", path, s,
                                hi);
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

/* "a/b" as a/b: YAML reads `scale: 1/255` as a string. Both parts are numbers. */
static int read_ratio(ctx *c, const ct_node *n, const char *path, double *out) {
    if (need_scalar(c, n, path, "a number or a fraction a/b")) return -1;
    const char *s = n->value, *slash = strchr(s, '/');
    char a[128] = "", b[128] = "";
    size_t la = (size_t)(slash - s), lb = strlen(slash + 1);
    int ok = la > 0 && lb > 0 && la < sizeof a && lb < sizeof b;
    if (ok) {
        memcpy(a, s, la), a[la] = '\0';
        memcpy(b, slash + 1, lb + 1);
    }
    char *ea = NULL, *eb = NULL;
    ok = ok && strspn(a, "0123456789+-.eE") == la && strspn(b, "0123456789+-.eE") == lb &&
         strpbrk(a, "0123456789") && strpbrk(b, "0123456789");
    double num = ok ? strtod(a, &ea) : 0, den = ok ? strtod(b, &eb) : 0;
    if (!ok || *ea || *eb)
        return dp_error_set(c->err, n->where,
                            "%s: expected a number or a fraction a/b, got '%.200s'", path, s);
    double v = num / den;
    if (den == 0 || !isfinite(num) || !isfinite(den) || !isfinite(v))
        return dp_error_set(c->err, n->where, "%s: %.200s is not a finite number", path, s);
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

/* A mapping whose keys are all in the schema mapping `spec`. */
static int check_map(ctx *c, const ct_node *n, const char *path, const cs_key *spec,
                     const char *example) {
    char got[256], msg[700];
    if (n->kind != CT_MAP)
        return dp_error_set(c->err, n->where, "%s: expected a mapping such as %s, got %s", path,
                            example, dp_ct_describe(n, got, sizeof got));
    const char *names[64];
    dp_cs_names(spec, names, 64);
    for (size_t i = 0; i < n->n; i++) {
        const char *key = n->pairs[i].key;
        if (dp_cs_find(spec, key)) continue;
        if (path[0]) snprintf(msg, sizeof msg, "unknown key '%.200s' in '%s'", key, path);
        else snprintf(msg, sizeof msg, "unknown top-level key '%.200s'", key);
        if (names[0]) dp_cfg_hint(msg, sizeof msg, key, names, "keys", 0);
        else snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; it takes no keys");
        return dp_error_set(c->err, n->pairs[i].key_where, "%s", msg);
    }
    return 0;
}

/* "section.key", or "key" at the top level. */
static const char *join_path(char *buf, size_t cap, const char *path, const char *key) {
    snprintf(buf, cap, "%.120s%s%.60s", path, path[0] ? "." : "", key);
    return buf;
}

/* ---- single values: read as the key's type, checked against its range ---- */

static int read_value(ctx *c, const ct_node *n, const char *path, const cs_key *k, void *at) {
    int i = 0, pair[2];
    long long ll;
    double x = 0;
    char range[64];
    if (k->nullable && dp_ct_is_null(n)) return 0; /* null: the default stands */
    switch (k->type) {
    case CS_STRING:
        if (need_scalar(c, n, path, k->noun)) return -1;
        if (strlen(n->value) < (size_t)k->lo)
            return dp_error_set(c->err, n->where, "%s: must not be empty", path);
        if (strlen(n->value) > (size_t)k->hi)
            return dp_error_set(c->err, n->where, "%s: longer than %zu characters", path,
                                (size_t)k->hi);
        memcpy(at, n->value, strlen(n->value) + 1);
        return 0;
    case CS_BOOL:
        if (read_bool(c, n, path, &i)) return -1;
        memcpy(at, &i, sizeof i);
        return 0;
    case CS_INT:
        if (read_int(c, n, path, (int)k->lo, &i)) return -1;
        memcpy(at, &i, sizeof i);
        return 0;
    case CS_UINT64: {
        if (read_ll(c, n, path, (long long)k->lo, LLONG_MAX, &ll)) return -1;
        unsigned long long u = (unsigned long long)ll;
        memcpy(at, &u, sizeof u);
        return 0;
    }
    case CS_NUMBER:
    case CS_SCHEDULE: /* its number form */
        if (k->ratio && n->kind == CT_SCALAR && strchr(n->value, '/')) {
            if (read_ratio(c, n, path, &x)) return -1;
        } else if (read_double(c, n, path, &x)) {
            return -1;
        }
        if (!dp_cs_in_range(k, x))
            return dp_error_set(c->err, n->where, "%s: must be %s, got %.200s", path,
                                dp_cs_range_text(k, range, sizeof range), n->value);
        memcpy(at, &x, sizeof x);
        return 0;
    case CS_ENUM: {
        const char *names[64];
        dp_cs_enum_names(k, names, 64);
        if (read_enum(c, n, path, k->noun, names, &i)) return -1;
        memcpy(at, &i, sizeof i);
        return 0;
    }
    case CS_INT_PAIR:
        if (read_int_pair(c, n, path, (int)k->lo, pair)) return -1;
        memcpy(at, pair, sizeof pair);
        return 0;
    default: return dp_error_set(c->err, n->where, "%s: not a single value in the schema", path);
    }
}

/* ---- structure ---- */

static int parse_key(ctx *c, const ct_node *n, const char *path, const cs_key *k, void *target);

/* The mapping n against the section (or layer type) `sec`: its keys in table
 * order, required ones present, then the section's dependent defaults. */
static int parse_section(ctx *c, const ct_node *n, const char *path, const cs_key *sec,
                         void *target) {
    char key[192];
    if (check_map(c, n, path, sec, sec->sub->example)) return -1;
    for (const cs_key *k = sec->sub->keys; k->key; k++) {
        const ct_node *v = get(n, k->key);
        if (!v && k->required)
            return dp_error_set(c->err, n->where, "missing required key '%s'",
                                join_path(key, sizeof key, path, k->key));
        if (v && parse_key(c, v, join_path(key, sizeof key, path, k->key), k, target)) return -1;
    }
    if (sec->sub->finish) sec->sub->finish(target);
    return 0;
}

static int parse_layer(ctx *c, const ct_node *entry, int i, const cs_key *elem, dp_layer_cfg *out) {
    char path[64], got[256], msg[700];
    snprintf(path, sizeof path, "model.layers.%d", i);
    if (entry->kind != CT_MAP || entry->n != 1)
        return dp_error_set(c->err, entry->where,
                            "%s: expected one layer such as {dense: {units: 64}}, got %s%s", path,
                            entry->kind == CT_MAP ? "a mapping with " : "",
                            entry->kind == CT_MAP ? (entry->n ? "several keys" : "no keys")
                                                  : dp_ct_describe(entry, got, sizeof got));
    const ct_pair *p = &entry->pairs[0];
    const cs_key *type = dp_cs_find(elem, p->key);
    if (!type) {
        const char *names[64];
        dp_cs_names(elem, names, 64);
        snprintf(msg, sizeof msg, "%s: unknown layer type '%.200s'", path, p->key);
        dp_cfg_hint(msg, sizeof msg, p->key, names, "layer types", 1);
        return dp_error_set(c->err, p->key_where, "%s", msg);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->type, sizeof out->type, "%s", type->key);
    snprintf(out->where, sizeof out->where, "%s", entry->where);
    dp_cs_apply_defaults(type, out);

    /* "- dense:" with nothing after it reads as null: report the missing keys. */
    ct_node empty = {.kind = CT_MAP, .where = p->val->where};
    const ct_node *params = dp_ct_is_null(p->val) ? &empty : p->val;
    size_t len = strlen(path);
    snprintf(path + len, sizeof path - len, ".%s", type->key);
    return parse_section(c, params, path, type, out);
}

static int parse_layers(ctx *c, const ct_node *n, const char *path, const cs_key *k,
                        dp_config *cfg) {
    char got[256];
    if (n->kind != CT_SEQ || n->n == 0)
        return dp_error_set(
            c->err, n->where,
            "%s: expected a non-empty list of layers such as "
            "[{dense: {units: 1}}], got %s",
            path, n->kind == CT_SEQ ? "an empty list" : dp_ct_describe(n, got, sizeof got));
    if (n->n > DP_MAX_LAYERS)
        return dp_error_set(c->err, n->where, "%s: %zu layers, at most %d are supported", path,
                            n->n, DP_MAX_LAYERS);
    cfg->n_layers = (int)n->n;
    for (size_t i = 0; i < n->n; i++)
        if (parse_layer(c, n->items[i], (int)i, k->elem, &cfg->layers[i])) return -1;
    return 0;
}

static int parse_dims(ctx *c, const ct_node *n, const char *path, const cs_key *k,
                      dp_shape *shape) {
    char got[256], key[192];
    if (n->kind != CT_SEQ || n->n < 1 || n->n > DP_MAX_DIMS)
        return dp_error_set(
            c->err, n->where,
            "%s: expected a list of 1 to %d positive integers such as [20], got %s%s", path,
            DP_MAX_DIMS, n->kind == CT_SEQ ? (n->n ? "a longer list" : "an empty list") : "",
            n->kind == CT_SEQ ? "" : dp_ct_describe(n, got, sizeof got));
    shape->ndim = (int)n->n;
    for (size_t i = 0; i < n->n; i++) {
        snprintf(key, sizeof key, "%.160s.%zu", path, i);
        if (read_value(c, n->items[i], key, k->elem, &shape->dim[i])) return -1;
    }
    return 0;
}

static int parse_metrics(ctx *c, const ct_node *n, const char *path, const cs_key *k, void *flag) {
    char got[256], key[192];
    if (dp_ct_is_null(n)) return 0;
    if (n->kind != CT_SEQ)
        return dp_error_set(c->err, n->where, "%s: expected a list such as [accuracy], got %s",
                            path, dp_ct_describe(n, got, sizeof got));
    for (size_t i = 0; i < n->n; i++) {
        int m, on = 1;
        snprintf(key, sizeof key, "%.160s.%zu", path, i);
        if (read_value(c, n->items[i], key, k->elem, &m)) return -1;
        memcpy(flag, &on, sizeof on); /* accuracy, the only metric so far */
    }
    return 0;
}

/* The keys of the variant `mine` of a name-or-mapping key (an optimizer, a
 * schedule) in n, each into target: any other variant's key is an error. The
 * common keys (the name among them) are read by the caller. */
static int parse_variant_keys(ctx *c, const ct_node *n, const char *path, const cs_key *k,
                              const cs_key *mine, void *target) {
    char key[192];
    for (size_t i = 0; i < n->n; i++) {
        const ct_pair *p = &n->pairs[i];
        if (dp_cs_find(mine, p->key)) continue;
        int common = 0;
        for (const cs_key *f = k->sub->keys; f->key; f++) common |= strcmp(p->key, f->key) == 0;
        if (common) continue;
        const char *takes[64];
        char list[256];
        dp_cs_names(mine, takes, 64);
        return dp_error_set(c->err, p->key_where, "%s.%s does not apply to %s (%s takes: %s)", path,
                            p->key, mine->key, mine->key, dp_cfg_join(takes, list, sizeof list));
    }
    for (const cs_key *f = mine->sub->keys; f->key; f++) {
        const ct_node *v = get(n, f->key);
        join_path(key, sizeof key, path, f->key);
        if (!v && f->required)
            return dp_error_set(c->err, n->where, "missing required key '%s' (%s)", key, mine->key);
        if (v && parse_key(c, v, key, f, target)) return -1;
    }
    return 0;
}

/* A number, or {schedule: NAME, that schedule's keys}. */
static int parse_schedule(ctx *c, const ct_node *n, const char *path, const cs_key *k,
                          void *target) {
    char got[256], key[192];
    const cs_key *name_key = &k->sub->keys[0];
    if (n->kind == CT_SCALAR) {
        cs_put_int(target, name_key->offset, DP_LR_CONSTANT);
        return read_value(c, n, path, k, (char *)target + k->offset);
    }
    if (n->kind != CT_MAP)
        return dp_error_set(c->err, n->where,
                            "%s: expected a number or a mapping such as %s, got %s", path,
                            k->sub->example, dp_ct_describe(n, got, sizeof got));
    if (check_map(c, n, path, k, k->sub->example)) return -1;
    const ct_node *v = get(n, name_key->key);
    join_path(key, sizeof key, path, name_key->key);
    if (!v) return dp_error_set(c->err, n->where, "missing required key '%s'", key);
    int i;
    if (read_value(c, v, key, name_key, &i)) return -1;
    /* The variants are indexed from 1: 0 is the plain number. */
    cs_put_int(target, name_key->offset, i + 1);
    return parse_variant_keys(c, n, path, k, &k->variants[i], target);
}

/* "optimizer: adam", or a mapping with the name and only that optimizer's keys. */
static int parse_optimizer(ctx *c, const ct_node *n, const char *path, const cs_key *k,
                           dp_optim_cfg *o) {
    char got[256], key[192];
    const cs_key *name_key = &k->sub->keys[0];
    if (n->kind == CT_SCALAR) return read_value(c, n, path, name_key, (char *)o + name_key->offset);
    if (n->kind != CT_MAP)
        return dp_error_set(c->err, n->where,
                            "%s: expected a name such as adam or a mapping such as "
                            "{name: adam, learning_rate: 0.001}, got %s",
                            path, dp_ct_describe(n, got, sizeof got));
    if (check_map(c, n, path, k, k->sub->example)) return -1;
    const ct_node *v = get(n, name_key->key);
    join_path(key, sizeof key, path, name_key->key);
    if (!v) return dp_error_set(c->err, n->where, "missing required key '%s'", key);
    if (read_value(c, v, key, name_key, (char *)o + name_key->offset)) return -1;
    for (const cs_key *f = k->sub->keys + 1; f->key; f++)
        if ((v = get(n, f->key)) && parse_key(c, v, join_path(key, sizeof key, path, f->key), f, o))
            return -1;
    /* Keras raises when both are given. */
    if (o->clipnorm > 0 && o->global_clipnorm > 0) {
        const ct_pair *a = dp_ct_map_find(n, "clipnorm"), *b = dp_ct_map_find(n, "global_clipnorm");
        const ct_pair *later = b;
        for (size_t i = 0; i < n->n; i++)
            if (&n->pairs[i] == a || &n->pairs[i] == b) later = &n->pairs[i];
        return dp_error_set(c->err, later->key_where,
                            "%s: clipnorm and global_clipnorm are both set; keep one of them",
                            path);
    }
    return parse_variant_keys(c, n, path, k, &k->variants[o->kind], o);
}

static int parse_key(ctx *c, const ct_node *n, const char *path, const cs_key *k, void *target) {
    char *at = (char *)target + k->offset;
    /* An optional section given as null is absent: its callback stays off. */
    if (k->type == CS_SECTION && k->nullable && dp_ct_is_null(n)) return 0;
    switch (k->type) {
    case CS_SECTION: return parse_section(c, n, path, k, at);
    case CS_OPTIMIZER: return parse_optimizer(c, n, path, k, (dp_optim_cfg *)(void *)at);
    case CS_SCHEDULE: return parse_schedule(c, n, path, k, target);
    case CS_DIMS: return parse_dims(c, n, path, k, (dp_shape *)(void *)at);
    case CS_LAYERS: return parse_layers(c, n, path, k, (dp_config *)target);
    case CS_METRICS: return parse_metrics(c, n, path, k, at);
    case CS_ONE_OF: return dp_error_set(c->err, n->where, "%s: not a key in the schema", path);
    default: return read_value(c, n, path, k, at);
    }
}

static int parse_root(ctx *c, const ct_node *root, dp_config *cfg) {
    char got[256];
    if (root->kind != CT_MAP)
        return dp_error_set(c->err, root->where,
                            "the top level must be a mapping of sections (data, model, loss, "
                            "optimizer, train, ...), got %s",
                            dp_ct_describe(root, got, sizeof got));
    if (check_map(c, root, "", &dp_cs_root, "")) return -1;
    /* A missing section is reported before any error inside the others, and at
     * the file: the top-level mapping has no better place. */
    for (const cs_key *k = dp_cs_root.sub->keys; k->key; k++)
        if (k->required && !get(root, k->key))
            return dp_error_set(c->err, c->name, "missing required key '%s'", k->key);
    return parse_section(c, root, "", &dp_cs_root, cfg);
}

/* ---- rules across keys ---- */

/* The node at section.key (or the section, or the root) for an error's place. */
static const char *place(const ct_node *root, const char *section, const char *sub,
                         const char *key) {
    const ct_node *n = root, *kid;
    if ((kid = get(n, section)) && kid->kind == CT_MAP) n = kid;
    if (n != root && (kid = get(n, sub)) && kid->kind == CT_MAP) n = kid;
    if (n != root && (kid = get(n, key))) n = kid;
    return n->where;
}

/* A callback watching an accuracy needs it computed; Keras's
 * ReduceLROnPlateau cannot set the rate of a schedule, and neither can ours. */
static int check_callbacks(ctx *c, const ct_node *root, const dp_config *cfg) {
    struct {
        int on, monitor;
        const char *section, *sub;
    } cbs[3] = {
        {cfg->early_stopping.enabled, cfg->early_stopping.monitor, "train", "early_stopping"},
        {cfg->reduce_lr.enabled, cfg->reduce_lr.monitor, "train", "reduce_lr_on_plateau"},
        {cfg->ckpt_best.enabled, cfg->ckpt_best.monitor, "checkpoint", "best"},
    };
    for (int i = 0; i < 3; i++) {
        int acc =
            cbs[i].monitor == DP_MONITOR_ACCURACY || cbs[i].monitor == DP_MONITOR_VAL_ACCURACY;
        if (cbs[i].on && acc && !cfg->metric_accuracy)
            return dp_error_set(c->err, place(root, cbs[i].section, cbs[i].sub, "monitor"),
                                "%s.%s.monitor: %s is not computed; add metrics: [accuracy]",
                                cbs[i].section, cbs[i].sub,
                                dp_config_name_monitor((dp_monitor)cbs[i].monitor));
    }
    int kind = cfg->optim.schedule.kind;
    if (cfg->reduce_lr.enabled && kind != DP_LR_CONSTANT)
        return dp_error_set(c->err, place(root, "train", "reduce_lr_on_plateau", ""),
                            "train.reduce_lr_on_plateau: the optimizer's learning_rate is a %s "
                            "schedule, which a plateau cannot cut (Keras refuses it too); give "
                            "a constant learning_rate or drop one of them",
                            dp_cs_schedules[kind - 1].key);
    return 0;
}

/* ---- loading ---- */

/* The file text, then one "# --set ..." comment per override, so a checkpoint
 * records exactly what ran (dp_config_load_saved reads it back). */
#define SAVED_SET "# --set "

static char *effective_text(const char *text, size_t len, char *const *sets, int n_set) {
    size_t cap = len + 2;
    for (int i = 0; i < n_set; i++) cap += strlen(sets[i]) * 2 + 16;
    char *out = DP_MALLOC(cap);
    size_t used = len;
    if (len) memcpy(out, text, len);
    if (used > 0 && out[used - 1] != '\n') out[used++] = '\n';
    for (int i = 0; i < n_set; i++) {
        used += (size_t)snprintf(out + used, cap - used, SAVED_SET);
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

int dp_config_load_text(dp_config *cfg, const char *name, const char *text, size_t len,
                        char *const *sets, int n_set, dp_error *err) {
    memset(cfg, 0, sizeof *cfg);
    dp_cs_apply_defaults(&dp_cs_root, cfg);
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
        rc = dp_ct_apply_set(root, &dp_cs_root, sets[i], err);
    }
    if (rc == 0) rc = parse_root(&c, root, cfg);
    if (rc == 0) rc = check_callbacks(&c, root, cfg);
    dp_ct_free(root);
    return rc;
}

int dp_config_load_saved(dp_config *cfg, const char *name, const char *text, dp_error *err) {
    /* The trailing run of "# --set" lines: where each starts, and where the run does. */
    size_t len = strlen(text), body = len;
    int n = 0;
    for (size_t at = len; at > 0;) {
        size_t start = at - 1;
        while (start > 0 && text[start - 1] != '\n') start--;
        if (strncmp(text + start, SAVED_SET, strlen(SAVED_SET)) != 0) break;
        body = start;
        at = start;
        n++;
    }
    char **sets = DP_CALLOC((size_t)n + 1, sizeof *sets);
    int i = 0;
    for (size_t at = body; at < len && i < n; i++) {
        const char *s = text + at + strlen(SAVED_SET), *end = strchr(s, '\n');
        if (!end) end = text + len;
        char *v = DP_MALLOC((size_t)(end - s) + 1), *w = v;
        for (; s < end; s++) /* undo effective_text's escapes */
            if (*s == '\\' && s + 1 < end && (s[1] == 'n' || s[1] == 'r'))
                *w++ = *++s == 'n' ? '\n' : '\r';
            else *w++ = *s;
        *w = '\0';
        sets[i] = v;
        at = (size_t)(end - text) + (*end ? 1 : 0);
    }
    int rc = dp_config_load_text(cfg, name, text, body, sets, i, err);
    for (int k = 0; k < i; k++) free(sets[k]);
    free(sets);
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
