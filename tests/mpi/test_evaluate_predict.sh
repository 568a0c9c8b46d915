#!/usr/bin/env bash
# dptrain evaluate and predict, on the seed MLP and on a small language model
# (token ids in, a softmax per position out):
# - evaluate on 1 rank (a plain process) and 2 ranks prints the same numbers as the end of training
#   (test line and last validation figures of metrics.jsonl, whose 17 digits
#   are the doubles' bits), and the two rank counts print the same doubles;
# - predict on 1 and 2 ranks, in one round or several, writes byte-identical
#   files of the right shapes;
#   the seed MLP's probabilities match a numpy forward pass computed from the
#   checkpoint's weights and statistics (1e-6) and its classes are p > 0.5; the
#   language model's are distributions per position, its classes their argmax;
# - every bad input gets one error line, a non-zero exit, and no file is
#   touched: the output directory is the same before and after.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
"$PY" -c 'import numpy, h5py' 2>/dev/null ||
  { echo "FAILED: this test needs numpy and h5py for $PY"; exit 1; }

# The seed MLP, 3 epochs on 2 ranks; its test split (300 rows) is two
# evaluation chunks, so 2 ranks share it.
seed=$TMP/seed
run_np 2 "$TMP/seed.log" train configs/seed.yaml --set train.epochs=3 --run-dir "$seed"
check "seed training exits 0" test $? -eq 0
m=$seed/metrics.jsonl

# run_n N LOG ARGS...: N = 1 runs dptrain as a plain process, without mpirun.
run_n() {
  if [ "$1" -eq 1 ]; then
    ASAN_OPTIONS=$(singleton_asan) timeout -k 5 "${RUN_TIMEOUT:-120}" "$DPTRAIN" "${@:3}" >"$2" 2>&1
  else
    run_np "$@"
  fi
}

# num JSON KEY: KEY's number in a one-line JSON object; g17 and g9: a number
# as %.17g (every bit of a double) and %.9g.
num() { grep -o "\"$2\": [^,}]*" <<<"$1" | sed 's/.*: //'; }
g17() { "$PY" -c 'import sys; print("%.17g" % float(sys.argv[1]))' "$1"; }
g9() { "$PY" -c 'import sys; print("%.9g" % float(sys.argv[1]))' "$1"; }

# same_as_training NAME RUN LINE SPLIT PREFIX: evaluate on 1 and 2 ranks gives
# metrics.jsonl's PREFIX{loss,accuracy} of line LINE.
same_as_training() {
  local name=$1 run=$2 line=$3 split=$4 prefix=$5 np out
  for np in 1 2; do
    run_n "$np" "$TMP/ev$np.log" evaluate "$run" --split "$split" --json
    check "$name: evaluate --split $split on np $np exits 0" test $? -eq 0
    out=$(cat "$TMP/ev$np.log")
    for k in loss accuracy; do
      local want got
      want=$(g17 "$(json_field "$run/metrics.jsonl" "$line" "$prefix$k")")
      got=$(g17 "$(num "$out" "$k")")
      check "$name: np $np $split $k $got = training's $want" test "$got" = "$want"
    done
  done
  check "$name: evaluate prints the same doubles on np 1 and 2" \
    test "$(cat "$TMP/ev1.log")" = "$(cat "$TMP/ev2.log")"
}
same_as_training seed "$seed" 4 test test_
same_as_training seed "$seed" 3 val val_

run_n 1 "$TMP/plain.log" evaluate "$seed"
check "plain evaluate prints the loss at 9 digits" \
  grep -qF "loss: $(g9 "$(json_field "$m" 4 test_loss)") - accuracy: $(g9 "$(json_field "$m" 4 test_accuracy)")" \
  "$TMP/plain.log"

