#!/usr/bin/env bash
# Stop signals (DESIGN §7): SIGUSR1 or SIGTERM makes every rank stop after the
# same step, rank 0 write a checkpoint, and every rank exit with status 4; a
# --resume then ends bit-identical to a run that was never stopped.
#  a. SIGUSR1 to mpirun, which forwards it to every rank;
#  b. SIGTERM to rank 1 alone (rank 0 learns of it inside the step's collective);
#  c. SIGUSR1 while the ranks are still setting up (in MPI_Init);
#  d. SIGUSR1 inside the last epoch: still a stop, not a finished run.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

cfg=configs/seed.yaml
STEPS=56 # steps per epoch of the seed data
E=1000   # ~2 s at ~30,000 steps/s here: a signal sent after epoch 1 lands mid-run
A=(train "$cfg" --set "train.epochs=$E")
final=$(ckpt_name $((E * STEPS)))

run_np 2 "$TMP/ref.log" "${A[@]}" --run-dir "$TMP/ref"
check "uninterrupted reference run exits 0" test $? -eq 0

# reached DIR STEP: DIR holds a checkpoint of STEP or later (older ones are pruned).
reached() { [ "$(newest_step "$1")" -ge "$2" ]; }

# stopped_at LOG: the step of the "stop signal received" line (empty if none).
stopped_at() {
  sed -n 's/^dptrain: stop signal received; checkpoint written at step \([0-9]*\); resume with --resume$/\1/p' "$1"
}

# stop_checks NAME DIR LOG RC TOOK: what every signalled run must show; sets N.
stop_checks() {
  local name=$1 dir=$2 log=$3 rc=$4 took=$5
  N=$(stopped_at "$log")
  echo "$name: status $rc ${took}s after the signal; stopped at step ${N:-?}"
  check "$name: mpirun exits 4" test "$rc" -eq 4
  check "$name: within 10 s of the signal" fgt 10 "$took"
  check "$name: one 'stop signal received' line" test "$(grep -c '^dptrain: stop signal received' "$log")" -eq 1
  check "$name: no error line" bash -c "! grep -q '^dptrain: error' '$log'"
  check "$name: the run did not go on to the test evaluation" bash -c "! grep -q 'test accuracy' '$log'"
  N=${N:-0}
  check "$name: a whole checkpoint at the reported step" ckpt_ok "$dir/$(ckpt_name "$N")"
  check "$name: no checkpoint after it" test "$(newest_step "$dir")" -eq "$N"
}

# resume_checks NAME DIR LOG: --resume from DIR finishes and matches the reference.
resume_checks() {
  local name=$1 dir=$2 log=$3
  run_np 2 "$log" "${A[@]}" --run-dir "$dir" --resume
  check "$name: --resume exits 0" test $? -eq 0
  check "$name: it resumes from step $N" grep -q "resuming from .*$(ckpt_name "$N")" "$log"
  check "$name: it prints the test accuracy" grep -q "test accuracy" "$log"
  check "$name: stopped + resumed = uninterrupted, bit for bit" same_model "$dir/$final" "$TMP/ref/$final"
}

# ---- a. SIGUSR1 to mpirun -------------------------------------------------------
dir=$TMP/usr1
start_np 2 "$TMP/usr1.log" "${A[@]}" --run-dir "$dir"
wait_until 60 reached "$dir" $STEPS
check "a: the run reaches epoch 1" test $? -eq 0
mp=$(pgrep -P "$BG")
t0=$(now)
kill -USR1 "$mp"
wait "$BG"
rc=$?
stop_checks "a (SIGUSR1 to mpirun)" "$dir" "$TMP/usr1.log" "$rc" "$(elapsed "$t0")"
check "a: stopped mid-run" test "$N" -gt "$STEPS" -a "$N" -lt $((E * STEPS))
# The checkpoint holds exactly step N: the same bits as a run told to stop there.
run_np 2 "$TMP/upto.log" "${A[@]}" --run-dir "$TMP/upto" --stop-after "$N"
check "a: --stop-after $N exits 3" test $? -eq 3
check "a: the signal's checkpoint = --stop-after $N's, bit for bit" \
  same_model "$dir/$(ckpt_name "$N")" "$TMP/upto/$(ckpt_name "$N")"
resume_checks "a" "$dir" "$TMP/usr1r.log"

