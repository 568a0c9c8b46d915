/* train.c - the training run: set-up, resume, the epoch loop, evaluation, checkpoints. */
#include "dptrain/train.h"
#include "core/alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "ckpt/ckpt_writer.h"
#include "core/test_hold.h"
#include "train/callbacks.h"
#include "train/eval.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "train/progress.h"
#include "train/signals.h"
#include "train/step.h"
#include "train/timeline_run.h"
#include "core/timeline.h"
#include "data/trainset.h"

typedef struct dp_run {
    const dp_comm *c;
    const dp_config *cfg;
    const dp_train_opts *opts;
    dp_trainset ts;
    dp_reader reader; /* started when ts.streamed */
    dp_model model;
    dp_optim optim;
    dp_stepper step;
    dp_grad_shm share;
    int shared; /* 1 when share is attached */
    dp_progress prog;
    dp_ckpt_writer writer; /* rank 0 */
    dp_ckpt_state ck;      /* position and history; mean/std point into ts */
    int stop;              /* DP_EXIT_STOPPED or DP_EXIT_SIGNALED once agreed, else 0 */
    dp_ckpt_callbacks cb;  /* the callbacks' state, the same on every rank */
    float *best_weights;   /* rank 0, with restore_best_weights: [n_params] */
    int early_stopped;     /* early_stopping ended the training */
    size_t metrics_cap;
    double *metrics; /* [metrics_cap, DP_METRICS_COLS] rank 0's epoch history */
    dp_tl_run tl;
    int resumed;     /* this start continues from a checkpoint */
    double t_start;  /* when this start's first step began (dp_comm_time) */
    double run_base; /* the run's seconds before this start (rank 0; 0 when unknown) */
} dp_run;

/* Takes the callbacks' state from a checkpoint being resumed (a checkpoint
 * without one leaves the fresh state). Best weights that are missing, which
 * restore_best_weights would need, restart early_stopping's count. */
static void train_resume_callbacks(dp_run *r, const dp_ckpt_state *st) {
    if (!st->cb.present || !r->cb.present) return;
    dp_ckpt_callbacks fresh = r->cb;
    r->cb = st->cb;
    if (!r->cfg->reduce_lr.enabled) r->cb.learning_rate = NAN;
    else if (isnan(r->cb.learning_rate)) r->cb.learning_rate = fresh.learning_rate;
    if (r->best_weights) {
        if (st->best_weights)
            memcpy(r->best_weights, st->best_weights, r->model.n_params * sizeof(float));
        else {
            r->cb.es_best = fresh.es_best;
            r->cb.es_best_epoch = 0;
            r->cb.es_wait = 0;
        }
    }
}

/* Rank 0 finds the newest checkpoint it can read; unreadable ones are skipped
 * with a warning so one torn file never costs the whole run. Returns 1 when
 * resumed, 0 when starting fresh, -1 on error. */
static int train_load_checkpoint(dp_run *r, dp_error *err) {
    char **paths = NULL;
    int n = dp_ckpt_list(r->opts->run_dir, &paths, err);
    if (n < 0) return -1;
    if (n == 0) {
        printf("dptrain: no checkpoint in %s; starting fresh\n", r->opts->run_dir);
        fflush(stdout);
        return 0;
    }
    int found = -1;
    dp_error first = {0};
    for (int i = 0; i < n && found < 0; i++) {
        dp_error e = {0};
        dp_ckpt_state st = {0};
        if (dp_ckpt_read(paths[i], &r->model, &r->optim, &st, &e) == 0) {
            /* Another shard count or seed would silently change which rows and
             * masks each step sees: the continuation would not be exact. */
            if (st.shards != r->ck.shards || st.seed != r->cfg->seed) {
                dp_error_set(err, paths[i],
                             "checkpoint was written with data.shards %d and train.seed %llu, "
                             "this run has %d and %llu; resume with --set data.shards=%d "
                             "--set train.seed=%llu",
                             st.shards, (unsigned long long)st.seed, r->ck.shards,
                             (unsigned long long)r->cfg->seed, st.shards,
                             (unsigned long long)st.seed);
                dp_ckpt_state_free(&st);
                break;
            }
            found = i;
            r->ck.epoch = st.epoch;
            r->ck.step_in_epoch = st.step_in_epoch;
            r->ck.global_step = st.global_step;
            r->ck.epoch_loss_sum = st.epoch_loss_sum;
            r->ck.epoch_correct = st.epoch_correct;
            r->ck.epoch_terms = st.epoch_terms;
            r->ck.epoch_seconds = st.epoch_seconds;
            r->run_base = isnan(st.run_seconds) ? 0 : st.run_seconds;
            free(r->metrics);
            r->metrics = st.metrics;
            r->ck.n_metrics = st.n_metrics;
            r->metrics_cap = st.n_metrics;
            st.metrics = NULL;
            train_resume_callbacks(r, &st);
            dp_ckpt_state_free(&st);
            printf("dptrain: resuming from %s (epoch %d, step %lld)\n", paths[i], r->ck.epoch,
                   r->ck.global_step);
            fflush(stdout);
        } else {
            if (!first.set) first = e;
            fprintf(stderr, "dptrain: warning: %s: %s; trying an older checkpoint\n", e.where,
                    e.what);
        }
    }
    dp_ckpt_free_list(paths, n);
    if (err->set) return -1;
    if (found < 0) {
        *err = first; /* the newest one's reason */
        return -1;
    }
    return 1;
}

