/* test_reader.c - the streaming reader hands out exactly the rows the
 * in-memory path would take, in whatever order the loop asks: its guesses
 * (steps, then validation, then the next epoch, then test) and requests that
 * break them (a resume, a skipped evaluation). Row i of the file holds i in
 * every column, so each row read names itself. */
#include "data/reader.h"
#include "core/rng.h"
#include "testlib.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#define TRAIN_ROWS 130 /* 100 trained on, the last 30 held out */
#define TEST_ROWS 300
#define W 2

static char g_path[512];
static dp_data_info g_info;
static dp_shard_plan g_plan; /* 100 rows, 4 shards, batch 10: 10 steps */

static void put(hid_t f, const char *name, size_t rows, int cols, int is_y) {
    static float buf[TEST_ROWS * W];
    static int lab[TEST_ROWS];
    for (size_t i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) buf[i * (size_t)cols + (size_t)j] = (float)i;
        lab[i] = (int)(i % 3);
    }
    hsize_t d[2] = {rows, (hsize_t)cols};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(is_y ? 1 : 2, d, NULL);
    hid_t ds = H5Dcreate2(f, name, is_y ? H5T_STD_I32LE : H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT,
                          H5P_DEFAULT);
    CU_ASSERT_FATAL(ds >= 0);
    H5Dwrite(ds, is_y ? H5T_NATIVE_INT : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
             is_y ? (void *)lab : (void *)buf);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(lcpl);
}

static void test_setup(void) {
    snprintf(g_path, sizeof g_path, "%s/rows.h5", test_make_tmpdir());
    hid_t f = H5Fcreate(g_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    put(f, "/train/x", TRAIN_ROWS, W, 0);
    put(f, "/train/y", TRAIN_ROWS, 1, 1);
    put(f, "/test/x", TEST_ROWS, W, 0);
    put(f, "/test/y", TEST_ROWS, 1, 1);
    H5Fclose(f);
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_data_read_info(g_path, &g_info, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_shard_plan_make(&g_plan, 100, 4, 10, &err), 0);
}

/* Rank 1 of 2: shards 2 and 3; validation rows 100..129, test rows 256..299
 * (its share of whole 256-row chunks). */
static dp_reader_cfg make_cfg(int prefetch, const float *mean, const float *std) {
    return (dp_reader_cfg){.info = &g_info,
                           .plan = &g_plan,
                           .first_shard = 2,
                           .n_shards = 2,
                           .seed = 42,
                           .epochs = 2,
                           .n_classes = 3,
                           .mean = mean,
                           .std = std,
                           .val = {"train", 100, 30},
                           .test = {"test", 256, 44},
                           .prefetch = prefetch};
}

/* Step t of epoch e as step.c takes it in memory: shard s's rows [b, e) of
 * its permutation keyed by (seed, epoch, shard). */
static void check_step(const dp_read_slot *s, int epoch, int t, const float *mean,
                       const float *std) {
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(s->pos.kind, DP_READ_TRAIN);
    /* Features come as stored, in file order: widened as the step would. */
    CU_ASSERT_EQUAL_FATAL(s->raw, 1);
    float x[64 * W];
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(s->n <= 64, 1);
    CU_ASSERT_EQUAL(dp_data_widen_rows(&g_info, s->x, s->raw_row, s->ids, s->n, mean, std, x, &err),
                    0);
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        int sh = 2 + k;
        uint32_t perm[64];
        dp_rng_permute(dp_rng_make_key(42, 0x5eed, (uint64_t)epoch, (uint64_t)sh), perm,
                       g_plan.count[sh]);
        size_t b, e;
        dp_shard_plan_step(&g_plan, sh, t, &b, &e);
        CU_ASSERT_EQUAL(s->off[k], (int)n);
        CU_ASSERT_EQUAL(s->rows[k], (int)(e - b));
        for (size_t i = b; i < e; i++, n++) {
            uint64_t row = g_plan.offset[sh] + perm[i];
            CU_ASSERT_EQUAL(s->ids[n], row);
            float v = (float)row;
            float want0 = mean ? (v - mean[0]) / std[0] : v;
            float want1 = mean ? (v - mean[1]) / std[1] : v;
            CU_ASSERT_EQUAL(x[n * W], want0);
            CU_ASSERT_EQUAL(x[n * W + 1], want1);
            CU_ASSERT_EQUAL(s->y[n], (float)(row % 3));
        }
    }
    CU_ASSERT_EQUAL(s->n, n);
}

