#!/usr/bin/env bash
# Byte-level language models of the fortunes text (configs/fortunes_*.yaml),
# dptrain against the PyTorch reference (torch_charlm.py) side by side in one
# run: for each model both train STEPS steps of batch 32 at the same time, each
# on its own core with one OpenBLAS thread, on the same windows. Prints training
# tokens/s and their ratio, the validation loss after STEPS steps (mean nats per
# token over every /val window, as the reference computes it), each side's
# training GFLOP/s as a fraction of sgemm's on one core, and peak RSS.
# Both train on the first STEPS/2 * 32 training windows for two epochs, so
# STEPS steps end exactly at an epoch, where dptrain reports its validation loss.
# Then scaling, for the LSTM and the transformer at global batch 64: 2 ranks
# against 1 rank, and against two independent 1-rank runs at batch 32 at once
# (the same compute with nothing shared).
# Usage: scripts/bench/charlm.sh [STEPS] [SCALE_STEPS] [MODEL...]
steps=${1:-2000}
scale_steps=${2:-300}
shift 2 || shift $#
models=${*:-rnn lstm gru transformer}
source "$(dirname "$0")/common.sh"
[ -f datasets/fortunes.h5 ] || scripts/make_fortunes.sh >/dev/null

# cut OUT WINDOWS: datasets/fortunes.h5 with only its first WINDOWS training windows.
cut_train() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py
out, n = sys.argv[1], int(sys.argv[2])
with h5py.File("datasets/fortunes.h5", "r") as src, h5py.File(out, "w") as dst:
    assert src["/train/x"].shape[0] >= n, "not enough training windows"
    for part in ("train", "val", "test"):
        for k in ("x", "y"):
            d = src[f"/{part}/{k}"]
            dst[f"/{part}/{k}"] = d[:n] if part == "train" else d[:]
PY
}

# Training FLOPs per token (forward, then twice that backward: weight and input
# gradients), embedding 128, width 256, vocabulary 256, T 64; the transformer's
# attention counted over the full [T, T] scores as a dense GEMM would.
flops() {
  local E=128 H=256 V=256 T=64 d=128 f=512
  case $1 in
    rnn) echo $((6 * (E * H + H * H + H * V))) ;;
    lstm) echo $((6 * (E * 4 * H + H * 4 * H + H * V))) ;;
    gru) echo $((6 * (E * 3 * H + H * 3 * H + H * V))) ;;
    transformer) echo $((6 * (4 * (4 * d * d + 2 * d * f + 2 * T * d) + d * V))) ;;
  esac
}

# val_loss DIR: the validation loss of the last epoch record.
val_loss() { /usr/bin/python3 -c 'import json, sys; print("%.4f" % [r for r in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")) if r.get("val_loss") is not None][-1]["val_loss"])' "$1"; }
rss() { awk '/^RSS/ { printf "%.0f", $2 / 1024 }' "$1"; }
gf() { awk -v t="$1" -v f="$2" -v p="$peak" 'BEGIN { printf "%.1f GFLOP/s (%.2f of sgemm)", t * f / 1e9, t * f / 1e9 / p }'; }

echo "sgemm 1024^3, 1 thread: $peak GFLOP/s (OpenBLAS kernels: $core, used by both)"
cut_train "$tmp/quality.h5" $((steps / 2 * 32))
for m in $models; do
  cfg=configs/fortunes_$m.yaml
  taskset -c 0 /usr/bin/time -f "RSS %M" build/dptrain train "$cfg" --set data.path="$tmp/quality.h5" \
    --set train.epochs=2 --set checkpoint.every_steps=0 --run-dir "$tmp/$m" >"$tmp/$m.log" 2>&1 &
  (cd "$ref" && taskset -c 1 /usr/bin/time -f "RSS %M" /usr/bin/python3 torch_charlm.py "$m" \
    "$tmp/quality.h5" "$steps" 1) >"$tmp/t$m.log" 2>&1 &
  wait
  d_tps=$(($(rate "$tmp/$m") * 64))
  t_tps=$(sed -n 's/.*tokens\/s=\([0-9]*\).*/\1/p' "$tmp/t$m.log")
  t_val=$(sed -n 's/.*val_loss=\([0-9.]*\).*/\1/p' "$tmp/t$m.log")
  echo "$m: dptrain $d_tps tokens/s, torch $t_tps: $(ratio "$d_tps" "$t_tps")x;" \
    "val loss after $steps steps: dptrain $(val_loss "$tmp/$m"), torch $t_val;" \
    "dptrain $(gf "$d_tps" "$(flops "$m")"), torch $(gf "$t_tps" "$(flops "$m")");" \
    "peak RSS: dptrain $(rss "$tmp/$m.log") MiB, torch $(rss "$tmp/t$m.log") MiB"
done

# Scaling at global batch 64, on windows for SCALE_STEPS steps over two epochs.
cut_train "$tmp/scale.h5" $((scale_steps / 2 * 64))
# run NP BATCH DIR [CORE]: NP ranks under mpirun, or with CORE one plain
# process pinned to that core (two separate mpiruns would both bind to core 0).
run() {
  local np=$1 batch=$2 dir=$3
  local args=(train "configs/fortunes_$m.yaml" --set data.path="$tmp/scale.h5" --set train.epochs=2
    --set train.batch_size="$batch" --set checkpoint.every_steps=0 --run-dir "$dir")
  if [ $# -ge 4 ]; then
    taskset -c "$4" build/dptrain "${args[@]}" >"$dir.log" 2>&1
  else
    mpirun -np "$np" build/dptrain "${args[@]}" >"$dir.log" 2>&1
  fi
}
for m in lstm transformer; do
  echo "$models" | grep -qw "$m" || continue
  run 1 64 "$tmp/s1-$m"
  run 2 64 "$tmp/s2-$m"
  run 1 32 "$tmp/a-$m" 0 &
  run 1 32 "$tmp/b-$m" 1 &
  wait
  one=$(($(rate "$tmp/s1-$m") * 64)) two=$(($(rate "$tmp/s2-$m") * 64))
  apart=$((($(rate "$tmp/a-$m") + $(rate "$tmp/b-$m")) * 64))
  echo "$m scaling at batch 64: 1 rank $one tokens/s, 2 ranks $two: $(ratio "$two" "$one")x;" \
    "two independent 1-rank runs at batch 32: $apart, $(ratio "$apart" "$one")x;" \
    "2 ranks reach $(ratio "$two" "$apart") of them"
done
