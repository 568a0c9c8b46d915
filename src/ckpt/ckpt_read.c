/* ckpt_read.c - reading and validating HDF5 checkpoints (docs/DESIGN.md §6). */
#include "dptrain/checkpoint.h"
#include "core/alloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt_h5.h"
#include "dptrain/config.h"

#define MODEL_CTX "checkpoint is of a different model: "
#define OPTIM_CTX "checkpoint optimizer state does not match the model: "
#define STATE_CTX "checkpoint is incomplete: "
/* Larger element counts are a damaged header, not a checkpoint: refuse before malloc. */
#define MAX_ELEMENTS ((hsize_t)1 << 31)

typedef struct reader {
    hid_t file;
    const char *path;
    dp_error *err;
} reader;

static int damaged(reader *r, const char *what) {
    char detail[300];
    return dp_error_set(r->err, r->path, "cannot read %s: the file is damaged%s", what,
                        ckpt_h5_detail(detail, sizeof detail));
}

/* 1 if every component of the absolute path exists: H5Lexists fails, rather than
 * answering 0, when a parent group is missing. */
static int exists(hid_t file, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return 0;
        }
        *p = c;
        if (c == '\0') return 1;
    }
}

static const char *type_name(hid_t t, char *buf, size_t n) {
    H5T_class_t c = H5Tget_class(t);
    size_t bits = 8 * H5Tget_size(t);
    if (c == H5T_FLOAT) snprintf(buf, n, "float%zu", bits);
    else if (c == H5T_INTEGER)
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
    else if (c == H5T_STRING) snprintf(buf, n, "string");
    else snprintf(buf, n, "a non-numeric type");
    return buf;
}

static char *format_dims(int nd, const hsize_t *dims, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %llu" : "%llu",
                                 (unsigned long long)dims[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* Opens dataset `path`, requires floating-point elements of `size` bytes and
 * returns its id with rank and dims; `ctx` prefixes the "missing" error. */
static hid_t open_dataset(reader *r, const char *path, size_t size, const char *ctx, int *nd,
                          hsize_t dims[H5S_MAX_RANK]) {
    if (!exists(r->file, path)) {
        dp_error_set(r->err, r->path, "%sit has no dataset %s", ctx, path);
        return -1;
    }
    hid_t d = H5Dopen2(r->file, path, H5P_DEFAULT);
    if (d < 0) {
        damaged(r, path);
        return -1;
    }
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int rank = (t < 0 || sp < 0) ? -1 : H5Sget_simple_extent_ndims(sp);
    int rc = 0;
    if (rank < 0 || rank > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        rc = damaged(r, path);
    } else if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != size) {
        char got[48];
        rc = dp_error_set(r->err, r->path, "%s has type %s, expected float%zu", path,
                          type_name(t, got, sizeof got), 8 * size);
    } else {
        hsize_t total = 1;
        for (int i = 0; i < rank; i++)
            total = dims[i] && total > MAX_ELEMENTS / dims[i] ? MAX_ELEMENTS + 1 : total * dims[i];
        if (total > MAX_ELEMENTS) rc = damaged(r, path);
    }
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (rc) {
        H5Dclose(d);
        return -1;
    }
    *nd = rank;
    return d;
}

static int read_all(reader *r, hid_t d, hid_t mtype, void *buf, size_t n, const char *path) {
    int rc = 0;
    if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = damaged(r, path);
    H5Dclose(d);
    return rc;
}

static const dp_layer *find_layer(const dp_model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name)) return &m->layers[i];
    return NULL;
}

static int has_param(const dp_layer *l, const char *name) {
    for (int p = 0; p < l->n_params; p++)
        if (!strcmp(l->params[p].name, name)) return 1;
    return 0;
}

/* Name of link i of group `path` (name order), or -1 when the group is damaged. */
static int link_name(reader *r, const char *path, hsize_t i, char *buf, size_t n) {
    if (H5Lget_name_by_idx(r->file, path, H5_INDEX_NAME, H5_ITER_INC, i, buf, n, H5P_DEFAULT) < 0)
        return damaged(r, path);
    return 0;
}

