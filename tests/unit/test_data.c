/* test_data.c - HDF5 dataset validation, hyperslab reads and column statistics.
 * Every file is written with the HDF5 C API, so the expected rows are known; the
 * defective ones come from the table shared with the MPI and fuzz tests
 * (tests/common/bad_h5.c). */
#include "bad_h5.h"
#include "data/data.h"
#include "testlib.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256];

static const char *tmp_file(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_dir, name);
    return buf;
}

static hid_t file_create(const char *path) {
    hid_t f = bad_h5_create(path, 0);
    CU_ASSERT_FATAL(f >= 0);
    return f;
}

static void write_ds(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const void *buf) {
    CU_ASSERT_FATAL(bad_h5_write_ds(f, name, ftype, mtype, rank, dims, buf) == 0);
}

static void put_x(hid_t f, const char *split, int s, size_t n, int row_rank, const int *row,
                  hid_t ftype) {
    CU_ASSERT_FATAL(bad_h5_put_x(f, split, s, n, row_rank, row, ftype) == 0);
}

static void put_y(hid_t f, const char *split, size_t n, int ycols, hid_t ftype) {
    CU_ASSERT_FATAL(bad_h5_put_y(f, split, n, ycols, ftype) == 0);
}

static const char *const SPLITS[3] = {"train", "val", "test"};

/* A valid file: rows per split in n[3] (0 = split absent except train), x rows [4, 3],
 * int labels. */
static const char *make_good(char *buf, size_t bn, const char *name, const size_t n[3]) {
    tmp_file(buf, bn, name);
    hid_t f = file_create(buf);
    static const int row[2] = {4, 3};
    for (int s = 0; s < 3; s++) {
        if (s > 0 && n[s] == 0) continue;
        put_x(f, SPLITS[s], s, n[s], 2, row, H5T_IEEE_F32LE);
        put_y(f, SPLITS[s], n[s], 0, 0);
    }
    H5Fclose(f);
    return buf;
}

static const size_t GOOD_N[3] = {50, 7, 9};

static void test_info_int_labels(void) {
    char p[512];
    make_good(p, sizeof p, "good.h5", GOOD_N);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_FALSE(err.set);
    CU_ASSERT_STRING_EQUAL(info.path, p);
    CU_ASSERT_EQUAL(info.x_shape.ndim, 2);
    CU_ASSERT_EQUAL(info.x_shape.dim[0], 4);
    CU_ASSERT_EQUAL(info.x_shape.dim[1], 3);
    CU_ASSERT_EQUAL(info.y_cols, 1);
    CU_ASSERT_EQUAL(info.y_is_int, 1);
    CU_ASSERT_EQUAL(info.n_train, 50);
    CU_ASSERT_EQUAL(info.has_val, 1);
    CU_ASSERT_EQUAL(info.n_val, 7);
    CU_ASSERT_EQUAL(info.has_test, 1);
    CU_ASSERT_EQUAL(info.n_test, 9);
}

/* Float targets, stored big-endian to check that only class and size matter. */
static const char *make_float_targets(char *p, size_t n) {
    tmp_file(p, n, "float_y.h5");
    hid_t f = file_create(p);
    static const int row[1] = {5};
    put_x(f, "train", 0, 20, 1, row, H5T_IEEE_F32BE);
    put_y(f, "train", 20, 3, H5T_IEEE_F32BE);
    H5Fclose(f);
    return p;
}

static void test_info_float_targets(void) {
    char p[512];
    make_float_targets(p, sizeof p);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(info.x_shape.ndim, 1);
    CU_ASSERT_EQUAL(info.x_shape.dim[0], 5);
    CU_ASSERT_EQUAL(info.y_cols, 3);
    CU_ASSERT_EQUAL(info.y_is_int, 0);
    CU_ASSERT_EQUAL(info.n_train, 20);
    CU_ASSERT_EQUAL(info.has_val, 0);
    CU_ASSERT_EQUAL(info.has_test, 0);

    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_rows(&info, "train", 3, 11, 2, &r, &err), 0);
    CU_ASSERT_EQUAL(r.n, 11);
    CU_ASSERT_EQUAL(r.x_width, 5);
    CU_ASSERT_EQUAL(r.y_cols, 3);
    int bad = 0;
    for (size_t i = 0; i < 11; i++) {
        for (size_t j = 0; j < 5; j++) bad += r.x[i * 5 + j] != bad_h5_x_value(0, 3 + i, j);
        for (int k = 0; k < 3; k++) bad += r.y[i * 3 + (size_t)k] != bad_h5_target_value(3 + i, k);
    }
    CU_ASSERT_EQUAL(bad, 0);
    dp_data_rows_free(&r);
}

