/* timeline_run.c - a run's timeline: settings, the step window, the trace file rank 0 writes. */
#include "train/timeline_run.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timeline.h"

/* Events a rank may hold, 16 bytes each: a window too long for this is cut
 * short (the file says how many were left out). */
#define TL_MAX_EVENTS ((size_t)8 << 20)

/* The span names, and the "cat" a reader filters by. */
static const char *const tl_cat[DP_TL_KINDS] = {
    [DP_TL_STEP] = "step",
    [DP_TL_DATA] = "data",
    [DP_TL_FORWARD] = "forward",
    [DP_TL_LAYER_FORWARD] = "layer_forward",
    [DP_TL_LOSS] = "loss",
    [DP_TL_BACKWARD] = "backward",
    [DP_TL_LAYER_BACKWARD] = "layer_backward",
    [DP_TL_BUCKET_MAX] = "bucket_max_start",
    [DP_TL_BUCKET_SUM] = "bucket_sum_start",
    [DP_TL_BUCKET_MAX_WIRE] = "bucket_max_allreduce",
    [DP_TL_BUCKET_SUM_WIRE] = "bucket_sum_allreduce",
    [DP_TL_BUCKET_WAIT] = "bucket_wait",
    [DP_TL_BUCKET_DONE] = "bucket_complete",
    [DP_TL_REDUCE] = "reduction",
    [DP_TL_SHARED] = "shared_memory",
    [DP_TL_SHARED_SUM] = "shared_memory_range",
    [DP_TL_BARRIER] = "barrier",
    [DP_TL_OPTIMIZER] = "optimizer",
    [DP_TL_EVAL] = "evaluation",
    [DP_TL_CKPT] = "checkpoint",
    [DP_TL_CKPT_WRITE] = "checkpoint_write",
};