mkdir -p "$TMP/out"
# np 1 in rounds of one chunk (two rounds), np 2 in one round.
for np in 1 2; do
  DPTRAIN_TEST_PREDICT_CHUNKS=$((np == 1)) run_n "$np" "$TMP/pr$np.log" predict "$seed" \
    --input datasets/seed_classification.h5 --output "$TMP/out/seed$np.h5"
  check "seed predict on np $np exits 0" test $? -eq 0
done
check "seed predict: np 1 and np 2 files are byte-identical" \
  cmp "$TMP/out/seed1.h5" "$TMP/out/seed2.h5"

"$PY" - "$(newest "$seed")" datasets/seed_classification.h5 "$TMP/out/seed1.h5" <<'EOF'
# An independent forward pass in float64: standardize with the checkpoint's
# statistics, dense-relu, dense-relu, dense-sigmoid.
import sys
import h5py, numpy as np
ck, data, pred = sys.argv[1:]
with h5py.File(ck) as c, h5py.File(data) as d, h5py.File(pred) as p:
    h = (d["test/x"][:].astype(np.float64) - c["data/mean"][:]) / c["data/std"][:]
    names = sorted(c["model"], key=lambda s: int(s.split("_")[0]))
    for i, n in enumerate(names):
        h = h @ c["model"][n]["kernel"][:].astype(np.float64) + c["model"][n]["bias"][:]
        h = np.maximum(h, 0) if i < len(names) - 1 else 1 / (1 + np.exp(-h))
    got, cls = p["predictions"][:], p["classes"][:]
    assert got.dtype == np.float32 and got.shape == (300, 1), (got.dtype, got.shape)
    assert cls.dtype == np.int32 and cls.shape == (300,), (cls.dtype, cls.shape)
    err = np.abs(got - h).max()
    print(f"seed predict: max |dptrain - numpy| = {err:.3g}")
    assert err < 1e-6
    assert (cls == (got[:, 0] > 0.5)).all()
    assert 0 < cls.sum() < 300
EOF
check "seed predict matches numpy within 1e-6; classes are p > 0.5" test $? -eq 0

# A tiny language model: token windows where the next id is 5v + 3 mod 16.
"$PY" - "$TMP/lm.h5" "$TMP/other.h5" <<'EOF'
import sys
import h5py, numpy as np
V, T = 16, 8
rng = np.random.default_rng(5)
def part(n):
    x = np.empty((n, T), np.int64)
    x[:, 0] = rng.integers(0, V, n)
    for t in range(1, T):
        x[:, t] = (5 * x[:, t - 1] + 3) % V
    return x.astype("<i4"), ((5 * x + 3) % V).astype("<i4")
with h5py.File(sys.argv[1], "w") as f:
    for p, n in (("train", 256), ("val", 64), ("test", 600)):
        f[p + "/x"], f[p + "/y"] = part(n)
# Features for another model: rows of 8 floats.
with h5py.File(sys.argv[2], "w") as f:
    for p in ("train", "test"):
        f[p + "/x"] = rng.normal(size=(32, 8)).astype("<f4")
        f[p + "/y"] = rng.integers(0, 2, 32).astype("<i4")
EOF
cat >"$TMP/lm.yaml" <<EOF
data: {path: $TMP/lm.h5, shards: 2}
model:
  input: [8]
  layers:
    - embedding: {input_dim: 16, output_dim: 8}
    - positional_embedding: {max_length: 8}
    - dense: {units: 16, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 2, batch_size: 32, seed: 3}
EOF
run_np 1 "$TMP/lm.log" train "$TMP/lm.yaml" --run-dir "$TMP/lm"
check "language model training exits 0" test $? -eq 0
same_as_training lm "$TMP/lm" 3 test test_

# 600 rows, 3 chunks: np 1 in one round; np 2 in rounds of one chunk per
# rank, so rank 1 sits the second round out.
for np in 1 2; do
  DPTRAIN_TEST_PREDICT_CHUNKS=$((np == 2)) run_n "$np" "$TMP/lmp$np.log" predict "$TMP/lm" \
    --input "$TMP/lm.h5" --dataset test/x --output "$TMP/out/lm$np.h5" --batch 7
  check "language model predict on np $np exits 0" test $? -eq 0
