/* data.h - the HDF5 dataset: validate on open, read row ranges by hyperslab.
 *
 * Layout (docs/DESIGN.md §4): /train/x features [N, ...] stored as uint8, int8,
 * uint16, int16, float16 or float32, or int32 token ids [N, T],
 * /train/y int32 [N] (class ids), int32 [N, T] (a class id per position) or float32
 * [N, k]; optional /val/{x,y} and /test/{x,y} with the same row shape and dtypes.
 * x and targets are handed out as float32 whatever their stored dtype (token ids
 * and class ids below 2^24 are exact).
 * Nothing here calls MPI: the caller combines per-shard statistics (comm.h). */
#ifndef DPTRAIN_DATA_H
#define DPTRAIN_DATA_H

#include <stddef.h>
#include "dptrain/error.h"
#include "dptrain/shape.h"
#include "data/data_dtype.h"

/* What a file holds, checked on open. */
typedef struct dp_data_info {
    char path[1024];
    dp_shape x_shape;     /* one row of x */
    int x_is_int;         /* x holds int32 token ids [N, T] */
    dp_xtype x_type;      /* how x is stored (data_dtype.h) */
    double scale, offset; /* features are read as x * scale + offset (data.scale,
                             data.offset); dp_data_read_info sets 1 and 0, the
                             caller overwrites them like n_tokens */
    int n_tokens;         /* set by the caller before reading rows: token ids must lie in
                         [0, n_tokens) (the embedding's input_dim); 0 = unchecked */
    int y_cols;           /* 1 for int32 [N] labels, T for int32 [N, T], k for float32 [N, k] */
    int y_is_int;         /* labels stored as int32 class ids */
    size_t n_train;       /* rows in /train */
    int has_val, has_test;
    size_t n_val, n_test; /* rows in /val and /test when present */
} dp_data_info;

/* Rows of one split held in memory. */
typedef struct dp_rows {
    size_t n;
    size_t x_width; /* floats per row of x */
    int y_cols;
    float *x; /* [n, x_width] */
    float *y; /* [n, y_cols] */
} dp_rows;

/* Opens the file and checks every dataset it needs: presence, rank, dtype
 * (feature x of a type in data_dtype.h or int32 [N, T] x; int32 or float32 y),
 * that every filter of x and y is available, equal row counts of x and y,
 * the same row shape and dtypes in every split, at least one training row.
 * Returns 0 or -1 with err set (where = file name or "file:/train/x"). */
int dp_data_read_info(const char *path, dp_data_info *info, dp_error *err);

/* Reads rows [first, first+count) of split "train", "val" or "test" by hyperslab
 * into out (allocated here). Features become x * scale + offset in float32 (see
 * dp_xtype_to_float). Rejects NaN/Inf in them, token ids outside
 * [0, info->n_tokens) in int32 x when n_tokens > 0 (naming row and column), and
 * labels outside [0, n_classes) when n_classes > 0 and labels are class ids. */
int dp_data_read_rows(const dp_data_info *info, const char *split, size_t first, size_t count,
                      int n_classes, dp_rows *out, dp_error *err);

/* Adds per-column sums and sums of squares of rows [first, first+count) of r into
 * sums[2*x_width] (sum then sumsq), in row order, in double. */
void dp_data_sum_columns(const dp_rows *r, size_t first, size_t count, double *sums);

/* x = (x - mean) / std per column, in place. */
void dp_data_standardize(dp_rows *r, const float *mean, const float *std);

/* mean[w], std[w] from summed columns (population std, as sklearn's
 * StandardScaler; a zero std becomes 1). */
void dp_data_stats_from_sums(const double *sums, size_t n, size_t w, float *mean, float *std);

void dp_data_rows_free(dp_rows *r);

/* Writes "path:/split/ds" into buf, the `where` of errors about that dataset; a
 * path too long for buf keeps its tail, which names the file. */
void dp_data_where(char *buf, size_t n, const char *path, const char *split, const char *ds);

#endif
