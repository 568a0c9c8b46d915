#!/usr/bin/env bash
# Every bad input gives, at np 2: a non-zero exit within 20 s, exactly one
# `dptrain: error: <where>: <what>` line naming the problem, no core dump, and
# the run directory's existing checkpoints byte-identical afterwards.
source "$(dirname "$0")/common.sh"

"$MAKE_BAD_DATA" "$TMP" || { echo "make_bad_data failed"; exit 1; }
cfg=configs/seed.yaml
run=$TMP/run
# A run directory holding good checkpoints, which no bad input may touch.
run_np 2 "$TMP/setup.log" train "$cfg" --set train.epochs=2 --run-dir "$run"
check "setup run exits 0" test $? -eq 0
sums() { md5sum "$run"/ckpt-*.h5; }
before=$(sums)
ulimit -c unlimited 2>/dev/null || true

# bad NAME EXPECTED-SUBSTRINGS ARGS...: one table row (substrings TAB-separated).
bad() {
  local name=$1 expect=$2
  shift 2
  local log=$TMP/case.log start=$SECONDS
  (cd "$TMP" && RUN_TIMEOUT=20 run_np 2 "$log" "$@")
  local rc=$? took=$((SECONDS - start))
  local lines
  lines=$(grep -c '^dptrain: error: ' "$log")
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -lt 128 ] && [ "$lines" -eq 1 ] &&
     has_all "$log" "$expect" && [ "$took" -lt 20 ] &&
     [ "$(sums)" = "$before" ] && ! ls "$TMP"/core* >/dev/null 2>&1; then
    check "$name" true; grep "^dptrain: error: " "$log"
  else
    echo "--- $name: rc=$rc, $lines error line(s), ${took}s; output:"
    cat "$log"
    check "$name" false
  fi
}

# Config files with one defect each, written next to the data.
yaml() { printf '%s\n' "$2" >"$TMP/$1.yaml"; }
base=$(sed "s|datasets/seed_classification.h5|$SRC/datasets/seed_classification.h5|" "$cfg")
yaml notyaml 'data: [unclosed'
yaml empty ''
yaml toplist '- a
- b'
yaml typo "$(echo "$base" | sed 's/^train:/trian:/')"
yaml layerkey "$(echo "$base" | sed 's/units: 64/unit: 64/')"
yaml layertype "$(echo "$base" | sed 's/- dense: {units: 32/- dense3d: {units: 32/')"
yaml act "$(echo "$base" | sed 's/activation: relu}/activation: relux}/' )"
yaml noloss "$(echo "$base" | grep -v '^loss:')"
yaml dupkey "$base
loss: mse"
B="$TMP/base.yaml"
echo "$base" >"$B"
R=(--run-dir "$run")

bad "config is not YAML" "notyaml.yaml:" train notyaml.yaml "${R[@]}"
bad "config is empty" "empty" train empty.yaml "${R[@]}"
bad "config top level is a list" "toplist.yaml:1:1" train toplist.yaml "${R[@]}"
bad "unknown top-level key suggests" "did you mean 'train'" train typo.yaml "${R[@]}"
bad "unknown layer key suggests" "did you mean 'units'" train layerkey.yaml "${R[@]}"
bad "unknown layer type" "dense3d" train layertype.yaml "${R[@]}"
bad "unknown activation" "relux" train act.yaml "${R[@]}"
bad "missing required key" "loss" train noloss.yaml "${R[@]}"
bad "duplicate key" "duplicate" train dupkey.yaml "${R[@]}"
bad "missing config file" "nosuch.yaml" train nosuch.yaml "${R[@]}"
bad "unknown loss" "hinge" train "$B" --set loss=hinge "${R[@]}"
bad "unknown optimizer" "unknown optimizer 'adamax'" train "$B" --set optimizer.name=adamax "${R[@]}"
bad "string for units" "expected an integer" train "$B" --set model.layers.0.dense.units=abc "${R[@]}"
bad "zero units" "units" train "$B" --set model.layers.0.dense.units=0 "${R[@]}"
bad "batch_size 0" "batch_size" train "$B" --set train.batch_size=0 "${R[@]}"
bad "negative learning rate" "learning_rate" train "$B" --set optimizer.learning_rate=-0.1 "${R[@]}"
bad "negative epochs" "epochs" train "$B" --set train.epochs=-1 "${R[@]}"
bad "validation_split 1" "validation_split" train "$B" --set data.validation_split=1.0 "${R[@]}"
bad "sparse CE on a sigmoid unit" "softmax" train "$B" --set loss=sparse_categorical_crossentropy "${R[@]}"
bad "input shape does not match data" "model.input is [21]" train "$B" --set "model.input=[21]" "${R[@]}"
bad "--set of an unknown key" "--set train.epoks" train "$B" --set train.epoks=3 "${R[@]}"
bad "--set without a value" "--set" train "$B" --set train.epochs "${R[@]}"
bad "missing data file" "no such file" train "$B" --set data.path=nosuch.h5 "${R[@]}"
# The defective data files: one table (tests/common/bad_h5.c) shared with the
# unit tests and the fuzz corpus; make_bad_data --list gives each file's
# expected error. huge_rank1 runs below, with its own settings.
mapfile -t cases < <("$MAKE_BAD_DATA" --list)
check "the table lists its cases" test "${#cases[@]}" -gt 20
huge=
for line in "${cases[@]}"; do
  IFS=$'\t' read -r name kind where what about <<<"$line"
  [ "$where" = - ] && where=
  [ "$kind" = none ] && continue
  if [ "$name" = huge_rank1 ]; then huge=$what; continue; fi
  bad "$about ($name.h5)" "$where"$'\t'"$what" train "$B" --set data.path="$name.h5" "${R[@]}"
done
# Finite data that overflows to NaN on rank 1 alone, in training: every sum
# and path must carry that one rank's NaN to all (MPI_MAX alone can drop it).
check "the table has huge_rank1" test -n "$huge"
for shards in 2 4; do
  for sm in true false; do
    bad "a NaN from rank 1 alone, $shards shards, shared_memory $sm" "$huge" \
      train "$B" --set data.path=huge_rank1.h5 --set data.standardize=false \
      --set data.shards=$shards --set train.shared_memory=$sm "${R[@]}"
  done
done
bad "shards not a multiple of ranks" "data.shards 3" train "$B" --set data.shards=3 "${R[@]}"
bad "batch smaller than shards" "smaller than data.shards" train "$B" --set data.shards=4 --set train.batch_size=2 "${R[@]}"
bad "resume a different model" "different model" train "$B" --set model.layers.0.dense.units=16 --resume "${R[@]}"
bad "resume with another shard count" "resume with --set data.shards=2" train "$B" --set data.shards=4 --resume "${R[@]}"
bad "resume with another seed" "train.seed 42" train "$B" --set train.seed=5 --resume "${R[@]}"
bad "resume with another optimizer" "optimizer" train "$B" --set optimizer.name=sgd --resume "${R[@]}"
touch "$TMP/afile"
bad "run directory not writable" "afile" train "$B" --run-dir "$TMP/afile/sub"
bad "unknown command line option" "--frobnicate" train "$B" --frobnicate "${R[@]}"
finish
