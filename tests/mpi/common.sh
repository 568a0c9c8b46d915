# common.sh - sourced by the MPI integration tests.
# Provides: $DPTRAIN (the binary), $SRC (source tree), $TMP (fresh scratch dir,
# removed on exit), run_np, fail, check, checkpoint comparisons, has_all for
# error lines, and a pass/fail tally printed at the end.
set -uo pipefail
SRC=${DPTRAIN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DPTRAIN=${DPTRAIN:-$SRC/build/dptrain}
TMP=$(mktemp -d /tmp/dptrain-mpi-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cd "$SRC"
# Test scripts, not the library, allow Open MPI to run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
passed=0
failed=0

# run_np N LOG ARGS...: runs dptrain on N ranks with a hard time limit, output
# to LOG; returns dptrain's exit status (124 on timeout).
run_np() {
  local np=$1 log=$2
  shift 2
  timeout -k 5 "${RUN_TIMEOUT:-120}" mpirun --oversubscribe -np "$np" "$DPTRAIN" "$@" >"$log" 2>&1
}

# check NAME CONDITION...: evaluates the condition, records and prints the result.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failed=$((failed + 1))
    echo "FAILED: $name"
  fi
}

# finish: prints the tally line and exits non-zero if anything failed.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# has_all LOG EXPECTED: LOG's error line holds every TAB-separated fragment.
has_all() {
  local line frag frags
  line=$(grep '^dptrain: error: ' "$1")
  IFS=$'\t' read -r -a frags <<<"$2"
  for frag in "${frags[@]}"; do
    [ -z "$frag" ] || grep -qF -- "$frag" <<<"$line" || return 1
  done
}

# json_field FILE LINE KEY: the numeric value of KEY on line LINE of a JSONL file.
json_field() {
  sed -n "${2}p" "$1" | grep -o "\"$3\": [^,}]*" | sed 's/.*: //'
}

# fgt A B: true when A > B (floats).
fgt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

# newest DIR: the newest checkpoint file in run directory DIR.
newest() { ls "$1"/ckpt-*.h5 | tail -1; }

# same_ckpt DIR_A DIR_B GROUP: GROUP (/model, /optimizer) of the two run
# directories' newest checkpoints is bit-identical; differ_ckpt: it is not.
same_ckpt() { h5diff -d 0 "$(newest "$1")" "$(newest "$2")" "$3" "$3" >/dev/null 2>&1; }
differ_ckpt() { ! same_ckpt "$@"; }

# losses LOG: the loss figures a run printed, in order.
losses() { grep -o 'loss: [0-9.]*' "$1"; }

# same_runs WHAT A B: three checks that runs $TMP/A and $TMP/B (logs
# $TMP/A.log, $TMP/B.log) ended with bit-identical parameters and optimizer
# state and printed the same losses.
same_runs() {
  check "$1: bit-identical parameters" same_ckpt "$TMP/$2" "$TMP/$3" /model
  check "$1: bit-identical optimizer state" same_ckpt "$TMP/$2" "$TMP/$3" /optimizer
  check "$1: the same losses printed" test "$(losses "$TMP/$2.log")" = "$(losses "$TMP/$3.log")"
}

# singleton_asan: the ASAN_OPTIONS for dptrain run as an MPI singleton (a plain
# process, without mpirun). In the sanitized build (DPTRAIN_SANITIZED=1, set by
# CMake) LeakSanitizer's scan at a singleton's exit crashed inside LSan
# ("Tracer caught signal 11"), so those runs skip it and leaks are checked in
# the runs under mpirun; ASan and UBSan stay on.
singleton_asan() { echo "${ASAN_OPTIONS:-}${DPTRAIN_SANITIZED:+:detect_leaks=0}"; }
