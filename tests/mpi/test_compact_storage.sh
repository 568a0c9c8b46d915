#!/usr/bin/env bash
# Compact storage: x stored as uint8 pixels read with data.scale 1/255 trains,
# evaluates and predicts bit for bit as the float32 file of pixel / 255 (numpy's
# float32 division, independent of the reader's double arithmetic); a chunked,
# shuffled and deflated copy trains to the contiguous file's bits, and both
# streamed (data.in_memory: false) to the in-memory bits; bad inputs
# (int64 or compound x, a filter this HDF5 lacks, a scale that is not finite,
# zero, or that overflows float32 values, a converter chunk larger than the
# data) are one error line each and a non-zero exit.
source "$(dirname "$0")/common.sh"

# The same 384 + 96 generated images [1, 12, 12] in each layout; the label is
# the quadrant of a bright square.
/usr/bin/python3 - "$TMP" <<'EOF' || { echo "FAILED: cannot write the data files"; exit 1; }
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
n, s = 480, 12
x = rng.integers(0, 90, (n, 1, s, s), dtype=np.uint8)
y = rng.integers(0, 4, n).astype(np.int32)
for i in range(n):
    r0, c0 = (y[i] // 2) * 6 + rng.integers(0, 4), (y[i] % 2) * 6 + rng.integers(0, 4)
    x[i, 0, r0:r0 + 3, c0:c0 + 3] = 255 - rng.integers(0, 40)
def write(name, xs, **kw):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        for split, a, b in (("train", 0, 384), ("test", 384, n)):
            f.create_dataset(f"{split}/x", data=xs[a:b], **kw)
            f.create_dataset(f"{split}/y", data=y[a:b])
write("u8", x)
write("f32", x.astype(np.float32) / np.float32(255))
write("z", x, chunks=(7, 1, s, s), compression="gzip", compression_opts=4, shuffle=True)
write("lzf", x, chunks=(16, 1, s, s), compression="lzf")
write("i64", x.astype(np.int64))
rec = np.zeros((n, 1, s, s), dtype=[("a", "<f4"), ("b", "<f4")])
write("compound", rec)
EOF

cat >"$TMP/cfg.yaml" <<YAML
data: {path: $TMP/u8.h5, scale: 1/255, standardize: true, validation_split: 0.25}
model:
  input: [1, 12, 12]
  layers:
    - flatten: {}
    - dense: {units: 16, activation: relu}
    - dense: {units: 4, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 2, batch_size: 32, seed: 9}
YAML

train() { # NAME DATA [ARGS...]: two ranks, the config on DATA
  local name=$1 data=$2
  shift 2
  run_np 2 "$TMP/$name.log" train "$TMP/cfg.yaml" --run-dir "$TMP/$name" --set "data.path=$data" "$@"
  local rc=$?
  check "$name: trains (exit $rc)" test "$rc" -eq 0
  [ "$rc" -eq 0 ] || cat "$TMP/$name.log"
}
train u8 "$TMP/u8.h5"
train f32 "$TMP/f32.h5" --set data.scale=1
train z "$TMP/z.h5"
same_runs "uint8 * 1/255 against float32 pixel / 255" u8 f32
same_runs "chunked + deflated against contiguous" u8 z
# Streamed rows (the reader thread, rows by id) widen and scale as in memory.
train u8s "$TMP/u8.h5" --set data.in_memory=false
train zs "$TMP/z.h5" --set data.in_memory=false
check "u8s streamed its rows" grep -q "data: streamed from" "$TMP/u8s.log"
check "zs streamed its rows" grep -q "data: streamed from" "$TMP/zs.log"
same_runs "uint8 streamed against in memory" u8 u8s
same_runs "chunked + deflated streamed against in memory" u8 zs
# The scale is no formality: unscaled pixels train to other parameters.
train raw "$TMP/u8.h5" --set data.scale=1
check "uint8 without the scale trains differently" differ_ckpt "$TMP/u8" "$TMP/raw" /model

# evaluate and predict read the checkpoint's data.scale as training did.
ev() { "$DPTRAIN" evaluate "$TMP/$1" --json 2>&1 | sed 's/, "checkpoint": .*//'; }
check "evaluate: the same figures on uint8 and float32" test "$(ev u8)" = "$(ev f32)"
ev u8 | head -1
pr() { "$DPTRAIN" predict "$TMP/$1" --input "$2" --output "$TMP/$1.pred.h5" >/dev/null 2>&1; }
check "predict on uint8 runs" pr u8 "$TMP/u8.h5"
check "predict on float32 runs" pr f32 "$TMP/f32.h5"
check "predict: the same predictions, bit for bit" \
  h5diff -d 0 "$TMP/u8.pred.h5" "$TMP/f32.pred.h5" /predictions /predictions

# bad NAME EXPECTED ARGS...: exactly one `dptrain: error: <where>: <what>` line
# holding every TAB-separated fragment of EXPECTED, and a non-zero exit.
bad() {
  local name=$1 expect=$2 log=$TMP/bad.log
  shift 2
  RUN_TIMEOUT=30 run_np 2 "$log" train "$TMP/cfg.yaml" --run-dir "$TMP/bad-run" "$@"
  local rc=$? lines
  lines=$(grep -c '^dptrain: error: ' "$log")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] &&
     has_all "$log" "$expect" && grep -q '^dptrain: error: .*: ' "$log"; then
    check "$name" true; grep "^dptrain: error: " "$log"
  else
    echo "--- $name: rc=$rc, $lines error line(s); output:"
    cat "$log"
    check "$name" false
  fi
}
bad "int64 x" "i64.h5:/train/x: 	got int64	uint8, int8, uint16, int16, float16 or float32" \
  --set "data.path=$TMP/i64.h5"
bad "compound x" "compound.h5:/train/x: 	got compound" --set "data.path=$TMP/compound.h5"
bad "a filter this HDF5 lacks (lzf)" "lzf.h5:/train/x: 	lzf (32000)" --set "data.path=$TMP/lzf.h5"
bad "scale inf" "data.scale" --set data.scale=inf
bad "scale 0" "data.scale	other than 0" --set data.scale=0
bad "scale 1/0" "data.scale	not a finite number" --set data.scale=1/0
bad "scale inf with float32 data" "data.scale" --set "data.path=$TMP/f32.h5" --set data.scale=1e999
bad "a scale that overflows float32" "u8.h5:/train/x: 	non-finite value (inf) at row" \
  --set data.scale=1e37

# The converters refuse a chunk larger than the data, in one line.
mkdir "$TMP/corpus"
head -c 900 "$SRC/README.md" >"$TMP/corpus/a"
FORTUNES_DIR=$TMP/corpus "$SRC/scripts/make_fortunes.sh" --out "$TMP/fo.h5" --chunk-rows 500 8 \
  >"$TMP/conv.out" 2>"$TMP/conv.err"
rc=$?
check "converter: --chunk-rows larger than a split is one error line" \
  test "$rc" -eq 1 -a "$(wc -l <"$TMP/conv.err")" -eq 1 -a ! -e "$TMP/fo.h5"
grep -q '^make_fortunes: error: --chunk-rows: 500 rows per chunk' "$TMP/conv.err" || check "its text" false
cat "$TMP/conv.err"
finish
