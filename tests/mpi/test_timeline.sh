#!/usr/bin/env bash
# The timeline (train.timeline, --timeline, --timeline-steps), on the seed model
# for 2 epochs of 6 steps on 2 ranks, each file checked by check_timeline.py:
# valid JSON, metadata naming each rank's track, spans on every rank, each
# required kind of span on every rank, exactly the asked steps, async bucket
# spans that pair up, and spans that nest on every track.
# - over MPI (4 shards: the exact two-phase sum; 1 KiB buckets: two buckets),
#   the default window (the first 20 steps: all 12): data, forward and backward
#   per layer, loss, both starts, wires, waits and completions of each bucket,
#   reduction, barriers, optimizer, evaluation, checkpoints, and the writer
#   thread's checkpoint writes; the final checkpoint is bit-identical to a run
#   without a timeline;
# - through shared memory, the config keys with steps 3:5: only steps 3-5, with
#   the shared-memory sum, its fences and per-layer spans;
# - stopped by --stop-after 4, the file is still written (steps 1-4); resumed,
#   the default window starts at the run's first step (5-12);
# - a timeline may go in a run directory that the run itself creates;
# - the checker rejects partly overlapping spans, so its nesting check can fail;
# - bad input, one error line each and no file (nor run directory) written:
#   a path in a missing directory, a path that is a directory, a reversed and a
#   malformed --timeline-steps, a bad train.timeline_steps.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
CHECK=$SRC/tests/mpi/check_timeline.py
base=(train configs/seed.yaml --set train.epochs=2 --set train.batch_size=100)
mpi=(--set data.shards=4 --set train.shared_memory=false --set train.bucket_kib=1)
all_kinds=step,data,forward,layer_forward,loss,backward,layer_backward,bucket_max_start
all_kinds+=,bucket_sum_start,bucket_max_allreduce,bucket_sum_allreduce,bucket_wait
all_kinds+=,bucket_complete,reduction,barrier,optimizer,evaluation,checkpoint

run_np 2 "$TMP/tl.log" "${base[@]}" "${mpi[@]}" --run-dir "$TMP/tl" --timeline "$TMP/tl.json"
check "MPI path with a timeline: exit 0" test $? -eq 0
check "MPI path: the run says where the timeline went" grep -q "timeline of steps 1 to 12 written to $TMP/tl.json" "$TMP/tl.log"
"$PY" "$CHECK" "$TMP/tl.json" 2 --cats "$all_kinds" --steps 1:12 --writer
check "MPI path: every kind of span on both ranks, nested, steps 1-12" test $? -eq 0
check "MPI path: no temporary file left" test -z "$(ls "$TMP" | grep 'tl.json.tmp')"
run_np 2 "$TMP/plain.log" "${base[@]}" "${mpi[@]}" --run-dir "$TMP/plain"
check "MPI path without a timeline: exit 0" test $? -eq 0
same_runs "timeline on and off" tl plain

run_np 2 "$TMP/shm.log" "${base[@]}" --run-dir "$TMP/shm" --set "train.timeline=$TMP/shm.json" \
  --set train.timeline_steps=3:5
check "shared memory, config keys: exit 0" test $? -eq 0
"$PY" "$CHECK" "$TMP/shm.json" 2 --steps 3:5 \
  --cats step,data,forward,layer_forward,backward,layer_backward,shared_memory,shared_memory_range,barrier
check "shared memory: its spans on both ranks, nested, steps 3-5 only" test $? -eq 0

run_np 2 "$TMP/stop.log" "${base[@]}" --run-dir "$TMP/re" --timeline "$TMP/stop.json" --stop-after 4
check "stopped early: exit 3" test $? -eq 3
"$PY" "$CHECK" "$TMP/stop.json" 2 --steps 1:4 --cats step,data,checkpoint
check "stopped early: the timeline of steps 1-4 is written" test $? -eq 0
run_np 2 "$TMP/resume.log" "${base[@]}" --run-dir "$TMP/re" --timeline "$TMP/resume.json" --resume
check "resumed: exit 0" test $? -eq 0
"$PY" "$CHECK" "$TMP/resume.json" 2 --steps 5:12 --cats step,evaluation
check "resumed: the default window starts at the run's first step" test $? -eq 0

run_np 1 "$TMP/inrun.log" "${base[@]}" --run-dir "$TMP/fresh/" --timeline "$TMP/fresh/t.json" \
  --timeline-steps 2:2
check "a timeline in the run directory to be made: exit 0" test $? -eq 0
"$PY" "$CHECK" "$TMP/fresh/t.json" 1 --steps 2:2 --cats step
check "a timeline in the run directory to be made: written" test $? -eq 0

cat >"$TMP/overlap.json" <<'EOF'
{"traceEvents": [
{"name": "process_name", "ph": "M", "pid": 0, "args": {"name": "rank 0"}},
{"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "rank 0"}},
{"name": "a", "cat": "step", "ph": "X", "ts": 1.000, "dur": 5.000, "pid": 0, "tid": 0, "args": {"arg": 1}},
{"name": "b", "cat": "data", "ph": "X", "ts": 2.000, "dur": 1.000, "pid": 0, "tid": 0, "args": {"arg": 0}},
{"name": "c", "cat": "data", "ph": "X", "ts": 4.000, "dur": 3.000, "pid": 0, "tid": 0, "args": {"arg": 0}}]}
EOF
"$PY" "$CHECK" "$TMP/overlap.json" 1 >"$TMP/overlap.out"
check "the checker rejects spans that overlap without nesting" test $? -ne 0
check "the checker names the overlap" grep -q "'c' .* overlaps 'a'" "$TMP/overlap.out"

# bad NAME STATUS EXPECTED ARGS...: exit STATUS, one error line holding
# EXPECTED, no run directory and no timeline written.
bad() {
  local name=$1 status=$2 expected=$3
  shift 3
  run_np 2 "$TMP/bad.log" "${base[@]}" --run-dir "$TMP/badrun" "$@"
  check "$name: exit $status" test $? -eq "$status"
  check "$name: one error line" test "$(grep -c 'error' "$TMP/bad.log")" -eq 1
  check "$name: the line says '$expected'" has_all "$TMP/bad.log" "$expected"
  check "$name: nothing written" test ! -e "$TMP/badrun" -a ! -e "$TMP/nodir"
}
bad "missing directory" 1 $'--timeline\tdirectory \''"$TMP"$'/nodir\' of the timeline\tdoes not exist' \
  --timeline "$TMP/nodir/t.json"
mkdir -p "$TMP/adir"
bad "path is a directory" 1 $'train.timeline\tis a directory' --set "train.timeline=$TMP/adir"
bad "reversed steps" 2 $'--timeline-steps\texpected 1 <= A <= B\t9:3' \
  --timeline "$TMP/t.json" --timeline-steps 9:3
bad "malformed steps" 2 $'--timeline-steps\texpected a step range A:B\tfirst' \
  --timeline "$TMP/t.json" --timeline-steps first
bad "bad config steps" 1 $'train.timeline_steps\texpected 1 <= A <= B\t0:4' \
  --timeline "$TMP/t.json" --set train.timeline_steps=0:4
check "no timeline written by a bad input" test ! -e "$TMP/t.json"

finish
