#!/usr/bin/env bash
# Sequence models train data-parallel like the MLP and the CNN: small byte-level
# language models (LSTM, GRU, SimpleRNN, transformer) learn generated text and
# end with the same bits on 1, 2 and 4 ranks, across a mid-epoch resume on
# another rank count and after SIGUSR1; a SimpleRNN classifies and a GRU
# regresses the running sum of a noisy sequence; generate continues text
# deterministically.
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/background.sh"

mk() { /usr/bin/python3 "$SRC/tests/mpi/make_sequences.py" "$@"; }
mk text "$TMP/text.h5" 384 16 && mk sum "$TMP/sum.h5" 2000 24 || { echo "cannot make data"; exit 1; }

# lm NAME LAYERS...: a language model config over the text, one layer per argument.
lm() {
  local name=$1
  shift
  {
    echo "data: {path: $TMP/text.h5, shards: 4}"
    echo "model:"
    echo "  input: [16]"
    echo "  layers:"
    echo "    - embedding: {input_dim: 256, output_dim: 16}"
    for l in "$@"; do echo "    - $l"; done
    echo "    - dense: {units: 256, activation: softmax}"
    echo "loss: sparse_categorical_crossentropy"
    echo "optimizer: {name: adam, learning_rate: 0.01}"
    echo "metrics: [accuracy]"
    echo "train: {epochs: 3, batch_size: 32, seed: 5}"
    echo "checkpoint: {keep: 10}"
  } >"$TMP/$name.yaml"
}
lm lstm "lstm: {units: 32, return_sequences: true}"
lm gru "gru: {units: 24, return_sequences: true}"
lm rnn "simple_rnn: {units: 24, return_sequences: true}"
lm transformer "positional_embedding: {max_length: 16}" \
  "transformer_block: {num_heads: 2, ff_dim: 32}" "transformer_block: {num_heads: 2, ff_dim: 32}" \
  "layer_norm: {}"

# The loss after the last epoch is well below a uniform guess over bytes (ln 256 = 5.5).
learns() { fgt 2.5 "$(json_field "$1/metrics.jsonl" 3 loss)"; }

for m in lstm transformer; do
  for np in 1 2 4; do
    run_np "$np" "$TMP/$m$np.log" train "$TMP/$m.yaml" --run-dir "$TMP/$m$np"
    check "$m np $np exits 0" test $? -eq 0
  done
  check "$m learns the text" learns "$TMP/${m}1"
  same_runs "$m np 1 and np 2" "${m}1" "${m}2"
  same_runs "$m np 1 and np 4" "${m}1" "${m}4"
  check "$m val loss reported" grep -q '"val_loss": [0-9]' "$TMP/${m}1/metrics.jsonl"
done
for m in gru rnn; do
  for np in 1 2; do
    run_np "$np" "$TMP/$m$np.log" train "$TMP/$m.yaml" --run-dir "$TMP/$m$np"
    check "$m np $np exits 0" test $? -eq 0
  done
  check "$m learns the text" learns "$TMP/${m}1"
  same_runs "$m np 1 and np 2" "${m}1" "${m}2"
done

# Stopped mid-epoch 2 on 2 ranks, resumed on 4 and on 1: the uninterrupted bits.
for m in lstm transformer; do
  run_np 2 "$TMP/$m-stop.log" train "$TMP/$m.yaml" --run-dir "$TMP/$m-r" --stop-after 17
  check "$m stops after 17 steps (exit 3)" test $? -eq 3
  cp -r "$TMP/$m-r" "$TMP/$m-r1"
  run_np 4 "$TMP/$m-r.log" train "$TMP/$m.yaml" --run-dir "$TMP/$m-r" --resume
  check "$m resumes on 4 ranks" test $? -eq 0
  check "$m resumed on 4: bit-identical" same_ckpt "$TMP/${m}1" "$TMP/$m-r" /model
  run_np 1 "$TMP/$m-r1.log" train "$TMP/$m.yaml" --run-dir "$TMP/$m-r1" --resume
  check "$m resumed on 1: bit-identical" same_ckpt "$TMP/${m}1" "$TMP/$m-r1" /model
done

# SIGUSR1 while both ranks are held after step 5 (DPTRAIN_TEST_HOLD): they stop
# after step 6 with a checkpoint, and --resume ends with the uninterrupted bits.
DPTRAIN_TEST_HOLD=step:5 start_np 2 "$TMP/sig.log" train "$TMP/lstm.yaml" --run-dir "$TMP/sig"
wait_held step 0 1
check "lstm: both ranks held after step 5" test $? -eq 0
kill -USR1 "$(pgrep -P "$BG")"
wait_recorded step 0 1
check "lstm: the held ranks record SIGUSR1" test $? -eq 0
release step 0 1
wait "$BG"
check "lstm: SIGUSR1 stops the run with status 4" test $? -eq 4
check "lstm: a checkpoint at step 6" test -f "$TMP/sig/$(ckpt_name 6)"
run_np 2 "$TMP/sig-r.log" train "$TMP/lstm.yaml" --run-dir "$TMP/sig" --resume
check "lstm: resumed after the signal: bit-identical" same_ckpt "$TMP/lstm1" "$TMP/sig" /model

