#!/usr/bin/env bash
# Faults never hang a run and never cost a checkpoint (docs/DESIGN.md §6, §7):
#  a. SIGKILL of rank 1 mid-training: mpirun ends by itself, the checkpoints
#     already written are untouched, and --resume finishes the run;
#  b. SIGKILL of rank 0 while it writes a checkpoint every step, its writer
#     held inside a write (temporary file open) or just after the rename
#     (before the directory fsync and the pruning), each launch resuming the
#     last: every ckpt-*.h5 is always whole, and the run that finishes is
#     bit-identical to one that was never killed;
#  c. a loss that overflows: exit 1 with one error line, and the checkpoints
#     written before it are kept, byte for byte, and none after it is written.
# Kills land where a test hold (DPTRAIN_TEST_HOLD, see background.sh) keeps the
# rank, never at a moment the machine's speed picks.
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
# Rank 1 is held after step 169, the first of epoch 4; rank 0 waits for it in
# step 170's collective, having handed the checkpoint of step 168 to its writer.
# keep=1000: nothing is pruned, so every file seen before the kill must survive it.
run=$TMP/kill1
K=$((3 * STEPS + 1))
A=(train "$cfg" --set checkpoint.keep=1000 --run-dir "$run")
DPTRAIN_TEST_HOLD=step:$K@1 start_np 2 "$TMP/kill1.log" "${A[@]}" --set train.epochs=5
wait_held step 1
check "rank 1 is held after step $K" test $? -eq 0
# Rank 0 cannot pass step 170, so its writer's last file is step 168's.
wait_until 60 test -e "$run/$(ckpt_name $((3 * STEPS)))"
check "rank 0 writes the checkpoint of epoch 3 meanwhile" test $? -eq 0
check "the checkpoints of epochs 1-3 are on disk" \
  test "$(ckpt_steps "$run" | tr '\n' ' ')" = "56 112 168 "
r0=$(rank_pid 0)
r1=$(held_pid step 1)
check "both ranks' pids found" test -n "$r0" -a -n "$r1"
before=$(cd "$run" && md5sum ckpt-*.h5)
t0=$(now)
kill -KILL "$r1"
wait "$BG"
rc=$?
took=$(elapsed "$t0")
release step 1
echo "SIGKILL of rank 1: mpirun exited with status $rc ${took}s after the kill," \
  "$(echo "$before" | wc -l) checkpoint(s) on disk before it"
# The time mpirun takes to notice and end rank 0 is the machine's; that it
# ends at all (no timeout, status 124) is what is asserted.
check "mpirun exits non-zero by itself after SIGKILL of rank 1" test "$rc" -ne 0 -a "$rc" -ne 124
check "the killed run did not finish" bash -c "! grep -q 'test accuracy' '$TMP/kill1.log'"
# mpirun may exit while the kernel still tears down the rank it killed (state R,
# a zombie a moment later): a rank left behind would keep running, so a rank
# that is gone within 30 s did not outlive it.
wait_until 30 none_running "$r0" "$r1"
check "no rank outlives mpirun" test $? -eq 0
check "checkpoints written before the kill are unchanged" \
  bash -c "cd '$run' && md5sum --quiet -c - <<<'$before'"
check "no checkpoint is lost or added by the kill" \
  test "$(ckpt_steps "$run" | tr '\n' ' ')" = "56 112 168 "
check "every checkpoint after the kill is whole" all_whole "$run"
run_np 2 "$TMP/kill1r.log" "${A[@]}" --set train.epochs=4 --resume
check "resume after the kill exits 0" test $? -eq 0
check "it resumes from the newest checkpoint" grep -q "resuming from .*$(ckpt_name 168)" "$TMP/kill1r.log"
check "the resumed run prints the test accuracy" grep -q "test accuracy" "$TMP/kill1r.log"

# ---- b. SIGKILL of rank 0 while it writes checkpoints ----------------------------
# Every step writes a checkpoint. Each launch resumes the previous one,
# alternately on 2 and 1 ranks (data.shards=2 allows both), and holds rank 0's
# writer at the checkpoint of the step 3 past the one it resumed from:
#  ckpt-write:  the temporary file is open and written but not closed: the kill
#               leaves it behind (never a ckpt-*.h5), and the next start removes it;
#  ckpt-rename: the file is renamed into place, the directory fsync and the
#               pruning are still to come: the kill leaves a whole checkpoint.
# The writer has finished the previous step's checkpoint (a submit waits for it).
# After a rank dies mpirun ends the others with SIGTERM and,
# odls_base_sigkill_timeout (1 s) later, SIGKILL; dptrain catches SIGTERM, so
# that costs about 2 s (part a); here it is cut to 0.
run=$TMP/crash
B=(train "$cfg" --set data.shards=2 --set checkpoint.every_steps=1 --set checkpoint.keep=2
  --run-dir "$run" --resume)
