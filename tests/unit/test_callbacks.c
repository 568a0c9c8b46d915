/* test_callbacks.c - the callback rules on sequences worked out by hand from
 * Keras's definitions, their config keys, and their state in checkpoints.
 *
 * The end-to-end check (the rules on real runs, against a Python reference,
 * on 1 to 4 ranks and across resumes) is tests/mpi/test_callbacks.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "nn/model.h"
#include "testlib.h"
#include "train/callbacks.h"

static const char *BASE_CONFIG = "data: {path: d.h5}\n"
                                 "model:\n"
                                 "  input: [3]\n"
                                 "  layers:\n"
                                 "    - dense: {units: 2, activation: relu}\n"
                                 "    - dense: {units: 1, activation: sigmoid}\n"
                                 "loss: binary_crossentropy\n"
                                 "optimizer: {name: sgd, learning_rate: 0.5}\n"
                                 "metrics: [accuracy]\n"
                                 "train: {epochs: 20, batch_size: 4}\n";

static int load(dp_config *cfg, char *const *sets, int n, dp_error *err) {
    return dp_config_load_text(cfg, "t.yaml", BASE_CONFIG, strlen(BASE_CONFIG), sets, n, err);
}

/* Runs the rules over v[n] (the watched figure of epochs 1..n, put in every
 * slot), recording each epoch's events; returns the stop epoch or 0. */
static int replay(const dp_config *cfg, dp_ckpt_callbacks *cb, const double *v, int n,
                  dp_callback_events *ev) {
    dp_callbacks_start(cfg, cfg->optim.learning_rate, cb);
    for (int e = 1; e <= n; e++) {
        double fig[4] = {v[e - 1], v[e - 1], v[e - 1], v[e - 1]};
        dp_callbacks_epoch_end(cfg, cb, e, fig, &ev[e - 1]);
        if (ev[e - 1].stop) return e;
    }
    return 0;
}

