#!/usr/bin/env bash
# The lstm layer alone: forward and backward ms and GFLOP/s at the char-LM's
# shape (scripts/bench/lstm_layer.c), and the fraction of sgemm's GFLOP/s.
# Usage: scripts/bench/lstm_layer.sh [B T F UNITS REPS]
source "$(dirname "$0")/common.sh"
mpicc -O2 -march=native -Iinclude -Isrc scripts/bench/lstm_layer.c build/libdptrain.a \
  -lhdf5_openmpi -lopenblas -lyaml -lm -o "$tmp/lstm_layer"
"$tmp/lstm_layer" "$@" | tee "$tmp/out"
gflops=$(awk '/^both/ { print $(NF-3) }' "$tmp/out")
echo "sgemm 1024^3: $peak GFLOP/s; lstm/sgemm $(ratio "$gflops" "$peak")"
