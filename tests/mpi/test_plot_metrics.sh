#!/usr/bin/env bash
# scripts/plot_metrics.py on two real run directories (the seed model for 3
# epochs at two learning rates, so their curves differ):
# - it writes a PNG whose header gives the asked --size, and without --size the
#   documented default (430 per metric + 40 by 420; loss and accuracy here);
# - the curves are drawn: split into one strip per subplot, every strip holds
#   hundreds of pixels of each run's colour (matplotlib's first two, C0 and C1)
#   and of several other shades, read back with matplotlib.image.imread; the
#   same check rejects a figure of the same axes without curves, so it can fail;
# - bad input (a missing directory, a directory without metrics.jsonl, an empty
#   metrics.jsonl, a line that is not JSON, an --out in a missing directory, a
#   bad --size) exits 1 with exactly one `plot_metrics: error:` line and writes
#   no file.
source "$(dirname "$0")/common.sh"

PY=/usr/bin/python3
PLOT=$SRC/scripts/plot_metrics.py
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
  echo "FAILED: plot_metrics.py needs matplotlib for $PY: apt-get install python3-matplotlib"
  exit 1
fi

base=(train configs/seed.yaml --set train.epochs=3 --set train.batch_size=50)
run_np 1 "$TMP/slow.log" "${base[@]}" --run-dir "$TMP/slow" --set optimizer.learning_rate=0.0003
check "run 1 trains" test $? -eq 0
run_np 2 "$TMP/fast.log" "${base[@]}" --run-dir "$TMP/fast" --set optimizer.learning_rate=0.01
check "run 2 trains" test $? -eq 0

# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk of a PNG.
png_size() {
  "$PY" -c 'import struct, sys
d = open(sys.argv[1], "rb").read(24)
assert d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR"
print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1"
}

# curves FILE STRIPS: every one of STRIPS vertical strips has >= 300 pixels
# near C0 (#1f77b4) and C1 (#ff7f0e) and at least 20 distinct colours.
cat >"$TMP/curves.py" <<'EOF'
import sys
import matplotlib.image as mpimg
import numpy as np
img = mpimg.imread(sys.argv[1])[:, :, :3]
strips = int(sys.argv[2])
c0, c1 = np.array([0x1f, 0x77, 0xb4]) / 255, np.array([0xff, 0x7f, 0x0e]) / 255
w = img.shape[1] // strips
ok = True
for s in range(strips):
    part = img[:, s * w:(s + 1) * w]
    n0 = int((np.abs(part - c0).max(axis=2) < 0.08).sum())
    n1 = int((np.abs(part - c1).max(axis=2) < 0.08).sum())
    shades = len(np.unique((part * 255).round().astype(np.int32).reshape(-1, 3), axis=0))
    print(f"strip {s}: {n0} C0 pixels, {n1} C1 pixels, {shades} colours")
    ok &= n0 >= 300 and n1 >= 300 and shades >= 20
sys.exit(0 if ok else 1)
EOF

"$PY" "$PLOT" "$TMP/slow" "$TMP/fast" --out "$TMP/given.png" --size 1000x380 >"$TMP/given.log" 2>&1
check "two runs: exit 0" test $? -eq 0
check "two runs: PNG of the asked 1000x380" test "$(png_size "$TMP/given.png")" = 1000x380
"$PY" "$TMP/curves.py" "$TMP/given.png" 2 >"$TMP/given.pix"
check "two runs: both runs' curves in both subplots" test $? -eq 0
cat "$TMP/given.pix"
(cd "$TMP" && "$PY" "$PLOT" slow fast >"$TMP/default.log" 2>&1)
check "default: curves.png in the working directory" test -f "$TMP/curves.png"
check "default: 900x420 for two metrics" test "$(png_size "$TMP/curves.png")" = 900x420

# The same axes, legends and titles without a single curve: the check must fail.
"$PY" - "$TMP/empty.png" <<'EOF'
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
for ax, name in zip(axes, ["loss", "accuracy"]):
    ax.set_title(name); ax.set_xlabel("epoch"); ax.grid(True, alpha=0.3)
fig.tight_layout(); fig.savefig(sys.argv[1])
EOF
"$PY" "$TMP/curves.py" "$TMP/empty.png" 2 >/dev/null
check "the pixel check rejects a figure without curves" test $? -ne 0

# bad NAME EXPECTED ARGS...: exit 1, one error line holding EXPECTED, no PNG written.
bad() {
  local name=$1 expected=$2
  shift 2
  rm -f "$TMP/bad.png"
  "$PY" "$PLOT" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
  local rc=$?
  check "$name: exit 1" test $rc -eq 1
  check "$name: one error line" test "$(grep -c '^plot_metrics: error: ' "$TMP/bad.err")" -eq 1 \
    -a "$(wc -l <"$TMP/bad.err")" -eq 1
  check "$name: the line says '$expected'" grep -qF -- "$expected" "$TMP/bad.err"
  check "$name: no file written" test ! -e "$TMP/bad.png" -a -z "$(ls "$TMP" | grep 'bad.png.tmp')"
}
mkdir -p "$TMP/nometrics" "$TMP/empty" "$TMP/garbled"
: >"$TMP/empty/metrics.jsonl"
printf '{"epoch": 1, "loss": 0.5}\nnot json\n' >"$TMP/garbled/metrics.jsonl"
bad "missing dir" "no such run directory" "$TMP/slow" "$TMP/nowhere" --out "$TMP/bad.png"
bad "no metrics.jsonl" "metrics.jsonl: missing" "$TMP/nometrics" --out "$TMP/bad.png"
bad "empty metrics.jsonl" "no epoch recorded" "$TMP/empty" --out "$TMP/bad.png"
bad "garbled line" "metrics.jsonl:2: not a JSON line" "$TMP/garbled" --out "$TMP/bad.png"
bad "bad --size" "--size: expected WIDTHxHEIGHT" "$TMP/slow" --out "$TMP/bad.png" --size big
rm -f "$TMP/bad.png"
"$PY" "$PLOT" "$TMP/slow" --out "$TMP/no/such/dir/bad.png" >/dev/null 2>"$TMP/bad.err"
check "--out in a missing directory: exit 1" test $? -eq 1
check "--out in a missing directory: one error line" test "$(wc -l <"$TMP/bad.err")" -eq 1
check "--out in a missing directory: says so" grep -qF "does not exist" "$TMP/bad.err"
check "--out in a missing directory: nothing created" test ! -e "$TMP/no"

finish
