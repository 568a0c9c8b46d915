#!/bin/sh
# rank_rss.sh PREFIX CMD... - what mpirun starts on each rank for the
# benchmarks that report per-rank memory: runs CMD under /usr/bin/time, whose
# peak RSS in KiB ends up as the last line of PREFIX.RANK. Exit status 3 (a
# --stop-after stop, which writes a checkpoint and is expected) becomes 0, so
# that mpirun does not abort the other ranks before they have written theirs.
prefix=$1
shift
/usr/bin/time -f %M -o "$prefix.${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}" "$@"
rc=$?
[ "$rc" = 3 ] && rc=0
exit "$rc"
