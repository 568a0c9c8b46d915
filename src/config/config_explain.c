/* config_explain.c - `dptrain config --explain`: every key of the schema tables
 * with its type, default, range and meaning, so the reference cannot drift from
 * what the parser accepts. */
#include <stdio.h>
#include <string.h>

#include "config/config_schema.h"

/* Wide enough for the longest path, "model.layers.N.maxpool2d.pool_size";
 * columns are separated by at least two spaces so a reader can split them. */
#define PATH_W 48
#define TYPE_W 16
#define DEFAULT_W 12

static const char *type_name(const cs_key *k) {
    switch (k->type) {
    case CS_STRING: return "string";
    case CS_BOOL: return "boolean";
    case CS_INT:
    case CS_UINT64: return "integer";
    case CS_NUMBER: return k->ratio ? "number or a/b" : "number";
    case CS_ENUM: return "name";
    case CS_INT_PAIR: return "int or [h, w]";
    case CS_SECTION:
    case CS_ONE_OF: return "mapping";
    case CS_OPTIMIZER: return "name or mapping";
    case CS_SCHEDULE: return "number or mapping";
    case CS_DIMS: return "list of ints";
    case CS_LAYERS: return "list of layers";
    case CS_METRICS: return "list of names";
    }
    return "?";
}

/* The default as the config would write it; "-" for an optional mapping. */
static const char *default_text(const cs_key *k, char *buf, size_t cap) {
    if (k->required) return "required";
    if (k->def_note) return k->def_note;
    if (k->type == CS_SCHEDULE) { /* its number; the mapping has no default */
        snprintf(buf, cap, "%g", k->def);
        return buf;
    }
    if (!dp_cs_is_value(k)) return "-";
    /* Written by the same code that fills a loaded config, then formatted. */
    union {
        int i[2];
        double d;
        unsigned long long u;
    } scratch = {{0, 0}};
    cs_key at_zero = *k;
    at_zero.offset = 0;
    dp_cs_apply_defaults(&at_zero, &scratch);
    return dp_cs_format_value(&at_zero, &scratch, buf, cap);
}

static const char *range_text(const cs_key *k, char *buf, size_t cap) {
    const char *names[64];
    char each[64];
    switch (k->type) {
    case CS_DIMS:
        snprintf(buf, cap, "1 to %d entries, each %s", DP_MAX_DIMS,
                 dp_cs_range_text(k->elem, each, sizeof each));
        return buf;
    case CS_LAYERS: snprintf(buf, cap, "1 to %d entries", DP_MAX_LAYERS); return buf;
    case CS_METRICS:
        dp_cs_enum_names(k->elem, names, 64);
        snprintf(buf, cap, "each one of: ");
        for (size_t i = 0; names[i]; i++)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "", names[i]);
        return buf;
    default: return dp_cs_range_text(k, buf, cap);
    }
}

static void print_line(FILE *out, const char *path, const cs_key *k, const char *help) {
    char def[128], range[512], line[1024];
    snprintf(line, sizeof line, "%-*s  %-*s  %-*s  %s", PATH_W, path, TYPE_W, type_name(k),
             DEFAULT_W, default_text(k, def, sizeof def), range_text(k, range, sizeof range));
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == ' ') line[--n] = '\0'; /* no range: no trailing blanks */
    fprintf(out, "%s\n    %s\n", line, help);
}

static void explain_key(FILE *out, const cs_key *k, const char *path);

/* The keys of a name-or-mapping key (CS_SCHEDULE): its common keys, then each
 * variant's, marked with the name that selects them. */
static void explain_variants(FILE *out, const cs_key *k, const char *path) {
    char sub[160];
    for (const cs_key *f = k->sub->keys; f->key; f++) {
        snprintf(sub, sizeof sub, "%s.%s", path, f->key);
        print_line(out, sub, f, f->help);
    }
    for (const cs_key *v = k->variants; v->key; v++) {
        snprintf(sub, sizeof sub, "%s (%s)", path, v->key);
        print_line(out, sub, v, v->help);
        for (const cs_key *f = v->sub->keys; f->key; f++) {
            snprintf(sub, sizeof sub, "%s.%s (%s)", path, f->key, v->key);
            print_line(out, sub, f, f->help);
        }
    }
}

static void explain_keys(FILE *out, const cs_key *keys, const char *prefix) {
    char path[128];
    for (const cs_key *k = keys; k->key; k++) {
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", k->key);
        explain_key(out, k, path);
    }
}

static void explain_key(FILE *out, const cs_key *k, const char *path) {
    char sub[128];
    print_line(out, path, k, k->help);
    if (k->type == CS_SECTION) explain_keys(out, k->sub->keys, path);
    if (k->type == CS_LAYERS) {
        for (const cs_key *t = k->elem->variants; t->key; t++) {
            snprintf(sub, sizeof sub, "%s.N.%s", path, t->key);
            explain_key(out, t, sub);
        }
    }
    if (k->type == CS_OPTIMIZER) {
        explain_keys(out, k->sub->keys, path);
        /* Each optimizer's keys, marked with the name that selects them. */
        const cs_key *schedule = NULL;
        for (const cs_key *v = k->variants; v->key; v++) {
            snprintf(sub, sizeof sub, "%s (%s)", path, v->key);
            print_line(out, sub, v, v->help);
            for (const cs_key *f = v->sub->keys; f->key; f++) {
                snprintf(sub, sizeof sub, "%s.%s (%s)", path, f->key, v->key);
                print_line(out, sub, f, f->help);
                if (f->type == CS_SCHEDULE && !schedule) schedule = f;
            }
        }
        /* Every optimizer's learning_rate takes the same schedules: listed once. */
        if (schedule) {
            snprintf(sub, sizeof sub, "%s.%s", path, schedule->key);
            explain_variants(out, schedule, sub);
        }
    }
}

int dp_config_explain(FILE *out) {
    fprintf(out,
            "The keys of a dptrain run configuration (YAML), from the tables the parser\n"
            "uses. KEY is the dotted path --set takes; in model.layers.N, N is the layer's\n"
            "position, and a key marked (adam) applies when the optimizer's name is adam.\n\n");
    fprintf(out, "%-*s  %-*s  %-*s  %s\n", PATH_W, "KEY", TYPE_W, "TYPE", DEFAULT_W, "DEFAULT",
            "RANGE");
    explain_keys(out, dp_cs_root.sub->keys, "");
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
