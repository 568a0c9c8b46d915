/* progress.c - Keras-like console output and the metrics.jsonl record. */
#include "train/progress.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* A live bar only when a person is watching. Open MPI gives each rank a
 * pseudo-terminal even when mpirun itself writes to a file (a Slurm log), so
 * the launcher's stdout, the parent's fd 1, must be a terminal too. */
static int progress_stdout_is_tty(void) {
    if (!isatty(STDOUT_FILENO)) return 0;
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/%d/fd/1", (int)getppid());
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 1; /* cannot tell: trust our own stdout */
    target[n] = 0;
    return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

int dp_progress_open(dp_progress *p, const char *run_dir, int append, int epochs, int steps,
                     char *errbuf, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->tty = progress_stdout_is_tty();
    p->epochs = epochs;
    p->steps = steps;
    p->last_draw = -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    p->jsonl = fopen(path, append ? "a" : "w");
    if (!p->jsonl) {
        snprintf(errbuf, errlen, "%s", strerror(errno));
        return -1;
    }
    return 0;
}

void dp_progress_update_step(dp_progress *p, int epoch, int step, double loss, double accuracy,
                             double now) {
    if (!p->tty || (now - p->last_draw < 0.1 && step < p->steps)) return;
    p->last_draw = now;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int done = p->steps ? (int)((long)WIDTH * step / p->steps) : WIDTH;
    for (int i = 0; i < WIDTH; i++) bar[i] = i < done ? '=' : (i == done ? '>' : '.');
    bar[WIDTH] = 0;
    printf("\rEpoch %d/%d %d/%d [%s] - loss: %.4f - accuracy: %.4f", epoch, p->epochs, step,
           p->steps, bar, loss, accuracy);
    fflush(stdout);
    p->drawn = 1;
}

void dp_progress_break_line(dp_progress *p) {
    if (!p->drawn) return;
    printf("\n");
    fflush(stdout);
    p->drawn = 0;
}

/* JSON has no NaN: absent values are written as null. */
static void progress_json_num(FILE *f, const char *key, double v, int last) {
    if (isfinite(v)) fprintf(f, "\"%s\": %.17g%s", key, v, last ? "" : ", ");
    else fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

enum { JSON_KEYS = 9 };

/* Absent values (NaN) are left out, except the first eight, written as null. */
static void progress_json_line(FILE *f, int epoch, const double v[JSON_KEYS]) {
    static const char *keys[JSON_KEYS] = {"loss",          "accuracy",  "val_loss",
                                          "val_accuracy",  "test_loss", "test_accuracy",
                                          "samples_per_s", "seconds",   "learning_rate"};
    fprintf(f, "{\"epoch\": %d, ", epoch);
    int last = isfinite(v[8]) ? 8 : 7;
    for (int i = 0; i <= last; i++) progress_json_num(f, keys[i], v[i], i == last);
    fprintf(f, "}\n");
    fflush(f);
}

void dp_progress_write_epoch(dp_progress *p, const dp_epoch_stats *s) {
    if (p->tty) printf("\r\033[K");
    p->drawn = 0;
    printf("Epoch %d/%d - %d/%d - %.2fs - loss: %.4f - accuracy: %.4f", s->epoch, p->epochs,
           p->steps, p->steps, s->seconds, s->loss, s->accuracy);
    if (isfinite(s->val_loss))
        printf(" - val_loss: %.4f - val_accuracy: %.4f", s->val_loss, s->val_accuracy);
    /* As Keras's progress bar writes numbers: small ones in exponent form. */
    if (fabs(s->learning_rate) > 1e-3) printf(" - learning_rate: %.4f", s->learning_rate);
    else printf(" - learning_rate: %.4e", s->learning_rate);
    printf(" - %.0f samples/s", s->samples_per_s);
    if (s->positions > 1) printf(" (%.0f tokens/s)", s->samples_per_s * s->positions);
    printf("\n");
    fflush(stdout);
    if (p->jsonl) {
        double v[JSON_KEYS] = {s->loss, s->accuracy,      s->val_loss, s->val_accuracy, NAN,
                               NAN,     s->samples_per_s, s->seconds,  s->learning_rate};
        progress_json_line(p->jsonl, s->epoch, v);
    }
}

void dp_progress_write_test(dp_progress *p, int epoch, double test_loss, double test_accuracy,
                            double seconds) {
    printf("Test loss: %.4f - test accuracy: %.4f\n", test_loss, test_accuracy);
    fflush(stdout);
    if (p->jsonl) {
        double v[JSON_KEYS] = {NAN, NAN, NAN, NAN, test_loss, test_accuracy, NAN, seconds, NAN};
        progress_json_line(p->jsonl, epoch, v);
    }
}

void dp_progress_close(dp_progress *p) {
    if (p->jsonl) fclose(p->jsonl);
    p->jsonl = NULL;
}

int dp_progress_ends_with_test(const char *run_dir) {
    char path[4096], tail[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    /* A record is one short line: the last 1 KiB holds all of the last one. */
    long at = 0;
    if (fseek(f, 0, SEEK_END) == 0) at = ftell(f);
    at = at > (long)sizeof tail - 1 ? at - (long)(sizeof tail - 1) : 0;
    size_t n = fseek(f, at, SEEK_SET) == 0 ? fread(tail, 1, sizeof tail - 1, f) : 0;
    fclose(f);
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' ')) n--;
    tail[n] = 0;
    const char *last = strrchr(tail, '\n');
    const char *key = strstr(last ? last + 1 : tail, "\"test_loss\": ");
    return key && strncmp(key + 13, "null", 4) != 0; /* epoch records hold a null */
}
