/* test_checkpoint.c - HDF5 checkpoints: round trip, layout, retention, rejection.
 *
 * The model and optimizer are built by hand from a layer spec (names, views,
 * offsets), which is all checkpoint.c may rely on, so this suite does not
 * depend on the layer or optimizer modules. */
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "testlib.h"

typedef struct pspec {
    const char *name;
    int ndim;
    int dim[4];
} pspec;

typedef struct lspec {
    const char *name;
    int n;
    pspec p[3];
} lspec;

/* Ranks 1, 2 and 4, and a parameterless layer in the middle. */
static const lspec BASE[] = {
    {"0_dense", 2, {{"kernel", 2, {4, 8}}, {"bias", 1, {8}}}},
    {"1_dropout", 0, {{NULL, 0, {0}}}},
    {"2_dense", 2, {{"kernel", 2, {8, 3}}, {"bias", 1, {3}}}},
    {"3_conv2d", 2, {{"kernel", 4, {2, 3, 3, 3}}, {"bias", 1, {2}}}},
};
#define N_BASE 4

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t next_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Arbitrary bit patterns (NaN payloads, -0, denormals included): a round trip
 * must preserve every bit, not just the value. */
static void fill_bits(void *p, size_t bytes) {
    unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)(next_u64() >> 24);
}

static void build_model(dp_model *m, const lspec *ls, int n) {
    memset(m, 0, sizeof *m);
    m->n_layers = n;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        dp_layer *l = &m->layers[i];
        snprintf(l->name, sizeof l->name, "%s", ls[i].name);
        l->n_params = ls[i].n;
        l->param_offset = off;
        size_t lo = 0;
        for (int p = 0; p < ls[i].n; p++) {
            dp_param_view *v = &l->params[p];
            snprintf(v->name, sizeof v->name, "%s", ls[i].p[p].name);
            v->shape.ndim = ls[i].p[p].ndim;
            v->numel = 1;
            for (int d = 0; d < v->shape.ndim; d++) {
                v->shape.dim[d] = ls[i].p[p].dim[d];
                v->numel *= (size_t)v->shape.dim[d];
            }
            v->offset = lo;
            lo += v->numel;
        }
        l->param_count = lo;
        off += lo;
    }
    m->n_params = off;
    m->params = calloc(off ? off : 1, sizeof(float));
    m->grads = calloc(off ? off : 1, sizeof(float));
    fill_bits(m->params, off * sizeof(float));
}

static void free_model(dp_model *m) {
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

static void build_optim(dp_optim *o, const dp_model *m, dp_optim_kind kind) {
    static const char *names[3][2] = {{"momentum", NULL}, {"m", "v"}, {"velocity", "momentum"}};
    memset(o, 0, sizeof *o);
    o->cfg.kind = kind;
    o->n = m->n_params;
    o->n_slots = kind == DP_OPTIM_SGD ? 1 : 2;
    for (int k = 0; k < o->n_slots; k++) {
        o->slot_names[k] = names[kind][k];
        o->slots[k] = calloc(o->n ? o->n : 1, sizeof(float));
        fill_bits(o->slots[k], o->n * sizeof(float));
    }
    o->step = (long long)(next_u64() % 100000);
}

static void free_optim(dp_optim *o) {
    for (int k = 0; k < o->n_slots; k++) free(o->slots[k]);
    memset(o, 0, sizeof *o);
}

static const char *CONFIG_TEXT = "data:\n  path: seed.h5\nmodel:\n  input: [4]\n# ünïcode\n";

/* A full state: 5 features, 3 metric rows, a seed above 2^63. */
static void build_state(dp_ckpt_state *st, long long step) {
    memset(st, 0, sizeof *st);
    st->epoch = 3;
    st->step_in_epoch = 5;
    st->global_step = step;
    st->seed = 0xFEDCBA9876543210ULL;
    st->shards = 2;
    st->n_features = 5;
    st->mean = malloc(5 * sizeof(float));
    st->std = malloc(5 * sizeof(float));
    fill_bits(st->mean, 5 * sizeof(float));
    fill_bits(st->std, 5 * sizeof(float));
    st->config_text = CONFIG_TEXT;
    st->n_metrics = 3;
    st->metrics = malloc(3 * DP_METRICS_COLS * sizeof(double));
    fill_bits(st->metrics, 3 * DP_METRICS_COLS * sizeof(double));
}

static void free_state(dp_ckpt_state *st) {
    free(st->mean);
    free(st->std);
    free(st->metrics);
    memset(st, 0, sizeof *st);
}

/* ---- small file-system helpers ---- */

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void touch(const char *path, const char *content) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(content, f);
    fclose(f);
}

