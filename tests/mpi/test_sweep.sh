#!/usr/bin/env bash
# Sweeps as job arrays, without Slurm:
# - scripts/sweep_grid.py lists a 3-key grid's combinations in the documented
#   order (cartesian product, last key fastest) with the descriptions and --set
#   options written out by hand here; bad grid files are one error line;
# - scripts/slurm/sweep.sbatch run as array tasks 0-3 of
#   configs/sweeps/seed_lr_bs.yaml (fake SLURM_* variables, the real
#   dptrain.sbatch, mpirun and dptrain) trains each combination into
#   runs/<job name>/<i>-<description>: each task's parameters equal those of a
#   plain `dptrain train` on as many ranks with that combination's overrides,
#   bit for bit, and its checkpoint's /config ends with those overrides;
# - a task stopped by SIGUSR1 while it reads the grid ends with status 4 and
#   asks to be requeued without training (after SIGTERM it does not ask: Slurm
#   cancels or requeues it); stopped again while training, it
#   checkpoints in its own run directory, and the next start resumes there and
#   ends with the uninterrupted task's parameters;
# - scripts/slurm/sweep.sh submits one array task per combination (a stub
#   sbatch records the command), and refuses a bad grid before submitting;
# - scripts/sweep_report.py's table holds, per run, the best val_loss and
#   val_accuracy with their epochs and the test figures, computed here from
#   metrics.jsonl and by hand for a run written here, sorted by best val_loss;
#   --plot writes a PNG.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

PY=/usr/bin/python3
GRID_PY=$SRC/scripts/sweep_grid.py
SB=scripts/slurm/sweep.sbatch

# --- sweep_grid.py: order, count, descriptions -------------------------------
cat >"$TMP/g.yaml" <<'EOF'
config: configs/seed.yaml
grid:
  optimizer.learning_rate: [1.0e-3, 0.01, 2.5e-4]
  train.batch_size: [10, 50]
  optimizer.name: [adam, 'sgd']
EOF
cat >"$TMP/g.expected" <<'EOF'
0-lr1e-3_bs10_optimizer-adam: --set optimizer.learning_rate=1.0e-3 --set train.batch_size=10 --set optimizer.name=adam
1-lr1e-3_bs10_optimizer-sgd: --set optimizer.learning_rate=1.0e-3 --set train.batch_size=10 --set 'optimizer.name="sgd"'
2-lr1e-3_bs50_optimizer-adam: --set optimizer.learning_rate=1.0e-3 --set train.batch_size=50 --set optimizer.name=adam
3-lr1e-3_bs50_optimizer-sgd: --set optimizer.learning_rate=1.0e-3 --set train.batch_size=50 --set 'optimizer.name="sgd"'
4-lr0.01_bs10_optimizer-adam: --set optimizer.learning_rate=0.01 --set train.batch_size=10 --set optimizer.name=adam
5-lr0.01_bs10_optimizer-sgd: --set optimizer.learning_rate=0.01 --set train.batch_size=10 --set 'optimizer.name="sgd"'
6-lr0.01_bs50_optimizer-adam: --set optimizer.learning_rate=0.01 --set train.batch_size=50 --set optimizer.name=adam
7-lr0.01_bs50_optimizer-sgd: --set optimizer.learning_rate=0.01 --set train.batch_size=50 --set 'optimizer.name="sgd"'
8-lr2.5e-4_bs10_optimizer-adam: --set optimizer.learning_rate=2.5e-4 --set train.batch_size=10 --set optimizer.name=adam
9-lr2.5e-4_bs10_optimizer-sgd: --set optimizer.learning_rate=2.5e-4 --set train.batch_size=10 --set 'optimizer.name="sgd"'
10-lr2.5e-4_bs50_optimizer-adam: --set optimizer.learning_rate=2.5e-4 --set train.batch_size=50 --set optimizer.name=adam
11-lr2.5e-4_bs50_optimizer-sgd: --set optimizer.learning_rate=2.5e-4 --set train.batch_size=50 --set 'optimizer.name="sgd"'
EOF
check "grid: 12 combinations" test "$("$PY" "$GRID_PY" "$TMP/g.yaml" --count)" = 12
"$PY" "$GRID_PY" "$TMP/g.yaml" --list >"$TMP/g.list"
check "grid: --list in the documented order" diff "$TMP/g.expected" "$TMP/g.list"
printf '%s\n' "dir 9-lr2.5e-4_bs10_optimizer-sgd" "config configs/seed.yaml" \
  "set optimizer.learning_rate=2.5e-4" "set train.batch_size=10" 'set optimizer.name="sgd"' \
  >"$TMP/t9.expected"
