#!/usr/bin/env bash
# Faults never hang a run and never cost a checkpoint (DESIGN §6, §7):
#  a. SIGKILL of rank 1 mid-training: mpirun ends within 10 s, the checkpoints
#     already written are untouched, and --resume finishes the run;
#  b. SIGKILL of rank 0 at random moments while it writes a checkpoint every
#     step, 20 times (5 under ASan, where every launch is slower), each launch
#     resuming the last: every ckpt-*.h5 is always whole, and the run that
#     finishes is bit-identical to one that was never killed;
#  c. a loss that overflows: exit 1 with one error line, and the checkpoints
#     written before it are kept, byte for byte, and none after it is written.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

cfg=configs/seed.yaml
STEPS=56 # steps per epoch of the seed data (560 training rows, batch 10)

# all_whole DIR: every ckpt-*.h5 in DIR is a whole checkpoint (at least one).
all_whole() {
  local f n=0
  for f in "$1"/ckpt-*.h5; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    ckpt_ok "$f" || { echo "  not a whole checkpoint: $f"; return 1; }
  done
  [ "$n" -gt 0 ]
}

# ---- a. SIGKILL of rank 1 mid-training ----------------------------------------
run=$TMP/kill1
# keep=1000: nothing is pruned, so every file seen before the kill must survive it.
# 10000 epochs, far more than the kill lets it run (1000 last about 2 s here, and
# the speed varies tenfold with the load); the resume then asks for one epoch
# past the newest checkpoint.
A=(train "$cfg" --set checkpoint.keep=1000 --run-dir "$run")
start_np 2 "$TMP/kill1.log" "${A[@]}" --set train.epochs=10000
wait_until 60 test -e "$run/$(ckpt_name $((3 * STEPS)))"
check "long run reaches epoch 3" test $? -eq 0
r0=$(rank_pid 0)
r1=$(rank_pid 1)
check "both ranks' pids found" test -n "$r0" -a -n "$r1"
before=$(cd "$run" && md5sum ckpt-*.h5)
t0=$(now)
kill -KILL "$r1"
wait "$BG"
rc=$?
took=$(elapsed "$t0")
echo "SIGKILL of rank 1: mpirun exited with status $rc ${took}s after the kill," \
  "$(echo "$before" | wc -l) checkpoint(s) on disk before it"
check "mpirun exits non-zero after SIGKILL of rank 1" test "$rc" -ne 0 -a "$rc" -ne 124
check "mpirun exits within 10 s of the kill" fgt 10 "$took"
check "the killed run did not finish" bash -c "! grep -q 'test accuracy' '$TMP/kill1.log'"
check "no rank outlives mpirun" none_running "$r0" "$r1"
check "checkpoints written before the kill are unchanged" \
  bash -c "cd '$run' && md5sum --quiet -c - <<<'$before'"
check "every checkpoint after the kill is whole" all_whole "$run"
last=$(newest_step "$run")
run_np 2 "$TMP/kill1r.log" "${A[@]}" --set train.epochs=$((last / STEPS + 2)) --resume
check "resume after the kill exits 0" test $? -eq 0
check "it resumes from the newest checkpoint" grep -q "resuming from .*$(ckpt_name "$last")" "$TMP/kill1r.log"
check "the resumed run prints the test accuracy" grep -q "test accuracy" "$TMP/kill1r.log"

# ---- b. SIGKILL of rank 0 while it writes checkpoints ----------------------------
# Every step writes a checkpoint (rank 0's writer thread is busy nearly all the
# time), so a kill lands inside dp_ckpt_write: writing or fsyncing the temporary
# file (which is then left behind), or, after the rename, in the directory
# fsync or the pruning. Each launch resumes the previous one, alternately on 1
# and 2 ranks (data.shards=2 allows both). After a rank dies mpirun ends the
# others with SIGTERM and, odls_base_sigkill_timeout (1 s) later, SIGKILL;
# dptrain catches SIGTERM, so that costs about 2 s (part a); here it is cut to 0.
# train.epochs=10000 is only an upper bound: the last launch lowers it to finish.
reps=20
[ "$ASAN" = 1 ] && reps=5
run=$TMP/crash
B=(train "$cfg" --set data.shards=2 --set checkpoint.every_steps=1 --set checkpoint.keep=2
  --run-dir "$run" --resume)
newer() { [ "$(newest_step "$run")" -gt "$1" ]; }
tmps() { find "$run" -maxdepth 1 -name '.ckpt-*.tmp-*' 2>/dev/null | wc -l; }
bad_rc=0 bad_resume=0 bad_files=0 midwrite=0 kills=0
t_b=$(now)
for i in $(seq 1 "$reps"); do
  np=$((i % 2 + 1))
  last=$(newest_step "$run")
  n_tmp=$(tmps)
  log=$TMP/crash$i.log
  OMPI_MCA_odls_base_sigkill_timeout=0 start_np "$np" "$log" "${B[@]}" --set train.epochs=10000
  # Wait for this launch's first checkpoint, then 0-0.6 s more, then kill.
  if ! wait_until 60 newer "$last"; then
    echo "--- launch $i wrote no checkpoint:"; cat "$log"
    kill -TERM "$BG" 2>/dev/null
    bad_rc=$((bad_rc + 1))
    wait "$BG"
    continue
  fi
  sleep "0.$(printf '%03d' $((RANDOM % 600)))"
  p0=$(rank_pid 0)
  if [ -n "$p0" ]; then
    kill -KILL "$p0" && kills=$((kills + 1))
  else
    echo "--- launch $i: rank 0 not found"; bad_rc=$((bad_rc + 1))
    kill -TERM "$BG" # timeout passes TERM on to mpirun
  fi
  wait "$BG"
  rc=$?
  # A kill inside a write leaves its temporary file behind (never a ckpt-*.h5).
  [ "$(tmps)" -gt "$n_tmp" ] && midwrite=$((midwrite + 1))
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    echo "--- launch $i: status $rc"; tail -5 "$log"; bad_rc=$((bad_rc + 1))
  fi
  if [ "$last" -lt 0 ]; then
    grep -q "starting fresh" "$log" || { echo "--- launch $i did not start fresh"; bad_resume=$((bad_resume + 1)); }
  elif ! grep -q "resuming from .*$(ckpt_name "$last")" "$log" || grep -q "warning" "$log"; then
    echo "--- launch $i did not resume from $(ckpt_name "$last"):"; grep dptrain "$log"
    bad_resume=$((bad_resume + 1))
  fi
  all_whole "$run" || bad_files=$((bad_files + 1))
