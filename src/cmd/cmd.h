/* cmd.h - the commands besides train: generate as one plain process, evaluate
 * and predict on any number of MPI ranks. */
#ifndef DPTRAIN_CMD_H
#define DPTRAIN_CMD_H

#include "core/comm.h"

/* `dptrain generate CKPT|RUN_DIR --prompt TEXT [--length N] [--temperature T]
 * [--top-k K] [--seed S]`: loads a byte-level language model and writes the
 * prompt and its continuation to stdout. argv[1] is "generate". Returns a
 * DP_EXIT_* code; on error one line went to stderr and nothing to stdout. */
int dp_cmd_generate(int argc, char **argv);

/* Collective. `dptrain evaluate CKPT|RUN_DIR [--data PATH] [--split test|val|train]
 * [--batch N] [--best] [--json]`: the loss and metrics of the checkpoint's model
 * over one split, the ranks sharing the rows; rank 0 prints them. argv[1] is
 * "evaluate". Returns the same DP_EXIT_* code on every rank; on error rank 0
 * printed one line to stderr and nothing to stdout. */
int dp_cmd_evaluate(const dp_comm *c, int argc, char **argv);

/* Collective. `dptrain predict CKPT|RUN_DIR --input IN.h5 [--dataset /test/x]
 * --output OUT.h5 [--best] [--batch N]`: the model's outputs for every row of
 * the input dataset, the ranks sharing the rows, written by rank 0 to OUT.h5
 * atomically. argv[1] is "predict". Returns as dp_cmd_evaluate; on error no
 * file is left behind. */
int dp_cmd_predict(const dp_comm *c, int argc, char **argv);

#endif
