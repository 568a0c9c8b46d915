/* ckpt_writer.c - checkpoints written by a thread, so the disk never stalls training. */
#include "ckpt/ckpt_writer.h"
#include "core/alloc.h"
#include "core/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *ckpt_writer_main(void *arg) {
    dp_ckpt_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->pending && !w->quit) pthread_cond_wait(&w->cond, &w->lock);
        if (!w->pending) break;
        pthread_mutex_unlock(&w->lock);
        dp_error e = {0};
        const dp_optim *o = w->optim.n ? &w->optim : NULL;
        dp_tl_writer_begin(DP_TL_CKPT_WRITE, (int)w->st.global_step);
        if (w->targets & DP_CKPT_TO_STEP) dp_ckpt_write(w->dir, &w->model, o, &w->st, w->keep, &e);
        if ((w->targets & DP_CKPT_TO_BEST) && !e.set)
            dp_ckpt_write_best(w->dir, &w->model, o, &w->st, &e);
        dp_tl_writer_end(DP_TL_CKPT_WRITE, (int)w->st.global_step);
        pthread_mutex_lock(&w->lock);
        w->err = e;
        w->pending = 0;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int dp_ckpt_writer_start(dp_ckpt_writer *w, const char *dir, int keep, const dp_model *m,
                         const dp_optim *o, dp_error *err) {
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->keep = keep;
    w->model = *m;
    w->params = DP_MALLOC(m->n_params * sizeof(float));
    w->model.params = w->params;
    w->model.grads = NULL;
    if (o) {
        w->optim = *o;
        for (int k = 0; k < o->n_slots; k++) {
            w->slots[k] = DP_MALLOC(o->n * sizeof(float));
            w->optim.slots[k] = w->slots[k];
        }
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, ckpt_writer_main, w) != 0) {
        dp_ckpt_writer_stop(w);
        return dp_error_set(err, dir, "cannot start the checkpoint writer thread");
    }
    w->started = 1;
    return 0;
}

/* Called with the lock held. */
static int ckpt_writer_wait_locked(dp_ckpt_writer *w, dp_error *err) {
    while (w->pending) pthread_cond_wait(&w->cond, &w->lock);
    if (!w->err.set) return 0;
    if (err && !err->set) *err = w->err;
    dp_error_clear(&w->err);
    return -1;
}

int dp_ckpt_writer_submit(dp_ckpt_writer *w, const dp_model *m, const dp_optim *o,
                          const dp_ckpt_state *st, dp_error *err) {
    return dp_ckpt_writer_submit_to(w, m, o, st, DP_CKPT_TO_STEP, err);
}

int dp_ckpt_writer_submit_to(dp_ckpt_writer *w, const dp_model *m, const dp_optim *o,
                             const dp_ckpt_state *st, int targets, dp_error *err) {
    pthread_mutex_lock(&w->lock);
    if (ckpt_writer_wait_locked(w, err)) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    memcpy(w->params, m->params, m->n_params * sizeof(float));
    if (o) {
        for (int k = 0; k < o->n_slots; k++) memcpy(w->slots[k], o->slots[k], o->n * sizeof(float));
        w->optim.step = o->step;
    }
    w->st = *st;
    if (st->n_metrics > w->metrics_cap) {
        free(w->metrics);
        w->metrics_cap = st->n_metrics * 2;
        w->metrics = DP_MALLOC(w->metrics_cap * DP_METRICS_COLS * sizeof(double));
    }
    if (st->n_metrics)
        memcpy(w->metrics, st->metrics, st->n_metrics * DP_METRICS_COLS * sizeof(double));
    w->st.metrics = w->metrics;
    if (st->best_weights) {
        if (!w->best_weights) w->best_weights = DP_MALLOC(m->n_params * sizeof(float));
        memcpy(w->best_weights, st->best_weights, m->n_params * sizeof(float));
        w->st.best_weights = w->best_weights;
    }
    w->targets = targets;
    w->pending = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int dp_ckpt_writer_wait(dp_ckpt_writer *w, dp_error *err) {
    if (!w->started) return 0;
    pthread_mutex_lock(&w->lock);
    int rc = ckpt_writer_wait_locked(w, err);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void dp_ckpt_writer_stop(dp_ckpt_writer *w) {
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    free(w->params);
    for (int k = 0; k < DP_OPTIM_MAX_SLOTS; k++) free(w->slots[k]);
    free(w->metrics);
    free(w->best_weights);
    memset(w, 0, sizeof *w);
}
