#!/usr/bin/env bash
# Quick start, part 2: install, build, and run the whole test suite, first in the
# normal build and then under AddressSanitizer + UndefinedBehaviorSanitizer;
# then 30 s of each libFuzzer harness and a valgrind memcheck of a 1-rank
# training. Every build is made with
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
    cd build-asan && ctest --output-on-failure -j 2
  )
}
step "ASan+UBSan build and tests" asan

step "fuzzers" scripts/fuzz.sh 30
step "valgrind" scripts/valgrind.sh

# Reaching this line means every step above passed (set -e): say how many.
n=$(cd build && ctest -N | sed -n 's/^Total Tests: //p')
echo "CTest $n tests twice (normal, ASan+UBSan), 2 fuzzers, 3 valgrind runs"
echo "all: $((2 * n + 2 + 3)) passed, 0 failed"