/* Makes every replica start from rank 0's parameters, optimizer state and position. */
static void train_share_state(dp_run *r) {
    const dp_comm *c = r->c;
    if (r->shared) {
        dp_grad_shm_publish(&r->share, &r->model, &r->optim); /* rank 0 wrote its node's copy */
    } else {
        dp_comm_bcast(c, r->model.params, r->model.n_params * sizeof(float), 0);
        for (int k = 0; k < r->optim.n_slots; k++)
            dp_comm_bcast(c, r->optim.slots[k], r->optim.n * sizeof(float), 0);
    }
    long long pos[4] = {r->optim.step, r->ck.epoch, r->ck.step_in_epoch, r->ck.global_step};
    dp_comm_bcast(c, pos, sizeof pos, 0);
    r->optim.step = pos[0];
    r->ck.epoch = (int)pos[1];
    r->ck.step_in_epoch = (int)pos[2];
    r->ck.global_step = pos[3];
    double sums[4] = {r->ck.epoch_loss_sum, (double)r->ck.epoch_correct, (double)r->ck.epoch_terms,
                      r->ck.epoch_seconds};
    dp_comm_bcast(c, sums, sizeof sums, 0);
    r->ck.epoch_loss_sum = sums[0];
    r->ck.epoch_correct = (long long)sums[1];
    r->ck.epoch_terms = (long long)sums[2];
    r->ck.epoch_seconds = sums[3];
    dp_comm_bcast(c, &r->cb, sizeof r->cb, 0);
    if (isfinite(r->cb.learning_rate)) r->optim.cfg.learning_rate = r->cb.learning_rate;
    r->early_stopped = r->cfg->early_stopping.enabled && r->cb.es_stopped_epoch > 0;
}

/* Collective. Compares every replica's parameter hash with rank 0's. */
static int train_check_replicas(dp_run *r, dp_error *err) {
    const dp_comm *c = r->c;
    int bad = dp_comm_find_mismatch(c, dp_model_hash_params(&r->model));
    if (bad >= 0)
        dp_error_set(err, "replica check",
                     "rank %d's parameters diverged from rank 0's at step %lld; stopping, the "
                     "last checkpoint is kept",
                     bad, r->ck.global_step);
    return bad >= 0 ? -1 : 0;
}

/* The run's training seconds so far, summed over its starts (rank 0's count). */
static double train_run_seconds(const dp_run *r) {
    return r->run_base + (dp_comm_time() - r->t_start);
}

/* Collective. Rank 0 hands a copy of the current position to its writer thread,
 * for the files `targets` (DP_CKPT_TO_*) names; all ranks agree on the success
 * of the previous write (a failure surfaces one checkpoint late, or at
 * train_flush_checkpoints). */
static int train_write_checkpoint_to(dp_run *r, int targets, dp_error *err) {
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_CKPT, 0);
    if (r->c->rank == 0) {
        r->ck.metrics = r->metrics;
        r->ck.cb = r->cb;
        r->ck.best_weights = r->best_weights;
        r->ck.run_seconds = train_run_seconds(r);
        dp_ckpt_writer_submit_to(&r->writer, &r->model, &r->optim, &r->ck, targets, err);
    }
    int rc = dp_comm_agree(r->c, err) ? -1 : 0;
    dp_tl_end(DP_TL_CKPT, 0);
    r->step.seconds[DP_TIME_CKPT] += dp_comm_time() - t0;
    return rc;
}

static int train_write_checkpoint(dp_run *r, dp_error *err) {
    return train_write_checkpoint_to(r, DP_CKPT_TO_STEP, err);
}

/* Collective. Waits for rank 0's last checkpoint to be on disk; all agree on it. */
static int train_flush_checkpoints(dp_run *r, dp_error *err) {
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_CKPT, 1);
    if (r->c->rank == 0) dp_ckpt_writer_wait(&r->writer, err);
    int rc = dp_comm_agree(r->c, err) ? -1 : 0;
    dp_tl_end(DP_TL_CKPT, 1);
    r->step.seconds[DP_TIME_CKPT] += dp_comm_time() - t0;
    return rc;
}

/* Collective. Rank 0's line on where the rows came from and how long
 * training waited for them: the process's age when the first step had its
 * rows, and the reader's waits, each the largest over the ranks (the steps
 * are collective: the slowest rank's wait is everyone's). */
