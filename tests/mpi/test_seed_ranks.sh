#!/usr/bin/env bash
# The seed config trains on 1, 2 and 4 ranks; replicas stay identical; the
# 1- and 2-rank runs reach similar loss at the same global batch; the full
# 50-epoch run on 2 ranks reaches the reference's test accuracy.
source "$(dirname "$0")/common.sh"

for np in 1 2 4; do
  log=$TMP/np$np.log
  run_np "$np" "$log" train configs/seed.yaml --set train.epochs=5 --run-dir "$TMP/np$np"
  rc=$?
  check "np $np exits 0" test "$rc" -eq 0
  check "np $np replicas agree" grep -q "replicas: $np rank(s) agree on parameter hash" "$log"
  check "np $np prints one line per epoch" test "$(grep -c '^Epoch [0-9]*/5 ' "$log")" -eq 5
  check "np $np writes 5 epochs and a test line" test "$(wc -l <"$TMP/np$np/metrics.jsonl")" -eq 6
  loss1=$(json_field "$TMP/np$np/metrics.jsonl" 1 loss)
  loss5=$(json_field "$TMP/np$np/metrics.jsonl" 5 loss)
  check "np $np loss falls ($loss1 -> $loss5)" fgt "$loss1" "$loss5"
  check "np $np keeps 3 checkpoints" test "$(ls "$TMP/np$np"/ckpt-*.h5 | wc -l)" -eq 3
done

# Same global batch, different rank counts: the loss curves agree closely.
l1=$(json_field "$TMP/np1/metrics.jsonl" 5 loss)
l2=$(json_field "$TMP/np2/metrics.jsonl" 5 loss)
check "np 1 and np 2 reach similar loss ($l1 vs $l2)" \
  awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 0.1 * a) }'

# The seed example as the README runs it: 50 epochs on 2 ranks.
run_np 2 "$TMP/full.log" train configs/seed.yaml --run-dir "$TMP/full"
check "full seed run exits 0" test $? -eq 0
acc=$(json_field "$TMP/full/metrics.jsonl" 51 test_accuracy)
check "seed test accuracy $acc >= 0.80" fgt "$acc" 0.7999
finish
