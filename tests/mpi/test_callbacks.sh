#!/usr/bin/env bash
# train.early_stopping, train.reduce_lr_on_plateau and checkpoint.best decide
# where Keras would: a reference of Keras's rules (callbacks_ref.py) replays
# each run's own epoch figures and must reach the same stop epoch, learning
# rates, best.h5 epoch and final weights. The runs are bit-identical on 1, 2
# and 4 ranks and across resumes, and bad callback settings are one error line.
source "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
REF=$SRC/tests/mpi/callbacks_ref.py

"$PY" "$REF" data "$TMP/data.h5" || { echo "FAILED: cannot write the data set"; exit 1; }
# 160 rows in 4 shards: the same bits on 1, 2 and 4 ranks; 10 steps an epoch.
cat >"$TMP/cb.yaml" <<EOF
data: {path: $TMP/data.h5, shards: 4}
model:
  input: [20]
  layers:
    - dense: {units: 32, activation: relu}
    - dense: {units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train:
  epochs: 30
  batch_size: 16
  early_stopping: {monitor: val_loss, patience: 4, min_delta: 0.005, restore_best_weights: true}
  reduce_lr_on_plateau: {monitor: val_loss, factor: 0.5, patience: 1, cooldown: 1, min_lr: 0.003}
checkpoint: {keep: 100, best: {monitor: val_loss}}
EOF
A=(epochs=30 es=1 es_patience=4 es_min_delta=0.005 restore=1 rl=1 rl_factor=0.5 rl_patience=1
  rl_cooldown=1 rl_min_lr=0.003 lr=0.01 best=1)
model_same() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }

# ---- the reference's decisions ----
run_np 1 "$TMP/one.log" train "$TMP/cb.yaml" --run-dir "$TMP/one"
check "1 rank: an early stop exits 0" test $? -eq 0
"$PY" "$REF" check "$TMP/one" "${A[@]}" >"$TMP/ref.txt"
check "stop epoch, learning rates and best.h5 epoch are Keras's" test $? -eq 0
cat "$TMP/ref.txt"
check "the run stopped early, with the rate cut twice down to min_lr" \
  grep -q "stop [1-9][0-9]*, .*learning rates \[0.01, 0.005, 0.003\]" "$TMP/ref.txt"
stop=$(grep -o 'stop [0-9]*' "$TMP/ref.txt" | cut -d' ' -f2)
check "it says at which epoch it stopped and why" \
  grep -q "early stopping at epoch $stop: val_loss did not improve on its best, .* by more than min_delta 0.005 for 4 epochs (patience 4)" "$TMP/one.log"
best_ckpt=$(tail -1 "$TMP/ref.txt")
check "restore_best_weights: the final checkpoint has the best epoch's weights" \
  model_same "$(newest "$TMP/one")" "$best_ckpt"
check "... which are not the stop epoch's own (min_delta kept epoch 4 from counting)" \
  bash -c "! grep -q 'best.h5 epoch \\([0-9]*\\), restore epoch \\1,' '$TMP/ref.txt'"
check "... nor best.h5's, a later epoch that beat the best by less than min_delta" \
  bash -c "! h5diff -d 0 '$(newest "$TMP/one")' '$TMP/one/best.h5' /model /model >/dev/null 2>&1"
check "best.h5 is an extra file: one ckpt-*.h5 per epoch beside it" \
  test "$(ls "$TMP/one" | grep -c '^ckpt-')" -eq "$stop"

# ---- the same bits on 2 ranks (shared memory) and 4 (MPI allreduce) ----
run_np 2 "$TMP/two.log" train "$TMP/cb.yaml" --run-dir "$TMP/two"
check "2 ranks exit 0" test $? -eq 0
same_runs "callbacks, 2 ranks and 1" one two
check "2 ranks: the same best.h5" model_same "$TMP/one/best.h5" "$TMP/two/best.h5"
run_np 4 "$TMP/four.log" train "$TMP/cb.yaml" --set train.shared_memory=false --run-dir "$TMP/four"
check "4 ranks exit 0" test $? -eq 0
same_runs "callbacks, 4 ranks and 1" one four
check "4 ranks: the same best.h5" model_same "$TMP/one/best.h5" "$TMP/four/best.h5"
check "4 ranks: the same callback state" \
  h5diff -d 0 "$(newest "$TMP/one")" "$(newest "$TMP/four")" /callbacks /callbacks

