/* onnx_export.h - `dptrain export`: a trained model as an ONNX file. */
#ifndef DPTRAIN_ONNX_EXPORT_H
#define DPTRAIN_ONNX_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd_load.h"
#include "dptrain/error.h"

/* The ONNX opset and IR version written (opset 17 needs IR 8). */
#define DP_ONNX_OPSET 17
#define DP_ONNX_IR_VERSION 8

/* Serializes the network of a loaded checkpoint as an ONNX ModelProto into
 * *buf (malloc'd, *len bytes). The graph takes raw rows as `predict` does:
 * input "input" float32 [N, ...model.input] (int32 token ids [N, T] when the
 * first layer is an embedding), in the file's units: its first nodes apply
 * data.scale and data.offset (x * scale + offset in double, rounded to float,
 * when they are not 1 and 0), then the checkpoint's /data/mean and /data/std
 * when it has them; output "predictions"
 * float32 [N, ...output] after the output activation (probabilities for a
 * classifier). A layer without an ONNX form is an error naming it. Returns 0,
 * or -1 with err set and *buf NULL. */
int dp_onnx_serialize(const dp_loaded *ld, uint8_t **buf, size_t *len, dp_error *err);

/* Writes buf[len] to path atomically: a temporary file in the same directory,
 * flushed to disk, then renamed over path. On failure nothing is left at
 * path or beside it. Returns 0 or -1 with err set. */
int dp_onnx_write_file(const char *path, const uint8_t *buf, size_t len, dp_error *err);

/* `dptrain export CKPT|RUN_DIR --onnx OUT.onnx [--best]` (argv[1] is
 * "export"): a plain process, no MPI. Returns a DP_EXIT_* code; on error one
 * line went to stderr and no file was written. */
int dp_cmd_export(int argc, char **argv);

#endif
