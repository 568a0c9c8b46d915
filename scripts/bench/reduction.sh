#!/usr/bin/env bash
# Cost of the exact (reproducible) gradient reduction against the plain float32
# allreduce (`train.reduction: fast`), on 2 ranks, alternating the two modes
# REPS times in one run, for the seed model and a 784-512-256-10 MLP (535,818
# parameters) on random data. Prints samples/s of each and exact/fast.
# Usage: scripts/bench/reduction.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
scripts/bench/setup.sh >/dev/null
scripts/build.sh >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 scripts/bench/make_random_data.py "$tmp/rand.h5" 32768 784 10
cat >"$tmp/mlp.yaml" <<YAML
data: {path: $tmp/rand.h5, standardize: false}
model:
  input: [784]
  layers:
    - dense: {units: 512, activation: relu}
    - dense: {units: 256, activation: relu}
    - dense: {units: 10, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.001}
train: {epochs: 2, batch_size: 128, seed: 1}
checkpoint: {keep: 1}
YAML

# Training samples per training second over all epochs of one run.
rate() {
  /usr/bin/python3 -c '
import json, sys
ep = [r for r in map(json.loads, open(sys.argv[1])) if r["loss"] is not None]
print(round(sum(r["samples_per_s"] * r["seconds"] for r in ep) / sum(r["seconds"] for r in ep)))
' "$1/metrics.jsonl"
}

bench() {
  local name=$1
  shift
  local ex=() fa=()
  for i in $(seq "$reps"); do
    for mode in exact fast; do
      mpirun -np 2 build/dptrain train "$@" --set train.reduction=$mode \
        --run-dir "$tmp/$name-$mode-$i" >/dev/null
    done
    ex+=("$(rate "$tmp/$name-exact-$i")")
    fa+=("$(rate "$tmp/$name-fast-$i")")
    printf "%-6s rep %d: exact %8s  fast %8s  exact/fast %.3f\n" "$name" "$i" "${ex[-1]}" "${fa[-1]}" \
      "$(awk -v a="${ex[-1]}" -v b="${fa[-1]}" 'BEGIN { print a / b }')"
  done
  local me mf
  me=$(printf "%s\n" "${ex[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")
  mf=$(printf "%s\n" "${fa[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")
  printf "%-6s median: exact %s fast %s samples/s, exact/fast %.3f\n" "$name" "$me" "$mf" \
    "$(awk -v a="$me" -v b="$mf" 'BEGIN { print a / b }')"
}

bench seed configs/seed.yaml --set train.epochs=20
bench mlp "$tmp/mlp.yaml"
