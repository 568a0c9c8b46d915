#!/usr/bin/env bash
# dptrain export --onnx: models of every layer type, trained a few steps, are
# exported; onnx.checker accepts each file, and ONNX Runtime (onnxruntime-node)
# given 256 raw test rows gives `dptrain predict`'s predictions within 1e-5,
# running the graph as written and after its own graph optimizations.
# Bad destinations and checkpoints are one error line and write nothing.
source "$(dirname "$0")/common.sh"

ONNX_DIR=$SRC/tests/onnx
TOL=1e-5
ROWS=256

# The test's tools: missing ones fail the test with the command that installs them.
need() {
  echo "FAILED: $1 is missing; install it with: $2"
  exit 1
}
/usr/bin/python3 -c "import onnx" 2>/dev/null || need "python3-onnx" "apt-get install python3-onnx (or scripts/setup.sh)"
command -v node >/dev/null || need "node" "apt-get install nodejs npm (or scripts/setup.sh)"
[ -f "$ONNX_DIR/node_modules/onnxruntime-node/package.json" ] ||
  need "onnxruntime-node" "cd $ONNX_DIR && npm ci --ignore-scripts (or scripts/setup.sh)"

specs_check=() # NAME=MODEL,DATA,DATASET for onnx_check.py prepare
specs_ref=()   # NAME=MODEL,REFERENCE for onnx_check.py compare

# model NAME DATA CONFIG [--set ...]: trains CONFIG a few steps on DATA,
# exports it, and writes dptrain's predictions for its test rows.
model() {
  local name=$1 data=$2 config=$3 rc
  shift 3
  # One plain process (an MPI singleton): mpirun's start-up would double the time.
  ASAN_OPTIONS=$(singleton_asan) timeout -k 5 120 "$DPTRAIN" train "$config" --run-dir "$TMP/$name" --stop-after 8 \
    --set "data.path=$data" "$@" >"$TMP/$name.train.log" 2>&1
  rc=$?
  check "$name: trains a few steps (exit $rc)" test "$rc" -eq 3 -o "$rc" -eq 0
  "$DPTRAIN" export "$TMP/$name" --onnx "$TMP/$name.onnx" >"$TMP/$name.export.log" 2>&1
  rc=$?
  check "$name: exports (exit $rc)" test "$rc" -eq 0 -a -s "$TMP/$name.onnx"
  [ "$rc" -eq 0 ] || cat "$TMP/$name.export.log"
  ASAN_OPTIONS=$(singleton_asan) "$DPTRAIN" predict "$TMP/$name" --input "$data" --dataset /test/x --output "$TMP/$name.pred.h5" \
    >"$TMP/$name.predict.log" 2>&1
  check "$name: dptrain predicts its test rows" test $? -eq 0
  specs_check+=("$name=$TMP/$name.onnx,$data,/test/x")
  specs_ref+=("$name=$TMP/$name.onnx,$TMP/$name.pred.h5")
}

# --- the shipped configs: seed MLP (standardized), Fashion-MNIST MLP and CNN
# on generated 28x28 images of the same shape ---
/usr/bin/python3 "$SRC/tests/mpi/make_images.py" "$TMP/img28.h5" 1024 28 || need "images" "python3-h5py"
/usr/bin/python3 "$SRC/tests/mpi/make_images.py" "$TMP/img12.h5" 1024 12 || need "images" "python3-h5py"
model seed "$SRC/datasets/seed_classification.h5" "$SRC/configs/seed.yaml"
model fmnist_mlp "$TMP/img28.h5" "$SRC/configs/fmnist_mlp.yaml"
model fmnist_cnn "$TMP/img28.h5" "$SRC/configs/fmnist_cnn.yaml"
# uint8 pixels (the converter's layout): the graph's first nodes apply
# data.scale 1/255 and an offset to raw pixel values given as floats.
/usr/bin/python3 - "$TMP/img28.h5" "$TMP/img28u8.h5" <<'EOF' || need "uint8 images" "python3-h5py"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "w") as g:
    for s in ("train", "test"):
        g[f"/{s}/x"] = np.clip(np.rint(f[f"/{s}/x"][:] * 255), 0, 255).astype(np.uint8)
        g[f"/{s}/y"] = f[f"/{s}/y"][:]
