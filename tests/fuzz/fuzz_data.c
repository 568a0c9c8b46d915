/* fuzz_data.c - libFuzzer harness for the HDF5 dataset opener and reader.
 *
 * dp_data_read_info takes a path, so each input is written to one temporary file
 * per process (in $TMPDIR, else /dev/shm when it exists). When the file passes
 * validation, a few rows of every split are read and standardized the way the
 * trainer does it. Crashes inside libhdf5's own parsers are HDF5 bugs, not
 * ours: the stack trace tells them apart. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "data/data.h"
#include "core/alloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

/* libhdf5 leaks metadata-cache entries on some corrupt files (an object header
 * protected, then an error return that never unprotects it): its bug, not ours.
 * Our own handle hygiene is checked exactly instead, by counting open HDF5
 * objects after every input. */
const char *__lsan_default_suppressions(void) {
    return "leak:libhdf5\n";
}

/* libhdf5 mallocs whatever size a corrupt header claims and copes with NULL;
 * under ASan's default such a request is a crash report. Our own allocations go
 * through DP_MALLOC, which still aborts (and is reported) on NULL. */
const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

static char tmp_path[256];

static void remove_tmp(void) {
    if (tmp_path[0]) unlink(tmp_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp_path, sizeof tmp_path, "%s/dptrain-fuzz-%ld.h5", dir, (long)getpid());
    atexit(remove_tmp);
    /* No flock() per open: nothing else touches the file. */
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
    return 0;
}

static int write_file(const uint8_t *data, size_t size) {
    FILE *f = fopen(tmp_path, "wb");
    if (!f) return -1;
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    int bad = fclose(f) != 0 || put != size;
    return bad ? -1 : 0;
}

/* Reads rows [first, first+count) of `split` (clamped to its n rows) and runs the
 * statistics and standardization over them. */
static void read_some(const dp_data_info *info, const char *split, size_t n, size_t first,
                      size_t count, int n_classes) {
    if (first > n) first = n;
    if (count > n - first) count = n - first;
    dp_rows r;
    dp_error err = {0};
    if (dp_data_read_rows(info, split, first, count, n_classes, &r, &err) != 0) {
        if (!err.set) abort(); /* a failure must say why */
        return;
    }
    if (r.n != count || r.x_width != dp_shape_numel(&info->x_shape)) abort();
    size_t w = r.x_width;
    double *sums = calloc(2 * w, sizeof *sums);
    float *mean = malloc(w * sizeof *mean), *std = malloc(w * sizeof *std);
    if (sums && mean && std) {
        dp_data_sum_columns(&r, 0, r.n, sums);
        dp_data_stats_from_sums(sums, r.n, w, mean, std);
        dp_data_standardize(&r, mean, std);
    }
    free(sums);
    free(mean);
    free(std);
    dp_data_rows_free(&r);
}

/* Every file, dataset, type and space the reader opened must be closed again. */
static void check_all_closed(void) {
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) {
        fprintf(stderr, "fuzz_data: %zd HDF5 objects left open\n",
                H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL));
        abort();
    }
}

static void run(void) {
    dp_data_info info;
    dp_error err = {0};
    if (dp_data_read_info(tmp_path, &info, &err) != 0) {
        if (!err.set) abort();
        return;
    }
    if (info.n_train == 0) abort(); /* the contract promises at least one row */
    /* An accepted row shape must have a width that size_t (and BLAS's int) holds. */
    size_t width = 1;
    for (int i = 0; i < info.x_shape.ndim; i++)
        if (info.x_shape.dim[i] < 1 ||
            __builtin_mul_overflow(width, (size_t)info.x_shape.dim[i], &width))
            abort();
    if (width > INT_MAX) abort();
    /* A file may declare rows of any size without storing them (chunked, never
     * written); DP_MALLOC aborting on a terabyte row is by design, so such files
     * stop here. */
    if (dp_shape_numel(&info.x_shape) > ((size_t)1 << 20) || info.y_cols > (1 << 20)) return;
    /* Token ids are checked against a byte vocabulary, as for fortunes.h5. */
    if (info.x_is_int) info.n_tokens = 256;
    /* The first and the last rows exercise both ends of the hyperslab. */
    read_some(&info, "train", info.n_train, 0, 3, info.y_is_int ? 2 : 0);
    if (info.n_train > 3) read_some(&info, "train", info.n_train, info.n_train - 2, 2, 0);
    if (info.has_val) read_some(&info, "val", info.n_val, 0, 2, 0);
    if (info.has_test) read_some(&info, "test", info.n_test, 0, 4, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (write_file(data, size)) return 0;
    run();
    /* Removed after each input: only an input that kills a -fork child leaves
     * its file behind. */
    unlink(tmp_path);
    check_all_closed();
    return 0;
}
