/* data_read.c - validate an HDF5 dataset file and read row ranges by hyperslab. */
#include "data/data.h"
#include "core/alloc.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What one split (train/val/test) holds, as found in the file. */
typedef struct split_meta {
    size_t rows, y_rows;
    dp_shape x_shape; /* one row of x */
    int x_is_int;     /* int32 token ids [N, T] */
    dp_xtype x_type;
    int y_cols, y_is_int;
} split_meta;

/* Open ids of one split; -1 when not open. */
typedef struct split_ids {
    hid_t x, y;
} split_ids;

static void silence_hdf5(void) {
    /* HDF5 would print its whole error stack; the user gets our one line instead. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void close_split(split_ids *ids) {
    if (ids->x >= 0) H5Dclose(ids->x);
    if (ids->y >= 0) H5Dclose(ids->y);
    ids->x = ids->y = -1;
}

void dp_data_where(char *buf, size_t n, const char *path, const char *split, const char *ds) {
    char suffix[64];
    int ls = snprintf(suffix, sizeof suffix, ":/%s/%s", split, ds);
    size_t lp = strlen(path), room = n - 1 - (size_t)ls;
    const char *tail = lp <= room ? path : path + lp - (room - 3);
    /* The copy is bounded by hand above, so the formatted length is known to fit. */
    size_t lt = strlen(tail), off = 0;
    if (tail != path) {
        memcpy(buf, "...", 3);
        off = 3;
    }
    memcpy(buf + off, tail, lt);
    memcpy(buf + off + lt, suffix, (size_t)ls + 1);
}

static const char *type_name(hid_t t, char *buf, size_t n) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, n, "string"); break;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); break;
    default: snprintf(buf, n, "a non-numeric type"); break;
    }
    return buf;
}

/* Opens dataset /split/name, or reports "missing dataset". Absence of an intermediate
 * group is the same missing dataset to the user. */
static hid_t open_dataset(hid_t file, const char *path, const char *split, const char *name,
                          dp_error *err) {
    char where[256], link[64];
    dp_data_where(where, sizeof where, path, split, name);
    snprintf(link, sizeof link, "/%s/%s", split, name);
    if (H5Lexists(file, split, H5P_DEFAULT) <= 0 || H5Lexists(file, link, H5P_DEFAULT) <= 0) {
        dp_error_set(err, where, "missing dataset");
        return -1;
    }
    hid_t d = H5Dopen2(file, link, H5P_DEFAULT);
    if (d < 0) dp_error_set(err, where, "not a dataset (expected an HDF5 dataset at %s)", link);
    return d;
}

/* A dataset's element type and extent, as far as the checks need them. */
typedef struct ds_layout {
    H5T_class_t cls;
    size_t size;
    int is_signed;
    char tname[32];
    int rank;
    hsize_t dims[1 + DP_MAX_DIMS];
} ds_layout;

static int read_layout(hid_t d, const char *where, int max_rank, ds_layout *l, dp_error *err) {
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int rc = -1;
    if (t < 0 || s < 0 || (l->rank = H5Sget_simple_extent_ndims(s)) < 0) {
        dp_error_set(err, where, "cannot read the dataset's type or shape");
        goto done;
    }
    l->cls = H5Tget_class(t);
    l->size = H5Tget_size(t);
    l->is_signed = l->cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;
    type_name(t, l->tname, sizeof l->tname);
    if (l->rank > max_rank) {
        dp_error_set(err, where, "rank %d exceeds the maximum of %d", l->rank, max_rank);
        goto done;
    }
    H5Sget_simple_extent_dims(s, l->dims, NULL);
    rc = 0;
done:
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return rc;
}

static int check_x(hid_t d, const char *where, split_meta *m, dp_error *err) {
    ds_layout l;
    if (read_layout(d, where, 1 + DP_MAX_DIMS, &l, err)) return -1;
    hid_t t = H5Dget_type(d);
    int bad = t < 0 || dp_xtype_classify(t, &m->x_type, where, err);
    if (t >= 0) H5Tclose(t);
    if (bad || dp_data_check_filters(d, where, err)) return -1;
    m->x_is_int = m->x_type == DP_X_TOKENS;
    if (m->x_is_int && l.rank != 2)
        return dp_error_set(err, where, "int32 token ids must be [N, T] (rank 2), got rank %d",
                            l.rank);
    if (l.rank < 2)
        return dp_error_set(err, where, "expected rank >= 2 ([N, ...]), got rank %d", l.rank);
    m->rows = (size_t)l.dims[0];
    m->x_shape.ndim = l.rank - 1;
    /* A chunked dataset can declare any extent without storing it; a row wider than
     * an int would wrap the size_t width (and BLAS takes int sizes). */
    hsize_t width = 1;
    for (int i = 1; i < l.rank; i++) {
        if (l.dims[i] == 0 || l.dims[i] > INT_MAX)
            return dp_error_set(err, where, "dimension %d of x has size %llu", i,
                                (unsigned long long)l.dims[i]);
        m->x_shape.dim[i - 1] = (int)l.dims[i];
        width *= l.dims[i]; /* both <= INT_MAX: no wrap */
        if (width > INT_MAX)
            return dp_error_set(err, where, "a row of x has more than %d values", INT_MAX);
    }
    return 0;
}

