#!/usr/bin/env bash
# Ranks on one node share one copy of the parameters and optimizer state and
# sum their gradients through shared memory. The float sum on 2 ranks is the
# allreduce's one addition per element, and the exact sum is exact either way,
# so both paths give the same bits as the MPI allreduce; 4 ranks train as well;
# a stop and resume may switch paths; a NaN stops every rank with one error
# and no hang; no room for the segment means a warning and the MPI path.
source "$(dirname "$0")/common.sh"

args=(train configs/seed.yaml --set train.epochs=3)

run_np 2 "$TMP/sh.log" "${args[@]}" --run-dir "$TMP/sh"
check "np 2 with shared memory exits 0" test $? -eq 0
check "np 2 takes the shared-memory path" \
  grep -q "gradients summed (fast) through shared memory: 2 ranks on one node" "$TMP/sh.log"
run_np 2 "$TMP/mpi.log" "${args[@]}" --set train.shared_memory=false --run-dir "$TMP/mpi"
check "shared_memory=false takes the MPI allreduce" \
  grep -q "gradients summed (fast) by MPI allreduce" "$TMP/mpi.log"
same_runs "shared memory and MPI" sh mpi
# The comparison can fail: another seed differs.
run_np 2 "$TMP/s7.log" "${args[@]}" --set train.seed=7 --run-dir "$TMP/s7"
check "another seed differs" differ_ckpt "$TMP/sh" "$TMP/s7" /model

# No room for the segment where Open MPI would put it (its MCA variable
# osc_sm_backing_directory points there): one warning from rank 0, and the run
# goes on over MPI, with the same bits, instead of aborting inside MPI.
no_room() { # NAME DIR REASON
  OMPI_MCA_osc_sm_backing_directory=$2 run_np 2 "$TMP/$1.log" "${args[@]}" --run-dir "$TMP/$1"
  check "$1: exits 0" test $? -eq 0
  check "$1: one warning line, from rank 0: $3" \
    test "$(grep -c "^dptrain: warning: shared memory: $3; gradients go through MPI allreduce$" "$TMP/$1.log")" -eq 1
  check "$1: takes the MPI allreduce" grep -q "gradients summed (fast) by MPI allreduce" "$TMP/$1.log"
  check "$1: bit-identical to shared_memory=false" same_ckpt "$TMP/$1" "$TMP/mpi" /model
}
no_room "no backing directory" "$TMP/none" "cannot create the segment's file in $TMP/none (No such file or directory)"
# /proc takes no files and has no free blocks; root may write to it as far as
# access(2) can tell, and then its free space says no.
if [ -w /proc ]; then why="/proc has 0.0 MiB free and the segment needs [0-9.]* MiB"
else why="cannot create the segment's file in /proc (Permission denied)"; fi
no_room "a full backing filesystem" /proc "$why"

# The exact sum over more than two shards: through shared memory, the same
# bits as the MPI allreduce's and as one rank's.
ex=("${args[@]}" --set data.shards=4)
run_np 2 "$TMP/ex.log" "${ex[@]}" --run-dir "$TMP/ex"
check "exact, 4 shards on np 2 takes the shared-memory path" \
  grep -q "gradients summed (exact) through shared memory: 2 ranks" "$TMP/ex.log"
run_np 2 "$TMP/exm.log" "${ex[@]}" --set train.shared_memory=false --run-dir "$TMP/exm"
check "exact, shared_memory=false takes the MPI allreduce" \
  grep -q "gradients summed (exact) by MPI allreduce" "$TMP/exm.log"
same_runs "exact: shared memory and MPI" ex exm
run_np 4 "$TMP/ex4.log" "${args[@]}" --set data.shards=8 --run-dir "$TMP/ex4"
run_np 1 "$TMP/ex1.log" "${args[@]}" --set data.shards=8 --run-dir "$TMP/ex1"
same_runs "exact, 8 shards: np 4 shared and np 1" ex4 ex1

# 4 ranks, each updating a quarter of the one parameter copy.
run_np 4 "$TMP/f4.log" train configs/seed.yaml --set train.reduction=fast --run-dir "$TMP/f4"
check "np 4 fast exits 0" test $? -eq 0
check "np 4 takes the shared-memory path" grep -q "shared memory: 4 ranks" "$TMP/f4.log"
check "np 4 replicas agree" grep -q "replicas: 4 rank(s) agree" "$TMP/f4.log"
acc=$(json_field "$TMP/f4/metrics.jsonl" 51 test_accuracy)
check "np 4 shared test accuracy $acc >= 0.80" fgt "$acc" 0.7999

# Stopped on the shared path and resumed on MPI: the same bits as never stopping.
run_np 2 "$TMP/st.log" "${args[@]}" --run-dir "$TMP/st" --stop-after 100
check "stop on the shared path exits 3" test $? -eq 3
run_np 2 "$TMP/re.log" "${args[@]}" --set train.shared_memory=false --run-dir "$TMP/st" --resume
check "resumed on MPI: bit-identical to the whole run" \
  same_ckpt "$TMP/sh" "$TMP/st" /model

# A step that blows up: every rank stops with one error line from rank 0, in
# either sum.
for shards in 2 4; do
  RUN_TIMEOUT=30 run_np 2 "$TMP/nan$shards.log" train configs/seed.yaml --set optimizer.name=sgd \
    --set optimizer.learning_rate=1e30 --set data.shards=$shards --run-dir "$TMP/nan$shards"
  check "shards $shards: a NaN exits 1" test $? -eq 1
  check "shards $shards: one error line for the NaN" \
    test "$(grep -c '^dptrain: error: training: loss or gradient is NaN or Inf' "$TMP/nan$shards.log")" -eq 1
done
finish
