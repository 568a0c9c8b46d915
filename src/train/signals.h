/* signals.h - SIGUSR1/SIGTERM as a request to checkpoint and stop (docs/DESIGN.md §7).
 *
 * The handlers only record the signal; the training loop agrees on it across
 * ranks at the next step boundary, so every rank stops after the same step. */
#ifndef DPTRAIN_SIGNALS_H
#define DPTRAIN_SIGNALS_H

/* Holds SIGUSR1 and SIGTERM back until dp_signals_install, so a stop request that
 * arrives while the program is still starting (the mask survives exec) is
 * delivered later instead of killing the process. */
void dp_signals_block(void);

/* Installs the handlers for SIGUSR1 and SIGTERM and releases held signals. */
void dp_signals_install(void);

/* The first stop signal received since start (SIGUSR1 or SIGTERM), or 0. */
int dp_signals_pending(void);

#endif
