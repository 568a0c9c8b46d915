/* test_ckpt_writer.c - the background writer writes what was submitted, even
 * when the model changes right after, and reports a failed write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "ckpt/ckpt_writer.h"
#include "dptrain/config.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "testlib.h"

static const char *yaml =
    "data: {path: none.h5}\n"
    "model: {input: [3], layers: [{dense: {units: 2, activation: sigmoid}}]}\n"
    "loss: binary_crossentropy\n"
    "optimizer: adam\n"
    "train: {epochs: 1, batch_size: 1}\n";

static void build(dp_config *cfg, dp_model *m, dp_optim *o) {
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_config_load_text(cfg, "t.yaml", yaml, strlen(yaml), NULL, 0, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_model_build(m, cfg, 4, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_optim_init(o, &cfg->optim, m->n_params, &err), 0);
    for (size_t i = 0; i < m->n_params; i++) {
        m->params[i] = (float)i + 0.5f;
        o->slots[0][i] = -(float)i;
    }
    o->step = 7;
}

static void test_writes_the_snapshot(void) {
    dp_config cfg = {0};
    dp_model m;
    dp_optim o = {0};
    build(&cfg, &m, &o);
    const char *dir = test_make_tmpdir();
    dp_ckpt_writer w;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_writer_start(&w, dir, 2, &m, &o, &err), 0);
    dp_ckpt_state st = {.epoch = 1, .global_step = 5, .seed = 42, .shards = 1};
    float *want = malloc(m.n_params * sizeof(float));
    memcpy(want, m.params, m.n_params * sizeof(float));
    CU_ASSERT_EQUAL(dp_ckpt_writer_submit(&w, &m, &o, &st, &err), 0);
    /* Training goes on and changes the parameters while the thread writes. */
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = -1.0f;
    o.step = 99;
    CU_ASSERT_EQUAL(dp_ckpt_writer_wait(&w, &err), 0);
    dp_ckpt_writer_stop(&w);
    char path[512];
    snprintf(path, sizeof path, "%s/ckpt-000000000005.h5", dir);
    dp_ckpt_state back = {0};
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(path, &m, &o, &back, &err), 0);
    ASSERT_SAME_FLOATS(m.params, want, m.n_params);
    CU_ASSERT_EQUAL(o.step, 7);
    CU_ASSERT_EQUAL(back.global_step, 5);
    dp_ckpt_state_free(&back);
    free(want);
    dp_optim_free(&o);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

static void test_reports_failure(void) {
    dp_config cfg = {0};
    dp_model m;
    dp_optim o = {0};
    build(&cfg, &m, &o);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/afile", test_make_tmpdir());
    FILE *f = fopen(dir, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    strcat(dir, "/sub"); /* a directory under a regular file cannot exist */
    dp_ckpt_writer w;
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_writer_start(&w, dir, 2, &m, &o, &err), 0);
    dp_ckpt_state st = {.global_step = 1};
    CU_ASSERT_EQUAL(dp_ckpt_writer_submit(&w, &m, &o, &st, &err), 0);
    CU_ASSERT_EQUAL(dp_ckpt_writer_wait(&w, &err), -1);
    CU_ASSERT(err.set);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.where, "afile"));
    /* A failure reported once is not reported again. */
    dp_error again = {0};
    CU_ASSERT_EQUAL(dp_ckpt_writer_wait(&w, &again), 0);
    /* The failure of a write also stops the next submit. */
    CU_ASSERT_EQUAL(dp_ckpt_writer_submit(&w, &m, &o, &st, &again), 0);
    dp_error third = {0};
    CU_ASSERT_EQUAL(dp_ckpt_writer_submit(&w, &m, &o, &st, &third), -1);
    CU_ASSERT(third.set);
    dp_ckpt_writer_stop(&w);
    dp_optim_free(&o);
    dp_model_free(&m);
    dp_config_free(&cfg);
}

int main(void) {
    static const test_case cases[] = {
        {"writes the submitted snapshot, not later changes", test_writes_the_snapshot},
        {"a failed write is reported to the next wait or submit", test_reports_failure},
        {NULL, NULL}};
    return test_run_suite("ckpt_writer", cases);
}
