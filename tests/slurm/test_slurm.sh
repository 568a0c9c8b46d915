#!/usr/bin/env bash
# The unmodified scripts/slurm/dptrain.sbatch under a real Slurm (Debian's
# slurm-wlm), two slurmd "nodes" on this host (tests/slurm/cluster.sh):
#  1. a plain submit trains to COMPLETED: the reference for the others;
#  2. --time=1 with --signal=B:USR1@50: stop, requeue, resume, finish, the same bits;
#  3. scancel: a checkpoint, the log says so; resubmitting resumes, the same bits;
#  4. scontrol requeue from outside: resumes, the same bits;
#  5. srun --mpi=pmix as the launcher: the same bits;
#  6. --nodes=2 with 1 and 2 ranks per node: the same bits;
#  7. USR1 0, 0.1, 0.2 and 0.5 s after the batch shell installed its trap:
#     never lost, no rank dies; the start ends with a requeue.
# Ranks are held at a chosen step (DPTRAIN_TEST_HOLD, src/core/test_hold.h)
# while a signal is on its way, so no check depends on the machine's speed.
# Every wait is bounded, and the whole test stops itself after 420 s.
set -uo pipefail
SRC=${DPTRAIN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DPTRAIN=$(readlink -f "${DPTRAIN:-$SRC/build/dptrain}")
source "$SRC/tests/slurm/cluster.sh"
SB=$SRC/scripts/slurm/dptrain.sbatch
# The template itself must allow Open MPI to run as root.
unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_rmaps_base_oversubscribe
export DPTRAIN OPENBLAS_NUM_THREADS=1

# The daemons run as root (slurmd starts jobs as their users, munged drops to
# its own): a user without root skips the test.
if [ "$(id -u)" != 0 ]; then
  echo "skipped: a Slurm cluster needs root"
  exit 77
fi
# One Slurm test at a time on this host: the daemons' ports are fixed.
exec 9>/tmp/dptrain-slurm-test.lock
flock -w 300 9 || { echo "FAILED: another Slurm test holds /tmp/dptrain-slurm-test.lock"; exit 1; }
slurm_install || { echo "FAILED: cannot install ${SLURM_PACKAGES[*]}"; exit 1; }

T=$(mktemp -d /tmp/dptrain-slurm-XXXXXX)
chmod 755 "$T" # munged runs as its own user
SUB=$T/submit  # the submit directory: runs/ and logs/ land here
mkdir -p "$SUB/logs" "$T/holds"
passed=0
failed=0
watchdog=
cleanup() {
  [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
  if [ ${#SLURM_DAEMONS[@]} -gt 0 ]; then
    local t0=$SECONDS
    squeue -h -o %i 2>/dev/null | xargs -r scancel --quiet 2>/dev/null
    slurm_wait 30 jobs_gone
    local t1=$SECONDS
    slurm_stop
    echo "cluster: jobs gone in $((t1 - t0)) s, daemons stopped in $((SECONDS - t1)) s"
  fi
  if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    for f in "$SUB"/logs/*.log "$T"/slurmctld.log; do
      [ -e "$f" ] && { echo "=== $f"; tail -n 40 "$f"; }
    done
  fi
  # DPTRAIN_SLURM_KEEP=1 keeps the logs, runs and daemon logs for a look.
  if [ -n "${DPTRAIN_SLURM_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'echo "FAILED: stopped by a signal (the watchdog: over 420 s)"; exit 1' TERM INT
# The watchdog: its sleep must not keep the test's output open after the end.
(
  trap 'kill "$s" 2>/dev/null; exit 0' TERM
  sleep 420 &
  s=$!
  wait "$s" && kill -TERM $$
) >/dev/null 2>&1 &
watchdog=$!

# check NAME CONDITION...: evaluates the condition, records and prints the result.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failed=$((failed + 1))
    echo "FAILED: $name"
  fi
}
jobs_gone() { [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }

E=3 # epochs of 56 steps
LAST=$((E * 56))
# Four shards whatever the rank count: 2 ranks on one node, 2 nodes x 1 and
# 2 nodes x 2 then train on the same shards, and the exact sum gives the same bits.
ARGS=("$SRC/configs/seed.yaml" --set "data.path=$SRC/datasets/seed_classification.h5"
  --set "train.epochs=$E" --set data.shards=4)
ckpt() { printf '%s/runs/%s/ckpt-%012d.h5' "$SUB" "$1" "$2"; }
log_of() { echo "$SUB/logs/$1-$2.log"; }
# newest NAME: the step of run NAME's newest checkpoint (empty if none).
newest() {
  local f s=
  for f in "$SUB/runs/$1"/ckpt-*.h5; do
    [ -e "$f" ] || continue
    f=${f##*/ckpt-}
    s=$((10#${f%.h5}))
  done
  echo "$s"
}

# submit NAME [SBATCH OPTIONS...]: submits the template as job NAME from the
# submit directory; prints the job id.
submit() {
  local name=$1
  shift
  (cd "$SUB" && sbatch --parsable --job-name="$name" "$@" "$SB" "${ARGS[@]}")
}
# field ID KEY: KEY's value in Slurm's record of job ID.
field() { scontrol show job -o "$1" 2>/dev/null | grep -o " $2=[^ ]*" | sed 's/^[^=]*=//'; }
# ended ID: the job ended for good (no longer pending, running or completing).
ended() {
  case $(field "$1" JobState) in PENDING | RUNNING | COMPLETING | CONFIGURING | REQUEUED | "") return 1 ;; esac
}
# wait_end ID SECONDS [HOLD_DIR]: waits until job ID ended; releases any rank
# held in HOLD_DIR meanwhile. Prints the final state.
wait_end() {
  local t0=$SECONDS
  until ended "$1"; do
    [ -n "${3:-}" ] && rm -f "$3"/held-*
    [ $((SECONDS - t0)) -ge "$2" ] && break
    sleep 0.2
  done
  field "$1" JobState
}
# holds: the rank holds (src/core/test_hold.h) in DIR.
held() { [ -e "$1/held-step-0" ] && [ -e "$1/held-step-1" ]; }
recorded() { grep -q '^signal ' "$1/held-step-0" 2>/dev/null && grep -q '^signal ' "$1/held-step-1" 2>/dev/null; }
same_model() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }
last_line() { tail -n 1 "$1"; }
# quiet LOG: nothing in the log looks like a crash.
quiet() { ! grep -Eq 'Primary job +terminated|mpirun detected|exited on signal|mpirun noticed' "$1"; }

t_start=$SECONDS
slurm_start "$T" || { failed=1; echo "FAILED: the cluster did not start"; exit 1; }
echo "cluster up in $((SECONDS - t_start)) s: $(sinfo -h -N -o '%N %t' | tr '\n' ' ')"

# 2 starts first: its ranks wait (held after step 70) for the time-limit
# signal on one node while the checks below use the other. slurmctld checks
# limits every 30 s: with --time=1 and @50, the signal comes 10-40 s after the
# start, well within the hold's 60 s; the resumed start ends long before its own.
mkdir -p "$T/holds/limit"
limit=$(DPTRAIN_TEST_HOLD=step:70 DPTRAIN_TEST_HOLD_DIR=$T/holds/limit submit limit --time=1 --signal=B:USR1@50)
slurm_wait 60 held "$T/holds/limit"
check "2 time limit: the ranks run (held after step 70)" held "$T/holds/limit"

# 1. Plain submit.
plain=$(submit plain)
st=$(wait_end "$plain" 90)
L=$(log_of plain "$plain")
check "1 plain: COMPLETED" test "$st" = COMPLETED
check "1 plain: the log has the test accuracy" grep -q 'test accuracy' "$L"
check "1 plain: the template says it allowed Open MPI to run as root" grep -q 'running as root: set OMPI_ALLOW_RUN_AS_ROOT=1' "$L"
check "1 plain: the last line says finished" test "$(last_line "$L")" = "dptrain.sbatch: finished"
REF=$(ckpt plain "$LAST")
check "1 plain: a checkpoint at step $LAST" test -s "$REF"

# 3. scancel while the ranks are held after step 70: the ranks record the
# SIGTERM Slurm sends every process and are released; whether the stop
# checkpoint (71) or only the epoch's (56) is left depends on how fast
# mpirun kills the ranks, so the check takes the newest.
mkdir -p "$T/holds/cancel"
cancel=$(DPTRAIN_TEST_HOLD=step:70 DPTRAIN_TEST_HOLD_DIR=$T/holds/cancel submit cancel)
slurm_wait 60 held "$T/holds/cancel"
check "3 scancel: the ranks run (held after step 70)" held "$T/holds/cancel"
scancel "$cancel"
slurm_wait 10 recorded "$T/holds/cancel"
st=$(wait_end "$cancel" 60 "$T/holds/cancel")
L=$(log_of cancel "$cancel")
n=$(newest cancel)
echo "scancel: state $st, exit code $(field "$cancel" ExitCode), newest checkpoint ${n:-none}"
check "3 scancel: CANCELLED" test "$st" = CANCELLED
check "3 scancel: a checkpoint at step 56 or later" test "${n:-0}" -ge 56
check "3 scancel: the last line says cancelled, where and how to resume" test "$(last_line "$L")" = \
  "dptrain.sbatch: cancelled; checkpoint at step ${n:-?}; resubmit with the same --job-name to resume"
check "3 scancel: the batch script exits 4, not 1" test "$(field "$cancel" ExitCode)" = 4:0
again=$(submit cancel)
st=$(wait_end "$again" 90)
check "3 scancel: resubmitted with the same --job-name, it COMPLETED" test "$st" = COMPLETED
check "3 scancel: it resumed from step ${n:-?}" grep -q "resuming from runs/cancel/ckpt-0*${n:-x}.h5" "$(log_of cancel "$again")"
check "3 scancel: stopped and resumed = uninterrupted, bit for bit" same_model "$(ckpt cancel "$LAST")" "$REF"

# 4. scontrol requeue from outside.
mkdir -p "$T/holds/requeue"
requeue=$(DPTRAIN_TEST_HOLD=step:70 DPTRAIN_TEST_HOLD_DIR=$T/holds/requeue submit requeue)
slurm_wait 60 held "$T/holds/requeue"
check "4 requeue: the ranks run (held after step 70)" held "$T/holds/requeue"
scontrol requeue "$requeue"
slurm_wait 10 recorded "$T/holds/requeue"
st=$(wait_end "$requeue" 120 "$T/holds/requeue")
L=$(log_of requeue "$requeue")
check "4 requeue: COMPLETED after a restart" test "$st/$(field "$requeue" Restarts)" = COMPLETED/1
check "4 requeue: the first start says Slurm requeued it" grep -Eq '^dptrain.sbatch: requeued by Slurm; will resume from step (56|71)$' "$L"
check "4 requeue: the second start resumed" grep -Eq '^dptrain: resuming from runs/requeue/ckpt-0*(56|71).h5' "$L"
check "4 requeue: requeued and resumed = uninterrupted, bit for bit" same_model "$(ckpt requeue "$LAST")" "$REF"

# 5. srun --mpi=pmix as the launcher.
srun_job=$(DPTRAIN_LAUNCHER=srun submit srun)
st=$(wait_end "$srun_job" 90)
L=$(log_of srun "$srun_job")
check "5 srun: COMPLETED" test "$st" = COMPLETED
check "5 srun: started by srun" grep -q '2 ranks on 1 node(s), srun,' "$L"
check "5 srun: the same bits as mpirun" same_model "$(ckpt srun "$LAST")" "$REF"

# 7. Early signals: the ranks are held after step 1, so a training cannot
# end before the signal arrives; a forwarded signal is recorded there.
early() {
  local d=$1 name=early$2 id t0 stepd shell mask st L n
  mkdir -p "$T/holds/$name"
  id=$(DPTRAIN_TEST_HOLD=step:1 DPTRAIN_TEST_HOLD_DIR=$T/holds/$name submit "$name")
  # The batch shell: the child of slurmstepd [ID.batch]; wait until its
  # SigCgt mask has SIGUSR1 (bit 9): the template's trap is installed.
  t0=$SECONDS
  shell=
  while [ $((SECONDS - t0)) -lt 60 ]; do
    stepd=$(pgrep -f "^slurmstepd: \[$id\.batch\]" | head -1)
    [ -n "$stepd" ] && shell=$(pgrep -P "$stepd" | head -1)
    if [ -n "$shell" ]; then
      mask=$(sed -n 's/^SigCgt:\t*//p' "/proc/$shell/status" 2>/dev/null)
      [ -n "$mask" ] && (((0x$mask >> 9) & 1)) && break
    fi
    shell=
    sleep 0.01
  done
  [ "$d" != 0 ] && sleep "$d"
  scancel --batch --signal=USR1 "$id"
  check "7 early +${d}s: the trap was installed when the signal was sent" test -n "$shell"
  # Until the start ends: release the ranks once they recorded the signal;
  # held without it for 20 s means it was lost.
  t0=$SECONDS
  local lost=0
  until [ "$(field "$id" JobState)" != RUNNING ] || [ $((SECONDS - t0)) -ge 60 ]; do
    if held "$T/holds/$name"; then
      if recorded "$T/holds/$name"; then
        rm -f "$T/holds/$name"/held-*
      elif [ $((SECONDS - t0)) -ge 20 ]; then
        lost=1
        rm -f "$T/holds/$name"/held-*
      fi
    fi
    sleep 0.05
  done
  slurm_wait 30 grep -q '^dptrain.sbatch: \(requeued\|finished\|failed\|cancelled\|not requeued\)' "$(log_of "$name" "$id")"
  L=$(log_of "$name" "$id")
  n=$(newest "$name")
  echo "early +${d}s: $(grep -E '^dptrain.sbatch: (stop signal|SIG|dptrain exited|requeued|finished|failed)' "$L" | tr '\n' ' ')"
  check "7 early +${d}s: the signal was not lost" test "$lost" = 0
  check "7 early +${d}s: the start ended with a requeue" grep -Eq '^dptrain.sbatch: requeued; (will resume from step [12]|no checkpoint yet; will start fresh)$' "$L"
  check "7 early +${d}s: it stopped by the step after the signal (checkpoint ${n:-none})" test "${n:-0}" -le 2
  check "7 early +${d}s: no rank died, no abort" quiet "$L"
  scancel "$id"
}
i=0
for d in 0 0.1 0.2 0.5; do
  early "$d" "$i"
  i=$((i + 1))
done

# 2 (continued): the signal, then the requeued job resumes and finishes.
slurm_wait 70 recorded "$T/holds/limit"
check "2 time limit: both ranks got SIGUSR1 before the limit" recorded "$T/holds/limit"
# For the record: when the signal came (the held file's last write), after
# the hold began (its creation, about 1 s after the start).
read -r t_run t_sig < <(stat -c '%W %Y' "$T/holds/limit/held-step-0" 2>/dev/null)
[ "${t_run:-0}" -gt 0 ] && echo "time limit: SIGUSR1 came $((t_sig - t_run)) s after the hold began"
st=$(wait_end "$limit" 120 "$T/holds/limit")
L=$(log_of limit "$limit")
check "2 time limit: COMPLETED after a restart" test "$st/$(field "$limit" Restarts)" = COMPLETED/1
check "2 time limit: stopped after step 71 with a checkpoint" grep -q '^dptrain: stop signal received; checkpoint written at step 71;' "$L"
check "2 time limit: the log says it requeued" grep -qx 'dptrain.sbatch: requeued; will resume from step 71' "$L"
check "2 time limit: the second start resumed from step 71" grep -q 'resuming from runs/limit/ckpt-000000000071.h5' "$L"
check "2 time limit: nothing in the log looks like a crash" quiet "$L"
check "2 time limit: stopped, requeued and resumed = uninterrupted, bit for bit" \
  same_model "$(ckpt limit "$LAST")" "$REF"

# 6. Two nodes. Both "nodes" have this host's name, so Open MPI would take
# them for one: its shared-memory transport (vader) and PMIx's shared-memory
# store would then span them and crash; TCP between all ranks, PMIx's hash
# store and no hwloc shared segment keep them apart, as on a real cluster.
for per in 1 2; do
  id=$(OMPI_MCA_btl=tcp,self PMIX_MCA_gds=hash OMPI_MCA_rtc_hwloc_vmhole=none \
    submit "nodes$per" --nodes=2 --ntasks-per-node="$per")
  st=$(wait_end "$id" 90)
  L=$(log_of "nodes$per" "$id")
  check "6 2 nodes x $per: COMPLETED" test "$st" = COMPLETED
  check "6 2 nodes x $per: $((2 * per)) ranks on 2 nodes" grep -q "$((2 * per)) ranks on 2 node(s)" "$L"
  check "6 2 nodes x $per: the same bits as one node" same_model "$(ckpt "nodes$per" "$LAST")" "$REF"
done
check "6 2 nodes x 2: shared memory on each node, the allreduce between them" \
  grep -q 'gradients summed (exact) through shared memory on each of 2 nodes' "$L"

echo "the Slurm test took $((SECONDS - t_start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
