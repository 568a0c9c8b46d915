#!/usr/bin/env bash
# dptrain config --explain: prints the config reference from the schema tables
# as a plain process, without mpirun and without starting MPI (the unit test in
# tests/unit/test_config.c checks the content against the tables).
source "$(dirname "$0")/common.sh"

out=$TMP/explain.txt
timeout 30 "$DPTRAIN" config --explain >"$out" 2>"$TMP/explain.err"
check "config --explain exits 0" test $? -eq 0
check "it writes nothing to stderr" test ! -s "$TMP/explain.err"
check "it prints the column header" grep -q '^KEY  *TYPE  *DEFAULT  *RANGE$' "$out"
for key in data.path train.batch_size train.seed checkpoint.keep metrics loss optimizer.name \
  'optimizer.beta_1 (adam)' 'optimizer.momentum (sgd)' model.layers.N.conv2d.kernel_size \
  model.layers.N.dropout.rate; do
  check "it lists $key" grep -q "^$key  " "$out"
done
check "required keys say so" grep -q '^train.epochs  *integer  *required  *>= 0$' "$out"
check "defaults are printed" grep -q '^optimizer.learning_rate (sgd)  *number or mapping  *0.01  *> 0$' "$out"
check "the schedules' keys are listed" grep -q '^optimizer.learning_rate.decay_steps (cosine_decay)  *integer  *required  *>= 1$' "$out"
check "momentum has the parser's range" grep -q '^optimizer.momentum (rmsprop)  .* in \[0, 1)$' "$out"

# An MCA setting that breaks MPI start-up: a command that initializes MPI fails
# under it, config --explain does not notice it.
OMPI_MCA_pml=no_such_pml timeout 60 "$DPTRAIN" --version >"$TMP/control.log" 2>&1
check "control: a bad pml breaks MPI start-up" test $? -ne 0
OMPI_MCA_pml=no_such_pml timeout 30 "$DPTRAIN" config --explain >"$TMP/nompi.txt" 2>&1
check "config --explain does not start MPI" test $? -eq 0
check "... and prints the same" cmp -s "$out" "$TMP/nompi.txt"

timeout 30 "$DPTRAIN" config >"$TMP/bare.log" 2>&1
check "config without --explain is a usage error (2)" test $? -eq 2
check "... that names --explain" grep -q 'config takes --explain' "$TMP/bare.log"
# --help starts MPI, so it runs under mpirun like every other MPI command here.
run_np 1 "$TMP/help.log" --help
check "--help exits 0" test $? -eq 0
check "--help shows the command" grep -q 'dptrain config --explain' "$TMP/help.log"
finish
