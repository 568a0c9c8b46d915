#!/usr/bin/env bash
# Streamed rows (data.in_memory: false) train to the same bits as rows held in
# memory: on 1, 2 and 4 ranks over 4 shards (the exact sum), from a chunked and
# deflate-compressed file, from uint8 storage, with any read-ahead depth, and
# across a stop and a resume on another rank count. data.in_memory auto streams above
# data.memory_mib. A read that fails mid-run (the file truncated under the
# reader, at a step the reader is held at) ends every rank with one error
# line, and keeps the last good checkpoint.
source "$(dirname "$0")/common.sh"

/usr/bin/python3 tests/mpi/make_stream_data.py "$TMP"
cat >"$TMP/cfg.yaml" <<YAML
data: {path: $TMP/f32.h5, standardize: true, validation_split: 0.05, shards: 4}
model:
  input: [1, 4, 4]
  layers:
    - flatten: {}
    - dense: {units: 32, activation: relu}
    - dropout: {rate: 0.2}
    - dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 2, batch_size: 512, seed: 5}
checkpoint: {keep: 50, every_steps: 5}
YAML
run() { # run NAME NP ARGS...: trains into $TMP/NAME, log $TMP/NAME.log
  local name=$1 np=$2
  shift 2
  run_np "$np" "$TMP/$name.log" train "$TMP/cfg.yaml" --run-dir "$TMP/$name" "$@"
}
mem=(--set data.in_memory=true)
str=(--set data.in_memory=false)

run mem1 1 "${mem[@]}"
check "in memory on np 1 exits 0" test $? -eq 0
check "in memory says so" grep -q "^dptrain: data: in memory (.*); standardization pass [0-9.]* s; first step after [0-9.]* s$" "$TMP/mem1.log"
for np in 1 2 4; do
  run str$np "$np" "${str[@]}"
  check "streamed on np $np exits 0" test $? -eq 0
  same_runs "streamed on np $np against in memory" mem1 str$np
done
check "a streamed run reports its start-up and stall" \
  grep -q "^dptrain: data: streamed from .*f32.h5 .*; first step after [0-9.]* s; reader stalled [0-9.]* s" \
  "$TMP/str2.log"
check "validation and test figures are printed" grep -q "val_loss: .*Test loss\|Test loss" "$TMP/str4.log"

# Chunks of 7 rows, compressed: every step's rows come from many chunks.
run chunk2 2 "${str[@]}" --set data.path="$TMP/chunked.h5"
check "chunked + deflate streamed exits 0" test $? -eq 0
same_runs "chunked + deflate streamed" mem1 chunk2
run chunkmem 1 "${mem[@]}" --set data.path="$TMP/chunked.h5"
same_runs "chunked + deflate in memory" mem1 chunkmem

# uint8 storage, widened to x / 255 as the rows are used: streamed on 4
# ranks, and stopped on 2 and resumed on 1, against in memory on 1.
u8=(--set data.path="$TMP/u8.h5" --set data.scale=1/255)
run u8mem 1 "${mem[@]}" "${u8[@]}"
check "uint8 in memory exits 0" test $? -eq 0
run u8str 4 "${str[@]}" "${u8[@]}"
same_runs "uint8 streamed on np 4" u8mem u8str
run u8stop 2 "${str[@]}" "${u8[@]}" --stop-after 23
check "uint8 streamed stops on request (exit 3)" test $? -eq 3
run_np 1 "$TMP/u8resume.log" train "$TMP/cfg.yaml" --run-dir "$TMP/u8stop" "${str[@]}" "${u8[@]}" --resume
check "uint8: stop on 2, resume on 1, streamed: bit-identical" same_ckpt "$TMP/u8mem" "$TMP/u8stop" /model
check "uint8 trains to other bits than float32 (the comparison can fail)" \
  differ_ckpt "$TMP/mem1" "$TMP/u8mem" /model