# generate, from an LSTM trained long enough to spell the corpus's words (its
# config overrides come back from the checkpoint): the same seed gives the same
# text, and greedy continues with words of the corpus.
run_np 1 "$TMP/gen.log" train "$TMP/lstm.yaml" --set train.epochs=60 --run-dir "$TMP/gen"
check "generate's model trains" test $? -eq 0
gen() { timeout 60 "$DPTRAIN" generate "$TMP/gen" --prompt "the cat " "$@" 2>"$TMP/gen.err"; }
a=$(gen --length 40 --seed 1) && b=$(gen --length 40 --seed 1) && c=$(gen --length 40 --seed 2)
check "generate runs without mpirun" test -n "$a"
check "generate: same seed, same text" test "$a" = "$b"
check "generate: another seed, other text" test "$a" != "$c"
check "generate starts with the prompt" test "${a:0:8}" = "the cat "
greedy=$(gen --length 40 --temperature 0)
# Every whole word after the prompt is one of the corpus's, and there are some.
all=$(echo "${greedy:8}" | tr -s ' ' '\n' | sed '$d' | grep -c .)
known=$(echo "${greedy:8}" | tr -s ' ' '\n' | sed '$d' |
  grep -c -x -E 'the|cat|sat|on|mat|a|dog|ran|to|its|bed|and|slept|all|day|long')
check "greedy text is the corpus's words ($known of $all: '$greedy')" test "$known" -eq "$all" -a "$all" -ge 4
check "top-k 1 is greedy" test "$(gen --length 40 --top-k 1 --seed 9)" = "$greedy"
timeout 60 "$DPTRAIN" generate "$TMP/transformer1" --prompt "the dog " --length 30 >"$TMP/t.out"
check "generate from the transformer: prompt, 30 bytes and a newline" test "$(wc -c <"$TMP/t.out")" -eq 39
timeout 60 "$DPTRAIN" generate "$TMP/gru1" --prompt "" >/dev/null 2>"$TMP/gen.err"
check "empty prompt: one error line" test "$(grep -c 'dptrain: error:' "$TMP/gen.err")" -eq 1

# Sequence classification (SimpleRNN; test_lstm.sh has the LSTM's) and
# regression (GRU) over float [N, T, 1] input, ending with the last state.
cat >"$TMP/sum.yaml" <<YAML
data: {path: $TMP/sum.h5, standardize: false, validation_split: 0.1}
model:
  input: [24, 1]
  layers:
    - simple_rnn: {units: 16}
    - dense: {units: 2, activation: softmax}
loss: sparse_categorical_crossentropy
optimizer: {name: adam, learning_rate: 0.01}
metrics: [accuracy]
train: {epochs: 8, batch_size: 32, seed: 2}
YAML
run_np 2 "$TMP/sum.log" train "$TMP/sum.yaml" --run-dir "$TMP/sum"
check "running-sum sign: exits 0" test $? -eq 0
acc=$(grep -o '"test_accuracy": [0-9][0-9.]*' "$TMP/sum/metrics.jsonl" | sed 's/.*: //')
check "running-sum sign: test accuracy ${acc:-none} > 0.85 (chance 0.5)" fgt "${acc:-0}" 0.85
timeout 60 "$DPTRAIN" generate "$TMP/sum" --prompt "x" >"$TMP/gen.out" 2>"$TMP/gen.err"
check "generate from a classifier: exit 1" test $? -eq 1
check "generate from a classifier: one line, 'not a language model'" \
  test "$(grep -c 'dptrain: error: .*not a language model' "$TMP/gen.err")" -eq 1 -a ! -s "$TMP/gen.out"
sed -e "s|sum.h5|sum_reg.h5|" -e "s|simple_rnn: {units: 16}|gru: {units: 16}|" \
  -e "s|units: 2, activation: softmax|units: 2|" -e "s|sparse_categorical_crossentropy|mse|" \
  -e "s|metrics: \[accuracy\]|metrics: []|" "$TMP/sum.yaml" >"$TMP/reg.yaml"
run_np 2 "$TMP/reg.log" train "$TMP/reg.yaml" --run-dir "$TMP/reg"
check "running-sum regression: exits 0" test $? -eq 0
mse=$(grep -o '"test_loss": [0-9][0-9.e-]*' "$TMP/reg/metrics.jsonl" | sed 's/.*: //')
# Predicting 0 gives an mse near 0.75 (the targets' variance): learning means far less.
check "running-sum regression: test mse ${mse:-none} < 0.1" fgt 0.1 "${mse:-1}"
finish