check "grid: --task 9" diff "$TMP/t9.expected" <("$PY" "$GRID_PY" "$TMP/g.yaml" --task 9)
# Keys whose short names collide keep their distinct tails; lists stay flow YAML.
cat >"$TMP/g2.yaml" <<'EOF'
grid:
  model.layers.0.dense.units: [64]
  model.layers.1.dense.units: [32, 8]
  model.input: [[20]]
EOF
printf '%s\n' "dir 1-0.dense.units64_1.dense.units8_input20" "set model.layers.0.dense.units=64" \
  "set model.layers.1.dense.units=8" "set model.input=[20]" >"$TMP/t1.expected"
check "grid: colliding keys, a list value" diff "$TMP/t1.expected" <("$PY" "$GRID_PY" "$TMP/g2.yaml" --task 1)

# bad_grid NAME EXPECTED TEXT [OPTION]: a grid file holding TEXT is one error line with EXPECTED.
bad_grid() {
  local name=$1 expected=$2 rc
  printf '%s' "$3" >"$TMP/bad.yaml"
  "$PY" "$GRID_PY" "$TMP/bad.yaml" "${4:---count}" >"$TMP/bad.out" 2>"$TMP/bad.err"
  rc=$?
  check "bad grid, $name: exit 1, nothing printed" test $rc -eq 1 -a ! -s "$TMP/bad.out"
  check "bad grid, $name: one line '$expected'" test "$(wc -l <"$TMP/bad.err")" -eq 1 \
    -a "$(grep -c "^sweep_grid: error: " "$TMP/bad.err")" -eq 1
  grep -qF -- "$expected" "$TMP/bad.err" || cat "$TMP/bad.err"
  check "bad grid, $name: says '$expected'" grep -qF -- "$expected" "$TMP/bad.err"
}
bad_grid "empty file" "the file is empty" ""
bad_grid "no grid" "no 'grid:'" $'config: configs/seed.yaml\n'
bad_grid "empty grid" ":1: grid: expected at least one KEY" $'grid: {}\n'
bad_grid "a value, not a list" ":3: train.batch_size: expected a list of values, got '64' (write [64]" \
  $'grid:\n  optimizer.learning_rate: [0.1]\n  train.batch_size: 64\n'
bad_grid "an empty list" ":2: train.epochs: the list of values is empty" $'grid:\n  train.epochs: []\n'
bad_grid "a key twice" ":3: 'train.epochs' is listed twice" $'grid:\n  train.epochs: [1]\n  train.epochs: [2]\n'
bad_grid "not a key" ":2: 'train..epochs' is not a dotted config key" $'grid:\n  train..epochs: [1]\n'
bad_grid "unknown top-level key" ":1: unknown key 'grids'" $'grids:\n  train.epochs: [1]\n'
bad_grid "bad YAML" ":3:1: not valid YAML" $'grid:\n  train.epochs: [1, 2\n'
bad_grid "task out of range" "--task 2: out of range; $TMP/bad.yaml has 2 combinations (0-1)" \
  $'grid:\n  train.epochs: [1, 2]\n' "--task=2"
"$PY" "$GRID_PY" "$TMP/none.yaml" --count 2>"$TMP/bad.err"
check "bad grid, missing file: exit 1" test $? -eq 1
check "bad grid, missing file: one line" test "$(cat "$TMP/bad.err")" = \
  "sweep_grid: error: $TMP/none.yaml: no such grid file"