static int is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Whole file into a new buffer; *n its size. */
static unsigned char *slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

/* Number of directory entries (besides . and ..) whose name contains `needle`
 * ("" counts all). */
static int count_entries(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

static int has(const dp_error *e, const char *needle) {
    return e->set && strstr(e->what, needle) != NULL;
}

static const char *ckpt_path(const char *dir, long long step) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/ckpt-%012lld.h5", dir, step);
    return buf;
}

/* Writes BASE + adam + full state at `step` into dir; returns 0 on success. */
static int write_base(const char *dir, long long step, int keep) {
    dp_model m;
    dp_optim o;
    dp_ckpt_state st;
    dp_error err = {0};
    build_model(&m, BASE, N_BASE);
    build_optim(&o, &m, DP_OPTIM_ADAM);
    build_state(&st, step);
    int rc = dp_ckpt_write(dir, &m, &o, &st, keep, &err);
    if (rc) dp_error_print(&err);
    free_state(&st);
    free_optim(&o);
    free_model(&m);
    return rc;
}

/* ---- cases ---- */

static void test_roundtrip_is_bit_exact(void) {
    char base[256], dir[300];
    snprintf(base, sizeof base, "%s", test_make_tmpdir());
    snprintf(dir, sizeof dir, "%s/a/b/ckpts", base); /* mkdir -p of two missing levels */
    dp_model m, m2;
    dp_optim o, o2;
    dp_ckpt_state st, st2;
    dp_error err = {0};
    build_model(&m, BASE, N_BASE);
    build_optim(&o, &m, DP_OPTIM_ADAM);
    build_state(&st, 77);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(dir, &m, &o, &st, 3, &err), 0);
    CU_ASSERT_FALSE(err.set);
    CU_ASSERT_TRUE(is_file(ckpt_path(dir, 77)));
    CU_ASSERT_EQUAL(count_entries(dir, ""), 1); /* no temporary left behind */

    build_model(&m2, BASE, N_BASE); /* different random contents */
    build_optim(&o2, &m2, DP_OPTIM_ADAM);
    ASSERT_DIFFERENT_BYTES(m.params, m2.params, m.n_params * sizeof(float));
    memset(&st2, 0xAB, sizeof st2);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(ckpt_path(dir, 77), &m2, &o2, &st2, &err), 0);
    ASSERT_SAME_FLOATS(m.params, m2.params, m.n_params);
    for (int k = 0; k < 2; k++) ASSERT_SAME_FLOATS(o.slots[k], o2.slots[k], o.n);
    CU_ASSERT_EQUAL(o2.step, o.step);
    CU_ASSERT_EQUAL(st2.epoch, 3);
    CU_ASSERT_EQUAL(st2.step_in_epoch, 5);
    CU_ASSERT_EQUAL(st2.global_step, 77);
    CU_ASSERT_EQUAL(st2.seed, 0xFEDCBA9876543210ULL);
    CU_ASSERT_EQUAL(st2.shards, 2);
    CU_ASSERT_EQUAL_FATAL(st2.n_features, 5);
    ASSERT_SAME_FLOATS(st.mean, st2.mean, 5);
    ASSERT_SAME_FLOATS(st.std, st2.std, 5);
    CU_ASSERT_EQUAL_FATAL(st2.n_metrics, 3);
    ASSERT_SAME_DOUBLES(st.metrics, st2.metrics, 3 * DP_METRICS_COLS);
    CU_ASSERT_PTR_NULL(st2.config_text);

    char *text = NULL;
    CU_ASSERT_EQUAL(dp_ckpt_read_config(ckpt_path(dir, 77), &text, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, CONFIG_TEXT);
    free(text);

    dp_ckpt_state_free(&st2);
    CU_ASSERT_PTR_NULL(st2.mean);
    CU_ASSERT_PTR_NULL(st2.metrics);
    free_state(&st);
    free_optim(&o);
    free_optim(&o2);
    free_model(&m);
    free_model(&m2);
    rm_rf(base);
}

