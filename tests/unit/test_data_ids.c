/* test_data_ids.c - reading rows by id: sorted runs put back in the asked
 * order, through pread (contiguous float32) and through one HDF5 selection
 * (chunked and compressed), and the errors of a bad id or a file cut short.
 * Row i of every file holds known values, so each row read names itself. */
#include "data/data.h"
#include "testlib.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 300
#define W 3

static char g_path[3][512]; /* contiguous, chunked + deflate, int32 labels out of range */

/* x[i][j] = 10 i + j, y[i] = i % 5 (or i % 7), optionally in chunks of 7 rows. */
static void write_file(const char *path, int chunked, int label_mod) {
    static float x[ROWS][W];
    static int y[ROWS];
    for (int i = 0; i < ROWS; i++) {
        for (int j = 0; j < W; j++) x[i][j] = (float)(10 * i + j);
        y[i] = i % label_mod;
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dx[2] = {ROWS, W}, dy[1] = {ROWS}, cx[2] = {7, W}, cy[1] = {7};
    for (int k = 0; k < 2; k++) {
        hid_t sp = H5Screate_simple(k ? 1 : 2, k ? dy : dx, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (chunked) {
            H5Pset_chunk(dcpl, k ? 1 : 2, k ? cy : cx);
            H5Pset_deflate(dcpl, 4);
        }
        hid_t d = H5Dcreate2(f, k ? "/train/y" : "/train/x", k ? H5T_STD_I32LE : H5T_IEEE_F32LE, sp,
                             lcpl, dcpl, H5P_DEFAULT);
        CU_ASSERT_FATAL(d >= 0);
        H5Dwrite(d, k ? H5T_NATIVE_INT : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                 k ? (void *)y : (void *)x);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(sp);
    }
    H5Pclose(lcpl);
    H5Fclose(f);
}

/* Ids with runs, singles, a descending stretch and the first and last rows. */
static size_t make_ids(uint64_t *ids) {
    size_t n = 0;
    for (uint64_t i = 40; i < 52; i++) ids[n++] = i; /* a run of 12 */
    ids[n++] = ROWS - 1;
    ids[n++] = 0;
    for (uint64_t i = 120; i > 100; i -= 2) ids[n++] = i; /* singles, descending */
    for (uint64_t i = 200; i < 205; i++) ids[n++] = i;
    ids[n++] = 39; /* joins the first run once sorted */
    ids[n++] = 52;
    return n;
}

static void check_ids(const char *path, int want_direct) {
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(path, &info, &err), 0);
    dp_data_file h;
    CU_ASSERT_EQUAL_FATAL(dp_data_open(&h, &info, "train", 64, &err), 0);
    CU_ASSERT_EQUAL(h.direct[0].fd >= 0, want_direct);
    uint64_t ids[64];
    size_t n = make_ids(ids);
    float x[64 * W], y[64];
    for (int round = 0; round < 2; round++) { /* twice: the scratch is reused */
        memset(x, 0, sizeof x);
        CU_ASSERT_EQUAL_FATAL(dp_data_read_ids(&h, ids, n, 5, x, y, &err), 0);
        float want_x[64 * W], want_y[64];
        for (size_t i = 0; i < n; i++) {
            for (int j = 0; j < W; j++) want_x[i * W + j] = (float)(10 * ids[i] + (uint64_t)j);
            want_y[i] = (float)(ids[i] % 5);
        }
        ASSERT_SAME_FLOATS(x, want_x, n * W);
        ASSERT_SAME_FLOATS(y, want_y, n);
        /* Left as stored, then widened where used: the same rows. */
        float raw[64 * W], wx[64 * W], ry[64];
        uint32_t where[64];
        CU_ASSERT_EQUAL_FATAL(dp_data_read_ids_raw(&h, ids, n, 5, raw, where, ry, &err), 0);
        CU_ASSERT_EQUAL_FATAL(dp_data_widen_rows(&info, raw, where, ids, n, NULL, NULL, wx, &err),
                              0);
        ASSERT_SAME_FLOATS(wx, want_x, n * W);
        ASSERT_SAME_FLOATS(ry, want_y, n);
        /* Standardized on the way, as dp_data_standardize does it. */
        float mean[W] = {3, -1, 0.5f}, std[W] = {2, 4, 0.25f};
        CU_ASSERT_EQUAL(dp_data_widen_rows(&info, raw, where, ids, n, mean, std, wx, &err), 0);
        dp_rows r = {.n = n, .x_width = W, .x = want_x};
        dp_data_standardize(&r, mean, std);
        ASSERT_SAME_FLOATS(wx, want_x, n * W);
    }
    /* A range read agrees with the same rows read by id. */
    float rx[10 * W], ry[10];
    uint64_t rid[10];
    for (int i = 0; i < 10; i++) rid[i] = 290 + (uint64_t)i;
    CU_ASSERT_EQUAL(dp_data_read_range(&h, 290, 10, 5, rx, ry, &err), 0);
    CU_ASSERT_EQUAL(dp_data_read_ids(&h, rid, 10, 5, x, y, &err), 0);
    ASSERT_SAME_FLOATS(x, rx, 10 * W);
    ASSERT_SAME_FLOATS(y, ry, 10);
    /* An id past the end is an error naming it. */
    uint64_t bad[2] = {3, ROWS};
    CU_ASSERT_EQUAL(dp_data_read_ids(&h, bad, 2, 5, x, y, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "row 300 out of range"));
    dp_data_close(&h);
    dp_data_close(&h); /* closing twice is safe */
}

static void test_contiguous_by_pread(void) {
    check_ids(g_path[0], 1);
}

static void test_chunked_through_hdf5(void) {
    check_ids(g_path[1], 0);
}

/* A label out of range names the file row it came from, not its place in the read. */
static void test_label_names_file_row(void) {
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(g_path[2], &info, &err), 0);
    dp_data_file h;
    CU_ASSERT_EQUAL_FATAL(dp_data_open(&h, &info, "train", 0, &err), 0);
    uint64_t ids[3] = {12, 6, 2}; /* labels 5, 6, 2 with i % 7 */
    float x[3 * W], y[3];
    CU_ASSERT_EQUAL(dp_data_read_ids(&h, ids, 3, 5, x, y, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "label 5 at row 12 outside [0, 5)"));
    dp_data_close(&h);
}