# --- an array of 4 tasks -----------------------------------------------------
# A submit directory as a checkout looks to Slurm: scripts/slurm/ and the data
# from the source tree, and scripts/sweep_grid.py, which the stop test swaps.
SUB=$TMP/submit
mkdir -p "$SUB/scripts" "$TMP/bin"
ln -s "$SRC/scripts/slurm" "$SUB/scripts/slurm"
ln -s "$SRC/scripts/sweep_grid.py" "$SUB/scripts/sweep_grid.py"
ln -s "$SRC/configs" "$SUB/configs"
ln -s "$SRC/datasets" "$SUB/datasets"
printf '#!/bin/sh\necho "$*" >>"%s/scontrol.log"\n' "$TMP" >"$TMP/bin/scontrol"
chmod +x "$TMP/bin/scontrol"
touch "$TMP/scontrol.log"
# requeues: the requeue requests the stub recorded (it also records queries), on one line.
requeues() { grep '^requeue ' "$TMP/scontrol.log" | tr '\n' ' '; }
export PATH=$TMP/bin:$PATH SLURM_SUBMIT_DIR=$SUB SLURM_NTASKS=2 DPTRAIN
GRID=configs/sweeps/seed_lr_bs.yaml
E=2
# Hand-written: the combinations of $GRID in order, as directory and overrides.
NAMES=(0-lr1e-3_bs10 1-lr1e-3_bs50 2-lr3e-4_bs10 3-lr3e-4_bs50)
LRS=(1.0e-3 1.0e-3 3.0e-4 3.0e-4)
BSS=(10 50 10 50)

# task NAME I RESTARTS [VAR=VALUE...]: runs sweep.sbatch as array task I of job
# NAME (job id 100+I) in the background, appending to $TMP/NAME-I.log; BG is
# the pid of the `timeout` bounding it.
task() {
  local name=$1 i=$2 restarts=$3
  shift 3
  env SLURM_JOB_NAME="$name" SLURM_ARRAY_TASK_ID="$i" SLURM_JOB_ID=$((100 + i)) \
    SLURM_RESTART_COUNT="$restarts" "$@" \
    timeout -k 5 120 bash "$SRC/$SB" "$GRID" --set "train.epochs=$E" >>"$TMP/$name-$i.log" 2>&1 &
  BG=$!
}
for i in 0 1 2 3; do
  task arr "$i" 0
  wait "$BG"
  check "task $i: exit 0" test $? -eq 0
done
check "four run directories, named in grid order" \
  test "$(cd "$SUB/runs/arr" && echo *)" = "${NAMES[*]}"
# set_lines CKPT: the trailing "# --set" lines of a checkpoint's /config.
set_lines() {
  "$PY" -c 'import h5py, sys
text = h5py.File(sys.argv[1], "r")["config"][()].decode()
print("\n".join(l for l in text.splitlines() if l.startswith("# --set ")))' "$1"
}
for i in 0 1 2 3; do
  d=$SUB/runs/arr/${NAMES[$i]}
  run_np 2 "$TMP/ref$i.log" train configs/seed.yaml --run-dir "$TMP/ref$i" --set "train.epochs=$E" \
    --set "optimizer.learning_rate=${LRS[$i]}" --set "train.batch_size=${BSS[$i]}"
  check "task $i: the reference run trains" test $? -eq 0
  check "task $i: the same parameters as dptrain with its overrides" same_model "$(newest "$d")" \
    "$(newest "$TMP/ref$i")"
  check "task $i: its checkpoint's config ends with the overrides" test "$(set_lines "$(newest "$d")")" = \
    "$(printf '# --set %s\n' "train.epochs=$E" "optimizer.learning_rate=${LRS[$i]}" "train.batch_size=${BSS[$i]}")"
  check "task $i: its log names the run directory" \
    grep -qF "no checkpoint in runs/arr/${NAMES[$i]}; starting fresh" "$TMP/arr-$i.log"
done
check "the learning rates differ in effect" differ_ckpt "$SUB/runs/arr/${NAMES[0]}" \
  "$SUB/runs/arr/${NAMES[2]}" /model
check "no task asked to be requeued" test -z "$(requeues)"

# --- stop and requeue ----------------------------------------------------------
# Start 1: SIGUSR1 while the task reads its grid (sweep_grid.py held here).
rm "$SUB/scripts/sweep_grid.py"
cat >"$SUB/scripts/sweep_grid.py" <<EOF
import os, sys, time
open("$TMP/grid-started", "w").close()
while os.path.exists("$TMP/grid-hold"):
    time.sleep(0.02)
