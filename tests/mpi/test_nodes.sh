#!/usr/bin/env bash
# Ranks on several nodes: each node shares one copy of the parameters, the
# nodes allreduce their sums (docs/DESIGN.md §5). Open MPI is made to see two nodes on
# this one machine: a hostfile names nodeA and nodeB, and a stand-in for ssh
# starts each node's daemon here. Ranks on different "nodes" then talk over
# TCP and share no memory, as on a cluster.
#  - the exact sum over 2 nodes x 2 ranks: the same bits as one rank;
#  - the float sum trains, and the nodes' copies stay equal;
#  - a stop on 2 nodes resumes on one, and the other way round, bit for bit;
#  - uneven nodes, or one rank per node: the MPI allreduce, the same bits;
#  - a NaN on the second node stops every rank with one error line;
#  - no room for the segment on the second node: one warning, the allreduce.
source "$(dirname "$0")/common.sh"

"$MAKE_BAD_DATA" "$TMP" || { echo "make_bad_data failed"; exit 1; }
cat >"$TMP/ssh" <<'EOF'
#!/bin/sh
# Stands in for ssh: skips the options, takes the host, runs the command here,
# with nodeB's own temporary directory (Open MPI's session files).
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
host=$1
shift
if [ "$host" = nodeB ]; then
  export TMPDIR="$(dirname "$0")/nodeB"
  [ -n "${NODEB_BACKING:-}" ] && export OMPI_MCA_osc_sm_backing_directory=$NODEB_BACKING
fi
exec sh -c "$*"
EOF
chmod +x "$TMP/ssh"
printf 'nodeA slots=2\nnodeB slots=2\n' >"$TMP/2x2"
printf 'nodeA slots=1\nnodeB slots=2\n' >"$TMP/1+2"
printf 'nodeA slots=1\nnodeB slots=1\n' >"$TMP/1x2"
# What the two "nodes" would share by accident on one machine must be kept
# apart: vader (the shared-memory transport), the hwloc topology kept in shared
# memory (nodeB's daemon crashed on it in about 1 launch in 3), PMIx's
# shared-memory store, and Open MPI's session directory under TMPDIR (named
# after the host, so the daemons removed each other's), which also keeps
# these jobs' files apart from concurrent tests'.
mkdir -p "$TMP/nodeA" "$TMP/nodeB"
export OMPI_MCA_plm_rsh_agent=$TMP/ssh OMPI_MCA_btl=tcp,self OMPI_MCA_rtc_hwloc_vmhole=none
export PMIX_MCA_gds=hash TMPDIR=$TMP/nodeA
# run_nodes HOSTFILE NP LOG ARGS...: run_np over the nodes HOSTFILE names.
# A status dptrain never gives (a crash, a failed launch) shows the log.
run_nodes() {
  local hosts=$1 rc
  shift
  OMPI_MCA_orte_default_hostfile=$TMP/$hosts run_np "$@"
  rc=$?
  if [ "$rc" -gt 4 ]; then
    echo "--- status $rc; the start of $2:"
    head -40 "$2"
  fi
  return "$rc"
}
E=(train configs/seed.yaml --set train.epochs=2 --set data.shards=4)
two="through shared memory on each of 2 nodes (2 ranks each"

run_nodes 2x2 4 "$TMP/ex.log" "${E[@]}" --run-dir "$TMP/ex"
check "exact, 2 nodes x 2 ranks: exits 0" test $? -eq 0
check "exact, 2 nodes x 2 ranks: shared memory on each node" \
  grep -q "gradients summed (exact) $two" "$TMP/ex.log"
run_np 1 "$TMP/one.log" "${E[@]}" --run-dir "$TMP/one"
same_runs "exact: 2 nodes and 1 rank" ex one
run_np 1 "$TMP/s7.log" "${E[@]}" --set train.seed=7 --run-dir "$TMP/s7"
check "the comparison can fail: another seed differs" differ_ckpt "$TMP/ex" "$TMP/s7" /model

# The float sum: each node adds its ranks in order, then the nodes allreduce.
# The replica check then compares the two nodes' copies every 20 steps.
run_nodes 2x2 4 "$TMP/fast.log" "${E[@]}" --set train.reduction=fast \
  --set train.check_every_steps=20 --run-dir "$TMP/fast"
check "fast, 2 nodes x 2 ranks: exits 0" test $? -eq 0
check "fast: shared memory on each node" grep -q "gradients summed (fast) $two" "$TMP/fast.log"
check "fast: the nodes' copies agree" grep -q "replicas: 4 rank(s) agree" "$TMP/fast.log"
first=$(json_field "$TMP/fast/metrics.jsonl" 1 loss)
last=$(json_field "$TMP/fast/metrics.jsonl" 2 loss)
check "fast: the loss falls ($first -> $last)" fgt "$first" "$last"

