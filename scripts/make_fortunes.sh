#!/usr/bin/env bash
# Makes datasets/fortunes.h5, byte-level token windows for the sequence models
# (docs/DESIGN.md §4), from the text files of Debian's `fortunes` package,
# installing it and python3-numpy and python3-h5py first when they are missing
# (that part needs root).
#
# Usage: scripts/make_fortunes.sh [--out PATH] [--chunk-rows N] [--compress LEVEL] [T]
#   T                 window length, default 64
#   --out PATH        output file, default datasets/fortunes.h5 in the repository
#   --chunk-rows N    store every dataset in chunks of N rows (at most each part's rows)
#   --compress LEVEL  deflate the chunks at level 0..9 (chunks of min(64, rows)
#                     rows unless --chunk-rows says otherwise)
#   FORTUNES_DIR=DIR in the environment reads DIR instead of
#   /usr/share/games/fortunes (and then installs no package).
#
# The corpus is every regular file of the directory that is not a symlink and
# not *.dat or *.u8 (the package's index files and its links to the UTF-8
# copies), sorted by name and concatenated (about 2.58 MB). Its n bytes are
# split at floor(0.9 n) and floor(0.95 n) into train, val and test; each part
# is cut into windows of T+1 bytes at stride T, and
#   /<part>/x int32 [N, T]  the window's first T bytes (token ids 0..255)
#   /<part>/y int32 [N, T]  the next byte at each position (the window shifted by one)
# Errors are one line `make_fortunes: error: <where>: <what>` on stderr and exit
# status 1; the file is written under a temporary name in the output's directory
# and renamed into place, so a failed run leaves no partial file and never
# replaces a good one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() {
  echo "make_fortunes: error: $*" >&2
  exit 1
}

out=$root/datasets/fortunes.h5
T=
chunk_rows=
compress=
while [ $# -gt 0 ]; do
  case $1 in
  --chunk-rows | --compress)
    [ $# -ge 2 ] || die "$1: needs a value"
    if [ "$1" = --chunk-rows ]; then chunk_rows=$2; else compress=$2; fi
    shift 2
    ;;
  --chunk-rows=*)
    chunk_rows=${1#--chunk-rows=}
    shift
    ;;
  --compress=*)
    compress=${1#--compress=}
    shift
    ;;
  --out)
    [ $# -ge 2 ] || die "--out: needs a path"
    out=$2
    shift 2
    ;;
  --out=*)
    out=${1#--out=}
    shift
    ;;
  -*) die "$1: unknown option (usage: make_fortunes.sh [--out PATH] [--chunk-rows N] [--compress LEVEL] [T])" ;;
  *)
    [ -z "$T" ] || die "$1: more than one window length given"
    T=$1
    shift
    ;;
  esac
done
T=${T:-64}
[[ $T =~ ^[1-9][0-9]{0,5}$ ]] || die "T: expected a window length from 1 to 999999, got '$T'"
[ -n "$out" ] || die "--out: needs a path"

src=${FORTUNES_DIR:-/usr/share/games/fortunes}
missing=()
[ -n "${FORTUNES_DIR:-}" ] || [ -d "$src" ] || missing+=(fortunes)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || missing+=(python3-numpy)
/usr/bin/python3 -c 'import h5py' 2>/dev/null || missing+=(python3-h5py)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root, or apt-get install them"
  echo "make_fortunes: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

exec /usr/bin/python3 - "$src" "$out" "$T" "$root/scripts" "$chunk_rows" "$compress" <<'EOF'
import os, sys

sys.path.insert(0, sys.argv[4])
from h5_atomic import StorageError, WriteError, check_storage, parse_storage, write_splits

PROG = "make_fortunes"
src, out, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
chunk_text, compress_text = sys.argv[5] or None, sys.argv[6] or None


def fail(where, what):
    print(f"{PROG}: error: {where}: {what}", file=sys.stderr)
    sys.exit(1)


def corpus():
    """The bytes of the text files of src, sorted by name, and their count."""
    try:
        entries = list(os.scandir(src))
    except OSError as e:
        fail(src, e.strerror or str(e))
    # Symlinks (the package's *.u8 links) would count a file twice; *.dat are
    # strfile's binary indexes.
    names = sorted((e.name for e in entries
                    if not e.is_symlink() and e.is_file(follow_symlinks=False)
                    and not e.name.endswith((".dat", ".u8"))), key=os.fsencode)
    if not names:
        fail(src, "no text files (regular files other than *.dat and *.u8)")
    parts = []
    for name in names:
        path = os.path.join(src, name)
        try:
            with open(path, "rb") as f:
                parts.append(f.read())
        except OSError as e:
            fail(path, e.strerror or str(e))
    return b"".join(parts), len(names)


def windows(part, name, np):
    """x, y int32 [N, T] of one part: windows of T+1 bytes at stride T."""
    n = len(part)
    count = (n - 1) // T if n > T else 0
    if count == 0:
        fail(src, f"the {name} part has {n} bytes, fewer than one window of T+1 = {T + 1}; "
                  "use a smaller T or a larger corpus")
    a = np.frombuffer(part, np.uint8)
    idx = np.arange(count)[:, None] * T + np.arange(T + 1)[None, :]
    w = a[idx].astype("<i4")
    return np.ascontiguousarray(w[:, :T]), np.ascontiguousarray(w[:, 1:])


def main():
    try:
        import h5py  # noqa: F401
        import numpy as np
    except ImportError as e:
        fail(e.name or "python", "not importable: apt-get install python3-numpy python3-h5py")
    try:
        chunk_rows, level = parse_storage(chunk_text, compress_text)
    except StorageError as e:
        fail(*str(e).split(": ", 1))
    data, files = corpus()
    n = len(data)
    # floor(0.9 n) and floor(0.95 n) in integer arithmetic, exact for any n.
    cut = [0, n * 9 // 10, n * 19 // 20, n]
    splits = [(name, windows(data[cut[i]:cut[i + 1]], name, np))
              for i, name in enumerate(("train", "val", "test"))]
    try:
        check_storage(splits, chunk_rows, level)
    except StorageError as e:
        fail(*str(e).split(": ", 1))
    try:
        write_splits(out, splits, chunk_rows, level)
    except WriteError as e:
        fail(out, str(e))
    counts = ", ".join(f"{name} {x.shape[0]}" for name, (x, _) in splits)
    print(f"{PROG}: wrote {out}: {files} files, {n} bytes; windows of T = {T}: {counts}")


try:
    main()
except MemoryError:
    print(f"{PROG}: error: out of memory", file=sys.stderr)
    sys.exit(1)
except KeyboardInterrupt:
    sys.exit(130)
EOF
