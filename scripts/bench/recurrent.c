/* recurrent.c - one recurrent layer (simple_rnn, gru or lstm) on its own:
 * forward and backward milliseconds, the minimum and the median of R timed
 * passes, and GFLOP/s at the minimum, to set against sgemm's. FLOPs count
 * 2*M*N*K per product: the input projection, T-1 recurrent steps each way,
 * and the weight and input gradients.
 * Usage: recurrent TYPE [B T F UNITS [REPS]] (defaults 32 64 128 256 30) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas.h"
#include "layers/layer.h"
#include "timing.h"

static float *random_floats(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return p;
}

int main(int argc, char **argv) {
    const char *core = dp_blas_pick_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv("/proc/self/exe", argv);
    dp_blas_set_threads(1); /* as each dptrain rank runs */
    dp_flush_denormals();
    const dp_layer_ops *ops = argc > 1 ? dp_layer_find_ops(argv[1]) : NULL;
    int gates = ops == &dp_layer_lstm_ops ? 4 : ops == &dp_layer_gru_ops ? 3 : 1;
    if (!ops || (gates == 1 && ops != &dp_layer_simple_rnn_ops)) {
        fprintf(stderr, "usage: recurrent simple_rnn|gru|lstm [B T F UNITS [REPS]]\n");
        return 2;
    }
    int B = argc > 5 ? atoi(argv[2]) : 32, T = argc > 5 ? atoi(argv[3]) : 64;
    int F = argc > 5 ? atoi(argv[4]) : 128, U = argc > 5 ? atoi(argv[5]) : 256;
    int reps = argc > 6 ? atoi(argv[6]) : 30;
    dp_layer_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.where, sizeof cfg.where, "recurrent");
    snprintf(cfg.type, sizeof cfg.type, "%s", ops->type);
    cfg.units = U;
    cfg.return_sequences = 1;
    cfg.activation = DP_ACT_TANH;
    cfg.recurrent_activation = DP_ACT_SIGMOID;
    cfg.unit_forget_bias = 1;
    dp_shape in = {2, {T, F}};
    dp_layer l = {.ops = ops};
    dp_error err = {0};
    if (ops->create(&l, &cfg, &in, B, &err)) {
        fprintf(stderr, "recurrent: %s\n", err.what);
        return 1;
    }
    size_t N = (size_t)B * T;
    float *params = malloc(l.param_count * sizeof *params);
    float *grads = calloc(l.param_count, sizeof *grads);
    ops->init_params(&l, params, 7);
    float *x = random_floats(N * F, 2.0f), *dy = random_floats(N * U, 0.1f);
    float *y = malloc(N * U * sizeof *y), *dx = malloc(N * F * sizeof *dx);
    double *tf = malloc((size_t)reps * sizeof *tf), *tb = malloc((size_t)reps * sizeof *tb);
    dp_fwd_ctx ctx = {.training = 1};
    for (int rep = -3; rep < reps; rep++) {
        double t0 = now();
        ops->forward(&l, params, x, y, B, &ctx);
        double t1 = now();
        ops->backward(&l, params, x, y, dy, dx, grads, B);
        double t2 = now();
        if (rep >= 0) tf[rep] = t1 - t0, tb[rep] = t2 - t1;
    }
    qsort(tf, (size_t)reps, sizeof *tf, cmp_double);
    qsort(tb, (size_t)reps, sizeof *tb, cmp_double);
    double G = (double)gates * U, rec = 2.0 * (T - 1) * B * G * U;
    double ffwd = 2.0 * N * G * F + rec, fbwd = rec + 2.0 * N * G * (2.0 * F + U);
    printf("%s B=%d T=%d F=%d units=%d: min (median) of %d passes\n", ops->type, B, T, F, U, reps);
    printf("forward   %7.2f ms (%7.2f)  %6.1f GFLOP/s\n", 1e3 * tf[0], 1e3 * tf[reps / 2],
           ffwd / tf[0] / 1e9);
    printf("backward  %7.2f ms (%7.2f)  %6.1f GFLOP/s\n", 1e3 * tb[0], 1e3 * tb[reps / 2],
           fbwd / tb[0] / 1e9);
    printf("both      %7.2f ms            %6.1f GFLOP/s  %.0f positions/s\n", 1e3 * (tf[0] + tb[0]),
           (ffwd + fbwd) / (tf[0] + tb[0]) / 1e9, N / (tf[0] + tb[0]));
    ops->free(&l);
    free(params), free(grads), free(x), free(dy), free(y), free(dx), free(tf), free(tb);
    return 0;
}