static void check_chunk(const dp_read_slot *s, size_t first, size_t rows, const float *mean,
                        const float *std) {
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL_FATAL(s->n, rows);
    for (size_t i = 0; i < rows; i++) {
        float v = (float)(first + i);
        CU_ASSERT_EQUAL(s->x[i * W], mean ? (v - mean[0]) / std[0] : v);
    }
}

static const dp_read_slot *get(dp_reader *r, int kind, int epoch, long index) {
    dp_error err = {0};
    const dp_read_slot *s = dp_reader_get(r, (dp_read_pos){kind, epoch, index}, &err);
    CU_ASSERT_FALSE(err.set);
    return s;
}

/* The loop's own order: every item is the guess, nothing is read twice. */
static void test_guessed_order(void) {
    for (int prefetch = 1; prefetch <= 5; prefetch += 4) {
        dp_reader r;
        dp_error err = {0};
        dp_reader_cfg cfg = make_cfg(prefetch, NULL, NULL);
        CU_ASSERT_EQUAL_FATAL(dp_reader_start(&r, &cfg, (dp_read_pos){DP_READ_TRAIN, 0, 0}, &err),
                              0);
        for (int e = 0; e < 2; e++) {
            for (int t = 0; t < 10; t++) {
                check_step(get(&r, DP_READ_TRAIN, e, t), e, t, NULL, NULL);
                dp_reader_release(&r);
            }
            check_chunk(get(&r, DP_READ_VAL, e, 0), 100, 30, NULL, NULL);
            dp_reader_release(&r);
        }
        check_chunk(get(&r, DP_READ_TEST, 0, 0), 256, 44, NULL, NULL);
        dp_reader_release(&r);
        CU_ASSERT_EQUAL(r.misses, 0);
        dp_reader_stop(&r);
    }
}

/* A resume mid-epoch, a stop that skips validation, a repeated evaluation:
 * each request gets its own rows, and the reader restarts there. */
static void test_broken_guesses(void) {
    float mean[W] = {50, 10}, std[W] = {4, 0.5f};
    dp_reader r;
    dp_error err = {0};
    dp_reader_cfg cfg = make_cfg(3, mean, std);
    CU_ASSERT_EQUAL_FATAL(dp_reader_start(&r, &cfg, (dp_read_pos){DP_READ_TRAIN, 0, 0}, &err), 0);
    check_step(get(&r, DP_READ_TRAIN, 1, 7), 1, 7, mean, std); /* not the guess */
    dp_reader_release(&r);
    check_step(get(&r, DP_READ_TRAIN, 1, 8), 1, 8, mean, std);
    dp_reader_release(&r);
    /* Skipped ahead: the test chunk was among the guesses, read ahead. */
    check_chunk(get(&r, DP_READ_TEST, 0, 0), 256, 44, mean, std);
    dp_reader_release(&r);
    check_step(get(&r, DP_READ_TRAIN, 0, 3), 0, 3, mean, std); /* and back */
    dp_reader_release(&r);
    /* Restarts: at epoch 1 step 7, and back at epoch 0 step 3; the test
     * chunk was among the guesses that fill the ring. */
    CU_ASSERT_EQUAL(r.misses, 2);
    dp_reader_stop(&r);
    dp_reader_stop(&r); /* stopping twice is safe */
}

int main(void) {
    static const test_case cases[] = {{"write the file", test_setup},
                                      {"the loop's own order", test_guessed_order},
                                      {"requests that break the guess", test_broken_guesses},
                                      {NULL, NULL}};
    int rc = test_run_suite("reader", cases);
    dp_shard_plan_free(&g_plan);
    return rc;
}