static void train_report_data(const dp_run *r, double wall) {
    double v[2] = {r->step.first_rows, r->reader.stall};
    dp_comm_max_f64(r->c, v, 2);
    double first = v[0], stall = v[1];
    if (r->c->rank != 0) return;
    double mib = (double)r->ts.bytes / (1 << 20);
    if (r->ts.streamed)
        printf("dptrain: data: streamed from %s (%.1f MiB per rank left in the file, prefetch %d "
               "steps)",
               r->ts.info.path, mib, r->cfg->prefetch_steps);
    else printf("dptrain: data: in memory (%.1f MiB per rank)", mib);
    if (r->ts.stats_known) printf("; standardization statistics from the checkpoint");
    else if (r->ts.mean) printf("; standardization pass %.2f s", r->ts.stats_seconds);
    if (first > 0) printf("; first step after %.2f s", first);
    if (r->ts.streamed)
        printf("; reader stalled %.3f s (%.1f%% of training)", stall,
               wall > 0 ? 100 * stall / wall : 0);
    printf("\n");
}

/* Collective. Rank 0 prints where the ranks' time went, summed over ranks, the
 * share of the run spent evaluating (all ranks together) and how long its
 * checkpoints held the others up. */
static void train_report_time(dp_run *r, double wall) {
    static const char *names[DP_TIME_PHASES] = {
        "data",      "forward/backward", "gradient reduction", "communication",
        "optimizer", "evaluation",       "checkpoints"};
    double sum[DP_TIME_PHASES];
    memcpy(sum, r->step.seconds, sizeof sum);
    double eval = r->step.seconds[DP_TIME_EVAL], stall = r->step.seconds[DP_TIME_CKPT];
    dp_comm_sum_f64(r->c, sum, DP_TIME_PHASES);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    dp_comm_max_f64(r->c, &rss, 1);
    if (r->c->rank != 0) return;
    double total = 0;
    for (int i = 0; i < DP_TIME_PHASES; i++) total += sum[i];
    printf("time summed over %d rank(s), %.2fs:", r->c->size, total);
    for (int i = 0; i < DP_TIME_PHASES; i++)
        printf("%s %s %.3fs (%.1f%%)", i ? "," : "", names[i], sum[i],
               total > 0 ? 100 * sum[i] / total : 0);
    const char *how = r->step.red.mode == DP_REDUCE_EXACT ? "exact" : "fast";
    if (r->shared && r->share.nodes == 1)
        printf("\ngradients summed (%s) through shared memory: %d ranks on one node, one copy "
               "of the parameters and optimizer state",
               how, r->c->size);
    else if (r->shared)
        printf("\ngradients summed (%s) through shared memory on each of %d nodes (%d ranks each, "
               "one copy of the parameters and optimizer state per node) and by MPI allreduce "
               "between them",
               how, r->share.nodes, r->share.size);
    else if (r->c->size > 1) printf("\ngradients summed (%s) by MPI allreduce", how);
    printf("\nevaluation, shared by the ranks, took %.1f%% of the run; rank 0's checkpoints "
           "held the other ranks %.1f%%; peak memory (RSS) of the largest rank %.1f MiB\n",
           wall > 0 ? 100 * eval / wall : 0, wall > 0 ? 100 * stall / wall : 0, rss);
}

_Static_assert(DP_READ_CHUNK == DP_EVAL_CHUNK, "the reader reads evaluation's chunks");

/* Runs this rank's streamed chunks of a held-out set (epoch keys the
 * validation items) into sums, indexed from the set's first chunk. Returns 0,
 * or -1 with err set when a read failed. */
static int train_evaluate_streamed(dp_run *r, int test, int epoch, double *sums, dp_error *err) {
    const dp_read_heldout *h = test ? &r->ts.test_src : &r->ts.val_src;
    size_t base = (test ? r->ts.test_first : r->ts.val_first) / DP_EVAL_CHUNK;
    long chunks = (long)((h->count + DP_EVAL_CHUNK - 1) / DP_EVAL_CHUNK);
    for (long i = 0; i < chunks; i++) {
        dp_read_pos want = {test ? DP_READ_TEST : DP_READ_VAL, test ? 0 : epoch, i};
        const dp_read_slot *s = dp_reader_get(&r->reader, want, err);
        if (s)
            dp_eval_run_chunk(&r->model, s->x, s->y, s->n, r->ts.width, r->ts.info.y_cols,
                              sums + 3 * (base + (size_t)i));
        dp_reader_release(&r->reader);
        if (!s) return -1;
    }
    return 0;
}

/* Collective. Loss and accuracy over the validation (test = 0, after epoch
 * `epoch`) or test rows, each rank evaluating its share chunk by chunk. Each
 * chunk's sums are non-zero on one rank only, so the allreduce adds zeros to
 * them: exact, and the total is the same bits for any number of ranks.
 * Returns 0, or -1 on every rank (err set on rank 0) when a streamed read
 * failed. */
