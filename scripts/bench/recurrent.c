/* recurrent.c - one recurrent layer's forward and backward on its own:
 * milliseconds per call (median of R) and GFLOP/s, for simple_rnn or gru at
 * batch B, window T, F input features and `units`.
 * Usage: recurrent TYPE [B T F UNITS [REPS]] (defaults 32 64 128 256 30) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/blas.h"
#include "layers/layer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *core = dp_blas_pick_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv("/proc/self/exe", argv);
    dp_flush_denormals();
    const dp_layer_ops *ops = argc > 1 ? dp_layer_find_ops(argv[1]) : NULL;
    int gates = ops == &dp_layer_gru_ops ? 3 : 1;
    if (!ops || (ops != &dp_layer_gru_ops && ops != &dp_layer_simple_rnn_ops)) {
        fprintf(stderr, "usage: recurrent simple_rnn|gru [B T F UNITS [REPS]]\n");
        return 2;
    }
    int B = argc > 5 ? atoi(argv[2]) : 32, T = argc > 5 ? atoi(argv[3]) : 64;
    int F = argc > 5 ? atoi(argv[4]) : 128, u = argc > 5 ? atoi(argv[5]) : 256;
    int reps = argc > 6 ? atoi(argv[6]) : 30;
    dp_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.where, sizeof cfg.where, "recurrent");
    cfg.units = u;
    cfg.return_sequences = 1;
    cfg.activation = DP_ACT_TANH;
    cfg.recurrent_activation = DP_ACT_SIGMOID;
    dp_shape in = {2, {T, F}};
    dp_layer l = {.ops = ops};
    dp_error err = {0};
    if (ops->create(&l, &cfg, &in, B, &err) != 0) {
        fprintf(stderr, "%s\n", err.what);
        return 1;
    }
    size_t nin = (size_t)B * T * F, nout = (size_t)B * T * u;
    float *p = malloc(l.param_count * sizeof *p), *g = calloc(l.param_count, sizeof *g);
    float *x = malloc(nin * sizeof *x), *dx = malloc(nin * sizeof *dx);
    float *y = malloc(nout * sizeof *y), *dy = malloc(nout * sizeof *dy);
    ops->init_params(&l, p, 7);
    for (size_t i = 0; i < nin; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (size_t i = 0; i < nout; i++) dy[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    double *tf = malloc((size_t)reps * sizeof *tf), *tb = malloc((size_t)reps * sizeof *tb);
    dp_fwd_ctx ctx = {0};
    for (int r = -3; r < reps; r++) {
        double t0 = now();
        ops->forward(&l, p, x, y, B, &ctx);
        double t1 = now();
        ops->backward(&l, p, x, y, dy, dx, g, B);
        double t2 = now();
        if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    qsort(tb, (size_t)reps, sizeof *tb, cmp_double);
    double f = tf[reps / 2], b = tb[reps / 2];
    /* forward: x W and h U; backward: twice that (weight gradients, dx, dh) */
    double flops = 2.0 * B * T * ((double)F + u) * gates * u;
    printf("%s B %d T %d F %d units %d: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms "
           "(%.1f GFLOP/s), %.0f positions/s\n",
           ops->type, B, T, F, u, 1e3 * f, flops / f / 1e9, 1e3 * b, 2 * flops / b / 1e9,
           B * T / (f + b));
    ops->free(&l);
    free(p), free(g), free(x), free(dx), free(y), free(dy), free(tf), free(tb);
    return 0;
}