EOF
model fmnist_mlp_u8 "$TMP/img28u8.h5" "$SRC/configs/fmnist_mlp.yaml" --set data.offset=-0.5

# 'same' padding with odd and even kernels (uneven pads), strides, overlapping
# pools, tanh and sigmoid convolutions, a softmax in the middle.
cat >"$TMP/cnn_same.yaml" <<YAML
data: {path: x, standardize: true}
model:
  input: [1, 12, 12]
  layers:
    - conv2d: {filters: 4, kernel_size: [2, 4], padding: same, activation: tanh}
    - maxpool2d: {pool_size: 3, strides: 1}
    - conv2d: {filters: 3, kernel_size: [3, 2], strides: [2, 1], padding: same, activation: sigmoid}
    - conv2d: {filters: 2, kernel_size: 2, strides: 2}
    - flatten: {}
    - dense: {units: 6, activation: softmax}
    - dense: {units: 4, activation: gelu}
    - dense: {units: 4, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
train: {epochs: 1, batch_size: 32, seed: 5}
YAML
model cnn_same "$TMP/img12.h5" "$TMP/cnn_same.yaml"

# --- sequence models: byte-level language models (int32 token ids in, a
# softmax per position out) and classifiers and a regression over standardized
# float sequences [12, 1] ---
/usr/bin/python3 "$SRC/tests/mpi/make_sequences.py" text "$TMP/text.h5" 1300 16 || need "text" "python3-h5py"
/usr/bin/python3 "$SRC/tests/mpi/make_sequences.py" sum "$TMP/sum.h5" 1280 12 || need "sums" "python3-h5py"
# seq NAME DATA LOSS INPUT LAYER...: a sequence model of those layers.
seq() {
  local name=$1 data=$2 loss=$3 input=$4 layer
  shift 4
  {
    echo "data: {path: x}"
    echo "model:"
    echo "  input: $input"
    echo "  layers:"
    for layer in "$@"; do echo "    - $layer"; done
    echo "loss: $loss"
    echo "optimizer: {name: adam, learning_rate: 0.01}"
    echo "train: {epochs: 1, batch_size: 32, seed: 9}"
  } >"$TMP/$name.yaml"
  model "$name" "$data" "$TMP/$name.yaml"
}
LM_IN="embedding: {input_dim: 128, output_dim: 16}"
LM_OUT="dense: {units: 128, activation: softmax}"
SCE=sparse_categorical_crossentropy
seq lm_lstm "$TMP/text.h5" $SCE "[16]" "$LM_IN" "lstm: {units: 24, return_sequences: true}" "$LM_OUT"
seq lm_gru "$TMP/text.h5" $SCE "[16]" "$LM_IN" "gru: {units: 24, return_sequences: true}" "$LM_OUT"
seq lm_rnn "$TMP/text.h5" $SCE "[16]" "$LM_IN" "simple_rnn: {units: 24, return_sequences: true}" "$LM_OUT"
seq lm_transformer "$TMP/text.h5" $SCE "[16]" "$LM_IN" "positional_embedding: {max_length: 20}" \
  "transformer_block: {num_heads: 2, ff_dim: 32}" \
  "transformer_block: {num_heads: 4, ff_dim: 24, causal: false, epsilon: 1.0e-5}" \
  "layer_norm: {}" "$LM_OUT"
seq seq_attention "$TMP/sum.h5" $SCE "[12, 1]" "dense: {units: 8, activation: gelu}" \
  "multi_head_attention: {num_heads: 2, key_dim: 4, causal: false}" \
  "multi_head_attention: {num_heads: 3, key_dim: 2}" "layer_norm: {epsilon: 1.0e-5}" \
  "gru: {units: 8}" "dense: {units: 2, activation: softmax}"
seq seq_pool "$TMP/sum.h5" binary_crossentropy "[12, 1]" "lstm: {units: 8, return_sequences: true}" \
  "global_average_pooling1d: {}" "dropout: {rate: 0.3}" "dense: {units: 1, activation: sigmoid}"
seq seq_relu "$TMP/sum.h5" $SCE "[12, 1]" \
  "simple_rnn: {units: 6, return_sequences: true, activation: relu}" \
  "lstm: {units: 6, activation: relu, recurrent_activation: tanh}" \
  "dense: {units: 2, activation: softmax}"
seq seq_linear "$TMP/sum_reg.h5" mse "[12, 1]" \
  "gru: {units: 6, return_sequences: true, activation: linear, recurrent_activation: tanh}" \
  "simple_rnn: {units: 4, activation: linear}" "dense: {units: 2}"

# --- ONNX's checker and ONNX Runtime on every exported model ---
/usr/bin/python3 "$ONNX_DIR/onnx_check.py" prepare "$TMP/jobs.json" "$TMP/results" "$ROWS" \
  "${specs_check[@]}"
check "test rows written for ONNX Runtime" test $? -eq 0
node "$ONNX_DIR/run_ort.js" "$TMP/jobs.json" >"$TMP/ort.log" 2>&1
check "ONNX Runtime runs every model" test $? -eq 0 || cat "$TMP/ort.log"
/usr/bin/python3 "$ONNX_DIR/onnx_check.py" compare "$TMP/results" "$TOL" "$ROWS" "${specs_ref[@]}"
while read -r line; do
  check "$line" test "${line/FAILED/}" = "$line"
done <"$TMP/results"
check "a checker and two ONNX Runtime results per model" test "$(wc -l <"$TMP/results")" -eq $((3 * ${#specs_ref[@]}))

# --- bad inputs: one error line, no file ---
"$DPTRAIN" export "$TMP/seed" --onnx "$TMP/no/such/dir/m.onnx" >"$TMP/bad1.out" 2>"$TMP/bad1.err"
check "a missing output directory: exit 1" test $? -eq 1
check "... one error line naming it" test "$(wc -l <"$TMP/bad1.err")" -eq 1 -a ! -s "$TMP/bad1.out"
check "... which says why" has_all "$TMP/bad1.err" "$TMP/no/such/dir/m.onnx	directory $TMP/no/such/dir"
check "... and nothing is created" test ! -e "$TMP/no"
"$DPTRAIN" export "$TMP/nothing" --onnx "$TMP/bad2.onnx" 2>"$TMP/bad2.err"
check "a missing checkpoint: exit 1, one line, no file" \
  test $? -eq 1 -a "$(wc -l <"$TMP/bad2.err")" -eq 1 -a ! -e "$TMP/bad2.onnx"
"$DPTRAIN" export "$TMP/seed" --best --onnx "$TMP/bad4.onnx" 2>"$TMP/bad4.err"
check "--best without a best.h5: exit 1, one line naming it, no file" \
  test $? -eq 1 -a "$(wc -l <"$TMP/bad4.err")" -eq 1 -a ! -e "$TMP/bad4.onnx"
check "... which names best.h5" has_all "$TMP/bad4.err" "best.h5"
"$DPTRAIN" export "$TMP/seed" 2>"$TMP/bad3.err"
check "no --onnx: exit 2" test $? -eq 2
check "... with a usage line naming --onnx" has_all "$TMP/bad3.err" "--onnx OUT.onnx"
check "no temporary files left beside the models" test -z "$(find "$TMP" -maxdepth 1 -name '.*tmp*')"
finish
