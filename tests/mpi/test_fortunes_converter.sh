#!/usr/bin/env bash
# The fortunes converter, scripts/make_fortunes.sh, on a small fake corpus this
# test writes itself (FORTUNES_DIR): three text files of 1000 bytes each
# (every byte value occurs), next to a symlink, a *.dat, a regular *.u8 file and
# a directory, which must all be skipped:
# - /<part>/x and /y are int32 [N, T] (h5dump -H) with N = (bytes of the part - 1)
#   div T, the parts cut at floor(0.9 n) and floor(0.95 n); every x row is the
#   corpus's bytes at its window, y is x shifted by one byte, the last y of a
#   window is the first x of the next (h5dump -b, checked by the standard library
#   only, against the files the test names itself); T defaults to 64; a second
#   run writes the same bytes;
# - --chunk-rows and --compress write chunked, deflated datasets (h5dump -p)
#   with the same windows;
# - each bad input (bad T, a chunk larger than a part, a bad level, missing or empty directory, a part shorter than one
#   window, unwritable output, failed rename) exits 1 with exactly one
#   `make_fortunes: error:` line and leaves no file behind, nor changes an
#   existing one;
# - the installed package, when present, gives the 2.58 MB corpus's windows.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
CONV=$SRC/scripts/make_fortunes.sh
if ! "$PY" -c 'import numpy, h5py' 2>/dev/null; then
  echo "FAILED: the converter needs numpy and h5py for $PY: apt-get install python3-numpy python3-h5py"
  exit 1
fi
command -v h5dump >/dev/null || { echo "FAILED: h5dump missing: apt-get install hdf5-tools"; exit 1; }

# The fake corpus: file k (a, b, c) has byte j = (k*1000 + 7j) mod 256; the
# decoys hold bytes that appear nowhere else (the .u8 is a regular file here,
# unlike the package's links).
corpus=$TMP/corpus
mkdir -p "$corpus/sub"
"$PY" - "$corpus" <<'EOF'
import os, sys
d = sys.argv[1]
for k, name in enumerate(("a", "b", "c")):
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes((k * 1000 + 7 * j) % 256 for j in range(1000)))
for name in ("a.dat", "b.u8", "sub/c"):
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"DECOY" * 50)
os.symlink("a", os.path.join(d, "link"))
EOF