/* Reads [first, first+count) of split s and compares with what make_good wrote. */
static void check_range(const dp_data_info *info, int s, size_t first, size_t count) {
    dp_rows r;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_rows(info, SPLITS[s], first, count, 3, &r, &err), 0);
    CU_ASSERT_EQUAL(r.n, count);
    CU_ASSERT_EQUAL(r.x_width, 12);
    CU_ASSERT_EQUAL(r.y_cols, 1);
    CU_ASSERT_PTR_NOT_NULL(r.x);
    CU_ASSERT_PTR_NOT_NULL(r.y);
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < 12; j++) bad += r.x[i * 12 + j] != bad_h5_x_value(s, first + i, j);
        bad += r.y[i] != (float)bad_h5_label_value(first + i);
    }
    CU_ASSERT_EQUAL(bad, 0);
    dp_data_rows_free(&r);
    CU_ASSERT_PTR_NULL(r.x);
}

static void test_read_ranges(void) {
    char p[512];
    make_good(p, sizeof p, "good.h5", GOOD_N);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    static const size_t ranges[][2] = {{0, 50}, {0, 1}, {13, 20}, {49, 1}, {0, 0}, {50, 0}, {7, 0}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++)
        check_range(&info, 0, ranges[k][0], ranges[k][1]);
    check_range(&info, 1, 0, 7);
    check_range(&info, 1, 6, 1);
    check_range(&info, 2, 2, 7);
    check_range(&info, 2, 8, 1);
}

/* Labels are class ids 0..2: n_classes 0 skips the check, 3 passes, 2 fails at row 2. */
static void test_label_range(void) {
    char p[512];
    make_good(p, sizeof p, "good.h5", GOOD_N);
    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 50, 0, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 50, 3, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 2, 2, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_FALSE(err.set);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 50, 2, &r, &err), -1);
    CU_ASSERT_PTR_NULL(r.x);
    CU_ASSERT_EQUAL(r.n, 0);
    char where[600];
    snprintf(where, sizeof where, "%s:/train/y", p);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "label 2 at row 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "[0, 2)"));
}

static void test_negative_label(void) {
    char p[512];
    tmp_file(p, sizeof p, "neg_label.h5");
    hid_t f = file_create(p);
    static const int row[1] = {2};
    put_x(f, "train", 0, 10, 1, row, H5T_IEEE_F32LE);
    int y[10] = {0, 1, 0, 1, 1, -1, 0, 1, 0, 0};
    hsize_t dims[1] = {10};
    write_ds(f, "/train/y", H5T_STD_I32LE, H5T_NATIVE_INT, 1, dims, y);
    H5Fclose(f);
    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 5, 2, &r, &err), 0);
    CU_ASSERT_EQUAL(r.y[3], 1.0f);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 3, 7, 2, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "label -1 at row 5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.where, ":/train/y"));
}

/* x with one bad value at (17, 3); a range that excludes row 17 reads cleanly. */
static void check_nonfinite(const char *name, float bad, const char *word) {
    char p[512];
    tmp_file(p, sizeof p, name);
    hid_t f = file_create(p);
    float x[30 * 5];
    for (size_t i = 0; i < 30 * 5; i++) x[i] = (float)i;
    x[17 * 5 + 3] = bad;
    hsize_t dims[2] = {30, 5};
    write_ds(f, "/train/x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, x);
    put_y(f, "train", 30, 0, 0);
    H5Fclose(f);

    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 10, 7, 0, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 18, 12, 0, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 15, 5, 0, &r, &err), -1);
    CU_ASSERT_PTR_NULL(r.x);
    char where[600], what[128];
    snprintf(where, sizeof where, "%s:/train/x", p);
    snprintf(what, sizeof what, "non-finite value (%s) at row 17, column 3", word);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_STRING_EQUAL(err.what, what);
}

