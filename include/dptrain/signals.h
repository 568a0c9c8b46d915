/* signals.h - SIGUSR1/SIGTERM as a request to checkpoint and stop (DESIGN §7).
 *
 * The handlers only record the signal; the training loop agrees on it across
 * ranks at the next step boundary, so every rank stops after the same step. */
#ifndef DPTRAIN_SIGNALS_H
#define DPTRAIN_SIGNALS_H

/* Installs the handlers for SIGUSR1 and SIGTERM. */
void signals_install(void);

/* The first stop signal received since start (SIGUSR1 or SIGTERM), or 0. */
int signals_pending(void);

#endif
