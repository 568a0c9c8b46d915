/* memlimit.h - (private) how much memory this node lets the job use. */
#ifndef DPTRAIN_MEMLIMIT_H
#define DPTRAIN_MEMLIMIT_H

#include <stdint.h>

/* The node's physical memory, or the cgroup's limit when one is set and lower
 * (a Slurm job with --mem runs in such a cgroup; v2 memory.max, else v1
 * memory.limit_in_bytes). Returns bytes; 0 if neither can be read. */
uint64_t dp_memory_limit_bytes(void);

#endif