static void test_nan_in_x(void) {
    check_nonfinite("nan.h5", NAN, "nan");
}

static void test_inf_in_x(void) {
    check_nonfinite("inf.h5", INFINITY, "inf");
    check_nonfinite("ninf.h5", -INFINITY, "-inf");
}

/* --- int32 token ids [N, T] ------------------------------------------------------ */

/* Token file: /train/x int32 [20, 6] with id (7r + 3c) mod 50 at (r, c) (the
 * ids 0 and 49 both occur), one of them replaced by bad_id at (bad_row, bad_col)
 * unless bad_row < 0, and int32 targets [20, 6] (x shifted by one). */
static const char *make_tokens(char *p, size_t n, const char *name, int bad_row, int bad_col,
                               int bad_id) {
    enum { R = 20, T = 6 };
    tmp_file(p, n, name);
    hid_t f = file_create(p);
    int x[R * T], y[R * T];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < T; c++) {
            x[r * T + c] = (7 * r + 3 * c) % 50;
            y[r * T + c] = (7 * r + 3 * (c + 1)) % 50;
        }
    if (bad_row >= 0) x[bad_row * T + bad_col] = bad_id;
    hsize_t dims[2] = {R, T};
    write_ds(f, "/train/x", H5T_STD_I32LE, H5T_NATIVE_INT, 2, dims, x);
    write_ds(f, "/train/y", H5T_STD_I32LE, H5T_NATIVE_INT, 2, dims, y);
    H5Fclose(f);
    return p;
}

/* Ids come out as the same integers in float32; targets [N, T] keep T columns. */
static void test_tokens_read(void) {
    char p[512];
    make_tokens(p, sizeof p, "tokens.h5", -1, 0, 0);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(info.x_is_int, 1);
    CU_ASSERT_EQUAL(info.x_shape.ndim, 1);
    CU_ASSERT_EQUAL(info.x_shape.dim[0], 6);
    CU_ASSERT_EQUAL(info.y_is_int, 1);
    CU_ASSERT_EQUAL(info.y_cols, 6);
    info.n_tokens = 50;
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_rows(&info, "train", 4, 9, 50, &r, &err), 0);
    CU_ASSERT_EQUAL(r.x_width, 6);
    int bad = 0;
    for (int i = 0; i < 9; i++)
        for (int c = 0; c < 6; c++) {
            bad += r.x[i * 6 + c] != (float)((7 * (4 + i) + 3 * c) % 50);
            bad += r.y[i * 6 + c] != (float)((7 * (4 + i) + 3 * (c + 1)) % 50);
        }
    CU_ASSERT_EQUAL(bad, 0);
    dp_data_rows_free(&r);
    /* Every class id is checked per position: 49 is outside [0, 49). */
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 20, 49, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.where, ":/train/y"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "label 49 at row"));
}

/* An id outside [0, n_tokens) in row 13, column 4 fails any read that covers it,
 * naming the file, the dataset, the row and the column; reads around it pass,
 * and n_tokens 0 reads it unchecked. */
static void check_bad_token(int bad_id) {
    char p[512], name[64], where[600], what[160];
    snprintf(name, sizeof name, "token%d.h5", bad_id);
    make_tokens(p, sizeof p, name, 13, 4, bad_id);
    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 20, 0, &r, &err), 0);
    CU_ASSERT_EQUAL(r.x[13 * 6 + 4], (float)bad_id);
    dp_data_rows_free(&r);
    info.n_tokens = 50;
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 13, 0, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 14, 6, 0, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_FALSE(err.set);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 10, 5, 0, &r, &err), -1);
    CU_ASSERT_PTR_NULL(r.x);
    snprintf(where, sizeof where, "%s:/train/x", p);
    snprintf(what, sizeof what,
             "token id %d at row 13, column 4 is outside [0, 50) (embedding input_dim)", bad_id);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_STRING_EQUAL(err.what, what);
}

static void test_token_too_big(void) {
    check_bad_token(50);
    check_bad_token(2147483647);
}

static void test_token_negative(void) {
    check_bad_token(-1);
}

