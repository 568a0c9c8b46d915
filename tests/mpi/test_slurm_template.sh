#!/usr/bin/env bash
# scripts/slurm/dptrain.sbatch, run without Slurm under fake SLURM_* variables:
# SIGUSR1 to the batch shell (what --signal=B:USR1@120 sends) or SIGTERM (what
# scancel and preemption send) reaches every rank through mpirun, dptrain stops
# with a checkpoint and status 4, the job asks scontrol (a stub here) to requeue
# itself, and the requeued start resumes; the last start finishes.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

SB=$SRC/scripts/slurm/dptrain.sbatch
check "the template parses (bash -n)" bash -n "$SB"
for opt in '--signal=B:USR1@120' '--requeue' '--open-mode=append' '--cpus-per-task=1'; do
  check "it asks Slurm for $opt" grep -qx -- "#SBATCH $opt" "$SB"
done

# scontrol stub: records its arguments and prints nothing, so the template
# finds no job record (no sign of a cancel or of a requeue by Slurm) and asks
# for the requeue itself.
mkdir -p "$TMP/bin" "$TMP/submit"
printf '#!/bin/sh\necho "$*" >>"%s/scontrol.log"\n' "$TMP" >"$TMP/bin/scontrol"
chmod +x "$TMP/bin/scontrol"
touch "$TMP/scontrol.log"
export PATH=$TMP/bin:$PATH SLURM_SUBMIT_DIR=$TMP/submit SLURM_NTASKS=2 SLURM_JOB_ID=1
export SLURM_JOB_NAME=fake DPTRAIN
run=$TMP/submit/runs/fake # runs/$SLURM_JOB_NAME under the submit directory
log=$TMP/submit/fake-1.log
STEPS=56
E=3
ARGS=("$SRC/configs/seed.yaml" --set "data.path=$SRC/datasets/seed_classification.h5"
  --set "train.epochs=$E")

# job_start RESTARTS: runs the batch script as Slurm would, in the background,
# appending to the job's log; BG is the pid of the `timeout` bounding it.
job_start() {
  SLURM_RESTART_COUNT=$1 timeout -k 5 120 bash "$SB" "${ARGS[@]}" >>"$log" 2>&1 &
  BG=$!
}
# stopped_at: the step of the last "stop signal received" line in the log.
stopped_at() {
  sed -n 's/^dptrain: stop signal received; checkpoint written at step \([0-9]*\);.*/\1/p' "$log" | tail -1
}

# signal_job SIG AT RESTARTS: starts the job with both ranks held after step AT
# (DPTRAIN_TEST_HOLD, see background.sh), sends SIG to the batch shell,
# releases the ranks once they recorded the signal mpirun passed on, and checks
# the stop after step AT+1. Sets N to the step stopped at.
signal_job() {
  local sig=$1 at=$2 restarts=$3 t0 rc took
  DPTRAIN_TEST_HOLD=step:$at job_start "$restarts"
  wait_held step 0 1
  check "$sig: both ranks are held after step $at" test $? -eq 0
  kill -"$sig" "$(pgrep -P "$BG")"
  wait_recorded step 0 1
  check "$sig: both ranks record the signal mpirun passes on" test $? -eq 0
  release step 0 1
  t0=$(now)
  wait "$BG"
  rc=$?
  took=$(elapsed "$t0")
  N=$(stopped_at)
  echo "SIG$sig to the batch shell: status $rc ${took}s after the release; stopped at step ${N:-?}"
  check "$sig: the batch script exits 4" test "$rc" -eq 4
  check "$sig: stopped after step $((at + 1)), the first step after the signal" test "${N:-0}" -eq $((at + 1))
  N=${N:-0}
  check "$sig: a whole checkpoint at step $N" ckpt_ok "$run/$(ckpt_name "$N")"
  check "$sig: no checkpoint after it" test "$(newest_step "$run")" -eq "$N"
}

# Start 1: a fresh job, SIGUSR1 (the time-limit warning).
signal_job USR1 60 0
n1=$N
check "USR1: the first start starts fresh" grep -q "no checkpoint in runs/fake; starting fresh" "$log"
# requeues: the requeue requests the stub recorded, on one line.
requeues() { grep '^requeue ' "$TMP/scontrol.log" | tr '\n' ' '; }
check "USR1: the job asks to be requeued" test "$(requeues)" = "requeue 1 "
check "USR1: the last line says so" test "$(tail -n 1 "$log")" = \
  "dptrain.sbatch: requeued; will resume from step $n1"

# Start 2: the requeued job resumes; SIGTERM (scancel) stops it the same way.
signal_job TERM $((n1 + 9)) 1
check "TERM: the requeued start resumes from step $n1" grep -q "resuming from runs/fake/$(ckpt_name "$n1")" "$log"
check "TERM: the job asks to be requeued again" \
  test "$(requeues)" = "requeue 1 requeue 1 "
n2=$N

# Start 3: no signal; the job finishes and is not requeued.
job_start 2
wait "$BG"
check "the last start exits 0" test $? -eq 0
check "it resumes from step $n2" grep -q "resuming from runs/fake/$(ckpt_name "$n2")" "$log"
check "it prints the test accuracy" grep -q "test accuracy" "$log"
check "it finishes all $E epochs" test -e "$run/$(ckpt_name $((E * STEPS)))"
run_np 2 "$TMP/ref.log" train "$SRC/configs/seed.yaml" --set "train.epochs=$E" --run-dir "$TMP/ref"
check "uninterrupted reference run exits 0" test $? -eq 0
check "stopped twice and resumed = uninterrupted, bit for bit" \
  same_model "$run/$(ckpt_name $((E * STEPS)))" "$TMP/ref/$(ckpt_name $((E * STEPS)))"
check "it does not ask to be requeued" test "$(requeues)" = "requeue 1 requeue 1 "
check "the last line says finished" test "$(tail -n 1 "$log")" = "dptrain.sbatch: finished"
check "no Open MPI abort banner after the stops" bash -c "! grep -q 'Primary job' '$log'"
check "the three starts share one appended log" test "$(grep -c '^dptrain.sbatch: job 1 start' "$log")" -eq 3
finish