# The read-ahead depth changes when rows are read, never which.
run pf1 2 "${str[@]}" --set data.prefetch_steps=1
same_runs "prefetch_steps 1" mem1 pf1
run pf7 4 "${str[@]}" --set data.prefetch_steps=7
same_runs "prefetch_steps 7" mem1 pf7

# Stopped mid-epoch 2 while streaming on 2 ranks, resumed streaming on 4.
run stop 2 "${str[@]}" --stop-after 61
check "a streamed run stops on request (exit 3)" test $? -eq 3
run_np 4 "$TMP/resume.log" train "$TMP/cfg.yaml" --run-dir "$TMP/stop" "${str[@]}" --resume
check "the resume exits 0" test $? -eq 0
check "stop on 2, resume on 4, streamed: bit-identical" same_ckpt "$TMP/mem1" "$TMP/stop" /model
check "... and the same optimizer state" same_ckpt "$TMP/mem1" "$TMP/stop" /optimizer
check "the resume takes the statistics from the checkpoint, without a pass" \
  grep -q "standardization statistics from the checkpoint" "$TMP/resume.log"
check "a fresh run makes the pass" grep -q "standardization pass [0-9.]* s" "$TMP/str2.log"

# auto: 1.6 MiB of rows on one rank exceed a 1 MiB limit; the default (a
# quarter of the machine's memory) does not.
run auto1 1 --set data.memory_mib=1
check "auto above data.memory_mib streams" grep -q "^dptrain: data: streamed" "$TMP/auto1.log"
same_runs "auto, streamed" mem1 auto1
run autodef 1
check "auto under the default limit keeps rows in memory" grep -q "^dptrain: data: in memory" "$TMP/autodef.log"

# A file truncated under the reader: rank 1's reader is held before step 30's
# rows (checkpoints every 5 steps), the file is cut in half, the reader goes on.
cp "$TMP/f32.h5" "$TMP/cut.h5"
mkdir -p "$TMP/hold"
DPTRAIN_TEST_HOLD=read:30@1 DPTRAIN_TEST_HOLD_DIR="$TMP/hold" \
  run cut 2 "${str[@]}" --set data.path="$TMP/cut.h5" &
pid=$!
for _ in $(seq 600); do [ -e "$TMP/hold/held-read-1" ] && break; sleep 0.1; done
check "rank 1's reader is held before step 30" test -e "$TMP/hold/held-read-1"
truncate -s $(($(stat -c %s "$TMP/cut.h5") / 2)) "$TMP/cut.h5"
rm -f "$TMP/hold/held-read-1"
wait "$pid"
check "the run ends with exit 1 (no hang)" test $? -eq 1
check "exactly one error line" test "$(grep -c '^dptrain: error: ' "$TMP/cut.log")" -eq 1
check "it names the file and the truncation" has_all "$TMP/cut.log" "cut.h5	shrank"
check "the last good checkpoint (step 25) is the newest" \
  test "$(basename "$(newest "$TMP/cut")")" = ckpt-000000000025.h5
check "it is readable and equal to the uninterrupted run's at step 25" \
  h5diff -d 0 "$TMP/cut/ckpt-000000000025.h5" "$TMP/mem1/ckpt-000000000025.h5" /model /model

# Bad settings: one error line each.
for bad in "data.prefetch_steps=0	prefetch_steps" "data.in_memory=maybe	in_memory" \
  "data.memory_mib=-1	memory_mib"; do
  set_arg=${bad%%$'\t'*} frag=${bad#*$'\t'}
  run bad 2 --set "$set_arg"
  rc=$?
  check "$set_arg is refused (exit 1)" test $rc -eq 1
  check "$set_arg: one error line naming $frag" \
    test "$(grep -c '^dptrain: error: ' "$TMP/bad.log")" -eq 1 -a -n "$(grep "^dptrain: error: .*$frag" "$TMP/bad.log")"
done
finish
