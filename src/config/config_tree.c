/* config_tree.c - YAML text to a small tree that remembers where every node was
 * written, and `--set dotted.key=value` overrides applied to that tree. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/config_internal.h"
#include "config/config_schema.h"
#include "core/alloc.h"

/* Deeper nesting than any valid config needs; the bound keeps hostile input
 * from growing the builder stack without limit. */
#define CT_MAX_DEPTH 64
#define CT_MAX_PARTS 16

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = DP_MALLOC(n);
    memcpy(d, s, n);
    return d;
}

static ct_node *node_new(ct_kind kind, const char *where) {
    ct_node *n = DP_CALLOC(1, sizeof *n);
    n->kind = kind;
    n->where = dup_str(where);
    return n;
}

ct_node *dp_ct_new_map(const char *where) {
    return node_new(CT_MAP, where);
}

void dp_ct_free(ct_node *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == CT_SEQ) {
            dp_ct_free(n->items[i]);
        } else if (n->kind == CT_MAP) {
            free(n->pairs[i].key);
            free(n->pairs[i].key_where);
            dp_ct_free(n->pairs[i].val);
        }
    }
    free(n->items);
    free(n->pairs);
    free(n->value);
    free(n->where);
    free(n);
}

static void seq_append(ct_node *seq, ct_node *item) {
    if (seq->n == seq->cap) {
        size_t cap = seq->cap ? 2 * seq->cap : 4;
        ct_node **items = DP_MALLOC(cap * sizeof *items);
        if (seq->n) memcpy(items, seq->items, seq->n * sizeof *items);
        free(seq->items);
        seq->items = items;
        seq->cap = cap;
    }
    seq->items[seq->n++] = item;
}

/* Takes ownership of key, key_where and val. */
static void map_append(ct_node *map, char *key, char *key_where, ct_node *val) {
    if (map->n == map->cap) {
        size_t cap = map->cap ? 2 * map->cap : 4;
        ct_pair *pairs = DP_MALLOC(cap * sizeof *pairs);
        if (map->n) memcpy(pairs, map->pairs, map->n * sizeof *pairs);
        free(map->pairs);
        map->pairs = pairs;
        map->cap = cap;
    }
    map->pairs[map->n++] = (ct_pair){key, key_where, val};
}

ct_pair *dp_ct_map_find(const ct_node *map, const char *key) {
    if (!map || map->kind != CT_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key, key) == 0) return &map->pairs[i];
    return NULL;
}

void dp_ct_map_put(ct_node *map, const char *key, const char *key_where, ct_node *val) {
    ct_pair *p = dp_ct_map_find(map, key);
    if (p) {
        dp_ct_free(p->val);
        p->val = val;
        free(p->key_where);
        p->key_where = dup_str(key_where);
        return;
    }
    map_append(map, dup_str(key), dup_str(key_where), val);
}

