#!/usr/bin/env bash
# One recurrent layer alone (scripts/bench/recurrent.c): forward and backward
# ms and GFLOP/s, and the fraction of sgemm's GFLOP/s on the same core, at the
# char-LM's and the fortunes models' shape by default.
# Usage: scripts/bench/recurrent.sh [simple_rnn|gru|lstm ...] [-- B T F UNITS [REPS]]
#        (no type: all three)
source "$(dirname "$0")/common.sh"
types=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do types+=("$1") && shift; done
[ $# -gt 0 ] && shift
[ ${#types[@]} -gt 0 ] || types=(simple_rnn gru lstm)
mpicc -O2 -march=native -Iinclude -Isrc scripts/bench/recurrent.c build/libdptrain.a \
  -lhdf5_openmpi -lopenblas -lyaml -lm -o "$tmp/recurrent"
echo "sgemm 1024^3, 1 thread: $peak GFLOP/s (OpenBLAS kernels: $core)"
for type in "${types[@]}"; do
  "$tmp/recurrent" "$type" "$@" | tee "$tmp/out"
  gflops=$(awk '/^both/ { print $(NF-3) }' "$tmp/out")
  echo "$type/sgemm $(ratio "$gflops" "$peak")"
done
