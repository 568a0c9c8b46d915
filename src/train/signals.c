/* signals.c - record stop requests; everything else happens at a step boundary. */
#include "train/signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int signals_first;   /* lock-free, so safe in a handler */
static atomic_int signals_execing; /* signals_main holds stop signals back for an exec */
static pthread_t signals_main;
static int signals_installed;
static const char *signals_file; /* the watched stop file, or NULL */
static int signals_file_seen;
static double signals_next_look; /* CLOCK_MONOTONIC seconds */

static void signals_record(int sig) {
    int none = 0;
    atomic_compare_exchange_strong(&signals_first, &none, sig);
    /* Another thread (an OpenBLAS worker) took it while the main thread is
     * about to exec: hand it to the main thread, where it stays pending. */
    if (atomic_load(&signals_execing) && !pthread_equal(pthread_self(), signals_main))
        pthread_kill(signals_main, sig);
}

static void signals_mask(int how) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigprocmask(how, &set, NULL);
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
    signals_installed = 1;
    signals_mask(SIG_UNBLOCK);
}

void dp_signals_before_exec(void) {
    if (!signals_installed) return; /* the signals keep their default actions */
    signals_mask(SIG_BLOCK);
    signals_main = pthread_self();
    atomic_store(&signals_execing, 1);
    /* raise() targets this thread, which now holds the signal back: it stays
     * pending, and exec keeps it (a kill() to the process could reach another
     * thread, such as an OpenBLAS worker, and be lost with it). */
    int sig = atomic_load(&signals_first);
    if (sig) raise(sig);
}

void dp_signals_after_failed_exec(void) {
    if (!signals_installed) return;
    atomic_store(&signals_execing, 0);
    signals_mask(SIG_UNBLOCK);
}

void dp_signals_watch_file(const char *path) {
    signals_file = path && *path ? path : NULL;
    signals_file_seen = 0;
    signals_next_look = 0;
}

static double signals_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int dp_signals_pending(void) {
    int sig = atomic_load(&signals_first);
    if (sig) return sig;
    if (signals_file && !signals_file_seen) {
        double now = signals_now();
        if (now >= signals_next_look) {
            signals_next_look = now + DP_SIGNALS_POLL_SECONDS;
            signals_file_seen = access(signals_file, F_OK) == 0;
        }
    }
    return signals_file_seen ? DP_SIGNALS_FILE : 0;
}