static int check_y(hid_t d, const char *where, split_meta *m, dp_error *err) {
    ds_layout l;
    if (read_layout(d, where, 2, &l, err) || dp_data_check_filters(d, where, err)) return -1;
    if (l.cls == H5T_INTEGER && l.size == 4 && l.is_signed) {
        /* int32 class ids: [N], or [N, T] per-step labels (docs/DESIGN.md §4). */
        if (l.rank < 1)
            return dp_error_set(err, where, "expected int32 [N] class ids, got rank %d", l.rank);
        m->y_is_int = 1;
    } else if (l.cls == H5T_FLOAT && l.size == 4) {
        if (l.rank != 2)
            return dp_error_set(err, where,
                                "float32 targets must be [N, k] (rank 2), got rank %d; store "
                                "class ids as int32 [N]",
                                l.rank);
        m->y_is_int = 0;
    } else {
        return dp_error_set(err, where,
                            "expected int32 class ids or float32 [N, k] targets, got %s", l.tname);
    }
    if (l.rank == 2 && (l.dims[1] == 0 || l.dims[1] > INT_MAX))
        return dp_error_set(err, where, "y has %llu columns", (unsigned long long)l.dims[1]);
    m->y_cols = l.rank == 2 ? (int)l.dims[1] : 1;
    m->y_rows = (size_t)l.dims[0];
    return 0;
}

/* Opens and checks /split/x and /split/y. On success ids hold both datasets (caller
 * closes them); on failure nothing is left open. */
static int open_split(hid_t file, const char *path, const char *split, split_ids *ids,
                      split_meta *m, dp_error *err) {
    char wx[256], wy[256];
    dp_data_where(wx, sizeof wx, path, split, "x");
    dp_data_where(wy, sizeof wy, path, split, "y");
    ids->x = open_dataset(file, path, split, "x", err);
    if (ids->x < 0) goto fail;
    ids->y = open_dataset(file, path, split, "y", err);
    if (ids->y < 0) goto fail;
    if (check_x(ids->x, wx, m, err) || check_y(ids->y, wy, m, err)) goto fail;
    if (m->y_rows != m->rows) {
        dp_error_set(err, wy, "x has %zu rows but y has %zu", m->rows, m->y_rows);
        goto fail;
    }
    return 0;
fail:
    close_split(ids);
    return -1;
}

