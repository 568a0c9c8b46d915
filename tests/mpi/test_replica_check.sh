#!/usr/bin/env bash
# The replica check names the first rank whose parameter hash differs from
# rank 0's, on every rank, and finds nothing when all agree.
source "$(dirname "$0")/common.sh"

for np in 1 2 4; do
  for odd in -1 $((np - 1)) 0; do
    [ "$odd" -ge "$np" ] && continue
    timeout 60 mpirun --oversubscribe -np "$np" "$CHECK_MISMATCH" "$odd" >"$TMP/out" 2>&1
    want=$odd
    # A different value on rank 0 makes every other rank differ; rank 1 is named.
    [ "$odd" = 0 ] && want=$([ "$np" -gt 1 ] && echo 1 || echo -1)
    check "np $np, odd rank $odd: all ranks report $want" \
      test "$(grep -c "found $want\$" "$TMP/out")" -eq "$np"
  done
done

# In training, the check runs every check_every_steps and at the end.
run_np 2 "$TMP/t.log" train configs/seed.yaml --set train.epochs=2 --set train.check_every_steps=7 --run-dir "$TMP/t"
check "frequent replica checks pass on a healthy run" grep -q "replicas: 2 rank(s) agree" "$TMP/t.log"
finish