# ---- resumed mid-epoch (step 25) and at an epoch end (step 50) ----
run_np 2 "$TMP/r1.log" train "$TMP/cb.yaml" --run-dir "$TMP/res" --stop-after 25
check "stopped at step 25 exits 3" test $? -eq 3
run_np 2 "$TMP/r2.log" train "$TMP/cb.yaml" --run-dir "$TMP/res" --resume --stop-after 25
check "stopped again at step 50 exits 3" test $? -eq 3
run_np 2 "$TMP/r3.log" train "$TMP/cb.yaml" --run-dir "$TMP/res" --resume
check "the resumed run exits 0" test $? -eq 0
cat "$TMP/r1.log" "$TMP/r2.log" "$TMP/r3.log" >"$TMP/res.log"
same_runs "callbacks, resumed twice and uninterrupted" two res
check "resumed: the same callback state" \
  h5diff -d 0 "$(newest "$TMP/two")" "$(newest "$TMP/res")" /callbacks /callbacks
check "resumed: the same best.h5" model_same "$TMP/two/best.h5" "$TMP/res/best.h5"
check "resumed: the same early stop" grep -q "early stopping at epoch $stop:" "$TMP/r3.log"
"$PY" "$REF" check "$TMP/res" "${A[@]}" >/dev/null
check "resumed: Keras's decisions still" test $? -eq 0

# A finished early-stopped run has nothing left to resume.
last=$(newest "$TMP/one")
run_np 1 "$TMP/again.log" train "$TMP/cb.yaml" --run-dir "$TMP/one" --resume
check "resuming an early-stopped run exits 0" test $? -eq 0
check "... trains no further epoch" bash -c "! grep -q '^Epoch [0-9]*/30' '$TMP/again.log'"
check "... and writes no checkpoint" test "$(newest "$TMP/one")" = "$last"

# ---- restore_best_weights without a stop (Keras 3 restores at the end too);
# auto mode on val_accuracy maximizes; best.h5 minimizes val_loss ----
B=(--set train.epochs=6 --set 'train.early_stopping={monitor: val_accuracy, patience: 100, restore_best_weights: true}'
  --set train.reduce_lr_on_plateau=null --set 'checkpoint.best={monitor: val_loss, mode: min}')
run_np 1 "$TMP/b.log" train "$TMP/cb.yaml" "${B[@]}" --run-dir "$TMP/b"
check "no-stop run exits 0" test $? -eq 0
"$PY" "$REF" check "$TMP/b" epochs=6 es=1 es_monitor=val_accuracy es_patience=100 restore=1 \
  best=1 best_mode=min >"$TMP/b.txt"
check "no-stop run: Keras's decisions" test $? -eq 0
check "no-stop run: the rate stays constant without reduce_lr_on_plateau" \
  test "$(json_field "$TMP/b/metrics.jsonl" 6 learning_rate)" = 0.01
check "no-stop run: the final checkpoint has the best epoch's weights" \
  model_same "$(newest "$TMP/b")" "$(tail -1 "$TMP/b.txt")"
run_np 1 "$TMP/c.log" train "$TMP/cb.yaml" "${B[@]}" \
  --set train.early_stopping.restore_best_weights=false --run-dir "$TMP/c"
check "control: without restore_best_weights the final weights are the last epoch's" \
  bash -c "! h5diff -d 0 '$(newest "$TMP/c")' '$(tail -1 "$TMP/b.txt")' /model /model >/dev/null 2>&1"

