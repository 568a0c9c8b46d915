/* grad_shm_map.c - setting up, publishing and tearing down the node's shared copy. */
#include "grad/grad_shm.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static size_t shm_round_up(size_t n) {
    return (n + SHARE_LINE - 1) / SHARE_LINE * SHARE_LINE;
}

/* Slack for what Open MPI adds to the segment (its window state, a page),
 * and for other users of the directory meanwhile. */
#define SHARE_ROOM_SLACK ((size_t)4 << 20)

/* Whether a segment of `bytes` fits where Open MPI would back it; if not, a
 * reason in err. Open MPI aborts the job when the file cannot be made (only
 * the node's first rank learns of it, so it cannot be caught and agreed on
 * afterwards): this is asked first. A container's /dev/shm (64 MiB under
 * Docker by default) is the usual case. */
static void shm_check_room(size_t bytes, dp_error *err) {
    char dir[512];
    if (dp_comm_shared_dir(dir, sizeof dir)) return; /* not Open MPI's: let it try */
    struct statvfs fs;
    if (access(dir, W_OK | X_OK) || statvfs(dir, &fs)) {
        dp_error_set(err, "shared memory", "cannot create the segment's file in %s (%s)", dir,
                     strerror(errno));
        return;
    }
    double mib = 1024.0 * 1024.0;
    double room = (double)fs.f_bavail * (double)fs.f_frsize;
    if (room < (double)(bytes + SHARE_ROOM_SLACK))
        dp_error_set(err, "shared memory", "%s has %.1f MiB free and the segment needs %.1f MiB",
                     dir, room / mib, (double)(bytes + SHARE_ROOM_SLACK) / mib);
}

/* The node and cross groups, or 0 (with none kept) when sharing gains nothing:
 * uneven nodes, whose ranges would not pair up, or one rank per node, where
 * the allreduce overlapped with backward is the better path. */
static int shm_split(dp_grad_shm *s, const dp_comm *c) {
    s->nodes = dp_comm_split_nodes(c, &s->node, &s->cross);
    if (s->nodes == 0) return 0;
    if (s->node.size > 1) return 1;
    dp_comm_free_split(&s->node);
    dp_comm_free_split(&s->cross);
    return 0;
}

int dp_grad_shm_attach(dp_grad_shm *s, const dp_comm *c, dp_model *m, dp_optim *o,
                       dp_reduction mode, const dp_trainset *ts) {
    memset(s, 0, sizeof *s);
    if (c->size < 2 || !shm_split(s, c)) return 0;
    int L = s->node.size;
    size_t n = m->n_params, stride = shm_round_up(n);
    int slots = o->n_slots, exact = mode == DP_REDUCE_EXACT;
    int arenas = exact ? L * ts->n_shards : L;
    int n_tensors = dp_model_list_tensors(m, NULL, NULL);
    size_t floats = stride * (size_t)(1 + slots + arenas);
    size_t doubles = 2 * (size_t)(L * ts->n_shards) + 2 * (size_t)L + (size_t)L * n_tensors;
    size_t bytes = floats * sizeof(float) + doubles * sizeof(double);
    dp_error room = {0};
    if (s->node.rank == 0) shm_check_room(bytes, &room);
    if (dp_comm_agree(c, &room)) {
        if (c->rank == 0) snprintf(s->why, sizeof s->why, "%s", room.what);
        dp_comm_free_split(&s->node);
        dp_comm_free_split(&s->cross);
        return 0;
    }
    float *base = dp_comm_shared_map(&s->node, bytes, &s->win);
    /* The segment's first contents are unspecified: the node's first rank
     * zeroes it, as dp_model_build and dp_optim_init zeroed the private buffers it
     * replaces. */
    if (s->node.rank == 0) memset(base, 0, bytes);
    dp_comm_shared_fence(&s->node, s->win);
    s->rank = s->node.rank;
    s->size = L;
    s->exact = exact;
    s->shards = ts->plan.shards;
    s->n_my = ts->n_shards;
    s->arenas = arenas;
    s->stride = stride;
    /* [params | state slots | arenas | micro_notes | rank_notes | maxima] */
    free(m->params);
    free(m->grads);
    m->params = base;
    for (int k = 0; k < slots; k++) {
        free(o->slots[k]);
        o->slots[k] = base + stride * (size_t)(1 + k);
    }
    s->grads = base + stride * (size_t)(1 + slots);
    s->micro_notes = (double *)(void *)(base + floats);
    s->rank_notes = s->micro_notes + 2 * L * s->n_my;
    s->maxima = s->rank_notes + 2 * L;
    m->grads = dp_grad_shm_grads(s, s->n_my - 1);
    size_t lines = n / SHARE_LINE;
    s->lo = lines * (size_t)s->rank / (size_t)L * SHARE_LINE;
    s->hi = s->rank + 1 == L ? n : lines * (size_t)(s->rank + 1) / (size_t)L * SHARE_LINE;
    s->n_tensors = n_tensors;
    s->t_off = DP_MALLOC(((size_t)n_tensors + 1) * sizeof(size_t));
    s->t_len = DP_MALLOC(((size_t)n_tensors + 1) * sizeof(size_t));
    dp_model_list_tensors(m, s->t_off, s->t_len);
    s->agreed = DP_CALLOC((size_t)n_tensors + 2, sizeof(double));
    s->piece = DP_MALLOC(SHARE_PIECE * sizeof(float));
    s->acc = DP_MALLOC(SHARE_PIECE * sizeof(int64_t));
    if (s->nodes > 1) {
        size_t len = s->hi - s->lo + 1;
        if (exact) s->racc = DP_MALLOC(len * sizeof(int64_t));
        else s->rsum = DP_MALLOC(len * sizeof(float));
    }
    return 1;
}

float *dp_grad_shm_grads(const dp_grad_shm *s, int k) {
    int arena = s->exact ? s->rank * s->n_my + k : s->rank;
    return s->grads + s->stride * (size_t)arena;
}

void dp_grad_shm_publish(const dp_grad_shm *s, dp_model *m, dp_optim *o) {
    dp_comm_shared_fence(&s->node, s->win);
    if (s->nodes == 1) return;
    /* The first rank of each node copies rank 0's copy into its node's. */
    if (s->rank == 0) {
        dp_comm_bcast(&s->cross, m->params, m->n_params * sizeof(float), 0);
        for (int k = 0; k < o->n_slots; k++)
            dp_comm_bcast(&s->cross, o->slots[k], o->n * sizeof(float), 0);
    }
    dp_comm_shared_fence(&s->node, s->win);
}

void dp_grad_shm_detach(dp_grad_shm *s, dp_model *m, dp_optim *o) {
    m->params = m->grads = NULL;
    for (int k = 0; k < o->n_slots; k++) o->slots[k] = NULL;
    dp_comm_shared_unmap(&s->win);
    dp_comm_free_split(&s->node);
    dp_comm_free_split(&s->cross);
    free(s->t_off);
    free(s->t_len);
    free(s->agreed);
    free(s->piece);
    free(s->acc);
    free(s->rsum);
    free(s->racc);
    memset(s, 0, sizeof *s);
}