static void test_bad_ranges(void) {
    char p[512];
    make_good(p, sizeof p, "good.h5", (const size_t[3]){50, 0, 9});
    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(info.has_val, 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 45, 10, 0, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "out of range"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "50 rows"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 51, 0, 0, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "out of range"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "test", 0, 10, 0, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "9 rows"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "val", 0, 1, 0, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "no /val"));
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "training", 0, 1, 0, &r, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "training"));
    CU_ASSERT_PTR_NULL(r.x);
}

/* dp_data_read_info must fail with exactly `where` (NULL: path:/<ds>) and `what` containing
 * the substring. */
static void expect_info_error(const char *path, const char *ds, const char *what) {
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_data_read_info(path, &info, &err), -1);
    CU_ASSERT_TRUE(err.set);
    char where[600];
    if (ds) snprintf(where, sizeof where, "%s:%s", path, ds);
    else snprintf(where, sizeof where, "%s", path);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, what));
    if (!strstr(err.what, what)) fprintf(stderr, "\n  got: %s: %s\n", err.where, err.what);
}

static void test_missing_file(void) {
    char p[512];
    expect_info_error(tmp_file(p, sizeof p, "does_not_exist.h5"), NULL, "no such file");
}

/* Copies the first half of file src to dst. */
static void copy_half(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)size, in), (size_t)size);
    fwrite(buf, 1, (size_t)size / 2, out);
    free(buf);
    fclose(in);
    fclose(out);
}

/* The largest row that fits is accepted (the ones just above it are in the
 * table: wrap_x, wide_x). */
static void test_row_width_edge(void) {
    char p[512];
    const hsize_t edge[3] = {1, 2, 1073741823};
    CU_ASSERT_EQUAL_FATAL(bad_h5_wide_x(tmp_file(p, sizeof p, "x_edge.h5"), 0, 3, edge), 0);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_shape_numel(&info.x_shape), (size_t)2147483646);
}

/* --- the defective files of tests/common/bad_h5.c ---------------------------------- */

/* One CUnit assertion at the caller's line whose text names the case. */
static void case_assert(int ok, unsigned line, const bad_h5_case *c, const char *fmt, ...) {
    char msg[1024];
    int k = snprintf(msg, sizeof msg, "bad_h5 case '%s' (%s): ", c->name, c->about);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, __FILE__, "", CU_FALSE);
    if (!ok) fprintf(stderr, "\n  %s:%u: %s\n", __FILE__, line, msg);
}
#define CASE_ASSERT(ok, c, ...) case_assert((ok), __LINE__, (c), __VA_ARGS__)

/* The error is at exactly "<path>:<ds>" (or path) and its what holds c->what. */
static void check_case_error(const bad_h5_case *c, const char *path, const dp_error *err) {
    char where[600];
    if (c->ds) snprintf(where, sizeof where, "%s:%s", path, c->ds);
    else snprintf(where, sizeof where, "%s", path);
    CASE_ASSERT(err->set, c, "no error set");
    CASE_ASSERT(!strcmp(err->where, where), c, "error at '%s', expected '%s'", err->where, where);
    CASE_ASSERT(strstr(err->what, c->what) != NULL, c, "error '%s' lacks '%s'", err->what, c->what);
}

/* Writes case c and runs the check the table names for it. */
static void check_case(const bad_h5_case *c) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s.h5", g_dir, c->name);
    CASE_ASSERT(bad_h5_write(c, g_dir) == 0, c, "not written");
    dp_data_info info;
    dp_error err = {0};
    int rc = dp_data_read_info(path, &info, &err);
    if (c->check == BAD_H5_INFO) {
        CASE_ASSERT(rc == -1, c, "dp_data_read_info returned %d, expected -1", rc);
        check_case_error(c, path, &err);
        return;
    }
    CASE_ASSERT(rc == 0, c, "dp_data_read_info failed: %s: %s", err.where, err.what);
    if (rc != 0) return;
    dp_rows r;
    rc = dp_data_read_rows(&info, "train", 0, info.n_train, 2, &r, &err);
    if (c->check == BAD_H5_ROWS) {
        CASE_ASSERT(rc == -1, c, "dp_data_read_rows returned %d, expected -1", rc);
        CASE_ASSERT(r.x == NULL, c, "rows left allocated after a failure");
        check_case_error(c, path, &err);
    } else {
        CASE_ASSERT(rc == 0, c, "dp_data_read_rows failed: %s: %s", err.where, err.what);
        if (rc == 0) dp_data_rows_free(&r);
    }
}

