/* proc_age.c - the process's age, from its start time in /proc/self/stat. */
#include "core/proc_age.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double dp_process_age(void) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    if (!p) return -1;
    /* p ends at the space before field 22, starttime (the name is field 2). */
    for (int field = 3; field <= 22 && p; field++) p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &start) != 1) return -1;
    struct timespec ts;
    long tck = sysconf(_SC_CLK_TCK);
    if (tck <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return -1;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - (double)start / (double)tck;
}
