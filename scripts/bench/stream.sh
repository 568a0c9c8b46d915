#!/usr/bin/env bash
# Data larger than memory: streamed reads (data.in_memory: false) against
# in-memory ones, in four parts, each printing a short table:
#   throughput  Fashion-MNIST MLP (batch 128) and CNN (batch 128) on 1 and 2
#               ranks, data.in_memory true against false, the file in the page
#               cache: samples/s of each, the median over ROUNDS rounds of the
#               per-round ratio streamed/in memory (the runs alternate, their
#               order flipping every round: this machine drifts by 10-20%
#               within minutes), and the reader's stall time.
#               Targets: >= 0.97x CNN, >= 0.9x MLP.
#   memory      a synthetic file of --gib GiB and one of --small-gib GiB with
#               the same row shape (scripts/bench/make_synthetic.py), the MLP
#               streamed on 2 ranks for --steps steps: peak RSS of each rank
#               (/usr/bin/time around each rank, scripts/bench/rank_rss.sh) on
#               both and the difference. Target: within 64 MiB.
#   startup     the --gib file on 2 ranks, streamed against in memory (skipped
#               with a message when MemAvailable is short of the file + 2 GiB):
#               time to the first step as dptrain reports it, and the wall time
#               of a 1-step run (mpirun to exit). Target: < 2 s streamed.
#   compact     Fashion-MNIST converted as float32 and as uint8 (skipped with a
#               message when scripts/make_fmnist_data.py has no --dtype): file
#               sizes and their ratio (target <= 0.25), the MLP's samples/s on
#               both (target: unchanged or better), alternating, ROUNDS rounds.
# Every run has data.validation_split=0; samples/s count training steps only
# (metrics.jsonl, as fmnist.sh). The time to the first step and the stall come
# from rank 0's line "dptrain: data: <mode> ...; first step after X s; reader
# stalled Y s (Z% of training)"; "n/a" where a run does not print it.
#
# Usage: scripts/bench/stream.sh [PART...] [OPTION...]     (PART: all by default)
#   --rounds N          throughput and compact rounds (3)
#   --mlp-epochs N      MLP epochs per throughput/compact run (2)
#   --cnn-epochs N      CNN epochs per throughput run (1)
#   --limit N           use only N Fashion-MNIST training rows (a dry run)
#   --float32           throughput on the float32 layout of Fashion-MNIST
#                       (four times the bytes to read) instead of uint8
#   --gib G             the large synthetic file's size in GiB (8)
#   --small-gib G       the small one's (0.5)
#   --steps N           steps of a memory run (200)
#   --standardize-too   memory and startup also with data.standardize=true
#   --chunk-rows N, --compress L   layout of the synthetic files
#   --data-dir DIR      where synthetic files go (/tmp/dptrain-bench); files
#                       made by this run are removed at exit unless --keep
#   --keep              keep the synthetic files (a later run reuses them)
#   --set KEY=VALUE     added to every training run (e.g. data.prefetch_steps=8)
#   --no-keys           pass no data.in_memory key: both modes run as the
#                       build's default does (to check the harness on a build
#                       without streaming; also STREAM_KEYS=0)
# A dry run of everything in a few minutes:
#   scripts/bench/stream.sh --rounds 1 --mlp-epochs 1 --cnn-epochs 1 \
#     --limit 6000 --gib 0.2 --small-gib 0.05 --steps 20
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

parts=() sets=() made=()
rounds=3 mlp_epochs=2 cnn_epochs=1 limit='' float32=0'' gib=8 small_gib=0.5 steps=200
std_too=0 chunk_rows='' compress='' data_dir=/tmp/dptrain-bench keep=0 keys=${STREAM_KEYS:-1}
need() { [ $# -ge 2 ] || { echo "stream: error: $1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    throughput | memory | startup | compact) parts+=("$1") ;;
    all) parts+=(throughput memory startup compact) ;;
    --rounds) need "$@"; rounds=$2; shift ;;
    --mlp-epochs) need "$@"; mlp_epochs=$2; shift ;;
    --cnn-epochs) need "$@"; cnn_epochs=$2; shift ;;
    --limit) need "$@"; limit=$2; shift ;;
    --float32) float32=1 ;;
    --gib) need "$@"; gib=$2; shift ;;
    --small-gib) need "$@"; small_gib=$2; shift ;;
    --steps) need "$@"; steps=$2; shift ;;
    --standardize-too) std_too=1 ;;
    --chunk-rows) need "$@"; chunk_rows=$2; shift ;;
    --compress) need "$@"; compress=$2; shift ;;
    --data-dir) need "$@"; data_dir=$(realpath -m "$2"); shift ;;
    --keep) keep=1 ;;
    --set) need "$@"; sets+=(--set "$2"); shift ;;
    --no-keys) keys=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "stream: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#parts[@]} -gt 0 ] || parts=(throughput memory startup compact)