int dp_ct_is_null(const ct_node *n) {
    if (!n || n->kind != CT_SCALAR || !n->plain) return 0;
    const char *v = n->value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *dp_ct_describe(const ct_node *n, char *buf, size_t cap) {
    if (!n || dp_ct_is_null(n)) snprintf(buf, cap, "an empty value");
    else if (n->kind == CT_SEQ) snprintf(buf, cap, "a list");
    else if (n->kind == CT_MAP) snprintf(buf, cap, "a mapping");
    else snprintf(buf, cap, "'%.200s'", n->value);
    return buf;
}

/* ---- YAML events to tree ---- */

typedef struct frame {
    ct_node *node;
    char *key; /* a mapping's key waiting for its value */
    char *key_where;
} frame;

typedef struct builder {
    const char *name;
    const char *label;
    ct_node *root;
    frame stack[CT_MAX_DEPTH];
    int depth;
    int docs;
    dp_error *err;
} builder;

static void place(const builder *b, yaml_mark_t m, char *buf, size_t cap) {
    if (b->label) snprintf(buf, cap, "%s", b->label);
    else snprintf(buf, cap, "%s:%zu:%zu", b->name, m.line + 1, m.column + 1);
}

static int fail_at(builder *b, yaml_mark_t m, const char *what) {
    char where[300];
    place(b, m, where, sizeof where);
    return dp_error_set(b->err, where, "%s", what);
}

/* Takes node: it ends up in the tree or is freed. */
static int attach(builder *b, ct_node *node) {
    if (b->depth == 0) {
        b->root = node;
        return 0;
    }
    frame *top = &b->stack[b->depth - 1];
    if (top->node->kind == CT_SEQ) {
        seq_append(top->node, node);
        return 0;
    }
    if (top->key) {
        map_append(top->node, top->key, top->key_where, node);
        top->key = top->key_where = NULL;
        return 0;
    }
    if (node->kind != CT_SCALAR) {
        dp_error_set(b->err, node->where, "a mapping key must be a plain name, not %s",
                     node->kind == CT_SEQ ? "a list" : "a mapping");
        dp_ct_free(node);
        return -1;
    }
    ct_pair *dup = dp_ct_map_find(top->node, node->value);
    if (dup) {
        dp_error_set(b->err, node->where, "duplicate key '%.200s' (already set at %.200s)",
                     node->value, dup->key_where);
        dp_ct_free(node);
        return -1;
    }
    top->key = node->value;
    top->key_where = node->where;
    free(node);
    return 0;
}

static int check_anchor(builder *b, const yaml_event_t *ev, const yaml_char_t *anchor) {
    if (!anchor) return 0;
    char what[300];
    snprintf(what, sizeof what, "YAML anchors ('&%.200s') are not supported; write the value out",
             (const char *)anchor);
    return fail_at(b, ev->start_mark, what);
}

/* Only the core tags that do not change meaning are allowed: !!str forces a
 * string, the others just restate what the plain text already says. */
static int check_tag(builder *b, const yaml_event_t *ev, const yaml_char_t *tag, int *forced_str) {
    if (!tag) return 0;
    const char *t = (const char *)tag;
    if (strcmp(t, YAML_STR_TAG) == 0) {
        if (forced_str) *forced_str = 1;
        return 0;
    }
    if (strcmp(t, YAML_INT_TAG) == 0 || strcmp(t, YAML_FLOAT_TAG) == 0 ||
        strcmp(t, YAML_BOOL_TAG) == 0 || strcmp(t, YAML_NULL_TAG) == 0 ||
        strcmp(t, YAML_SEQ_TAG) == 0 || strcmp(t, YAML_MAP_TAG) == 0)
        return 0;
    char what[300];
    snprintf(what, sizeof what, "YAML tag '%.200s' is not supported", t);
    return fail_at(b, ev->start_mark, what);
}

static int on_event(builder *b, const yaml_event_t *ev) {
    char where[300];
    ct_node *node;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs++ > 0)
            return fail_at(b, ev->start_mark,
                           "more than one YAML document ('---'); a config is one document");
        return 0;
    case YAML_ALIAS_EVENT: {
        char what[300];
        snprintf(what, sizeof what,
                 "YAML aliases ('*%.200s') are not supported; write the value out",
                 (const char *)ev->data.alias.anchor);
        return fail_at(b, ev->start_mark, what);
    }
    case YAML_SCALAR_EVENT: {
        int forced_str = 0;
        if (check_anchor(b, ev, ev->data.scalar.anchor) ||
            check_tag(b, ev, ev->data.scalar.tag, &forced_str))
            return -1;
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
            return fail_at(b, ev->start_mark, "a NUL character is not allowed in a value");
        place(b, ev->start_mark, where, sizeof where);
        node = node_new(CT_SCALAR, where);
        node->value = dup_str((const char *)ev->data.scalar.value);
        node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !forced_str;
        return attach(b, node);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int seq = ev->type == YAML_SEQUENCE_START_EVENT;
        if (check_anchor(b, ev,
                         seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor) ||
            check_tag(b, ev, seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag, NULL))
            return -1;
        if (b->depth == CT_MAX_DEPTH)
            return fail_at(b, ev->start_mark, "the YAML is nested too deeply");
        place(b, ev->start_mark, where, sizeof where);
        node = node_new(seq ? CT_SEQ : CT_MAP, where);
        if (attach(b, node)) return -1;
        b->stack[b->depth++] = (frame){node, NULL, NULL};
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: b->depth--; return 0;
    default: return 0;
    }
}

