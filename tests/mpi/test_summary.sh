#!/usr/bin/env bash
# dptrain summary:
# - the memory budget it prints is within 20% of the peak RSS (getrusage's
#   ru_maxrss, the VmHWM of the largest rank, as the run's last line reports
#   it) of one training epoch of each shipped config (seed, Fashion-MNIST MLP
#   and CNN) on 1 and 2 ranks, of the CNN on 2 ranks at batch 256, and of the
#   fortunes LSTM on 2 ranks; the Fashion-MNIST and fortunes configs train on
#   generated files of their shapes;
# - the table of the seed MLP: its layers, output shapes and parameters
#   (hand-counted from Keras's formulas), the total, and the FLOPs per sample;
# - a checkpoint and a run directory give the same table as the config;
# - under mpirun only rank 0 prints, and it does not hang;
# - bad input (missing file, unreadable config, missing data file, data of
#   another row shape, bad --ranks / --batch, shards not a multiple of the
#   ranks) is one error line
#   and a non-zero exit, with nothing on stdout.
source "$(dirname "$0")/common.sh"

/usr/bin/python3 - "$TMP/fmnist.h5" <<'EOF' || { echo "FAILED: cannot write the data file"; exit 1; }
import sys, h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File(sys.argv[1], "w") as f:
    f["/train/x"] = rng.random((6000, 1, 28, 28), dtype=np.float32)
    f["/train/y"] = rng.integers(0, 10, 6000, dtype=np.int32)
    f["/test/x"] = rng.random((1000, 1, 28, 28), dtype=np.float32)
    f["/test/y"] = rng.integers(0, 10, 1000, dtype=np.int32)
EOF
# Byte windows of the fortunes language models' shape: int32 [N, 64] token ids
# and next tokens (640 training, 256 validation and 256 test rows).
/usr/bin/python3 - "$TMP/lm.h5" <<'EOF' || { echo "FAILED: cannot write the data file"; exit 1; }
import sys, h5py, numpy as np
rng = np.random.default_rng(2)
with h5py.File(sys.argv[1], "w") as f:
    for split, n in (("train", 640), ("val", 256), ("test", 256)):
        t = rng.integers(0, 256, (n, 65), dtype=np.int32)
        f[f"/{split}/x"], f[f"/{split}/y"] = t[:, :64], t[:, 1:]
EOF

# budget_vs_rss NAME CONFIG DATA NP BATCH: trains one epoch on NP ranks at
# global batch BATCH and compares the run's peak RSS with the summary's total.
budget_vs_rss() {
  local name=$1 cfg=$2 data=$3 np=$4 batch=$5 log=$TMP/$1.log
  run_np "$np" "$log" train "$cfg" --set train.epochs=1 --set "data.path=$data" \
    --set "train.batch_size=$batch" --run-dir "$TMP/run-$name"
  check "$name: trains" test $? -eq 0
  local rss budget
  rss=$(grep -o 'peak memory (RSS) of the largest rank [0-9.]*' "$log" | awk '{ print $NF }')
  "$DPTRAIN" summary "$cfg" --data "$data" --ranks "$np" --batch "$batch" >"$TMP/$name.sum"
  check "$name: summary exits 0" test $? -eq 0
  budget=$(awk '$1 == "total" && $NF == "MiB" { print $2 }' "$TMP/$name.sum")
  echo "$name: budget $budget MiB, measured peak RSS $rss MiB"
  # Under a sanitizer (DPTRAIN_SANITIZED=1, set by CMake) the peak RSS is
  # mostly shadow memory: only the normal build compares.
  if [ "${DPTRAIN_SANITIZED:-0}" = 1 ]; then
    check "$name: summary prints a total" test -n "$budget"
    return
  fi
  check "$name: budget $budget MiB within 20% of the peak RSS $rss MiB" \
    awk -v b="$budget" -v r="$rss" 'BEGIN { exit !(r > 0 && b >= 0.8 * r && b <= 1.2 * r) }'
}
budget_vs_rss seed-np1 configs/seed.yaml datasets/seed_classification.h5 1 10
budget_vs_rss seed-np2 configs/seed.yaml datasets/seed_classification.h5 2 10
budget_vs_rss mlp-np1 configs/fmnist_mlp.yaml "$TMP/fmnist.h5" 1 128
budget_vs_rss mlp-np2 configs/fmnist_mlp.yaml "$TMP/fmnist.h5" 2 128
budget_vs_rss cnn-np1 configs/fmnist_cnn.yaml "$TMP/fmnist.h5" 1 128
budget_vs_rss cnn-np2 configs/fmnist_cnn.yaml "$TMP/fmnist.h5" 2 128
budget_vs_rss cnn-np2-b256 configs/fmnist_cnn.yaml "$TMP/fmnist.h5" 2 256
# Rank 1 evaluates the one validation chunk at 32 rows, rank 0 runs 16-row
# micro-batches only: rank 1 is the largest.
budget_vs_rss lstm-np2 configs/fortunes_lstm.yaml "$TMP/lm.h5" 2 32
check "lstm-np2: the largest rank is rank 1" grep -q "largest rank (rank 1)" "$TMP/lstm-np2.sum"