static void test_bad_files(void) {
    for (const bad_h5_case *c = bad_h5_cases; c->name; c++) check_case(c);
}

/* The table itself: unique names, and each check has what it needs. */
static void test_bad_table(void) {
    int n = 0;
    for (const bad_h5_case *c = bad_h5_cases; c->name; c++, n++) {
        CASE_ASSERT(bad_h5_find(c->name) == c, c, "the name is not unique");
        CASE_ASSERT(c->about && c->write, c, "no description or no writer");
        int errs = c->check == BAD_H5_INFO || c->check == BAD_H5_ROWS;
        CASE_ASSERT(!errs || c->what, c, "no expected error");
        CASE_ASSERT(c->check != BAD_H5_RUN || c->run, c, "no expected error for the run");
        CASE_ASSERT(c->check != BAD_H5_NONE || (!c->what && !c->run), c,
                    "an error for a valid file");
    }
    CU_ASSERT(n >= 25);
    CU_ASSERT_PTR_NULL(bad_h5_find("no such case"));
}

/* Open files, groups, datasets and attributes. (Datatypes are left to the probes below:
 * over all files H5Fget_obj_count also counts every transient datatype.) */
static long open_file_objects(void) {
    return (long)H5Fget_obj_count(H5F_OBJ_ALL,
                                  H5F_OBJ_FILE | H5F_OBJ_GROUP | H5F_OBJ_DATASET | H5F_OBJ_ATTR);
}

/* HDF5 1.10 numbers the ids of one type consecutively, so the dataspaces and datatypes
 * still open between two probes are the valid ids between them. (H5Inmembers refuses
 * library types.) */
static hid_t probe(int type) {
    hsize_t one = 1;
    return type ? H5Tcopy(H5T_NATIVE_INT) : H5Screate_simple(1, &one, NULL);
}

static long open_between(hid_t a, hid_t b) {
    long n = 0;
    for (hid_t id = a + 1; id < b; id++) n += H5Iis_valid(id) > 0;
    return n;
}

static void exercise_reader(const char *good, const char *mis, const char *cut) {
    dp_data_info info;
    dp_error err = {0};
    dp_rows r;
    CU_ASSERT_EQUAL(dp_data_read_info(good, &info, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 5, 20, 3, &r, &err), 0);
    dp_data_rows_free(&r);
    CU_ASSERT_EQUAL(dp_data_read_rows(&info, "train", 0, 20, 2, &r, &err), -1);
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_info(mis, &info, &err), -1);
    dp_error_clear(&err);
    CU_ASSERT_EQUAL(dp_data_read_info(cut, &info, &err), -1);
}

/* Successful and failing calls alike leave no HDF5 id open. */
static const int ROW5[1] = {5};

static void test_no_leaks(void) {
    char good[512], cut[512], mis[512];
    make_good(good, sizeof good, "good.h5", GOOD_N);
    tmp_file(mis, sizeof mis, "mismatch.h5");
    hid_t f = file_create(mis);
    put_x(f, "train", 0, 70, 1, ROW5, H5T_IEEE_F32LE);
    put_y(f, "train", 69, 0, 0);
    H5Fclose(f);
    copy_half(good, tmp_file(cut, sizeof cut, "half.h5"));

    CU_ASSERT_EQUAL(open_file_objects(), 0);
    hid_t s0 = probe(0), t0 = probe(1);
    /* The probes see a deliberate leak, so a zero below means something. */
    hid_t planted = probe(0);
    hid_t s1 = probe(0);
    CU_ASSERT_EQUAL(open_between(s0, s1), 1);
    H5Sclose(planted);
    exercise_reader(good, mis, cut);
    hid_t s2 = probe(0), t2 = probe(1);
    CU_ASSERT_EQUAL(open_between(s0, s2), 1); /* s1 itself */
    CU_ASSERT_EQUAL(open_between(t0, t2), 0);
    CU_ASSERT_EQUAL(open_file_objects(), 0);
    H5Sclose(s0), H5Sclose(s1), H5Sclose(s2), H5Tclose(t0), H5Tclose(t2);
}

/* --- statistics ------------------------------------------------------------------- */

#define W 5

