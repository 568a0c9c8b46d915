#!/usr/bin/env bash
# A sweep as a real Slurm job array on tests/slurm/cluster.sh's throwaway
# cluster (about 50 s):
#  1. scripts/slurm/sweep.sh submits configs/sweeps/seed_lr_bs.yaml as a 4-task
#     array; every task ends COMPLETED with the test accuracy in its log
#     logs/seed_lr_bs-<array id>_<i>.log, in runs/seed_lr_bs/<i>-<description>,
#     with the parameters of a plain `dptrain train` with its overrides, bit
#     for bit; sweep_report.py lists the four runs;
#  2. one task (sbatch --array=2 directly) held after step 30 and sent
#     `scancel --batch --signal=USR1`: it stops at step 31, requeues itself as
#     that task only, resumes in its own run directory and ends with task 2's bits;
#  3. one task sent USR1 while it reads its grid: status 4 and a requeue
#     without training, then a fresh start that ends with task 1's bits.
# Every wait is bounded; the daemons are stopped by pid on exit.
set -uo pipefail
SRC=${DPTRAIN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DPTRAIN=$(readlink -f "${DPTRAIN:-$SRC/build/dptrain}")
source "$SRC/tests/slurm/cluster.sh"
# The job scripts themselves must allow Open MPI to run as root.
unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_rmaps_base_oversubscribe
export DPTRAIN OPENBLAS_NUM_THREADS=1

# The daemons run as root: a user without root skips the test.
if [ "$(id -u)" != 0 ]; then
  echo "skipped: a Slurm cluster needs root"
  exit 77
fi

# One Slurm test at a time on this host: the daemons' ports are fixed.
exec 9>/tmp/dptrain-slurm-test.lock
flock -w 300 9 || { echo "FAILED: another Slurm test holds /tmp/dptrain-slurm-test.lock"; exit 1; }
slurm_install || { echo "FAILED: cannot install ${SLURM_PACKAGES[*]}"; exit 1; }

T=$(mktemp -d /tmp/dptrain-sweep-XXXXXX)
chmod 755 "$T" # munged runs as its own user
trap 'slurm_stop; rm -rf "$T"' EXIT
# The submit directory, as a checkout looks: scripts, configs, data, the binary.
SUB=$T/submit
mkdir -p "$SUB/scripts" "$T/holds"
ln -s "$SRC/scripts/slurm" "$SUB/scripts/slurm"
for f in sweep_grid.py sweep_report.py plot_metrics.py; do ln -s "$SRC/scripts/$f" "$SUB/scripts/$f"; done
ln -s "$SRC/configs" "$SUB/configs"
ln -s "$SRC/datasets" "$SUB/datasets"
mkdir -p "$SUB/build" && ln -s "$DPTRAIN" "$SUB/build/dptrain"
passed=0
failed=0
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
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
completed() {
  local j
  for j; do [ "$(state "$j")" = COMPLETED ] || return 1; done
}
restarted() { scontrol show job "$1" 2>/dev/null | grep -q 'Restarts=1'; }
newest() { printf '%s\n' "$1"/ckpt-*.h5 | tail -1; }
same_model() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }

t_start=$SECONDS
slurm_start "$T/slurm" || { echo "FAILED: the cluster did not start"; exit 1; }
echo "cluster up in $((SECONDS - t_start)) s"
cd "$SUB" || exit 1
GRID=configs/sweeps/seed_lr_bs.yaml
NAMES=(0-lr1e-3_bs10 1-lr1e-3_bs50 2-lr3e-4_bs10 3-lr3e-4_bs50)
LRS=(1.0e-3 1.0e-3 3.0e-4 3.0e-4)
BSS=(10 50 10 50)