static int train_evaluate(dp_run *r, int test, int epoch, dp_loss_sums *out, dp_error *err) {
    double t0 = dp_comm_time();
    dp_tl_begin(DP_TL_EVAL, test);
    size_t n_total = test ? r->ts.info.n_test : r->ts.n_val_total;
    size_t chunks = (n_total + DP_EVAL_CHUNK - 1) / DP_EVAL_CHUNK;
    double *sums = DP_CALLOC(3 * chunks, sizeof(double)); /* [chunks, 3] */
    int rc = 0;
    if (r->ts.streamed) {
        train_evaluate_streamed(r, test, epoch, sums, err);
        rc = dp_comm_agree(r->c, err) ? -1 : 0;
    } else {
        dp_eval_run_chunks(&r->model, test ? &r->ts.test : &r->ts.val,
                           test ? r->ts.test_first : r->ts.val_first, sums);
    }
    if (rc == 0) {
        dp_comm_sum_f64(r->c, sums, 3 * chunks);
        *out = dp_eval_total_chunks(sums, chunks);
    }
    free(sums);
    dp_tl_end(DP_TL_EVAL, test);
    r->step.seconds[DP_TIME_EVAL] += dp_comm_time() - t0;
    return rc;
}

static void train_record_epoch(dp_run *r, const dp_epoch_stats *s) {
    if (r->ck.n_metrics == r->metrics_cap) {
        r->metrics_cap = r->metrics_cap ? 2 * r->metrics_cap : 64;
        double *grown = DP_MALLOC(r->metrics_cap * DP_METRICS_COLS * sizeof(double));
        if (r->ck.n_metrics)
            memcpy(grown, r->metrics, r->ck.n_metrics * DP_METRICS_COLS * sizeof(double));
        free(r->metrics);
        r->metrics = grown;
    }
    double row[DP_METRICS_COLS] = {s->epoch,    s->loss,         s->accuracy,
                                   s->val_loss, s->val_accuracy, s->samples_per_s,
                                   s->seconds,  s->learning_rate};
    memcpy(r->metrics + r->ck.n_metrics * DP_METRICS_COLS, row, sizeof row);
    r->ck.n_metrics++;
}

