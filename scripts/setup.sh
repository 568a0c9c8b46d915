#!/usr/bin/env bash
# Installs the Debian packages dptrain needs to build, run and test (as root).
# Packages already present are left alone, so a second run costs nothing.
set -euo pipefail
packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          hdf5-tools libopenblas-dev libcunit1-dev libyaml-dev python3-numpy python3-h5py
          clang libclang-rt-14-dev valgrind procps cppcheck clang-format fortunes
          python3-matplotlib)
# ThreadSanitizer's runtime (libtsan2) comes with gcc through build-essential;
# pkg-config and binutils' nm serve the install test; fortunes is the text the
# language-model configs train on, which the converter's test also converts;
# python3-matplotlib draws scripts/plot_metrics.py's curves.
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