/* The directory part of path ("." when there is none). */
static void tl_dirname(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else if (slash == path) snprintf(dir, len, "/");
    else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* 1 when a and b name the same directory as written, trailing slashes aside. */
static int tl_same_dir(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') la--;
    while (lb > 1 && b[lb - 1] == '/') lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

/* The run directory is made before training starts, so a timeline may go in
 * it before it exists. */
static int tl_check_path(const char *path, const char *key, const char *run_dir, dp_error *err) {
    char dir[DP_PATH_MAX];
    struct stat sb;
    tl_dirname(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        if (run_dir && tl_same_dir(dir, run_dir)) return 0;
        return dp_error_set(err, key,
                            "directory '%s' of the timeline %s does not exist; create it "
                            "or choose another path",
                            dir, path);
    }
    if (access(dir, W_OK) != 0)
        return dp_error_set(
            err, key, "cannot write the timeline %s: directory '%s' is not writable", path, dir);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return dp_error_set(err, key,
                            "the timeline %s is a directory; give a file name such as "
                            "%s/timeline.json",
                            path, path);
    return 0;
}

int dp_tl_run_setup(dp_tl_run *t, const dp_comm *c, const dp_config *cfg, const dp_train_opts *opts,
                    dp_error *err) {
    memset(t, 0, sizeof *t);
    const char *path = opts->timeline ? opts->timeline : cfg->timeline;
    const char *steps = opts->timeline_steps ? opts->timeline_steps : cfg->timeline_steps;
    const char *path_key = opts->timeline ? "--timeline" : "train.timeline";
    const char *steps_key = opts->timeline_steps ? "--timeline-steps" : "train.timeline_steps";
    char why[160];
    if (steps[0] && dp_tl_parse_steps(steps, &t->first, &t->last, why, sizeof why))
        dp_error_set(err, steps_key, "%s", why);
    else if (path[0] && snprintf(t->path, sizeof t->path, "%s", path) >= (int)sizeof t->path)
        dp_error_set(err, path_key, "path longer than %d characters", DP_PATH_MAX - 1);
    else if (path[0] && c->rank == 0) tl_check_path(path, path_key, opts->run_dir, err);
    t->on = path[0] != 0;
    if (dp_comm_agree(c, err)) {
        t->on = 0;
        return -1;
    }
    return 0;
}

void dp_tl_run_start(dp_tl_run *t, const dp_comm *c, const dp_model *m, int n_micro,
                     int n_buckets) {
    if (!t->on) return;
    long long steps = t->first ? t->last - t->first + 1 : DP_TL_DEFAULT_STEPS;
    /* Per micro-batch: data, forward, loss, backward and each layer both ways;
     * per bucket at most two starts, two wires, two waits and a completion;
     * the rest (step, reduction, optimizer, barriers, evaluation, checkpoint)
     * fits in the 64. */
    size_t per_step = (size_t)n_micro * (8 + 4 * (size_t)m->n_layers) + 14 * (size_t)n_buckets + 64;
    size_t cap =
        (size_t)steps < TL_MAX_EVENTS / per_step ? (size_t)steps * per_step + 256 : TL_MAX_EVENTS;
    size_t wcap = (size_t)steps < TL_MAX_EVENTS / 2 ? 2 * (size_t)steps + 16 : TL_MAX_EVENTS;
    dp_tl_open(cap, wcap);
    t->origin = dp_comm_common_origin(c, dp_tl_now);
    t->started = 1;
}

void dp_tl_run_step(dp_tl_run *t, long long step) {
    if (!t->started) return;
    if (!t->first) {
        t->first = step;
        t->last = step + DP_TL_DEFAULT_STEPS - 1;
    }
    int on = step >= t->first && step <= t->last;
    if (on) t->seen = step;
    dp_tl_window(on);
}

/* ---- writing ---- */

typedef struct tl_out {
    FILE *f;
    int64_t origin;
    long long next_id; /* async span ids, unique in the file */
    const dp_model *m;
} tl_out;

static void tl_name(const tl_out *o, const dp_tl_event *e, char *buf, size_t len) {
    static const char *barrier[] = {"barrier (fence)", "barrier (agreement)",
                                    "barrier (replica check)"};
    int a = e->arg;
    switch ((dp_tl_kind)e->kind) {
    case DP_TL_STEP: snprintf(buf, len, "step %d", a); break;
    case DP_TL_LAYER_FORWARD:
    case DP_TL_LAYER_BACKWARD:
        snprintf(buf, len, "%s %s", e->kind == DP_TL_LAYER_FORWARD ? "forward" : "backward",
                 a >= 0 && a < o->m->n_layers ? o->m->layers[a].name : "?");
        break;
    case DP_TL_BUCKET_MAX: snprintf(buf, len, "bucket %d: max |g|, start", a); break;
    case DP_TL_BUCKET_SUM: snprintf(buf, len, "bucket %d: sum, start", a); break;
    case DP_TL_BUCKET_MAX_WIRE: snprintf(buf, len, "bucket %d: max allreduce", a); break;
    case DP_TL_BUCKET_SUM_WIRE: snprintf(buf, len, "bucket %d: sum allreduce", a); break;
    case DP_TL_BUCKET_WAIT: snprintf(buf, len, "bucket %d: wait", a); break;
    case DP_TL_BUCKET_DONE: snprintf(buf, len, "bucket %d: complete", a); break;
    case DP_TL_REDUCE: snprintf(buf, len, "gradient reduction"); break;
    case DP_TL_SHARED: snprintf(buf, len, "shared-memory reduction and update"); break;
    case DP_TL_SHARED_SUM: snprintf(buf, len, "sum and update of own range"); break;
    case DP_TL_BARRIER: snprintf(buf, len, "%s", barrier[a >= 0 && a < 3 ? a : 0]); break;
    case DP_TL_EVAL: snprintf(buf, len, "evaluation (%s)", a ? "test" : "validation"); break;
    case DP_TL_CKPT: snprintf(buf, len, "checkpoint (%s)", a ? "flush" : "submit"); break;
    case DP_TL_CKPT_WRITE: snprintf(buf, len, "checkpoint write (step %d)", a); break;
    default: snprintf(buf, len, "%s", tl_cat[e->kind]); break;
    }
}

/* Microseconds from the origin, to the nanosecond. */
static void tl_us(const tl_out *o, int64_t ns, char *buf, size_t len) {
    int64_t d = ns - o->origin;
    const char *sign = d < 0 ? "-" : "";
    if (d < 0) d = -d;
    snprintf(buf, len, "%s%lld.%03lld", sign, (long long)(d / 1000), (long long)(d % 1000));
}

static void tl_complete(tl_out *o, const dp_tl_event *b, const dp_tl_event *e, int pid, int tid) {
    char name[96], ts[32], dur[32];
    tl_name(o, b, name, sizeof name);
    tl_us(o, b->ns, ts, sizeof ts);
    tl_us(o, e->ns - b->ns + o->origin, dur, sizeof dur);
    fprintf(o->f,
            ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %s, \"dur\": %s, "
            "\"pid\": %d, \"tid\": %d, \"args\": {\"arg\": %d}}",
            name, tl_cat[b->kind], ts, dur, pid, tid, b->arg);
}

static void tl_async(tl_out *o, const dp_tl_event *b, const dp_tl_event *e, int pid) {
    char name[96], t0[32], t1[32];
    tl_name(o, b, name, sizeof name);
    tl_us(o, b->ns, t0, sizeof t0);
    tl_us(o, e->ns, t1, sizeof t1);
    long long id = o->next_id++;
    for (int i = 0; i < 2; i++)
        fprintf(o->f,
                ",\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"%c\", \"id\": %lld, \"ts\": %s, "
                "\"pid\": %d, \"tid\": 0}",
                name, tl_cat[b->kind], i ? 'e' : 'b', id, i ? t1 : t0, pid);
}

/* Turns one thread's begin/end events into complete events: spans nest, so
 * an end closes the innermost open span of its kind; a begin left open (a
 * window closed inside it) or an end without its begin is left out. Async
 * spans pair with the oldest open one of the same kind and argument. */
static void tl_write_thread(tl_out *o, const dp_tl_event *ev, size_t n, int pid, int tid) {
    size_t *stack = DP_MALLOC((n + 1) * sizeof(size_t)),
           *open = DP_MALLOC((n + 1) * sizeof(size_t));
    size_t depth = 0, n_open = 0;
    for (size_t i = 0; i < n; i++) {
        const dp_tl_event *e = &ev[i];
        if (e->ph == 'B') stack[depth++] = i;
        else if (e->ph == 'b') open[n_open++] = i;
        else if (e->ph == 'E') {
            size_t d = depth;
            while (d > 0 && (ev[stack[d - 1]].kind != e->kind || ev[stack[d - 1]].arg != e->arg))
                d--;
            if (d == 0) continue;
            tl_complete(o, &ev[stack[d - 1]], e, pid, tid);
            depth = d - 1;
        } else {
            for (size_t j = 0; j < n_open; j++)
                if (ev[open[j]].kind == e->kind && ev[open[j]].arg == e->arg) {
                    tl_async(o, &ev[open[j]], e, pid);
                    memmove(open + j, open + j + 1, (n_open - j - 1) * sizeof(size_t));
                    n_open--;
                    break;
                }
        }
    }
    free(stack);
    free(open);
}

static void tl_write_meta(tl_out *o, int pid, int size) {
    fprintf(o->f,
            "%s{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": "
            "\"rank %d\"}},\n{\"name\": \"process_sort_index\", \"ph\": \"M\", \"pid\": %d, "
            "\"args\": {\"sort_index\": %d}},\n{\"name\": \"thread_name\", \"ph\": \"M\", "
            "\"pid\": %d, \"tid\": 0, \"args\": {\"name\": \"rank %d of %d\"}}",
            pid ? ",\n" : "", pid, pid, pid, pid, pid, pid, size);
    if (pid == 0)
        fprintf(o->f, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 0, \"tid\": 1, "
                      "\"args\": {\"name\": \"rank 0 checkpoint writer\"}}");
}

/* Rank 0: receives every rank's events and writes the whole file to f. */
static long long tl_write_all(tl_out *o, const dp_comm *c, const dp_tl_run *t) {
    fprintf(o->f, "{\"displayTimeUnit\": \"ms\",\n\"traceEvents\": [\n");
    long long dropped = 0;
    for (int r = 0; r < c->size; r++) {
        tl_write_meta(o, r, c->size);
        const dp_tl_buffer *mine = dp_tl_events(0);
        int64_t head[2] = {(int64_t)mine->n, mine->dropped};
        dp_tl_event *ev = mine->ev;
        if (r > 0) {
            dp_comm_recv(c, head, sizeof head, r);
            ev = DP_MALLOC(((size_t)head[0] + 1) * sizeof *ev);
            dp_comm_recv(c, ev, (size_t)head[0] * sizeof *ev, r);
        }
        tl_write_thread(o, ev, (size_t)head[0], r, 0);
        dropped += head[1];
        if (r > 0) free(ev);
    }
    const dp_tl_buffer *w = dp_tl_events(1);
    tl_write_thread(o, w->ev, w->n, 0, 1);
    dropped += w->dropped;
    fprintf(o->f,
            "\n],\n\"otherData\": {\"producer\": \"dptrain\", \"ranks\": %d, \"steps\": "
            "\"%lld:%lld\", \"events_left_out\": %lld}}\n",
            c->size, t->first, t->seen, dropped);
    return dropped;
}

static int tl_write_file(const dp_tl_run *t, const dp_comm *c, const dp_model *m, dp_error *err) {
    char tmp[DP_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", t->path, (long)getpid());
    tl_out o = {.f = fopen(tmp, "w"), .origin = t->origin, .m = m};
    long long dropped = 0;
    if (o.f) dropped = tl_write_all(&o, c, t);
    else {
        /* The other ranks still send: drain them so none waits forever. */
        for (int r = 1; r < c->size; r++) {
            int64_t head[2];
            dp_comm_recv(c, head, sizeof head, r);
            void *skip = DP_MALLOC((size_t)head[0] * sizeof(dp_tl_event) + 1);
            dp_comm_recv(c, skip, (size_t)head[0] * sizeof(dp_tl_event), r);
            free(skip);
        }
        return dp_error_set(err, t->path, "cannot write the timeline: %s", strerror(errno));
    }
    int bad = ferror(o.f) || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0;
    int e = errno;
    if (fclose(o.f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, t->path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        return dp_error_set(err, t->path, "cannot write the timeline: %s", strerror(e));
    }
    if (dropped)
        fprintf(stderr,
                "dptrain: warning: timeline: %lld events did not fit in the buffer and were left "
                "out; record fewer steps (--timeline-steps)\n",
                dropped);
    if (t->seen)
        printf("timeline of steps %lld to %lld written to %s\n", t->first, t->seen, t->path);
    else printf("timeline written to %s: no step ran in %lld:%lld\n", t->path, t->first, t->last);
    return 0;
}

int dp_tl_run_finish(dp_tl_run *t, const dp_comm *c, const dp_model *m) {
    if (!t->started) return 0;
    dp_tl_window(0);
    dp_error err = {0};
    if (c->rank == 0) tl_write_file(t, c, m, &err);
    else {
        const dp_tl_buffer *mine = dp_tl_events(0);
        int64_t head[2] = {(int64_t)mine->n, mine->dropped};
        dp_comm_send(c, head, sizeof head, 0);
        dp_comm_send(c, mine->ev, mine->n * sizeof(dp_tl_event), 0);
    }
    dp_tl_close();
    t->started = 0;
    int failed = err.set;
    dp_comm_bcast(c, &failed, sizeof failed, 0);
    if (err.set) dp_error_print(&err);
    return failed ? -1 : 0;
}