os.execv("$PY", ["$PY", "$GRID_PY"] + sys.argv[1:])
EOF
touch "$TMP/grid-hold"
task stop 2 0
wait_until 30 test -e "$TMP/grid-started"
check "start 1: the task reads its grid" test $? -eq 0
kill -USR1 "$(pgrep -P "$BG")"
rm "$TMP/grid-hold"
wait "$BG"
check "start 1, USR1 before training: exit 4" test $? -eq 4
check "start 1: it says why" grep -qF "dptrain.sbatch: stop signal (SIGUSR1) before the start; not starting dptrain" "$TMP/stop-2.log"
check "start 1: it asks to be requeued" test "$(requeues)" = "requeue 102 "
check "start 1: nothing trained" test ! -e "$SUB/runs/stop"
# SIGTERM there (scancel, scontrol requeue): status 4, and Slurm decides the rest.
rm -f "$TMP/grid-started"
touch "$TMP/grid-hold"
task term 1 0
wait_until 30 test -e "$TMP/grid-started"
kill -TERM "$(pgrep -P "$BG")"
rm "$TMP/grid-hold"
wait "$BG"
check "TERM before training: exit 4" test $? -eq 4
check "TERM before training: asks (no job record in the stub)" test "$(requeues)" = "requeue 102 requeue 101 "
check "TERM before training: nothing trained" test ! -e "$SUB/runs/term"
rm "$SUB/scripts/sweep_grid.py"
ln -s "$GRID_PY" "$SUB/scripts/sweep_grid.py"

# Start 2: SIGUSR1 while training, ranks held after step 30.
task stop 2 1 DPTRAIN_TEST_HOLD=step:30
wait_held step 0 1
check "start 2: both ranks are held after step 30" test $? -eq 0
kill -USR1 "$(pgrep -P "$BG")"
wait_recorded step 0 1
check "start 2: both ranks record the signal" test $? -eq 0
release step 0 1
wait "$BG"
check "start 2, USR1 while training: exit 4" test $? -eq 4
D=$SUB/runs/stop/${NAMES[2]}
check "start 2: a checkpoint at step 31 in the task's run directory" test "$(newest_step "$D")" -eq 31
check "start 2: it asks to be requeued" test "$(requeues)" = "requeue 102 requeue 101 requeue 102 "

# Start 3: resumes there and finishes as the uninterrupted task did.
task stop 2 2
wait "$BG"
check "start 3: exit 0" test $? -eq 0
check "start 2's last line: requeued; will resume from step 31" grep -qx "dptrain.sbatch: requeued; will resume from step 31" "$TMP/stop-2.log"
check "the header names the task's run directory" grep -q "run dir runs/stop/${NAMES[2]}$" "$TMP/stop-2.log"
check "start 3: resumes from step 31" grep -qF "resuming from runs/stop/${NAMES[2]}/$(ckpt_name 31)" \
  "$TMP/stop-2.log"
check "stopped twice, resumed = the uninterrupted task, bit for bit" \
  same_model "$(newest "$D")" "$(newest "$SUB/runs/arr/${NAMES[2]}")"

# --- bad tasks -----------------------------------------------------------------
env SLURM_JOB_NAME=bad bash "$SRC/$SB" "$GRID" >"$TMP/noarray.log" 2>&1
check "not an array task: exit 1" test $? -eq 1
check "not an array task: says --array" grep -qF "not an array task; submit with --array=0-N-1" \
  "$TMP/noarray.log"
printf 'grid:\n  train.epochs: 2\n' >"$SUB/bad.yaml"
env SLURM_JOB_NAME=bad SLURM_ARRAY_TASK_ID=0 bash "$SRC/$SB" bad.yaml configs/seed.yaml \
  >"$TMP/badgrid.log" 2>&1
check "a bad grid: the task exits 1" test $? -eq 1
check "a bad grid: sweep_grid's line in the log" grep -qF "sweep_grid: error: bad.yaml:2: train.epochs" \
  "$TMP/badgrid.log"
printf 'grid:\n  train.epoch: [2]\n' >"$SUB/typo.yaml"
env SLURM_JOB_NAME=bad SLURM_ARRAY_TASK_ID=0 bash "$SRC/$SB" typo.yaml configs/seed.yaml \
  >"$TMP/typo.log" 2>&1
check "an unknown key: dptrain fails the task" test $? -eq 1
check "an unknown key: dptrain names it" grep -qF "unknown key 'epoch'" "$TMP/typo.log"
check "bad tasks train nothing" test ! -e "$SUB/runs/bad"

# --- sweep.sh -------------------------------------------------------------------
printf '#!/bin/sh\necho "$*" >>"%s/sbatch.log"\n' "$TMP" >"$TMP/bin/sbatch"
chmod +x "$TMP/bin/sbatch"
(cd "$SUB" && scripts/slurm/sweep.sh --parallel=2 --time=00:10:00 "$GRID" --set train.epochs=3) \
  >"$TMP/submit.log" 2>&1
