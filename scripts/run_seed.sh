#!/usr/bin/env bash
# Quick start, part 1: install, build, and train the seed example on 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# Open MPI refuses to start as root unless told that it is meant.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpirun -np 2 build/dptrain train configs/seed.yaml "$@"
