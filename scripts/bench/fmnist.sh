#!/usr/bin/env bash
# Fashion-MNIST speed, dptrain against PyTorch side by side in one run (same
# model, batch and thread count; dptrain and torch both pinned to one OpenBLAS
# thread per process):
#   1 rank:  MLP at batch 128 and CNN at batch 64 against torch on one core;
#            the MLP's training GFLOP/s as a fraction of sgemm's on one thread
#   2 ranks: MLP and CNN at global batch 128 and 512 against dptrain's own
#            1-rank figure, against torch's best whole-machine setup (one
#            process, OpenBLAS on 2 threads) and torch DDP on 2 processes
#   apart:   two independent 1-rank runs at half the batch each, at the same
#            time: the same compute with nothing shared. Ranks on one node
#            beat it when they split the optimizer's work between them
# Every comparison is measured ROUNDS times, alternating the runs it compares,
# and the median of the per-round ratios is printed: this machine's speed
# drifts by 10-20% within minutes, so one pair of runs proves little.
# samples/s count training steps only (no evaluation or checkpoints), as the
# torch scripts do; peak RSS per process is printed next to torch's.
# Usage: scripts/bench/fmnist.sh [ROUNDS] [MLP_EPOCHS] [CNN_EPOCHS]
rounds=${1:-3}
mlp_epochs=${2:-2}
cnn_epochs=${3:-1}
source "$(dirname "$0")/common.sh"
[ -f datasets/fashion_mnist.h5 ] || scripts/make_fmnist.sh >/dev/null

# dptrain NP CONFIG BATCH EPOCHS -> "samples/s rss_mib"
dptrain() {
  local np=$1 cfg=$2 batch=$3 epochs=$4 dir=$tmp/d$RANDOM$RANDOM
  mpirun -np "$np" build/dptrain train "$cfg" --set train.batch_size="$batch" \
    --set train.epochs="$epochs" --set data.validation_split=0 --run-dir "$dir" >"$dir.log"
  echo "$(rate "$dir") $(sed -n 's/.*peak memory (RSS) of the largest rank \([0-9.]*\) MiB.*/\1/p' "$dir.log")"
}

# apart CONFIG BATCH EPOCHS -> summed samples/s of two 1-rank runs at BATCH/2
# running at once
apart() {
  local a=$tmp/c$RANDOM$RANDOM b=$tmp/c$RANDOM$RANDOM half=$(($2 / 2))
  for d in "$a" "$b"; do
    build/dptrain train "$1" --set train.batch_size="$half" --set train.epochs="$3" \
      --set data.validation_split=0 --run-dir "$d" >"$d.log" &
  done
  wait
  echo $(($(rate "$a") + $(rate "$b")))
}

# torch KIND BATCH EPOCHS THREADS -> "samples/s rss_mib"
torch_run() {
  (cd "$ref" && /usr/bin/time -f "RSS %M" /usr/bin/python3 torch_fmnist.py "$1" "$3" "$2" "$4") >"$tmp/t.log" 2>&1
  echo "$(tail -2 "$tmp/t.log" | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p') $(awk '/^RSS/ { printf "%.1f", $2 / 1024 }' "$tmp/t.log")"
}

# Per-round ratios, by name; summary NAME prints their median.
declare -A ratios
keep() { ratios[$1]="${ratios[$1]:-} $2"; }
summary() { printf "%s\n" ${ratios[$1]} | median; }

echo "sgemm 1024^3, 1 thread: $peak GFLOP/s (OpenBLAS kernels: $core, used by both)"
# Training FLOPs per sample of 784-512-256-10: forward 2*sum(in*out); backward
# the same twice (weight and input gradients) except the first layer's input.
mlp_flops=$(( 2 * (784*512 + 512*256 + 256*10) * 3 - 2 * 784*512 ))

