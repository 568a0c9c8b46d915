/* cmd_load.c - opening a checkpoint or run directory as a ready model. */
#include "cmd/cmd_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"

static char *load_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = DP_MALLOC(n);
    memcpy(d, s, n);
    return d;
}

/* Reads one checkpoint file into *l: config first, since it decides the
 * model the parameters are read into. */
static int load_file(dp_loaded *l, const char *path, int max_batch, dp_error *err) {
    char *text = NULL;
    int rc = -1;
    if (dp_ckpt_read_config(path, &text, err) == 0 &&
        dp_config_load_saved(&l->cfg, path, text, err) == 0 &&
        dp_model_build(&l->model, &l->cfg, max_batch > 0 ? max_batch : l->cfg.batch_size, err) ==
            0 &&
        dp_ckpt_read(path, &l->model, NULL, &l->st, err) == 0) {
        l->path = load_strdup(path);
        rc = 0;
    }
    free(text);
    if (rc) dp_loaded_free(l);
    return rc;
}

int dp_load_checkpoint(dp_loaded *l, const char *arg, int best, int max_batch, dp_error *err) {
    memset(l, 0, sizeof *l);
    struct stat sb;
    if (stat(arg, &sb) != 0) return dp_error_set(err, arg, "no such checkpoint or run directory");
    if (!S_ISDIR(sb.st_mode)) {
        if (best)
            return dp_error_set(err, arg, "--best needs a run directory, not a checkpoint file");
        return load_file(l, arg, max_batch, err);
    }
    if (best) {
        size_t n = strlen(arg) + sizeof "/best.h5";
        char *path = DP_MALLOC(n);
        snprintf(path, n, "%s/best.h5", arg);
        int rc = stat(path, &sb) != 0
                     ? dp_error_set(err, arg,
                                    "the run directory has no best.h5 (set checkpoint.best "
                                    "in the config to keep one)")
                     : load_file(l, path, max_batch, err);
        free(path);
        return rc;
    }
    char **paths = NULL;
    int n = dp_ckpt_list(arg, &paths, err);
    if (n < 0) return -1;
    if (n == 0) return dp_error_set(err, arg, "the run directory holds no checkpoint");
    /* The newest file's error is the one worth reporting when none reads. */
    dp_error first = {0};
    int rc = -1;
    for (int i = 0; i < n && rc; i++) {
        dp_error e = {0};
        rc = load_file(l, paths[i], max_batch, &e);
        if (rc && i == 0) first = e;
    }
    dp_ckpt_free_list(paths, n);
    if (rc && err) *err = first;
    return rc;
}

void dp_loaded_free(dp_loaded *l) {
    free(l->path);
    dp_model_free(&l->model);
    dp_config_free(&l->cfg);
    dp_ckpt_state_free(&l->st);
    memset(l, 0, sizeof *l);
}
