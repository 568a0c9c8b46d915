#!/usr/bin/env bash
# Seed workload (20-64-32-1, adam, batch 10, 50 epochs): dptrain on one rank
# against the PyTorch replica, one core each, alternating REPS times in one run.
# Prints samples/s of both over the training loop (evaluation and checkpoints
# excluded on both sides) and their ratio; dptrain's whole-command wall time too.
# Usage: scripts/bench/seed.sh [REPS]   (REFERENCE_DIR: the PyTorch scripts)
reps=${1:-3}
source "$(dirname "$0")/common.sh"
echo "OpenBLAS kernels: $core (both)"
printf "%-4s %14s %14s %8s %12s\n" rep dptrain torch ratio dptrain_wall
ratios=()
for i in $(seq "$reps"); do
  t0=$(date +%s.%N)
  mpirun -np 1 build/dptrain train configs/seed.yaml --run-dir "$tmp/r$i" >"$tmp/d$i.log"
  t1=$(date +%s.%N)
  dp=$(rate "$tmp/r$i")
  th=$(/usr/bin/python3 "$ref/torch_seed.py" 0 | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p')
  ratio=$(ratio "$dp" "$th")
  ratios+=("$ratio")
  printf "%-4s %14s %14s %8s %11.2fs\n" "$i" "$dp" "$th" "${ratio}x" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
done
printf "median ratio: %sx\n" "$(printf "%s\n" "${ratios[@]}" | median)"
grep "Test loss" "$tmp/d1.log"
