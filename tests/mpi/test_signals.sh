#!/usr/bin/env bash
# Stop signals (docs/DESIGN.md §7): SIGUSR1 or SIGTERM makes every rank stop after the
# same step, rank 0 write a checkpoint, and every rank exit with status 4; a
# --resume then ends bit-identical to a run that was never stopped.
#  a. SIGUSR1 to mpirun, which forwards it to every rank;
#  b. SIGTERM to rank 1 alone (rank 0 learns of it inside the step's collective);
#  c. SIGUSR1 while the ranks are still setting up (before MPI_Init);
#  d. SIGUSR1 inside the last epoch: still a stop, not a finished run;
#  e. the stop file (--stop-file) appearing while the run trains;
#  f. the stop file already there when the run starts.
# Each resumed run's metrics.jsonl equals the uninterrupted run's in every
# field but the wall-clock ones (check_metrics.py), and its seconds add up
# across the two starts (case a, whose first start is held for a second).
# The ranks are held at a named point (DPTRAIN_TEST_HOLD, see background.sh)
# while the signal is sent, and released once they have recorded it, so every
# case stops at a step known in advance, however fast or busy the machine is.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

cfg=configs/seed.yaml
STEPS=56 # steps per epoch of the seed data
E=3
S=60 # the step the ranks are held after: inside epoch 2
A=(train "$cfg" --set "train.epochs=$E")
final=$(ckpt_name $((E * STEPS)))

run_np 2 "$TMP/ref.log" "${A[@]}" --run-dir "$TMP/ref"
check "uninterrupted reference run exits 0" test $? -eq 0

# stopped_at LOG: the step of the "stop signal received" or "stop requested by
# FILE" line (empty if none).
stopped_at() {
  sed -n 's/^dptrain: stop \(signal received\|requested by .*\); checkpoint written at step \([0-9]*\); resume with --resume$/\2/p' "$1"
}

# signal_held NAME POINT SIG PID RANK...: with RANKs held at POINT, sends SIG to
# PID, checks that the held ranks record it, then releases them.
signal_held() {
  local name=$1 point=$2 sig=$3 pid=$4
  shift 4
  kill -"$sig" "$pid"
  wait_recorded "$point" "$@"
  check "$name: the held rank(s) $* record the signal" test $? -eq 0
  release "$point" "$@"
}

# stop_checks NAME DIR LOG RC TOOK WANT: what every signalled run must show; sets N.
stop_checks() {
  local name=$1 dir=$2 log=$3 rc=$4 took=$5 want=$6
  N=$(stopped_at "$log")
  echo "$name: status $rc ${took}s after the release; stopped at step ${N:-?}"
  check "$name: mpirun exits 4" test "$rc" -eq 4
  check "$name: one stop line" test "$(grep -cE '^dptrain: stop (signal received|requested by)' "$log")" -eq 1
  check "$name: stopped after step $want, the first step after the signal" test "${N:-0}" -eq "$want"
  check "$name: no error line" bash -c "! grep -q '^dptrain: error' '$log'"
  check "$name: no hold ran out of time" bash -c "! grep -q '^dptrain: warning: test hold' '$log'"
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
  check "$name: metrics.jsonl = the uninterrupted run's but for wall-clock fields" \
    tests/mpi/check_metrics.py same "$dir/metrics.jsonl" "$TMP/ref/metrics.jsonl"
}

# ---- a. SIGUSR1 to mpirun -------------------------------------------------------
# Both ranks are held after step S for a second, which counts as training time;
# the signal reaches them through mpirun. mpirun runs quiet
# (orte_execute_quiet, as mpirun -q): it prints a 13-line banner for any
# non-zero exit, a stop's status 4 too, which the ranks cannot prevent.
dir=$TMP/usr1
OMPI_MCA_orte_execute_quiet=1 DPTRAIN_TEST_HOLD=step:$S start_np 2 "$TMP/usr1.log" "${A[@]}" --run-dir "$dir"
wait_held step 0 1
check "a: both ranks are held after step $S" test $? -eq 0
sleep 1
signal_held a step USR1 "$(pgrep -P "$BG")" 0 1
t0=$(now)
wait "$BG"
rc=$?
stop_checks "a (SIGUSR1 to mpirun)" "$dir" "$TMP/usr1.log" "$rc" "$(elapsed "$t0")" $((S + 1))
check "a: the log holds dptrain's lines only, nothing that looks like a crash" \
  bash -c "! grep -viE '^(dptrain: |Epoch [0-9])' '$TMP/usr1.log'"
