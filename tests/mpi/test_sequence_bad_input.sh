#!/usr/bin/env bash
# Bad token data and sequence-model mismatches each give, at np 2: a non-zero
# exit within 20 s, exactly one `dptrain: error: <where>: <what>` line from rank
# 0 naming the problem, and no checkpoint written or changed in the run
# directory. The tiny token files are written here with h5py: x int32 [N, 8]
# ids in [0, 12), y int32 [N, 8]; configs are embedding(12, 6) -> dense 12
# softmax, which a good control run trains first.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
"$PY" -c 'import numpy, h5py' 2>/dev/null ||
  { echo "FAILED: this test needs numpy and h5py for $PY"; exit 1; }

# Each file is the good one with one change. Training rows on 2 ranks: shard 1
# (rank 1) holds rows [20, 40); held-out rows go in chunks of 256, so rank 1
# reads /val rows [256, 300).
"$PY" - "$TMP" <<'EOF'
import sys
import h5py, numpy as np
d = sys.argv[1]
T, V = 8, 12
def part(n, k):
    x = (np.arange(n * T).reshape(n, T) * 5 + k) % V
    return x.astype("<i4"), ((x * 5 + 3) % V).astype("<i4")
def write(name, change=None):
    s = {"train": part(40, 0), "val": part(300, 1), "test": part(10, 2)}
    if change: change(s)
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        for p, (x, y) in s.items():
            f[p + "/x"], f[p + "/y"] = x, y
def put(p, r, c, v):
    def change(s): s[p][0][r, c] = v
    return change
write("good")
write("big", put("train", 3, 5, 12))
write("neg", put("train", 7, 2, -1))
write("rank1", put("train", 30, 3, 99))
write("val_rank1", put("val", 280, 6, 12))
def floatx(s):
    for p in s: s[p] = (s[p][0].astype("<f4"), s[p][1])
write("floatx", floatx)
def wrong_t(s):
    for p in s: s[p] = (s[p][0], np.ascontiguousarray(s[p][1][:, :7]))
write("wrong_t", wrong_t)
EOF
check "token files written" test -f "$TMP/wrong_t.h5"

# yaml NAME INPUT LAYERS...: a config over $TMP/good.h5 with those layers.
yaml() {
  local name=$1 input=$2
  shift 2
  {
    printf 'data: {path: %s}\nmodel:\n  input: %s\n  layers:\n' "$TMP/good.h5" "$input"
    printf '    - %s\n' "$@"
    printf 'loss: sparse_categorical_crossentropy\noptimizer: {name: adam, learning_rate: 0.01}\n'
    printf 'train: {epochs: 1, batch_size: 8, seed: 3}\n'
  } >"$TMP/$name.yaml"
}
yaml lm "[8]" "embedding: {input_dim: 12, output_dim: 6}" "dense: {units: 12, activation: softmax}"
yaml dense_first "[8]" "dense: {units: 6}" "dense: {units: 12, activation: softmax}"
yaml pooled "[8]" "embedding: {input_dim: 12, output_dim: 6}" "global_average_pooling1d: {}" \
  "dense: {units: 12, activation: softmax}"
yaml short_pos "[8]" "embedding: {input_dim: 12, output_dim: 6}" "positional_embedding: {max_length: 4}" \
  "dense: {units: 12, activation: softmax}"
yaml narrow_out "[8]" "embedding: {input_dim: 12, output_dim: 6}" "dense: {units: 10, activation: softmax}"
yaml lstm_last "[8]" "embedding: {input_dim: 12, output_dim: 6}" "lstm: {units: 5}" \
  "dense: {units: 12, activation: softmax}"
yaml wide_heads "[8]" "embedding: {input_dim: 12, output_dim: 6}" \
  "multi_head_attention: {num_heads: 4, key_dim: 8}" "dense: {units: 12, activation: softmax}"
yaml odd_heads "[8]" "embedding: {input_dim: 12, output_dim: 6}" \
  "transformer_block: {num_heads: 4, ff_dim: 8}" "dense: {units: 12, activation: softmax}"
yaml emb_second "[8]" "dense: {units: 6}" "embedding: {input_dim: 12, output_dim: 6}" \
  "dense: {units: 12, activation: softmax}"