# best.h5 improves at the last epoch, early_stopping's best (val_accuracy) is
# older: best.h5 gets the last epoch's own weights before they are replaced.
run_np 1 "$TMP/b2.log" train "$TMP/cb.yaml" "${B[@]}" --set train.epochs=3 --run-dir "$TMP/b2"
"$PY" "$REF" check "$TMP/b2" epochs=3 es=1 es_monitor=val_accuracy es_patience=100 restore=1 \
  best=1 best_mode=min >"$TMP/b2.txt"
check "restore at the epoch best.h5 improves: Keras's decisions" test $? -eq 0
check "... best.h5 holds the last epoch, the restore an earlier one" \
  grep -q "best.h5 epoch 3, restore epoch [12]," "$TMP/b2.txt"
check "... the final weights are the restored epoch's" \
  model_same "$(newest "$TMP/b2")" "$(tail -1 "$TMP/b2.txt")"
run_np 1 "$TMP/c2.log" train "$TMP/cb.yaml" "${B[@]}" --set train.epochs=3 \
  --set train.early_stopping.restore_best_weights=false --run-dir "$TMP/c2"
check "... best.h5 has the last epoch's own weights" model_same "$TMP/b2/best.h5" "$(newest "$TMP/c2")"

# ---- bad settings: one error line at config load, no run directory ----
bad() { # NAME EXPECTED-FRAGMENTS ARGS...
  local name=$1 frags=$2
  shift 2
  rm -rf "$TMP/bad"
  ASAN_OPTIONS=$(singleton_asan) timeout 60 "$DPTRAIN" train "$TMP/cb.yaml" "$@" --run-dir "$TMP/bad" >"$TMP/bad.log" 2>&1
  local rc=$?
  check "$name: exits 1" test $rc -eq 1
  check "$name: one error line" test "$(grep -c '^dptrain: error: ' "$TMP/bad.log")" -eq 1
  check "$name: names the problem" has_all "$TMP/bad.log" "$frags"
  check "$name: writes nothing" test ! -e "$TMP/bad"
}
bad "unknown monitor" $'train.early_stopping.monitor: unknown monitor \'val_los\'\tval_loss' \
  --set train.early_stopping.monitor=val_los
bad "unknown monitor in checkpoint.best" $'checkpoint.best.monitor: unknown monitor \'f1\'' \
  --set checkpoint.best.monitor=f1
bad "bad mode" $'train.reduce_lr_on_plateau.mode: unknown mode \'up\'\tauto, min' \
  --set train.reduce_lr_on_plateau.mode=up
bad "negative patience" $'train.early_stopping.patience: must be >= 0' \
  --set train.early_stopping.patience=-1
bad "factor 1" $'train.reduce_lr_on_plateau.factor: must be in (0, 1), got 1' \
  --set train.reduce_lr_on_plateau.factor=1
bad "negative min_delta" $'train.early_stopping.min_delta: must be >= 0' \
  --set train.early_stopping.min_delta=-0.1
bad "accuracy not computed" $'train.early_stopping.monitor: val_accuracy is not computed; add metrics: [accuracy]' \
  --set train.early_stopping.monitor=val_accuracy --set 'metrics=[]'
bad "plateau with a schedule" $'train.reduce_lr_on_plateau: the optimizer\'s learning_rate is a exponential_decay schedule' \
  --set 'optimizer.learning_rate={schedule: exponential_decay, initial_learning_rate: 0.01, decay_steps: 10, decay_rate: 0.9}'
bad "not a mapping" $'train.early_stopping: expected a mapping' --set train.early_stopping=3
# Validation rows exist only once the data file is open: still before any write.
"$PY" - "$TMP/data.h5" "$TMP/noval.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1]) as a, h5py.File(sys.argv[2], "w") as b:
    b["train/x"], b["train/y"] = a["train/x"][()], a["train/y"][()]
EOF
bad "val_loss without validation rows" \
  $'train.early_stopping.monitor is val_loss, but the run has no validation rows\tdata.validation_split' \
  --set data.path="$TMP/noval.h5"
finish