# verify.py DIR T: checks the raw little-endian dumps DIR/<part>_{x,y}.bin against
# the corpus a + b + c (3000 bytes) split at 2700 and 2850.
cat >"$TMP/verify.py" <<'EOF'
import array, sys
d, T = sys.argv[1], int(sys.argv[2])
data = b"".join(bytes((k * 1000 + 7 * j) % 256 for j in range(1000)) for k in range(3))
parts = {"train": data[:2700], "val": data[2700:2850], "test": data[2850:]}
bad = []
def load(name):
    a = array.array("i")
    with open(f"{d}/{name}.bin", "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little": a.byteswap()
    return a
for name, part in parts.items():
    x, y = load(name + "_x"), load(name + "_y")
    n = (len(part) - 1) // T
    if len(x) != n * T or len(y) != n * T:
        bad.append(f"{name}: {len(x)} and {len(y)} ids, want {n} windows of {T}")
        continue
    for i in range(n):
        xi, yi = list(x[i * T:(i + 1) * T]), list(y[i * T:(i + 1) * T])
        if xi != list(part[i * T:i * T + T]):
            bad.append(f"{name} row {i}: x is not bytes [{i * T}, {i * T + T}) of the part")
        if yi[:-1] != xi[1:]:
            bad.append(f"{name} row {i}: y is not x shifted by one")
        if yi[-1] != part[i * T + T]:
            bad.append(f"{name} row {i}: the last y is not the byte after the window")
        if i + 1 < n and yi[-1] != x[(i + 1) * T]:
            bad.append(f"{name} row {i}: the last y is not the next window's first x")
    if bad: break
ids = set(load("train_x")) | set(load("val_x")) | set(load("test_x"))
if min(ids) != 0 or max(ids) != 255:
    bad.append(f"ids span [{min(ids)}, {max(ids)}], want [0, 255]")
print("\n".join(bad[:10]) or f"T {T}: every window checks out")
sys.exit(1 if bad else 0)
EOF

# header H5 DATASET DIMS: int32 with those dimensions, as h5dump -H reports them.
header() {
  local h
  h=$(h5dump -H -d "$2" "$1") || return 1
  if ! grep -qF "DATATYPE  H5T_STD_I32LE" <<<"$h" || ! grep -qF "DATASPACE  SIMPLE { ( $3 ) / ( $3 ) }" <<<"$h"; then
    echo "$h"
    return 1
  fi
}

# dump H5: every dataset as a raw little-endian file in $TMP/dump.
dump() {
  rm -rf "$TMP/dump" && mkdir "$TMP/dump"
  local p v
  for p in train val test; do
    for v in x y; do
      h5dump -d "/$p/$v" -b LE -o "$TMP/dump/${p}_$v.bin" "$1" >/dev/null || return 1
    done
  done
}

mkdir "$TMP/out"
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/out/f.h5" 8 >"$TMP/good.log" 2>&1
check "the fake corpus converts with T 8" test $? -eq 0
cat "$TMP/good.log"
check "the decoys are skipped: 3 files, 3000 bytes" grep -qF "3 files, 3000 bytes" "$TMP/good.log"
# 2700, 150 and 150 bytes: (2700 - 1) div 8 = 337 windows, (150 - 1) div 8 = 18.
check "/train/x int32 [337, 8]" header "$TMP/out/f.h5" /train/x "337, 8"
check "/train/y int32 [337, 8]" header "$TMP/out/f.h5" /train/y "337, 8"
check "/val/x int32 [18, 8]" header "$TMP/out/f.h5" /val/x "18, 8"
check "/val/y int32 [18, 8]" header "$TMP/out/f.h5" /val/y "18, 8"
check "/test/x int32 [18, 8]" header "$TMP/out/f.h5" /test/x "18, 8"
check "/test/y int32 [18, 8]" header "$TMP/out/f.h5" /test/y "18, 8"
check "dump the datasets" dump "$TMP/out/f.h5"
check "x is the corpus's windows, y the next bytes" "$PY" "$TMP/verify.py" "$TMP/dump" 8
check "no temporary file left" test "$(ls -A "$TMP/out")" = f.h5
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/again.h5" 8 >/dev/null 2>&1
check "a second run writes the same bytes" cmp "$TMP/out/f.h5" "$TMP/again.h5"

FORTUNES_DIR=$corpus "$CONV" --out="$TMP/t64.h5" >/dev/null 2>&1
check "T defaults to 64" test $? -eq 0
check "T 64: /train/x [42, 64]" header "$TMP/t64.h5" /train/x "42, 64"
check "T 64: /val/y [2, 64]" header "$TMP/t64.h5" /val/y "2, 64"
t64() { dump "$TMP/t64.h5" && "$PY" "$TMP/verify.py" "$TMP/dump" 64; }
check "T 64: x is the corpus's windows, y the next bytes" t64

# Chunked and deflated: the layout h5dump -p reports, and the same windows.
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/z.h5" --chunk-rows 5 --compress 6 8 >/dev/null 2>&1
check "--chunk-rows 5 --compress 6 converts" test $? -eq 0
layout() { # H5 DATASET WANT...: h5dump -p -H of the dataset contains each WANT
  local h w
  h=$(h5dump -p -H -d "$2" "$1") || return 1
  for w in "${@:3}"; do grep -qF "$w" <<<"$h" || { echo "no '$w' in: $h"; return 1; }; done
}
check "/train/x in chunks of 5 windows, deflate level 6" layout "$TMP/z.h5" /train/x \
  "CHUNKED ( 5, 8 )" "COMPRESSION DEFLATE { LEVEL 6 }"
check "/val/y in chunks of 5 windows, deflated" layout "$TMP/z.h5" /val/y "CHUNKED ( 5, 8 )" "DEFLATE"
zrows() { dump "$TMP/z.h5" && "$PY" "$TMP/verify.py" "$TMP/dump" 8; }
check "the chunked, deflated file holds the same windows" zrows
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/z1.h5" --compress 1 8 >/dev/null 2>&1
check "--compress alone: chunks of min(64, rows) windows" layout "$TMP/z1.h5" /train/x "CHUNKED ( 64, 8 )"
check "--compress alone: a part of 18 windows in one chunk" layout "$TMP/z1.h5" /test/x "CHUNKED ( 18, 8 )"

# bad NAME EXPECT DIR ARGS...: the converter on corpus DIR exits 1 with one error
# line containing EXPECT, prints nothing else, and leaves $TMP/bad-NAME empty.
bad() {
  local name=$1 expect=$2 dir=$3 out=$TMP/bad-$1
  shift 3
  mkdir "$out"
  FORTUNES_DIR=$dir "$CONV" --out "$out/f.h5" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
  local rc=$? line
  line=$(cat "$TMP/bad.err")
  if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/bad.err")" -eq 1 ] && [ ! -s "$TMP/bad.out" ] &&
     [[ $line == "make_fortunes: error: "*"$expect"* ]] && [ -z "$(ls -A "$out")" ]; then
    check "$name" true; echo "$line"
  else
    echo "--- $name: rc=$rc; stdout, stderr, output dir:"
    cat "$TMP/bad.out" "$TMP/bad.err"; ls -A "$out"
    check "$name" false
  fi
}
mkdir "$TMP/decoys"
cp "$corpus/a.dat" "$corpus/b.u8" "$TMP/decoys/"
bad "T 0" "T: expected a window length" "$corpus" 0
bad "T not a number" "got 'abc'" "$corpus" abc
bad "two window lengths" "more than one window length" "$corpus" 8 9
bad "unknown option" "--frobnicate: unknown option" "$corpus" --frobnicate
bad "a chunk larger than a part" "--chunk-rows: 19 rows per chunk, but /val has only 18 rows" \
  "$corpus" --chunk-rows 19 8
