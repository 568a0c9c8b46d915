/* ckpt_write.c - atomic HDF5 checkpoint writing, retention and listing (docs/DESIGN.md §6). */
#include "ckpt/ckpt.h"
#include "core/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt_h5.h"
#include "core/h5lock.h"
#include "core/test_hold.h"
#include "dptrain/config.h"

#define CKPT_MAX_STEP 999999999999LL /* 12 digits in the file name */

typedef struct writer {
    hid_t file;
    hid_t lcpl;       /* creates missing parent groups */
    char failed[320]; /* the object being written when a call failed */
    char detail[300]; /* HDF5's reason, taken before cleanup calls clear the stack */
} writer;

/* Call right after the failing HDF5 call: any later API call resets the stack. */
__attribute__((format(printf, 2, 3))) static int fail(writer *w, const char *fmt, ...) {
    ckpt_h5_detail(w->detail, sizeof w->detail);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->failed, sizeof w->failed, fmt, ap);
    va_end(ap);
    return -1;
}

/* dir without trailing slashes ("/" stays "/"), so the paths dp_ckpt_list returns
 * compare equal to the ones dp_ckpt_write builds. */
static int join_path(char *out, size_t n, const char *dir, const char *name) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    int root = len == 1 && dir[0] == '/';
    int w = snprintf(out, n, "%.*s%s%s", (int)len, dir, root ? "" : "/", name);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

/* An existing component that is not a directory is reported by the next mkdir
 * as ENOTDIR, which names the real problem. */
int dp_ckpt_make_dir(const char *dir, dp_error *err) {
    char path[DP_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return dp_error_set(err, dir, "checkpoint directory name is empty or too long");
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0) {
            int e = errno;
            struct stat sb;
            /* EEXIST is not the only answer for an existing directory (EROFS, EACCES). */
            if (!(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)))
                return dp_error_set(err, dir, "cannot create directory %s: %s", path,
                                    strerror(e == EEXIST ? ENOTDIR : e));
        }
        *p = c;
        if (c == '\0') break;
    }
    return 0;
}

static int write_attr(writer *w, hid_t loc, const char *obj, const char *name, hid_t ftype,
                      hid_t mtype, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, mtype, v) < 0) ? fail(w, "attribute %s %s", obj, name) : 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

/* Fixed-length UTF-8 string type sized to the text: h5py reads it as bytes
 * (.asstr() for str), and no variable-length heap is involved. */
