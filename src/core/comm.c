/* comm.c - every MPI call in dptrain lives here. */
#include "core/comm.h"
#include "core/alloc.h"
#include "core/timeline.h"
#include "dptrain/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MPI_MAX can drop a NaN: Open MPI's compares with `>`, which a NaN fails
 * whichever side it is on, so one rank's NaN vanished or not depending on the
 * rank. This maximum lets a NaN win from either side, as the local maxima do. */
static MPI_Op comm_op_max = MPI_OP_NULL;

static void comm_max_nan(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type; /* created for MPI_DOUBLE only */
    const double *a = in;
    double *b = inout;
    for (int i = 0; i < *len; i++)
        if (!isnan(b[i]) && !(a[i] <= b[i])) b[i] = a[i];
}

int dp_comm_init(dp_comm *c, int *argc, char ***argv) {
    /* Open MPI's nonblocking allreduce picks an algorithm that, measured on
     * shared memory with 2 ranks, takes twice as long as the ring for gradient
     * buckets; prefer the ring unless the user chose otherwise. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return -1;
    /* A private communicator keeps our collectives apart from any a host
     * program might run on COMM_WORLD. */
    MPI_Op_create(comm_max_nan, 1, &comm_op_max);
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_ARE_FATAL);
    for (int i = 0; i < 2; i++) MPI_Comm_dup(c->comm, &c->lanes[i]);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    return 0;
}

void dp_comm_finalize(dp_comm *c) {
    for (int i = 0; i < 2; i++) MPI_Comm_free(&c->lanes[i]);
    MPI_Comm_free(&c->comm);
    MPI_Op_free(&comm_op_max);
    MPI_Finalize();
}

int dp_comm_agree(const dp_comm *c, dp_error *err) {
    int mine = err->set ? c->rank : c->size, first;
    dp_tl_begin(DP_TL_BARRIER, 1);
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    dp_tl_end(DP_TL_BARRIER, 1);
    if (first == c->size) return 0;
    if (first != 0) {
        /* Only rank 0 prints, so the first failing rank's message travels there. */
        dp_error msg;
        if (c->rank == first) msg = *err;
        MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, first, c->comm);
        if (c->rank == 0) {
            *err = msg;
            char what[sizeof err->what];
            snprintf(what, sizeof what, "on rank %d: %.700s", first, msg.what);
            memcpy(err->what, what, sizeof what);
        }
    }
    return 1;
}

/* MPI counts are int: split large buffers into chunks that fit. */
#define COMM_CHUNK ((size_t)1 << 30)

void dp_comm_bcast(const dp_comm *c, void *buf, size_t n, int root) {
    for (size_t off = 0; off < n; off += COMM_CHUNK) {
        size_t len = n - off < COMM_CHUNK ? n - off : COMM_CHUNK;
        MPI_Bcast((char *)buf + off, (int)len, MPI_BYTE, root, c->comm);
    }
}

/* In-place sum of n elements of `size` bytes, in chunks of at most COMM_CHUNK bytes. */
static void comm_sum_chunked(const dp_comm *c, void *buf, size_t n, size_t size, MPI_Datatype t) {
    size_t per = COMM_CHUNK / size;
    for (size_t off = 0; off < n; off += per) {
        size_t len = n - off < per ? n - off : per;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * size, (int)len, t, MPI_SUM, c->comm);
    }
}

void dp_comm_sum_f32(const dp_comm *c, float *buf, size_t n) {
    comm_sum_chunked(c, buf, n, sizeof *buf, MPI_FLOAT);
}

void dp_comm_sum_i64(const dp_comm *c, int64_t *buf, size_t n) {
    comm_sum_chunked(c, buf, n, sizeof *buf, MPI_INT64_T);
}

void dp_comm_sum_f64(const dp_comm *c, double *buf, size_t n) {
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, c->comm);
}

void dp_comm_max_f64(const dp_comm *c, double *buf, size_t n) {
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, comm_op_max, c->comm);
}

/* Buckets are far below 2^31 elements; the int cast of n is safe for them. */
void dp_comm_isum_f32(const dp_comm *c, int lane, float *buf, size_t n, dp_comm_req *req) {
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, c->lanes[lane], req);
}

void dp_comm_isum_f64(const dp_comm *c, int lane, double *buf, size_t n, dp_comm_req *req) {
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, c->lanes[lane], req);
}

void dp_comm_isum_i64(const dp_comm *c, int lane, int64_t *buf, size_t n, dp_comm_req *req) {
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, c->lanes[lane], req);
}

void dp_comm_imax_f64(const dp_comm *c, int lane, double *buf, size_t n, dp_comm_req *req) {
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, comm_op_max, c->lanes[lane], req);
}

int dp_comm_test(dp_comm_req *req) {
    int done = 0;
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    return done;
}

void dp_comm_wait(dp_comm_req *req) {
    MPI_Wait(req, MPI_STATUS_IGNORE);
}

void dp_comm_allgather(const dp_comm *c, const void *in, void *out, size_t n) {
    MPI_Allgather(in, (int)n, MPI_BYTE, out, (int)n, MPI_BYTE, c->comm);
}

void dp_comm_gatherv(const dp_comm *c, const void *in, size_t n, void *out, const size_t *counts,
                     int root) {
    int *cnt = DP_MALLOC(2 * (size_t)c->size * sizeof(int)), *displ = cnt + c->size; /* [size] */
    size_t at = 0;
    for (int r = 0; r < c->size; r++) {
        cnt[r] = (int)counts[r];
        displ[r] = (int)at;
        at += counts[r];
    }
    MPI_Gatherv(in, (int)n, MPI_BYTE, out, cnt, displ, MPI_BYTE, root, c->comm);
    free(cnt);
}