# The control: the good file trains, and its checkpoints are what no bad input may touch.
run=$TMP/run
run_np 2 "$TMP/setup.log" train "$TMP/lm.yaml" --run-dir "$run"
check "the good token file trains (exit 0)" test $? -eq 0
check "and writes a checkpoint" compgen -G "$run/ckpt-*.h5"
sums() { md5sum "$run"/ckpt-*; }
before=$(sums)
ulimit -c unlimited 2>/dev/null || true

# bad NAME EXPECTED-SUBSTRINGS ARGS...: one case (substrings TAB-separated).
bad() {
  local name=$1 expect=$2
  shift 2
  local log=$TMP/case.log start=$SECONDS
  (cd "$TMP" && RUN_TIMEOUT=20 run_np 2 "$log" "$@" --run-dir "$run")
  local rc=$? took=$((SECONDS - start))
  local lines
  lines=$(grep -c '^dptrain: error: ' "$log")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] &&
     has_all "$log" "$expect" && [ "$took" -lt 20 ] &&
     [ "$(sums)" = "$before" ] && ! ls "$TMP"/core* >/dev/null 2>&1; then
    check "$name" true; grep "^dptrain: error: " "$log"
  else
    echo "--- $name: rc=$rc, $lines error line(s), ${took}s; output:"
    cat "$log"
    check "$name" false
  fi
}
L=$TMP/lm.yaml
T=$'\t'
bad "token id >= input_dim" \
  "big.h5:/train/x: token id 12 at row 3, column 5 is outside [0, 12) (embedding input_dim)" \
  train "$L" --set data.path="$TMP/big.h5"
bad "negative token id" "neg.h5:/train/x: token id -1 at row 7, column 2 is outside [0, 12)" \
  train "$L" --set data.path="$TMP/neg.h5"
bad "a bad id in the middle of rank 1's shard" \
  "rank1.h5:/train/x: on rank 1: token id 99 at row 30, column 3 is outside [0, 12)" \
  train "$L" --set data.path="$TMP/rank1.h5"
bad "a bad id in rank 1's share of /val" \
  "val_rank1.h5:/val/x: on rank 1: token id 12 at row 280, column 6" \
  train "$L" --set data.path="$TMP/val_rank1.h5"
bad "float x for an embedding model" \
  "floatx.h5:/train/x: x is float32, but the model's first layer is embedding, which takes int32 token ids [N, T]" \
  train "$L" --set data.path="$TMP/floatx.h5"
bad "int x for a model without embedding" \
  "good.h5:/train/x: x holds int32 token ids, but the model's first layer is dense" \
  train "$TMP/dense_first.yaml"
bad "[N, T] targets with the wrong T" \
  "wrong_t.h5: ${T}the model outputs a sequence [8, 12], which needs int32 class ids [N, 8]${T}[N, 7]" \
  train "$L" --set data.path="$TMP/wrong_t.h5"
bad "per-position targets for a pooled model" \
  "good.h5: ${T}one class id per position, but the model outputs one prediction [12] per row" \
  train "$TMP/pooled.yaml"
bad "return_sequences: false, then per-position targets" \
  "good.h5: ${T}one class id per position, but the model outputs one prediction [12] per row" \
  train "$TMP/lstm_last.yaml"
bad "attention key_dim * num_heads that does not fit" \
  "wide_heads.yaml:${T}num_heads * key_dim = 4 * 8 = 32${T}6 input features" \
  train "$TMP/wide_heads.yaml"
bad "transformer heads that do not divide the width" \
  "odd_heads.yaml:${T}num_heads 4 does not divide the 6 features" train "$TMP/odd_heads.yaml"
bad "a window longer than max_length" \
  "short_pos.yaml:${T}window of 8 positions is longer than max_length 4" \
  train "$TMP/short_pos.yaml"
bad "embedding after another layer" \
  "emb_second.yaml:${T}embedding takes token ids, so it must be the first layer" \
  train "$TMP/emb_second.yaml"
# Per-position class ids are checked against the output width at each position.
bad "a target id >= the classes per position" \
  "good.h5:/train/y: label 10 at row 0, column 7 outside [0, 10)" train "$TMP/narrow_out.yaml"
bad "model.input of another window" "/train/x rows have shape [8] but model.input is [9]" \
  train "$L" --set "model.input=[9]"
finish
