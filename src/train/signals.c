/* signals.c - record stop requests; everything else happens at a step boundary. */
#include "train/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t signals_first;

static void signals_record(int sig) {
    if (!signals_first) signals_first = sig;
}

static void signals_mask(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigprocmask(how, &set, NULL);
}

void dp_signals_block(void) {
    signals_mask(SIG_BLOCK);
}

void dp_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = signals_record;
    sigemptyset(&sa.sa_mask);
    /* Restart interrupted reads and writes: the flag is polled, nothing needs EINTR. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signals_mask(SIG_UNBLOCK);
}

int dp_signals_pending(void) {
    return signals_first;
}
