/* make_bad_data.c - writes small HDF5 files, each with one defect, for the
 * bad-input test. Usage: make_bad_data DIR */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 64, COLS = 20 };

static void put(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (data && dims[0] > 0) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* A file like the seed data but ROWS rows; `defect` picks what is wrong. */
static void write_case(const char *dir, const char *defect) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.h5", dir, defect);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "/train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    static float x[ROWS * COLS];
    static int xi[ROWS * COLS], y[ROWS];
    for (int i = 0; i < ROWS * COLS; i++) x[i] = xi[i] = i % 7;
    for (int i = 0; i < ROWS; i++) y[i] = i % 2;
    hsize_t xd[2] = {ROWS, COLS}, yd[1] = {ROWS};
    if (!strcmp(defect, "nan")) x[5 * COLS + 3] = NAN;
    if (!strcmp(defect, "inf")) x[9 * COLS] = INFINITY;
    /* The last training row: with validation_split 0.2, rows [51, 64) are held
     * out, and at np 2 rank 1's shard is rows [26, 51) (51 rows, batch 10:
     * shard 0 takes 5 * 5 + 1 rows), so only rank 1 reads it. */
    if (!strcmp(defect, "nan_rank1")) x[50 * COLS + 7] = NAN;
    /* Finite, so it loads, but its products overflow to +-Inf and their sum
     * to NaN in the first layer: a NaN loss and gradient on rank 1 alone. */
    if (!strcmp(defect, "huge_rank1"))
        for (int j = 0; j < COLS; j++) x[50 * COLS + j] = j % 2 ? -3e38f : 3e38f;
    if (!strcmp(defect, "label2")) y[7] = 2;
    if (!strcmp(defect, "labelneg")) y[3] = -1;
    if (!strcmp(defect, "mismatch")) yd[0] = ROWS - 1;
    if (!strcmp(defect, "empty")) xd[0] = yd[0] = 0;
    if (!strcmp(defect, "norows")) xd[0] = yd[0] = 4;
    if (!strcmp(defect, "int_x"))
        put(f, "/train/x", H5T_NATIVE_INT, 2, xd, xi);
    else if (!strcmp(defect, "rank1_x"))
        put(f, "/train/x", H5T_NATIVE_FLOAT, 1, yd, x);
    else if (strcmp(defect, "no_x") != 0)
        put(f, "/train/x", H5T_NATIVE_FLOAT, 2, xd, x);
    if (strcmp(defect, "no_y") != 0) put(f, "/train/y", H5T_NATIVE_INT, 1, yd, y);
    H5Fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_bad_data DIR\n");
        return 2;
    }
    static const char *defects[] = {"good",    "nan",    "inf",     "label2", "labelneg",
                                    "mismatch", "empty", "norows",  "int_x",  "rank1_x",
                                    "no_x",     "no_y",  "nan_rank1", "huge_rank1"};
    for (size_t i = 0; i < sizeof defects / sizeof *defects; i++) write_case(argv[1], defects[i]);
    return 0;
}