/* Anything under root that the model lacks: a layer, or a tensor of a layer. */
static int check_extras(reader *r, const char *root, const dp_model *m, const char *ctx) {
    H5G_info_t info;
    if (H5Gget_info_by_name(r->file, root, &info, H5P_DEFAULT) < 0) return damaged(r, root);
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256], g[320];
        if (link_name(r, root, i, name, sizeof name)) return -1;
        snprintf(g, sizeof g, "%s/%s", root, name);
        const dp_layer *l = find_layer(m, name);
        if (!l)
            return dp_error_set(r->err, r->path,
                                "%sit has layer %s, which the model (%d layers) "
                                "does not have",
                                ctx, g, m->n_layers);
        H5G_info_t gi;
        if (H5Gget_info_by_name(r->file, g, &gi, H5P_DEFAULT) < 0) return damaged(r, g);
        for (hsize_t j = 0; j < gi.nlinks; j++) {
            if (link_name(r, g, j, name, sizeof name)) return -1;
            if (!has_param(l, name))
                return dp_error_set(r->err, r->path,
                                    "%sit has dataset %s/%s, which the model "
                                    "does not have",
                                    ctx, g, name);
        }
    }
    return 0;
}

/* Reads root/<layer>/<param> into dst (laid out like m->params) after checking
 * each one's presence, type and shape against the model, then looks for extras. */
static int read_tensors(reader *r, const char *root, const dp_model *m, float *dst,
                        const char *ctx) {
    if (!exists(r->file, root))
        return dp_error_set(r->err, r->path, "%sit has no group %s", ctx, root);
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        char g[160], d[200];
        snprintf(g, sizeof g, "%s/%s", root, l->name);
        if (!exists(r->file, g))
            return dp_error_set(r->err, r->path, "%sit has no layer %s", ctx, g);
        for (int p = 0; p < l->n_params; p++) {
            const dp_param_view *v = &l->params[p];
            int nd;
            hsize_t dims[H5S_MAX_RANK];
            snprintf(d, sizeof d, "%s/%s", g, v->name);
            hid_t ds = open_dataset(r, d, sizeof(float), ctx, &nd, dims);
            if (ds < 0) return -1;
            int same = nd == v->shape.ndim;
            for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)v->shape.dim[k];
            if (!same) {
                char got[160], want[160];
                H5Dclose(ds);
                return dp_error_set(r->err, r->path, "%s%s has shape %s, model has %s", ctx, d,
                                    format_dims(nd, dims, got, sizeof got),
                                    dp_shape_format(&v->shape, want, sizeof want));
            }
            if (read_all(r, ds, H5T_NATIVE_FLOAT, dst + l->param_offset + v->offset, v->numel, d))
                return -1;
        }
    }
    return check_extras(r, root, m, ctx);
}

