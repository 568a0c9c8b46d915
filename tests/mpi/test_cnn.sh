#!/usr/bin/env bash
# A small CNN (conv2d, maxpool2d, flatten, dropout, dense) trains on generated
# images on 1 and 2 ranks: the loss falls, it learns the task, and with two
# shards the two rank counts agree bit for bit, dropout included.
source "$(dirname "$0")/common.sh"

/usr/bin/python3 "$SRC/tests/mpi/make_images.py" "$TMP/img.h5" 1024 || { echo "cannot make images"; exit 1; }
cat >"$TMP/cnn.yaml" <<YAML
data: {path: $TMP/img.h5, standardize: false, validation_split: 0.1, shards: 2}
model:
  input: [1, 12, 12]
  layers:
    - conv2d: {filters: 8, kernel_size: 3, padding: same, activation: relu}
    - maxpool2d: {pool_size: 2}
    - conv2d: {filters: 8, kernel_size: [3, 2], strides: [1, 2], activation: relu}
    - flatten: {}
    - dense: {units: 16, activation: relu}
    - dropout: {rate: 0.25}
    - dense: {units: 4, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.003}
metrics: [accuracy]
train: {epochs: 6, batch_size: 32, seed: 3}
YAML
for np in 1 2; do
  run_np "$np" "$TMP/np$np.log" train "$TMP/cnn.yaml" --run-dir "$TMP/np$np"
  check "np $np exits 0" test $? -eq 0
  first=$(json_field "$TMP/np$np/metrics.jsonl" 1 loss)
  last=$(json_field "$TMP/np$np/metrics.jsonl" 6 loss)
  check "np $np loss falls ($first -> $last)" fgt "$(awk -v a="$first" 'BEGIN { print a * 0.7 }')" "$last"
  acc=$(json_field "$TMP/np$np/metrics.jsonl" 7 test_accuracy)
  check "np $np test accuracy $acc > 0.6 (chance 0.25)" fgt "$acc" 0.6
done
check "np 1 and np 2 bit-identical" h5diff -d 0 "$(newest "$TMP/np1")" "$(newest "$TMP/np2")" /model /model
check "conv kernel stored as [8, 1, 3, 3]" \
  bash -c "h5dump -H -d /model/0_conv2d/kernel '$(newest "$TMP/np1")' | grep -q '( 8, 1, 3, 3 )'"
finish
