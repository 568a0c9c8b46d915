/* cmd_mpi.c - one checkpoint opened on every rank, and the shared options. */
#include "cmd/cmd_mpi.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

int dp_cmd_parse_batch(const char *s, int *out, dp_error *err) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < 1 || v > 1000000)
        return dp_error_set(err, "--batch", "expected a whole number in [1, 1000000], got '%s'", s);
    *out = (int)v;
    return 0;
}

int dp_cmd_load_all(const dp_comm *c, dp_loaded *l, const char *arg, int best, int max_batch,
                    dp_error *err) {
    memset(l, 0, sizeof *l);
    if (c->rank == 0) dp_load_checkpoint(l, arg, best, max_batch, err);
    if (dp_comm_agree(c, err)) return -1;
    unsigned long long len = c->rank == 0 ? strlen(l->path) : 0;
    dp_comm_bcast(c, &len, sizeof len, 0);
    char *path = DP_MALLOC(len + 1);
    if (c->rank == 0) memcpy(path, l->path, len + 1);
    dp_comm_bcast(c, path, len + 1, 0);
    if (c->rank != 0) dp_load_checkpoint(l, path, 0, max_batch, err);
    free(path);
    if (dp_comm_agree(c, err)) {
        dp_loaded_free(l);
        return -1;
    }
    return 0;
}