done
check "language model predict: np 1 and np 2 files are byte-identical" \
  cmp "$TMP/out/lm1.h5" "$TMP/out/lm2.h5"
"$PY" - "$TMP/out/lm1.h5" <<'EOF'
import sys
import h5py, numpy as np
with h5py.File(sys.argv[1]) as p:
    got, cls = p["predictions"][:], p["classes"][:]
assert got.dtype == np.float32 and got.shape == (600, 8, 16), (got.dtype, got.shape)
assert cls.dtype == np.int32 and cls.shape == (600, 8), (cls.dtype, cls.shape)
assert np.abs(got.sum(axis=2) - 1).max() < 1e-5 and got.min() >= 0
assert (cls == got.argmax(axis=2)).all()
EOF
check "language model predictions are [N, T, K] distributions, classes [N, T] argmax" \
  test $? -eq 0

# bad NAME EXPECTED-SUBSTRINGS ARGS...: at np 2, a non-zero exit, exactly one
# error line holding every TAB-separated substring, and $TMP/out unchanged.
listing() { ls -lA --time-style=full-iso "$TMP/out"; md5sum "$TMP"/out/*.h5; }
before=$(listing)
bad() {
  local name=$1 expect=$2 log=$TMP/bad.log
  shift 2
  RUN_TIMEOUT=20 run_np 2 "$log" "$@"
  local rc=$? lines
  lines=$(grep -c '^dptrain: error: ' "$log")
  if [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && [ "$lines" -eq 1 ] && has_all "$log" "$expect" &&
     [ "$(listing)" = "$before" ]; then
    check "$name" true; grep "^dptrain: error: " "$log"
  else
    echo "--- $name: rc=$rc, $lines error line(s); output:"
    cat "$log"
    check "$name" false
  fi
}
S=datasets/seed_classification.h5
O=$TMP/out/seed1.h5 # an existing output, which a failed predict must leave alone
bad "predict: another model's checkpoint" $'lm.h5:/test/x\t[8]\t[20]' \
  predict "$seed" --input "$TMP/lm.h5" --output "$O"
bad "predict: floats for an embedding model" $'seed_classification.h5:/test/x\tembedding' \
  predict "$TMP/lm" --input "$S" --output "$O"
bad "predict: missing dataset" $'seed_classification.h5:/val/x\tmissing dataset' \
  predict "$seed" --input "$S" --dataset /val/x --output "$O"
bad "predict: missing input file" $'nothere.h5\tno such file' \
  predict "$seed" --input "$TMP/nothere.h5" --output "$O"
bad "predict: output in a missing directory" $'nodir/p.h5\tno such directory' \
  predict "$seed" --input "$S" --output "$TMP/out/nodir/p.h5"
bad "predict: missing --output" "--output" predict "$seed" --input "$S"
bad "predict: missing checkpoint" $'nothere\tno such checkpoint' \
  predict "$TMP/nothere" --input "$S" --output "$O"
bad "predict: --best without best.h5" "best.h5" \
  predict "$seed" --best --input "$S" --output "$O"
bad "evaluate: unknown split" $'--split\tfoo' evaluate "$seed" --split foo
bad "evaluate: data of another model" $'other.h5\t[8]\t[20]' evaluate "$seed" --data "$TMP/other.h5"
bad "evaluate: missing data file" $'nothere.h5\tno such file' \
  evaluate "$seed" --data "$TMP/nothere.h5"
bad "evaluate: a bad --batch" "--batch" evaluate "$seed" --batch 0
check "no temporary file is left" test -z "$(ls -A "$TMP/out" | grep -v '^seed[12].h5$\|^lm[12].h5$')"
finish
