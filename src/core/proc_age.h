/* proc_age.h - (private) how long this process has been running. */
#ifndef DPTRAIN_PROC_AGE_H
#define DPTRAIN_PROC_AGE_H

/* Seconds since the process was created (the launcher's fork, so the OpenBLAS
 * re-exec and MPI start-up count), to the kernel's 1/CLK_TCK resolution.
 * Returns -1 when /proc is not readable. */
double dp_process_age(void);

#endif