static hid_t string_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, len ? len : 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Variable-length, so h5py returns the attribute as str rather than bytes. */
static int write_str_attr(writer *w, hid_t loc, const char *obj, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    int rc = (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
                 ? fail(w, "attribute %s %s", obj, name)
                 : write_attr(w, loc, obj, name, t, t, &s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

/* Creates dataset `path` (parents included) of dims [ndim] and writes data. */
static int write_dataset(writer *w, const char *path, int ndim, const hsize_t *dims, hid_t ftype,
                         hid_t mtype, const void *data) {
    hid_t sp = ndim > 0 ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(w->file, path, ftype, sp, w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 ? fail(w, "dataset %s", path) : 0;
    if (rc == 0 && H5Sget_simple_extent_npoints(sp) > 0 &&
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = fail(w, "dataset %s", path);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static int make_group(writer *w, const char *path) {
    hid_t g = H5Gcreate2(w->file, path, w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(w, "group %s", path);
    H5Gclose(g);
    return 0;
}

/* root/<layer>/<param> for every view of the model, taken from arena (laid out
 * like m->params). Every layer gets its group, parameterless ones too, so the
 * reader can tell a different layer stack apart. */
static int write_tensors(writer *w, const char *root, const dp_model *m, const float *arena) {
    if (make_group(w, root)) return -1;
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        char g[160], d[200];
        snprintf(g, sizeof g, "%s/%s", root, l->name);
        if (make_group(w, g)) return -1;
        for (int p = 0; p < l->n_params; p++) {
            const dp_param_view *v = &l->params[p];
            hsize_t dims[DP_MAX_DIMS];
            for (int k = 0; k < v->shape.ndim; k++) dims[k] = (hsize_t)v->shape.dim[k];
            snprintf(d, sizeof d, "%s/%s", g, v->name);
            if (write_dataset(w, d, v->shape.ndim, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                              arena + l->param_offset + v->offset))
                return -1;
        }
    }
    return 0;
}

static int write_optim(writer *w, const dp_model *m, const dp_optim *o) {
    hid_t g = H5Gcreate2(w->file, "/optimizer", w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(w, "group /optimizer");
    int64_t step = o->step;
    int rc = write_str_attr(w, g, "/optimizer", "name", dp_config_name_optim(o->cfg.kind));
    if (!rc) rc = write_attr(w, g, "/optimizer", "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &step);
    H5Gclose(g);
    for (int k = 0; !rc && k < o->n_slots; k++) {
        char root[96];
        snprintf(root, sizeof root, "/optimizer/%s", o->slot_names[k]);
        rc = write_tensors(w, root, m, o->slots[k]);
    }
    return rc;
}

static int write_train(writer *w, const dp_ckpt_state *st) {
    hid_t g = H5Gcreate2(w->file, "/train", w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(w, "group /train");
    int64_t v[4] = {st->epoch, st->step_in_epoch, st->global_step, st->shards};
    const char *names[4] = {"epoch", "step_in_epoch", "global_step", "shards"};
    uint64_t seed = st->seed;
    int rc = 0;
    for (int i = 0; !rc && i < 4; i++)
        rc = write_attr(w, g, "/train", names[i], H5T_STD_I64LE, H5T_NATIVE_INT64, &v[i]);
    if (!rc) rc = write_attr(w, g, "/train", "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
    int64_t sums[2] = {st->epoch_correct, st->epoch_terms};
    if (!rc)
        rc = write_attr(w, g, "/train", "epoch_loss_sum", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        &st->epoch_loss_sum);
    if (!rc)
        rc = write_attr(w, g, "/train", "epoch_correct", H5T_STD_I64LE, H5T_NATIVE_INT64, &sums[0]);
    if (!rc)
        rc = write_attr(w, g, "/train", "epoch_terms", H5T_STD_I64LE, H5T_NATIVE_INT64, &sums[1]);
    if (!rc)
        rc = write_attr(w, g, "/train", "epoch_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        &st->epoch_seconds);
    if (!rc)
        rc = write_attr(w, g, "/train", "run_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        &st->run_seconds);
    H5Gclose(g);
    return rc;
}

/* /callbacks: the state as attributes, then early_stopping's best weights. */
static int write_callbacks(writer *w, const dp_model *m, const dp_ckpt_state *st) {
    const dp_ckpt_callbacks *cb = &st->cb;
    hid_t g = H5Gcreate2(w->file, "/callbacks", w->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(w, "group /callbacks");
    const char *dnames[4] = {"es_best", "ckpt_best", "lr_best", "learning_rate"};
    double d[4] = {cb->es_best, cb->ckpt_best, cb->lr_best, cb->learning_rate};
    const char *inames[6] = {"es_best_epoch",   "es_wait", "es_stopped_epoch",
                             "ckpt_best_epoch", "lr_wait", "lr_cooldown"};
    int64_t v[6] = {cb->es_best_epoch,   cb->es_wait, cb->es_stopped_epoch,
                    cb->ckpt_best_epoch, cb->lr_wait, cb->lr_cooldown};
    int rc = 0;
    for (int i = 0; !rc && i < 4; i++)
        rc = write_attr(w, g, "/callbacks", dnames[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d[i]);
    for (int i = 0; !rc && i < 6; i++)
        rc = write_attr(w, g, "/callbacks", inames[i], H5T_STD_I64LE, H5T_NATIVE_INT64, &v[i]);
    H5Gclose(g);
    if (!rc && st->best_weights)
        rc = write_tensors(w, "/callbacks/best_weights", m, st->best_weights);
    return rc;
}

/* /data's scale and offset attributes; the group is created when the run is
 * not standardized (no mean/std). */
static int write_data_attrs(writer *w, const dp_ckpt_state *st) {
    hid_t g = H5Lexists(w->file, "/data", H5P_DEFAULT) > 0
                  ? H5Gopen2(w->file, "/data", H5P_DEFAULT)
                  : H5Gcreate2(w->file, "/data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return fail(w, "group /data");
    int rc =
        write_attr(w, g, "/data", "scale", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &st->data_scale) ||
        write_attr(w, g, "/data", "offset", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &st->data_offset);
    H5Gclose(g);
    return rc ? -1 : 0;
}

static int write_contents(writer *w, const dp_model *m, const dp_optim *o,
                          const dp_ckpt_state *st) {
    int version = DP_CKPT_FORMAT_VERSION;
    if (write_attr(w, w->file, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version))
        return -1;

    const char *text = st->config_text ? st->config_text : "";
    hid_t t = string_type(strlen(text));
    if (t < 0) return fail(w, "dataset /config");
    int rc = write_dataset(w, "/config", 0, NULL, t, t, text);
    H5Tclose(t);
    if (rc) return -1;

    if (write_tensors(w, "/model", m, m->params)) return -1;
    if (o && write_optim(w, m, o)) return -1;
    if (write_train(w, st)) return -1;
    if (st->n_features > 0) {
        hsize_t n = st->n_features;
        if (write_dataset(w, "/data/mean", 1, &n, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, st->mean) ||
            write_dataset(w, "/data/std", 1, &n, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, st->std))
            return -1;
    }
    if (st->data_scale != 0 && write_data_attrs(w, st)) return -1;
    if (st->cb.present && write_callbacks(w, m, st)) return -1;
    hsize_t md[2] = {st->n_metrics, DP_METRICS_COLS};
    return write_dataset(w, "/metrics", 2, md, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, st->metrics);
}

/* Writes the whole HDF5 file at tmp and closes it; `where` names it in errors. */
static int write_file(const char *tmp, const char *where, const dp_model *m, const dp_optim *o,
                      const dp_ckpt_state *st, dp_error *err) {
    char detail[300];
    /* The streaming reader may be in HDF5 on another thread (core/h5lock.h). */
    dp_h5_lock();
    ckpt_h5_quiet();
    hid_t fapl = ckpt_h5_fapl();
    writer w = {.file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), .lcpl = -1};
    ckpt_h5_detail(detail, sizeof detail);
    ckpt_h5_close_plist(fapl);
    if (w.file < 0) {
        dp_h5_unlock();
        return dp_error_set(err, where, "cannot create HDF5 file %s%s", tmp, detail);
    }
    w.lcpl = H5Pcreate(H5P_LINK_CREATE);
    int rc = (w.lcpl < 0 || H5Pset_create_intermediate_group(w.lcpl, 1) < 0)
                 ? fail(&w, "link creation properties")
                 : write_contents(&w, m, o, st);
    ckpt_h5_close_plist(w.lcpl);
    /* A test holding the writer here must not hold the readers too. */
    dp_h5_unlock();
    dp_test_hold("ckpt-write", st->global_step, NULL);
    if (rc) dp_error_set(err, where, "writing the checkpoint failed at %s%s", w.failed, w.detail);
    dp_h5_lock();
    /* Close flushes the metadata: a full disk shows up here. */
    if (H5Fclose(w.file) < 0 && !rc)
        rc = dp_error_set(err, where, "flushing the checkpoint file failed%s",
                          ckpt_h5_detail(detail, sizeof detail));
    dp_h5_unlock();
    return rc;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Keeps the `keep` newest checkpoints, counting the one just written (which is
 * never deleted, even when older runs left files with larger steps). */
void dp_ckpt_remove_temp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[DP_PATH_MAX + 300];
    while ((e = readdir(d)) != NULL)
        if ((!strncmp(e->d_name, ".ckpt-", 6) || !strncmp(e->d_name, ".best.h5", 8)) &&
            strstr(e->d_name, ".h5.tmp-") && join_path(path, sizeof path, dir, e->d_name) == 0)
            unlink(path);
    closedir(d);
}

static void prune(const char *dir, const char *written, int keep) {
    if (keep <= 0) return;
    char **paths;
    int n = dp_ckpt_list(dir, &paths, NULL);
    int kept = 1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(paths[i], written)) continue;
        if (kept < keep) kept++;
        else unlink(paths[i]);
    }
    dp_ckpt_free_list(paths, n > 0 ? n : 0);
}

/* Checks st, then writes dir/<name> through a temporary file: fsync, rename,
 * fsync of dir. final receives the file's path. */
static int write_atomic(const char *dir, const char *name, const dp_model *m, const dp_optim *o,
                        const dp_ckpt_state *st, char *final, size_t final_cap, dp_error *err) {
    if (st->global_step < 0 || st->global_step > CKPT_MAX_STEP)
        return dp_error_set(err, dir, "global step %lld cannot name a checkpoint (0..%lld)",
                            st->global_step, CKPT_MAX_STEP);
    if ((st->n_features > 0 && (!st->mean || !st->std)) || (st->n_metrics > 0 && !st->metrics))
        return dp_error_set(err, dir, "checkpoint state lacks its mean/std or metrics arrays");
    if (ckpt_check_layout(m, o, dir, err)) return -1;
    if (dp_ckpt_make_dir(dir, err)) return -1;

    char tmp_name[96], tmp[DP_PATH_MAX + 96];
    if (join_path(final, final_cap, dir, name))
        return dp_error_set(err, dir, "checkpoint directory name is too long");
    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp-%ld", name, (long)getpid());
    join_path(tmp, sizeof tmp, dir, tmp_name);

    /* Create it ourselves first: HDF5 would hide the errno behind "unable to open file". */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return dp_error_set(err, dir, "cannot create a file in the checkpoint directory: %s",
                            strerror(errno));
    close(fd);

    if (write_file(tmp, final, m, o, st, err)) {
        unlink(tmp);
        return -1;
    }
    if (fsync_path(tmp, O_RDONLY) != 0) {
        int e = errno;
        unlink(tmp);
        return dp_error_set(err, final, "fsync of %s failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return dp_error_set(err, final, "cannot rename %s into place: %s", tmp, strerror(e));
    }
    dp_test_hold("ckpt-rename", st->global_step, NULL);
    /* Some file systems cannot fsync a directory (EINVAL); the rename still stands. */
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0 && errno != EINVAL)
        return dp_error_set(err, dir, "fsync of the checkpoint directory failed: %s",
                            strerror(errno));
    return 0;
}

int dp_ckpt_write(const char *dir, const dp_model *m, const dp_optim *o, const dp_ckpt_state *st,
                  int keep, dp_error *err) {
    char name[64], final[DP_PATH_MAX + 64];
    snprintf(name, sizeof name, "ckpt-%012lld.h5", st->global_step);
    if (write_atomic(dir, name, m, o, st, final, sizeof final, err)) return -1;
    prune(dir, final, keep);
    return 0;
}

int dp_ckpt_write_best(const char *dir, const dp_model *m, const dp_optim *o,
                       const dp_ckpt_state *st, dp_error *err) {
    char final[DP_PATH_MAX + 64];
    return write_atomic(dir, DP_CKPT_BEST_NAME, m, o, st, final, sizeof final, err);
}

/* Step of a name of the exact form ckpt-<12 digits>.h5, or -1. */
static long long parse_name(const char *s) {
    if (strlen(s) != 20 || strncmp(s, "ckpt-", 5) || strcmp(s + 17, ".h5")) return -1;
    long long step = 0;
    for (int i = 5; i < 17; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        step = step * 10 + (s[i] - '0');
    }
    return step;
}

typedef struct listed {
    long long step;
    char *path;
} listed;

static int newest_first(const void *a, const void *b) {
    long long x = ((const listed *)a)->step, y = ((const listed *)b)->step;
    return (x < y) - (x > y);
}

int dp_ckpt_list(const char *dir, char ***paths, dp_error *err) {
    *paths = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return dp_error_set(err, dir, "cannot list the checkpoint directory: %s", strerror(errno));
    }
    listed *items = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long step = parse_name(e->d_name);
        if (step < 0) continue;
        char path[DP_PATH_MAX + 64];
        if (join_path(path, sizeof path, dir, e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            listed *grown = DP_MALLOC(cap * sizeof *grown);
            if (n) memcpy(grown, items, n * sizeof *items);
            free(items);
            items = grown;
        }
        items[n].step = step;
        items[n].path = DP_MALLOC(strlen(path) + 1);
        strcpy(items[n].path, path);
        n++;
    }
    closedir(d);
    if (n == 0) {
        free(items);
        return 0;
    }
    qsort(items, n, sizeof *items, newest_first);
    char **out = DP_MALLOC(n * sizeof *out);
    for (size_t i = 0; i < n; i++) out[i] = items[i].path;
    free(items);
    *paths = out;
    return (int)n;
}

void dp_ckpt_free_list(char **paths, int n) {
    if (!paths) return;
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
