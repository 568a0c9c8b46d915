/* cmd_mpi.h - what evaluate and predict share: options, and one checkpoint for all ranks. */
#ifndef DPTRAIN_CMD_MPI_H
#define DPTRAIN_CMD_MPI_H

#include "cmd/cmd_load.h"
#include "core/comm.h"

/* Parses the --batch value s: a whole number in [1, 1000000]. Returns 0, or -1
 * with err set. */
int dp_cmd_parse_batch(const char *s, int *out, dp_error *err);

/* Collective. Rank 0 opens arg as dp_load_checkpoint does (a run directory
 * means its newest readable checkpoint, or best.h5 with best != 0); the other
 * ranks then open the very file rank 0 chose, so a checkpoint written
 * meanwhile cannot split them. The model is built for batches of max_batch
 * rows (<= 0: the training batch). Returns 0 on every rank, or -1 on every
 * rank with rank 0's err set (*l is then zeroed). */
int dp_cmd_load_all(const dp_comm *c, dp_loaded *l, const char *arg, int best, int max_batch,
                    dp_error *err);

#endif