for round in $(seq "$rounds"); do
  # The machine's speed drifts: each round's GFLOP/s fraction uses that round's sgemm.
  read -r peak _ < <("$tmp/sgemm" 1024)
  echo "--- round $round (sgemm $peak GFLOP/s)"
  read -r d1 drss < <(dptrain 1 configs/fmnist_mlp.yaml 128 "$mlp_epochs")
  read -r t1 trss < <(torch_run mlp 128 "$mlp_epochs" 1)
  keep mlp1 "$(ratio "$d1" "$t1")"
  keep gflops "$(awk -v s="$d1" -v f="$mlp_flops" -v p="$peak" 'BEGIN { printf "%.2f", s * f / 1e9 / p }')"
  echo "MLP b128 1 rank:  dptrain $d1/s (RSS ${drss} MiB)  torch $t1/s (RSS ${trss} MiB)  ratio $(ratio "$d1" "$t1")x" \
    " | dptrain $(awk -v s="$d1" -v f="$mlp_flops" 'BEGIN { printf "%.1f", s * f / 1e9 }') GFLOP/s"
  read -r c1 crss < <(dptrain 1 configs/fmnist_cnn.yaml 64 "$cnn_epochs")
  read -r tc1 tcrss < <(torch_run cnn 64 "$cnn_epochs" 1)
  keep cnn1 "$(ratio "$c1" "$tc1")"
  echo "CNN b64 1 rank:   dptrain $c1/s (RSS ${crss} MiB)  torch $tc1/s (RSS ${tcrss} MiB)  ratio $(ratio "$c1" "$tc1")x"

  read -r tbest _ < <(torch_run mlp 128 "$mlp_epochs" 2)
  tddp=$(cd "$ref" && /usr/bin/python3 torch_ddp.py 2 "$mlp_epochs" 128 2>/dev/null | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p')
  echo "torch MLP b128: best whole machine (2 BLAS threads) $tbest/s, DDP 2 processes $tddp/s"
  for batch in 128 512; do
    read -r m1 _ < <(dptrain 1 configs/fmnist_mlp.yaml "$batch" "$mlp_epochs")
    read -r m2 mrss < <(dptrain 2 configs/fmnist_mlp.yaml "$batch" "$mlp_epochs")
    mc=$(apart configs/fmnist_mlp.yaml "$batch" "$mlp_epochs")
    keep "mlp2_$batch" "$(ratio "$m2" "$m1")"
    keep "mlpc_$batch" "$(ratio "$mc" "$m1")"
    [ "$batch" = 128 ] && keep mlpbest "$(ratio "$m2" "$tbest")"
    echo "MLP b$batch 2 ranks: $m2/s = $(ratio "$m2" "$m1")x dptrain 1 rank ($m1/s), $(ratio "$m2" "$tbest")x torch best" \
      "(RSS ${mrss} MiB per rank); apart $mc/s = $(ratio "$mc" "$m1")x"
    read -r k1 _ < <(dptrain 1 configs/fmnist_cnn.yaml "$batch" "$cnn_epochs")
    read -r k2 krss < <(dptrain 2 configs/fmnist_cnn.yaml "$batch" "$cnn_epochs")
    keep "cnn2_$batch" "$(ratio "$k2" "$k1")"
    echo "CNN b$batch 2 ranks: $k2/s = $(ratio "$k2" "$k1")x dptrain 1 rank ($k1/s) (RSS ${krss} MiB per rank)"
  done
done

echo "--- medians over $rounds round(s) of the per-round ratios"
echo "1 rank against torch:  MLP b128 $(summary mlp1)x (target 1.1), CNN b64 $(summary cnn1)x (target 2)"
echo "MLP b128 1 rank: $(summary gflops) of sgemm's GFLOP/s"
for batch in 128 512; do
  echo "2 ranks against 1, b$batch: MLP $(summary "mlp2_$batch")x (apart $(summary "mlpc_$batch")x)," \
    "CNN $(summary "cnn2_$batch")x (target 1.8)"
done
echo "MLP b128 2 ranks against torch's best whole-machine setup: $(summary mlpbest)x (target 1.5)"
