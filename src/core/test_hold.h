/* test_hold.h - a test-only hook that stops a rank at a named point until the
 * test releases it, so that tests of signals and faults act at a known step
 * instead of racing the machine.
 *
 * Contract:
 * - DPTRAIN_TEST_HOLD unset or empty: dp_test_hold does nothing (the
 *   environment is read once, at the first call).
 * - DPTRAIN_TEST_HOLD=SPEC[,SPEC...], SPEC = POINT[:STEP][@RANK]: the rank
 *   (OMPI_COMM_WORLD_RANK, else PMIX_RANK, else 0) stops at the first call of
 *   POINT whose step is STEP (any step without :STEP), on RANK only (every rank
 *   without @RANK). Each SPEC holds at most once per process.
 * - A held rank creates DIR/held-POINT-RANK (DIR is DPTRAIN_TEST_HOLD_DIR, else
 *   the working directory), atomically, holding the line "pid PID step STEP",
 *   and waits until that file is removed: removing it releases the rank.
 * - While held, signals are handled as usual (the stop handlers only record
 *   them); when stop_requested is given and returns non-zero, the line
 *   "signal SIG" is appended to the file once, so a test can release the rank
 *   only after the signal it sent was recorded.
 * - The wait is bounded: after DP_TEST_HOLD_SECONDS the rank removes the file,
 *   warns on stderr and goes on, so a test that fails to release cannot hang
 *   a run. A bad SPEC is reported on stderr and ignored.
 * Points: "setup" (main: stop handlers installed, before MPI_Init and the run
 * directory), "step" (after global step STEP, its stop flag already agreed),
 * "ckpt-write" (writer thread, the checkpoint of step STEP written to its
 * temporary file but not closed), "ckpt-rename" (the checkpoint of step STEP
 * renamed into place, before the directory fsync and the pruning), "read"
 * (the streaming reader, before it reads the rows of global step STEP;
 * evaluation chunks are step -1). */
#ifndef DPTRAIN_TEST_HOLD_H
#define DPTRAIN_TEST_HOLD_H

#define DP_TEST_HOLD_SECONDS 60

/* Holds the calling thread at `point` (at `step`) when DPTRAIN_TEST_HOLD asks
 * for it; stop_requested may be NULL. Thread-safe. */
void dp_test_hold(const char *point, long long step, int (*stop_requested)(void));

#endif