static hid_t open_file(const char *path, dp_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) dp_error_set(err, path, "no such file");
        else dp_error_set(err, path, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (access(path, R_OK) != 0) {
        dp_error_set(err, path, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || H5Fis_hdf5(path) <= 0) {
        dp_error_set(err, path, "not a readable HDF5 file (no HDF5 signature)");
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) dp_error_set(err, path, "not a readable HDF5 file (truncated or corrupt)");
    return f;
}

/* 1 if present, 0 if absent. A split is present when its group exists. */
static int split_present(hid_t file, const char *split) {
    return H5Lexists(file, split, H5P_DEFAULT) > 0;
}

static int same_layout(const char *path, const char *split, const split_meta *a,
                       const split_meta *train, dp_error *err) {
    char where[256], sa[128], st[128];
    if (a->x_type != train->x_type) {
        dp_data_where(where, sizeof where, path, split, "x");
        return dp_error_set(err, where, "x is %s but /train/x is %s", dp_xtype_name(a->x_type),
                            dp_xtype_name(train->x_type));
    }
    if (!dp_shape_equal(&a->x_shape, &train->x_shape)) {
        dp_data_where(where, sizeof where, path, split, "x");
        return dp_error_set(err, where, "row shape %s differs from /train/x row shape %s",
                            dp_shape_format(&a->x_shape, sa, sizeof sa),
                            dp_shape_format(&train->x_shape, st, sizeof st));
    }
    if (a->y_is_int != train->y_is_int || a->y_cols != train->y_cols) {
        dp_data_where(where, sizeof where, path, split, "y");
        return dp_error_set(err, where, "y is %s with %d column(s) but /train/y is %s with %d",
                            a->y_is_int ? "int32" : "float32", a->y_cols,
                            train->y_is_int ? "int32" : "float32", train->y_cols);
    }
    return 0;
}

int dp_data_read_info(const char *path, dp_data_info *info, dp_error *err) {
    memset(info, 0, sizeof *info);
    info->scale = 1;
    silence_hdf5();
    if (strlen(path) >= sizeof info->path)
        return dp_error_set(err, "data", "dataset path is longer than %zu characters",
                            sizeof info->path - 1);
    snprintf(info->path, sizeof info->path, "%s", path);
    hid_t f = open_file(path, err);
    if (f < 0) return -1;
    split_meta train, other;
    split_ids ids = {-1, -1};
    int rc = -1;
    if (open_split(f, path, "train", &ids, &train, err)) goto done;
    close_split(&ids);
    if (train.rows == 0) {
        char where[256];
        dp_data_where(where, sizeof where, path, "train", "x");
        dp_error_set(err, where, "empty dataset (0 training rows)");
        goto done;
    }
    info->x_shape = train.x_shape;
    info->x_is_int = train.x_is_int;
    info->x_type = train.x_type;
    info->y_cols = train.y_cols;
    info->y_is_int = train.y_is_int;
    info->n_train = train.rows;
    static const char *const optional[2] = {"val", "test"};
    for (int k = 0; k < 2; k++) {
        if (!split_present(f, optional[k])) continue;
        if (open_split(f, path, optional[k], &ids, &other, err)) goto done;
        close_split(&ids);
        if (same_layout(path, optional[k], &other, &train, err)) goto done;
        if (k == 0) info->has_val = 1, info->n_val = other.rows;
        else info->has_test = 1, info->n_test = other.rows;
    }
    rc = 0;
done:
    H5Fclose(f);
    return rc;
}

/* Reads rows [first, first+count) of d (rank = 1 + row rank) into buf as mtype. */
static int read_hyperslab(hid_t d, hid_t mtype, size_t first, size_t count, void *buf,
                          const char *where, dp_error *err) {
    hid_t fs = H5Dget_space(d), ms = -1;
    int rc = -1, rank = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    hsize_t start[1 + DP_MAX_DIMS] = {0}, cnt[1 + DP_MAX_DIMS];
    if (rank < 1 || rank > 1 + DP_MAX_DIMS) goto done;
    H5Sget_simple_extent_dims(fs, cnt, NULL);
    start[0] = first;
    cnt[0] = count;
    ms = H5Screate_simple(rank, cnt, NULL);
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0) goto done;
    if (H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0) goto done;
    rc = 0;
done:
    if (rc) dp_error_set(err, where, "read of rows [%zu, %zu) failed", first, first + count);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

static int check_finite(const float *v, size_t n, size_t w, size_t first, const char *where,
                        dp_error *err) {
    for (size_t i = 0; i < n * w; i++)
        if (!isfinite(v[i]))
            return dp_error_set(err, where, "non-finite value (%s) at row %zu, column %zu",
                                isnan(v[i]) ? "nan" : (v[i] > 0 ? "inf" : "-inf"), first + i / w,
                                i % w);
    return 0;
}

/* Token ids, read as int32 into x's own floats and converted in place (both
 * are 4 bytes; memcpy keeps the type punning defined). Ids outside
 * [0, n_tokens) are an error when n_tokens > 0. */
static int read_tokens(hid_t d, const dp_data_info *info, size_t first, size_t count,
                       const char *where, float *x, dp_error *err) {
    size_t w = dp_shape_numel(&info->x_shape), n = count * w;
    _Static_assert(sizeof(int32_t) == sizeof(float), "ids are converted in place");
    if (read_hyperslab(d, H5T_NATIVE_INT32, first, count, x, where, err)) return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id;
        memcpy(&id, &x[i], sizeof id);
        if (rc == 0 && info->n_tokens > 0 && (id < 0 || id >= info->n_tokens))
            rc = dp_error_set(err, where,
                              "token id %d at row %zu, column %zu is outside [0, %d) "
                              "(embedding input_dim)",
                              (int)id, first + i / w, i % w, info->n_tokens);
        x[i] = (float)id;
    }
    return rc;
}

