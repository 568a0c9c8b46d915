/* memlimit.c - the node's memory, as the kernel and the job's cgroup bound it. */
#include "core/memlimit.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The number in the first line of path; 0 when absent or "max". */
static uint64_t read_limit(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long v = 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (uint64_t)v;
}

static uint64_t lower(uint64_t a, uint64_t b) {
    if (b == 0) return a;
    return a == 0 || b < a ? b : a;
}

/* cgroup v2: the lowest memory.max from this process's cgroup up to the root
 * (/proc/self/cgroup's "0::PATH"); a Slurm step sets it a few levels down. */
static uint64_t cgroup_v2_limit(void) {
    char line[1024], path[1200];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    uint64_t lim = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = 0;
            char *cg = line + 3;
            for (;;) {
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max",
                         strcmp(cg, "/") ? cg : "");
                lim = lower(lim, read_limit(path));
                char *slash = strrchr(cg, '/');
                if (!slash || slash == cg) break;
                *slash = 0;
            }
            lim = lower(lim, read_limit("/sys/fs/cgroup/memory.max"));
        }
    fclose(f);
    return lim;
}

uint64_t dp_memory_limit_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    phys = lower(phys, cgroup_v2_limit());
    /* v1 reports "no limit" as a huge number, which lower() drops. */
    return lower(phys, read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
}