/* Dims of dataset path, its element class/size; returns rank or -1. */
static int dset_info(hid_t f, const char *path, hsize_t *dims, H5T_class_t *cls, size_t *size) {
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    *cls = H5Tget_class(t);
    *size = H5Tget_size(t);
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return nd;
}

static long long attr_ll(hid_t loc, const char *obj, const char *name, int *is_signed,
                         size_t *size) {
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -999;
    hid_t t = H5Aget_type(a);
    *is_signed = H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;
    *size = H5Tget_size(t);
    long long v = -999;
    H5Aread(a, H5T_NATIVE_LLONG, &v);
    H5Tclose(t);
    H5Aclose(a);
    return v;
}

/* Reads every tensor back with the plain HDF5 API and compares it with the slice
 * of the arena the documented layout says it holds. */
static void check_tensors(hid_t f, const char *root, const dp_model *m, const float *arena) {
    H5G_info_t gi;
    CU_ASSERT_FATAL(H5Gget_info_by_name(f, root, &gi, H5P_DEFAULT) >= 0);
    CU_ASSERT_EQUAL(gi.nlinks, (hsize_t)m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        char g[256];
        snprintf(g, sizeof g, "%s/%s", root, l->name);
        CU_ASSERT_FATAL(H5Gget_info_by_name(f, g, &gi, H5P_DEFAULT) >= 0);
        CU_ASSERT_EQUAL(gi.nlinks, (hsize_t)l->n_params);
        for (int p = 0; p < l->n_params; p++) {
            const dp_param_view *v = &l->params[p];
            char path[300];
            snprintf(path, sizeof path, "%s/%s", g, v->name);
            hsize_t dims[8];
            H5T_class_t cls;
            size_t size;
            CU_ASSERT_EQUAL_FATAL(dset_info(f, path, dims, &cls, &size), v->shape.ndim);
            for (int d = 0; d < v->shape.ndim; d++)
                CU_ASSERT_EQUAL(dims[d], (hsize_t)v->shape.dim[d]);
            CU_ASSERT_EQUAL(cls, H5T_FLOAT);
            CU_ASSERT_EQUAL(size, 4);
            float *buf = malloc(v->numel * sizeof(float));
            hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
            CU_ASSERT(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
            H5Dclose(d);
            ASSERT_SAME_FLOATS(buf, arena + l->param_offset + v->offset, v->numel);
            free(buf);
        }
    }
}

static void test_file_layout_is_as_documented(void) {
    char base[256];
    snprintf(base, sizeof base, "%s", test_make_tmpdir());
    dp_model m;
    dp_optim o;
    dp_ckpt_state st;
    dp_error err = {0};
    build_model(&m, BASE, N_BASE);
    build_optim(&o, &m, DP_OPTIM_ADAM);
    build_state(&st, 1234);
    st.data_scale = 1.0 / 255;
    st.data_offset = -0.5;
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(base, &m, &o, &st, 0, &err), 0);

    hid_t f = H5Fopen(ckpt_path(base, 1234), H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    int sgn;
    size_t size;
    CU_ASSERT_EQUAL(attr_ll(f, "/", "format_version", &sgn, &size), DP_CKPT_FORMAT_VERSION);
    check_tensors(f, "/model", &m, m.params);
    check_tensors(f, "/optimizer/m", &m, o.slots[0]);
    check_tensors(f, "/optimizer/v", &m, o.slots[1]);
    CU_ASSERT_EQUAL(attr_ll(f, "/optimizer", "step", &sgn, &size), o.step);
    CU_ASSERT(sgn && size == 8);

    char *name = NULL;
    hid_t a = H5Aopen_by_name(f, "/optimizer", "name", H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    CU_ASSERT_EQUAL(H5Tget_class(t), H5T_STRING);
    CU_ASSERT_FATAL(H5Tis_variable_str(t) > 0);
    CU_ASSERT(H5Aread(a, t, &name) >= 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    CU_ASSERT_STRING_EQUAL(name, "adam");
    H5free_memory(name);
    H5Tclose(t);
    H5Aclose(a);

    const char *ints[] = {"epoch", "step_in_epoch", "global_step", "shards"};
    const long long want[] = {3, 5, 1234, 2};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(attr_ll(f, "/train", ints[i], &sgn, &size), want[i]);
        CU_ASSERT(sgn && size == 8);
    }
    a = H5Aopen_by_name(f, "/train", "seed", H5P_DEFAULT, H5P_DEFAULT);
    t = H5Aget_type(a);
    unsigned long long seed = 0;
    CU_ASSERT(H5Tget_sign(t) == H5T_SGN_NONE && H5Tget_size(t) == 8);
    H5Aread(a, H5T_NATIVE_ULLONG, &seed);
    CU_ASSERT_EQUAL(seed, 0xFEDCBA9876543210ULL);
    H5Tclose(t);
    H5Aclose(a);

    hsize_t dims[8];
    H5T_class_t cls = H5T_NO_CLASS;
    CU_ASSERT_EQUAL(dset_info(f, "/data/mean", dims, &cls, &size), 1);
    CU_ASSERT(dims[0] == 5 && cls == H5T_FLOAT && size == 4);
    CU_ASSERT_EQUAL(dset_info(f, "/data/std", dims, &cls, &size), 1);
    CU_ASSERT(dims[0] == 5 && cls == H5T_FLOAT && size == 4);
    /* data.scale and data.offset as float64 attributes of /data, bit for bit. */
    const char *data_attrs[2] = {"scale", "offset"};
    const double data_want[2] = {1.0 / 255, -0.5};
    for (int i = 0; i < 2; i++) {
        double v = 0;
        a = H5Aopen_by_name(f, "/data", data_attrs[i], H5P_DEFAULT, H5P_DEFAULT);
        t = a >= 0 ? H5Aget_type(a) : -1;
        CU_ASSERT(t >= 0 && H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 8);
        CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
        CU_ASSERT_EQUAL(memcmp(&v, &data_want[i], sizeof v), 0);
        if (t >= 0) H5Tclose(t);
        if (a >= 0) H5Aclose(a);
    }
    CU_ASSERT_EQUAL(dset_info(f, "/metrics", dims, &cls, &size), 2);
    CU_ASSERT(dims[0] == 3 && dims[1] == DP_METRICS_COLS && cls == H5T_FLOAT && size == 8);

    CU_ASSERT_EQUAL(dset_info(f, "/config", dims, &cls, &size), 0); /* scalar */
    CU_ASSERT_EQUAL(cls, H5T_STRING);
    hid_t d = H5Dopen2(f, "/config", H5P_DEFAULT);
    t = H5Dget_type(d);
    CU_ASSERT_FALSE(H5Tis_variable_str(t) > 0);
    char *text = calloc(H5Tget_size(t) + 1, 1);
    H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text);
    CU_ASSERT_STRING_EQUAL(text, CONFIG_TEXT);
    free(text);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);

    free_state(&st);
    free_optim(&o);
    free_model(&m);
    rm_rf(base);
}

