#!/usr/bin/python3
"""sweep_report.py - the results of a sweep's runs side by side.

usage: sweep_report.py SWEEP_DIR [--plot PNG]

SWEEP_DIR is runs/<job name> of a sweep (scripts/slurm/sweep.sbatch): one run
directory per combination, named I-DESCRIPTION. Prints one row per run: the
epochs recorded, the best (lowest) val_loss and its epoch, the best (highest)
val_accuracy and its epoch, and the end-of-training test loss and accuracy
("-" while the run has not finished), sorted by best val_loss; runs without a
validation split follow in task order, then runs with no epoch yet (with the
reason). Read as scripts/plot_metrics.py reads metrics.jsonl: an epoch logged
twice keeps its last record. --plot PNG draws every run's curves on one figure
through scripts/plot_metrics.py. A missing or empty SWEEP_DIR is one line
`sweep_report: error: ...` and exit status 1.
"""
import argparse
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from plot_metrics import InputError, read_run  # noqa: E402


def fail(msg):
    print(f"sweep_report: error: {msg}", file=sys.stderr)
    sys.exit(1)


def task_index(name):
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else math.inf


def best(epochs, values, better):
    """(value, epoch) of the best finite value, the first epoch on ties; None if none."""
    found = None
    for e, v in zip(epochs, values):
        if not math.isnan(v) and (found is None or better(v, found[0])):
            found = (v, e)
    return found


def summarize(run_dir):
    """A row of the table for one run directory."""
    row = {"dir": run_dir, "name": os.path.basename(run_dir), "epochs": 0}
    if not os.path.isfile(os.path.join(run_dir, "metrics.jsonl")):
        row["note"] = "no metrics.jsonl yet"
        return row
    try:
        epochs, series, test = read_run(run_dir)
    except InputError as e:
        row["note"] = str(e).replace(run_dir + os.sep, "")
        return row
    row["epochs"] = len(epochs)
    row["val_loss"] = best(epochs, series.get("val_loss", []), lambda a, b: a < b)
    row["val_accuracy"] = best(epochs, series.get("val_accuracy", []), lambda a, b: a > b)
    row["test_loss"] = test.get("loss")
    row["test_accuracy"] = test.get("accuracy")
    return row


def cell(x):
    if x is None:
        return "-"
    if isinstance(x, tuple):
        return f"{x[0]:.4f} ({x[1]})"
    return f"{x:.4f}"


def table(rows):
    head = ["run", "epochs", "best val_loss (epoch)", "best val_accuracy (epoch)", "test_loss",
            "test_accuracy"]
    lines = []
    for r in rows:
        if "note" in r:
            lines.append([r["name"], "0", r["note"]])
        else:
            lines.append([r["name"], str(r["epochs"]), cell(r["val_loss"]), cell(r["val_accuracy"]),
                          cell(r["test_loss"]), cell(r["test_accuracy"])])
    widths = [max(len(x[i]) for x in [head] + [ln for ln in lines if len(ln) == len(head)])
              for i in range(len(head))]
    out = []
    for ln in [head] + lines:
        cells = [c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(ln)]
        if len(ln) == 3:  # a note spans the figure columns
            cells[2] = ln[2]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def main(argv):
    p = argparse.ArgumentParser(prog="sweep_report.py",
                                description="A table of a sweep's runs, best val_loss first.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="runs/<job name> of a sweep")
    p.add_argument("--plot", metavar="PNG", help="draw every run's curves into PNG")
    a = p.parse_args(argv)
    if not os.path.isdir(a.sweep_dir):
        fail(f"{a.sweep_dir}: no such sweep directory")
    names = sorted((n for n in os.listdir(a.sweep_dir)
                    if os.path.isdir(os.path.join(a.sweep_dir, n))),
                   key=lambda n: (task_index(n), n))
    if not names:
        fail(f"{a.sweep_dir}: no run directories in it; has the sweep started?")
    rows = [summarize(os.path.join(a.sweep_dir, n)) for n in names]
    done = [r for r in rows if "note" not in r]
    order = (sorted((r for r in done if r["val_loss"]), key=lambda r: r["val_loss"][0]) +
             [r for r in done if not r["val_loss"]] + [r for r in rows if "note" in r])
    print(f"sweep {os.path.normpath(a.sweep_dir)}: {len(rows)} runs, best val_loss first")
    print(table(order))
    if a.plot:
        if not done:
            fail("--plot: no run has recorded an epoch yet")
        # Run by its own #! line: the Python that has matplotlib.
        cmd = [os.path.join(HERE, "plot_metrics.py"), *[r["dir"] for r in done],
               "--out", a.plot, "--title", os.path.basename(os.path.normpath(a.sweep_dir))]
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
