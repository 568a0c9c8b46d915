/* budget.h - (private) the memory one rank needs for a run: docs/DESIGN.md §9
 * in code, used by `dptrain summary`. */
#ifndef DPTRAIN_CMD_BUDGET_H
#define DPTRAIN_CMD_BUDGET_H

#include <stddef.h>

#include "data/data.h"
#include "dptrain/config.h"
#include "dptrain/error.h"
#include "nn/model.h"

/* What a rank's resident memory holds before any data or model: the program,
 * its libraries, MPI's set-up, HDF5 and the first sgemm. Measured as the peak
 * RSS of a 2-parameter model trained on 16 rows (Debian 12 x86-64, Open MPI
 * 4.1, OpenBLAS 0.3.21, HDF5 1.10): 24.2 MiB on 1 rank, 26.6 on 2, 29.4 on 4,
 * i.e. 1 MiB once there is more than one rank (Open MPI's shared-memory
 * transport) and 1.4 MiB for each other rank on the node. */
#define DP_BUDGET_RUNTIME_BYTES (24.2 * 1048576.0)
#define DP_BUDGET_RUNTIME_MULTI_BYTES (1.0 * 1048576.0)
#define DP_BUDGET_RUNTIME_PEER_BYTES (1.4 * 1048576.0)

/* Bytes per part, for the rank that needs the most, with all P ranks on one
 * node. */
typedef struct dp_budget {
    int ranks, batch, shards;
    int rank;          /* which rank this is: 0 holds the checkpoint snapshot and
                          zeroes the shared segment, but may evaluate fewer rows */
    int rows;          /* the most rows its forward passes run on */
    int shared;        /* gradients through one shared segment (P > 1, train.shared_memory) */
    int exact;         /* the exact fixed-point sum is in use (more than 2 shards) */
    size_t train_rows; /* the rank's training rows (its shards) */
    size_t val_rows, test_rows; /* its share of the held-out rows */
    int streamed;               /* data.in_memory decided to stream (the reader's slots) */
    double data;                /* those rows as float32, and the shard permutations;
                                   streamed: the reader's slots and permutations */
    double model;               /* parameters, gradients, optimizer slots (the shared segment) */
    double snapshot;            /* the checkpoint writer's copy */
    double activations;         /* layer outputs, backward buffers, layer state, staging */
    double runtime;             /* DP_BUDGET_RUNTIME_*_BYTES */
    double total;
} dp_budget;

/* The budget of the largest rank of cfg's run on `ranks` ranks at global batch `batch`, for model m
 * (built from cfg for any batch size: only its shapes and parameter count are
 * read) and the data file described by info. Checks what training would
 * reject: data.shards not a multiple of ranks, batch below the shard count,
 * fewer training rows than one batch. Returns 0, or -1 with err set. */
int dp_memory_budget(const dp_model *m, const dp_config *cfg, const dp_data_info *info, int ranks,
                     int batch, dp_budget *out, dp_error *err);

#endif