static void test_empty_state_and_no_optimizer(void) {
    char base[256];
    snprintf(base, sizeof base, "%s", test_make_tmpdir());
    dp_model m, m2;
    dp_optim o;
    dp_ckpt_state st = {0}, st2;
    dp_error err = {0};
    build_model(&m, BASE, N_BASE);
    st.global_step = 0;
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(base, &m, NULL, &st, 3, &err), 0);

    hid_t f = H5Fopen(ckpt_path(base, 0), H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hsize_t dims[8];
    H5T_class_t cls;
    size_t size;
    CU_ASSERT_EQUAL(dset_info(f, "/metrics", dims, &cls, &size), 2);
    CU_ASSERT(dims[0] == 0 && dims[1] == DP_METRICS_COLS);
    CU_ASSERT(H5Lexists(f, "/optimizer", H5P_DEFAULT) == 0);
    CU_ASSERT(H5Lexists(f, "/data", H5P_DEFAULT) == 0);
    H5Fclose(f);

    build_model(&m2, BASE, N_BASE);
    memset(&st2, 0xAB, sizeof st2);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(ckpt_path(base, 0), &m2, NULL, &st2, &err), 0);
    ASSERT_SAME_FLOATS(m.params, m2.params, m.n_params);
    CU_ASSERT_EQUAL(st2.n_features, 0);
    CU_ASSERT_PTR_NULL(st2.mean);
    CU_ASSERT_PTR_NULL(st2.std);
    CU_ASSERT_EQUAL(st2.n_metrics, 0);
    CU_ASSERT_PTR_NULL(st2.metrics);
    char *text = NULL;
    CU_ASSERT_EQUAL(dp_ckpt_read_config(ckpt_path(base, 0), &text, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(text);
    if (text) CU_ASSERT_STRING_EQUAL(text, "");
    free(text);

    /* A run with an optimizer cannot resume from a file without its state. */
    build_optim(&o, &m2, DP_OPTIM_ADAM);
    CU_ASSERT_EQUAL(dp_ckpt_read(ckpt_path(base, 0), &m2, &o, NULL, &err), -1);
    CU_ASSERT(has(&err, "/optimizer"));

    dp_ckpt_state_free(&st2);
    free_optim(&o);
    free_model(&m);
    free_model(&m2);
    rm_rf(base);
}

static void test_keep_leaves_newest(void) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    /* Foreign names that retention and listing must leave alone. */
    const char *foreign[] = {"ckpt-1.h5", "ckpt-000000000050.h5.bak",
                             ".ckpt-000000000060.h5.tmp-99999", "notes.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, foreign[i]);
        touch(p, "x");
    }
    for (long long s = 10; s <= 40; s += 10) CU_ASSERT_EQUAL(write_base(dir, s, 2), 0);
    char **paths;
    int n = dp_ckpt_list(dir, &paths, NULL);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(paths[0], ckpt_path(dir, 40));
    CU_ASSERT_STRING_EQUAL(paths[1], ckpt_path(dir, 30));
    dp_ckpt_free_list(paths, n);
    CU_ASSERT_FALSE(is_file(ckpt_path(dir, 10)));
    CU_ASSERT_FALSE(is_file(ckpt_path(dir, 20)));
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, foreign[i]);
        CU_ASSERT_TRUE(is_file(p));
    }

    /* A file with a smaller step than existing ones survives its own pruning. */
    CU_ASSERT_EQUAL(write_base(dir, 5, 2), 0);
    n = dp_ckpt_list(dir, &paths, NULL);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(paths[0], ckpt_path(dir, 40));
    CU_ASSERT_STRING_EQUAL(paths[1], ckpt_path(dir, 5));
    dp_ckpt_free_list(paths, n);
    rm_rf(dir);
}

