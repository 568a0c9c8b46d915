#!/usr/bin/env bash
# A tiny language model, embedding 16 -> positional_embedding -> dense 32 relu
# -> dense 16 softmax, on token windows where the next token is a fixed function
# of the current one (v -> 5v + 3 mod 16, one cycle through all 16 ids):
# - it learns: the final validation loss is far below log 16 = 2.77 nats, the
#   first epoch's training loss is not, and the accuracy per position is high;
# - with data.shards fixed, np 1, 2 and 4 give bit-identical parameters,
#   optimizer state and printed losses, and a different seed does not;
# - stopped mid-epoch on 2 ranks and resumed on 4, it ends with the same bits.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
"$PY" -c 'import numpy, h5py' 2>/dev/null ||
  { echo "FAILED: this test needs numpy and h5py for $PY"; exit 1; }

"$PY" - "$TMP/lm.h5" <<'EOF'
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
    for p, n in (("train", 512), ("val", 64), ("test", 64)):
        f[p + "/x"], f[p + "/y"] = part(n)
EOF
check "token file written" test -f "$TMP/lm.h5"

cat >"$TMP/lm.yaml" <<EOF
data: {path: $TMP/lm.h5, shards: 4}
model:
  input: [8]
  layers:
    - embedding: {input_dim: 16, output_dim: 16}
    - positional_embedding: {max_length: 8}
    - dense: {units: 32, activation: relu}
    - dense: {units: 16, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 4, batch_size: 32, seed: 11}
EOF
args=(train "$TMP/lm.yaml")

for np in 1 2 4; do
  run_np "$np" "$TMP/p$np.log" "${args[@]}" --run-dir "$TMP/p$np"
  check "np $np exits 0" test $? -eq 0
done
cat "$TMP/p1.log"

m=$TMP/p1/metrics.jsonl
first=$(json_field "$m" 1 loss) val=$(json_field "$m" 4 val_loss) acc=$(json_field "$m" 4 val_accuracy)
echo "first epoch loss $first, final val_loss $val, val_accuracy $acc (log 16 = 2.77)"
check "the first epoch's loss is above 1 nat" fgt "$first" 1.0
check "the final validation loss is below 0.3 nats" fgt 0.3 "$val"
check "the final validation accuracy is above 0.95" fgt "$acc" 0.95

same_runs "np 1 and np 2" p1 p2
same_runs "np 1 and np 4" p1 p4
run_np 1 "$TMP/seed7.log" "${args[@]}" --set train.seed=7 --run-dir "$TMP/seed7"
check "a different seed gives other parameters" differ_ckpt "$TMP/p1" "$TMP/seed7" /model

# 16 steps per epoch: step 21 is mid-epoch 2.
run_np 2 "$TMP/s.log" "${args[@]}" --run-dir "$TMP/s" --stop-after 21
check "stopped on np 2 exits 3" test $? -eq 3
run_np 4 "$TMP/s.log" "${args[@]}" --run-dir "$TMP/s" --resume
check "resumed on np 4 exits 0" test $? -eq 0
check "stop on 2, resume on 4: bit-identical parameters" same_ckpt "$TMP/p1" "$TMP/s" /model
check "and optimizer state" same_ckpt "$TMP/p1" "$TMP/s" /optimizer
finish