static int check_split_name(const dp_data_info *info, const char *split, size_t *rows,
                            dp_error *err) {
    if (strcmp(split, "train") == 0) *rows = info->n_train;
    else if (strcmp(split, "val") == 0 && info->has_val) *rows = info->n_val;
    else if (strcmp(split, "test") == 0 && info->has_test) *rows = info->n_test;
    else if (strcmp(split, "val") == 0 || strcmp(split, "test") == 0)
        return dp_error_set(err, info->path, "has no /%s split", split);
    else
        return dp_error_set(err, info->path, "unknown split \"%s\" (expected train, val or test)",
                            split);
    return 0;
}

/* Reads and converts y; int labels become floats after the range check. */
static int read_y(hid_t d, const dp_data_info *info, size_t first, size_t count, int n_classes,
                  const char *where, float *y, dp_error *err) {
    size_t n = count * (size_t)info->y_cols;
    if (!info->y_is_int) {
        if (read_hyperslab(d, H5T_NATIVE_FLOAT, first, count, y, where, err)) return -1;
        return check_finite(y, count, (size_t)info->y_cols, first, where, err);
    }
    int *lab = DP_MALLOC(n * sizeof *lab); /* [count, y_cols] */
    int rc = read_hyperslab(d, H5T_NATIVE_INT, first, count, lab, where, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (n_classes > 0 && (lab[i] < 0 || lab[i] >= n_classes)) {
            size_t row = first + i / (size_t)info->y_cols;
            if (info->y_cols == 1)
                rc = dp_error_set(err, where, "label %d at row %zu outside [0, %d)", lab[i], row,
                                  n_classes);
            else
                rc = dp_error_set(err, where, "label %d at row %zu, column %zu outside [0, %d)",
                                  lab[i], row, i % (size_t)info->y_cols, n_classes);
        }
        y[i] = (float)lab[i];
    }
    free(lab);
    return rc;
}

int dp_data_read_rows(const dp_data_info *info, const char *split, size_t first, size_t count,
                      int n_classes, dp_rows *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    silence_hdf5();
    size_t rows = 0, w = dp_shape_numel(&info->x_shape);
    char wx[256], wy[256];
    if (check_split_name(info, split, &rows, err)) return -1;
    dp_data_where(wx, sizeof wx, info->path, split, "x");
    dp_data_where(wy, sizeof wy, info->path, split, "y");
    if (first > rows || count > rows - first)
        return dp_error_set(err, wx, "rows [%zu, %zu) out of range: the split has %zu rows", first,
                            first + count, rows);
    size_t row_bytes = (w > (size_t)info->y_cols ? w : (size_t)info->y_cols) * sizeof(float);
    if (count > SIZE_MAX / row_bytes)
        return dp_error_set(err, wx, "%zu rows do not fit in memory", count);
    out->n = count;
    out->x_width = w;
    out->y_cols = info->y_cols;
    out->x = DP_MALLOC(count * w * sizeof *out->x);
    out->y = DP_MALLOC(count * (size_t)info->y_cols * sizeof *out->y);
    if (count == 0) return 0;

    hid_t f = open_file(info->path, err);
    if (f < 0) {
        dp_data_rows_free(out);
        return -1;
    }
    split_ids ids = {-1, -1};
    split_meta m;
    int rc = open_split(f, info->path, split, &ids, &m, err);
    /* The file is reopened on every read: make sure it is still the one we checked. */
    if (rc == 0 &&
        (!dp_shape_equal(&m.x_shape, &info->x_shape) || m.rows != rows ||
         m.x_type != info->x_type || m.y_cols != info->y_cols || m.y_is_int != info->y_is_int))
        rc = dp_error_set(err, wx, "the file changed since it was opened");
    if (rc == 0 && info->x_is_int) {
        rc = read_tokens(ids.x, info, first, count, wx, out->x, err);
    } else if (rc == 0) {
        rc = read_hyperslab(ids.x, dp_xtype_mem_type(info->x_type), first, count, out->x, wx, err);
        if (rc == 0) dp_xtype_to_float(info->x_type, out->x, count * w, info->scale, info->offset);
        if (rc == 0) rc = check_finite(out->x, count, w, first, wx, err);
    }
    if (rc == 0) rc = read_y(ids.y, info, first, count, n_classes, wy, out->y, err);
    close_split(&ids);
    H5Fclose(f);
    if (rc) dp_data_rows_free(out);
    return rc;
}

void dp_data_rows_free(dp_rows *r) {
    if (!r) return;
    free(r->x);
    free(r->y);
    memset(r, 0, sizeof *r);
}
