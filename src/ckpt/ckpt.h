/* ckpt.h - (private) writing checkpoints, which only rank 0 does (docs/DESIGN.md §6);
 * reading them is public, in dptrain/checkpoint.h. */
#ifndef DPTRAIN_CKPT_CKPT_H
#define DPTRAIN_CKPT_CKPT_H

#include "dptrain/checkpoint.h"
#include "nn/model.h"
#include "nn/optim.h"

/* Writes dir/ckpt-<global_step>.h5 atomically: a temporary file in dir, fsync,
 * rename, fsync of dir; then deletes all but the newest `keep` checkpoints.
 * keep <= 0 keeps all; the file just written is never deleted. o may be NULL
 * (no /optimizer). On failure the previous checkpoints are untouched. Returns 0 or -1. */
int dp_ckpt_write(const char *dir, const dp_model *m, const dp_optim *o, const dp_ckpt_state *st,
                  int keep, dp_error *err);

/* Writes dir/best.h5 (DP_CKPT_BEST_NAME) atomically, as dp_ckpt_write does,
 * replacing the previous one; it is never pruned. Returns 0 or -1. */
int dp_ckpt_write_best(const char *dir, const dp_model *m, const dp_optim *o,
                       const dp_ckpt_state *st, dp_error *err);

/* mkdir -p dir. Returns 0 or -1 with err set (naming the component at fault). */
int dp_ckpt_make_dir(const char *dir, dp_error *err);

/* Deletes the temporary files of writes that never finished (a writer killed
 * mid-write) from dir. Call only where no other writer uses dir. */
void dp_ckpt_remove_temp(const char *dir);

#endif
