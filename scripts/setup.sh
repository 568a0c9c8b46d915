#!/usr/bin/env bash
# Installs the Debian packages dptrain needs to build, run and test (as root).
# Packages already present are left alone, so a second run costs nothing.
set -euo pipefail
packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          hdf5-tools libopenblas-dev libcunit1-dev libyaml-dev python3-numpy python3-h5py
          clang libclang-rt-14-dev valgrind procps cppcheck clang-format fortunes
          libonnx-dev protobuf-c-compiler libprotobuf-c-dev python3-onnx python3-matplotlib
          slurm-wlm munge libpmix-dev)
# ThreadSanitizer's runtime (libtsan2) comes with gcc through build-essential;
# pkg-config and binutils' nm serve the install test; fortunes is the text the
# language-model configs train on, which the converter's test also converts;
# python3-matplotlib draws scripts/plot_metrics.py's curves; slurm-wlm and
# munge run tests/slurm's cluster (nothing is started at install), and
# libpmix-dev has the unversioned libpmix.so that Slurm's pmix plugin (srun
# --mpi=pmix) opens.
# The ONNX export is built with protobuf-c from libonnx-dev's onnx.proto; its
# test checks the files with python3-onnx and runs them with ONNX Runtime,
# which is not a Debian package: npm's onnxruntime-node carries its Linux
# binary (installed below). A Node.js already on the PATH (with its npm) serves.
# python3-yaml reads the sweep grids (scripts/sweep_grid.py).
packages+=(python3-yaml)
if ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for tests/mpi/test_onnx_export.sh, at the version package-lock.json
# pins, into tests/onnx/node_modules. --ignore-scripts: its install script
# would download more from outside the npm registry; the package already holds
# the Linux library.
ort_dir=$(cd "$(dirname "$0")/../tests/onnx" && pwd)
if [ ! -f "$ort_dir/node_modules/onnxruntime-node/package.json" ]; then
  echo "setup: installing onnxruntime-node into $ort_dir/node_modules"
  (cd "$ort_dir" && npm ci --ignore-scripts --no-audit --no-fund)
fi
