#!/usr/bin/env bash
# A small LSTM (return_sequences false, then dense softmax) learns the sign of
# a noisy running sum over float [N, T, F] sequences, and trains to
# bit-identical parameters, optimizer state and losses on 1, 2 and 4 ranks
# (four shards), and after a stop and resume in the middle of an epoch.
source "$(dirname "$0")/common.sh"

/usr/bin/python3 - "$TMP/sum.h5" <<'PY' || { echo "cannot make sequences"; exit 1; }
import sys
import h5py
import numpy as np
rng = np.random.default_rng(7)
with h5py.File(sys.argv[1], "w") as f:
    for part, n in (("train", 2048), ("test", 512)):
        x = rng.normal(size=(n, 12, 3)).astype(np.float32)  # [N, T, F]
        s = x[:, :, 0].sum(axis=1) + 0.3 * rng.normal(size=n)  # feature 0 summed over time
        f[f"/{part}/x"] = x
        f[f"/{part}/y"] = (s > 0).astype(np.int32)
PY
cat >"$TMP/lstm.yaml" <<YAML
data: {path: $TMP/sum.h5, standardize: false, validation_split: 0.1, shards: 4}
model:
  input: [12, 3]
  layers:
    - lstm: {units: 16}
    - dense: {units: 2, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 4, batch_size: 32, seed: 5}
YAML
for np in 1 2 4; do
  run_np "$np" "$TMP/np$np.log" train "$TMP/lstm.yaml" --run-dir "$TMP/np$np"
  check "np $np exits 0" test $? -eq 0
done
first=$(json_field "$TMP/np1/metrics.jsonl" 1 loss)
last=$(json_field "$TMP/np1/metrics.jsonl" 4 loss)
check "loss falls ($first -> $last)" fgt "$(awk -v a="$first" 'BEGIN { print a * 0.8 }')" "$last"
acc=$(json_field "$TMP/np1/metrics.jsonl" 5 test_accuracy)
check "test accuracy $acc > 0.85 (chance 0.5)" fgt "$acc" 0.85
same_runs "np 1 and np 2" np1 np2
same_runs "np 1 and np 4" np1 np4
# 58 steps an epoch: stop at step 80 of 232, resume on another rank count.
run_np 2 "$TMP/r1.log" train "$TMP/lstm.yaml" --run-dir "$TMP/r" --stop-after 80
check "mid-epoch stop exits 3" test $? -eq 3
check "mid-epoch checkpoint written" test -f "$TMP/r/ckpt-000000000080.h5"
run_np 4 "$TMP/r2.log" train "$TMP/lstm.yaml" --run-dir "$TMP/r" --resume
check "resumed run exits 0" test $? -eq 0
check "mid-epoch resume: bit-identical parameters" same_ckpt "$TMP/np1" "$TMP/r" /model
check "mid-epoch resume: bit-identical optimizer state" same_ckpt "$TMP/np1" "$TMP/r" /optimizer
check "recurrent kernel stored as [16, 64]" \
  bash -c "h5dump -H -d /model/0_lstm/recurrent_kernel '$(newest "$TMP/np1")' | grep -q '( 16, 64 )'"
finish