/* libyaml's reader errors carry a byte offset rather than a line. */
static yaml_mark_t offset_mark(const char *text, size_t len, size_t off) {
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static int parse_failed(builder *b, const yaml_parser_t *p, const char *text, size_t len) {
    char what[600];
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        m = offset_mark(text, len, p->problem_offset);
        snprintf(what, sizeof what, "not valid YAML: %s",
                 p->problem ? p->problem : "unreadable text");
    } else if (p->problem && p->context) {
        snprintf(what, sizeof what, "not valid YAML: %s (%s that started at line %zu, column %zu)",
                 p->problem, p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    } else {
        snprintf(what, sizeof what, "not valid YAML: %s",
                 p->problem ? p->problem : "parser out of memory");
    }
    return fail_at(b, m, what);
}

int dp_ct_parse(const char *name, const char *label, const char *text, size_t len, ct_node **root,
                dp_error *err) {
    builder b = {.name = name, .label = label, .err = err};
    yaml_parser_t p;
    *root = NULL;
    if (!yaml_parser_initialize(&p))
        return dp_error_set(err, label ? label : name, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_failed(&b, &p, text, len);
            break;
        }
        int done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
        if (rc || done) break;
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < b.depth; i++) {
        free(b.stack[i].key);
        free(b.stack[i].key_where);
    }
    if (rc) {
        dp_ct_free(b.root);
        return -1;
    }
    /* "---" alone, or only comments: nothing was written. */
    if (b.root && b.root->kind == CT_SCALAR && b.root->plain && b.root->value[0] == '\0') {
        dp_ct_free(b.root);
        b.root = NULL;
    }
    *root = b.root;
    return 0;
}

/* ---- --set overrides ---- */

