/* layers.c - where a training step's compute goes, layer by layer: builds the
 * model of a config for batch B, feeds it random inputs and labels, and prints
 * each layer's forward and backward milliseconds per step (median of R timed
 * steps), plus the optimizer update and the step's GFLOP/s if given its FLOPs.
 * Usage: layers CONFIG [BATCH] [REPS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/config.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "core/blas.h"
#include "timing.h"

/* Backward timing: layer i's time is from the previous hook call to its own. */
typedef struct lap_clock {
    double t;
    double *out; /* the rep's slot of layer 0; layer i at out[i * reps] */
    int reps;
} lap_clock;

static void layer_done(void *ctx, int layer) {
    lap_clock *c = ctx;
    double t = now();
    if (c->out) c->out[(size_t)layer * c->reps] = t - c->t;
    c->t = t;
}

int main(int argc, char **argv) {
    const char *core = dp_blas_pick_core();
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) execv("/proc/self/exe", argv);
    if (argc < 2) {
        fprintf(stderr, "usage: layers CONFIG [BATCH] [REPS]\n");
        return 2;
    }
    dp_blas_set_threads(1); /* as each dptrain rank runs */
    dp_flush_denormals();
    int B = argc > 2 ? atoi(argv[2]) : 64, reps = argc > 3 ? atoi(argv[3]) : 50;
    dp_config cfg;
    dp_error err = {0};
    dp_model m;
    dp_optim opt;
    if (dp_config_load_file(&cfg, argv[1], NULL, 0, &err) || dp_model_build(&m, &cfg, B, &err) ||
        dp_optim_init(&opt, &cfg.optim, m.n_params, &err)) {
        fprintf(stderr, "layers: %s: %s\n", err.where, err.what);
        return 1;
    }
    dp_model_init_params(&m, 1);
    size_t in_n = dp_shape_numel(&m.in_shape);
    int kout = dp_model_output_width(&m);
    float *x = malloc((size_t)B * in_n * sizeof *x);       /* [B, in] */
    float *y = malloc((size_t)B * sizeof *y);              /* [B] class ids */
    float *dout = malloc((size_t)B * kout * sizeof *dout); /* [B, out] */
    uint64_t *ids = malloc((size_t)B * sizeof *ids);
    for (size_t i = 0; i < (size_t)B * in_n; i++) x[i] = (float)rand() / (float)RAND_MAX;
    for (int r = 0; r < B; r++) y[r] = (float)(r % kout), ids[r] = (uint64_t)r;
    int L = m.n_layers;
    double *t = calloc((size_t)(2 * L + 1) * reps, sizeof *t); /* [2L + 1, reps] */
    lap_clock lap = {.reps = reps};
    for (int rep = -3; rep < reps; rep++) {
        dp_fwd_ctx ctx = {.training = 1, .seed = 1, .step = rep, .row_ids = ids};
        const float *in = x;
        /* As dp_model_forward, timing each layer; a layer absorbed by the one
         * before it (a pool done by its conv) shows 0. */
        for (int i = 0; i < L; i++) {
            if (m.absorbed[i]) continue;
            dp_layer *l = &m.layers[i];
            float *out = m.acts[i] ? m.acts[i] : m.acts[i + 1];
            double t0 = now();
            l->ops->forward(l, m.params + l->param_offset, in, out, B, &ctx);
            if (rep >= 0) t[(size_t)i * reps + rep] = now() - t0;
            in = out;
        }
        dp_loss_forward_backward(m.loss, m.fused, in, y, B, kout, 1, dout);
        memset(m.grads, 0, m.n_params * sizeof *m.grads);
        /* Backward through the model itself; the hook after each layer takes
         * the time. */
        lap.t = now();
        lap.out = rep >= 0 ? t + (size_t)L * reps + rep : NULL;
        dp_model_backward_hooked(&m, x, dout, B, layer_done, &lap);
        double t0 = now();
        dp_optim_step(&opt, m.params, m.grads, 1.0f);
        if (rep >= 0) t[(size_t)2 * L * reps + rep] = now() - t0;
    }
    double total = 0;
    printf("%-14s %10s %10s\n", "layer", "fwd ms", "bwd ms");
    for (int i = 0; i <= L; i++) {
        double med[2] = {0, 0};
        for (int d = 0; d < 2; d++) {
            double *row = t + (size_t)(d * L + i) * reps;
            if (i == L && d == 1) break;
            if (i == L) row = t + (size_t)2 * L * reps;
            qsort(row, (size_t)reps, sizeof *row, cmp_double);
            med[d] = 1e3 * row[reps / 2];
            total += med[d];
        }
        printf("%-14s %10.3f %10.3f\n", i < L ? m.layers[i].name : "optimizer", med[0], med[1]);
    }
    printf("step %.3f ms = %.0f samples/s\n", total, B / total * 1e3);
    free(t), free(x), free(y), free(dout), free(ids);
    dp_optim_free(&opt);
    dp_model_free(&m);
    dp_config_free(&cfg);
    return 0;
}