static void test_list_orders_newest_first(void) {
    char dir[256], p[512], withslash[300];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    const long long steps[] = {7, 1000000, 42, 999999999999LL, 0};
    for (int i = 0; i < 5; i++) touch(ckpt_path(dir, steps[i]), "");
    const char *ignored[] = {"ckpt-00000000001.h5", "ckpt-0000000000012.h5", "ckpt-00000000000a.h5",
                             "ckpt-000000000001.h5x", "xckpt-000000000001.h5"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, ignored[i]);
        touch(p, "");
    }
    const long long want[] = {999999999999LL, 1000000, 42, 7, 0};
    char **paths;
    dp_error err = {0};
    /* Trailing slashes do not leak into the paths. */
    snprintf(withslash, sizeof withslash, "%s//", dir);
    int n = dp_ckpt_list(withslash, &paths, &err);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    for (int i = 0; i < 5; i++) CU_ASSERT_STRING_EQUAL(paths[i], ckpt_path(dir, want[i]));
    dp_ckpt_free_list(paths, n);

    snprintf(p, sizeof p, "%s/does-not-exist", dir);
    paths = (char **)&err; /* must be reset */
    CU_ASSERT_EQUAL(dp_ckpt_list(p, &paths, &err), 0);
    CU_ASSERT_PTR_NULL(paths);
    CU_ASSERT_FALSE(err.set);

    snprintf(p, sizeof p, "%s/notes", dir);
    touch(p, "x");
    CU_ASSERT_EQUAL(dp_ckpt_list(p, &paths, &err), -1);
    CU_ASSERT_TRUE(err.set);
    CU_ASSERT_STRING_EQUAL(err.where, p);
    rm_rf(dir);
}

/* Reads `path` into a model built from spec and expects failure with `needle` in
 * the message and the model and optimizer untouched. */
