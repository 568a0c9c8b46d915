/* config_optim.c - the optimizer's defaults and ranges, read from the schema's
 * optimizer tables so that the parser and dp_optim_init agree. */
#include <math.h>
#include <string.h>

#include "config/config_schema.h"

/* The keys of `kind`, or NULL for a kind with no table. */
static const cs_key *optim_table(dp_optim_kind kind) {
    for (int i = 0; dp_cs_optimizers[i].key; i++)
        if (i == (int)kind) return dp_cs_optimizers[i].sub->keys;
    return NULL;
}

/* Sets the negative fields among `keys` to their default, or to 0. A schedule
 * key's own value is its number. */
static void fill_unset(dp_optim_cfg *cfg, const cs_key *keys, int use_default) {
    for (const cs_key *k = keys; k->key; k++) {
        double d = use_default ? k->def : 0;
        int number = k->type == CS_NUMBER || k->type == CS_SCHEDULE;
        if (number && cs_get_double(cfg, k->offset) < 0) cs_put_double(cfg, k->offset, d);
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

/* One field against its key's range; `what` names it in the error. */
static int check_field(const dp_optim_cfg *cfg, const cs_key *k, const char *what, dp_error *err) {
    char range[64];
    if (k->type == CS_NUMBER || k->type == CS_SCHEDULE) {
        double x = cs_get_double(cfg, k->offset);
        if (k->nullable && isnan(x)) return 0;
        if (!dp_cs_in_range(k, x))
            return dp_error_set(err, "optimizer", "%s %s must be %s, got %g", what, k->field,
                                dp_cs_range_text(k, range, sizeof range), x);
    }
    if (k->type == CS_INT && cs_get_int(cfg, k->offset) < (int)k->lo)
        return dp_error_set(err, "optimizer", "%s %s must be >= %g, got %d", what, k->field, k->lo,
                            cs_get_int(cfg, k->offset));
    if (k->type == CS_BOOL && cs_get_int(cfg, k->offset) != 0 && cs_get_int(cfg, k->offset) != 1)
        return dp_error_set(err, "optimizer", "%s %s must be true or false, got %d", what, k->field,
                            cs_get_int(cfg, k->offset));
    return 0;
}

/* The schedule's fields, when learning_rate is one. */
static int check_schedule(const dp_optim_cfg *cfg, const cs_key *lr, dp_error *err) {
    int kind = (int)cfg->schedule.kind, n = 0;
    while (lr->variants[n].key) n++;
    if (kind < 0 || kind > n)
        return dp_error_set(err, "optimizer", "unknown learning-rate schedule kind %d", kind);
    if (kind == DP_LR_CONSTANT) return check_field(cfg, lr, "learning_rate:", err);
    const cs_key *v = &lr->variants[kind - 1];
    for (const cs_key *k = v->sub->keys; k->key; k++)
        if (check_field(cfg, k, v->key, err)) return -1;
    return 0;
}

int dp_cs_optim_check(const dp_optim_cfg *cfg, dp_error *err) {
    const cs_key *keys = optim_table(cfg->kind);
    if (!keys) return dp_error_set(err, "optimizer", "unknown optimizer kind %d", (int)cfg->kind);
    const char *name = dp_config_name_optim(cfg->kind);
    for (const cs_key *k = keys; k->key; k++) {
        int rc =
            k->type == CS_SCHEDULE ? check_schedule(cfg, k, err) : check_field(cfg, k, name, err);
        if (rc) return -1;
    }
    if (!(cfg->clipnorm >= 0) || !(cfg->global_clipnorm >= 0) || isinf(cfg->clipnorm) ||
        isinf(cfg->global_clipnorm))
        return dp_error_set(err, "optimizer",
                            "clipnorm and global_clipnorm must be > 0 (or 0: off), got %g and %g",
                            cfg->clipnorm, cfg->global_clipnorm);
    if (cfg->clipnorm > 0 && cfg->global_clipnorm > 0)
        return dp_error_set(err, "optimizer",
                            "clipnorm and global_clipnorm are both set; keep one of them");
    return 0;
}
