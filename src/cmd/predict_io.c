/* predict_io.c - reading predict's input rows and writing its output atomically. */
#include "cmd/predict_io.h"
#include "data/data_dtype.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* " (HDF5: <most specific message>)" of the error stack, which is then cleared. */
static herr_t pio_walk(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    char *buf = data;
    if (buf[0] == '\0' && e->desc && e->desc[0]) snprintf(buf, 200, " (HDF5: %s)", e->desc);
    return 0;
}

static const char *pio_detail(char buf[200]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, pio_walk, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

/* The dataset's link exists, every group on its way included (H5Lexists fails
 * on a path through a missing group instead of answering no). */
static int pio_link_exists(hid_t file, const char *ds) {
    char part[DP_PATH_MAX];
    size_t len = strlen(ds);
    if (len == 0 || len >= sizeof part) return 0;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && ds[i] != '/') continue;
        memcpy(part, ds, i);
        part[i] = '\0';
        if (H5Lexists(file, part, H5P_DEFAULT) <= 0) return 0;
    }
    return 1;
}

static int pio_check_layout(dp_pred_input *in, dp_error *err) {
    hid_t t = H5Dget_type(in->ds), s = H5Dget_space(in->ds);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1, rc = -1;
    hsize_t dims[1 + DP_MAX_DIMS];
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        dp_error_set(err, in->where, "expected numbers (float or integer), got another type");
    else if (rank < 2 || rank > 1 + DP_MAX_DIMS)
        dp_error_set(err, in->where, "expected rows [N, ...] of rank 2 to %d, got rank %d",
                     1 + DP_MAX_DIMS, rank);
    else rc = 0;
    if (rc == 0) {
        H5Sget_simple_extent_dims(s, dims, NULL);
        in->n = (size_t)dims[0];
        in->is_int = cls == H5T_INTEGER;
        in->row.ndim = rank - 1;
        hsize_t width = 1;
        for (int i = 1; i < rank && rc == 0; i++) {
            width *= dims[i];
            if (dims[i] == 0 || dims[i] > INT_MAX || width > INT_MAX)
                rc = dp_error_set(err, in->where, "dimension %d has size %llu", i,
                                  (unsigned long long)dims[i]);
            else in->row.dim[i - 1] = (int)dims[i];
        }
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int dp_pred_input_open(dp_pred_input *in, const char *path, const char *dataset, dp_error *err) {
    memset(in, 0, sizeof *in);
    in->file = in->ds = -1;
    in->scale = 1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our one error line instead of HDF5's stack */
    char ds[DP_PATH_MAX];
    snprintf(ds, sizeof ds, "%s%s", dataset[0] == '/' ? "" : "/", dataset);
    snprintf(in->where, sizeof in->where, "%s:%s", path, ds);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return dp_error_set(err, path, errno == ENOENT ? "no such file" : "cannot open: %s",
                            strerror(errno));
    if (!S_ISREG(sb.st_mode) || access(path, R_OK) != 0 || H5Fis_hdf5(path) <= 0)
        return dp_error_set(err, path, "not a readable HDF5 file");
    in->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (in->file < 0)
        return dp_error_set(err, path, "not a readable HDF5 file (truncated or corrupt)");
    if (!pio_link_exists(in->file, ds)) dp_error_set(err, in->where, "missing dataset");
    else if ((in->ds = H5Dopen2(in->file, ds, H5P_DEFAULT)) < 0)
        dp_error_set(err, in->where, "not a dataset");
    else pio_check_layout(in, err);
    if (err && err->set) {
        dp_pred_input_close(in);
        return -1;
    }
    return 0;
}

/* In place: int32 ids in x's own bytes become floats (both 4 bytes). */
static int pio_ids_to_floats(const dp_pred_input *in, float *x, size_t n, size_t w, size_t first,
                             int n_tokens, dp_error *err) {
    _Static_assert(sizeof(int32_t) == sizeof(float), "ids are converted in place");
    int rc = 0;
    for (size_t i = 0; i < n * w; i++) {
        int32_t id;
        memcpy(&id, &x[i], sizeof id);
        if (rc == 0 && (id < 0 || id >= n_tokens))
            rc = dp_error_set(err, in->where,
                              "token id %d at row %zu, column %zu is outside [0, %d) (the "
                              "embedding's input_dim)",
                              (int)id, first + i / w, i % w, n_tokens);
        x[i] = (float)id;
    }
    return rc;
}

int dp_pred_input_read(const dp_pred_input *in, size_t first, size_t count, int n_tokens, float *x,
                       dp_error *err) {
    if (count == 0) return 0;
    size_t w = dp_shape_numel(&in->row);
    hid_t fs = H5Dget_space(in->ds), ms = -1;
    hsize_t start[1 + DP_MAX_DIMS] = {0}, cnt[1 + DP_MAX_DIMS];
    int rc = -1;
    if (fs >= 0) {
        H5Sget_simple_extent_dims(fs, cnt, NULL);
        start[0] = first;
        cnt[0] = count;
        ms = H5Screate_simple(1 + in->row.ndim, cnt, NULL);
    }
    /* HDF5 converts any stored number type: ids to int32, features to float. */
    hid_t mtype = n_tokens > 0 ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
    if (ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        H5Dread(in->ds, mtype, ms, fs, H5P_DEFAULT, x) >= 0)
        rc = 0;
    char detail[200];
    if (rc)
        dp_error_set(err, in->where, "read of rows [%zu, %zu) failed%s", first, first + count,
                     pio_detail(detail));
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (rc) return -1;
    if (n_tokens > 0) return pio_ids_to_floats(in, x, count, w, first, n_tokens, err);
    dp_xtype_to_float(DP_X_F32, x, count * w, in->scale, in->offset);
    for (size_t i = 0; i < count * w; i++)
        if (!isfinite(x[i]))
            return dp_error_set(err, in->where, "non-finite value (%s) at row %zu, column %zu",
                                isnan(x[i]) ? "nan" : (x[i] > 0 ? "inf" : "-inf"), first + i / w,
                                i % w);
    return 0;
}

void dp_pred_input_close(dp_pred_input *in) {
    if (in->ds >= 0) H5Dclose(in->ds);
    if (in->file >= 0) H5Fclose(in->file);
    in->ds = in->file = -1;
}

/* Splits path into its directory ("." when none) and its last component. */
static int pio_split_path(const char *path, char *dir, size_t n, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (slash && len == 0) len = 1; /* "/out.h5": the root */
    if (!slash) return snprintf(dir, n, ".") < 0 ? -1 : 0;
    if (len >= n) return -1;
    memcpy(dir, path, len);
    dir[len] = '\0';
    return 0;
}

int dp_pred_output_check(const char *path, dp_error *err) {
    char dir[DP_PATH_MAX];
    const char *base;
    struct stat sb;
    if (strlen(path) >= DP_PATH_MAX || pio_split_path(path, dir, sizeof dir, &base))
        return dp_error_set(err, path, "the output path is too long");
    if (base[0] == '\0' || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return dp_error_set(err, path, "is a directory; --output needs a file name");
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return dp_error_set(err, path, "no such directory '%s' (create it first)", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return dp_error_set(err, path, "cannot write in directory '%s': %s", dir, strerror(errno));
    return 0;
}

static hid_t pio_create_dataset(hid_t file, const char *name, hid_t type, int rank,
                                const hsize_t *dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    /* No timestamps: the same predictions give the same bytes, on any rank count. */
    if (space >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0)
        d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return d;
}

int dp_pred_output_create(dp_pred_output *o, const char *path, size_t n, const dp_shape *out,
                          int class_ndim, int positions, dp_error *err) {
    memset(o, 0, sizeof *o);
    o->file = o->pred = o->cls = -1;
    const char *base;
    if (dp_pred_output_check(path, err) || pio_split_path(path, o->dir, sizeof o->dir, &base))
        return -1;
    snprintf(o->final, sizeof o->final, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s/.%s.tmp-%ld", o->dir, base, (long)getpid());
    /* Created here first: HDF5 would hide errno behind "unable to open file". */
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return dp_error_set(err, path, "cannot create %s: %s", o->tmp, strerror(errno));
    close(fd);
    char detail[200];
    hsize_t dims[1 + DP_MAX_DIMS] = {n}, cdims[2] = {n, (hsize_t)positions};
    for (int i = 0; i < out->ndim; i++) dims[1 + i] = (hsize_t)out->dim[i];
    o->file = H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (o->file >= 0)
        o->pred = pio_create_dataset(o->file, "/predictions", H5T_IEEE_F32LE, 1 + out->ndim, dims);
    if (o->pred >= 0 && class_ndim > 0)
        o->cls = pio_create_dataset(o->file, "/classes", H5T_STD_I32LE, class_ndim, cdims);
    if (o->file < 0 || o->pred < 0 || (class_ndim > 0 && o->cls < 0)) {
        dp_error_set(err, path, "cannot create the output datasets%s", pio_detail(detail));
        dp_pred_output_abort(o);
        return -1;
    }
    return 0;
}

static int pio_write_rows(hid_t d, hid_t mtype, size_t first, size_t count, const void *buf) {
    hid_t fs = H5Dget_space(d), ms = -1;
    hsize_t start[1 + DP_MAX_DIMS] = {0}, cnt[1 + DP_MAX_DIMS];
    int rc = -1, rank = fs >= 0 ? H5Sget_simple_extent_ndims(fs) : -1;
    if (rank >= 1) {
        H5Sget_simple_extent_dims(fs, cnt, NULL);
        start[0] = first;
        cnt[0] = count;
        ms = H5Screate_simple(rank, cnt, NULL);
    }
    if (ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) >= 0 &&
        H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

int dp_pred_output_write(dp_pred_output *o, size_t first, size_t count, const float *pred,
                         const int32_t *cls, dp_error *err) {
    if (count == 0) return 0;
    char detail[200];
    if (pio_write_rows(o->pred, H5T_NATIVE_FLOAT, first, count, pred) ||
        (o->cls >= 0 && pio_write_rows(o->cls, H5T_NATIVE_INT32, first, count, cls)))
        return dp_error_set(err, o->final, "writing rows [%zu, %zu) failed%s", first, first + count,
                            pio_detail(detail));
    return 0;
}

static int pio_fsync(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd), e = errno;
    close(fd);
    errno = e;
    return rc;
}

int dp_pred_output_commit(dp_pred_output *o, dp_error *err) {
    char detail[200];
    int rc = 0;
    if (o->cls >= 0) H5Dclose(o->cls);
    H5Dclose(o->pred);
    o->cls = o->pred = -1;
    /* Closing flushes the metadata: a full disk shows up here. */
    if (H5Fclose(o->file) < 0)
        rc = dp_error_set(err, o->final, "flushing the output failed%s", pio_detail(detail));
    o->file = -1;
    if (rc == 0 && pio_fsync(o->tmp, O_RDONLY) != 0)
        rc = dp_error_set(err, o->final, "fsync of %s failed: %s", o->tmp, strerror(errno));
    if (rc == 0 && rename(o->tmp, o->final) != 0)
        rc =
            dp_error_set(err, o->final, "cannot rename %s into place: %s", o->tmp, strerror(errno));
    if (rc) {
        unlink(o->tmp);
        return -1;
    }
    o->tmp[0] = '\0';
    /* Some file systems cannot fsync a directory (EINVAL); the rename still stands. */
    if (pio_fsync(o->dir, O_RDONLY | O_DIRECTORY) != 0 && errno != EINVAL)
        return dp_error_set(err, o->dir, "fsync of the output directory failed: %s",
                            strerror(errno));
    return 0;
}

void dp_pred_output_abort(dp_pred_output *o) {
    if (o->cls > 0) H5Dclose(o->cls);
    if (o->pred > 0) H5Dclose(o->pred);
    if (o->file > 0) H5Fclose(o->file);
    o->file = o->pred = o->cls = -1;
    if (o->tmp[0]) unlink(o->tmp);
    o->tmp[0] = '\0';
}
