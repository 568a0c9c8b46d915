#!/usr/bin/env bash
# The Fashion-MNIST converter, scripts/make_fmnist_data.py, on tiny IDX files this
# test writes itself (60 train and 10 test images whose pixels name the image):
# - the real package, when installed: the whole set's uint8 file is at most a
#   quarter of its float32 file's size;
# - a good set gives /train/x uint8 [60,1,28,28], /train/y int32 [60], /test
#   alike with 10 rows (h5dump -H); every output row is its source image's
#   pixels with its own label, the training rows are a shuffled permutation of
#   the sources, the test rows keep their order (h5dump -b, checked by the
#   standard library only); a second run writes the same bytes; --limit cuts
#   both splits;
# - --dtype float32 writes the rows as image / 255 in float32, bit for bit what
#   the uint8 file gives as pixel * (1/255) in double rounded to float (dptrain's
#   data.scale: 1/255);
# - --chunk-rows and --compress write chunked, deflated datasets (h5dump -p)
#   whose values are the contiguous file's; a chunk larger than a split, a bad
#   level or row count is one error line;
# - each bad input (wrong magic, truncated data, truncated or absent gzip stream,
#   image/label count mismatch, wrong image size, label out of range, missing
#   file, unwritable output, failed rename) exits 1 with exactly one `make_fmnist_data: error:`
#   line naming the file and leaves no file behind, nor touches an existing one.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
CONV=$SRC/scripts/make_fmnist_data.py
if ! "$PY" -c 'import numpy, h5py' 2>/dev/null; then
  echo "FAILED: the converter needs numpy and h5py for $PY: apt-get install python3-numpy python3-h5py"
  exit 1
fi
command -v h5dump >/dev/null || { echo "FAILED: h5dump missing: apt-get install hdf5-tools"; exit 1; }

# mkidx.py DIR VARIANT: writes the four .gz files of a tiny Fashion-MNIST into DIR,
# with one defect named by VARIANT (good: none). Image i of train has pixel j =
# (7i + j) mod 256, so its first pixel names it (7 is invertible mod 256) and the
# set covers 0 and 255; train label i is i*i mod 10 (an uneven multiset). Test
# image k has pixel j = (11k + 3j) mod 256 and label (7k + 1) mod 10.
cat >"$TMP/mkidx.py" <<'EOF'
import gzip, os, struct, sys
d, variant = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
def train_img(i): return bytes((7 * i + j) % 256 for j in range(784))
def test_img(k): return bytes((11 * k + 3 * j) % 256 for j in range(784))
def idx(magic, dims, data):
    return struct.pack(">I", magic) + struct.pack(">%dI" % len(dims), *dims) + data
def put(name, raw, gz=True):
    with open(os.path.join(d, name), "wb") as f:
        f.write(gzip.compress(raw, mtime=0) if gz else raw)
