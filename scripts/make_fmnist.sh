#!/usr/bin/env bash
# Makes datasets/fashion_mnist.h5 (Fashion-MNIST in dptrain's layout) from the
# Debian package dataset-fashion-mnist, installing it and python3-numpy and
# python3-h5py first when they are missing (that part needs root).
# Arguments go to scripts/make_fmnist_data.py: --src DIR, --out PATH, --limit N,
# --dtype uint8|float32 (default uint8: raw pixels, read with data.scale: 1/255),
# --chunk-rows N, --compress LEVEL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=/usr/share/datasets/fashion-mnist
own_src=0
for a in "$@"; do
  case $a in --src | --src=*) own_src=1 ;; esac
done
missing=()
[ "$own_src" = 1 ] || [ -d "$src" ] || missing+=(dataset-fashion-mnist)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || missing+=(python3-numpy)
/usr/bin/python3 -c 'import h5py' 2>/dev/null || missing+=(python3-h5py)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "make_fmnist: error: missing ${missing[*]}: run as root, or apt-get install them" >&2
    exit 1
  fi
  echo "make_fmnist: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The default output is in the repository whatever the working directory; an
# --out given here comes later and wins.
exec /usr/bin/python3 "$root/scripts/make_fmnist_data.py" --out "$root/datasets/fashion_mnist.h5" "$@"
