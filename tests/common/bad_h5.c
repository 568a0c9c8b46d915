/* bad_h5.c - the table of defective dataset files (bad_h5.h). */
#include "bad_h5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_RANK = 7 }; /* the row's dimensions (at most DP_MAX_DIMS) plus the rows */

float bad_h5_x_value(int s, size_t row, size_t col) {
    return (float)(s * 100000 + (int)row * 64 + (int)col) * 0.25f - 7.0f;
}

int bad_h5_label_value(size_t row) {
    return (int)(row % 3);
}

float bad_h5_target_value(size_t row, int k) {
    return (float)row * 0.5f + (float)k;
}

hid_t bad_h5_create(const char *path, int latest) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int bad_h5_write_ds(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *buf) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d >= 0 ? 0 : -1;
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    if (d >= 0 && n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    return rc;
}

int bad_h5_put_x(hid_t f, const char *split, int s, size_t n, int row_rank, const int *row,
                 hid_t ftype) {
    hsize_t dims[MAX_RANK] = {n};
    size_t w = 1;
    for (int i = 0; i < row_rank; i++) w *= (size_t)row[i], dims[1 + i] = (hsize_t)row[i];
    float *x = malloc((n * w + 1) * sizeof *x);
    if (!x) return -1;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < w; j++) x[i * w + j] = bad_h5_x_value(s, i, j);
    char name[64];
    snprintf(name, sizeof name, "/%s/x", split);
    int rc = bad_h5_write_ds(f, name, ftype, H5T_NATIVE_FLOAT, 1 + row_rank, dims, x);
    free(x);
    return rc;
}

int bad_h5_put_y(hid_t f, const char *split, size_t n, int ycols, hid_t ftype) {
    char name[64];
    snprintf(name, sizeof name, "/%s/y", split);
    int rc;
    if (ycols == 0) {
        int *y = malloc((n + 1) * sizeof *y);
        if (!y) return -1;
        for (size_t i = 0; i < n; i++) y[i] = bad_h5_label_value(i);
        hsize_t dims[1] = {n};
        rc = bad_h5_write_ds(f, name, ftype ? ftype : H5T_STD_I32LE, H5T_NATIVE_INT, 1, dims, y);
        free(y);
    } else {
        float *y = malloc((n * (size_t)ycols + 1) * sizeof *y);
        if (!y) return -1;
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < ycols; k++)
                y[i * (size_t)ycols + (size_t)k] = bad_h5_target_value(i, k);
        hsize_t dims[2] = {n, (hsize_t)ycols};
        rc = bad_h5_write_ds(f, name, ftype ? ftype : H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, y);
        free(y);
    }
    return rc;
}

/* --- files that are not HDF5 ---------------------------------------------------- */

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int rc = (n && fwrite(data, 1, n, fp) != n) ? -1 : 0;
    return fclose(fp) != 0 ? -1 : rc;
}

static int w_text(const char *path, int latest) {
    (void)latest;
    static const char text[] = "x,y\n1,2\n3,4\n";
    return write_bytes(path, text, sizeof text - 1);
}

static int w_empty_file(const char *path, int latest) {
    (void)latest;
    return write_bytes(path, "", 0);
}

/* The HDF5 signature and nothing after it. */
static int w_signature(const char *path, int latest) {
    (void)latest;
    return write_bytes(path, "\x89HDF\r\n\x1a\n", 8);
}

/* --- files like the seed data: /train/x float [64, 20], /train/y int [64] in {0, 1} --- */

enum { ROWS = 64, COLS = 20 };