# 1. The array.
t0=$SECONDS
A=$(scripts/slurm/sweep.sh --time=00:05:00 "$GRID" --set train.epochs=2 | sed -n 's/^Submitted batch job //p')
check "1 array: submitted" test -n "$A"
slurm_wait 120 completed "${A}_0" "${A}_1" "${A}_2" "${A}_3"
check "1 array: the 4 tasks COMPLETED ($((SECONDS - t0)) s)" test $? -eq 0
check "1 array: 4 run directories in grid order" test "$(cd runs/seed_lr_bs && echo *)" = "${NAMES[*]}"
for i in 0 1 2 3; do
  check "1 array: task $i's log has the test accuracy" grep -q "test accuracy" "logs/seed_lr_bs-${A}_$i.log"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -np 2 "$DPTRAIN" train \
    configs/seed.yaml --run-dir "$T/ref$i" --set train.epochs=2 --set "optimizer.learning_rate=${LRS[$i]}" \
    --set "train.batch_size=${BSS[$i]}" >"$T/ref$i.log" 2>&1
  check "1 array: task $i = dptrain with its overrides, bit for bit" \
    same_model "$(newest "runs/seed_lr_bs/${NAMES[$i]}")" "$(newest "$T/ref$i")"
done
check "1 array: the report lists 4 runs" \
  test "$(scripts/sweep_report.py runs/seed_lr_bs | grep -c '^[0-3]-lr')" -eq 4

# 2. A task stopped while training.
t0=$SECONDS
B=$(DPTRAIN_TEST_HOLD=step:30 DPTRAIN_TEST_HOLD_DIR=$T/holds sbatch --parsable --array=2 \
  --job-name=stopq --time=00:05:00 scripts/slurm/sweep.sbatch "$GRID" --set train.epochs=2)
slurm_wait 60 test -e "$T/holds/held-step-0" -a -e "$T/holds/held-step-1"
check "2 stop: both ranks held after step 30" test $? -eq 0
scancel --batch --signal=USR1 "${B}_2"
slurm_wait 30 grep -q '^signal' "$T/holds/held-step-0"
check "2 stop: the ranks record the signal" test $? -eq 0
rm -f "$T"/holds/held-step-*
slurm_wait 60 restarted "${B}_2"
check "2 stop: the task is requeued" test $? -eq 0
slurm_wait 90 completed "${B}_2"
check "2 stop: COMPLETED after the requeue ($((SECONDS - t0)) s)" test $? -eq 0
L=logs/stopq-${B}_2.log
check "2 stop: stopped at step 31" grep -q "checkpoint written at step 31" "$L"
check "2 stop: resumed in its run directory" \
  grep -q "resuming from runs/stopq/${NAMES[2]}/ckpt-000000000031.h5" "$L"
check "2 stop: the bits of the uninterrupted task 2" \
  same_model "$(newest "runs/stopq/${NAMES[2]}")" "$(newest "runs/seed_lr_bs/${NAMES[2]}")"

# 3. A task stopped while it reads its grid (sweep_grid.py waits for a file).
rm scripts/sweep_grid.py
cat >scripts/sweep_grid.py <<EOF
import os, sys, time
open("$T/grid-started", "w").close()
while os.path.exists("$T/grid-hold"):
    time.sleep(0.02)
os.execv("/usr/bin/python3", ["/usr/bin/python3", "$SRC/scripts/sweep_grid.py"] + sys.argv[1:])
EOF
touch "$T/grid-hold"
t0=$SECONDS
C=$(sbatch --parsable --array=1 --job-name=early --time=00:05:00 scripts/slurm/sweep.sbatch "$GRID" \
  --set train.epochs=2)
slurm_wait 60 test -e "$T/grid-started"
check "3 early: the task reads its grid" test $? -eq 0
scancel --batch --signal=USR1 "${C}_1"
sleep 0.5
rm -f "$T/grid-hold"
slurm_wait 60 restarted "${C}_1"
check "3 early: the task is requeued" test $? -eq 0
slurm_wait 90 completed "${C}_1"
check "3 early: COMPLETED after the requeue ($((SECONDS - t0)) s)" test $? -eq 0
L=logs/early-${C}_1.log
check "3 early: the first start trained nothing" grep -q "stop signal (SIGUSR1) before the start; not starting dptrain" "$L"
check "3 early: the bits of the uninterrupted task 1" \
  same_model "$(newest "runs/early/${NAMES[1]}")" "$(newest "runs/seed_lr_bs/${NAMES[1]}")"

echo "checks took $((SECONDS - t_start)) s; $passed passed, $failed failed"
[ "$failed" -eq 0 ]
