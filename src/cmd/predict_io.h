/* predict_io.h - predict's files: rows of any input dataset, and the output
 * written to a temporary file and renamed into place. */
#ifndef DPTRAIN_PREDICT_IO_H
#define DPTRAIN_PREDICT_IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "dptrain/config.h"
#include "dptrain/error.h"
#include "dptrain/shape.h"

/* An open input dataset [N, ...] of numbers. */
typedef struct dp_pred_input {
    char where[DP_PATH_MAX + 300]; /* "IN.h5:/test/x", the place of its errors */
    hid_t file, ds;
    size_t n;             /* rows */
    dp_shape row;         /* the shape of one row */
    int is_int;           /* integers (token ids for an embedding model) rather than floats */
    double scale, offset; /* features are read as x * scale + offset (data.scale and
                             data.offset); open sets 1 and 0, the caller overwrites */
} dp_pred_input;

/* Opens dataset `dataset` ("/test/x"; the leading slash is optional) of the
 * HDF5 file path and checks it holds numbers of rank >= 2 whose rows fit the
 * model's limits. Returns 0, or -1 with err set and nothing left open. */
int dp_pred_input_open(dp_pred_input *in, const char *path, const char *dataset, dp_error *err);

/* Reads rows [first, first + count) into x[count, numel(row)] as float32. With
 * n_tokens > 0 the values are token ids, which must lie in [0, n_tokens);
 * otherwise they become x * scale + offset (after HDF5's conversion to float32)
 * and must be finite. Errors name the row and column. */
int dp_pred_input_read(const dp_pred_input *in, size_t first, size_t count, int n_tokens, float *x,
                       dp_error *err);

/* Closes what dp_pred_input_open opened. Safe after a failed open. */
void dp_pred_input_close(dp_pred_input *in);

/* The output file under construction: a temporary file beside the final one. */
typedef struct dp_pred_output {
    char final[DP_PATH_MAX], tmp[DP_PATH_MAX + 64], dir[DP_PATH_MAX];
    hid_t file, pred, cls; /* cls < 0 when there are no classes */
} dp_pred_output;

/* Checks that path can be written: its directory exists and is writable, and
 * path is not a directory. Touches nothing. Returns 0 or -1 with err set. */
int dp_pred_output_check(const char *path, dp_error *err);

/* Creates the temporary file with /predictions float32 [n, out...] and, when
 * class_ndim > 0, /classes int32 [n] (class_ndim 1) or [n, positions]
 * (class_ndim 2). Returns 0, or -1 with err set and no file left. */
int dp_pred_output_create(dp_pred_output *o, const char *path, size_t n, const dp_shape *out,
                          int class_ndim, int positions, dp_error *err);

/* Writes rows [first, first + count): pred[count, numel(out)] and, when the
 * file has classes, cls[count, positions]. Returns 0 or -1 with err set. */
int dp_pred_output_write(dp_pred_output *o, size_t first, size_t count, const float *pred,
                         const int32_t *cls, dp_error *err);

/* Closes the temporary file, syncs it and renames it over the final path.
 * On failure the temporary file is removed. Returns 0 or -1 with err set. */
int dp_pred_output_commit(dp_pred_output *o, dp_error *err);

/* Closes and removes the temporary file. Safe on a zeroed or committed struct. */
void dp_pred_output_abort(dp_pred_output *o);

#endif
