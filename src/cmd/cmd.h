/* cmd.h - the commands that run as one plain process, without MPI. */
#ifndef DPTRAIN_CMD_H
#define DPTRAIN_CMD_H

/* `dptrain generate CKPT|RUN_DIR --prompt TEXT [--length N] [--temperature T]
 * [--top-k K] [--seed S]`: loads a byte-level language model and writes the
 * prompt and its continuation to stdout. argv[1] is "generate". Returns a
 * DP_EXIT_* code; on error one line went to stderr and nothing to stdout. */
int dp_cmd_generate(int argc, char **argv);

/* `dptrain summary CONFIG|CKPT|RUN_DIR [--ranks P] [--batch B] [--data PATH]`:
 * prints the layers (output shape, parameters, forward FLOPs per sample), the
 * totals, and the memory budget of rank 0 on P ranks at global batch B
 * (cmd/budget.h). argv[1] is "summary". Returns a DP_EXIT_* code; on error one
 * line went to stderr and nothing to stdout. */
int dp_cmd_summary(int argc, char **argv);

#endif
