#!/usr/bin/env bash
# A run stopped after a checkpoint and resumed ends with the same parameters,
# bit for bit, as a run that was never stopped.
source "$(dirname "$0")/common.sh"

same_model() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }

run_np 2 "$TMP/whole.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/whole"
check "uninterrupted run exits 0" test $? -eq 0

# Stopped at an epoch boundary (2 epochs of 56 steps), resumed.
run_np 2 "$TMP/a1.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/a" --stop-after 112
check "stopped run exits 3" test $? -eq 3
check "stopped run says how to resume" grep -q "stopped as asked; checkpoint written at step 112; resume with --resume" "$TMP/a1.log"
run_np 2 "$TMP/a2.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/a" --resume
check "resumed run exits 0" test $? -eq 0
check "resumed run names its checkpoint" grep -q "resuming from .*ckpt-000000000112.h5" "$TMP/a2.log"
check "epoch-boundary resume is bit-identical" same_model "$(newest "$TMP/whole")" "$(newest "$TMP/a")"

# Stopped mid-epoch (step 150 of 224), resumed.
run_np 2 "$TMP/b1.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/b" --stop-after 150
check "mid-epoch stop exits 3" test $? -eq 3
check "mid-epoch checkpoint written" test -f "$TMP/b/ckpt-000000000150.h5"
run_np 2 "$TMP/b2.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/b" --resume
check "mid-epoch resume exits 0" test $? -eq 0
check "mid-epoch resume is bit-identical" same_model "$(newest "$TMP/whole")" "$(newest "$TMP/b")"
check "mid-epoch resume: metrics.jsonl = the uninterrupted run's but for wall-clock fields" \
  tests/mpi/check_metrics.py same "$TMP/b/metrics.jsonl" "$TMP/whole/metrics.jsonl"

# Resuming a complete run trains nothing, writes nothing and appends nothing.
cp -r "$TMP/whole" "$TMP/g"
cp "$TMP/g/metrics.jsonl" "$TMP/g.jsonl"
files=$(ls -l --time-style=full-iso "$TMP/g")
run_np 2 "$TMP/g.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/g" --resume
check "resuming a complete run exits 0" test $? -eq 0
check "it says there is nothing to train" \
  grep -qx "dptrain: the run in $TMP/g is complete (epoch 4, step 224): nothing to train" "$TMP/g.log"
check "it evaluates nothing" bash -c "! grep -qi 'test loss' '$TMP/g.log'"
check "metrics.jsonl is unchanged" cmp -s "$TMP/g/metrics.jsonl" "$TMP/g.jsonl"
check "no file in the run directory changed" test "$(ls -l --time-style=full-iso "$TMP/g")" = "$files"
# A complete run whose test record was lost (killed during the test
# evaluation) gets it once: the same figures as the lost one.
head -n -1 "$TMP/g.jsonl" >"$TMP/g/metrics.jsonl"
run_np 2 "$TMP/g2.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/g" --resume
check "a lost test record: resume exits 0" test $? -eq 0
check "it says it evaluates the test rows" grep -q "nothing to train; evaluating the test rows" "$TMP/g2.log"
check "the test record is back, the same but for wall-clock fields" \
  tests/mpi/check_metrics.py same "$TMP/g/metrics.jsonl" "$TMP/g.jsonl"
run_np 2 "$TMP/g3.log" train configs/seed.yaml --set train.epochs=4 --run-dir "$TMP/g" --resume
check "resumed once more, nothing is appended" test "$(wc -l <"$TMP/g/metrics.jsonl")" -eq "$(wc -l <"$TMP/g.jsonl")"

# --resume with nothing to resume starts fresh and says so.
run_np 1 "$TMP/c.log" train configs/seed.yaml --set train.epochs=1 --run-dir "$TMP/c" --resume
check "resume without checkpoint starts fresh" grep -q "no checkpoint in .*; starting fresh" "$TMP/c.log"

# checkpoint.every_steps adds step checkpoints between the epoch-end ones.
run_np 2 "$TMP/e.log" train configs/seed.yaml --set train.epochs=1 --set checkpoint.every_steps=20 \
  --set checkpoint.keep=10 --run-dir "$TMP/e"
check "every_steps run exits 0" test $? -eq 0
check "checkpoints at steps 20, 40 and 56" \
  test "$(cd "$TMP/e" && echo ckpt-*.h5)" = "ckpt-000000000020.h5 ckpt-000000000040.h5 ckpt-000000000056.h5"

# The temporary file of a write that was killed is removed at the next start.
touch "$TMP/e/.ckpt-000000000041.h5.tmp-99999"
run_np 1 "$TMP/e2.log" train configs/seed.yaml --set train.epochs=1 --set data.shards=2 \
  --set checkpoint.every_steps=20 --set checkpoint.keep=10 --run-dir "$TMP/e" --resume
check "resume after a killed write exits 0" test $? -eq 0
check "the dead write's temporary file is gone" test ! -e "$TMP/e/.ckpt-000000000041.h5.tmp-99999"

# A torn newest checkpoint: resume falls back to the previous one and says so.
cp -r "$TMP/whole" "$TMP/d"
torn=$(newest "$TMP/d")
head -c 2000 "$torn" >"$torn.cut" && mv "$torn.cut" "$torn"
run_np 2 "$TMP/d.log" train configs/seed.yaml --set train.epochs=5 --run-dir "$TMP/d" --resume
check "resume past a torn checkpoint exits 0" test $? -eq 0
check "torn checkpoint is reported" grep -q "warning: .*ckpt-000000000224.h5: .*trying an older checkpoint" "$TMP/d.log"
check "resumed from the previous checkpoint" grep -q "resuming from .*ckpt-000000000168.h5" "$TMP/d.log"

# The checkpoint is readable by name, with h5dump (as h5py users would).
check "checkpoint holds /model/0_dense/kernel [20, 64]" \
  bash -c "h5dump -H -d /model/0_dense/kernel '$(newest "$TMP/whole")' | grep -q 'DATASPACE  SIMPLE { ( 20, 64 )'"
finish