/* Rank 0's message for a callback's event, on a line of its own. */
__attribute__((format(printf, 2, 3))) static void train_say(const dp_run *r, const char *fmt, ...) {
    if (r->c->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* Collective. The callbacks at the end of epoch s->epoch: every rank decides
 * from rank 0's figures (broadcast, so the decision cannot depend on how a
 * rank rounded them) and the same state. Adds DP_CKPT_TO_BEST to *targets when
 * best.h5 gets this epoch; at the last epoch, or an early stop, puts back the
 * best epoch's weights when restore_best_weights asks for it (Keras 3). */
static int train_callbacks(dp_run *r, const dp_epoch_stats *s, int *targets, dp_error *err) {
    const dp_config *cfg = r->cfg;
    double fig[4] = {s->loss, s->accuracy, s->val_loss, s->val_accuracy};
    dp_comm_bcast(r->c, fig, sizeof fig, 0);
    double was_best = r->cb.ckpt_best;
    dp_callback_events ev;
    dp_callbacks_epoch_end(cfg, &r->cb, s->epoch, fig, &ev);
    if (ev.save_best) {
        *targets |= DP_CKPT_TO_BEST;
        train_say(r, "Epoch %d: %s improved from %.5f to %.5f, saving %s\n", s->epoch,
                  dp_config_name_monitor((dp_monitor)cfg->ckpt_best.monitor), was_best,
                  r->cb.ckpt_best, DP_CKPT_BEST_NAME);
    }
    if (ev.reduced) {
        r->optim.cfg.learning_rate = r->cb.learning_rate;
        train_say(r, "Epoch %d: ReduceLROnPlateau reducing learning rate from %g to %g\n", s->epoch,
                  ev.old_lr, r->cb.learning_rate);
    }
    if (ev.snapshot_best && r->best_weights)
        memcpy(r->best_weights, r->model.params, r->model.n_params * sizeof(float));
    if (ev.stop) r->early_stopped = 1;
    int last = ev.stop || s->epoch == cfg->epochs;
    if (last && cfg->early_stopping.restore_best_weights && r->cb.es_best_epoch > 0 &&
        r->cb.es_best_epoch != s->epoch) {
        /* best.h5 keeps this epoch's weights, which are about to be replaced. */
        if (*targets & DP_CKPT_TO_BEST) {
            if (train_write_checkpoint_to(r, DP_CKPT_TO_BEST, err)) return -1;
            *targets &= ~DP_CKPT_TO_BEST;
        }
        if (r->c->rank == 0)
            memcpy(r->model.params, r->best_weights, r->model.n_params * sizeof(float));
        train_share_state(r);
        train_say(r, "Restoring model weights from the end of the best epoch: %d\n",
                  r->cb.es_best_epoch);
    }
    return 0;
}

/* Runs one epoch from step `start`. Returns 0, 1 when stopped on request, -1 on error. */
static int train_epoch(dp_run *r, int epoch, int start, long long *budget, dp_error *err) {
    const dp_config *cfg = r->cfg;
    const dp_comm *c = r->c;
    int steps = r->ts.plan.steps;
    /* A resumed epoch starts from the sums and seconds its checkpoint kept, so
     * its figures cover all its steps. A checkpoint without the seconds (an
     * older file) leaves the speed to count this start's steps only. */
    dp_loss_sums tot = {0};
    double before = 0; /* the epoch's seconds in earlier starts */
    long terms0 = 0;   /* the loss terms those seconds do not cover */
    if (start > 0) {
        tot = (dp_loss_sums){r->ck.epoch_loss_sum, (long)r->ck.epoch_correct,
                             (long)r->ck.epoch_terms};
        if (isnan(r->ck.epoch_seconds)) terms0 = tot.terms;
        else before = r->ck.epoch_seconds;
    }
    double t0 = dp_comm_time();
    dp_step_shuffle(&r->step, &r->ts, epoch);
    for (int t = start; t < steps; t++) {
        dp_loss_sums s;
        int sig = dp_signals_pending() != 0 ? DP_STEP_STOP : 0;
        dp_tl_run_step(&r->tl, r->ck.global_step + 1);
        dp_tl_begin(DP_TL_STEP, (int)(r->ck.global_step + 1));
        int failed =
            dp_step_run(&r->step, c, &r->ts, &r->model, &r->optim, t, r->ck.global_step, &s, &sig);
        dp_tl_end(DP_TL_STEP, (int)(r->ck.global_step + 1));
        /* The failing rank says why; nothing of this step is kept. */
        if (sig & DP_STEP_DATA_ERROR) {
            if (r->step.read_err.set) *err = r->step.read_err;
            if (!dp_comm_agree(c, err))
                dp_error_set(err, "data", "a rank could not read its rows"); /* not reached */
            return -1;
        }
        if (failed)
            return dp_error_set(err, "training",
                                "loss or gradient is NaN or Inf at step %lld (epoch %d, batch "
                                "%d); stopping, the last checkpoint is kept",
                                r->ck.global_step + 1, epoch + 1, t + 1);
        tot.loss += s.loss;
        tot.correct += s.correct;
        tot.terms += s.terms;
        r->ck.global_step++;
        r->ck.step_in_epoch = t + 1;
        r->ck.epoch_loss_sum = tot.loss;
        r->ck.epoch_correct = tot.correct;
        r->ck.epoch_terms = tot.terms;
        dp_test_hold("step", r->ck.global_step, dp_signals_pending);
        if (c->rank == 0)
            dp_progress_update_step(&r->prog, epoch + 1, t + 1, tot.loss / (double)tot.terms,
                                    (double)tot.correct / (double)tot.terms, dp_comm_time());
        if (r->ck.global_step % cfg->check_every_steps == 0 && train_check_replicas(r, err))
            return -1;
        /* The budget counts the same on every rank and the signal flag was agreed
         * in the step, so all ranks stop after the same step. */
        if (*budget > 0 && --*budget == 0) r->stop = DP_EXIT_STOPPED;
        if (sig & DP_STEP_STOP) r->stop = DP_EXIT_SIGNALED;
        if (t + 1 < steps && (r->stop || (cfg->ckpt_every_steps &&
                                          r->ck.global_step % cfg->ckpt_every_steps == 0))) {
            r->ck.epoch_seconds = before + (dp_comm_time() - t0);
            if (train_write_checkpoint(r, err)) return -1;
        }
        if (r->stop && t + 1 < steps) return 1;
    }
    double seconds = before + (dp_comm_time() - t0);
    r->ck.epoch = epoch + 1;
    r->ck.step_in_epoch = 0;
    r->ck.epoch_seconds = 0;
    r->ck.epoch_loss_sum = 0;
    r->ck.epoch_correct = r->ck.epoch_terms = 0;
    dp_epoch_stats s = {.epoch = epoch + 1,
                        .loss = tot.loss / (double)tot.terms,
                        .accuracy = (double)tot.correct / (double)tot.terms,
                        .val_loss = NAN,
                        .val_accuracy = NAN,
                        .samples_per_s =
                            (double)(tot.terms - terms0) / r->model.positions / seconds,
                        .seconds = seconds,
                        .positions = r->model.positions,
                        .learning_rate = dp_optim_learning_rate(&r->optim)};
    if (r->ts.n_val_total) {
        dp_loss_sums v;
        if (train_evaluate(r, 0, epoch, &v, err)) return -1;
        s.val_loss = v.loss / (double)v.terms;
        s.val_accuracy = (double)v.correct / (double)v.terms;
    }
    if (c->rank == 0) {
        dp_progress_write_epoch(&r->prog, &s);
        train_record_epoch(r, &s);
    }
    int targets = DP_CKPT_TO_STEP;
    if (r->cb.present && train_callbacks(r, &s, &targets, err)) return -1;
    if (train_write_checkpoint_to(r, targets, err)) return -1;
    return r->stop || r->early_stopped ? 1 : 0;
}

/* The optimizer clips per parameter tensor: it gets the model's tensors. */
static void train_optim_tensors(dp_run *r) {
    int n = dp_model_list_tensors(&r->model, NULL, NULL);
    if (n <= 0) return;
    size_t *off = DP_MALLOC((size_t)n * sizeof(size_t)),
           *len = DP_MALLOC((size_t)n * sizeof(size_t));
    dp_model_list_tensors(&r->model, off, len);
    dp_optim_set_tensors(&r->optim, n, off, len);
    free(off);
    free(len);
}

/* A callback watching val_* needs validation rows, which only the data file
 * (a /val split) or data.validation_split provides. */
static int train_check_monitors(dp_run *r, dp_error *err) {
    const dp_config *cfg = r->cfg;
    struct {
        int on, monitor;
        const char *key;
    } cbs[3] = {
        {cfg->early_stopping.enabled, cfg->early_stopping.monitor, "train.early_stopping"},
        {cfg->reduce_lr.enabled, cfg->reduce_lr.monitor, "train.reduce_lr_on_plateau"},
        {cfg->ckpt_best.enabled, cfg->ckpt_best.monitor, "checkpoint.best"},
    };
    for (int i = 0; i < 3; i++) {
        int val =
            cbs[i].monitor == DP_MONITOR_VAL_LOSS || cbs[i].monitor == DP_MONITOR_VAL_ACCURACY;
        if (cbs[i].on && val && r->ts.n_val_total == 0)
            return dp_error_set(err, cfg->source,
                                "%s.monitor is %s, but the run has no validation rows; set "
                                "data.validation_split or add /val to the data file",
                                cbs[i].key, dp_config_name_monitor((dp_monitor)cbs[i].monitor));
    }
    return 0;
}

/* Collective. The standardization statistics of the newest checkpoint rank 0
 * can read them from, when resuming: the pass over the data is not repeated.
 * *buf receives the storage the result points into (caller frees). */
static dp_trainset_stats train_known_stats(dp_run *r, float **buf) {
    dp_trainset_stats st = {0};
    unsigned long long n = 0;
    float *mean = NULL, *std = NULL;
    if (r->c->rank == 0 && r->opts->resume && r->cfg->standardize) {
        char **paths = NULL;
        int count = dp_ckpt_list(r->opts->run_dir, &paths, NULL);
        for (int i = 0; i < count && n == 0; i++) {
            size_t got = 0;
            if (dp_ckpt_read_stats(paths[i], &mean, &std, &got) == 0) n = got;
        }
        if (count > 0) dp_ckpt_free_list(paths, count);
    }
    dp_comm_bcast(r->c, &n, sizeof n, 0);
    if (n == 0) return st;
    *buf = DP_MALLOC(2 * n * sizeof(float));
    if (r->c->rank == 0) {
        memcpy(*buf, mean, n * sizeof(float));
        memcpy(*buf + n, std, n * sizeof(float));
    }
    free(mean);
    free(std);
    dp_comm_bcast(r->c, *buf, 2 * n * sizeof(float), 0);
    return (dp_trainset_stats){(size_t)n, *buf, *buf + n};
}

/* Collective. Starts the reader of a streamed run where the loop begins. */
static int train_start_reader(dp_run *r, dp_error *err) {
    if (!r->ts.streamed) return 0;
    dp_reader_cfg rc;
    dp_trainset_reader_cfg(&r->ts, r->cfg, &rc);
    dp_read_pos start = {DP_READ_TRAIN, r->ck.epoch, r->ck.step_in_epoch};
    if (r->ck.epoch >= r->cfg->epochs) start = (dp_read_pos){DP_READ_TEST, 0, 0};
    dp_reader_start(&r->reader, &rc, start, err);
    return dp_comm_agree(r->c, err) ? -1 : 0;
}

static int train_setup(dp_run *r, dp_error *err) {
    const dp_config *cfg = r->cfg;
    const dp_comm *c = r->c;
    /* The model is built first (it knows the output width the data must match),
     * for the global batch: no training micro-batch is larger, and evaluation
     * runs its chunks in batches of this size. A sequence model's activations
     * are large per row, so this, not the 256-row chunk, bounds its memory. */
    int max_batch = cfg->batch_size;
    if (dp_model_build(&r->model, cfg, max_batch, err) == 0 &&
        dp_optim_init(&r->optim, &cfg->optim, r->model.n_params, err) == 0)
        train_optim_tensors(r);
    if (dp_comm_agree(c, err)) return -1;
    float *known = NULL; /* [2, n] a resumed run's mean and std */
    dp_trainset_stats stats = train_known_stats(r, &known);
    int loaded =
        dp_trainset_load(&r->ts, c, cfg, r->model.classes, r->model.positions, &stats, err);
    free(known);
    if (loaded) return -1;
    /* Checked before the run directory is made, so a bad config writes nothing. */
    if (train_check_monitors(r, err) == 0 && c->rank == 0 &&
        dp_ckpt_make_dir(r->opts->run_dir, err) == 0)
        dp_ckpt_remove_temp(r->opts->run_dir); /* left by a writer killed mid-write */
    if (dp_comm_agree(c, err)) return -1;
    if (cfg->shared_memory)
        r->shared = dp_grad_shm_attach(&r->share, c, &r->model, &r->optim,
                                       dp_grad_buckets_pick_mode(cfg->reduction, r->ts.plan.shards),
                                       &r->ts);
    if (r->share.why[0])
        fprintf(stderr, "dptrain: warning: shared memory: %s; gradients go through MPI allreduce\n",
                r->share.why);
    dp_step_init(&r->step, &r->ts, &r->model, cfg->reduction, cfg->seed,
                 (size_t)cfg->bucket_kib * 1024, r->shared ? &r->share : NULL,
                 r->ts.streamed ? &r->reader : NULL);
    dp_tl_run_start(&r->tl, c, &r->model, r->step.n_my, r->step.red.n_buckets);
    r->ck.seed = cfg->seed;
    r->ck.shards = r->ts.plan.shards;
    r->ck.n_features = r->ts.mean ? r->ts.width : 0;
    r->ck.mean = r->ts.mean;
    r->ck.std = r->ts.std;
    r->ck.config_text = cfg->text;
    r->ck.data_scale = cfg->data_scale;
    r->ck.data_offset = cfg->data_offset;
    dp_callbacks_start(cfg, r->optim.cfg.learning_rate, &r->cb);
    if (c->rank == 0 && cfg->early_stopping.enabled && cfg->early_stopping.restore_best_weights)
        r->best_weights = DP_MALLOC(r->model.n_params * sizeof(float));
    int resumed = 0;
    if (c->rank == 0) {
        dp_model_init_params(&r->model, cfg->seed);
        if (r->opts->resume) resumed = train_load_checkpoint(r, err);
        if (resumed >= 0 && dp_ckpt_writer_start(&r->writer, r->opts->run_dir, cfg->ckpt_keep,
                                                 &r->model, &r->optim, err) == 0) {
            char msg[256];
            if (dp_progress_open(&r->prog, r->opts->run_dir, resumed == 1, cfg->epochs,
                                 r->ts.plan.steps, msg, sizeof msg))
                dp_error_set(err, r->opts->run_dir, "cannot write metrics.jsonl: %s", msg);
        }
    }
    if (dp_comm_agree(c, err)) return -1;
    r->resumed = resumed == 1;
    dp_comm_bcast(c, &r->resumed, sizeof r->resumed, 0);
    train_share_state(r);
    return train_start_reader(r, err);
}

/* Returns -1 when the timeline could not be written (rank 0 said why), else 0. */
static int train_teardown(dp_run *r) {
    if (r->c->rank == 0) {
        /* Lets a write in flight finish, so no torn temporary file is left. */
        dp_ckpt_writer_stop(&r->writer);
        dp_progress_close(&r->prog);
    }
    int rc = dp_tl_run_finish(&r->tl, r->c, &r->model);
    dp_reader_stop(&r->reader);
    dp_step_free(&r->step);
    if (r->shared) dp_grad_shm_detach(&r->share, &r->model, &r->optim);
    dp_optim_free(&r->optim);
    dp_model_free(&r->model);
    dp_trainset_free(&r->ts);
    free(r->metrics);
    free(r->best_weights);
    return rc;
}

/* Rank 0 says where early_stopping ended the run and why, as Keras's
 * "Epoch N: early stopping" does. */
static void train_say_early_stop(dp_run *r) {
    const dp_early_stopping_cfg *es = &r->cfg->early_stopping;
    const char *name = dp_config_name_monitor((dp_monitor)es->monitor);
    if (r->c->rank != 0) return;
    dp_progress_break_line(&r->prog);
    printf("dptrain: early stopping at epoch %d: %s did not improve on its best, %.6g at epoch %d, "
           "by more than min_delta %g for %d epoch%s (patience %d)\n",
           r->cb.es_stopped_epoch, name, r->cb.es_best, r->cb.es_best_epoch, es->min_delta,
           r->cb.es_wait, r->cb.es_wait == 1 ? "" : "s", es->patience);
    fflush(stdout);
}

/* Collective. Rank 0 prints the test figures and appends the run's test record,
 * whose seconds are the run's, summed over its starts. */
static int train_test(dp_run *r, dp_error *err) {
    dp_loss_sums t;
    if (train_evaluate(r, 1, 0, &t, err)) return -1;
    if (r->c->rank == 0)
        dp_progress_write_test(&r->prog, r->ck.epoch, t.loss / (double)t.terms,
                               (double)t.correct / (double)t.terms, train_run_seconds(r));
    return 0;
}

/* Collective. A resume of a run that has nothing left to train (every epoch
 * done, or stopped early) changes nothing and says so, except that it appends
 * the test record metrics.jsonl lacks (the end of the last start was lost). */
static int train_complete(dp_run *r, dp_error *err) {
    int need_test =
        r->ts.info.has_test && r->c->rank == 0 && !dp_progress_ends_with_test(r->opts->run_dir);
    dp_comm_bcast(r->c, &need_test, sizeof need_test, 0);
    if (r->c->rank == 0) {
        printf("dptrain: the run in %s is complete (epoch %d, step %lld): nothing to train%s\n",
               r->opts->run_dir, r->ck.epoch, r->ck.global_step,
               need_test ? "; evaluating the test rows, whose record metrics.jsonl lacks" : "");
        fflush(stdout);
    }
    return need_test ? train_test(r, err) : 0;
}

/* Rank 0's last line for a stop on request. */
static void train_say_stop(const dp_run *r, int rc) {
    if (r->c->rank != 0) return;
    if (rc == DP_EXIT_STOPPED) printf("dptrain: stopped as asked");
    else if (dp_signals_pending() == DP_SIGNALS_FILE)
        printf("dptrain: stop requested by %s", r->opts->stop_file);
    else printf("dptrain: stop signal received");
    printf("; checkpoint written at step %lld; resume with --resume\n", r->ck.global_step);
}

int dp_train_run(const dp_comm *c, const dp_config *cfg, const dp_train_opts *opts) {
    dp_run r = {.c = c, .cfg = cfg, .opts = opts};
    dp_error err = {0};
    int rc = DP_EXIT_OK;
    long long budget = opts->stop_after;
    if (c->rank == 0) dp_signals_watch_file(opts->stop_file);
    if (dp_tl_run_setup(&r.tl, c, cfg, opts, &err) || train_setup(&r, &err)) {
        rc = DP_EXIT_ERROR;
        goto done;
    }
    r.t_start = dp_comm_time();
    int complete = r.resumed && (r.ck.epoch >= cfg->epochs || r.early_stopped);
    if (complete) {
        if (train_complete(&r, &err)) rc = DP_EXIT_ERROR;
        goto done;
    }
    for (int e = r.ck.epoch; e < cfg->epochs && rc == DP_EXIT_OK && !r.early_stopped; e++) {
        int s = train_epoch(&r, e, e == r.ck.epoch ? r.ck.step_in_epoch : 0, &budget, &err);
        if (s < 0) rc = DP_EXIT_ERROR;
        /* A stop inside the last epoch still leaves work to resume; an early
         * stop leaves none. */
        if (s > 0 && r.ck.epoch < cfg->epochs && !r.early_stopped) rc = r.stop;
    }
    if (r.early_stopped && rc == DP_EXIT_OK) train_say_early_stop(&r);
    if (rc != DP_EXIT_ERROR && train_flush_checkpoints(&r, &err)) rc = DP_EXIT_ERROR;
    if (rc == DP_EXIT_OK && train_check_replicas(&r, &err) == 0) {
        if (c->rank == 0)
            printf("replicas: %d rank(s) agree on parameter hash %016llx\n", c->size,
                   (unsigned long long)dp_model_hash_params(&r.model));
        if (r.ts.info.has_test && train_test(&r, &err)) rc = DP_EXIT_ERROR;
        else {
            train_report_data(&r, dp_comm_time() - r.t_start);
            train_report_time(&r, dp_comm_time() - r.t_start);
        }
    }
    if (err.set) rc = DP_EXIT_ERROR;
    /* A stop or error in mid-epoch must not land on the end of a terminal bar. */
    if (c->rank == 0) dp_progress_break_line(&r.prog);
    if (rc == DP_EXIT_STOPPED || rc == DP_EXIT_SIGNALED) {
        train_report_data(&r, dp_comm_time() - r.t_start);
        train_say_stop(&r, rc);
    }
    /* The stop file has been honoured (the checkpoint is on disk): removed, so
     * the next start trains on. */
    if (c->rank == 0 && rc != DP_EXIT_ERROR && dp_signals_pending() == DP_SIGNALS_FILE)
        unlink(opts->stop_file);
    fflush(stdout);
done:
    if (err.set && c->rank == 0) dp_error_print(&err);
    if (train_teardown(&r) && rc == DP_EXIT_OK) rc = DP_EXIT_ERROR;
    return rc;
}