bad "chunk rows not a number" "--chunk-rows: expected a row count >= 1, got '1e3'" "$corpus" \
  --chunk-rows 1e3 8
bad "level out of range" "--compress: expected a deflate level 0 to 9, got -1" "$corpus" \
  --compress=-1 8
bad "level without a value" "--compress: needs a value" "$corpus" --compress
bad "missing directory" "$TMP/nosuch: No such file or directory" "$TMP/nosuch" 8
bad "no text files" "$TMP/decoys: no text files" "$TMP/decoys" 8
bad "a part shorter than one window" "the val part has 150 bytes, fewer than one window of T+1 = 151" \
  "$corpus" 150
touch "$TMP/afile"
bad "unwritable output" "$TMP/afile/sub/f.h5: cannot write" "$corpus" --out "$TMP/afile/sub/f.h5" 8

# The rename into place fails (a directory holds the name): the temporary file goes.
mkdir -p "$TMP/dirout/f.h5/x"
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/dirout/f.h5" 8 >/dev/null 2>"$TMP/bad.err"
check "failed rename exits 1 with one error line naming the output" \
  test $? -eq 1 -a "$(grep -c "^make_fortunes: error: $TMP/dirout/f.h5: " "$TMP/bad.err")" -eq 1 \
  -a "$(wc -l <"$TMP/bad.err")" -eq 1
cat "$TMP/bad.err"
check "failed rename leaves no temporary file" test "$(ls -A "$TMP/dirout")" = f.h5

# A failed run leaves a good file already at the output path byte-identical.
cp "$TMP/out/f.h5" "$TMP/keep.h5"
FORTUNES_DIR=$corpus "$CONV" --out "$TMP/out/f.h5" 400 >/dev/null 2>&1
check "a failed run exits 1" test $? -eq 1
check "a failed run leaves the existing output as it was" cmp "$TMP/out/f.h5" "$TMP/keep.h5"
check "and no temporary file" test "$(ls -A "$TMP/out")" = f.h5

# The installed package, when present: about 2.58 MB, cut as the header says.
real=/usr/share/games/fortunes
if [ -d "$real" ]; then
  n=$(find "$real" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' -printf '%s\n' |
      awk '{ s += $1 } END { print s }')
  (unset FORTUNES_DIR; "$CONV" --out "$TMP/real.h5" >"$TMP/real.log" 2>&1)
  check "the fortunes package converts" test $? -eq 0
  cat "$TMP/real.log"
  check "its corpus is about 2.58 MB" test "$n" -gt 2500000 -a "$n" -lt 2650000
  tr=$(((n * 9 / 10 - 1) / 64)) va=$(((n * 19 / 20 - n * 9 / 10 - 1) / 64))
  check "fortunes: /train/x [$tr, 64]" header "$TMP/real.h5" /train/x "$tr, 64"
  check "fortunes: /val/y [$va, 64]" header "$TMP/real.h5" /val/y "$va, 64"
else
  echo "skipped: $real absent (Debian package fortunes)"
fi
finish
