#!/usr/bin/env bash
# Runs the seed training on one rank under valgrind memcheck: 2 epochs, a resume
# to 3 epochs (the checkpoint reader), 2 epochs streamed (the reader thread and
# rows read by id), and a run that fails on a missing data file (the error path). Any invalid read or write, use of uninitialised memory
# or definite leak outside Open MPI's own internals (tests/valgrind.supp) fails.
#
# Usage: scripts/valgrind.sh [BUILD_DIR]   (default build-valgrind)
# The build uses -DDPTRAIN_NATIVE=OFF: valgrind cannot run AVX-512 code.
# Exit: 0 clean, 1 an error was found (logs kept and their summary printed).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-valgrind}
WORK=$(mktemp -d /tmp/dptrain-valgrind.XXXXXX)

cmake -S . -B "$BUILD" -DDPTRAIN_NATIVE=OFF -DBUILD_TESTING=OFF > "$WORK/configure.log" ||
    { cat "$WORK/configure.log"; exit 1; }
cmake --build "$BUILD" -j 2 --target dptrain > "$WORK/build.log" || { cat "$WORK/build.log"; exit 1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
# Keep Open MPI's plugins loaded so their frames have names in the reports.
export OMPI_MCA_mca_base_component_disable_dlclose=1
VG_EXIT=99

# check NAME EXPECTED_STATUS dptrain-args...: one run under memcheck.
status=0
check() {
    local name=$1 want=$2 rc=0
    shift 2
    mpirun -np 1 valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --track-origins=yes --num-callers=40 \
        --suppressions=tests/valgrind.supp --error-exitcode=$VG_EXIT \
        --log-file="$WORK/$name.log" "$BUILD/dptrain" "$@" > "$WORK/$name.out" 2>&1 || rc=$?
    local summary
    summary=$(grep -h 'ERROR SUMMARY' "$WORK/$name.log" | sed -E 's/^==[0-9]+== //' || true)
    local lost
    lost=$(grep -h 'definitely lost:' "$WORK/$name.log" | sed -E 's/^==[0-9]+== +//' || echo "definitely lost: 0 bytes")
    echo "valgrind $name: exit $rc (expected $want); $summary; $lost"
    if [[ $rc -eq $VG_EXIT || $rc -ne $want ]] || ! grep -q 'ERROR SUMMARY: 0 errors' "$WORK/$name.log"; then
        status=1
        grep -vE '^==[0-9]+== *$' "$WORK/$name.log" | sed -n '/Invalid\|uninitialised\|definitely lost in/,+12p' | head -60
        tail -5 "$WORK/$name.out"
    fi
}

RUN=$WORK/run
check train 0 train configs/seed.yaml --set train.epochs=2 --run-dir "$RUN"
check resume 0 train configs/seed.yaml --set train.epochs=3 --run-dir "$RUN" --resume
check stream 0 train configs/seed.yaml --set train.epochs=2 --set data.in_memory=false \
    --run-dir "$WORK/stream"
check bad-data 1 train configs/seed.yaml --set data.path="$WORK/missing.h5" --run-dir "$WORK/bad"

if ((status)); then
    echo "valgrind: errors found; logs in $WORK"
else
    rm -rf "$WORK"
fi
exit $status
