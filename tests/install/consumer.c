/* consumer.c - a program outside the project that uses only the installed
 * <dptrain.h>: trains configs/seed.yaml for two epochs into a run directory,
 * reads the newest checkpoint into a fresh model, and predicts a few rows.
 *
 * Usage: consumer SOURCE_DIR RUN_DIR   (under mpirun)
 * Prints what it checked; exits non-zero on the first failure. */
#include <dptrain.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPOCHS 2
#define ROWS 4

static int fail(const char *what, const dp_error *err) {
    fprintf(stderr, "consumer: FAIL: %s\n", what);
    if (err && err->set) dp_error_print(err);
    return 1;
}

/* Loads the config of checkpoint path into a fresh model, reads its
 * parameters, and checks them and a few predictions. Rank 0 only. */
static int check_checkpoint(const char *path) {
    dp_error err = {0};
    dp_config cfg = {0};
    dp_model *m = NULL;
    dp_ckpt_state st = {0};
    char *text = NULL;
    int bad = 1;
    if (dp_ckpt_read_config(path, &text, &err)) {
        fail("dp_ckpt_read_config", &err);
        goto out;
    }
    if (dp_config_load_saved(&cfg, path, text, &err)) {
        fail("dp_config_load_saved of the checkpoint's config", &err);
        goto out;
    }
    m = dp_model_create(&cfg, ROWS, &err);
    if (!m) {
        fail("dp_model_create", &err);
        goto out;
    }
    uint64_t zero_hash = dp_model_hash_params(m);
    if (dp_ckpt_read(path, m, NULL, &st, &err)) {
        fail("dp_ckpt_read", &err);
        goto out;
    }
    uint64_t hash = dp_model_hash_params(m);
    printf("consumer: %s: epoch %d, step %lld, %zu parameters, hash %016" PRIx64
           " (zero model %016" PRIx64 ")\n",
           path, st.epoch, st.global_step, dp_model_n_params(m), hash, zero_hash);
    char name[64];
    snprintf(name, sizeof name, "ckpt-%012lld.h5", st.global_step);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (st.epoch != EPOCHS || st.global_step <= 0 || strcmp(base, name) != 0) {
        fail("the newest checkpoint is not the end of the last epoch", NULL);
        goto out;
    }
    if (hash == zero_hash) {
        fail("the parameters did not change from zero", NULL);
        goto out;
    }

    int in = (int)dp_shape_numel(&cfg.input);
    float *x = malloc(sizeof(float) * (size_t)in * ROWS);
    if (!x) {
        fail("out of memory", NULL);
        goto out;
    }
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < in; j++) x[r * in + j] = (float)((r + 1) * (j % 5) - 4) * 0.25f;
    const float *y = dp_model_predict(m, x, ROWS);
    int K = dp_model_output_width(m);
    bad = 0;
    for (int r = 0; r < ROWS; r++)
        for (int k = 0; k < K; k++) {
            float p = y[r * K + k];
            printf("consumer: row %d output %d: %.6f\n", r, k, p);
            if (!(p > 0.0f && p < 1.0f))
                bad = fail("an output is not a probability in (0,1)", NULL);
        }
    free(x);
out:
    dp_ckpt_state_free(&st);
    dp_model_destroy(m);
    dp_config_free(&cfg);
    free(text);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: consumer SOURCE_DIR RUN_DIR\n");
        return 2;
    }
    char cfg_path[1024], data_set[1100], epochs_set[64];
    snprintf(cfg_path, sizeof cfg_path, "%s/configs/seed.yaml", argv[1]);
    snprintf(data_set, sizeof data_set, "data.path=%s/datasets/seed_classification.h5", argv[1]);
    snprintf(epochs_set, sizeof epochs_set, "train.epochs=%d", EPOCHS);
    const char *run_dir = argv[2];

    dp_error err = {0};
    dp_comm *c = dp_comm_open(&argc, &argv, &err);
    if (!c) return fail("dp_comm_open", &err);
    int rank = dp_comm_rank(c);

    dp_config cfg = {0};
    char *sets[] = {data_set, epochs_set};
    int rc = 0;
    if (dp_config_load_file(&cfg, cfg_path, sets, 2, &err)) {
        rc = fail("dp_config_load_file", &err);
    } else {
        dp_train_opts opts = {.run_dir = run_dir, .resume = 0, .stop_after = 0};
        int status = dp_train_run(c, &cfg, &opts);
        if (rank == 0)
            printf("consumer: dp_train_run on %d rank(s): %d\n", dp_comm_size(c), status);
        if (status != DP_EXIT_OK) rc = fail("dp_train_run", NULL);
    }
    dp_config_free(&cfg);

    if (!rc && rank == 0) {
        char **paths = NULL;
        int n = dp_ckpt_list(run_dir, &paths, &err);
        printf("consumer: %d checkpoint(s) in %s\n", n, run_dir);
        if (n <= 0) rc = fail("dp_ckpt_list found no checkpoint", &err);
        else rc = check_checkpoint(paths[0]);
        dp_ckpt_free_list(paths, n > 0 ? n : 0);
    }
    dp_comm_close(c);
    if (rank == 0) printf("consumer: %s\n", rc ? "FAILED" : "ok");
    return rc;
}
