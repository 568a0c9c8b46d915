#!/usr/bin/python3
"""plot_metrics.py - training curves of one or more dptrain run directories.

usage: plot_metrics.py RUN_DIR... [--out curves.png] [--size WIDTHxHEIGHT] [--title TEXT]

Reads each RUN_DIR/metrics.jsonl (one line per epoch, written by rank 0 of
`dptrain train`) and draws, one subplot per metric, the training value per
epoch (solid) with its validation value (dashed) and the end-of-training test
value (a dot), as Keras's History and TensorBoard show them: loss, then every
metric the run recorded (accuracy), then the learning rate when it changed.
Several run directories share the figure, one colour each, labelled by the
directory, so runs can be compared. The PNG is written atomically (a temporary
name, then a rename). Bad input is one line `plot_metrics: error: ...` and exit
status 1, and no file is written.
"""
import argparse
import json
import math
import os
import sys

# Keys of a metrics.jsonl line that are not curves of a metric.
NOT_METRICS = {"epoch", "samples_per_s", "seconds", "learning_rate"}


class InputError(Exception):
    pass


def fail(msg):
    print(f"plot_metrics: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WIDTHxHEIGHT in pixels such as 1200x450, got '{text}'")
    if not (100 <= w <= 10000 and 100 <= h <= 10000):
        raise InputError(f"--size: width and height must be 100 to 10000 pixels, got '{text}'")
    return w, h


def read_run(run_dir):
    """Returns (epochs, {key: [value per epoch]}, {key: test value}) of one run.
    An epoch logged twice (a run resumed from a checkpoint older than its last
    line) keeps its last record, the one the run continued from."""
    if not os.path.isdir(run_dir):
        raise InputError(f"{run_dir}: no such run directory")
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise InputError(f"{path}: missing; is {run_dir} a dptrain run directory?")
    by_epoch, test = {}, {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{no}: not a JSON line ({e.msg})")
            if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
                raise InputError(f"{path}:{no}: expected an object with an integer \"epoch\"")
            if rec.get("test_loss") is not None:  # the end-of-training test line
                test = {k[5:]: v for k, v in rec.items() if k.startswith("test_") and v is not None}
            elif rec.get("loss") is not None:
                by_epoch[rec["epoch"]] = rec
    if not by_epoch:
        raise InputError(f"{path}: no epoch recorded yet")
    epochs = sorted(by_epoch)
    keys = []
    for e in epochs:
        keys += [k for k in by_epoch[e] if k not in keys]
    series = {}
    for k in keys:
        vals = [by_epoch[e].get(k) for e in epochs]
        series[k] = [float(v) if isinstance(v, (int, float)) and v is not None else math.nan
                     for v in vals]
    return epochs, series, test


def metric_names(runs):
    """Base metric names in first-seen order: loss first, learning_rate last
    (only when some run changed it)."""
    names = []
    for _, (_, series, _) in runs:
        for k in series:
            base = k[4:] if k.startswith("val_") else k
            if base not in NOT_METRICS and not k.startswith("test_") and base not in names:
                names.append(base)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    for _, (_, series, _) in runs:
        lr = [v for v in series.get("learning_rate", []) if not math.isnan(v)]
        if len(set(lr)) > 1:
            names.append("learning_rate")
            break
    return names


def label_of(run_dir):
    return os.path.normpath(run_dir)


def plot(runs, out, size, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = metric_names(runs)
    dpi = 100
    w, h = size if size else (430 * len(names) + 40, 420)
    fig, axes = plt.subplots(1, len(names), figsize=(w / dpi, h / dpi), dpi=dpi, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        for i, (run_dir, (epochs, series, test)) in enumerate(runs):
            c = colours[i % len(colours)]
            label = label_of(run_dir)
            if name in series:
                ax.plot(epochs, series[name], "-", color=c, marker="o", markersize=3,
                        label=f"{label} {name}")
            if "val_" + name in series and not all(math.isnan(v) for v in series["val_" + name]):
                ax.plot(epochs, series["val_" + name], "--", color=c, marker="s", markersize=3,
                        label=f"{label} val_{name}")
            if name in test:
                ax.plot([epochs[-1]], [test[name]], "D", color=c, markersize=6,
                        label=f"{label} test_{name}")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = f"{out}.tmp{os.getpid()}.png"
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    plt.close(fig)
    return w, h


def main(argv):
    p = argparse.ArgumentParser(
        prog="plot_metrics.py",
        description="Draws loss/val_loss and every metric per epoch of dptrain run directories.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run directory (metrics.jsonl)")
    p.add_argument("--out", default="curves.png", help="the PNG to write (default: curves.png)")
    p.add_argument("--size", help="WIDTHxHEIGHT in pixels (default: 430 per metric x 420)")
    p.add_argument("--title", help="a title over the figure")
    a = p.parse_args(argv)
    try:
        size = parse_size(a.size) if a.size else None
        out_dir = os.path.dirname(os.path.abspath(a.out))
        if not os.path.isdir(out_dir):
            raise InputError(f"--out {a.out}: directory {out_dir} does not exist")
        runs = [(d, read_run(d)) for d in a.run_dirs]
    except InputError as e:
        fail(str(e))
    try:
        w, h = plot(runs, a.out, size, a.title)
    except OSError as e:
        fail(f"--out {a.out}: {e.strerror}")
    print(f"plot_metrics: wrote {a.out} ({w}x{h} pixels, {len(runs)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