static int put_native(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                      const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds >= 0 ? 0 : -1;
    if (ds >= 0 && data && dims[0] > 0 &&
        H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = -1;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    return rc;
}

/* The seed-like file with one `defect` (NULL: none). */
static int write_seed(const char *path, int latest, const char *defect) {
    hid_t f = bad_h5_create(path, latest);
    if (f < 0) return -1;
    H5Gclose(H5Gcreate2(f, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    static float x[ROWS * COLS];
    static int y[ROWS];
    for (int i = 0; i < ROWS * COLS; i++) x[i] = (float)(i % 7);
    for (int i = 0; i < ROWS; i++) y[i] = i % 2;
    hsize_t xd[2] = {ROWS, COLS}, yd[1] = {ROWS};
    const char *d = defect ? defect : "";
    if (!strcmp(d, "nan")) x[5 * COLS + 3] = NAN;
    if (!strcmp(d, "inf")) x[9 * COLS] = INFINITY;
    /* The last training row: with validation_split 0.2, rows [51, 64) are held
     * out, and at np 2 rank 1's shard is rows [26, 51) (51 rows, batch 10:
     * shard 0 takes 5 * 5 + 1 rows), so only rank 1 reads it. */
    if (!strcmp(d, "nan_rank1")) x[50 * COLS + 7] = NAN;
    /* Finite, so it loads, but its products overflow to +-Inf and their sum
     * to NaN in the first layer: a NaN loss and gradient on rank 1 alone. */
    if (!strcmp(d, "huge_rank1"))
        for (int j = 0; j < COLS; j++) x[50 * COLS + j] = j % 2 ? -3e38f : 3e38f;
    if (!strcmp(d, "label2")) y[7] = 2;
    if (!strcmp(d, "labelneg")) y[3] = -1;
    if (!strcmp(d, "norows")) xd[0] = yd[0] = 4;
    int rc = put_native(f, "/train/x", H5T_NATIVE_FLOAT, 2, xd, x);
    if (put_native(f, "/train/y", H5T_NATIVE_INT, 1, yd, y) < 0) rc = -1;
    if (H5Fclose(f) < 0) rc = -1;
    return rc;
}

static int w_good(const char *path, int latest) {
    return write_seed(path, latest, NULL);
}
static int w_nan(const char *path, int latest) {
    return write_seed(path, latest, "nan");
}
static int w_inf(const char *path, int latest) {
    return write_seed(path, latest, "inf");
}
static int w_label2(const char *path, int latest) {
    return write_seed(path, latest, "label2");
}
static int w_labelneg(const char *path, int latest) {
    return write_seed(path, latest, "labelneg");
}
static int w_norows(const char *path, int latest) {
    return write_seed(path, latest, "norows");
}
static int w_nan_rank1(const char *path, int latest) {
    return write_seed(path, latest, "nan_rank1");
}
static int w_huge_rank1(const char *path, int latest) {
    return write_seed(path, latest, "huge_rank1");
}

/* The first half of the valid seed-like file. */
static int w_truncated(const char *path, int latest) {
    struct stat st;
    if (write_seed(path, latest, NULL) < 0 || stat(path, &st) < 0) return -1;
    return truncate(path, st.st_size / 2);
}

/* --- small files with one layout defect: /train/x float32 [10, 5] and so on ---- */

static const int ROW5[1] = {5};

/* Creates path, runs body (a list of PUTs into file f), closes it, returns. */
#define WRITE_FILE(path, latest, body) \
    do { \
        hid_t f = bad_h5_create(path, latest); \
        if (f < 0) return -1; \
        int rc = 0; \
        body; \
        if (H5Fclose(f) < 0) rc = -1; \
        return rc; \
    } while (0)
#define PUT(call) \
    if ((call) < 0) rc = -1

static int w_no_x(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_y(f, "train", 10, 0, 0)));
}

static int w_no_y(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE)));
}

static int w_no_train(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "test", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "test", 10, 0, 0)));
}

/* /train is a dataset, not a group. */
static int w_not_group(const char *path, int latest) {
    static const float x[4 * 3] = {0};
    static const hsize_t dims[2] = {4, 3};
    WRITE_FILE(path, latest,
               PUT(bad_h5_write_ds(f, "/train", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, x)));
}

/* An optional split that is present must be complete. */
static int w_val_no_y(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0));
               PUT(bad_h5_put_x(f, "val", 1, 4, 1, ROW5, H5T_IEEE_F32LE)));
}

static int w_mismatch(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 700, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 699, 0, 0)));
}

static int x_of_type(const char *path, int latest, int row_rank, hid_t ftype) {
    WRITE_FILE(path, latest,
               PUT(bad_h5_put_x(f, "train", 0, 10, row_rank, row_rank ? ROW5 : NULL, ftype));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0)));
}

/* Valid token ids [10, 5] with binary labels: only the model can object. */
static int w_int_x(const char *path, int latest) {
    static const int y[10] = {0, 1, 1, 0, 1, 0, 0, 1, 0, 1};
    static const hsize_t n = 10;
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_STD_I32LE));
               PUT(bad_h5_write_ds(f, "/train/y", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &n, y)));
}
static int w_double_x(const char *path, int latest) {
    return x_of_type(path, latest, 1, H5T_IEEE_F64LE);
}
static int w_int64_x(const char *path, int latest) {
    return x_of_type(path, latest, 1, H5T_STD_I64LE);
}

/* x as records {a: float32, b: float32}: a compound, not numbers. */
static int w_compound_x(const char *path, int latest) {
    float v[10 * 5 * 2];
    for (int i = 0; i < 10 * 5 * 2; i++) v[i] = (float)i;
    static const hsize_t dims[2] = {10, 5};
    hid_t t = H5Tcreate(H5T_COMPOUND, 2 * sizeof(float));
    H5Tinsert(t, "a", 0, H5T_NATIVE_FLOAT);
    H5Tinsert(t, "b", sizeof(float), H5T_NATIVE_FLOAT);
    /* The type is closed inside the body: WRITE_FILE returns. */
    WRITE_FILE(path, latest, PUT(bad_h5_write_ds(f, "/train/x", t, t, 2, dims, v));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0)); H5Tclose(t));
}
static int w_rank1_x(const char *path, int latest) {
    return x_of_type(path, latest, 0, H5T_IEEE_F32LE);
}