# The seed MLP, 20 -> 64 -> 32 -> 1: a dense layer has in*out + out parameters
# and, per sample, 2*in*out + out FLOPs (multiply-add 2, bias 1).
"$DPTRAIN" summary configs/seed.yaml >"$TMP/seed.sum"
check "seed summary exits 0" test $? -eq 0
cat "$TMP/seed.sum"
row() { grep -qE "^$1 +\\[$2\\] +$3 +$4\$" "$TMP/seed.sum"; }
check "0_dense [64] 1,344 params 2,624 FLOPs" row 0_dense 64 1,344 2,624
check "1_dense [32] 2,080 params 4,128 FLOPs" row 1_dense 32 2,080 4,128
check "2_dense [1] 33 params 65 FLOPs" row 2_dense 1 33 65
check "total 3,457 parameters" grep -q "^total parameters: 3,457, 13.5 KiB (trainable: 3,457" "$TMP/seed.sum"
check "6,817 FLOPs per sample" grep -q "^forward FLOPs per sample: 6,817 " "$TMP/seed.sum"
check "default: 1 rank at the config's batch 10" grep -q "on 1 rank(s) at global batch 10," "$TMP/seed.sum"

# A checkpoint of the run above, and its run directory, describe the same model.
"$DPTRAIN" summary "$(newest "$TMP/run-seed-np1")" >"$TMP/ckpt.sum"
check "checkpoint summary exits 0" test $? -eq 0
"$DPTRAIN" summary "$TMP/run-seed-np1" >"$TMP/dir.sum"
check "run dir summary exits 0" test $? -eq 0
check "checkpoint: the config's table and budget" \
  diff <(tail -n +2 "$TMP/seed.sum") <(tail -n +2 "$TMP/ckpt.sum")
check "run dir: the config's table and budget" \
  diff <(tail -n +2 "$TMP/seed.sum") <(tail -n +2 "$TMP/dir.sum")

run_np 2 "$TMP/mpi.log" summary configs/seed.yaml
check "under mpirun -np 2: exits 0" test $? -eq 0
check "under mpirun -np 2: printed once" test "$(grep -c '^total parameters' "$TMP/mpi.log")" -eq 1

# bad NAME EXPECT ARGS...: one error line holding EXPECT, nothing on stdout, exit != 0.
bad() {
  local name=$1 expect=$2
  shift 2
  "$DPTRAIN" summary "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
  local rc=$?
  if [ "$rc" -ne 0 ] && [ ! -s "$TMP/bad.out" ] && [ "$(wc -l <"$TMP/bad.err")" -eq 1 ] &&
     grep -q "^dptrain: error: .*$expect" "$TMP/bad.err"; then
    check "$name" true
    cat "$TMP/bad.err"
  else
    echo "--- $name: rc=$rc; stdout, stderr:"
    cat "$TMP/bad.out" "$TMP/bad.err"
    check "$name" false
  fi
}
bad "missing file" "no such config, checkpoint or run directory" "$TMP/nope.yaml"
printf 'model: [unclosed\n' >"$TMP/broken.yaml"
bad "unreadable config" "broken.yaml" "$TMP/broken.yaml"
bad "missing data file" "no such data file" configs/fmnist_mlp.yaml --data "$TMP/absent.h5"
bad "data of another row shape" "rows have shape \\[20\\] but model.input is \\[1, 28, 28\\]" \
  configs/fmnist_mlp.yaml --data datasets/seed_classification.h5
bad "--ranks 0" "--ranks" configs/seed.yaml --ranks 0
bad "--ranks x" "--ranks" configs/seed.yaml --ranks x
bad "--batch -3" "--batch" configs/seed.yaml --batch -3
bad "--batch above the training rows" "--batch: 560 training rows are fewer" configs/seed.yaml --batch 5000
sed 's/^  validation_split: 0.2$/&\n  shards: 2/' configs/seed.yaml >"$TMP/shards.yaml"
bad "shards not a multiple of ranks" "not a multiple" "$TMP/shards.yaml" --ranks 3
bad "unknown option" "unknown or incomplete option" configs/seed.yaml --nope
bad "no argument" "needs a config"
finish
