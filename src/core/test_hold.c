/* test_hold.c - DPTRAIN_TEST_HOLD: stop a rank at a named point until a test
 * releases it (the contract is in test_hold.h). */
#include "core/test_hold.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MAX_SPECS 8
#define HOLD_NAME_MAX 32
#define HOLD_PATH_MAX 4096

typedef struct hold_spec {
    char point[HOLD_NAME_MAX];
    long long step; /* -1: any step */
    int rank;       /* -1: every rank */
    int used;       /* it held once already */
} hold_spec;

static pthread_once_t hold_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static hold_spec hold_specs[HOLD_MAX_SPECS];
static int hold_n; /* 0 when DPTRAIN_TEST_HOLD is unset: every call returns at once */
static int hold_rank;
static char hold_dir[HOLD_PATH_MAX];

/* Parses one SPEC = POINT[:STEP][@RANK] of length len into h; returns 0 or -1. */
static int hold_parse_spec(const char *s, size_t len, hold_spec *h) {
    char buf[128];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    h->step = -1;
    h->rank = -1;
    char *at = strchr(buf, '@'), *end;
    if (at) {
        *at = '\0';
        long r = strtol(at + 1, &end, 10);
        if (end == at + 1 || *end || r < 0 || r > 1000000) return -1;
        h->rank = (int)r;
    }
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = '\0';
        long long st = strtoll(colon + 1, &end, 10);
        if (end == colon + 1 || *end || st < 0) return -1;
        h->step = st;
    }
    size_t n = strlen(buf);
    if (n == 0 || n >= sizeof h->point || strspn(buf, "abcdefghijklmnopqrstuvwxyz-") != n)
        return -1;
    memcpy(h->point, buf, n + 1);
    return 0;
}

static void hold_read_env(void) {
    const char *spec = getenv("DPTRAIN_TEST_HOLD");
    if (!spec || !*spec) return;
    const char *dir = getenv("DPTRAIN_TEST_HOLD_DIR");
    snprintf(hold_dir, sizeof hold_dir, "%s", dir && *dir ? dir : ".");
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMIX_RANK");
    hold_rank = rank ? atoi(rank) : 0;
    for (const char *s = spec; *s;) {
        size_t len = strcspn(s, ",");
        if (hold_n == HOLD_MAX_SPECS || hold_parse_spec(s, len, &hold_specs[hold_n]))
            fprintf(stderr, "dptrain: warning: DPTRAIN_TEST_HOLD: ignoring '%.*s'\n", (int)len, s);
        else hold_n++;
        s += len;
        if (*s == ',') s++;
    }
}

static double hold_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Writes all of len bytes of s to fd (short writes are not expected on a local file). */
static void hold_write(int fd, const char *s, size_t len) {
    if (write(fd, s, len) != (ssize_t)len)
        fprintf(stderr, "dptrain: warning: test hold: write failed: %s\n", strerror(errno));
}

/* Creates the held file (whole, by a rename), then waits for its removal. */
static void hold_wait(const char *point, long long step, int (*stop_requested)(void)) {
    char path[HOLD_PATH_MAX + 64], tmp[HOLD_PATH_MAX + 96], line[96];
    snprintf(path, sizeof path, "%s/held-%s-%d", hold_dir, point, hold_rank);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "dptrain: warning: test hold: cannot create %s: %s\n", tmp,
                strerror(errno));
        return;
    }
    int n = snprintf(line, sizeof line, "pid %ld step %lld\n", (long)getpid(), step);
    hold_write(fd, line, (size_t)n);
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "dptrain: warning: test hold: cannot create %s: %s\n", path,
                strerror(errno));
        close(fd);
        unlink(tmp);
        return;
    }
    /* The fd stays open: a line appended after the test removed the file goes
     * to the unlinked inode, never to a new file. */
    const struct timespec nap = {0, 2000000}; /* 2 ms; a signal ends it early */
    double t0 = hold_now();
    int told = 0;
    for (;;) {
        int sig = stop_requested && !told ? stop_requested() : 0;
        if (sig) {
            n = snprintf(line, sizeof line, "signal %d\n", sig);
            hold_write(fd, line, (size_t)n);
            told = 1;
        }
        if (access(path, F_OK) != 0 && errno == ENOENT) break; /* released */
        if (hold_now() - t0 > DP_TEST_HOLD_SECONDS) {
            fprintf(stderr, "dptrain: warning: test hold: %s not released within %d s; going on\n",
                    path, DP_TEST_HOLD_SECONDS);
            unlink(path);
            break;
        }
        nanosleep(&nap, NULL);
    }
    close(fd);
}

void dp_test_hold(const char *point, long long step, int (*stop_requested)(void)) {
    pthread_once(&hold_once, hold_read_env);
    if (!hold_n) return;
    int found = 0;
    pthread_mutex_lock(&hold_lock);
    for (int i = 0; i < hold_n && !found; i++) {
        hold_spec *h = &hold_specs[i];
        if (h->used || strcmp(h->point, point) != 0 || (h->step >= 0 && h->step != step) ||
            (h->rank >= 0 && h->rank != hold_rank))
            continue;
        h->used = 1;
        found = 1;
    }
    pthread_mutex_unlock(&hold_lock);
    if (found) hold_wait(point, step, stop_requested);
}
