/* config_optim.c - the optimizer's defaults and ranges, read from the schema's
 * optimizer tables so that the parser and dp_optim_init agree. */
#include <string.h>

#include "config/config_schema.h"

/* The keys of `kind`, or NULL for a kind with no table. */
static const cs_key *optim_table(dp_optim_kind kind) {
    for (int i = 0; dp_cs_optimizers[i].key; i++)
        if (i == (int)kind) return dp_cs_optimizers[i].sub->keys;
    return NULL;
}

/* Sets the negative fields among `keys` to their default, or to 0. */
static void fill_unset(dp_optim_cfg *cfg, const cs_key *keys, int use_default) {
    for (const cs_key *k = keys; k->key; k++) {
        double d = use_default ? k->def : 0;
        if (k->type == CS_NUMBER && cs_get_double(cfg, k->offset) < 0)
            cs_put_double(cfg, k->offset, d);
        if (k->type == CS_BOOL && cs_get_int(cfg, k->offset) < 0)
            cs_put_int(cfg, k->offset, (int)d);
    }
}

void dp_cs_optim_fill_defaults(dp_optim_cfg *cfg) {
    const cs_key *mine = optim_table(cfg->kind);
    if (mine) fill_unset(cfg, mine, 1);
    /* Fields the kind does not use are set to 0 so a stored config reads cleanly. */
    for (const cs_key *v = dp_cs_optimizers; v->key; v++)
        if (v->sub->keys != mine) fill_unset(cfg, v->sub->keys, 0);
}

int dp_cs_optim_check(const dp_optim_cfg *cfg, dp_error *err) {
    const char *where = "optimizer";
    const cs_key *keys = optim_table(cfg->kind);
    if (!keys) return dp_error_set(err, where, "unknown optimizer kind %d", (int)cfg->kind);
    const char *name = dp_config_name_optim(cfg->kind);
    char range[64];
    for (const cs_key *k = keys; k->key; k++) {
        if (k->type == CS_NUMBER && !dp_cs_in_range(k, cs_get_double(cfg, k->offset)))
            return dp_error_set(err, where, "%s %s must be %s, got %g", name, k->field,
                                dp_cs_range_text(k, range, sizeof range),
                                cs_get_double(cfg, k->offset));
        if (k->type == CS_BOOL && cs_get_int(cfg, k->offset) != 0 &&
            cs_get_int(cfg, k->offset) != 1)
            return dp_error_set(err, where, "%s %s must be true or false, got %d", name, k->field,
                                cs_get_int(cfg, k->offset));
    }
    return 0;
}
