#!/usr/bin/env bash
# sweep.sh - submits a hyper-parameter sweep: counts the combinations of a grid
# file and submits scripts/slurm/sweep.sbatch as a job array with one task each.
#
#   scripts/slurm/sweep.sh [--dry-run] [--parallel=K] [SBATCH OPTIONS...] GRID.yaml [CONFIG] [DPTRAIN OPTIONS...]
#   scripts/slurm/sweep.sh --time=02:00:00 sweeps/lr_bs.yaml configs/fmnist_mlp.yaml --set train.epochs=20
#
# Run it from the repository. SBATCH OPTIONS come before the grid, with their
# values in the same word (--time=02:00:00, -N2, --exclusive); the job
# name defaults to the grid's file name without its extension, so the runs go
# to runs/<grid name>/<i>-<description> and the logs to logs/<grid name>-<array
# job id>_<i>.log. --parallel=K runs at most K tasks at once (--array=0-N-1%K).
# --dry-run prints the combinations and the sbatch command and submits nothing.
# A bad grid or a missing config is one error line before anything is submitted.
set -euo pipefail

fail() {
  echo "sweep.sh: error: $*" >&2
  exit 1
}
[ -f scripts/slurm/sweep.sbatch ] || fail "run it from the repository (no scripts/slurm/sweep.sbatch here)"
dry=0
throttle=
named=0
sbatch_opts=()
while [ $# -gt 0 ]; do
  case $1 in
  --dry-run) dry=1 ;;
  --parallel=*)
    throttle=${1#--parallel=}
    [[ $throttle =~ ^[1-9][0-9]*$ ]] || fail "--parallel: expected a positive number, got '$throttle'"
    ;;
  --job-name=* | -J?*)
    named=1
    sbatch_opts+=("$1")
    ;;
  -?) fail "sbatch option '$1': write its value in the same word (-N2, --nodes=2)" ;;
  -*) sbatch_opts+=("$1") ;;
  *) break ;;
  esac
  shift
done
[ $# -ge 1 ] || fail "usage: scripts/slurm/sweep.sh [--dry-run] [--parallel=K] [SBATCH OPTIONS...] GRID.yaml [CONFIG] [DPTRAIN OPTIONS...]"
grid=$1
config=
[ $# -ge 2 ] && [ "${2#-}" = "$2" ] && config=$2

n=$(/usr/bin/python3 scripts/sweep_grid.py "$grid" --count) || exit 1
if [ -z "$config" ]; then
  config=$(/usr/bin/python3 scripts/sweep_grid.py "$grid" --task 0 | sed -n 's/^config //p')
  [ -n "$config" ] || fail "no config: give CONFIG after $grid or a config: line in it"
fi
[ -f "$config" ] || fail "config $config: no such file"
if [ "$named" = 0 ]; then
  name=$(basename "$grid")
  sbatch_opts=("--job-name=${name%.*}" "${sbatch_opts[@]}")
fi

echo "sweep.sh: $n combinations of $grid on $config:"
/usr/bin/python3 scripts/sweep_grid.py "$grid" --list | sed 's/^/  /'
cmd=(sbatch "--array=0-$((n - 1))${throttle:+%$throttle}" "${sbatch_opts[@]}" scripts/slurm/sweep.sbatch "$@")
if [ "$dry" = 1 ]; then
  echo "sweep.sh: would run: ${cmd[*]}"
  exit 0
fi
# Slurm does not create the directory of --output; a job whose log cannot be
# opened fails at once.
mkdir -p logs
"${cmd[@]}"