static void set_or_die(dp_config *cfg, char *const *sets, int n) {
    dp_error err = {0};
    int rc = load(cfg, sets, n, &err);
    if (rc) fprintf(stderr, "\n  %s: %s\n", err.where, err.what);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* patience 2, min mode: 1.0 and 0.9 improve; 0.95 (wait 1) and 0.92 (wait
 * 2 = patience) do not, so training stops after epoch 4. */
static void test_early_stopping_patience(void) {
    char *sets[] = {"train.early_stopping={patience: 2, restore_best_weights: true}"};
    dp_config cfg;
    set_or_die(&cfg, sets, 1);
    double v[] = {1.0, 0.9, 0.95, 0.92, 0.8};
    dp_callback_events ev[5];
    dp_ckpt_callbacks cb;
    CU_ASSERT_EQUAL(replay(&cfg, &cb, v, 5, ev), 4);
    CU_ASSERT_EQUAL(cb.es_best_epoch, 2);
    CU_ASSERT_EQUAL(cb.es_best, 0.9);
    CU_ASSERT_EQUAL(cb.es_stopped_epoch, 4);
    CU_ASSERT(ev[0].snapshot_best && ev[1].snapshot_best && !ev[2].snapshot_best);
    dp_config_free(&cfg);
}

/* min_delta 0.1: 0.95 is 0.05 below 1.0, not an improvement; with patience 1
 * epoch 2 stops. mode max on the same figures: 0.95 is worse, same stop. A
 * rise of more than min_delta in max mode improves. */
static void test_early_stopping_min_delta_and_mode(void) {
    char *sets[] = {"train.early_stopping={patience: 1, min_delta: 0.1}"};
    dp_config cfg;
    set_or_die(&cfg, sets, 1);
    double v[] = {1.0, 0.95, 0.5};
    dp_callback_events ev[3];
    dp_ckpt_callbacks cb;
    CU_ASSERT_EQUAL(replay(&cfg, &cb, v, 3, ev), 2);
    CU_ASSERT_FALSE(ev[0].snapshot_best); /* restore_best_weights is off */
    dp_config_free(&cfg);

    char *max_sets[] = {"train.early_stopping={patience: 1, min_delta: 0.1, mode: max}"};
    set_or_die(&cfg, max_sets, 1);
    double up[] = {1.0, 1.2, 1.25, 1.0};
    CU_ASSERT_EQUAL(replay(&cfg, &cb, up, 4, ev), 3); /* 1.25 is only 0.05 above 1.2 */
    CU_ASSERT_EQUAL(cb.es_best, 1.2);
    dp_config_free(&cfg);

    /* auto: an accuracy is maximized, a loss minimized. */
    CU_ASSERT_EQUAL(dp_callbacks_direction(DP_MONITOR_VAL_ACCURACY, DP_MODE_AUTO), 1);
    CU_ASSERT_EQUAL(dp_callbacks_direction(DP_MONITOR_ACCURACY, DP_MODE_AUTO), 1);
    CU_ASSERT_EQUAL(dp_callbacks_direction(DP_MONITOR_LOSS, DP_MODE_AUTO), -1);
    CU_ASSERT_EQUAL(dp_callbacks_direction(DP_MONITOR_VAL_ACCURACY, DP_MODE_MIN), -1);
}

/* patience 0 stops at the first epoch that does not improve, but never at
 * the first epoch; a NaN first epoch is no improvement, yet with
 * restore_best_weights its weights are kept as the best so far. */
static void test_early_stopping_first_epoch(void) {
    char *sets[] = {"train.early_stopping={patience: 0, restore_best_weights: true}"};
    dp_config cfg;
    set_or_die(&cfg, sets, 1);
    double v[] = {NAN, 2.0, 3.0};
    dp_callback_events ev[3];
    dp_ckpt_callbacks cb;
    CU_ASSERT_EQUAL(replay(&cfg, &cb, v, 3, ev), 3);
    CU_ASSERT(ev[0].snapshot_best);
    CU_ASSERT_FALSE(ev[0].stop);
    CU_ASSERT(ev[1].snapshot_best); /* 2.0 < +inf */
    CU_ASSERT_EQUAL(cb.es_best_epoch, 2);
    dp_config_free(&cfg);
}

/* factor 0.5, patience 2, cooldown 1, min_lr 0.1, min_delta 0.01, from 0.5:
 *  e1 1.0  improves                        wait 0
 *  e2 1.0  no                              wait 1
 *  e3 0.995 no (not by 0.01)               wait 2 -> 0.25, cooldown 1
 *  e4 1.0  cooldown 1 -> 0, wait 0; no; no longer cooling: wait 1
 *  e5 1.0  wait 2 -> 0.125, cooldown 1
 *  e6 1.0  cooldown -> 0; wait 1
 *  e7 1.0  wait 2 -> max(0.0625, 0.1) = 0.1
 *  e8 0.5  improves                        wait 0
 *  e9,e10  wait 1, 2: 0.1 is not above min_lr, no cut */
static void test_reduce_lr_on_plateau(void) {
    char *sets[] = {"train.reduce_lr_on_plateau={factor: 0.5, patience: 2, cooldown: 1, "
                    "min_lr: 0.1, min_delta: 0.01}"};
    dp_config cfg;
    set_or_die(&cfg, sets, 1);
    double v[] = {1.0, 1.0, 0.995, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6};
    dp_callback_events ev[10];
    dp_ckpt_callbacks cb;
    CU_ASSERT_EQUAL(replay(&cfg, &cb, v, 10, ev), 0);
    int cuts[10] = {0, 0, 1, 0, 1, 0, 1, 0, 0, 0};
    for (int e = 0; e < 10; e++) CU_ASSERT_EQUAL(ev[e].reduced, cuts[e]);
    CU_ASSERT_EQUAL(ev[2].old_lr, 0.5);
    CU_ASSERT_EQUAL(ev[4].old_lr, 0.25);
    CU_ASSERT_EQUAL(ev[6].old_lr, 0.125);
    CU_ASSERT_EQUAL(cb.learning_rate, 0.1);
    CU_ASSERT_EQUAL(cb.lr_wait, 2);
    dp_config_free(&cfg);
}

/* save_best_only: strictly better only; an equal value keeps the old file. */
static void test_best_checkpoint(void) {
    char *sets[] = {"checkpoint.best={monitor: val_accuracy}"};
    dp_config cfg;
    set_or_die(&cfg, sets, 1);
    double v[] = {0.5, 0.7, 0.7, 0.6, 0.8};
    dp_callback_events ev[5];
    dp_ckpt_callbacks cb;
    replay(&cfg, &cb, v, 5, ev);
    int saves[5] = {1, 1, 0, 0, 1};
    for (int e = 0; e < 5; e++) CU_ASSERT_EQUAL(ev[e].save_best, saves[e]);
    CU_ASSERT_EQUAL(cb.ckpt_best_epoch, 5);
    CU_ASSERT(isnan(cb.learning_rate)); /* no reduce_lr_on_plateau */
    dp_config_free(&cfg);
}

/* A section turns its callback on with Keras's defaults; null turns it off. */
static void test_config_sections(void) {
    dp_config cfg;
    set_or_die(&cfg, NULL, 0);
    CU_ASSERT_FALSE(cfg.early_stopping.enabled || cfg.reduce_lr.enabled || cfg.ckpt_best.enabled);
    CU_ASSERT_FALSE(dp_callbacks_any(&cfg));
    dp_config_free(&cfg);

    char *sets[] = {"train.early_stopping={}", "train.reduce_lr_on_plateau.patience=3",
                    "checkpoint.best={mode: max, monitor: accuracy}"};
    set_or_die(&cfg, sets, 3);
    const dp_early_stopping_cfg *es = &cfg.early_stopping;
    CU_ASSERT(es->enabled && es->monitor == DP_MONITOR_VAL_LOSS && es->mode == DP_MODE_AUTO);
    CU_ASSERT(es->patience == 0 && es->min_delta == 0 && !es->restore_best_weights);
    const dp_reduce_lr_cfg *rl = &cfg.reduce_lr;
    CU_ASSERT(rl->enabled && rl->patience == 3 && rl->factor == 0.1 && rl->min_delta == 1e-4);
    CU_ASSERT(rl->cooldown == 0 && rl->min_lr == 0 && rl->monitor == DP_MONITOR_VAL_LOSS);
    CU_ASSERT(cfg.ckpt_best.enabled && cfg.ckpt_best.mode == DP_MODE_MAX);
    CU_ASSERT_EQUAL(cfg.ckpt_best.monitor, DP_MONITOR_ACCURACY);
    dp_config_free(&cfg);

    char *off[] = {"train.early_stopping={patience: 3}", "train.early_stopping=null"};
    set_or_die(&cfg, off, 2);
    CU_ASSERT_FALSE(cfg.early_stopping.enabled);
    dp_config_free(&cfg);
}

/* The state, the best weights and the epoch's sums come back bit for bit;
 * best.h5 is written atomically, replaced, and never listed or pruned. */
static void test_checkpoint_state(void) {
    dp_config cfg;
    set_or_die(&cfg, NULL, 0);
    dp_model m = {0}, m2 = {0};
    dp_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dp_model_build(&m, &cfg, 4, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_model_build(&m2, &cfg, 4, &err), 0);
    dp_model_init_params(&m, 1);
    float *best = malloc(m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++) best[i] = (float)i * 0.25f - 1.0f;
    double metrics[DP_METRICS_COLS] = {1, 0.5, 0.75, 0.6, 0.7, 100, 1, 0.01};
    dp_ckpt_state st = {.epoch = 1,
                        .step_in_epoch = 3,
                        .global_step = 13,
                        .seed = 42,
                        .shards = 1,
                        .epoch_loss_sum = 1.0 / 3.0,
                        .epoch_correct = 7,
                        .epoch_terms = 12,
                        .epoch_seconds = 2.5,
                        .run_seconds = 1.0 / 7.0,
                        .config_text = cfg.text,
                        .n_metrics = 1,
                        .metrics = metrics,
                        .best_weights = best};
    st.cb = (dp_ckpt_callbacks){.present = 1,
                                .es_best = 0.1 + 0.2,
                                .es_best_epoch = 1,
                                .es_wait = 2,
                                .es_stopped_epoch = 0,
                                .ckpt_best = -INFINITY,
                                .ckpt_best_epoch = 0,
                                .lr_best = INFINITY,
                                .lr_wait = 1,
                                .lr_cooldown = 4,
                                .learning_rate = 0.003};
    const char *dir = test_make_tmpdir();
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(dir, &m, NULL, &st, 1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write_best(dir, &m, NULL, &st, &err), 0);
    st.global_step = 26;
    st.best_weights = NULL;
    st.cb.es_wait = 5;
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write_best(dir, &m, NULL, &st, &err), 0); /* replaces */
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(dir, &m, NULL, &st, 1, &err), 0);   /* prunes step 13 */

    char **paths = NULL;
    int n = dp_ckpt_list(dir, &paths, &err);
    CU_ASSERT_EQUAL(n, 1); /* best.h5 is not a checkpoint to resume or prune */
    if (n == 1) CU_ASSERT_PTR_NOT_NULL(strstr(paths[0], "ckpt-000000000026.h5"));
    dp_ckpt_free_list(paths, n);

    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, DP_CKPT_BEST_NAME);
    dp_ckpt_state got = {0};
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(path, &m2, NULL, &got, &err), 0);
    CU_ASSERT_EQUAL(got.global_step, 26);
    CU_ASSERT_EQUAL(got.cb.es_wait, 5);
    CU_ASSERT_PTR_NULL(got.best_weights);
    dp_ckpt_state_free(&got);

    /* Write the first state again under another step and read it all back. */
    st.global_step = 39;
    st.best_weights = best;
    st.cb.es_wait = 2;
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(dir, &m, NULL, &st, 0, &err), 0);
    snprintf(path, sizeof path, "%s/ckpt-000000000039.h5", dir);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(path, &m2, NULL, &got, &err), 0);
    CU_ASSERT_EQUAL(got.cb.present, 1);
    ASSERT_SAME_BYTES(&got.cb, &st.cb, sizeof st.cb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got.best_weights);
    ASSERT_SAME_FLOATS(got.best_weights, best, m.n_params);
    ASSERT_SAME_FLOATS(m2.params, m.params, m.n_params);
    CU_ASSERT_EQUAL(got.epoch_loss_sum, 1.0 / 3.0);
    CU_ASSERT(got.epoch_correct == 7 && got.epoch_terms == 12);
    CU_ASSERT_EQUAL(got.epoch_seconds, 2.5);
    CU_ASSERT_EQUAL(got.run_seconds, 1.0 / 7.0);
    dp_ckpt_state_free(&got);

    /* Without callbacks there is no /callbacks, and the reader says so. */
    st.cb.present = 0;
    st.best_weights = NULL;
    st.global_step = 52;
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_write(dir, &m, NULL, &st, 0, &err), 0);
    snprintf(path, sizeof path, "%s/ckpt-000000000052.h5", dir);
    CU_ASSERT_EQUAL_FATAL(dp_ckpt_read(path, &m2, NULL, &got, &err), 0);
    CU_ASSERT_EQUAL(got.cb.present, 0);
    dp_ckpt_state_free(&got);

    /* A killed best.h5 write's temporary file goes at the next start. */
    snprintf(path, sizeof path, "%s/.best.h5.tmp-99999", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    dp_ckpt_remove_temp(dir);
    struct stat sb;
    CU_ASSERT_NOT_EQUAL(stat(path, &sb), 0);

    free(best);
    dp_model_free(&m);
    dp_model_free(&m2);
    dp_config_free(&cfg);
}

int main(void) {
    static const test_case cases[] = {
        {"early stopping: patience", test_early_stopping_patience},
        {"early stopping: min_delta and mode", test_early_stopping_min_delta_and_mode},
        {"early stopping: the first epoch", test_early_stopping_first_epoch},
        {"reduce lr on plateau: cooldown, min_lr", test_reduce_lr_on_plateau},
        {"best checkpoint: strict improvement", test_best_checkpoint},
        {"config sections", test_config_sections},
        {"checkpoint state and best.h5", test_checkpoint_state},
        {NULL, NULL},
    };
    return test_run_suite("callbacks", cases);
}