ntr, nte, h = 60, 10, 28
tr = b"".join(train_img(i) for i in range(ntr))
te = b"".join(test_img(k) for k in range(nte))
ytr = bytes(i * i % 10 for i in range(ntr))
yte = bytes((7 * k + 1) % 10 for k in range(nte))
trimg = idx(0x803, (ntr, h, 28), tr)
if variant == "badmagic": trimg = idx(0x802, (ntr, h, 28), tr)[:8] + trimg[8:]
if variant == "size27": trimg = idx(0x803, (ntr, 27, 28), tr[:ntr * 27 * 28])
teimg = idx(0x803, (nte, h, 28), te)
if variant == "truncdata": teimg = teimg[:-100]
if variant == "trailing": teimg = teimg + b"\0" * 5
trlab = idx(0x801, (ntr,), ytr)
if variant == "count": trlab = idx(0x801, (ntr - 1,), ytr[:-1])
if variant == "label10": trlab = trlab[:8 + 17] + b"\x0a" + trlab[8 + 18:]
put("train-images-idx3-ubyte.gz", trimg)
put("train-labels-idx1-ubyte.gz", trlab, gz=variant != "notgz")
put("t10k-images-idx3-ubyte.gz", teimg)
put("t10k-labels-idx1-ubyte.gz", idx(0x801, (nte,), yte))
if variant == "truncgz":
    p = os.path.join(d, "train-images-idx3-ubyte.gz")
    z = open(p, "rb").read()
    open(p, "wb").write(z[:len(z) // 2])
if variant == "missing": os.remove(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
EOF

# verify.py DIR NTRAIN NTEST KIND: checks the raw little-endian dumps
# DIR/{trx,try,tex,tey}.bin of a conversion of the good set limited to NTRAIN /
# NTEST rows; KIND u8 (pixels) or f32 (pixels / 255).
cat >"$TMP/verify.py" <<'EOF'
import array, sys
d, ntr, nte, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
unit = 1.0 if kind == "u8" else 1 / 255
def load(name, code):
    a = array.array(code)
    with open(f"{d}/{name}.bin", "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little": a.byteswap()
    return a
xcode = "B" if kind == "u8" else "f"
trx, try_, tex, tey = load("trx", xcode), load("try", "i"), load("tex", xcode), load("tey", "i")
bad = []
if (len(trx), len(try_), len(tex), len(tey)) != (ntr * 784, ntr, nte * 784, nte):
    sys.exit(f"sizes {len(trx)} {len(try_)} {len(tex)} {len(tey)}")
for name, x in (("train", trx), ("test", tex)):
    if min(x) != 0 or max(x) != 255 * unit:
        bad.append(f"{name}/x spans [{min(x)}, {max(x)}], want exactly [0, {255 * unit}]")
def pixels(x, r): return [v / unit for v in x[r * 784:(r + 1) * 784]]
def same(got, want): return all(abs(g - w) < 1e-3 for g, w in zip(got, want))
inv7 = pow(7, -1, 256)
src = []
for r in range(ntr):
    p = pixels(trx, r)
    i = round(p[0]) * inv7 % 256
    src.append(i)
    if i >= ntr or not same(p, [(7 * i + j) % 256 for j in range(784)]):
        bad.append(f"train row {r} is no source image / 255"); continue
    if try_[r] != i * i % 10:
        bad.append(f"train row {r} (image {i}) has label {try_[r]}, want {i * i % 10}")
if sorted(src) != list(range(ntr)):
    bad.append(f"train rows are not a permutation of the {ntr} sources: {src}")
if src == list(range(ntr)):
    bad.append("train rows are in the source order, not shuffled")
if sorted(try_) != sorted(i * i % 10 for i in range(ntr)):
    bad.append("train label multiset changed")
for k in range(nte):
    if not same(pixels(tex, k), [(11 * k + 3 * j) % 256 for j in range(784)]):
        bad.append(f"test row {k} is not test image {k} / 255")
    if tey[k] != (7 * k + 1) % 10:
        bad.append(f"test row {k} has label {tey[k]}, want {(7 * k + 1) % 10}")
print("\n".join(bad[:10]) or f"{ntr} train rows (sources {src[:8]}...), {nte} test rows check out")
sys.exit(1 if bad else 0)
EOF

# header H5 DATASET TYPE DIMS: the dataset's type and shape as h5dump -H reports them.
header() {
  local h
  h=$(h5dump -H -d "$2" "$1") || return 1
  if ! grep -qF "DATATYPE  $3" <<<"$h" || ! grep -qF "DATASPACE  SIMPLE { ( $4 ) / ( $4 ) }" <<<"$h"; then
    echo "$h"
    return 1
  fi
}

# dump H5: the four datasets as raw little-endian files in $TMP/dump, then verify.
dump() {
  rm -rf "$TMP/dump" && mkdir "$TMP/dump"
  local ds
  for ds in train/x:trx train/y:try test/x:tex test/y:tey; do
    h5dump -d "/${ds%%:*}" -b LE -o "$TMP/dump/${ds##*:}.bin" "$1" >/dev/null || return 1
  done
}

"$PY" "$TMP/mkidx.py" "$TMP/good" good || { echo "FAILED: writing the IDX files"; exit 1; }
mkdir "$TMP/out"
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/out/f.h5" >"$TMP/good.log" 2>&1
check "good set converts" test $? -eq 0
cat "$TMP/good.log"
check "/train/x uint8 [60,1,28,28]" header "$TMP/out/f.h5" /train/x H5T_STD_U8LE "60, 1, 28, 28"
check "/train/y int32 [60]" header "$TMP/out/f.h5" /train/y H5T_STD_I32LE "60"
check "/test/x uint8 [10,1,28,28]" header "$TMP/out/f.h5" /test/x H5T_STD_U8LE "10, 1, 28, 28"
check "/test/y int32 [10]" header "$TMP/out/f.h5" /test/y H5T_STD_I32LE "10"
check "dump the datasets" dump "$TMP/out/f.h5"
check "rows are the images' pixels with their labels; train shuffled, test in order" \
  "$PY" "$TMP/verify.py" "$TMP/dump" 60 10 u8
check "no temporary file left" test "$(ls -A "$TMP/out")" = f.h5
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/again.h5" >/dev/null 2>&1
check "a second run writes the same bytes" cmp "$TMP/out/f.h5" "$TMP/again.h5"

"$PY" "$CONV" --src "$TMP/good" --out "$TMP/lim.h5" --limit 30 >/dev/null 2>&1
check "--limit 30 converts" test $? -eq 0
check "--limit 30: train [30,1,28,28]" header "$TMP/lim.h5" /train/x H5T_STD_U8LE "30, 1, 28, 28"
check "--limit 30: test [5,1,28,28]" header "$TMP/lim.h5" /test/x H5T_STD_U8LE "5, 1, 28, 28"
limited() { dump "$TMP/lim.h5" && "$PY" "$TMP/verify.py" "$TMP/dump" 30 5 u8; }
check "--limit 30: the first 30 / 5 source rows, train shuffled" limited

# --dtype float32: the older layout, image / 255.
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/f32.h5" --dtype float32 >/dev/null 2>&1
check "--dtype float32 converts" test $? -eq 0
check "--dtype float32: /train/x float32 [60,1,28,28]" header "$TMP/f32.h5" /train/x H5T_IEEE_F32LE "60, 1, 28, 28"
f32rows() { dump "$TMP/f32.h5" && "$PY" "$TMP/verify.py" "$TMP/dump" 60 10 f32; }
check "--dtype float32: rows are images/255 in [0,1], train shuffled alike" f32rows
# The uint8 file read as pixel * (1/255) in double, rounded once to float32 (the
# reader's data.scale), against the float32 file: the same bits.
same_as_f32() {
  "$PY" - "$TMP/out/f.h5" "$TMP/f32.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as u, h5py.File(sys.argv[2], "r") as f:
    for s in ("train", "test"):
        got = (u[f"/{s}/x"][:].astype(np.float64) * (1 / 255)).astype(np.float32)
        want = f[f"/{s}/x"][:]
        if got.tobytes() != want.tobytes():
            sys.exit(f"{s}: {int((got != want).sum())} values differ")
print("uint8 * (1/255) == float32 file, bit for bit")
EOF
}
check "uint8 * (1/255) gives the float32 file's bits" same_as_f32

# Chunked and deflated: the layout h5dump reports, and the contiguous file's values.
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/z.h5" --chunk-rows 7 --compress 4 >/dev/null 2>&1
check "--chunk-rows 7 --compress 4 converts" test $? -eq 0
layout() { # H5 DATASET WANT...: h5dump -p -H of the dataset contains each WANT
  local h w
  h=$(h5dump -p -H -d "$2" "$1") || return 1
  for w in "${@:3}"; do grep -qF "$w" <<<"$h" || { echo "no '$w' in: $h"; return 1; }; done
}
check "/train/x in chunks of 7 rows, deflate level 4" layout "$TMP/z.h5" /train/x \
  "CHUNKED ( 7, 1, 28, 28 )" "COMPRESSION DEFLATE { LEVEL 4 }"
check "/test/y in chunks of 7 rows, deflated" layout "$TMP/z.h5" /test/y "CHUNKED ( 7 )" "DEFLATE"
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/z1.h5" --compress 1 >/dev/null 2>&1
check "--compress alone: chunks of min(64, rows) rows" layout "$TMP/z1.h5" /train/x \
  "CHUNKED ( 60, 1, 28, 28 )" "COMPRESSION DEFLATE { LEVEL 1 }"
same_values() {
  local a b ds
  for ds in /train/x /train/y /test/x /test/y; do
    a=$(h5dump -d "$ds" -y -w 0 "$TMP/out/f.h5" | grep -v "FILENAME\|HDF5 \"") || return 1
    b=$(h5dump -d "$ds" -y -w 0 "$TMP/z.h5" | grep -v "FILENAME\|HDF5 \"") || return 1
    [ "$(sed -n '/DATA {/,$p' <<<"$a")" = "$(sed -n '/DATA {/,$p' <<<"$b")" ] || { echo "$ds differs"; return 1; }
  done
}
check "the chunked, deflated file holds the contiguous file's values" same_values
check "and is smaller" test "$(stat -c %s "$TMP/z.h5")" -lt "$(stat -c %s "$TMP/out/f.h5")"

# bad VARIANT FILE EXPECT: the converter on the set with that defect exits 1 with one
# error line naming FILE and containing EXPECT, and leaves its output directory as it was.
bad() {
  local variant=$1 file=$2 expect=$3 out=$TMP/bad-$1
  shift 3
  mkdir "$out"
  "$PY" "$TMP/mkidx.py" "$TMP/$variant" "$variant"
  "$PY" "$CONV" --src "$TMP/$variant" --out "$out/f.h5" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
  local rc=$? line
  line=$(cat "$TMP/bad.err")
  if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/bad.err")" -eq 1 ] && [ ! -s "$TMP/bad.out" ] &&
     [[ $line == "make_fmnist_data: error: "*"$file"*": "*"$expect"* ]] &&
     [ -z "$(ls -A "$out")" ]; then
    check "$variant" true; echo "$line"
  else
    echo "--- $variant: rc=$rc; stdout, stderr, output dir:"
    cat "$TMP/bad.out" "$TMP/bad.err"; ls -A "$out"
    check "$variant" false
  fi
}
bad badmagic train-images-idx3-ubyte.gz "bad magic 0x00000802"
bad truncdata t10k-images-idx3-ubyte.gz "truncated: expected 7840 bytes of data, got 7740"
bad trailing t10k-images-idx3-ubyte.gz "5 bytes after"
bad truncgz train-images-idx3-ubyte.gz "corrupt gzip"
bad notgz train-labels-idx1-ubyte.gz "corrupt gzip"
bad count train-labels-idx1-ubyte.gz "59 labels for the 60 images"
bad size27 train-images-idx3-ubyte.gz "dimension 1 is 27"
bad label10 train-labels-idx1-ubyte.gz "label 10 at row 17"
bad missing t10k-labels-idx1-ubyte.gz "no such file"
bad chunkbig --chunk-rows "11 rows per chunk, but /test has only 10 rows" --chunk-rows 11
bad chunk0 --chunk-rows "expected a row count >= 1, got 0" --chunk-rows 0
bad level10 --compress "expected a deflate level 0 to 9, got 10" --compress 10
bad levelx --compress "expected a deflate level 0 to 9, got 'fast'" --compress fast
bad dtype usage "--dtype: invalid choice" --dtype int64
touch "$TMP/afile"
bad unwritable "$TMP/afile/sub/f.h5" "cannot write" --out "$TMP/afile/sub/f.h5"

# The rename into place fails (a directory holds the name): the temporary file goes.
mkdir -p "$TMP/dirout/f.h5/x"
"$PY" "$CONV" --src "$TMP/good" --out "$TMP/dirout/f.h5" >/dev/null 2>"$TMP/bad.err"
check "failed rename exits 1 with one error line naming the output" \
  test $? -eq 1 -a "$(grep -c "^make_fmnist_data: error: $TMP/dirout/f.h5: " "$TMP/bad.err")" -eq 1 \
  -a "$(wc -l <"$TMP/bad.err")" -eq 1
cat "$TMP/bad.err"
check "failed rename leaves no temporary file" test "$(ls -A "$TMP/dirout")" = f.h5

# A failed run leaves a good file already at the output path byte-identical.
cp "$TMP/out/f.h5" "$TMP/keep.h5"
"$PY" "$CONV" --src "$TMP/truncgz" --out "$TMP/out/f.h5" >/dev/null 2>&1
check "a failed run exits 1" test $? -eq 1
check "a failed run leaves the existing output as it was" cmp "$TMP/out/f.h5" "$TMP/keep.h5"
check "and no temporary file" test "$(ls -A "$TMP/out")" = f.h5

# The installed package, when present: its headers parse (the first 600 / 100 rows).
real=/usr/share/datasets/fashion-mnist
if [ -d "$real" ]; then
  "$PY" "$CONV" --src "$real" --out "$TMP/real.h5" --limit 600 >/dev/null 2>&1
  check "dataset-fashion-mnist converts" test $? -eq 0
  check "dataset-fashion-mnist: train [600,1,28,28]" header "$TMP/real.h5" /train/x H5T_STD_U8LE "600, 1, 28, 28"
  check "dataset-fashion-mnist: test [100]" header "$TMP/real.h5" /test/y H5T_STD_I32LE "100"
  # The whole set: the compact file (uint8 pixels, labels in one deflated
  # chunk) is at most a quarter of the older float32 layout's size.
  "$PY" "$CONV" --src "$real" --out "$TMP/full8.h5" >/dev/null 2>&1
  "$PY" "$CONV" --src "$real" --out "$TMP/full32.h5" --dtype float32 >/dev/null 2>&1
  s8=$(stat -c %s "$TMP/full8.h5") s32=$(stat -c %s "$TMP/full32.h5")
  echo "Fashion-MNIST: uint8 file $s8 bytes, float32 file $s32 bytes"
  check "the uint8 file is at most a quarter of the float32 file" test $((4 * s8)) -le "$s32"
  check "its labels are one deflated chunk" layout "$TMP/full8.h5" /train/y "CHUNKED ( 60000 )" \
    "COMPRESSION DEFLATE { LEVEL 9 }"
  check "the float32 file keeps contiguous labels" layout "$TMP/full32.h5" /train/y CONTIGUOUS
else
  echo "skipped: $real absent (Debian package dataset-fashion-mnist)"
fi
finish