/* Token ids are [N, T]: an int32 x of rank 3 is no window. */
static int w_int_x_rank3(const char *path, int latest) {
    static const int row[2] = {5, 2};
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 2, row, H5T_STD_I32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0)));
}

/* Token ids in /train, features in /val. */
static int w_val_x_dtype(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_STD_I32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0));
               PUT(bad_h5_put_x(f, "val", 1, 4, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "val", 4, 0, 0)));
}

int bad_h5_wide_x(const char *path, int latest, int rank, const hsize_t *dims) {
    hid_t f = bad_h5_create(path, latest);
    if (f < 0) return -1;
    hsize_t chunk[MAX_RANK];
    for (int i = 0; i < rank; i++) chunk[i] = 1;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_chunk(dcpl, rank, chunk);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, "/train/x", H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    int rc = d >= 0 ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    if (bad_h5_put_y(f, "train", 1, 0, 0) < 0) rc = -1;
    if (H5Fclose(f) < 0) rc = -1;
    return rc;
}

/* A row of 65536^4 values: its width wraps a size_t to 0. */
static int w_wrap_x(const char *path, int latest) {
    static const hsize_t wrap[5] = {1, 65536, 65536, 65536, 65536};
    return bad_h5_wide_x(path, latest, 5, wrap);
}

/* 2^32 values: no wrap, but more than BLAS's int sizes take. */
static int w_wide_x(const char *path, int latest) {
    static const hsize_t wide[3] = {1, 65536, 65536};
    return bad_h5_wide_x(path, latest, 3, wide);
}

static int w_float_y_rank1(const char *path, int latest) {
    static const float y[10] = {0};
    static const hsize_t dims[1] = {10};
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_write_ds(f, "/train/y", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, y)));
}

static int w_int64_y(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, H5T_STD_I64LE)));
}

static int w_empty(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 0, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 0, 0, 0)));
}

static int w_test_shape(const char *path, int latest) {
    static const int row6[1] = {6};
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0));
               PUT(bad_h5_put_x(f, "test", 2, 4, 1, row6, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "test", 4, 0, 0)));
}

/* /val/y holds float targets where /train/y holds labels. */
static int w_val_y_layout(const char *path, int latest) {
    WRITE_FILE(path, latest, PUT(bad_h5_put_x(f, "train", 0, 10, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "train", 10, 0, 0));
               PUT(bad_h5_put_x(f, "val", 1, 4, 1, ROW5, H5T_IEEE_F32LE));
               PUT(bad_h5_put_y(f, "val", 4, 2, 0)));
}

#undef PUT
#undef WRITE_FILE

/* --- the table ------------------------------------------------------------------ */

