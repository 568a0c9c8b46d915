#!/usr/bin/env bash
# Quick start, part 2: install, build, and run the whole test suite, first in the
# normal build (with the real-Slurm test) and then under AddressSanitizer +
# UndefinedBehaviorSanitizer (without it);
# the checkpoint writer's tests and training runs under ThreadSanitizer; then
# 30 s of each libFuzzer harness, a valgrind memcheck of a 1-rank training,
# cppcheck, and the clang-format check. Every build is made with
# DPTRAIN_WERROR, so any compiler warning fails it. The exit status is non-zero
# if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Read by CMakeLists.txt, so the builds fuzz.sh and valgrind.sh configure get it too.
export DPTRAIN_WERROR=ON

# step NAME COMMAND...: runs one step and says how long it took.
step() {
  local name=$1 t0=$SECONDS
  shift
  echo "test.sh: $name"
  "$@"
  echo "test.sh: $name took $((SECONDS - t0)) s"
}

normal() {
  scripts/build.sh build
  (cd build && ctest --output-on-failure -j 2)
}
step "normal build and tests" normal

# Open MPI's own allocations are not ours to fix: the suppressions file names
# them. Matching needs whole stacks (slow unwinding through libraries built
# without frame pointers) and Open MPI's plugins kept loaded until exit.
asan() {
  scripts/build.sh build-asan -DDPTRAIN_SANITIZE=ON -DDPTRAIN_NATIVE=OFF
  (
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export ASAN_OPTIONS="fast_unwind_on_malloc=0:detect_odr_violation=0"
    export OMPI_MCA_mca_base_component_disable_dlclose=1
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    # -LE slurm: the real-Slurm test checks the job script, not memory.
    cd build-asan && ctest --output-on-failure -j 2 -LE slurm
  )
}
step "ASan+UBSan build and tests" asan

# ThreadSanitizer on what runs threads of ours, rank 0's checkpoint writer
# and the streaming reader: their unit tests, then trainings that write
# checkpoints (1 rank, a resume, 2 ranks), and streamed ones that checkpoint
# every few steps while the reader reads (1 rank, and 2 ranks resumed).
# Any report fails (TSan exits 66); tests/tsan.supp names Open MPI's internals.
TSAN_RUNS=5
TSAN_TESTS=3
tsan() {
  scripts/build.sh build-tsan -DDPTRAIN_TSAN=ON -DDPTRAIN_NATIVE=OFF
  (
    export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp second_deadlock_stack=1"
    export OMPI_MCA_mca_base_component_disable_dlclose=1 OPENBLAS_NUM_THREADS=1
    (cd build-tsan && ctest --output-on-failure -R '^unit_test_(ckpt_writer|checkpoint|reader)$')
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    local run
    run=$(mktemp -d /tmp/dptrain-tsan.XXXXXX)
    trap 'rm -rf "$run"' EXIT
    # tsan_run NAME NP ARGS...: one training under TSan; prints its log on failure.
    tsan_run() {
      local name=$1 np=$2
      shift 2
      if timeout -k 5 300 mpirun --oversubscribe -np "$np" build-tsan/dptrain train \
          configs/seed.yaml "$@" > "$run/$name.log" 2>&1; then
        echo "tsan $name: ok"
      else
        echo "tsan $name: FAILED"
        cat "$run/$name.log"
        return 1
      fi
    }
    tsan_run train 1 --set train.epochs=2 --run-dir "$run/one"
    tsan_run resume 1 --set train.epochs=3 --run-dir "$run/one" --resume
    tsan_run ranks 2 --set train.epochs=2 --run-dir "$run/two"
    local stream=(--set data.in_memory=false --set checkpoint.every_steps=7 --set data.shards=2)
    tsan_run stream 1 "${stream[@]}" --set train.epochs=2 --run-dir "$run/s"
    tsan_run stream-resume 2 "${stream[@]}" --set train.epochs=3 --run-dir "$run/s" --resume
  )
}
step "TSan build, checkpoint tests and trainings" tsan

step "fuzzers" scripts/fuzz.sh 30
step "valgrind" scripts/valgrind.sh

# Static analysis of everything the project compiles.
cppcheck_all() {
  cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 \
    --inline-suppr -Iinclude -Isrc src tests scripts/bench
}
step "cppcheck" cppcheck_all
step "format" scripts/check_format.sh

# Reaching this line means every step above passed (set -e): say how many.
n=$(cd build && ctest -N | sed -n 's/^Total Tests: //p')
na=$(cd build-asan && ctest -N -LE slurm | sed -n 's/^Total Tests: //p')
echo "CTest $n tests (normal), $na of them under ASan+UBSan, $TSAN_TESTS TSan tests and $TSAN_RUNS TSan"
echo "trainings, 2 fuzzers, 3 valgrind runs, cppcheck, clang-format"
echo "all: $((n + na + TSAN_TESTS + TSAN_RUNS + 2 + 3 + 2)) passed, 0 failed"