done
echo "$kills SIGKILLs of rank 0 in ${reps} launches ($(elapsed "$t_b")s), $midwrite inside a" \
  "checkpoint write (temporary file left); training reached step $(newest_step "$run")"
check "every launch is killed and ends non-zero, without timing out" test "$bad_rc" -eq 0
check "every launch resumes from the newest checkpoint, with no warning" test "$bad_resume" -eq 0
check "after every kill each ckpt-*.h5 is a whole checkpoint" test "$bad_files" -eq 0
# About a third of the kills leave a temporary file (the rest land in the
# directory fsync or the pruning after the rename): with 20 kills, none inside
# a write has odds of about 1e-4; with ASan's 5 it is too likely to assert.
if [ "$reps" -ge 20 ]; then
  check "at least one kill landed inside a write" test "$midwrite" -gt 0
fi
# Finish inside the current epoch, and compare with a run never killed.
last=$(newest_step "$run")
epochs=$((last / STEPS + 1))
run_np 2 "$TMP/crash_end.log" "${B[@]}" --set train.epochs=$epochs
check "the last resume finishes (exit 0)" test $? -eq 0
check "it resumes from the newest checkpoint" grep -q "resuming from .*$(ckpt_name "$last")" "$TMP/crash_end.log"
check "it prints the test accuracy" grep -q "test accuracy" "$TMP/crash_end.log"
run_np 2 "$TMP/whole.log" train "$cfg" --set data.shards=2 --set train.epochs=$epochs --run-dir "$TMP/whole"
check "uninterrupted reference run exits 0" test $? -eq 0
final=$(ckpt_name $((epochs * STEPS)))
check "killed $kills times and resumed = never killed, bit for bit" \
  same_model "$run/$final" "$TMP/whole/$final"

# ---- c. a loss that overflows ---------------------------------------------------
# Adam moves every parameter by about learning_rate at each step (m/sqrt(v) is
# of order 1), so after one step at 1e30 the weights are ~1e30 (still finite)
# and the next forward pass overflows float32 (1e30 * 1e30 >> 3.4e38): resumed
# from step 112, step 113 is finite and step 114 is not.
run=$TMP/nan
run_np 2 "$TMP/nan0.log" train "$cfg" --set train.epochs=2 --run-dir "$run"
check "good run exits 0" test $? -eq 0
good=$(cd "$run" && md5sum ckpt-*.h5)
check "good run left checkpoints 56 and 112" \
  test "$(ckpt_steps "$run" | tr '\n' ' ')" = "56 112 "

# nan_run LOG ARGS...: resumes $run with learning rate 1e30; checks the error.
nan_run() {
  local log=$1 t0
  shift
  t0=$(now)
  RUN_TIMEOUT=30 run_np 2 "$log" train "$cfg" --set train.epochs=4 --run-dir "$run" --resume \
    --set optimizer.learning_rate=1e30 "$@"
  local rc=$? took
  took=$(elapsed "$t0")
  echo "overflowing run: status $rc after ${took}s"; grep '^dptrain: error: ' "$log"
  check "overflow exits 1 (all ranks returned, no timeout)" test "$rc" -eq 1
  check "exactly one error line" test "$(grep -c '^dptrain: error: ' "$log")" -eq 1
  check "it names the first non-finite step, 114" \
    grep -q '^dptrain: error: .*NaN or Inf at step 114 ' "$log"
}
nan_run "$TMP/nan1.log"
check "no checkpoint written after the overflow, none lost" \
  test "$(ckpt_steps "$run" | tr '\n' ' ')" = "56 112 "
check "the good checkpoints are byte-identical" bash -c "cd '$run' && md5sum --quiet -c - <<<'$good'"

# With a checkpoint every step, step 113's (finite) checkpoint is the last good
# one; nothing of step 114 or later may reach the disk.
nan_run "$TMP/nan2.log" --set checkpoint.every_steps=1 --set checkpoint.keep=10
check "the newest checkpoint is the last finite step, 113" \
  test "$(ckpt_steps "$run" | tr '\n' ' ')" = "56 112 113 "
check "step 113's checkpoint is whole" ckpt_ok "$run/$(ckpt_name 113)"
finite() { ! h5dump -g /model -g /optimizer "$1" | grep -Eiqw 'inf|nan'; }
check "step 113's checkpoint holds only finite numbers" finite "$run/$(ckpt_name 113)"
check "the good checkpoints are still byte-identical" bash -c "cd '$run' && md5sum --quiet -c - <<<'$good'"
finish