check "sweep.sh: exit 0" test $? -eq 0
check "sweep.sh: sbatch gets --array=0-3%2, the grid's name and the options" \
  test "$(cat "$TMP/sbatch.log")" = "--array=0-3%2 --job-name=seed_lr_bs --time=00:10:00 $SB $GRID --set train.epochs=3"
check "sweep.sh: it lists the 4 combinations" test "$(grep -c '^  [0-3]-lr' "$TMP/submit.log")" -eq 4
check "sweep.sh: it creates logs/ for the job logs" test -d "$SUB/logs"
(cd "$SUB" && scripts/slurm/sweep.sh bad.yaml configs/seed.yaml) >"$TMP/submit.log" 2>&1
check "sweep.sh, a bad grid: exit 1" test $? -eq 1
check "sweep.sh, a bad grid: sweep_grid's line" grep -qF "sweep_grid: error: bad.yaml:2" "$TMP/submit.log"
check "sweep.sh, a bad grid: nothing submitted" test "$(wc -l <"$TMP/sbatch.log")" -eq 1

# --- sweep_report.py -----------------------------------------------------------
mkdir "$SUB/runs/arr/4-pending" "$SUB/runs/arr/5-made"
# A run written here: best val_loss at epoch 1 and best val_accuracy at epoch 2
# (logged twice, as after a resume: the last record counts), not finished.
cat >"$SUB/runs/arr/5-made/metrics.jsonl" <<'EOF2'
{"epoch": 1, "loss": 0.5, "accuracy": 0.7, "val_loss": 0.25, "val_accuracy": 0.8, "test_loss": null, "test_accuracy": null}
{"epoch": 2, "loss": 0.4, "accuracy": 0.8, "val_loss": 0.1, "val_accuracy": 0.95, "test_loss": null, "test_accuracy": null}
{"epoch": 2, "loss": 0.4, "accuracy": 0.8, "val_loss": 0.3, "val_accuracy": 0.9, "test_loss": null, "test_accuracy": null}
{"epoch": 3, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.85, "test_loss": null, "test_accuracy": null}
EOF2
"$PY" "$SRC/scripts/sweep_report.py" "$SUB/runs/arr" --plot "$TMP/sweep.png" >"$TMP/report.txt" 2>&1
check "report: exit 0" test $? -eq 0
cat "$TMP/report.txt"
# The expected rows, from metrics.jsonl by a reading of its own (the last
# record of an epoch counts), best val_loss first.
"$PY" - "$SUB/runs/arr" "${NAMES[@]}" >"$TMP/report.expected" <<'EOF'
import json, sys
rows = []
for name in sys.argv[2:]:
    epochs, test = {}, {}
    for line in open(f"{sys.argv[1]}/{name}/metrics.jsonl"):
        r = json.loads(line)
        if r["test_loss"] is not None:
            test = r
        else:
            epochs[r["epoch"]] = r
    vl = min((r["val_loss"], e) for e, r in sorted(epochs.items()))
    va = max((r["val_accuracy"], -e) for e, r in sorted(epochs.items()))
    rows.append((vl[0], [name, str(len(epochs)), f"{vl[0]:.4f} ({vl[1]})", f"{va[0]:.4f} ({-va[1]})",
                         f"{test['test_loss']:.4f}", f"{test['test_accuracy']:.4f}"]))
rows.append((0.25, ["5-made", "3", "0.2500 (1)", "0.9000 (2)", "-", "-"]))
for _, cells in sorted(rows, key=lambda r: r[0]):
    print(" ".join(cells))
print("4-pending 0 no metrics.jsonl yet")
EOF
sed -n '3,8p' "$TMP/report.txt" | tr -s ' ' >"$TMP/report.rows"
check "report: the rows, best val_loss first" diff "$TMP/report.expected" "$TMP/report.rows"
check "report: a PNG of the curves" grep -qF "plot_metrics: wrote $TMP/sweep.png (900x420 pixels, 5 run(s))" \
  "$TMP/report.txt"
check "report: the PNG exists" test -s "$TMP/sweep.png"
"$PY" "$SRC/scripts/sweep_report.py" "$TMP/nowhere" >/dev/null 2>"$TMP/bad.err"
check "report, a missing directory: exit 1" test $? -eq 1
check "report, a missing directory: one line" test "$(cat "$TMP/bad.err")" = \
  "sweep_report: error: $TMP/nowhere: no such sweep directory"

finish
