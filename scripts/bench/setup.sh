#!/usr/bin/env bash
# Installs what the benchmarks need beyond the build: PyTorch and sklearn from
# Debian, used only as the side-by-side baseline (never by the tests).
set -euo pipefail
"$(dirname "$0")/../setup.sh"
for p in python3-torch python3-sklearn python3-h5py time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=" $p"
done
if [ -n "${missing:-}" ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
