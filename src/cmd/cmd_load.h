/* cmd_load.h - opening a trained model for the commands that use one
 * (generate, evaluate, predict, summary, export). */
#ifndef DPTRAIN_CMD_LOAD_H
#define DPTRAIN_CMD_LOAD_H

#include "dptrain/checkpoint.h"
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "nn/model.h"

/* A checkpoint opened for use: its path, the config it was trained with (its
 * "# --set" overrides applied), the model built from that config with the
 * checkpoint's parameters, and the position, standardization statistics and
 * metric history. */
typedef struct dp_loaded {
    char *path;
    dp_config cfg;
    dp_model model;
    dp_ckpt_state st;
} dp_loaded;

/* Opens arg: a checkpoint file, or a run directory standing for its newest
 * checkpoint that reads cleanly (torn or foreign files are skipped, as resume
 * does), or with best != 0 the directory's best.h5. The model is built for
 * max_batch rows (max_batch <= 0: the training batch, train.batch_size). On success *l owns everything (free with dp_loaded_free);
 * on failure *l is zeroed, and err names the file and the first problem.
 * Returns 0 or -1. */
int dp_load_checkpoint(dp_loaded *l, const char *arg, int best, int max_batch, dp_error *err);

/* Frees what dp_load_checkpoint allocated and zeroes *l. Safe on a zeroed struct. */
void dp_loaded_free(dp_loaded *l);

#endif