static void expect_rejected(const char *path, const lspec *spec, int n, dp_optim_kind kind,
                            const char *needle) {
    dp_model m;
    dp_optim o;
    dp_ckpt_state st;
    dp_error err = {0};
    build_model(&m, spec, n);
    build_optim(&o, &m, kind);
    memset(&st, 0, sizeof st);
    float *before = malloc((m.n_params ? m.n_params : 1) * sizeof(float));
    memcpy(before, m.params, m.n_params * sizeof(float));
    long long step = o.step;
    CU_ASSERT_EQUAL(dp_ckpt_read(path, &m, &o, &st, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.where, path);
    if (!has(&err, needle)) printf("\n  expected '%s' in '%s'\n", needle, err.what);
    CU_ASSERT_TRUE(has(&err, needle));
    ASSERT_SAME_FLOATS(before, m.params, m.n_params);
    CU_ASSERT_EQUAL(o.step, step);
    CU_ASSERT_PTR_NULL(st.mean);
    CU_ASSERT_PTR_NULL(st.metrics);
    free(before);
    free_optim(&o);
    free_model(&m);
}

static void test_other_model_is_rejected(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 100, 3), 0);
    const char *path = ckpt_path(dir, 100);
    lspec s[N_BASE + 1];

    /* The unchanged model passes every model check and fails only on the optimizer. */
    expect_rejected(path, BASE, N_BASE, DP_OPTIM_SGD,
                    "checkpoint optimizer is adam, the run uses sgd");

    memcpy(s, BASE, sizeof BASE);
    s[2].p[0].dim[1] = 4;
    s[2].p[1].dim[0] = 4;
    expect_rejected(path, s, N_BASE, DP_OPTIM_ADAM,
                    "checkpoint is of a different model: /model/2_dense/kernel has shape [8, 3], "
                    "model has [8, 4]");

    /* Same element count, different rank. */
    memcpy(s, BASE, sizeof BASE);
    s[3].p[0] = (pspec){"kernel", 2, {2, 27}};
    expect_rejected(path, s, N_BASE, DP_OPTIM_ADAM,
                    "/model/3_conv2d/kernel has shape [2, 3, 3, 3]");

    /* The checkpoint has a layer more than the model. */
    expect_rejected(path, BASE, N_BASE - 1, DP_OPTIM_ADAM, "/model/3_conv2d");

    /* The model has a layer more than the checkpoint. */
    memcpy(s, BASE, sizeof BASE);
    s[N_BASE] = (lspec){"4_dense", 2, {{"kernel", 2, {2, 1}}, {"bias", 1, {1}}}};
    expect_rejected(path, s, N_BASE + 1, DP_OPTIM_ADAM, "/model/4_dense");

    /* A parameter the model lacks, and one the checkpoint lacks. */
    memcpy(s, BASE, sizeof BASE);
    s[0].n = 1;
    expect_rejected(path, s, N_BASE, DP_OPTIM_ADAM, "/model/0_dense/bias");
    memcpy(s, BASE, sizeof BASE);
    s[1] = (lspec){"1_dropout", 1, {{"gamma", 1, {8}}}};
    expect_rejected(path, s, N_BASE, DP_OPTIM_ADAM, "it has no dataset /model/1_dropout/gamma");

    /* The same parameter count under another layer type. */
    memcpy(s, BASE, sizeof BASE);
    s[1].name = "1_flatten";
    expect_rejected(path, s, N_BASE, DP_OPTIM_ADAM, "/model/1_flatten");
    rm_rf(dir);
}

static void test_damaged_files_are_rejected(void) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 100, 3), 0);
    size_t n = 0;
    unsigned char *bytes = slurp(ckpt_path(dir, 100), &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    CU_ASSERT_FATAL(n > 1000);

    const size_t cuts[] = {0, 7, 100, 512, n / 2, n - 8, n - 1};
    snprintf(p, sizeof p, "%s/truncated.h5", dir);
    for (int i = 0; i < 7; i++) {
        spit(p, bytes, cuts[i]);
        /* The reason comes from HDF5 itself: no superblock, or EOF before the stored end. */
        expect_rejected(p, BASE, N_BASE, DP_OPTIM_ADAM,
                        cuts[i] < 100 ? "(HDF5: file signature not found)"
                                      : "(HDF5: truncated file");
        char *text = NULL;
        dp_error err = {0};
        CU_ASSERT_EQUAL(dp_ckpt_read_config(p, &text, &err), -1);
        CU_ASSERT_PTR_NULL(text);
    }
    for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)(next_u64() >> 11);
    snprintf(p, sizeof p, "%s/garbage.h5", dir);
    spit(p, bytes, n);
    expect_rejected(p, BASE, N_BASE, DP_OPTIM_ADAM, "file signature not found");
    free(bytes);

    snprintf(p, sizeof p, "%s/missing.h5", dir);
    expect_rejected(p, BASE, N_BASE, DP_OPTIM_ADAM, "No such file");
    expect_rejected(dir, BASE, N_BASE, DP_OPTIM_ADAM, "not a regular file");

    /* A valid HDF5 file that is not a checkpoint. */
    snprintf(p, sizeof p, "%s/data.h5", dir);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dim = 4;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    expect_rejected(p, BASE, N_BASE, DP_OPTIM_ADAM, "format_version");
    rm_rf(dir);
}