/* Rows [n, W] of mixed scales. Column 3 is the constant 3.7, whose naive variance
 * sumsq/n - mean^2 is rounding noise (about 8e-14 at n = 700), not zero; column 4
 * alternates 1000 and 1000 + 1/64 (std 1/128), a real spread on a large mean. */
static dp_rows make_stat_rows(size_t n) {
    dp_rows r = {n, W, 1, malloc(n * W * sizeof(float)), calloc(n, sizeof(float))};
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        float *row = r.x + i * W;
        for (int j = 0; j < 3; j++) {
            s = s * 1664525u + 1013904223u;
            double u = (double)(s >> 8) / 16777216.0; /* [0, 1) */
            row[j] = (float)(j == 0 ? u : j == 1 ? 1000.0 + 50.0 * u : -1e-3 * u);
        }
        row[3] = 3.7f;
        row[4] = 1000.0f + (float)(i % 2) / 64.0f;
    }
    return r;
}

static void test_sum_columns(void) {
    dp_rows r = make_stat_rows(37);
    double whole[2 * W] = {0}, seq[2 * W] = {0}, a[2 * W] = {0}, b[2 * W] = {0};
    dp_data_sum_columns(&r, 0, 37, whole);
    dp_data_sum_columns(&r, 0, 18, seq);
    dp_data_sum_columns(&r, 18, 19, seq); /* same order into one buffer: bit-identical */
    dp_data_sum_columns(&r, 0, 18, a);
    dp_data_sum_columns(&r, 18, 19, b);
    for (int j = 0; j < 2 * W; j++) {
        CU_ASSERT_EQUAL(seq[j], whole[j]);
        CU_ASSERT_DOUBLE_EQUAL(a[j] + b[j], whole[j], 1e-12 * fabs(whole[j]));
    }
    double direct = 0, direct2 = 0;
    for (size_t i = 0; i < 37; i++) {
        direct += r.x[i * W + 1];
        direct2 += (double)r.x[i * W + 1] * r.x[i * W + 1];
    }
    CU_ASSERT_EQUAL(whole[1], direct);
    CU_ASSERT_EQUAL(whole[W + 1], direct2);
    dp_data_sum_columns(&r, 10, 0, a); /* count 0 adds nothing */
    CU_ASSERT_DOUBLE_EQUAL(a[0] + b[0], whole[0], 1e-12);
    dp_data_rows_free(&r);
}

/* Two-pass mean and population std of column j in double, the textbook way. */
static void direct_stats(const dp_rows *r, size_t j, double *mean, double *sd) {
    double m = 0, v = 0;
    for (size_t i = 0; i < r->n; i++) m += r->x[i * r->x_width + j];
    m /= (double)r->n;
    for (size_t i = 0; i < r->n; i++) {
        double d = r->x[i * r->x_width + j] - m;
        v += d * d;
    }
    *mean = m;
    *sd = sqrt(v / (double)r->n);
}

static void test_stats_from_sums(void) {
    size_t n = 700;
    dp_rows r = make_stat_rows(n);
    double sums[2 * W] = {0};
    float mean[W], std[W];
    dp_data_sum_columns(&r, 0, n, sums);
    dp_data_stats_from_sums(sums, n, W, mean, std);
    for (size_t j = 0; j < W; j++) {
        double m, sd;
        direct_stats(&r, j, &m, &sd);
        CU_ASSERT_DOUBLE_EQUAL(mean[j], m, 1e-6 * fmax(1.0, fabs(m)));
        if (j != 3) CU_ASSERT_DOUBLE_EQUAL(std[j], sd, 1e-4 * sd);
    }
    CU_ASSERT_DOUBLE_EQUAL(std[4], 1.0 / 128.0, 1e-4 / 128.0);
    CU_ASSERT_EQUAL(mean[3], 3.7f);
    CU_ASSERT_EQUAL(std[3], 1.0f); /* constant column: std 0 becomes 1 */

    /* Hand-computed: column 0 = {1, 3}: mean 2, std 1; column 1 = {0, 0}: std 0 -> 1. */
    double h[4] = {4, 0, 10, 0};
    dp_data_stats_from_sums(h, 2, 2, mean, std);
    CU_ASSERT_EQUAL(mean[0], 2.0f);
    CU_ASSERT_EQUAL(std[0], 1.0f);
    CU_ASSERT_EQUAL(mean[1], 0.0f);
    CU_ASSERT_EQUAL(std[1], 1.0f);
    dp_data_rows_free(&r);
}

