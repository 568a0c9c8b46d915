#!/usr/bin/env bash
# Cost of the exact (reproducible) gradient reduction against the plain float32
# allreduce (`train.reduction: fast`), on 2 ranks, alternating the modes REPS
# times in one run, for the seed model and a 784-512-256-10 MLP (535,818
# parameters) on random data.
# Usage: scripts/bench/reduction.sh [REPS]
reps=${1:-3}
source "$(dirname "$0")/common.sh"
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

# bench NAME ARGS...: REPS rounds of five 2-rank runs: fast and exact with two
# shards (the default; exact is then the float path too: one commutative
# addition), fast and exact with four shards (exact: the int64 fixed-point
# sum), all with the ranks' shared memory, and exact with four shards over the
# MPI allreduce. Prints each round's samples/s and the medians over rounds of
# exact/fast at S=2 and S=4 and of shared/MPI for the exact S=4 sum.
bench() {
  local name=$1
  shift
  local r2=() r4=() rs=()
  local modes=("fast" "exact" "fast --set data.shards=4" "exact --set data.shards=4"
               "exact --set data.shards=4 --set train.shared_memory=false")
  for i in $(seq "$reps"); do
    local rates=()
    for mode in "${modes[@]}"; do
      local dir=$tmp/$name-${mode//[ =.-]/}-$i
      # shellcheck disable=SC2086
      mpirun -np 2 build/dptrain train "$@" --set train.reduction=$mode --run-dir "$dir" >/dev/null
      rates+=("$(rate "$dir")")
    done
    r2+=("$(ratio "${rates[1]}" "${rates[0]}")")
    r4+=("$(ratio "${rates[3]}" "${rates[2]}")")
    rs+=("$(ratio "${rates[3]}" "${rates[4]}")")
    printf "%-5s round %d: S=2 fast %7s exact %7s (%s) | S=4 fast %7s exact %7s (%s) | exact S=4 over MPI %7s samples/s\n" \
      "$name" "$i" "${rates[0]}" "${rates[1]}" "${r2[-1]}" "${rates[2]}" "${rates[3]}" "${r4[-1]}" "${rates[4]}"
  done
  printf "%-5s median exact/fast: S=2 %s, S=4 %s; exact S=4 shared memory/MPI %s\n" "$name" \
    "$(printf "%s\n" "${r2[@]}" | median)" "$(printf "%s\n" "${r4[@]}" | median)" \
    "$(printf "%s\n" "${rs[@]}" | median)"
}

bench seed configs/seed.yaml --set train.epochs=20
bench mlp "$tmp/mlp.yaml"