cp "$dir/$(ckpt_name "$N")" "$TMP/usr1-stop.h5"
# The checkpoint holds exactly step N: the same bits as a run told to stop there.
run_np 2 "$TMP/upto.log" "${A[@]}" --run-dir "$TMP/upto" --stop-after "$N"
check "a: --stop-after $N exits 3" test $? -eq 3
check "a: the signal's checkpoint = --stop-after $N's, bit for bit" \
  same_model "$dir/$(ckpt_name "$N")" "$TMP/upto/$(ckpt_name "$N")"
resume_checks "a" "$dir" "$TMP/usr1r.log"
check "a: the seconds add up over both starts (the held second included)" \
  tests/mpi/check_metrics.py adds-up "$dir/metrics.jsonl" "$TMP/usr1-stop.h5" 1

# ---- b. SIGTERM to rank 1 only ----------------------------------------------------
# Each rank runs under a wrapper that records its exit status. mpirun ends the
# job (SIGTERM, then SIGKILL a second later) at the first non-zero exit, which
# could come before the other rank has finished; so no wrapper exits before
# every rank's status is recorded (up to 60 s), and each ignores SIGTERM
# (dptrain installs its own handler, so the ignored disposition does not reach
# it). Rank 1 alone is held after step S (rank 0 waits for it in step S+1) and
# signalled there.
cat >"$TMP/wrap.sh" <<'EOS'
trap '' TERM
"$@"
rc=$?
echo "$rc" >"$RC_DIR/rank$OMPI_COMM_WORLD_RANK"
for _ in $(seq 600); do
  [ "$(ls "$RC_DIR" | wc -l)" -ge "$OMPI_COMM_WORLD_SIZE" ] && break
  sleep 0.1
done
exit "$rc"
EOS
export RC_DIR=$TMP/rcs
mkdir -p "$RC_DIR"
dir=$TMP/term
DPTRAIN_TEST_HOLD=step:$S@1 timeout -k 5 120 mpirun --oversubscribe -x RC_DIR -np 2 \
  bash "$TMP/wrap.sh" "$DPTRAIN" "${A[@]}" --run-dir "$dir" >"$TMP/term.log" 2>&1 &
BG=$!
wait_held step 1
r1=$(held_pid step 1)
check "b: rank 1 is held after step $S, its pid known" test -n "$r1"
check "b: rank 0 is not held" test ! -e "$HOLD/held-step-0"
signal_held b step TERM "$r1" 1
t0=$(now)
wait "$BG"
rc=$?
stop_checks "b (SIGTERM to rank 1)" "$dir" "$TMP/term.log" "$rc" "$(elapsed "$t0")" $((S + 1))
echo "b: the ranks' exit statuses: $(cat "$RC_DIR/rank0" 2>/dev/null || echo none), $(cat "$RC_DIR/rank1" 2>/dev/null || echo none)"
check "b: rank 0, never signalled, exits 4 too" test "$(cat "$RC_DIR/rank0" 2>/dev/null)" = 4
check "b: rank 1 exits 4" test "$(cat "$RC_DIR/rank1" 2>/dev/null)" = 4
resume_checks "b" "$dir" "$TMP/termr.log"