kinds=(ckpt-write ckpt-rename ckpt-rename ckpt-write)
bad_rc=0 bad_resume=0 bad_files=0 bad_left=0 kills=0 prev_tmp=
t_b=$(now)
for i in 1 2 3 4; do
  np=$((i % 2 + 1))
  kind=${kinds[$((i - 1))]}
  last=$(newest_step "$run")
  target=$((last < 0 ? 2 : last + 3))
  log=$TMP/crash$i.log
  OMPI_MCA_odls_base_sigkill_timeout=0 DPTRAIN_TEST_HOLD=$kind:$target@0 \
    start_np "$np" "$log" "${B[@]}" --set train.epochs=$((target / STEPS + 1))
  if ! wait_held "$kind" 0; then
    echo "--- launch $i ($np rank(s)) never held at $kind of step $target:"; cat "$log"
    kill -TERM "$BG" 2>/dev/null # timeout passes TERM on to mpirun
    bad_rc=$((bad_rc + 1))
    wait "$BG"
    continue
  fi
  p0=$(held_pid "$kind" 0)
  kill -KILL "$p0" && kills=$((kills + 1))
  wait "$BG"
  rc=$?
  release "$kind" 0
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    echo "--- launch $i: status $rc"; tail -5 "$log"; bad_rc=$((bad_rc + 1))
  fi
  if [ "$last" -lt 0 ]; then
    grep -q "starting fresh" "$log" || { echo "--- launch $i did not start fresh"; bad_resume=$((bad_resume + 1)); }
  elif ! grep -q "resuming from .*$(ckpt_name "$last")" "$log" || grep -q "warning" "$log"; then
    echo "--- launch $i did not resume from $(ckpt_name "$last"):"; grep dptrain "$log"
    bad_resume=$((bad_resume + 1))
  fi
  # The previous launch's temporary file is removed at this start.
  if [ -n "$prev_tmp" ] && [ -e "$prev_tmp" ]; then
    echo "--- launch $i left $prev_tmp in place"; bad_left=$((bad_left + 1))
  fi
  tmp="$run/.$(ckpt_name "$target").tmp-$p0"
  prev_tmp=
  if [ "$kind" = ckpt-write ]; then
    # Killed inside the write: its temporary file stays, the newest is the step before.
    if [ -e "$tmp" ] && [ "$(newest_step "$run")" -eq $((target - 1)) ]; then
      prev_tmp=$tmp
    else
      echo "--- launch $i: no $tmp, or newest step $(newest_step "$run") != $((target - 1))"
      bad_left=$((bad_left + 1))
    fi
  elif [ -e "$tmp" ] || [ "$(newest_step "$run")" -ne "$target" ]; then
    # Killed after the rename: the checkpoint of the target step is in place.
    echo "--- launch $i: $tmp left, or newest step $(newest_step "$run") != $target"
    bad_left=$((bad_left + 1))
  fi
  all_whole "$run" || bad_files=$((bad_files + 1))
done
echo "$kills SIGKILLs of rank 0 in 4 launches ($(elapsed "$t_b")s); training reached step $(newest_step "$run")"
check "every launch is held, killed and ends non-zero, without timing out" test "$bad_rc" -eq 0
check "every launch resumes from the newest checkpoint, with no warning" test "$bad_resume" -eq 0
check "after every kill each ckpt-*.h5 is a whole checkpoint" test "$bad_files" -eq 0
check "a kill in a write leaves its temporary file (removed at the next start), one after the rename its checkpoint" \
  test "$bad_left" -eq 0
# Finish inside the current epoch, and compare with a run never killed.
last=$(newest_step "$run")
epochs=$((last / STEPS + 1))
run_np 2 "$TMP/crash_end.log" "${B[@]}" --set train.epochs=$epochs
check "the last resume finishes (exit 0)" test $? -eq 0
check "it resumes from the newest checkpoint" grep -q "resuming from .*$(ckpt_name "$last")" "$TMP/crash_end.log"
check "it prints the test accuracy" grep -q "test accuracy" "$TMP/crash_end.log"
check "it removes the last temporary file" test ! -e "${prev_tmp:-/nonexistent}"
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