static void test_other_format_version_is_rejected(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 100, 3), 0);
    hid_t f = H5Fopen(ckpt_path(dir, 100), H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    int v = 7;
    CU_ASSERT(H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
    expect_rejected(ckpt_path(dir, 100), BASE, N_BASE, DP_OPTIM_ADAM,
                    "checkpoint format version 7, expected 1");
    rm_rf(dir);
}

/* h5py writes a str as a variable-length string: a config edited that way still reads. */
static void test_variable_length_config_reads(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 100, 3), 0);
    hid_t f = H5Fopen(ckpt_path(dir, 100), H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    CU_ASSERT(H5Ldelete(f, "/config", H5P_DEFAULT) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, "/config", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *edited = "epochs: 9\n";
    CU_ASSERT(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &edited) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    char *text = NULL;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_ckpt_read_config(ckpt_path(dir, 100), &text, &err), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, edited);
    free(text);
    rm_rf(dir);
}

/* A checkpoint from before the learning_rate column ([rows, 7] metrics) still
 * reads: its rows come back widened, the missing rate as NaN. Another width is
 * an error naming the shape. */
static void test_seven_column_metrics_read(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmpdir());
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 100, 3), 0);
    double old[2][DP_METRICS_COLS_V1];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < DP_METRICS_COLS_V1; c++) old[r][c] = 10 * r + c + 0.5;
    for (int cols = DP_METRICS_COLS_V1; cols <= 9; cols += 9 - DP_METRICS_COLS_V1) {
        hid_t f = H5Fopen(ckpt_path(dir, 100), H5F_ACC_RDWR, H5P_DEFAULT);
        CU_ASSERT_FATAL(f >= 0);
        CU_ASSERT(H5Ldelete(f, "/metrics", H5P_DEFAULT) >= 0);
        hsize_t dims[2] = {2, (hsize_t)cols};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d =
            H5Dcreate2(f, "/metrics", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        double buf[2 * 9] = {0};
        memcpy(buf, old, sizeof old);
        CU_ASSERT(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
        dp_model m;
        dp_ckpt_state st;
        dp_error err = {0};
        build_model(&m, BASE, N_BASE);
        int rc = dp_ckpt_read(ckpt_path(dir, 100), &m, NULL, &st, &err);
        if (cols == DP_METRICS_COLS_V1) {
            CU_ASSERT_EQUAL_FATAL(rc, 0);
            CU_ASSERT_EQUAL_FATAL(st.n_metrics, 2);
            for (int r = 0; r < 2; r++) {
                ASSERT_SAME_DOUBLES(st.metrics + r * DP_METRICS_COLS, old[r], DP_METRICS_COLS_V1);
                CU_ASSERT(isnan(st.metrics[r * DP_METRICS_COLS + DP_METRICS_COLS - 1]));
            }
            dp_ckpt_state_free(&st);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT(has(&err, "/metrics has shape [2, 9], expected [rows, 8]"));
            if (!has(&err, "expected [rows, 8]")) printf("\n  %s\n", err.what);
        }
        free_model(&m);
    }
    rm_rf(dir);
}

/* A failing write leaves the existing checkpoint byte-identical, no temporary, and
 * prunes nothing (keep = 1 would otherwise delete the old file). */
static void expect_write_fails(const char *dir, const dp_model *m, long long step, const char *old,
                               const unsigned char *old_bytes, size_t old_n, const char *needle) {
    dp_optim o;
    dp_ckpt_state st;
    dp_error err = {0};
    build_optim(&o, m, DP_OPTIM_ADAM);
    build_state(&st, step);
    CU_ASSERT_EQUAL(dp_ckpt_write(dir, m, &o, &st, 1, &err), -1);
    if (!has(&err, needle)) printf("\n  expected '%s' in '%s: %s'\n", needle, err.where, err.what);
    CU_ASSERT_TRUE(has(&err, needle));
    size_t n;
    unsigned char *now = slurp(old, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(now);
    CU_ASSERT_EQUAL(n, old_n);
    if (n == old_n) ASSERT_SAME_BYTES(now, old_bytes, n);
    free(now);
    CU_ASSERT_EQUAL(count_entries(dir, "tmp"), 0);
    free_state(&st);
    free_optim(&o);
}

static void test_failed_write_keeps_old_checkpoints(void) {
    char base[256], dir[300], p[600];
    snprintf(base, sizeof base, "%s", test_make_tmpdir());
    snprintf(dir, sizeof dir, "%s/ck", base);
    CU_ASSERT_EQUAL_FATAL(write_base(dir, 10, 3), 0);
    size_t old_n = 0;
    unsigned char *old = slurp(ckpt_path(dir, 10), &old_n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    dp_model m;
    build_model(&m, BASE, N_BASE);

    /* Root ignores permissions, so "unwritable" is a path under a regular file. */
    snprintf(p, sizeof p, "%s/somefile", base);
    touch(p, "keep me");
    snprintf(p, sizeof p, "%s/somefile/sub", base);
    dp_error err = {0};
    dp_ckpt_state st = {0};
    st.global_step = 20;
    CU_ASSERT_EQUAL(dp_ckpt_write(p, &m, NULL, &st, 1, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.where, p);
    CU_ASSERT_TRUE(has(&err, "Not a directory"));
    snprintf(p, sizeof p, "%s/somefile", base);
    CU_ASSERT_TRUE(is_file(p));

    /* HDF5 fails halfway through: two tensors of one layer with the same name. */
    dp_model dup;
    lspec s[N_BASE];
    memcpy(s, BASE, sizeof BASE);
    s[2].p[1].name = "kernel";
    build_model(&dup, s, N_BASE);
    expect_write_fails(dir, &dup, 20, ckpt_path(dir, 10), old, old_n, "/model/2_dense/kernel");
    CU_ASSERT_FALSE(is_file(ckpt_path(dir, 20)));
    free_model(&dup);

    /* Everything written and synced, then the rename fails: the target name is a
     * non-empty directory. */
    snprintf(p, sizeof p, "%s", ckpt_path(dir, 30));
    CU_ASSERT_EQUAL_FATAL(mkdir(p, 0777), 0);
    snprintf(p + strlen(p), sizeof p - strlen(p), "/x");
    touch(p, "x");
    expect_write_fails(dir, &m, 30, ckpt_path(dir, 10), old, old_n, "rename");

    /* A step that cannot be a 12-digit file name. */
    expect_write_fails(dir, &m, -1, ckpt_path(dir, 10), old, old_n, "global step -1");
    expect_write_fails(dir, &m, 1000000000000LL, ckpt_path(dir, 10), old, old_n, "global step");

    free(old);
    free_model(&m);
    rm_rf(base);
}

int main(void) {
    static const test_case cases[] = {
        {"round trip is bit-exact", test_roundtrip_is_bit_exact},
        {"file layout is as documented", test_file_layout_is_as_documented},
        {"empty state and no optimizer", test_empty_state_and_no_optimizer},
        {"keep leaves the newest", test_keep_leaves_newest},
        {"list orders newest first", test_list_orders_newest_first},
        {"another model is rejected", test_other_model_is_rejected},
        {"damaged files are rejected", test_damaged_files_are_rejected},
        {"another format version is rejected", test_other_format_version_is_rejected},
        {"variable-length config reads", test_variable_length_config_reads},
        {"7-column metrics of older checkpoints read", test_seven_column_metrics_read},
        {"failed write keeps old checkpoints", test_failed_write_keeps_old_checkpoints},
        {NULL, NULL},
    };
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own probes expect failures */
    return test_run_suite("checkpoint", cases);
}