int dp_comm_find_mismatch(const dp_comm *c, uint64_t value) {
    uint64_t ref = value;
    dp_tl_begin(DP_TL_BARRIER, 2);
    MPI_Bcast(&ref, 1, MPI_UINT64_T, 0, c->comm);
    int mine = value == ref ? c->size : c->rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    dp_tl_end(DP_TL_BARRIER, 2);
    return first == c->size ? -1 : first;
}

static void comm_wrap(dp_comm *sub, MPI_Comm comm) {
    sub->comm = comm;
    sub->lanes[0] = sub->lanes[1] = MPI_COMM_NULL;
    MPI_Comm_rank(comm, &sub->rank);
    MPI_Comm_size(comm, &sub->size);
}

int dp_comm_split_nodes(const dp_comm *c, dp_comm *node, dp_comm *cross) {
    MPI_Comm nc, cc;
    MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &nc);
    comm_wrap(node, nc);
    int sizes[2] = {node->size, -node->size}, ext[2];
    MPI_Allreduce(sizes, ext, 2, MPI_INT, MPI_MIN, c->comm);
    /* Ranges of the one copy are per node position: uneven nodes cannot pair them. */
    if (ext[0] != -ext[1]) {
        dp_comm_free_split(node);
        return 0;
    }
    MPI_Comm_split(c->comm, node->rank, c->rank, &cc);
    comm_wrap(cross, cc);
    return cross->size;
}

int dp_comm_node_size(const dp_comm *c) {
    MPI_Comm nc;
    int size = 1;
    if (MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &nc) !=
        MPI_SUCCESS)
        return 1;
    MPI_Comm_size(nc, &size);
    MPI_Comm_free(&nc);
    return size;
}

void dp_comm_free_split(dp_comm *sub) {
    if (sub->comm != MPI_COMM_NULL) MPI_Comm_free(&sub->comm);
}

int dp_comm_shared_dir(char *dir, size_t len) {
    int provided, idx, count, rc = -1;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return -1;
    MPI_T_cvar_handle h;
    if (MPI_T_cvar_get_index("osc_sm_backing_directory", &idx) == MPI_SUCCESS &&
        MPI_T_cvar_handle_alloc(idx, NULL, &h, &count) == MPI_SUCCESS) {
        /* count is the string variable's buffer size, its NUL included. */
        char *buf = calloc((size_t)count + 1, 1);
        if (buf && MPI_T_cvar_read(h, buf) == MPI_SUCCESS && buf[0] && strlen(buf) < len) {
            memcpy(dir, buf, strlen(buf) + 1);
            rc = 0;
        }
        free(buf);
        MPI_T_cvar_handle_free(&h);
    }
    MPI_T_finalize();
    return rc;
}

void *dp_comm_shared_map(const dp_comm *c, size_t bytes, dp_comm_win *win) {
    /* Rank 0 holds the whole segment, so it is one contiguous range that every
     * rank addresses alike; 64 bytes more buy a cache-line aligned base. */
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "false");
    MPI_Aint mine = c->rank == 0 ? (MPI_Aint)(bytes + 64) : 0;
    void *base = NULL;
    /* Errors are fatal (the window inherits no handler of ours): no rank can
     * come back without the segment while the others have it. */
    MPI_Win_allocate_shared(mine, 1, info, c->comm, &base, win);
    MPI_Info_free(&info);
    MPI_Aint size;
    int unit;
    MPI_Win_shared_query(*win, 0, &size, &unit, &base);
    /* One passive-target epoch for the whole run: the fences only order memory. */
    MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    uintptr_t a = ((uintptr_t)base + 63) & ~(uintptr_t)63;
    return (void *)a;
}

void dp_comm_shared_fence(const dp_comm *c, dp_comm_win win) {
    dp_tl_begin(DP_TL_BARRIER, 0);
    MPI_Win_sync(win);
    MPI_Barrier(c->comm);
    MPI_Win_sync(win);
    dp_tl_end(DP_TL_BARRIER, 0);
}

void dp_comm_shared_unmap(dp_comm_win *win) {
    MPI_Win_unlock_all(*win);
    MPI_Win_free(win);
}

double dp_comm_time(void) {
    return MPI_Wtime();
}

int64_t dp_comm_common_origin(const dp_comm *c, int64_t (*now)(void)) {
    MPI_Comm node;
    MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Barrier(c->comm);
    int64_t t = now();
    MPI_Bcast(&t, 1, MPI_INT64_T, 0, node);
    MPI_Comm_free(&node);
    return t;
}

void dp_comm_send(const dp_comm *c, const void *buf, size_t n, int dest) {
    MPI_Send(buf, (int)n, MPI_BYTE, dest, 0, c->comm);
}

void dp_comm_recv(const dp_comm *c, void *buf, size_t n, int src) {
    MPI_Recv(buf, (int)n, MPI_BYTE, src, 0, c->comm, MPI_STATUS_IGNORE);
}

dp_comm *dp_comm_open(int *argc, char ***argv, dp_error *err) {
    dp_comm *c = DP_CALLOC(1, sizeof *c);
    if (dp_comm_init(c, argc, argv)) {
        free(c);
        dp_error_set(err, "MPI", "initialization failed");
        return NULL;
    }
    return c;
}

void dp_comm_close(dp_comm *c) {
    if (!c) return;
    dp_comm_finalize(c);
    free(c);
}

int dp_comm_rank(const dp_comm *c) {
    return c->rank;
}

int dp_comm_size(const dp_comm *c) {
    return c->size;
}
