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
#include <stdint.h>
#include "dptrain/error.h"
#include "dptrain/shape.h"

/* How /x is stored. Every type but DP_X_TOKENS holds features, handed out as
 * float32 (x * scale + offset); DP_X_TOKENS is int32 token ids. */
typedef enum dp_xtype {
    DP_X_F32 = 0, /* zero: a zeroed dp_data_info means float32 */
    DP_X_F16,     /* IEEE half, little-endian */
    DP_X_U8,
    DP_X_I8,
    DP_X_U16,
    DP_X_I16,
    DP_X_TOKENS, /* int32 */
} dp_xtype;

/* The accepted stored types, for error messages. */
#define DP_XTYPES_ACCEPTED "uint8, int8, uint16, int16, float16 or float32 (int32 for token ids)"

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

/* A contiguous dataset stored as it is used, read by pread (data_read.c). */
typedef struct dp_data_direct {
    int fd;           /* HDF5's descriptor of the file; -1: read through HDF5 */
    long long offset; /* where the dataset's bytes start */
    size_t row_bytes;
} dp_data_direct;

/* One split of the data file kept open for many reads (the streaming reader).
 * Not thread-safe, and HDF5 is not either: one thread at a time (core/h5lock.h). */
typedef struct dp_data_file {
    const dp_data_info *info;
    int64_t file, x, y;       /* HDF5 ids; -1 when closed */
    size_t rows;              /* rows in the split */
    long long size;           /* the file's size when opened; -1: unknown */
    dp_data_direct direct[2]; /* x, y */
    int cache_y;              /* y not read directly comes from ycache */
    void *ycache;             /* [rows, y_cols] the split's y as stored, once read */
    char split[8];
    char wx[256], wy[256]; /* `where` of errors about x and y */
    void *scratch;         /* rows as stored, in file order */
    size_t scratch_cap;
    uint64_t *order; /* [rows read, 2] (file row, output row) pairs */
    size_t order_cap;
    dp_error err;
} dp_data_file;

/* Largest chunk cache dp_data_open gives one dataset. */
#define DP_DATA_CACHE_MAX ((size_t)64 << 20)
/* The largest y a streamed handle keeps whole when HDF5 must gather it. */
#define DP_DATA_YCACHE_MAX ((size_t)16 << 20)
/* HDF5's sieve buffer for contiguous datasets (data_read.c). */
#define DP_DATA_SIEVE_BYTES 0

/* Opens split "train", "val" or "test" of the file info describes and checks
 * it is still the file that was checked. rows_per_read > 0 sizes the chunk
 * cache of a chunked dataset for reads of that many rows (0: HDF5's default).
 * Returns 0, or -1 with err set and h closed. */
int dp_data_open(dp_data_file *h, const dp_data_info *info, const char *split, size_t rows_per_read,
                 dp_error *err);

/* Reads rows [first, first + count) of h's split into x [count, w] and y
 * [count, y_cols] (caller's buffers), converted and checked as
 * dp_data_read_rows does. Returns 0 or -1 with err set (x, y undefined). */
int dp_data_read_range(dp_data_file *h, size_t first, size_t count, int n_classes, float *x,
                       float *y, dp_error *err);

/* Reads the rows ids[0..count) (distinct, any order) into x [count, w] and y
 * [count, y_cols] in that order: the ids are sorted and merged into runs of
 * consecutive rows, read by one H5Dread, and put back in the caller's order.
 * Converted and checked as dp_data_read_rows; errors name the file row.
 * Returns 0 or -1 with err set. */
int dp_data_read_ids(dp_data_file *h, const uint64_t *ids, size_t count, int n_classes, float *x,
                     float *y, dp_error *err);

/* As dp_data_read_ids for feature x (not token ids), but x stays as stored:
 * xraw receives the rows in file order ([count, w] values of info->x_type),
 * and raw_row[i] which of them is row i. dp_data_widen_rows finishes them, so
 * the widening happens where the rows are used. Returns 0 or -1 with err set. */
int dp_data_read_ids_raw(dp_data_file *h, const uint64_t *ids, size_t count, int n_classes,
                         void *xraw, uint32_t *raw_row, float *y, dp_error *err);

/* Rows raw_row[0..rows) of a dp_data_read_ids_raw read as float32 into out
 * [rows, w]: widened (x * scale + offset), checked for NaN and Inf where the
 * stored type allows them (errors name the file row ids[i]), and
 * standardized with mean and std when mean is not NULL: the bits the
 * in-memory rows have. Returns 0 or -1 with err set. */
int dp_data_widen_rows(const dp_data_info *info, const void *xraw, const uint32_t *raw_row,
                       const uint64_t *ids, size_t rows, const float *mean, const float *std,
                       float *out, dp_error *err);

/* Closes h; safe on a closed or failed handle. */
void dp_data_close(dp_data_file *h);

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
