/* test_signals.c - stop requests: kept across an exec, and the stop file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "train/signals.h"

/* Runs a child that installs the handlers, sends itself SIGUSR1 when `send`,
 * calls dp_signals_before_exec and execs grep on its own /proc status. Returns
 * the exec'd image's SigPnd and SigBlk masks (-1 when they cannot be read). */
static void exec_masks(int send, long long *pnd, long long *blk) {
    int fd[2];
    *pnd = *blk = -1;
    CU_ASSERT_EQUAL_FATAL(pipe(fd), 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        dp_signals_install();
        if (send) raise(SIGUSR1); /* recorded by the handler, not pending */
        dp_signals_before_exec();
        execl("/bin/grep", "grep", "-E", "^Sig(Pnd|Blk):", "/proc/self/status", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[128];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "SigPnd:", 7)) *pnd = strtoll(line + 7, NULL, 16);
        if (!strncmp(line, "SigBlk:", 7)) *blk = strtoll(line + 7, NULL, 16);
    }
    if (f) fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A stop signal recorded before the exec is pending, and held back, in the new
 * image (which then receives it when it installs the handlers); without one,
 * nothing is pending. Bit SIG-1 of the masks is signal SIG. */
static void test_signal_survives_exec(void) {
    long long pnd, blk, usr1 = 1LL << (SIGUSR1 - 1), term = 1LL << (SIGTERM - 1);
    exec_masks(1, &pnd, &blk);
    CU_ASSERT(pnd >= 0 && (pnd & usr1));
    CU_ASSERT(blk >= 0 && (blk & usr1) && (blk & term));
    exec_masks(0, &pnd, &blk);
    CU_ASSERT(pnd >= 0 && !(pnd & usr1));
    CU_ASSERT(blk >= 0 && (blk & usr1));
}

/* The watched file is reported once it exists (within a few polls), as
 * DP_SIGNALS_FILE; not before, and not without a watch. */
static void test_stop_file(void) {
    const char *dir = test_make_tmpdir();
    char path[1100];
    snprintf(path, sizeof path, "%s/stop", dir);
    dp_signals_watch_file(path);
    CU_ASSERT_EQUAL(dp_signals_pending(), 0);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);
    int got = 0;
    const struct timespec nap = {0, 20000000};
    for (int i = 0; i < 250 && !got; i++) { /* up to 5 s; one poll period suffices */
        got = dp_signals_pending();
        if (!got) nanosleep(&nap, NULL);
    }
    CU_ASSERT_EQUAL(got, DP_SIGNALS_FILE);
    dp_signals_watch_file(NULL);
    CU_ASSERT_EQUAL(dp_signals_pending(), 0);
    remove(path);
}

int main(void) {
    static const test_case cases[] = {
        {"a recorded signal survives the exec", test_signal_survives_exec},
        {"the stop file", test_stop_file},
        {NULL, NULL}};
    return test_run_suite("signals", cases);
}
