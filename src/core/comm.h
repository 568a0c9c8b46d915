/* comm.h - the rank context, and the only module that calls MPI (docs/DESIGN.md §3). */
#ifndef DPTRAIN_COMM_H
#define DPTRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>
#include <mpi.h>
#include "dptrain/error.h"

typedef struct dp_comm {
    int rank;
    int size;
    MPI_Comm comm;
    MPI_Comm lanes[2]; /* for nonblocking collectives: each lane keeps its own order */
} dp_comm;

/* MPI_Init and a private duplicate of COMM_WORLD. MPI errors on it are fatal:
 * the failing rank aborts and mpirun ends the others, so an MPI failure cannot
 * leave ranks waiting on each other; our own errors travel by dp_comm_agree.
 * Returns 0 or -1. */
int dp_comm_init(dp_comm *c, int *argc, char ***argv);

/* MPI_Finalize. */
void dp_comm_finalize(dp_comm *c);

/* Collective. Every rank passes its own err (set or not). Returns 1 on every rank
 * if any rank had an error, 0 otherwise. On return rank 0's err holds the message
 * of the lowest failing rank, prefixed "on rank N: " when N != 0. */
int dp_comm_agree(const dp_comm *c, dp_error *err);

/* Broadcasts n bytes from root. */
void dp_comm_bcast(const dp_comm *c, void *buf, size_t n, int root);

/* In-place sums and maxima over all ranks. A NaN on any rank makes its
 * maximum NaN (MPI_MAX's own may drop it). */
void dp_comm_sum_f64(const dp_comm *c, double *buf, size_t n);
void dp_comm_max_f64(const dp_comm *c, double *buf, size_t n);

/* Nonblocking in-place sums and maxima (a NaN wins, as above), so gradient
 * buckets can travel while backward goes on. Open MPI advances them only inside MPI calls: call
 * dp_comm_test between pieces of work, dp_comm_wait when the result is needed.
 * Collectives must start in the same order on every rank; `lane` (0 or 1)
 * picks one of two private communicators, so two sequences whose relative
 * timing differs between ranks can each keep their own order. */
typedef MPI_Request dp_comm_req;
void dp_comm_isum_f32(const dp_comm *c, int lane, float *buf, size_t n, dp_comm_req *req);
void dp_comm_isum_f64(const dp_comm *c, int lane, double *buf, size_t n, dp_comm_req *req);
void dp_comm_isum_i64(const dp_comm *c, int lane, int64_t *buf, size_t n, dp_comm_req *req);
void dp_comm_imax_f64(const dp_comm *c, int lane, double *buf, size_t n, dp_comm_req *req);
/* 1 when the operation has completed (and drives progress), else 0. */
int dp_comm_test(dp_comm_req *req);
void dp_comm_wait(dp_comm_req *req);

/* Gathers n bytes from every rank into out[size * n], in rank order, on all ranks. */
void dp_comm_allgather(const dp_comm *c, const void *in, void *out, size_t n);

/* Collective. Gathers counts[r] bytes from each rank r (in, n == counts[rank])
 * into out on root, one after another in rank order; out is untouched on the
 * other ranks. Every rank passes the same counts; their total is below 2^31. */
void dp_comm_gatherv(const dp_comm *c, const void *in, size_t n, void *out, const size_t *counts,
                     int root);

/* Collective. -1 when every rank passed the same value as rank 0, else the
 * lowest rank whose value differs (replica checks). */
int dp_comm_find_mismatch(const dp_comm *c, uint64_t value);

/* Collective. Splits c by node: *node gets the ranks on this rank's node and
 * *cross the ranks that hold this rank's place on their nodes, one per node;
 * both keep c's rank order, and have no lanes. Returns the number of nodes
 * when every node runs the same number of ranks; else 0, creating nothing.
 * Free both with dp_comm_free_split. */
int dp_comm_split_nodes(const dp_comm *c, dp_comm *node, dp_comm *cross);
void dp_comm_free_split(dp_comm *sub);

/* Collective. The number of ranks on this rank's node (those that can share
 * memory with it), even and uneven nodes alike; 1 if MPI cannot tell. */
int dp_comm_node_size(const dp_comm *c);

/* In-place blocking sums over all ranks of c, for buffers of any length. */
void dp_comm_sum_f32(const dp_comm *c, float *buf, size_t n);
void dp_comm_sum_i64(const dp_comm *c, int64_t *buf, size_t n);

/* Local. Writes into dir (len bytes) the directory where Open MPI puts the
 * files behind shared segments: its osc_sm_backing_directory variable, read
 * through the MPI tool interface, so a value set by --mca, environment or
 * parameter file counts. Returns 0, or -1 when the variable cannot be read. */
int dp_comm_shared_dir(char *dir, size_t len);

/* Collective over a node's ranks (dp_comm_split_nodes): maps a segment of
 * `bytes` bytes that all of them share, sets *win and returns the segment's
 * base, 64-byte aligned, on every rank. Failing to create the backing file is
 * fatal (as every MPI error): check the room first. */
typedef MPI_Win dp_comm_win;
void *dp_comm_shared_map(const dp_comm *c, size_t bytes, dp_comm_win *win);

/* Collective: a barrier after which every rank sees the stores every rank made
 * to the segment of win before it. */
void dp_comm_shared_fence(const dp_comm *c, dp_comm_win win);

/* Collective over the ranks that mapped win: unmaps its segment. */
void dp_comm_shared_unmap(dp_comm_win *win);

/* Seconds since an arbitrary origin (MPI_Wtime). */
double dp_comm_time(void);

/* Collective. A reading of the clock now() that every rank takes as its time
 * origin: the ranks of one node read one clock (CLOCK_MONOTONIC is per
 * machine), so they all take their node's first rank's reading after a
 * barrier, and nodes line up to the barrier's exit skew (microseconds). */
int64_t dp_comm_common_origin(const dp_comm *c, int64_t (*now)(void));

/* Point to point, n < 2 GiB bytes, tag 0: rank 0 collecting per-rank records. */
void dp_comm_send(const dp_comm *c, const void *buf, size_t n, int dest);
void dp_comm_recv(const dp_comm *c, void *buf, size_t n, int src);

#endif