/* Opens attribute obj:name, which must be a single value of class `cls`. */
static hid_t open_attr(reader *r, hid_t loc, const char *obj, const char *name, H5T_class_t cls,
                       hid_t *type) {
    if (H5Aexists(loc, name) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        dp_error_set(r->err, r->path, STATE_CTX "%s has no attribute %s", obj, name);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == cls && H5Sget_simple_extent_npoints(sp) == 1;
    if (sp >= 0) H5Sclose(sp);
    if (!ok) {
        char got[48] = "unreadable";
        if (t >= 0) type_name(t, got, sizeof got);
        dp_error_set(r->err, r->path, "attribute %s %s is %s, expected a single %s", obj, name, got,
                     cls == H5T_STRING  ? "string"
                     : cls == H5T_FLOAT ? "number"
                                        : "integer");
        if (t >= 0) H5Tclose(t);
        if (a >= 0) H5Aclose(a);
        H5Eclear2(H5E_DEFAULT);
        return -1;
    }
    *type = t;
    return a;
}

/* Reads integer attribute obj:name into *out, requiring lo <= value <= hi. */
static int read_int_attr(reader *r, hid_t loc, const char *obj, const char *name, long long lo,
                         long long hi, long long *out) {
    hid_t t, a = open_attr(r, loc, obj, name, H5T_INTEGER, &t);
    if (a < 0) return -1;
    long long v = 0;
    int rc = H5Aread(a, H5T_NATIVE_LLONG, &v) < 0 ? damaged(r, obj) : 0;
    H5Tclose(t);
    H5Aclose(a);
    if (rc) return -1;
    if (v < lo || v > hi)
        return dp_error_set(r->err, r->path, "attribute %s %s = %lld is out of range", obj, name,
                            v);
    *out = v;
    return 0;
}

/* Reads floating-point attribute obj:name into *out (infinities allowed). */
static int read_double_attr(reader *r, hid_t loc, const char *obj, const char *name, double *out) {
    hid_t t, a = open_attr(r, loc, obj, name, H5T_FLOAT, &t);
    if (a < 0) return -1;
    int rc = H5Aread(a, H5T_NATIVE_DOUBLE, out) < 0 ? damaged(r, obj) : 0;
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* Reads a scalar string (fixed or variable length) from an attribute or dataset
 * into a new NUL-terminated *out. */
static int read_string(reader *r, hid_t obj, hid_t t, int is_attr, const char *what, char **out) {
    hid_t mt = H5Tcopy(t);
    herr_t rc = -1;
    int reported = 0;
    char *s = NULL;
    if (mt >= 0 && H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        rc = is_attr ? H5Aread(obj, mt, &v) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
        if (rc < 0) reported = damaged(r, what);
        if (rc >= 0) {
            size_t n = v ? strlen(v) : 0;
            s = DP_MALLOC(n + 1);
            memcpy(s, v ? v : "", n + 1);
        }
        if (v) H5free_memory(v);
    } else if (mt >= 0) {
        size_t n = H5Tget_size(t);
        if (n > 0 && n <= MAX_ELEMENTS) {
            s = DP_MALLOC(n + 1);
            rc = is_attr ? H5Aread(obj, mt, s) : H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
            if (rc < 0) reported = damaged(r, what);
            s[n] = '\0';
            if (H5Tget_strpad(t) == H5T_STR_SPACEPAD)
                while (n > 0 && s[n - 1] == ' ') s[--n] = '\0';
        }
    }
    if (rc < 0 && !reported) damaged(r, what);
    if (mt >= 0) H5Tclose(mt);
    if (rc < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

static int read_version(reader *r) {
    if (H5Aexists(r->file, "format_version") <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return dp_error_set(r->err, r->path,
                            "not a dptrain checkpoint: no format_version attribute on /");
    }
    long long v;
    if (read_int_attr(r, r->file, "/", "format_version", LLONG_MIN, LLONG_MAX, &v)) return -1;
    if (v != DP_CKPT_FORMAT_VERSION)
        return dp_error_set(r->err, r->path, "checkpoint format version %lld, expected %d", v,
                            DP_CKPT_FORMAT_VERSION);
    return 0;
}

static int read_optim(reader *r, const dp_model *m, const dp_optim *o, float *slots,
                      long long *step) {
    if (!exists(r->file, "/optimizer"))
        return dp_error_set(r->err, r->path, "checkpoint has no optimizer state (/optimizer)");
    hid_t g = H5Gopen2(r->file, "/optimizer", H5P_DEFAULT);
    if (g < 0) return damaged(r, "/optimizer");
    hid_t t, a = open_attr(r, g, "/optimizer", "name", H5T_STRING, &t);
    char *name = NULL;
    int rc = a < 0 ? -1 : read_string(r, a, t, 1, "/optimizer name", &name);
    if (a >= 0) {
        H5Tclose(t);
        H5Aclose(a);
    }
    const char *want = dp_config_name_optim(o->cfg.kind);
    if (!rc && strcmp(name, want))
        rc = dp_error_set(r->err, r->path, "checkpoint optimizer is %s, the run uses %s", name,
                          want);
    free(name);
    if (!rc) rc = read_int_attr(r, g, "/optimizer", "step", 0, LLONG_MAX, step);
    H5Gclose(g);
    for (int k = 0; !rc && k < o->n_slots; k++) {
        char root[96];
        snprintf(root, sizeof root, "/optimizer/%s", o->slot_names[k]);
        rc = read_tensors(r, root, m, slots + (size_t)k * o->n, OPTIM_CTX);
    }
    return rc;
}

/* A float dataset of rank 1 [n] (want_cols 0) or rank 2 [n, want_cols], read into
 * a new array; *rows = n. */
static int read_table(reader *r, const char *path, size_t size, int want_cols, size_t *rows,
                      void **out) {
    int nd;
    hsize_t dims[H5S_MAX_RANK];
    hid_t d = open_dataset(r, path, size, STATE_CTX, &nd, dims);
    if (d < 0) return -1;
    if (nd != (want_cols ? 2 : 1) || (want_cols && dims[1] != (hsize_t)want_cols)) {
        char got[160], want[64];
        snprintf(want, sizeof want, "[rows, %d]", want_cols);
        H5Dclose(d);
        return dp_error_set(r->err, r->path, "%s has shape %s, expected %s", path,
                            format_dims(nd, dims, got, sizeof got),
                            want_cols ? want : "one dimension");
    }
    size_t n = (size_t)dims[0] * (want_cols ? (size_t)want_cols : 1);
    void *buf = n ? DP_MALLOC(n * size) : NULL;
    if (read_all(r, d, size == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, buf, n, path)) {
        free(buf);
        return -1;
    }
    *rows = (size_t)dims[0];
    *out = buf;
    return 0;
}

/* The metrics table, [rows, DP_METRICS_COLS]; a checkpoint written before the
 * learning_rate column has DP_METRICS_COLS_V1 columns, widened with NaN. */
static int read_metrics(reader *r, dp_ckpt_state *st) {
    int nd;
    hsize_t dims[H5S_MAX_RANK];
    hid_t d = open_dataset(r, "/metrics", sizeof(double), STATE_CTX, &nd, dims);
    if (d < 0) return -1;
    int old = nd == 2 && dims[1] == DP_METRICS_COLS_V1;
    H5Dclose(d);
    if (!old)
        return read_table(r, "/metrics", sizeof(double), DP_METRICS_COLS, &st->n_metrics,
                          (void **)&st->metrics);
    double *narrow = NULL;
    if (read_table(r, "/metrics", sizeof(double), DP_METRICS_COLS_V1, &st->n_metrics,
                   (void **)&narrow))
        return -1;
    st->metrics =
        st->n_metrics ? DP_MALLOC(st->n_metrics * DP_METRICS_COLS * sizeof(double)) : NULL;
    for (size_t i = 0; i < st->n_metrics; i++)
        for (int j = 0; j < DP_METRICS_COLS; j++)
            st->metrics[i * DP_METRICS_COLS + j] =
                j < DP_METRICS_COLS_V1 ? narrow[i * DP_METRICS_COLS_V1 + j] : NAN;
    free(narrow);
    return 0;
}

/* /callbacks, when the file has it: the state, and the best weights into a
 * new [n_params] array. */
static int read_callbacks(reader *r, const dp_model *m, dp_ckpt_state *st) {
    if (!exists(r->file, "/callbacks")) return 0;
    dp_ckpt_callbacks *cb = &st->cb;
    hid_t g = H5Gopen2(r->file, "/callbacks", H5P_DEFAULT);
    if (g < 0) return damaged(r, "/callbacks");
    const char *dnames[4] = {"es_best", "ckpt_best", "lr_best", "learning_rate"};
    double *d[4] = {&cb->es_best, &cb->ckpt_best, &cb->lr_best, &cb->learning_rate};
    const char *inames[6] = {"es_best_epoch",   "es_wait", "es_stopped_epoch",
                             "ckpt_best_epoch", "lr_wait", "lr_cooldown"};
    int *v[6] = {&cb->es_best_epoch,   &cb->es_wait, &cb->es_stopped_epoch,
                 &cb->ckpt_best_epoch, &cb->lr_wait, &cb->lr_cooldown};
    int rc = 0;
    for (int i = 0; !rc && i < 4; i++) rc = read_double_attr(r, g, "/callbacks", dnames[i], d[i]);
    for (int i = 0; !rc && i < 6; i++) {
        long long x = 0;
        rc = read_int_attr(r, g, "/callbacks", inames[i], 0, INT_MAX, &x);
        *v[i] = (int)x;
    }
    H5Gclose(g);
    if (rc) return -1;
    cb->present = 1;
    if (!exists(r->file, "/callbacks/best_weights")) return 0;
    st->best_weights = DP_MALLOC((m->n_params ? m->n_params : 1) * sizeof(float));
    return read_tensors(r, "/callbacks/best_weights", m, st->best_weights, MODEL_CTX);
}

static int read_state(reader *r, dp_ckpt_state *st) {
    if (!exists(r->file, "/train"))
        return dp_error_set(r->err, r->path, STATE_CTX "it has no group /train");
    hid_t g = H5Gopen2(r->file, "/train", H5P_DEFAULT);
    if (g < 0) return damaged(r, "/train");
    long long epoch = 0, in_epoch = 0, shards = 0;
    int rc = read_int_attr(r, g, "/train", "epoch", 0, INT_MAX, &epoch) ||
             read_int_attr(r, g, "/train", "step_in_epoch", 0, INT_MAX, &in_epoch) ||
             read_int_attr(r, g, "/train", "global_step", 0, LLONG_MAX, &st->global_step) ||
             read_int_attr(r, g, "/train", "shards", 0, INT_MAX, &shards);
    if (!rc) {
        /* Unsigned on its own: a seed above 2^63 must not be clipped by a signed read. */
        hid_t t, a = open_attr(r, g, "/train", "seed", H5T_INTEGER, &t);
        rc = a < 0 ? -1 : 0;
        if (!rc && H5Aread(a, H5T_NATIVE_ULLONG, &st->seed) < 0) rc = damaged(r, "/train seed");
        if (a >= 0) {
            H5Tclose(t);
            H5Aclose(a);
        }
    }
    /* Older checkpoints lack the epoch's sums: a resumed epoch then reports
     * only the steps it ran. */
    if (!rc && H5Aexists(g, "epoch_terms") > 0)
        rc = read_double_attr(r, g, "/train", "epoch_loss_sum", &st->epoch_loss_sum) ||
             read_int_attr(r, g, "/train", "epoch_correct", 0, LLONG_MAX, &st->epoch_correct) ||
             read_int_attr(r, g, "/train", "epoch_terms", 0, LLONG_MAX, &st->epoch_terms);
    /* Older ones lack the seconds too: NaN says the time is unknown. */
    st->epoch_seconds = st->run_seconds = NAN;
    if (!rc && H5Aexists(g, "run_seconds") > 0)
        rc = read_double_attr(r, g, "/train", "epoch_seconds", &st->epoch_seconds) ||
             read_double_attr(r, g, "/train", "run_seconds", &st->run_seconds);
    H5Eclear2(H5E_DEFAULT);
    H5Gclose(g);
    if (rc) return -1;
    st->epoch = (int)epoch;
    st->step_in_epoch = (int)in_epoch;
    st->shards = (int)shards;

    if (exists(r->file, "/data/mean")) {
        size_t n_std = 0;
        if (read_table(r, "/data/mean", sizeof(float), 0, &st->n_features, (void **)&st->mean) ||
            read_table(r, "/data/std", sizeof(float), 0, &n_std, (void **)&st->std))
            return -1;
        if (n_std != st->n_features)
            return dp_error_set(r->err, r->path, "/data/mean has %zu values, /data/std %zu",
                                st->n_features, n_std);
    }
    return read_metrics(r, st);
}

/* Opens path read-only with errors that say why it is not a checkpoint. */
static hid_t open_file(const char *path, dp_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dp_error_set(err, path, "cannot open checkpoint: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode)) return dp_error_set(err, path, "checkpoint is not a regular file");
    char detail[300];
    hid_t fapl = ckpt_h5_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    ckpt_h5_detail(detail, sizeof detail);
    ckpt_h5_close_plist(fapl);
    if (f < 0)
        return dp_error_set(err, path, "not a readable HDF5 file: truncated or damaged%s", detail);
    return f;
}

int dp_ckpt_read(const char *path, dp_model *m, dp_optim *o, dp_ckpt_state *st, dp_error *err) {
    ckpt_h5_quiet();
    if (ckpt_check_layout(m, o, path, err)) return -1;
    reader r = {open_file(path, err), path, err};
    if (r.file < 0) return -1;
    /* Read into copies and commit only when everything checked out, so a caller
     * falling back to an older checkpoint never sees a half-loaded model. */
    float *params = DP_MALLOC(m->n_params * sizeof *params); /* [n_params] */
    if (m->n_params) memcpy(params, m->params, m->n_params * sizeof *params);
    size_t n_slot = o ? (size_t)o->n_slots * o->n : 0;
    float *slots = DP_MALLOC(n_slot * sizeof *slots); /* [n_slots, n] */
    for (int k = 0; o && k < o->n_slots && o->n; k++)
        memcpy(slots + (size_t)k * o->n, o->slots[k], o->n * sizeof *slots);
    long long step = 0;
    dp_ckpt_state s = {0};

    int rc = read_version(&r) || read_tensors(&r, "/model", m, params, MODEL_CTX) ||
             (o && read_optim(&r, m, o, slots, &step)) ||
             (st && (read_state(&r, &s) || read_callbacks(&r, m, &s)));
    H5Fclose(r.file);
    if (!rc) {
        if (m->n_params) memcpy(m->params, params, m->n_params * sizeof *params);
        for (int k = 0; o && k < o->n_slots && o->n; k++)
            memcpy(o->slots[k], slots + (size_t)k * o->n, o->n * sizeof *slots);
        if (o) o->step = step;
        if (st) *st = s;
    } else {
        dp_ckpt_state_free(&s);
    }
    free(params);
    free(slots);
    return rc ? -1 : 0;
}

int dp_ckpt_read_stats(const char *path, float **mean, float **std, size_t *n) {
    ckpt_h5_quiet();
    dp_error err = {0};
    *mean = *std = NULL;
    *n = 0;
    reader r = {open_file(path, &err), path, &err};
    if (r.file < 0) return -1;
    size_t n_std = 0;
    int rc = read_version(&r);
    if (!rc && exists(r.file, "/data/mean"))
        rc = read_table(&r, "/data/mean", sizeof(float), 0, n, (void **)mean) ||
             read_table(&r, "/data/std", sizeof(float), 0, &n_std, (void **)std) || n_std != *n;
    H5Fclose(r.file);
    if (rc) {
        free(*mean);
        free(*std);
        *mean = *std = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int dp_ckpt_read_config(const char *path, char **text, dp_error *err) {
    ckpt_h5_quiet();
    *text = NULL;
    reader r = {open_file(path, err), path, err};
    if (r.file < 0) return -1;
    int rc = read_version(&r);
    if (!rc && !exists(r.file, "/config"))
        rc = dp_error_set(err, path, STATE_CTX "it has no dataset /config");
    if (!rc) {
        hid_t d = H5Dopen2(r.file, "/config", H5P_DEFAULT);
        hid_t t = d < 0 ? -1 : H5Dget_type(d), sp = d < 0 ? -1 : H5Dget_space(d);
        if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING ||
            H5Sget_simple_extent_npoints(sp) != 1)
            rc = dp_error_set(err, path, "/config is not a single string");
        else rc = read_string(&r, d, t, 0, "/config", text);
        if (sp >= 0) H5Sclose(sp);
        if (t >= 0) H5Tclose(t);
        if (d >= 0) H5Dclose(d);
    }
    H5Fclose(r.file);
    return rc ? -1 : 0;
}

void dp_ckpt_state_free(dp_ckpt_state *st) {
    if (!st) return;
    free(st->mean);
    free(st->std);
    free(st->metrics);
    free(st->best_weights);
    st->mean = st->std = NULL;
    st->metrics = NULL;
    st->best_weights = NULL;
    st->n_features = 0;
    st->n_metrics = 0;
}
