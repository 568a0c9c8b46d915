#!/usr/bin/env bash
# Seed workload (20-64-32-1, adam, batch 10, 50 epochs): dptrain on one rank
# against the PyTorch replica, one core each, alternating REPS times in one run.
# Prints samples/s of both over the training loop (evaluation and checkpoints
# excluded on both sides) and their ratio; dptrain's whole-command wall time too.
# Usage: scripts/bench/seed.sh [REPS]   (REFERENCE_DIR: the PyTorch scripts)
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
ref=${REFERENCE_DIR:-../shared/reference}
scripts/bench/setup.sh >/dev/null
scripts/build.sh >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-4s %14s %14s %8s %12s\n" rep dptrain torch ratio dptrain_wall
ratios=()
for i in $(seq "$reps"); do
  t0=$(date +%s.%N)
  mpirun -np 1 build/dptrain train configs/seed.yaml --run-dir "$tmp/r$i" >"$tmp/d$i.log"
  t1=$(date +%s.%N)
  # Training samples over training seconds, summed over the 50 epoch records.
  dp=$(/usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ep = [r for r in rows if r["loss"] is not None]
print(round(sum(r["samples_per_s"] * r["seconds"] for r in ep) / sum(r["seconds"] for r in ep)))
' "$tmp/r$i/metrics.jsonl")
  th=$(/usr/bin/python3 "$ref/torch_seed.py" 0 | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p')
  ratio=$(awk -v a="$dp" -v b="$th" 'BEGIN { printf "%.1f", a / b }')
  ratios+=("$ratio")
  printf "%-4s %14s %14s %8s %11.2fs\n" "$i" "$dp" "$th" "${ratio}x" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
done
printf "median ratio: %sx\n" "$(printf "%s\n" "${ratios[@]}" | sort -n | sed -n "$(( (reps + 1) / 2 ))p")"
grep "Test loss" "$tmp/d1.log"
