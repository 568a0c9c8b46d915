#!/usr/bin/env bash
# Per-layer forward and backward milliseconds of one training step, and the
# optimizer's, for a config's model at a batch size (scripts/bench/layers.c):
# where the compute goes, to pick what to make faster.
# Usage: scripts/bench/layers.sh CONFIG [BATCH] [REPS]
source "$(dirname "$0")/common.sh"
mpicc -O2 -march=native -Iinclude -Isrc scripts/bench/layers.c build/libdptrain.a -lhdf5_openmpi \
  -lopenblas -lyaml -lm -o "$tmp/layers"
"$tmp/layers" "$@"
