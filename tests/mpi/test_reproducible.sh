#!/usr/bin/env bash
# With data.shards fixed, training gives bit-identical parameters on 1, 2 and 4
# ranks, and twice on the same rank count; exact resume works across rank
# counts; the fast reduction still trains to the same accuracy.
source "$(dirname "$0")/common.sh"

same_model() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }
args=(train configs/seed.yaml --set train.epochs=3 --set data.shards=4)

for np in 1 2 4; do
  run_np "$np" "$TMP/p$np.log" "${args[@]}" --run-dir "$TMP/p$np"
  check "shards 4 on np $np exits 0" test $? -eq 0
done
run_np 2 "$TMP/p2b.log" "${args[@]}" --run-dir "$TMP/p2b"
check "np 1 and np 2 bit-identical" same_model "$(newest "$TMP/p1")" "$(newest "$TMP/p2")"
check "np 1 and np 4 bit-identical" same_model "$(newest "$TMP/p1")" "$(newest "$TMP/p4")"
check "two np 2 runs bit-identical" same_model "$(newest "$TMP/p2")" "$(newest "$TMP/p2b")"
check "optimizer state bit-identical too" \
  h5diff -d 0 "$(newest "$TMP/p1")" "$(newest "$TMP/p4")" /optimizer /optimizer
# The same loss is printed whatever P is.
check "np 1 and np 4 print the same losses" \
  test "$(grep -o 'loss: [0-9.]*' "$TMP/p1.log")" = "$(grep -o 'loss: [0-9.]*' "$TMP/p4.log")"

# Two shards (the default on 2 ranks) take the float path: one addition per
# element, commutative, so 1 and 2 ranks still agree bit for bit.
run_np 1 "$TMP/s2p1.log" train configs/seed.yaml --set train.epochs=3 --set data.shards=2 --run-dir "$TMP/s2p1"
run_np 2 "$TMP/s2p2.log" train configs/seed.yaml --set train.epochs=3 --run-dir "$TMP/s2p2"
check "shards 2: np 1 and np 2 bit-identical" same_model "$(newest "$TMP/s2p1")" "$(newest "$TMP/s2p2")"

# Buckets of 1 KiB split the seed model's gradient into several reductions that
# start during backward; the bits do not change.
run_np 2 "$TMP/bk.log" "${args[@]}" --set train.bucket_kib=1 --run-dir "$TMP/bk"
check "1 KiB buckets bit-identical to one bucket" same_model "$(newest "$TMP/p1")" "$(newest "$TMP/bk")"
run_np 2 "$TMP/bkf.log" "${args[@]}" --set train.bucket_kib=1 --set data.shards=2 --run-dir "$TMP/bkf"
run_np 1 "$TMP/bkf1.log" "${args[@]}" --set data.shards=2 --run-dir "$TMP/bkf1"
check "1 KiB buckets on the float path bit-identical too" same_model "$(newest "$TMP/bkf1")" "$(newest "$TMP/bkf")"

# The comparison can fail: a different seed gives different bits.
run_np 1 "$TMP/seed7.log" "${args[@]}" --set train.seed=7 --run-dir "$TMP/seed7"
check "a different seed differs" bash -c "! h5diff -d 0 '$(newest "$TMP/p1")' '$(newest "$TMP/seed7")' /model /model >/dev/null 2>&1"

# Stop on 4 ranks mid-epoch, resume on 1 and on 2: same bits as never stopping.
run_np 4 "$TMP/s.log" "${args[@]}" --run-dir "$TMP/s" --stop-after 70
check "stop on np 4 exits 3" test $? -eq 3
cp -r "$TMP/s" "$TMP/s2"
run_np 1 "$TMP/r1.log" "${args[@]}" --run-dir "$TMP/s" --resume
check "resume on np 1 exits 0" test $? -eq 0
check "stop on 4, resume on 1: bit-identical" same_model "$(newest "$TMP/p1")" "$(newest "$TMP/s")"
run_np 2 "$TMP/r2.log" "${args[@]}" --run-dir "$TMP/s2" --resume
check "stop on 4, resume on 2: bit-identical" same_model "$(newest "$TMP/p1")" "$(newest "$TMP/s2")"

# shards must be a multiple of the rank count.
run_np 2 "$TMP/bad.log" train configs/seed.yaml --set data.shards=3 --run-dir "$TMP/bad"
check "shards 3 on np 2 is an error" test $? -eq 1
check "shards error names the problem" grep -q "data.shards 3 is not a multiple of the number of ranks 2" "$TMP/bad.log"

# Fast mode trains as well (accuracy within a few points of exact mode).
run_np 2 "$TMP/fast.log" train configs/seed.yaml --set train.reduction=fast --run-dir "$TMP/fast"
check "fast mode exits 0" test $? -eq 0
acc=$(json_field "$TMP/fast/metrics.jsonl" 51 test_accuracy)
check "fast mode test accuracy $acc >= 0.80" fgt "$acc" 0.7999
finish