# ---- b. SIGTERM to rank 1 only ----------------------------------------------------
# Each rank runs under a wrapper that records its exit status. The wrapper
# ignores SIGTERM, which mpirun sends to rank 0's process when rank 1 has exited
# first, so that it lives to record rank 0's status (dptrain installs its own
# handler, so the ignored disposition does not reach it).
cat >"$TMP/wrap.sh" <<'EOF'
trap '' TERM
"$@"
rc=$?
echo "$rc" >"$RC_DIR/rank$OMPI_COMM_WORLD_RANK"
exit "$rc"
EOF
export RC_DIR=$TMP/rcs
mkdir -p "$RC_DIR"
dir=$TMP/term
timeout -k 5 120 mpirun --oversubscribe -x RC_DIR -np 2 bash "$TMP/wrap.sh" "$DPTRAIN" \
  "${A[@]}" --run-dir "$dir" >"$TMP/term.log" 2>&1 &
BG=$!
# Rank 1 is found first, so the signal follows epoch 1 at once.
r1=
find_rank1() { r1=$(rank_pid 1) && [ -n "$r1" ]; }
wait_until 60 find_rank1
check "b: rank 1's pid found" test -n "$r1"
wait_until 60 reached "$dir" $STEPS
check "b: the run reaches epoch 1" test $? -eq 0
t0=$(now)
kill -TERM "$r1"
wait "$BG"
rc=$?
stop_checks "b (SIGTERM to rank 1)" "$dir" "$TMP/term.log" "$rc" "$(elapsed "$t0")"
check "b: rank 0, never signalled, exits 4 too" test "$(cat "$RC_DIR/rank0" 2>/dev/null)" = 4
check "b: rank 1 exits 4" test "$(cat "$RC_DIR/rank1" 2>/dev/null)" = 4
resume_checks "b" "$dir" "$TMP/termr.log"

# ---- c. SIGUSR1 during set-up -----------------------------------------------------
# Once both ranks have a SIGUSR1 handler (bit 9 of SigCgt) but rank 0 has not
# yet created the run directory, they are still in MPI_Init or reading the
# config: the signal must be kept and honoured after the first step.
handled() {
  local p m
  p=$(rank_pid "$1") && [ -n "$p" ] || return 1
  m=$(sed -n 's/^SigCgt:\s*//p' "/proc/$p/status" 2>/dev/null)
  [ -n "$m" ] && [ $(((16#$m >> 9) & 1)) -eq 1 ]
}
in_setup() { handled 0 && handled 1; }
dir=$TMP/early
start_np 2 "$TMP/early.log" "${A[@]}" --run-dir "$dir"
wait_until 60 in_setup
check "c: both ranks install the handler" test $? -eq 0
early=0
[ -e "$dir" ] || early=1
t0=$(now)
kill -USR1 "$(pgrep -P "$BG")"
wait "$BG"
rc=$?
stop_checks "c (SIGUSR1 during set-up)" "$dir" "$TMP/early.log" "$rc" "$(elapsed "$t0")"
check "c: the signal landed before the run directory existed" test "$early" -eq 1
check "c: the run stopped after its first step" test "$N" -eq 1
resume_checks "c" "$dir" "$TMP/earlyr.log"

# ---- d. SIGUSR1 inside the last epoch ---------------------------------------------
# One epoch with a checkpoint every step (about 10 ms each): the signal, sent
# once a step checkpoint exists, lands well before step 56.
D=(train "$cfg" --set train.epochs=1 --set checkpoint.every_steps=1 --set checkpoint.keep=2)
dir=$TMP/last
start_np 2 "$TMP/last.log" "${D[@]}" --run-dir "$dir"
wait_until 60 reached "$dir" 1
check "d: the run writes step 1's checkpoint" test $? -eq 0
t0=$(now)
kill -USR1 "$(pgrep -P "$BG")"
wait "$BG"
rc=$?
stop_checks "d (SIGUSR1 in the last epoch)" "$dir" "$TMP/last.log" "$rc" "$(elapsed "$t0")"
run_np 2 "$TMP/lastr.log" "${D[@]}" --run-dir "$dir" --resume
check "d: --resume exits 0" test $? -eq 0
check "d: it prints the test accuracy" grep -q "test accuracy" "$TMP/lastr.log"
finish
