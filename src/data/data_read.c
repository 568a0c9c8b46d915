/* data_read.c - validate an HDF5 dataset file and read row ranges by hyperslab. */
#include "data/data.h"
#include "data/data_dtype.h"
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
    /* Without a sieve buffer a scattered row costs one read of its own bytes,
     * not a 64 KiB read around it (HDF5's default for contiguous datasets). */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_sieve_buf_size(fapl, DP_DATA_SIEVE_BYTES);
#if H5_VERSION_GE(1, 10, 7)
    /* A shared file system without flock (Lustre, some NFS) would refuse the
     * read lock HDF5 takes by default: keep it where it works. */
    if (fapl >= 0) H5Pset_file_locking(fapl, 1, 1);
#endif
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (fapl >= 0) H5Pclose(fapl);
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

/* A run of consecutive rows in the file. */
typedef struct row_run {
    size_t first, count;
} row_run;

/* Reads the rows of `runs` of d (rank = 1 + row rank) into buf as mtype, run
 * after run: one H5Dread over the union of the runs' hyperslabs. */
static int read_runs(hid_t d, hid_t mtype, const row_run *runs, size_t n_runs, size_t rows,
                     void *buf, const char *where, dp_error *err) {
    hid_t fs = H5Dget_space(d), ms = -1;
    int rc = -1, rank = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    hsize_t start[1 + DP_MAX_DIMS] = {0}, cnt[1 + DP_MAX_DIMS];
    if (rank < 1 || rank > 1 + DP_MAX_DIMS) goto done;
    H5Sget_simple_extent_dims(fs, cnt, NULL);
    for (size_t i = 0; i < n_runs; i++) {
        start[0] = runs[i].first;
        cnt[0] = runs[i].count;
        if (H5Sselect_hyperslab(fs, i ? H5S_SELECT_OR : H5S_SELECT_SET, start, NULL, cnt, NULL) < 0)
            goto done;
    }
    cnt[0] = rows;
    ms = H5Screate_simple(rank, cnt, NULL);
    if (ms < 0 || H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0) goto done;
    rc = 0;
done:
    if (rc && n_runs == 1)
        dp_error_set(err, where, "read of rows [%zu, %zu) failed", runs[0].first,
                     runs[0].first + runs[0].count);
    else if (rc)
        dp_error_set(err, where, "read of %zu rows in %zu runs from row %zu on failed", rows,
                     n_runs, runs[0].first);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

/* The file row of output row i: ids[i], or first + i for a range. */
static size_t row_of(const uint64_t *ids, size_t first, size_t i) {
    return ids ? (size_t)ids[i] : first + i;
}

/* 1 when no value is NaN or Inf: an all-ones exponent. A loop without an
 * early exit, so the compiler vectorizes it; streamed rows pass through it at
 * every step. */
static int all_finite(const float *v, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, v + i, sizeof b);
        bad |= (b & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

static int check_finite(const float *v, size_t n, size_t w, const uint64_t *ids, size_t first,
                        const char *where, dp_error *err) {
    if (all_finite(v, n * w)) return 0;
    for (size_t i = 0; i < n * w; i++)
        if (!isfinite(v[i]))
            return dp_error_set(err, where, "non-finite value (%s) at row %zu, column %zu",
                                isnan(v[i]) ? "nan" : (v[i] > 0 ? "inf" : "-inf"),
                                row_of(ids, first, i / w), i % w);
    return 0;
}

/* Token ids, converted in place from int32 to float (both are 4 bytes; memcpy
 * keeps the type punning defined). Ids outside [0, n_tokens) are an error when
 * n_tokens > 0. */
static int convert_tokens(const dp_data_info *info, float *x, size_t count, const uint64_t *ids,
                          size_t first, const char *where, dp_error *err) {
    size_t w = dp_shape_numel(&info->x_shape), n = count * w;
    _Static_assert(sizeof(int32_t) == sizeof(float), "ids are converted in place");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id;
        memcpy(&id, &x[i], sizeof id);
        if (rc == 0 && info->n_tokens > 0 && (id < 0 || id >= info->n_tokens))
            rc = dp_error_set(err, where,
                              "token id %d at row %zu, column %zu is outside [0, %d) "
                              "(embedding input_dim)",
                              (int)id, row_of(ids, first, i / w), i % w, info->n_tokens);
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

/* Int labels become floats after the range check; float targets must be finite. */
static int convert_y(const dp_data_info *info, const int32_t *lab, float *y, size_t count,
                     int n_classes, const uint64_t *ids, size_t first, const char *where,
                     dp_error *err) {
    size_t yc = (size_t)info->y_cols, n = count * yc;
    if (!info->y_is_int) return check_finite(y, count, yc, ids, first, where, err);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && n_classes > 0 && (lab[i] < 0 || lab[i] >= n_classes)) {
            size_t row = row_of(ids, first, i / yc);
            if (yc == 1)
                rc = dp_error_set(err, where, "label %d at row %zu outside [0, %d)", lab[i], row,
                                  n_classes);
            else
                rc = dp_error_set(err, where, "label %d at row %zu, column %zu outside [0, %d)",
                                  lab[i], row, i % yc, n_classes);
        }
        y[i] = (float)lab[i];
    }
    return rc;
}

_Static_assert(sizeof(hid_t) <= sizeof(int64_t), "dp_data_file keeps hid_t in int64_t");

/* Chunk cache of dataset d for reads of about rows_per_read rows: room for the
 * chunks one read touches (HDF5 visits each chunk once per read), at most
 * DP_DATA_CACHE_MAX bytes. A contiguous dataset needs none. Returns the dataset
 * access plist to open it with, or H5P_DEFAULT. */
static hid_t chunk_cache_plist(hid_t d, size_t rows_per_read) {
    hid_t dcpl = H5Dget_create_plist(d), t = H5Dget_type(d), sp = H5Dget_space(d);
    hid_t dapl = H5P_DEFAULT;
    hsize_t chunk[1 + DP_MAX_DIMS], dims[1 + DP_MAX_DIMS];
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (dcpl >= 0 && t >= 0 && rank >= 1 && rank <= 1 + DP_MAX_DIMS &&
        H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, rank, chunk) == rank) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t bytes = H5Tget_size(t), n_chunks = 1;
        for (int i = 0; i < rank; i++) {
            bytes *= (size_t)chunk[i];
            if (i > 0) n_chunks *= (size_t)((dims[i] + chunk[i] - 1) / chunk[i]);
        }
        size_t rows_chunks = chunk[0] ? (size_t)((dims[0] + chunk[0] - 1) / chunk[0]) : 1;
        size_t per_read = rows_per_read < rows_chunks ? rows_per_read : rows_chunks;
        size_t want = per_read * n_chunks * bytes;
        if (want > DP_DATA_CACHE_MAX) want = DP_DATA_CACHE_MAX;
        if (want < bytes) want = bytes;
        size_t slots = 100 * (want / bytes) + 1;
        if (slots < 521) slots = 521;
        dapl = H5Pcreate(H5P_DATASET_ACCESS);
        if (dapl >= 0 && H5Pset_chunk_cache(dapl, slots, want, 1.0) < 0) {
            H5Pclose(dapl);
            dapl = H5P_DEFAULT;
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    return dapl < 0 ? H5P_DEFAULT : dapl;
}

/* Reopens *d with a chunk cache for reads of rows_per_read rows. */
static void set_chunk_cache(hid_t file, const char *split, const char *name, hid_t *d,
                            size_t rows_per_read) {
    hid_t dapl = chunk_cache_plist(*d, rows_per_read);
    if (dapl == H5P_DEFAULT) return;
    char link[64];
    snprintf(link, sizeof link, "/%s/%s", split, name);
    hid_t again = H5Dopen2(file, link, dapl);
    H5Pclose(dapl);
    if (again < 0) return; /* keeps the default cache */
    H5Dclose(*d);
    *d = again;
}

/* Sets up d for reading dataset ds by pread when HDF5 would only copy bytes:
 * contiguous storage (so no filter), allocated, and stored as mtype is in
 * memory. HDF5 walks a selection of many scattered rows at about 2 us per
 * row, more than the copy itself; the file offset of a contiguous dataset is
 * public (H5Dget_offset), and pread of it is the same bytes. Leaves d->fd -1
 * (read through HDF5) otherwise. */
static void direct_setup(dp_data_direct *d, hid_t file, hid_t ds, hid_t mtype) {
    d->fd = -1;
    hid_t dcpl = H5Dget_create_plist(ds), t = H5Dget_type(ds), sp = H5Dget_space(ds);
    haddr_t off = H5Dget_offset(ds);
    void *handle = NULL;
    hsize_t dims[1 + DP_MAX_DIMS];
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (dcpl >= 0 && t >= 0 && rank >= 1 && rank <= 1 + DP_MAX_DIMS &&
        H5Pget_layout(dcpl) == H5D_CONTIGUOUS && off != HADDR_UNDEF && H5Tequal(t, mtype) > 0 &&
        H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        size_t row = H5Tget_size(t);
        for (int i = 1; i < rank; i++) row *= (size_t)dims[i];
        d->fd = *(int *)handle;
        d->offset = (long long)off;
        d->row_bytes = row;
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
}

/* The runs' rows of a direct dataset, one pread per run, into buf. */
static int read_direct(const dp_data_direct *d, const row_run *runs, size_t n_runs, void *buf,
                       const char *path, const char *where, dp_error *err) {
    char *p = buf;
    for (size_t i = 0; i < n_runs; i++) {
        size_t want = runs[i].count * d->row_bytes, got = 0;
        off_t at = (off_t)(d->offset + (long long)(runs[i].first * d->row_bytes));
        while (got < want) {
            ssize_t n = pread(d->fd, p + got, want - got, at + (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                return dp_error_set(err, where, "read of rows [%zu, %zu) failed: %s", runs[i].first,
                                    runs[i].first + runs[i].count, strerror(errno));
            if (n == 0)
                return dp_error_set(err, path,
                                    "the file ends before row %zu of %s: truncated while it was "
                                    "being read",
                                    runs[i].first, where);
            got += (size_t)n;
        }
        p += want;
    }
    return 0;
}

/* The size of h's file as its open descriptor sees it now, or -1. */
static long long file_size(const dp_data_file *h) {
    void *handle = NULL;
    struct stat st;
    if (H5Fget_vfd_handle((hid_t)h->file, H5P_DEFAULT, &handle) < 0 || !handle ||
        fstat(*(int *)handle, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

int dp_data_open(dp_data_file *h, const dp_data_info *info, const char *split, size_t rows_per_read,
                 dp_error *err) {
    memset(h, 0, sizeof *h);
    h->file = h->x = h->y = -1;
    h->direct[0].fd = h->direct[1].fd = -1;
    silence_hdf5();
    if (check_split_name(info, split, &h->rows, err)) return -1;
    h->info = info;
    snprintf(h->split, sizeof h->split, "%s", split);
    dp_data_where(h->wx, sizeof h->wx, info->path, split, "x");
    dp_data_where(h->wy, sizeof h->wy, info->path, split, "y");
    hid_t f = open_file(info->path, err);
    if (f < 0) return -1;
    split_ids ids = {-1, -1};
    split_meta m;
    int rc = open_split(f, info->path, split, &ids, &m, err);
    /* The file is reopened after it was checked: make sure it is still that one. */
    if (rc == 0 &&
        (!dp_shape_equal(&m.x_shape, &info->x_shape) || m.rows != h->rows ||
         m.x_type != info->x_type || m.y_cols != info->y_cols || m.y_is_int != info->y_is_int))
        rc = dp_error_set(err, h->wx, "the file changed since it was opened");
    if (rc) {
        close_split(&ids);
        H5Fclose(f);
        return -1;
    }
    if (rows_per_read > 0) {
        set_chunk_cache(f, split, "x", &ids.x, rows_per_read);
        set_chunk_cache(f, split, "y", &ids.y, rows_per_read);
    }
    h->file = f;
    h->x = ids.x;
    h->y = ids.y;
    h->size = file_size(h);
    /* Streamed reads of labels that HDF5 must gather (chunked, compressed)
     * come from one copy of the split's y, when it is small. */
    h->cache_y = rows_per_read > 0 && h->rows * (size_t)info->y_cols * 4 <= DP_DATA_YCACHE_MAX;
    direct_setup(&h->direct[0], f, ids.x, dp_xtype_mem_type(info->x_type));
    direct_setup(&h->direct[1], f, ids.y, info->y_is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT);
    return 0;
}

void dp_data_close(dp_data_file *h) {
    if (h->x >= 0) H5Dclose((hid_t)h->x);
    if (h->y >= 0) H5Dclose((hid_t)h->y);
    if (h->file >= 0) H5Fclose((hid_t)h->file);
    free(h->scratch);
    free(h->order);
    free(h->ycache);
    memset(h, 0, sizeof *h);
    h->file = h->x = h->y = -1;
}

/* Grows the handle's scratch buffer to n bytes. */
static void *scratch(dp_data_file *h, size_t n) {
    if (n > h->scratch_cap) {
        free(h->scratch);
        h->scratch = DP_MALLOC(n);
        h->scratch_cap = n;
    }
    return h->scratch;
}

/* The runs' rows of y from the handle's copy of the whole split's y, read
 * once: labels stored chunked or compressed (the converters pack them) would
 * otherwise cost an HDF5 selection of every run at every step. */
static int read_y_cached(dp_data_file *h, const row_run *runs, size_t n_runs, void *ybuf) {
    size_t row = (size_t)h->info->y_cols * 4;
    if (!h->ycache) {
        row_run all = {0, h->rows};
        h->ycache = DP_MALLOC(h->rows * row);
        hid_t yt = h->info->y_is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
        if (read_runs((hid_t)h->y, yt, &all, 1, h->rows, h->ycache, h->wy, &h->err)) {
            free(h->ycache);
            h->ycache = NULL;
            return -1;
        }
    }
    char *out = ybuf;
    for (size_t i = 0; i < n_runs; i++) {
        memcpy(out, (char *)h->ycache + runs[i].first * row, runs[i].count * row);
        out += runs[i].count * row;
    }
    return 0;
}

/* Reads x and y of `runs` (rows in run order) into x [rows, w] and lab or y
 * [rows, yc]: stored order, unconverted labels; x widened to floats in place
 * when `widen`, else left as stored. */
static int read_stored(dp_data_file *h, const row_run *runs, size_t n_runs, size_t rows, float *x,
                       void *ybuf, int widen) {
    const dp_data_info *info = h->info;
    /* HDF5 reads zeros past the end of a file cut short after it was opened
     * (a shared file system's file replaced or truncated in place): check. */
    long long size = file_size(h);
    if (size >= 0 && h->size >= 0 && size < h->size)
        return dp_error_set(&h->err, info->path,
                            "the file shrank from %lld to %lld bytes while it was being read "
                            "(truncated or rewritten in place)",
                            h->size, size);
    hid_t xt = dp_xtype_mem_type(info->x_type);
    hid_t yt = info->y_is_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
    if (h->direct[0].fd >= 0
            ? read_direct(&h->direct[0], runs, n_runs, x, info->path, h->wx, &h->err)
            : read_runs((hid_t)h->x, xt, runs, n_runs, rows, x, h->wx, &h->err))
        return -1;
    /* Compact features widen in place to x * scale + offset (data_dtype.h). */
    if (widen)
        dp_xtype_to_float(info->x_type, x, rows * dp_shape_numel(&info->x_shape), info->scale,
                          info->offset);
    if (h->direct[1].fd >= 0)
        return read_direct(&h->direct[1], runs, n_runs, ybuf, info->path, h->wy, &h->err);
    if (h->cache_y) return read_y_cached(h, runs, n_runs, ybuf);
    return read_runs((hid_t)h->y, yt, runs, n_runs, rows, ybuf, h->wy, &h->err);
}

/* Turns rows as stored (tokens as int32 bits, labels as int32) into floats
 * and checks them. */
static int convert_rows(dp_data_file *h, float *x, const int32_t *lab, float *y, size_t count,
                        int n_classes, const uint64_t *ids, size_t first) {
    const dp_data_info *info = h->info;
    size_t w = dp_shape_numel(&info->x_shape);
    int rc = 0;
    if (info->x_is_int) rc = convert_tokens(info, x, count, ids, first, h->wx, &h->err);
    else if (dp_xtype_may_overflow(info->x_type, info->scale, info->offset))
        rc = check_finite(x, count, w, ids, first, h->wx, &h->err);
    if (rc == 0) rc = convert_y(info, lab, y, count, n_classes, ids, first, h->wy, &h->err);
    return rc;
}

int dp_data_read_range(dp_data_file *h, size_t first, size_t count, int n_classes, float *x,
                       float *y, dp_error *err) {
    if (first > h->rows || count > h->rows - first)
        return dp_error_set(err, h->wx, "rows [%zu, %zu) out of range: the split has %zu rows",
                            first, first + count, h->rows);
    if (count == 0) return 0;
    h->err = (dp_error){0};
    size_t yn = count * (size_t)h->info->y_cols;
    int32_t *lab = h->info->y_is_int ? scratch(h, yn * sizeof *lab) : NULL;
    row_run run = {first, count};
    int rc = read_stored(h, &run, 1, count, x, lab ? (void *)lab : (void *)y, 1);
    if (rc == 0) rc = convert_rows(h, x, lab, y, count, n_classes, NULL, first);
    if (rc) *err = h->err;
    return rc;
}

static int cmp_u64_pair(const void *a, const void *b) {
    const uint64_t *p = a, *q = b;
    return (p[0] > q[0]) - (p[0] < q[0]);
}

/* Reads rows ids[0..count) of h's split: y converted into y in the callers'
 * order; x either widened into x in that order, or (x NULL) left as stored
 * in xraw in file order with raw_row[i] naming row i's place there. */
static int read_ids(dp_data_file *h, const uint64_t *ids, size_t count, int n_classes, float *x,
                    void *xraw, uint32_t *raw_row, float *y, dp_error *err) {
    if (count == 0) return 0;
    h->err = (dp_error){0};
    const dp_data_info *info = h->info;
    size_t w = dp_shape_numel(&info->x_shape), yc = (size_t)info->y_cols;
    /* Sorted (id, output row) pairs, then runs of consecutive ids: the fewest
     * hyperslabs, read in file order. */
    if (2 * count > h->order_cap) {
        free(h->order);
        h->order_cap = 2 * count;
        h->order = DP_MALLOC(h->order_cap * sizeof *h->order);
    }
    uint64_t *pairs = h->order; /* [count, 2] */
    for (size_t i = 0; i < count; i++) {
        if (ids[i] >= h->rows)
            return dp_error_set(err, h->wx, "row %llu out of range: the split has %zu rows",
                                (unsigned long long)ids[i], h->rows);
        pairs[2 * i] = ids[i];
        pairs[2 * i + 1] = i;
    }
    qsort(pairs, count, 2 * sizeof *pairs, cmp_u64_pair);
    size_t n_runs = 0;
    for (size_t i = 0; i < count; i++)
        if (i == 0 || pairs[2 * i] != pairs[2 * i - 2] + 1) n_runs++;
    /* Scratch: the runs, x as stored in file order [count, w] (unless xraw
     * takes it), y as stored [count, yc]; runs first, so all are aligned. */
    size_t xb = xraw ? 0 : count * w * sizeof(float), yb = count * yc * sizeof(float);
    size_t rb = n_runs * sizeof(row_run);
    row_run *runs = scratch(h, rb + xb + yb);
    size_t r = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || pairs[2 * i] != pairs[2 * i - 2] + 1)
            runs[r++] = (row_run){(size_t)pairs[2 * i], 0};
        runs[r - 1].count++;
    }
    float *sx = xraw ? xraw : (float *)(void *)(runs + n_runs);
    char *sy = (char *)(void *)(runs + n_runs) + xb;
    if (read_stored(h, runs, n_runs, count, sx, sy, 0)) {
        *err = h->err;
        return -1;
    }
    /* Back to the caller's order, x widened on the way (one pass over the
     * rows); y keeps its stored bits until converted. */
    if (!xraw)
        dp_xtype_rows_to_float(info->x_type, sx, NULL, count, w, x, pairs + 1, 2, info->scale,
                               info->offset);
    for (size_t i = 0; i < count; i++) {
        size_t out = (size_t)pairs[2 * i + 1];
        if (xraw) raw_row[out] = (uint32_t)i;
        memcpy((char *)y + out * yc * 4, sy + i * yc * 4, yc * 4);
    }
    int32_t *lab = NULL;
    if (info->y_is_int) {
        /* Labels were copied as int32 bits into y: their stored copy, no longer
         * needed in file order, takes them back for the conversion. */
        lab = (int32_t *)(void *)sy;
        memcpy(lab, y, count * yc * sizeof *lab);
    }
    int rc = xraw ? convert_y(info, lab, y, count, n_classes, ids, 0, h->wy, &h->err)
                  : convert_rows(h, x, lab, y, count, n_classes, ids, 0);
    if (rc) *err = h->err;
    return rc ? -1 : 0;
}

int dp_data_read_ids(dp_data_file *h, const uint64_t *ids, size_t count, int n_classes, float *x,
                     float *y, dp_error *err) {
    return read_ids(h, ids, count, n_classes, x, NULL, NULL, y, err);
}

int dp_data_read_ids_raw(dp_data_file *h, const uint64_t *ids, size_t count, int n_classes,
                         void *xraw, uint32_t *raw_row, float *y, dp_error *err) {
    if (h->info->x_is_int)
        return dp_error_set(err, h->wx, "token ids are read converted (dp_data_read_ids)");
    return read_ids(h, ids, count, n_classes, NULL, xraw, raw_row, y, err);
}

int dp_data_widen_rows(const dp_data_info *info, const void *xraw, const uint32_t *raw_row,
                       const uint64_t *ids, size_t rows, const float *mean, const float *std,
                       float *out, dp_error *err) {
    size_t w = dp_shape_numel(&info->x_shape);
    dp_xtype_rows_to_float(info->x_type, xraw, raw_row, rows, w, out, NULL, 0, info->scale,
                           info->offset);
    char where[256];
    dp_data_where(where, sizeof where, info->path, "train", "x");
    if (dp_xtype_may_overflow(info->x_type, info->scale, info->offset) &&
        check_finite(out, rows, w, ids, 0, where, err))
        return -1;
    if (mean) {
        /* The formula of dp_data_standardize, so the bits are the in-memory ones. */
        dp_rows r = {.n = rows, .x_width = w, .x = out};
        dp_data_standardize(&r, mean, std);
    }
    return 0;
}

int dp_data_read_rows(const dp_data_info *info, const char *split, size_t first, size_t count,
                      int n_classes, dp_rows *out, dp_error *err) {
    memset(out, 0, sizeof *out);
    size_t rows = 0, w = dp_shape_numel(&info->x_shape);
    char wx[256];
    if (check_split_name(info, split, &rows, err)) return -1;
    dp_data_where(wx, sizeof wx, info->path, split, "x");
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
    dp_data_file h;
    int rc = dp_data_open(&h, info, split, 0, err);
    if (rc == 0) rc = dp_data_read_range(&h, first, count, n_classes, out->x, out->y, err);
    dp_data_close(&h);
    if (rc) dp_data_rows_free(out);
    return rc;
}

void dp_data_rows_free(dp_rows *r) {
    if (!r) return;
    free(r->x);
    free(r->y);
    memset(r, 0, sizeof *r);
}