for v in rounds mlp_epochs cnn_epochs steps ${limit:+limit} ${chunk_rows:+chunk_rows}; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] ||
    { echo "stream: error: ${v//_/-} must be a whole number >= 1" >&2; exit 2; }
done
for v in gib small_gib; do
  [[ ${!v} =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v g="${!v}" 'BEGIN { exit !(g > 0) }' ||
    { echo "stream: error: ${v//_/-} must be a number > 0" >&2; exit 2; }
done
has() { [[ " ${parts[*]} " == *" $1 "* ]]; }

# shellcheck source=scripts/bench/common.sh
source "$(dirname "$0")/common.sh"
trap 'rm -rf "$tmp"; [ "$keep" = 1 ] || rm -f ${made[@]+"${made[@]}"}' EXIT
[ -f datasets/fashion_mnist.h5 ] || scripts/make_fmnist.sh >/dev/null
[ "$keys" = 1 ] ||
  echo "stream: no data.in_memory key passed (--no-keys): both modes are the build's default"

# The Fashion-MNIST file the throughput part trains on: the repository's, or
# its first --limit rows; with --float32, the converter's float32 layout of
# either (trained with data.scale 1).
fmnist=datasets/fashion_mnist.h5
fmnist_scale=()
if [ -n "$limit" ] || [ "$float32" = 1 ]; then
  fmnist=$tmp/fmnist_${limit:-all}.h5
  conv=(--out "$fmnist")
  [ -n "$limit" ] && conv+=(--limit "$limit")
  [ "$float32" = 1 ] && conv+=(--dtype float32) && fmnist_scale=(--set data.scale=1)
  /usr/bin/python3 scripts/make_fmnist_data.py "${conv[@]}" >/dev/null
fi

# modekeys MODE: the --set arguments for data.in_memory=MODE (none with
# --no-keys, nor for MODE default).
modekeys() { [ "$keys" = 1 ] && [ "$1" != default ] && echo "--set data.in_memory=$1" || true; }
label() {
  case $1 in true) echo "in memory" ;; false) echo streamed ;; *) echo "$1" ;; esac
}

# train NP CONFIG MODE ARG...: one training run under mpirun, each rank under
# rank_rss.sh; exits the benchmark with dptrain's error on failure. Sets R_DIR,
# R_WALL (s, mpirun to exit), R_RSS (MiB per rank), R_RSSMAX, R_MODE (as
# dptrain reports it), R_FIRST, R_STALL (s) and R_STALLPCT (or n/a).
nrun=0
train() {
  local np=$1 cfg=$2 mode=$3 t0 t1 r
  shift 3
  nrun=$((nrun + 1))
  R_DIR=$tmp/run$nrun
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046 # modekeys gives whole words
  if ! mpirun -np "$np" scripts/bench/rank_rss.sh "$R_DIR.rss" build/dptrain train "$cfg" \
    $(modekeys "$mode") ${sets[@]+"${sets[@]}"} --set data.validation_split=0 \
    --run-dir "$R_DIR" "$@" >"$R_DIR.log" 2>&1; then
    echo "stream: error: dptrain failed on $np rank(s), $cfg, data.in_memory=$mode:" >&2
    grep -m 3 'error' "$R_DIR.log" >&2 || tail -n 5 "$R_DIR.log" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  R_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  R_RSS=
  for r in $(seq 0 $((np - 1))); do
    R_RSS+="${R_RSS:+ }$(tail -n 1 "$R_DIR.rss.$r" | awk '{ printf "%.0f", $1 / 1024 }')"
  done
  R_RSSMAX=$(printf "%s\n" $R_RSS | sort -n | tail -n 1)
  R_MODE=$(sed -nE 's/.*dptrain: data: (in memory|streamed).*/\1/Ip' "$R_DIR.log" | tail -n 1)
  R_FIRST=$(sed -nE 's/.*first step after ([0-9.]+).*/\1/Ip' "$R_DIR.log" | tail -n 1)
  R_STALL=$(sed -nE 's/.*stalled ([0-9.]+).*/\1/Ip' "$R_DIR.log" | tail -n 1)
  R_STALLPCT=$(sed -nE 's/.*stalled [0-9.]+ ?s \(([0-9.]+)%.*/\1/Ip' "$R_DIR.log" | tail -n 1)
  : "${R_MODE:=n/a}" "${R_FIRST:=n/a}" "${R_STALL:=n/a}" "${R_STALLPCT:=n/a}"
  if [ "$keys" = 1 ] && [ "$mode" != default ] && [ "$R_MODE" != n/a ] &&
    [ "$R_MODE" != "$(label "$mode")" ]; then
    echo "stream: warning: asked for data.in_memory=$mode, dptrain reports '$R_MODE'" >&2
  fi
}