static void trim(char *s) {
    size_t n = strlen(s), a = 0;
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    while (isspace((unsigned char)s[a])) a++;
    memmove(s, s + a, n - a + 1);
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Turns a bare scalar standing for a mapping ("optimizer: adam") or an empty
 * value ("checkpoint:") into the mapping it means, so keys can be set inside. */
static void widen_to_map(ct_node *node, const cs_key *spec) {
    if (node->kind != CT_SCALAR) return;
    if (dp_ct_is_null(node)) {
        free(node->value);
        node->value = NULL;
        node->kind = CT_MAP;
    } else if (spec->type == CS_OPTIMIZER) {
        ct_node *v = node_new(CT_SCALAR, node->where);
        v->value = node->value;
        v->plain = node->plain;
        node->value = NULL;
        node->kind = CT_MAP;
        /* "optimizer: adam" means {name: adam}. */
        map_append(node, dup_str(spec->sub->keys[0].key), dup_str(node->where), v);
    }
}

/* Walks key parts down the tree and the schema together; takes val. */
static int set_path(ct_node *root, const cs_key *top, char **parts, int n_parts, const char *label,
                    ct_node *val, dp_error *err) {
    ct_node *node = root;
    const cs_key *spec = top;
    char path[300] = "";
    char got[256];
    for (int i = 0; i < n_parts; i++) {
        const char *part = parts[i];
        int last = i == n_parts - 1;
        if (!dp_cs_is_value(spec) && !dp_cs_is_list(spec)) { /* a mapping */
            widen_to_map(node, spec);
            if (node->kind != CT_MAP) {
                dp_error_set(err, label,
                             "cannot set '%s' inside '%s': it is %s at %s, not a mapping", part,
                             path, dp_ct_describe(node, got, sizeof got), node->where);
                goto fail;
            }
            const cs_key *kid = dp_cs_find(spec, part);
            if (!kid) {
                const char *names[64];
                const char *noun = spec->type == CS_ONE_OF ? spec->noun : "key";
                char msg[700], plural[64];
                dp_cs_names(spec, names, 64);
                if (path[0])
                    snprintf(msg, sizeof msg, "unknown %s '%.200s' in '%s'", noun, part, path);
                else snprintf(msg, sizeof msg, "unknown top-level %s '%.200s'", noun, part);
                snprintf(plural, sizeof plural, "%ss", noun);
                dp_cfg_hint(msg, sizeof msg, part, names, plural, 0);
                dp_error_set(err, label, "%s", msg);
                goto fail;
            }
            if (last) {
                dp_ct_map_put(node, part, label, val);
                return 0;
            }
            if (dp_cs_is_value(kid)) {
                dp_error_set(err, label, "'%s%s%s' takes a single value; it has no key '%s'", path,
                             path[0] ? "." : "", part, parts[i + 1]);
                goto fail;
            }
            ct_pair *p = dp_ct_map_find(node, part);
            if (!p && dp_cs_is_list(kid)) {
                dp_error_set(err, label, "'%s%s%s' is not in the config, so it has no entry '%s'",
                             path, path[0] ? "." : "", part, parts[i + 1]);
                goto fail;
            }
            if (!p) {
                dp_ct_map_put(node, part, label, dp_ct_new_map(label));
                p = dp_ct_map_find(node, part);
            }
            node = p->val;
            spec = kid;
        } else if (dp_cs_is_value(spec)) {
            /* A list entry that is a single value ("model.input.0"), written as a
             * list in the file: there is no schema below it to walk. */
            dp_error_set(err, label, "'%s' takes a single value; it has no entry '%s'", path, part);
            goto fail;
        } else { /* a list */
            if (!all_digits(part)) {
                dp_error_set(err, label,
                             "'%s' is a list; expected an entry number such as '%s.0', got '%s'",
                             path, path, part);
                goto fail;
            }
            if (node->kind != CT_SEQ) {
                dp_error_set(err, label, "cannot index '%s': it is %s at %s, not a list", path,
                             dp_ct_describe(node, got, sizeof got), node->where);
                goto fail;
            }
            size_t idx = strlen(part) > 9 ? (size_t)-1 : strtoul(part, NULL, 10);
            if (idx >= node->n) {
                dp_error_set(err, label, "entry %s is out of range: '%s' has %zu entr%s", part,
                             path, node->n, node->n == 1 ? "y" : "ies");
                goto fail;
            }
            if (last) {
                dp_ct_free(node->items[idx]);
                node->items[idx] = val;
                return 0;
            }
            node = node->items[idx];
            spec = spec->elem;
        }
        size_t used = strlen(path);
        snprintf(path + used, sizeof path - used, "%s%s", used ? "." : "", part);
    }
fail:
    dp_ct_free(val);
    return -1;
}

int dp_ct_apply_set(ct_node *root, const cs_key *top, const char *arg, dp_error *err) {
    char label[300];
    const char *eq = strchr(arg, '=');
    snprintf(label, sizeof label, "--set %.200s", arg);
    if (!eq) return dp_error_set(err, label, "expected key=value, e.g. --set train.epochs=10");
    size_t klen = (size_t)(eq - arg);
    char *key = DP_MALLOC(klen + 1);
    memcpy(key, arg, klen);
    key[klen] = '\0';
    trim(key);
    if (!key[0]) {
        free(key);
        return dp_error_set(err, label,
                            "empty key before '=', expected e.g. --set train.epochs=10");
    }
    snprintf(label, sizeof label, "--set %.200s", key);

    char *parts[CT_MAX_PARTS];
    int n_parts = 0, rc = -1;
    for (char *s = key;;) {
        char *dot = strchr(s, '.');
        if (dot) *dot = '\0';
        if (!*s) {
            dp_error_set(err, label,
                         "empty part in the key; write it as section.key, e.g. train.epochs");
            goto out;
        }
        if (n_parts == CT_MAX_PARTS) {
            dp_error_set(err, label, "the key has more than %d parts", CT_MAX_PARTS);
            goto out;
        }
        parts[n_parts++] = s;
        if (!dot) break;
        s = dot + 1;
    }

    ct_node *val = NULL;
    const char *text = eq + 1;
    if (dp_ct_parse(label, label, text, strlen(text), &val, err)) goto out;
    if (!val) {
        dp_error_set(err, label, "missing value after '=' (write key=\"\" for an empty string)");
        goto out;
    }
    rc = set_path(root, top, parts, n_parts, label, val, err);
out:
    free(key);
    return rc;
}