# ---- c. SIGUSR1 during set-up -----------------------------------------------------
# Both ranks are held at "setup": their SIGUSR1 handler is installed (bit 9 of
# SigCgt) but MPI_Init has not run and rank 0 has not created the run
# directory. The signal must be kept and honoured after the first step.
handled() {
  local m
  m=$(sed -n 's/^SigCgt:\s*//p' "/proc/$1/status" 2>/dev/null)
  [ -n "$m" ] && [ $(((16#$m >> 9) & 1)) -eq 1 ]
}
dir=$TMP/early
DPTRAIN_TEST_HOLD=setup start_np 2 "$TMP/early.log" "${A[@]}" --run-dir "$dir"
wait_held setup 0 1
check "c: both ranks are held in set-up" test $? -eq 0
check "c: both ranks have installed the handler" \
  bash -c "$(declare -f handled); handled '$(held_pid setup 0)' && handled '$(held_pid setup 1)'"
check "c: the run directory does not exist yet" test ! -e "$dir"
signal_held c setup USR1 "$(pgrep -P "$BG")" 0 1
t0=$(now)
wait "$BG"
rc=$?
stop_checks "c (SIGUSR1 during set-up)" "$dir" "$TMP/early.log" "$rc" "$(elapsed "$t0")" 1
resume_checks "c" "$dir" "$TMP/earlyr.log"

# ---- d. SIGUSR1 inside the last epoch ---------------------------------------------
# One epoch; both ranks are held after step 10 of its 56 and signalled there.
D=(train "$cfg" --set train.epochs=1)
run_np 2 "$TMP/ref1.log" "${D[@]}" --run-dir "$TMP/ref1"
check "d: one-epoch reference run exits 0" test $? -eq 0
dir=$TMP/last
DPTRAIN_TEST_HOLD=step:10 start_np 2 "$TMP/last.log" "${D[@]}" --run-dir "$dir"
wait_held step 0 1
check "d: both ranks are held after step 10" test $? -eq 0
signal_held d step USR1 "$(pgrep -P "$BG")" 0 1
t0=$(now)
wait "$BG"
rc=$?
stop_checks "d (SIGUSR1 in the last epoch)" "$dir" "$TMP/last.log" "$rc" "$(elapsed "$t0")" 11
run_np 2 "$TMP/lastr.log" "${D[@]}" --run-dir "$dir" --resume
check "d: --resume exits 0" test $? -eq 0
check "d: it resumes from step $N" grep -q "resuming from .*$(ckpt_name "$N")" "$TMP/lastr.log"
check "d: it prints the test accuracy" grep -q "test accuracy" "$TMP/lastr.log"
check "d: stopped + resumed = uninterrupted, bit for bit" \
  same_model "$dir/$(ckpt_name "$STEPS")" "$TMP/ref1/$(ckpt_name "$STEPS")"
check "d: metrics.jsonl = the uninterrupted run's but for wall-clock fields" \
  tests/mpi/check_metrics.py same "$dir/metrics.jsonl" "$TMP/ref1/metrics.jsonl"

# ---- e. the stop file appears during training ---------------------------------
# Both ranks are held after step S; the file is created and rank 0, the one
# that watches it, records the request while held (its poll runs every 0.2 s).
dir=$TMP/file
stopf=$TMP/stop-e
DPTRAIN_TEST_HOLD=step:$S start_np 2 "$TMP/file.log" "${A[@]}" --run-dir "$dir" --stop-file "$stopf"
wait_held step 0 1
check "e: both ranks are held after step $S" test $? -eq 0
touch "$stopf"
wait_recorded step 0
check "e: rank 0 sees the stop file while held" test $? -eq 0
check "e: rank 1 does not watch the file" bash -c "! grep -q '^signal' '$HOLD/held-step-1'"
release step 0 1
t0=$(now)
wait "$BG"
rc=$?
stop_checks "e (stop file)" "$dir" "$TMP/file.log" "$rc" "$(elapsed "$t0")" $((S + 1))
check "e: the stop line names the file" grep -qx "dptrain: stop requested by $stopf; checkpoint written at step $((S + 1)); resume with --resume" "$TMP/file.log"
check "e: the file is removed once honoured" test ! -e "$stopf"
resume_checks "e" "$dir" "$TMP/filer.log"

# ---- f. the stop file exists before the run starts ------------------------------
# As a signal during set-up: the run stops after its first step.
dir=$TMP/filefirst
touch "$stopf"
run_np 2 "$TMP/filefirst.log" "${A[@]}" --run-dir "$dir" --stop-file "$stopf"
rc=$?
stop_checks "f (stop file at start)" "$dir" "$TMP/filefirst.log" "$rc" 0 1
check "f: the file is removed once honoured" test ! -e "$stopf"
resume_checks "f" "$dir" "$TMP/filefirstr.log"
finish
