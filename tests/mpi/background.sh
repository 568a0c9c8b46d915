# shellcheck shell=bash
# background.sh - sourced after common.sh by the fault and signal tests, which
# act on a run while it trains. Provides: start_np (run_np in the background),
# rank_pid, wait_until, now/elapsed, holds (held, wait_held, held_pid,
# wait_recorded, release) and ckpt helpers.
DPTRAIN_EXE=$(readlink -f "$DPTRAIN")

# start_np N LOG ARGS...: like run_np, but returns at once; BG is the pid of the
# `timeout` that bounds the run (mpirun is its child). `wait "$BG"` gives the status.
start_np() {
  local np=$1 log=$2
  shift 2
  timeout -k 5 "${RUN_TIMEOUT:-120}" mpirun --oversubscribe -np "$np" "$DPTRAIN" "$@" >"$log" 2>&1 &
  BG=$!
}

# descendants PID: every process below PID, children first.
descendants() {
  local c
  for c in $(pgrep -P "$1"); do
    echo "$c"
    descendants "$c"
  done
}

# rank_pid R [ROOT]: the pid of the dptrain process of rank R below ROOT
# (default $BG); empty when it is not running (yet).
rank_pid() {
  local p
  for p in $(descendants "${2:-$BG}"); do
    [ "$(readlink /proc/"$p"/exe 2>/dev/null)" = "$DPTRAIN_EXE" ] || continue
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$p"
      return
    fi
  done
}

# running PID: PID is a live process (a zombie, dead but not yet reaped by
# init after mpirun exited, does not count).
running() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null)
  [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}
none_running() {
  local p
  for p; do running "$p" && return 1; done
  return 0
}

# now: wall-clock seconds with microseconds. elapsed T0: seconds since T0.
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# wait_until SECONDS CMD...: polls CMD every 50 ms; false if it never held in time.
wait_until() {
  local limit=$1 t0=$EPOCHREALTIME
  shift
  until "$@"; do
    fgt "$(elapsed "$t0")" "$limit" && return 1
    sleep 0.05
  done
}

# Holds (src/core/test_hold.h): a rank started with DPTRAIN_TEST_HOLD=POINT[:STEP][@RANK]
# in its environment stops at that point, writes $HOLD/held-POINT-RANK ("pid PID
# step STEP", then "signal SIG" once it has recorded a stop signal) and waits
# until the test removes the file. A test thus acts at a step it chooses, not
# at one the machine's speed picks.
HOLD=$TMP/holds
mkdir -p "$HOLD"
export DPTRAIN_TEST_HOLD_DIR=$HOLD

# held POINT RANK: rank RANK is held at POINT.
held() { [ -e "$HOLD/held-$1-$2" ]; }
# wait_held POINT RANK...: every RANK is held at POINT within 60 s (false if not).
wait_held() {
  local p=$1 r
  shift
  for r; do wait_until 60 held "$p" "$r" || return 1; done
}
# held_pid POINT RANK: the pid of the process held there (empty if none).
held_pid() { sed -n 's/^pid \([0-9]*\) .*/\1/p' "$HOLD/held-$1-$2" 2>/dev/null; }
# recorded POINT RANK: the rank held there has recorded a stop signal.
recorded() { grep -q '^signal ' "$HOLD/held-$1-$2" 2>/dev/null; }
# wait_recorded POINT RANK...: every RANK held at POINT recorded a stop signal within 60 s.
wait_recorded() {
  local p=$1 r
  shift
  for r; do wait_until 60 recorded "$p" "$r" || return 1; done
}
# release POINT RANK...: the ranks held at POINT go on.
release() {
  local p=$1 r
  shift
  for r; do rm -f "$HOLD/held-$p-$r"; done
}

# ckpt_name STEP: the file name dptrain gives the checkpoint of STEP.
ckpt_name() { printf 'ckpt-%012d.h5' "$1"; }

# ckpt_steps DIR: the steps of DIR's checkpoints, ascending (none: no output).
ckpt_steps() {
  local f
  for f in "$1"/ckpt-*.h5; do
    [ -e "$f" ] || continue
    f=${f##*/ckpt-}
    echo $((10#${f%.h5}))
  done | sort -n
}

# newest_step DIR: the largest checkpoint step in DIR, or -1.
newest_step() {
  local s
  s=$(ckpt_steps "$1" | tail -1)
  echo "${s:--1}"
}

# ckpt_ok FILE: FILE is a whole checkpoint: h5dump reads every object and the
# first kernel has the seed model's shape.
ckpt_ok() {
  h5dump "$1" >/dev/null 2>&1 &&
    h5dump -H -d /model/0_dense/kernel "$1" 2>/dev/null | grep -q 'DATASPACE  SIMPLE { ( 20, 64 )'
}

# same_model A B: the /model groups of two checkpoints are bit-identical.
same_model() { h5diff -d 0 "$1" "$2" /model /model >/dev/null 2>&1; }