static void test_standardize(void) {
    size_t n = 700;
    dp_rows r = make_stat_rows(n);
    double sums[2 * W] = {0};
    float mean[W], std[W];
    dp_data_sum_columns(&r, 0, n, sums);
    dp_data_stats_from_sums(sums, n, W, mean, std);
    dp_data_standardize(&r, mean, std);
    for (size_t j = 0; j < W; j++) {
        double m, sd;
        direct_stats(&r, j, &m, &sd);
        CU_ASSERT_DOUBLE_EQUAL(m, 0.0, 1e-4);
        CU_ASSERT_DOUBLE_EQUAL(sd, j == 3 ? 0.0 : 1.0, 1e-3);
    }
    dp_data_rows_free(&r);

    float x[4] = {1, 10, 3, 30}; /* [2, 2] */
    dp_rows s = {2, 2, 1, x, NULL};
    const float mu[2] = {2, 20}, sd[2] = {1, 10};
    dp_data_standardize(&s, mu, sd);
    CU_ASSERT_EQUAL(x[0], -1.0f);
    CU_ASSERT_EQUAL(x[1], -1.0f);
    CU_ASSERT_EQUAL(x[2], 1.0f);
    CU_ASSERT_EQUAL(x[3], 1.0f);
}

/* The shipped seed file (scripts/make_seed_data.py). */
static void test_seed_file(void) {
    dp_data_info info;
    dp_error err = {0};
    const char *p = test_source_path("datasets/seed_classification.h5");
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(p, &info, &err), 0);
    CU_ASSERT_EQUAL(info.n_train, 700);
    CU_ASSERT_EQUAL(info.has_test, 1);
    CU_ASSERT_EQUAL(info.n_test, 300);
    CU_ASSERT_EQUAL(info.has_val, 0);
    CU_ASSERT_EQUAL(info.x_shape.ndim, 1);
    CU_ASSERT_EQUAL(info.x_shape.dim[0], 20);
    CU_ASSERT_EQUAL(info.y_is_int, 1);
    CU_ASSERT_EQUAL(info.y_cols, 1);
    for (int s = 0; s < 3; s += 2) {
        dp_rows r;
        size_t n = s == 0 ? 700 : 300;
        CU_ASSERT_EQUAL_FATAL(dp_data_read_rows(&info, SPLITS[s], 0, n, 2, &r, &err), 0);
        size_t count[2] = {0, 0};
        for (size_t i = 0; i < n; i++)
            if (r.y[i] == 0.0f || r.y[i] == 1.0f) count[(int)r.y[i]]++;
        CU_ASSERT_EQUAL(count[0] + count[1], n);
        CU_ASSERT_TRUE(count[0] > n / 4 && count[1] > n / 4); /* both classes, roughly balanced */
        dp_data_rows_free(&r);
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_make_tmpdir());
    static const test_case cases[] = {
        {"info_int_labels", test_info_int_labels},
        {"info_float_targets", test_info_float_targets},
        {"read_ranges", test_read_ranges},
        {"label_range", test_label_range},
        {"negative_label", test_negative_label},
        {"nan_in_x", test_nan_in_x},
        {"inf_in_x", test_inf_in_x},
        {"tokens_read", test_tokens_read},
        {"token_too_big", test_token_too_big},
        {"token_negative", test_token_negative},
        {"bad_ranges", test_bad_ranges},
        {"missing_file", test_missing_file},
        {"row_width_edge", test_row_width_edge},
        {"bad_table", test_bad_table},
        {"bad_files", test_bad_files},
        {"no_leaks", test_no_leaks},
        {"sum_columns", test_sum_columns},
        {"stats_from_sums", test_stats_from_sums},
        {"standardize", test_standardize},
        {"seed_file", test_seed_file},
        {NULL, NULL},
    };
    int rc = test_run_suite("data", cases);
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char p[600];
        if (e->d_name[0] != '.') unlink(tmp_file(p, sizeof p, e->d_name));
    }
    if (d) closedir(d);
    rmdir(g_dir);
    return rc;
}