# Stopped on 2 nodes and resumed on one (4 ranks sharing one copy), and the
# other way round: the same bits as the whole run on one rank.
run_nodes 2x2 4 "$TMP/st.log" "${E[@]}" --run-dir "$TMP/st" --stop-after 70
check "stop on 2 nodes exits 3" test $? -eq 3
run_np 4 "$TMP/re.log" "${E[@]}" --run-dir "$TMP/st" --resume
check "resumed on one node: bit-identical to 1 rank" same_ckpt "$TMP/st" "$TMP/one" /model
run_np 2 "$TMP/st2.log" "${E[@]}" --run-dir "$TMP/st2" --stop-after 30
run_nodes 2x2 4 "$TMP/re2.log" "${E[@]}" --run-dir "$TMP/st2" --resume
check "stopped on one node, resumed on 2: exits 0" test $? -eq 0
check "resumed on 2 nodes: bit-identical to 1 rank" same_ckpt "$TMP/st2" "$TMP/one" /model

# Clipping needs the norm of the whole gradient: each node's ranks store their
# finished ranges and every rank computes the norms from the whole, in a fixed
# order. Exact: the same bits as one rank, per tensor and global, with adamw
# and a schedule. Float: the nodes' copies stay equal.
OPT='{name: adamw, global_clipnorm: 0.05, learning_rate: {schedule: cosine_decay, initial_learning_rate: 0.0001, warmup_target: 0.003, warmup_steps: 30, decay_steps: 100}}'
for clip in global tensor; do
  K=("${E[@]}" --set "optimizer=$OPT")
  [ $clip = tensor ] && K+=(--set optimizer.global_clipnorm=null --set optimizer.clipnorm=0.02)
  run_nodes 2x2 4 "$TMP/clip$clip.log" "${K[@]}" --run-dir "$TMP/clip$clip"
  check "clip $clip, 2 nodes x 2 ranks: exits 0" test $? -eq 0
  run_np 1 "$TMP/clip${clip}1.log" "${K[@]}" --run-dir "$TMP/clip${clip}1"
  same_runs "clip $clip: 2 nodes and 1 rank" clip$clip clip${clip}1
done
run_nodes 2x2 4 "$TMP/clipfast.log" "${E[@]}" --set "optimizer=$OPT" --set train.reduction=fast \
  --set train.check_every_steps=20 --run-dir "$TMP/clipfast"
check "clip, fast, 2 nodes x 2 ranks: exits 0" test $? -eq 0
check "clip, fast: the nodes' copies agree" grep -q "replicas: 4 rank(s) agree" "$TMP/clipfast.log"

# Uneven nodes cannot pair their ranges, and one rank per node has nothing to
# share: both take the MPI allreduce (overlapped with backward).
run_nodes 1+2 3 "$TMP/uneven.log" "${E[@]}" --set data.shards=3 --run-dir "$TMP/uneven"
check "1 + 2 ranks: exits 0" test $? -eq 0
check "1 + 2 ranks: the MPI allreduce" grep -q "gradients summed (exact) by MPI allreduce" "$TMP/uneven.log"
run_np 1 "$TMP/one3.log" "${E[@]}" --set data.shards=3 --run-dir "$TMP/one3"
check "1 + 2 ranks: bit-identical to 1 rank" same_ckpt "$TMP/uneven" "$TMP/one3" /model
run_nodes 1x2 2 "$TMP/single.log" "${E[@]}" --run-dir "$TMP/single"
check "1 rank per node: exits 0" test $? -eq 0
check "1 rank per node: the MPI allreduce" grep -q "gradients summed (exact) by MPI allreduce" "$TMP/single.log"
check "1 rank per node: bit-identical to 1 rank" same_ckpt "$TMP/single" "$TMP/one" /model

# Finite data that overflows to NaN in the last shard, read by rank 3 on nodeB.
for mode in exact fast; do
  RUN_TIMEOUT=60 run_nodes 2x2 4 "$TMP/nan.log" train configs/seed.yaml \
    --set data.path="$TMP/huge_rank1.h5" --set data.standardize=false --set data.shards=4 \
    --set train.reduction=$mode --run-dir "$TMP/nan$mode"
  check "$mode: a NaN on the second node exits 1" test $? -eq 1
  check "$mode: one error line for it" \
    test "$(grep -c '^dptrain: error: training: loss or gradient is NaN or Inf' "$TMP/nan.log")" -eq 1
done

# No room on nodeB only: rank 0 names the rank that found it.
NODEB_BACKING=/proc run_nodes 2x2 4 "$TMP/room.log" "${E[@]}" --run-dir "$TMP/room"
check "no room on nodeB: exits 0" test $? -eq 0
check "no room on nodeB: one warning, naming rank 2" \
  test "$(grep -c '^dptrain: warning: shared memory: on rank 2: .*/proc.*; gradients go through MPI allreduce$' "$TMP/room.log")" -eq 1
check "no room on nodeB: the MPI allreduce, bit-identical to 1 rank" \
  same_ckpt "$TMP/room" "$TMP/one" /model
finish
