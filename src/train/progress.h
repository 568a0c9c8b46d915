/* progress.h - what rank 0 shows and records: Keras-like progress, metrics.jsonl.
 *
 * On a terminal a live bar is redrawn during the epoch; otherwise (Slurm logs,
 * pipes) exactly one plain line per epoch is printed. Only rank 0 calls these. */
#ifndef DPTRAIN_PROGRESS_H
#define DPTRAIN_PROGRESS_H

#include <stdio.h>

/* One epoch's figures; NaN marks a value that does not exist (no validation). */
typedef struct dp_epoch_stats {
    int epoch; /* 1-based */
    double loss, accuracy, val_loss, val_accuracy;
    double samples_per_s, seconds;
    int positions;        /* loss terms per sample: T for a language model (tokens/s), else 1 */
    double learning_rate; /* the optimizer's rate at the epoch's end (the next step's) */
} dp_epoch_stats;

typedef struct dp_progress {
    int tty; /* stdout is a terminal */
    int epochs, steps;
    double last_draw; /* time of the last redraw, to throttle it */
    int drawn;        /* a bar is on the current line */
    FILE *jsonl;      /* run_dir/metrics.jsonl, or NULL */
} dp_progress;

/* Opens run_dir/metrics.jsonl (appending when `append`, for resumed runs).
 * Returns 0 or -1 with err-style message in errbuf. */
int dp_progress_open(dp_progress *p, const char *run_dir, int append, int epochs, int steps,
                     char *errbuf, size_t errlen);

/* Redraws the bar after `step` of `steps` (terminal only, at most ~10 times/s). */
void dp_progress_update_step(dp_progress *p, int epoch, int step, double loss, double accuracy,
                             double now);

/* Ends a half-drawn bar with a newline, so a message printed next (a stop or
 * an error in the middle of an epoch) starts a line of its own. */
void dp_progress_break_line(dp_progress *p);

/* Prints the epoch's line and appends its JSON object to metrics.jsonl. */
void dp_progress_write_epoch(dp_progress *p, const dp_epoch_stats *s);

/* Prints the test figures and appends the final JSON object (epoch = epochs run). */
void dp_progress_write_test(dp_progress *p, int epoch, double test_loss, double test_accuracy,
                            double seconds);

void dp_progress_close(dp_progress *p);

/* 1 when the last record of run_dir/metrics.jsonl is a test record (the run's
 * end), 0 when it is not or the file cannot be read. */
int dp_progress_ends_with_test(const char *run_dir);

#endif