# Per-round values, by name; med NAME prints their median (n/a if none).
declare -A vals rates
keep() { vals[$1]="${vals[$1]:-} $2"; }
med() {
  local m
  m=$(printf "%s\n" ${vals[$1]:-} | grep -E '^[0-9]*\.?[0-9]+$' | median || true)
  echo "${m:-n/a}"
}
# modes NAME: how often each mode was reported among the values NAME.
modes() {
  printf "%s\n" ${vals[$1]:-} | sort | uniq -c |
    awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 } END { if (!NR) printf "none" }' |
    tr _ ' '
}
# secs S: "S s", or n/a.
secs() { [ "$1" = n/a ] && echo n/a || echo "$1 s"; }
# stall SECONDS PERCENT: "S s (P%)", or n/a.
stall() { [ "$1" = n/a ] && echo n/a || echo "$1 s (${2}%)"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# testacc DIR: the test accuracy of a run (its last metrics.jsonl record).
testacc() {
  /usr/bin/python3 -c 'import json, sys
print(list(map(json.loads, open(sys.argv[1] + "/metrics.jsonl")))[-1]["test_accuracy"])' "$1"
}

# h5 EXPR FILE: prints the Python expression EXPR of the HDF5 file f = FILE.
h5() { /usr/bin/python3 -c 'import h5py, sys; print(eval(sys.argv[1], {"f": h5py.File(sys.argv[2])}))' "$@"; }

# synth GIB: sets SYNTH to a synthetic file of GIB GiB in $data_dir (made when
# missing, with the --chunk-rows/--compress layout) and SYNTH_ROWS to its rows.
synth() {
  SYNTH=$data_dir/synthetic_${1}gib${chunk_rows:+_c$chunk_rows}${compress:+_z$compress}.h5
  if [ ! -f "$SYNTH" ]; then
    made+=("$SYNTH")
    /usr/bin/python3 scripts/bench/make_synthetic.py --gib "$1" --out "$SYNTH" \
      ${chunk_rows:+--chunk-rows "$chunk_rows"} ${compress:+--compress "$compress"}
  fi
  SYNTH_ROWS=$(h5 'len(f["/train/y"])' "$SYNTH")
}
stds=(false)
[ "$std_too" = 1 ] && stds+=(true)

# --- throughput --------------------------------------------------------------
if has throughput; then
  cat "$fmnist" >/dev/null
  echo "=== throughput: $fmnist, in memory against streamed, $rounds round(s)," \
    "MLP $mlp_epochs epoch(s), CNN $cnn_epochs"
  for round in $(seq "$rounds"); do
    order=(true false)
    [ $((round % 2)) = 0 ] && order=(false true)
    for np in 1 2; do
      for model in mlp cnn; do
        epochs=$mlp_epochs
        [ "$model" = cnn ] && epochs=$cnn_epochs
        for mode in "${order[@]}"; do
          train "$np" "configs/fmnist_$model.yaml" "$mode" --set data.path="$fmnist" \
            ${fmnist_scale[@]+"${fmnist_scale[@]}"} \
            --set train.batch_size=128 --set train.epochs="$epochs"
          k=$model$np$mode
          rates[$mode]=$(rate "$R_DIR")
          keep "rate$k" "${rates[$mode]}"
          keep "stall$k" "$R_STALL"
          keep "pct$k" "$R_STALLPCT"
          keep "rss$k" "$R_RSSMAX"
          keep "mode$mode" "${R_MODE// /_}"
          [ "$mode" = false ] && st=$(stall "$R_STALL" "$R_STALLPCT")
        done
        keep "ratio$model$np" "$(ratio "${rates[false]}" "${rates[true]}")"
        echo "round $round: $model $np rank(s): in memory ${rates[true]}/s, streamed" \
          "${rates[false]}/s = $(ratio "${rates[false]}" "${rates[true]}")x (stall $st)"
      done
    done
  done
  echo "--- throughput, medians over $rounds round(s)"
  printf "%-5s %5s %12s %12s %6s %7s %-18s %10s %10s\n" model ranks "in memory/s" "streamed/s" \
    ratio target "streamed stall" "RSS mem" "RSS strm"
  for model in mlp cnn; do
    target=0.9
    [ "$model" = cnn ] && target=0.97
    for np in 1 2; do
      printf "%-5s %5s %12s %12s %5sx %6sx %-18s %6s MiB %6s MiB\n" "$model" "$np" \
        "$(med "rate${model}${np}true")" "$(med "rate${model}${np}false")" \
        "$(med "ratio$model$np")" "$target" \
        "$(stall "$(med "stall${model}${np}false")" "$(med "pct${model}${np}false")")" \
        "$(med "rss${model}${np}true")" \
        "$(med "rss${model}${np}false")"
    done
  done
  echo "modes dptrain reported: asked in memory: $(modes modetrue);" \
    "asked streamed: $(modes modefalse)"
  echo "stall: median of the streamed runs' 'reader stalled' (s, % of training);" \
    "RSS: the largest rank's peak"
fi

# --- memory ------------------------------------------------------------------
if has memory; then
  echo "=== memory: MLP (configs/fmnist_mlp.yaml), 2 ranks, streamed, $steps steps at batch 128"
  declare -A sfile srows rss
  synth "$small_gib"
  sfile[small]=$SYNTH srows[small]=$SYNTH_ROWS
  synth "$gib"
  sfile[big]=$SYNTH srows[big]=$SYNTH_ROWS
  printf "%-44s %9s %11s %-10s %10s %10s %10s %s\n" file rows standardize mode \
    "RSS rank0" "RSS rank1" "first step" stall
  for std in "${stds[@]}"; do
    for f in small big; do
      # Enough epochs for the steps, no more: a tiny file ends its run instead.
      epochs=$(((steps * 128 + srows[$f] - 1) / srows[$f]))
      train 2 configs/fmnist_mlp.yaml false --set data.path="${sfile[$f]}" \
        --set data.standardize="$std" --set train.batch_size=128 --set train.epochs="$epochs" \
        --stop-after "$steps"
      read -r "rss[${f}0]" "rss[${f}1]" <<<"$R_RSS"
      printf "%-44s %9s %11s %-10s %6s MiB %6s MiB %10s %s\n" "${sfile[$f]}" "${srows[$f]}" \
        "$std" "$R_MODE" "${rss[${f}0]}" "${rss[${f}1]}" "$(secs "$R_FIRST")" \
        "$(stall "$R_STALL" "$R_STALLPCT")"
    done
    for r in 0 1; do
      d=$((${rss[big$r]} - ${rss[small$r]}))
      verdict=yes
      [ "${d#-}" -le 64 ] || verdict=NO
      echo "standardize $std, rank $r: $gib GiB file - $small_gib GiB file = $d MiB" \
        "(within 64 MiB: $verdict)"
    done
  done
fi

# --- startup -----------------------------------------------------------------
if has startup; then
  synth "$gib"
  big=$SYNTH
  echo "=== startup: $big, MLP, 2 ranks, a 1-step run, the file in the page cache"
  size=$(stat -c %s "$big")
  avail=$(awk '/^MemAvailable:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)
  want=$((size + 2 * 1024 * 1024 * 1024))
  modes_run=(false true)
  # Without the keys both runs would be the same: one is enough.
  [ "$keys" = 1 ] || modes_run=(true)
  if [ "$avail" -lt "$want" ]; then
    echo "startup: in memory skipped: needs $(mib "$want") MiB available, $(mib "$avail") MiB are"
    modes_run=(false)
    # Without the keys, the streamed run would load the file as well.
    [ "$keys" = 1 ] || modes_run=()
  fi
  cat "$big" >/dev/null
  printf "%-10s %11s %11s %10s %10s %10s %s\n" asked standardize "first step" "1-step run" \
    "RSS rank0" "RSS rank1" "mode reported"
  for std in "${stds[@]}"; do
    for mode in ${modes_run[@]+"${modes_run[@]}"}; do
      train 2 configs/fmnist_mlp.yaml "$mode" --set data.path="$big" --set data.standardize="$std" \
        --set train.batch_size=128 --set train.epochs=1 --stop-after 1
      read -r r0 r1 <<<"$R_RSS"
      printf "%-10s %11s %11s %10s %6s MiB %6s MiB %s\n" "$(label "$mode")" "$std" \
        "$(secs "$R_FIRST")" "$R_WALL s" "$r0" "$r1" "$R_MODE"
    done
  done
  echo "target: streamed, the first step within 2 s" \
    "(the 1-step run adds mpirun, setup and a checkpoint)"
fi

# --- compact -----------------------------------------------------------------
if has compact; then
  echo "=== compact: Fashion-MNIST as float32 and as uint8, MLP, 1 rank, $rounds round(s)" \
    "of $mlp_epochs epoch(s)"
  if ! /usr/bin/python3 scripts/make_fmnist_data.py --help | grep -q -- --dtype; then
    echo "compact: skipped: scripts/make_fmnist_data.py has no --dtype option" \
      "(no uint8 storage yet)"
  else
    f32=$tmp/fmnist_float32.h5 u8=$tmp/fmnist_uint8.h5
    /usr/bin/python3 scripts/make_fmnist_data.py ${limit:+--limit "$limit"} --dtype float32 \
      --out "$f32" >/dev/null
    /usr/bin/python3 scripts/make_fmnist_data.py ${limit:+--limit "$limit"} --out "$u8" >/dev/null
    s32=$(stat -c %s "$f32") s8=$(stat -c %s "$u8")
    echo "files: $f32 $(h5 'f["/train/x"].dtype' "$f32") $(mib "$s32") MiB," \
      "$u8 $(h5 'f["/train/x"].dtype' "$u8") $(mib "$s8") MiB:" \
      "$(ratio "$s8" "$s32")x the size (target <= 0.25)"
    if ! build/dptrain config --explain | grep -q '^data\.scale'; then
      echo "compact: training skipped: this build has no data.scale key"
    else
      cat "$f32" "$u8" >/dev/null
      # Explicit scales whatever the configs say: the float32 file holds pixels / 255.
      declare -A scale=([float32]=1 [uint8]=0.00392156862745098) file=([float32]=$f32 [uint8]=$u8)
      for round in $(seq "$rounds"); do
        order=(float32 uint8)
        [ $((round % 2)) = 0 ] && order=(uint8 float32)
        for t in "${order[@]}"; do
          train 1 configs/fmnist_mlp.yaml default --set data.path="${file[$t]}" \
            --set data.scale="${scale[$t]}" --set data.offset=0 --set train.batch_size=128 \
            --set train.epochs="$mlp_epochs"
          rates[$t]=$(rate "$R_DIR")
          keep "crate$t" "${rates[$t]}"
          keep "cacc$t" "$(testacc "$R_DIR")"
          keep "cmode$t" "${R_MODE// /_}"
        done
        keep cratio "$(ratio "${rates[uint8]}" "${rates[float32]}")"
        echo "round $round: float32 ${rates[float32]}/s, uint8 ${rates[uint8]}/s =" \
          "$(ratio "${rates[uint8]}" "${rates[float32]}")x"
      done
      echo "--- compact, medians over $rounds round(s)"
      printf "%-8s %10s %11s %14s %s\n" storage MiB samples/s "test accuracy" mode
      for t in float32 uint8; do
        [ "$t" = float32 ] && bytes=$s32 || bytes=$s8
        printf "%-8s %10s %11s %14s %s\n" "$t" "$(mib "$bytes")" "$(med "crate$t")" \
          "$(med "cacc$t")" "$(modes "cmode$t")"
      done
      echo "uint8 against float32: $(med cratio)x samples/s (target: >= 1, within noise)"
    fi
  fi
fi
