#!/usr/bin/python3
"""callbacks_ref.py - Keras's callback rules, written again from Keras 3's source
(EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only) on the
MonitorCallback improvement test), applied to a run's own epoch figures.

  callbacks_ref.py data OUT.h5
      A data set whose validation loss must rise: the validation rows are
      training rows with the complementary labels, so the better the model
      fits its training rows, the worse it does on them.
  callbacks_ref.py check RUN_DIR KEY=VALUE...
      Reads the epoch figures of RUN_DIR's newest checkpoint (/metrics, exact
      float64) and checks, against this reference, the epoch the run stopped
      at, the learning rate of every epoch, the epoch best.h5 holds, and the
      checkpoint whose weights the run should end with. Prints that file's
      path on the last line (for h5diff) and exits 1 on any difference.
"""
import glob
import json
import math
import sys

import h5py
import numpy as np

# /metrics columns (include/dptrain/checkpoint.h)
COLS = {"loss": 1, "accuracy": 2, "val_loss": 3, "val_accuracy": 4}
LR_COL = 7


def make_data(out):
    rng = np.random.default_rng(12)
    n, f = 160, 20
    w = rng.standard_normal(f)
    x = rng.standard_normal((n + 64, f)).astype("<f4")
    y = (x @ w > 0).astype("<i4")
    noisy = y[:n].copy()
    flip = rng.random(n) < 0.25
    noisy[flip] = 1 - noisy[flip]
    with h5py.File(out, "w") as h:
        h["train/x"] = x[:n]
        h["train/y"] = noisy
        # fresh rows with the true rule, then training rows with the labels
        # they were not trained on: fitting the noise must cost on both
        h["val/x"] = np.concatenate([x[n:], x[:n][flip][:16]])
        h["val/y"] = np.concatenate([y[n:], 1 - noisy[flip][:16]]).astype("<i4")


def direction(monitor, mode):
    """-1: lower is better; Keras's auto takes max for an accuracy."""
    if mode == "min":
        return -1
    if mode == "max":
        return 1
    return 1 if monitor.endswith("accuracy") else -1


def improves(value, best, min_delta, d):
    # MonitorCallback: monitor_op(value - min_delta', best), min_delta' = -|d| for min
    return value + min_delta < best if d < 0 else value - min_delta > best


def reference(rows, p):
    """Replays the run's epochs through the rules; returns what Keras decides."""
    out = {"stop": 0, "lr": [], "best_ckpt": 0, "restore": 0}
    es_on, rl_on, bc_on = p.get("es") == "1", p.get("rl") == "1", p.get("best") == "1"
    es_d = direction(p.get("es_monitor", "val_loss"), p.get("es_mode", "auto"))
    rl_d = direction(p.get("rl_monitor", "val_loss"), p.get("rl_mode", "auto"))
    bc_d = direction(p.get("best_monitor", "val_loss"), p.get("best_mode", "auto"))
    es_best, es_wait, es_best_epoch, restore = -es_d * math.inf, 0, 0, p.get("restore") == "1"
    rl_best, rl_wait, cooldown = -rl_d * math.inf, 0, 0
    bc_best = -bc_d * math.inf
    lr = float(p.get("lr", "nan"))
    for i, row in enumerate(rows):
        epoch = i + 1
        out["lr"].append(lr)  # the rate in force during the epoch
        if bc_on:
            v = row[COLS[p.get("best_monitor", "val_loss")]]
            if improves(v, bc_best, 0.0, bc_d):
                bc_best, out["best_ckpt"] = v, epoch
        if rl_on:
            v = row[COLS[p.get("rl_monitor", "val_loss")]]
            if cooldown > 0:
                cooldown -= 1
                rl_wait = 0
            if improves(v, rl_best, float(p.get("rl_min_delta", "1e-4")), rl_d):
                rl_best, rl_wait = v, 0
            elif cooldown == 0:
                rl_wait += 1
                if rl_wait >= int(p.get("rl_patience", "10")):
                    min_lr = float(p.get("rl_min_lr", "0"))
                    if lr > min_lr:
                        lr = max(lr * float(p.get("rl_factor", "0.1")), min_lr)
                        cooldown = int(p.get("rl_cooldown", "0"))
                        rl_wait = 0
        if es_on:
            v = row[COLS[p.get("es_monitor", "val_loss")]]
            if restore and es_best_epoch == 0:
                es_best_epoch = epoch
            es_wait += 1
            if improves(v, es_best, float(p.get("es_min_delta", "0")), es_d):
                es_best, es_best_epoch, es_wait = v, epoch, 0
            elif es_wait >= int(p.get("es_patience", "0")) and epoch > 1:
                out["stop"] = epoch
                break
    if es_on and restore:
        out["restore"] = es_best_epoch
    return out


def ckpt_of_epoch(run, epoch):
    for path in sorted(glob.glob(run + "/ckpt-*.h5")):
        with h5py.File(path, "r") as h:
            t = h["train"].attrs
            if int(t["epoch"]) == epoch and int(t["step_in_epoch"]) == 0:
                return path
    return None


def check(run, p):
    newest = sorted(glob.glob(run + "/ckpt-*.h5"))[-1]
    with h5py.File(newest, "r") as h:
        rows = h["metrics"][()]
    bad = []
    # The figures replayed are the ones metrics.jsonl shows.
    with open(run + "/metrics.jsonl") as f:
        lines = [json.loads(s) for s in f if '"loss": null' not in s]
    if len(lines) != len(rows):
        bad.append("metrics.jsonl has %d epochs, the checkpoint %d" % (len(lines), len(rows)))
    for line, row in zip(lines, rows):
        for k, c in COLS.items():
            if line.get(k) is not None and abs(line[k] - row[c]) > 1e-8 * max(1, abs(row[c])):
                bad.append("epoch %d: %s %r in metrics.jsonl, %r in /metrics" %
                           (line["epoch"], k, line[k], row[c]))
    want = reference(rows, p)
    epochs = int(p["epochs"])
    if want["stop"]:
        if len(rows) != want["stop"]:
            bad.append("ran %d epochs; Keras stops after epoch %d" % (len(rows), want["stop"]))
    elif len(rows) != epochs:
        bad.append("ran %d epochs; Keras does not stop early and runs %d" % (len(rows), epochs))
    if p.get("rl") == "1":
        for e, (got, exp) in enumerate(zip(rows[:, LR_COL], want["lr"]), 1):
            if got != exp:
                bad.append("epoch %d: learning_rate %r; Keras's is %r" % (e, got, exp))
    if p.get("best") == "1":
        with h5py.File(run + "/best.h5", "r") as h:
            got = int(h["train"].attrs["epoch"])
        if got != want["best_ckpt"]:
            bad.append("best.h5 holds epoch %d; Keras saves epoch %d" % (got, want["best_ckpt"]))
    print("epochs run %d, stop %d, best.h5 epoch %d, restore epoch %d, learning rates %s" %
          (len(rows), want["stop"], want["best_ckpt"], want["restore"],
           sorted(set(want["lr"]), reverse=True)))
    for b in bad:
        print("MISMATCH: " + b)
    if want["restore"]:
        print(ckpt_of_epoch(run, want["restore"]) or "no checkpoint of epoch %d" % want["restore"])
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "data":
        make_data(sys.argv[2])
        sys.exit(0)
    params = dict(a.split("=", 1) for a in sys.argv[3:])
    sys.exit(check(sys.argv[2], params))
