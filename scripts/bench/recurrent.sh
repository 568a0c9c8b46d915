#!/usr/bin/env bash
# simple_rnn and gru forward and backward on their own against sgemm on the
# same core (scripts/bench/recurrent.c), at the shapes of the fortunes models.
# Usage: scripts/bench/recurrent.sh [B T F UNITS [REPS]]
source "$(dirname "$0")/common.sh"
cc -O2 -Iinclude -Isrc scripts/bench/recurrent.c build/libdptrain.a -lopenblas -lm \
  -o "$tmp/recurrent"
echo "sgemm 1024^3, 1 thread: $peak GFLOP/s (OpenBLAS kernels: $core)"
for type in simple_rnn gru; do "$tmp/recurrent" "$type" "$@"; done
