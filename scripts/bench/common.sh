# common.sh - sourced by the benchmarks: installs and builds what they need,
# makes $tmp (removed at exit), pins one OpenBLAS thread per process, and sets
# OPENBLAS_CORETYPE to the kernels dptrain itself uses. OpenBLAS misdetects some
# virtual CPUs and falls back to generic kernels; dptrain corrects that on its
# own, and torch, on the same system OpenBLAS, gets the same kernels this way,
# so every comparison is like for like. $peak is sgemm's GFLOP/s at 1024^3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ref=${REFERENCE_DIR:-../shared/reference}
scripts/bench/setup.sh >/dev/null
scripts/build.sh >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -Iinclude -Isrc scripts/bench/sgemm.c build/libdptrain.a -lopenblas -o "$tmp/sgemm"
read -r peak core < <("$tmp/sgemm" 1024)
export OPENBLAS_CORETYPE=$core

# rate DIR: training samples per training second over a run's epoch records.
rate() {
  /usr/bin/python3 -c '
import json, sys
ep = [r for r in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")) if r["loss"] is not None]
print(round(sum(r["samples_per_s"] * r["seconds"] for r in ep) / sum(r["seconds"] for r in ep)))
' "$1"
}

# median: the middle of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ratio A B: A / B to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