const bad_h5_case bad_h5_cases[] = {
    /* name, about, writer, latest, check, ds, what, run */
    {"good", "a valid file", w_good, 0, BAD_H5_NONE, NULL, NULL, NULL},
    {"text", "data file is not HDF5", w_text, 0, BAD_H5_INFO, NULL, "not a readable HDF5 file",
     NULL},
    {"empty_file", "data file of 0 bytes", w_empty_file, 0, BAD_H5_INFO, NULL,
     "not a readable HDF5 file", NULL},
    {"signature", "the HDF5 signature alone", w_signature, 0, BAD_H5_INFO, NULL,
     "not a readable HDF5 file", NULL},
    {"truncated", "truncated HDF5 file", w_truncated, 0, BAD_H5_INFO, NULL,
     "not a readable HDF5 file", NULL},
    {"no_x", "missing /train/x", w_no_x, 0, BAD_H5_INFO, "/train/x", "missing dataset", NULL},
    {"no_y", "missing /train/y", w_no_y, 1, BAD_H5_INFO, "/train/y", "missing dataset", NULL},
    {"no_train", "no /train group", w_no_train, 0, BAD_H5_INFO, "/train/x", "missing dataset",
     NULL},
    {"not_group", "/train is a dataset, not a group", w_not_group, 1, BAD_H5_INFO, "/train/x",
     "missing dataset", NULL},
    {"val_no_y", "/val without y", w_val_no_y, 0, BAD_H5_INFO, "/val/y", "missing dataset", NULL},
    {"mismatch", "x and y row counts differ", w_mismatch, 0, BAD_H5_INFO, "/train/y",
     "x has 700 rows but y has 699", NULL},
    /* int32 x is token ids, which only an embedding first layer takes: the file
     * is valid, the run with configs/seed.yaml's dense model is not. */
    {"int_x", "int32 x for a model without embedding", w_int_x, 0, BAD_H5_RUN, "/train/x", NULL,
     "x holds int32 token ids, but the model's first layer is dense"},
    {"int_x_rank3", "int32 x of rank 3", w_int_x_rank3, 1, BAD_H5_INFO, "/train/x",
     "int32 token ids must be [N, T] (rank 2), got rank 3", NULL},
    {"val_x_dtype", "/val/x float32 while /train/x is int32", w_val_x_dtype, 0, BAD_H5_INFO,
     "/val/x", "x is float32 but /train/x is int32", NULL},
    {"double_x", "x of the wrong dtype (float64)", w_double_x, 1, BAD_H5_INFO, "/train/x",
     "got float64", NULL},
    {"int64_x", "x of an unsupported integer type (int64)", w_int64_x, 0, BAD_H5_INFO, "/train/x",
     "expected uint8, int8, uint16, int16, float16 or float32 (int32 for token ids), got int64",
     NULL},
    {"compound_x", "x of a compound type", w_compound_x, 1, BAD_H5_INFO, "/train/x", "got compound",
     NULL},
    {"rank1_x", "x of the wrong rank", w_rank1_x, 0, BAD_H5_INFO, "/train/x", "rank 1", NULL},
    /* Found by fuzzing: the row width wrapped to 0, and the file was accepted with
     * rows of no values. */
    {"wrap_x", "a row of 2^64 values", w_wrap_x, 0, BAD_H5_INFO, "/train/x",
     "a row of x has more than 2147483647 values", NULL},
    {"wide_x", "a row of 2^32 values", w_wide_x, 1, BAD_H5_INFO, "/train/x",
     "more than 2147483647 values", NULL},
    {"float_y_rank1", "float targets of rank 1", w_float_y_rank1, 0, BAD_H5_INFO, "/train/y",
     "rank 2", NULL},
    {"int64_y", "labels of the wrong dtype", w_int64_y, 0, BAD_H5_INFO, "/train/y", "got int64",
     NULL},
    {"empty", "empty dataset", w_empty, 1, BAD_H5_INFO, "/train/x", "empty dataset", NULL},
    {"test_shape", "/test rows of another shape", w_test_shape, 1, BAD_H5_INFO, "/test/x",
     "row shape [6] differs from /train/x row shape [5]", NULL},
    {"val_y_layout", "/val/y of another layout", w_val_y_layout, 0, BAD_H5_INFO, "/val/y",
     "float32", NULL},
    {"nan", "NaN in x", w_nan, 0, BAD_H5_ROWS, "/train/x",
     "non-finite value (nan) at row 5, column 3", NULL},
    {"inf", "Inf in x", w_inf, 1, BAD_H5_ROWS, "/train/x",
     "non-finite value (inf) at row 9, column 0", NULL},
    /* Only rank 1 reads row 50; its error must reach rank 0's one line. */
    {"nan_rank1", "NaN in rank 1's rows only", w_nan_rank1, 0, BAD_H5_ROWS, "/train/x",
     "non-finite value (nan) at row 50, column 7",
     "on rank 1: non-finite value (nan) at row 50, column 7"},
    {"label2", "label outside [0, classes)", w_label2, 0, BAD_H5_ROWS, "/train/y",
     "label 2 at row 7", NULL},
    {"labelneg", "negative label", w_labelneg, 0, BAD_H5_ROWS, "/train/y", "label -1 at row 3",
     NULL},
    {"norows", "fewer rows than one batch", w_norows, 0, BAD_H5_RUN, NULL, NULL,
     "fewer than one global batch"},
    /* Finite data that overflows to NaN on rank 1 alone, in training
     * (test_bad_input.sh and test_nodes.sh run it with data.standardize=false). */
    {"huge_rank1", "a NaN from rank 1 alone", w_huge_rank1, 0, BAD_H5_RUN, NULL, NULL,
     "training: loss or gradient is NaN or Inf"},
    {NULL, NULL, NULL, 0, BAD_H5_NONE, NULL, NULL, NULL},
};

const bad_h5_case *bad_h5_find(const char *name) {
    for (const bad_h5_case *c = bad_h5_cases; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

int bad_h5_write(const bad_h5_case *c, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.h5", dir, c->name);
    if (c->write(path, c->latest) == 0) return 0;
    fprintf(stderr, "bad_h5: could not write %s\n", path);
    return -1;
}

void bad_h5_run_error(const bad_h5_case *c, char *where_frag, size_t wn, char *what_frag,
                      size_t n) {
    if (c->ds) snprintf(where_frag, wn, "%s: ", c->ds);
    else if (c->what) snprintf(where_frag, wn, "%s.h5: ", c->name);
    else snprintf(where_frag, wn, "%s", "");
    snprintf(what_frag, n, "%s", c->run ? c->run : c->what ? c->what : "");
}
