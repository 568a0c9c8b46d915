/* test_data_dtype.c - x stored as uint8, int8, uint16, int16, float16 or float32,
 * with data.scale and data.offset, and chunked, compressed and unreadable files.
 * The same pixels are written in each type; the float32 reference is
 * (float)(v / 255.0), computed here, and every other file must read within one
 * ulp of it. */
#include "bad_h5.h"
#include "data/data.h"
#include "data/data_dtype.h"
#include "testlib.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROWS = 16, COLS = 16 }; /* 256 values: every uint8 */

static char g_dir[256];

/* Pixel i of the test image: each of 0..255 once, in a scrambled order. */
static int pixel(int i) {
    return (i * 37 + 11) % 256;
}

/* x [ROWS, COLS] of file type ftype from vals (doubles, exact in ftype) and
 * labels y int32 [ROWS]; dcpl may set chunking and filters. */
static const char *write_file(const char *name, hid_t ftype, const double *vals, hid_t dcpl) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    hid_t f = bad_h5_create(path, 0);
    CU_ASSERT_FATAL(f >= 0);
    hsize_t dims[2] = {ROWS, COLS};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "/train/x", ftype, sp, lcpl, dcpl, H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_FATAL(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    CU_ASSERT_FATAL(bad_h5_put_y(f, "train", ROWS, 0, 0) == 0);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
    return path;
}

/* IEEE half, little-endian, built independently of the reader's own. */
static hid_t half_le(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

/* Reads every row of path's /train/x with scale and offset into x[ROWS * COLS]. */
static int read_all(const char *path, double scale, double offset, float *x, dp_error *err) {
    dp_data_info info;
    if (dp_data_read_info(path, &info, err)) return -1;
    CU_ASSERT(info.scale == 1 && info.offset == 0); /* the defaults, before the caller's */
    info.scale = scale;
    info.offset = offset;
    dp_rows r;
    if (dp_data_read_rows(&info, "train", 0, ROWS, 0, &r, err)) return -1;
    memcpy(x, r.x, sizeof(float) * ROWS * COLS);
    dp_data_rows_free(&r);
    return 0;
}

/* Distance in ulps between two finite floats of the same sign. */
static long ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return labs((long)ia - (long)ib);
}

static void reference(float *ref) {
    for (int i = 0; i < ROWS * COLS; i++) ref[i] = (float)(pixel(i) / 255.0);
}

/* One stored type: values v -> a*v + b stored, read back with scale and offset
 * that undo it, to within one ulp of the float32 reference. */