/* A file cut short after it was opened is an error, not rows of zeros. */
static void test_truncated_after_open(void) {
    char cut[600];
    snprintf(cut, sizeof cut, "%s.cut", g_path[0]);
    write_file(cut, 0, 5);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(cut, &info, &err), 0);
    dp_data_file h;
    CU_ASSERT_EQUAL_FATAL(dp_data_open(&h, &info, "train", 0, &err), 0);
    float x[4 * W], y[4];
    uint64_t ids[2] = {5, 250};
    CU_ASSERT_EQUAL(dp_data_read_ids(&h, ids, 2, 5, x, y, &err), 0);
    CU_ASSERT_EQUAL_FATAL(truncate(cut, 2048), 0);
    CU_ASSERT_EQUAL(dp_data_read_ids(&h, ids, 2, 5, x, y, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "shrank"));
    CU_ASSERT_EQUAL(dp_data_read_range(&h, 0, 4, 5, x, y, &err), -1);
    dp_data_close(&h);
}

/* Writes the three files (a case of its own: assertions need a running suite). */
static void test_write_files(void) {
    const char *dir = test_make_tmpdir();
    snprintf(g_path[0], sizeof g_path[0], "%s/contiguous.h5", dir);
    snprintf(g_path[1], sizeof g_path[1], "%s/chunked.h5", dir);
    snprintf(g_path[2], sizeof g_path[2], "%s/labels7.h5", dir);
    write_file(g_path[0], 0, 5);
    write_file(g_path[1], 1, 5);
    write_file(g_path[2], 0, 7);
}

int main(void) {
    static const test_case cases[] = {
        {"write the files", test_write_files},
        {"rows by id from a contiguous file (pread)", test_contiguous_by_pread},
        {"rows by id from a chunked, compressed file (HDF5)", test_chunked_through_hdf5},
        {"a bad label names its file row", test_label_names_file_row},
        {"a file truncated after open", test_truncated_after_open},
        {NULL, NULL}};
    return test_run_suite("data_ids", cases);
}
