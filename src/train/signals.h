/* signals.h - SIGUSR1/SIGTERM, or a stop file, as a request to checkpoint and
 * stop (docs/DESIGN.md §7.6).
 *
 * The handlers only record the signal; the training loop agrees on it across
 * ranks at the next step boundary, so every rank stops after the same step. */
#ifndef DPTRAIN_SIGNALS_H
#define DPTRAIN_SIGNALS_H

/* What dp_signals_pending returns for a request made by the stop file. */
#define DP_SIGNALS_FILE (-1)

/* Installs the recording handlers for SIGUSR1 and SIGTERM (for every thread of
 * the process) and lets the calling thread receive them, including any held
 * back since before an exec. */
void dp_signals_install(void);

/* Called just before the process replaces itself with execv: holds SIGUSR1 and
 * SIGTERM back in the calling thread and re-raises a stop signal already
 * recorded, so it stays pending through the exec (the mask and pending signals
 * survive it) and the new image's dp_signals_install receives it. A no-op
 * unless dp_signals_install ran, so a program without the handlers keeps the
 * default actions after the exec. */
void dp_signals_before_exec(void);

/* Undoes dp_signals_before_exec when the exec failed. */
void dp_signals_after_failed_exec(void);

/* Makes dp_signals_pending also report a stop request when the file `path`
 * exists (NULL: no file). It looks at most every DP_SIGNALS_POLL_SECONDS of
 * wall time, so calling dp_signals_pending once a step costs a clock read.
 * One thread only (rank 0's main thread); path must outlive the run. */
void dp_signals_watch_file(const char *path);
#define DP_SIGNALS_POLL_SECONDS 0.2

/* The first stop signal received since start (SIGUSR1 or SIGTERM), else
 * DP_SIGNALS_FILE once the watched file has been seen, else 0. */
int dp_signals_pending(void);

#endif