static long check_type(const char *name, hid_t ftype, double a, double b, double scale,
                       double offset) {
    double vals[ROWS * COLS];
    float ref[ROWS * COLS], got[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = a * pixel(i) + b;
    reference(ref);
    dp_error err = {0};
    const char *p = write_file(name, ftype, vals, H5P_DEFAULT);
    CU_ASSERT_EQUAL_FATAL(read_all(p, scale, offset, got, &err), 0);
    long worst = 0;
    for (int i = 0; i < ROWS * COLS; i++)
        if (ulps(got[i], ref[i]) > worst) worst = ulps(got[i], ref[i]);
    if (worst > 1) fprintf(stderr, "%s: %ld ulps from the float32 file\n", name, worst);
    CU_ASSERT(worst <= 1);
    return worst;
}

static void test_uint8(void) {
    /* v * fl(1/255) in double rounds to the same float as v / 255 for every byte:
     * uint8 pixels give the float32 file's bits exactly. */
    CU_ASSERT_EQUAL(check_type("u8.h5", H5T_STD_U8LE, 1, 0, 1.0 / 255, 0), 0);
}

static void test_int8(void) { /* -128..127 back to [0, 1] through the offset */
    (void)check_type("i8.h5", H5T_STD_I8LE, 1, -128, 1.0 / 255, 128.0 / 255);
}

static void test_uint16(void) { /* 0..65535: v * 257 / 65535 = v / 255 */
    (void)check_type("u16.h5", H5T_STD_U16LE, 257, 0, 1.0 / 65535, 0);
}

static void test_int16(void) {
    (void)check_type("i16.h5", H5T_STD_I16BE, 257, -32768, 1.0 / 65535, 32768.0 / 65535);
}

static void test_float16(void) { /* integers up to 2048 are exact halves */
    hid_t t = half_le();
    (void)check_type("f16.h5", t, 1, 0, 1.0 / 255, 0);
    H5Tclose(t);
}

/* The float32 file with the default scale and offset reads as its own bits;
 * a scale applies in double, rounded once. */
static void test_float32_untouched_and_scaled(void) {
    double vals[ROWS * COLS];
    float ref[ROWS * COLS], got[ROWS * COLS];
    reference(ref);
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = ref[i];
    dp_error err = {0};
    const char *p = write_file("f32.h5", H5T_IEEE_F32LE, vals, H5P_DEFAULT);
    CU_ASSERT_EQUAL_FATAL(read_all(p, 1, 0, got, &err), 0);
    ASSERT_SAME_FLOATS(got, ref, ROWS * COLS);
    CU_ASSERT_EQUAL_FATAL(read_all(p, 3, -0.25, got, &err), 0);
    for (int i = 0; i < ROWS * COLS; i++) ref[i] = (float)((double)ref[i] * 3 - 0.25);
    ASSERT_SAME_FLOATS(got, ref, ROWS * COLS);
}

/* Every half bit pattern against sign * 2^(e-15) * (1 + m/1024) (or m * 2^-24
 * for subnormals), computed in double. */
static void test_half_bits(void) {
    int bad = 0;
    for (unsigned h = 0; h < 65536; h++) {
        unsigned s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
        float got = dp_half_to_float(h);
        if (e == 31) {
            bad += m ? !isnan(got) : !(isinf(got) && (got < 0) == (s == 1));
            continue;
        }
        double want = e ? pow(2.0, (double)e - 15) * (1 + m / 1024.0) : m * pow(2.0, -24);
        if (s) want = -want;
        bad += (double)got != want || (signbit(got) != 0) != (s == 1);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* The in-place kernel on odd lengths: values past n stay untouched. */
static void test_kernel_in_place(void) {
    float x[8];
    memset(x, 0x7f, sizeof x);
    uint8_t u[5] = {0, 1, 128, 254, 255};
    memcpy(x, u, sizeof u);
    dp_xtype_to_float(DP_X_U8, x, 5, 2, 1);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(x[i], (float)(u[i] * 2.0 + 1));
    float sentinel;
    memset(&sentinel, 0x7f, sizeof sentinel);
    CU_ASSERT_EQUAL(memcmp(&x[5], &sentinel, 4), 0);
    int16_t s[3] = {-32768, -1, 32767};
    memcpy(x, s, sizeof s);
    dp_xtype_to_float(DP_X_I16, x, 3, 0, 0); /* a zeroed scale means 1 */
    CU_ASSERT(x[0] == -32768.0f && x[1] == -1.0f && x[2] == 32767.0f);
}

/* Token ids are never scaled. */
static void test_tokens_unscaled(void) {
    double vals[ROWS * COLS];
    float got[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = pixel(i);
    dp_error err = {0};
    const char *p = write_file("tok.h5", H5T_STD_I32LE, vals, H5P_DEFAULT);
    CU_ASSERT_EQUAL_FATAL(read_all(p, 0.5, 7, got, &err), 0);
    for (int i = 0; i < ROWS * COLS; i++) CU_ASSERT_EQUAL(got[i], (float)pixel(i));
}

/* A scale that takes a value past float32's range names its row and column. */
static void test_scale_overflow(void) {
    double vals[ROWS * COLS];
    float got[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = pixel(i);
    dp_error err = {0};
    const char *p = write_file("over.h5", H5T_STD_U8LE, vals, H5P_DEFAULT);
    /* 2e36 * v overflows float32 from v = 171 on; the first such pixel in row order: */
    int first = 0;
    while (pixel(first) < 171) first++;
    CU_ASSERT_EQUAL(read_all(p, 2e36, 0, got, &err), -1);
    char want[96];
    snprintf(want, sizeof want, "non-finite value (inf) at row %d, column %d", first / COLS,
             first % COLS);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.where, ":/train/x"));
}

/* Chunked and deflate-compressed reads give the contiguous file's bits. */
static void test_chunked_deflate(void) {
    double vals[ROWS * COLS];
    float a[ROWS * COLS], b[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = pixel(i);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {3, COLS}; /* rows that do not divide the extent */
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 6);
    dp_error err = {0};
    char plain[512];
    snprintf(plain, sizeof plain, "%s", write_file("plain.h5", H5T_STD_U8LE, vals, H5P_DEFAULT));
    const char *z = write_file("deflate.h5", H5T_STD_U8LE, vals, dcpl);
    H5Pclose(dcpl);
    CU_ASSERT_EQUAL_FATAL(read_all(plain, 1.0 / 255, 0, a, &err), 0);
    CU_ASSERT_EQUAL_FATAL(read_all(z, 1.0 / 255, 0, b, &err), 0);
    ASSERT_SAME_FLOATS(a, b, ROWS * COLS);
}

/* A filter this library lacks (lzf, 32000: h5py's own) is named on open. HDF5
 * writes an optional filter it cannot run by leaving the chunks unfiltered,
 * which records the filter in the dataset all the same. */
static void test_missing_filter(void) {
    double vals[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = pixel(i);
    CU_ASSERT_FATAL(H5Zfilter_avail(32000) <= 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {4, COLS};
    H5Pset_chunk(dcpl, 2, chunk);
    CU_ASSERT_FATAL(H5Pset_filter(dcpl, 32000, H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
    const char *p = write_file("lzf.h5", H5T_STD_U8LE, vals, dcpl);
    H5Pclose(dcpl);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_data_read_info(p, &info, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "(32000)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.where, ":/train/x"));
}

/* int64 and float64 are named with the accepted types; splits must agree. */
static void test_rejected_types(void) {
    double vals[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) vals[i] = pixel(i);
    const hid_t types[2] = {H5T_STD_I64LE, H5T_IEEE_F64LE};
    const char *names[2] = {"int64", "float64"};
    for (int k = 0; k < 2; k++) {
        char file[32];
        snprintf(file, sizeof file, "rej%d.h5", k);
        const char *p = write_file(file, types[k], vals, H5P_DEFAULT);
        dp_data_info info;
        dp_error err = {0};
        CU_ASSERT_EQUAL(dp_data_read_info(p, &info, &err), -1);
        char want[160];
        snprintf(want, sizeof want,
                 "expected uint8, int8, uint16, int16, float16 or float32 (int32 for token "
                 "ids), got %s",
                 names[k]);
        CU_ASSERT_STRING_EQUAL(err.what, want);
    }
    /* A big-endian half is refused rather than misread. */
    hid_t be = half_le();
    H5Tset_order(be, H5T_ORDER_BE);
    const char *p = write_file("f16be.h5", be, vals, H5P_DEFAULT);
    H5Tclose(be);
    dp_data_info info;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_data_read_info(p, &info, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "not little-endian IEEE half"));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s", test_make_tmpdir());
    static const test_case cases[] = {
        {"uint8", test_uint8},
        {"int8", test_int8},
        {"uint16", test_uint16},
        {"int16", test_int16},
        {"float16", test_float16},
        {"float32_untouched_and_scaled", test_float32_untouched_and_scaled},
        {"half_bits", test_half_bits},
        {"kernel_in_place", test_kernel_in_place},
        {"tokens_unscaled", test_tokens_unscaled},
        {"scale_overflow", test_scale_overflow},
        {"chunked_deflate", test_chunked_deflate},
        {"missing_filter", test_missing_filter},
        {"rejected_types", test_rejected_types},
        {NULL, NULL},
    };
    int rc = test_run_suite("data_dtype", cases);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
