#!/usr/bin/python3
"""sweep_grid.py - the combinations of a hyper-parameter grid file, for sweeps.

usage: sweep_grid.py GRID.yaml (--count | --task I | --list)

A grid file lists config overrides, each key with the list of values to try,
and optionally the config they apply to:

    config: configs/fmnist_mlp.yaml
    grid:
      optimizer.learning_rate: [1.0e-3, 3.0e-4]
      train.batch_size: [64, 128]

The combinations are the cartesian product of the lists in the order the keys
are listed, the last key changing fastest: here 0 = (1.0e-3, 64),
1 = (1.0e-3, 128), 2 = (3.0e-4, 64), 3 = (3.0e-4, 128). Each value is passed to
`dptrain train --set KEY=VALUE` as written in the file (quoted strings stay
strings); dptrain itself checks the keys and values.

--count prints the number of combinations. --task I prints combination I as
lines `dir I-DESCRIPTION` (the run directory's name, e.g. 2-lr3e-4_bs64),
`config PATH` (when the file names one) and one `set KEY=VALUE` per key.
--list prints every combination, one a line: its directory name and its
--set options. A bad grid file is one line `sweep_grid: error: ...` on stderr
and exit status 1.
"""
import argparse
import itertools
import json
import math
import re
import shlex
import signal
import sys
from decimal import Decimal

# A description longer than this is cut: the index in front keeps names unique.
MAX_DESCRIPTION = 120
KEY_RE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
INT_RE = re.compile(r"[-+]?[0-9]+$")


class GridError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"sweep_grid: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def where(path, node):
    return f"{path}:{node.start_mark.line + 1}"


def flow_text(node):
    """The node as one line of YAML flow text, scalars as written."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.style in ("'", '"'):
            return json.dumps(node.value)  # a JSON string is a YAML double-quoted one
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return "[" + ", ".join(flow_text(n) for n in node.value) + "]"
    return "{" + ", ".join(f"{flow_text(k)}: {flow_text(v)}" for k, v in node.value) + "}"


def compact_number(text):
    """A plain scalar that is a number, written short: 3.0e-4 -> 3e-4, 0.10 ->
    0.1, 100.0 -> 100; None if it is not a number."""
    if INT_RE.match(text):
        return str(int(text))
    try:
        x = float(text)
    except ValueError:
        return None
    if not math.isfinite(x):
        return None
    d = Decimal(repr(x)).normalize()
    sign, digits, exp = d.as_tuple()
    plain = format(d, "f")
    mant = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    sci = f"{'-' if sign else ''}{mant}e{exp + len(digits) - 1}"
    return sci if len(sci) < len(plain) else plain


def value_label(node):
    import yaml

    text = None
    if isinstance(node, yaml.ScalarNode) and node.style not in ("'", '"'):
        text = compact_number(node.value)
    if text is None:
        text = node.value if isinstance(node, yaml.ScalarNode) else flow_text(node)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "empty"


def key_labels(keys):
    """Short names of the keys: the last part (not an entry number), its
    initials when it has several words (learning_rate -> lr), the part above
    for `name` (optimizer.name -> optimizer). Keys whose short names collide get
    their shortest distinct tails instead (0.dense.units, 1.dense.units)."""
    short = []
    for key in keys:
        parts = [p for p in key.split(".") if not p.isdigit()] or [key]
        word = parts[-1]
        if word == "name" and len(parts) > 1:
            word = parts[-2]
        elif "_" in word.strip("_"):
            word = "".join(w[0] for w in word.split("_") if w)
        short.append(word)
    for s in set(short):
        group = [i for i, w in enumerate(short) if w == s]
        if len(group) < 2:
            continue
        for n in range(1, max(keys[i].count(".") + 1 for i in group) + 1):
            tails = [".".join(keys[i].split(".")[-n:]) for i in group]
            if len(set(tails)) == len(tails):
                break
        for i, t in zip(group, tails):
            short[i] = t
    return short


def describe(labels, values):
    out = []
    for label, node in zip(labels, values):
        v = value_label(node)
        out.append(f"{label}-{v}" if v[0].isalpha() else f"{label}{v}")
    return "_".join(out)[:MAX_DESCRIPTION].rstrip("_-")


def load(path):
    """Returns (config path or None, [(key, [value nodes])]) of a grid file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise GridError(f"{path}: no such grid file")
    except (OSError, UnicodeDecodeError) as e:
        raise GridError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})")
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GridError(f"{at}: not valid YAML ({problem})")
    usage = "expected a mapping with 'grid:' (KEY: [VALUES...]) and optionally 'config:'"
    if root is None:
        raise GridError(f"{path}: the file is empty; {usage}")
    if not isinstance(root, yaml.MappingNode):
        raise GridError(f"{where(path, root)}: {usage}")
    config, grid = None, None
    for k, v in root.value:
        if k.value == "config":
            if not isinstance(v, yaml.ScalarNode) or not v.value:
                raise GridError(f"{where(path, v)}: config: expected a config file path")
            config = v.value
        elif k.value == "grid":
            grid = v
        else:
            raise GridError(f"{where(path, k)}: unknown key '{k.value}'; {usage}")
    if grid is None:
        raise GridError(f"{path}: no 'grid:'; {usage}")
    if not isinstance(grid, yaml.MappingNode) or not grid.value:
        raise GridError(f"{where(path, grid)}: grid: expected at least one KEY: [VALUES...], "
                        "e.g. train.batch_size: [64, 128]")
    axes = []
    for k, v in grid.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else flow_text(k)
        if not KEY_RE.match(key):
            raise GridError(f"{where(path, k)}: '{key}' is not a dotted config key such as "
                            "train.batch_size")
        if key in (a[0] for a in axes):
            raise GridError(f"{where(path, k)}: '{key}' is listed twice")
        if not isinstance(v, yaml.SequenceNode):
            raise GridError(f"{where(path, v)}: {key}: expected a list of values, got "
                            f"'{flow_text(v)}' (write [{flow_text(v)}] for a single value)")
        if not v.value:
            raise GridError(f"{where(path, v)}: {key}: the list of values is empty")
        axes.append((key, v.value))
    return config, axes


def combinations(axes):
    """[(description, [(key, value text)])] in grid order, the last key fastest."""
    keys = [k for k, _ in axes]
    labels = key_labels(keys)
    out = []
    for values in itertools.product(*(vals for _, vals in axes)):
        out.append((describe(labels, values), [(k, flow_text(v)) for k, v in zip(keys, values)]))
    return out


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--list | head` ends quietly
    p = Parser(prog="sweep_grid.py", description="Combinations of a sweep grid file.")
    p.add_argument("grid", metavar="GRID.yaml")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--count", action="store_true", help="print the number of combinations")
    what.add_argument("--task", type=int, metavar="I", help="print combination I (from 0)")
    what.add_argument("--list", action="store_true", help="print every combination")
    a = p.parse_args(argv)
    try:
        config, axes = load(a.grid)
        combos = combinations(axes)
        if a.task is not None and not 0 <= a.task < len(combos):
            raise GridError(f"--task {a.task}: out of range; {a.grid} has {len(combos)} "
                            f"combinations (0-{len(combos) - 1})")
    except GridError as e:
        print(f"sweep_grid: error: {e}", file=sys.stderr)
        return 1
    if a.count:
        print(len(combos))
    elif a.list:
        for i, (desc, sets) in enumerate(combos):
            opts = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in sets)
            print(f"{i}-{desc}: {opts}")
    else:
        desc, sets = combos[a.task]
        print(f"dir {a.task}-{desc}")
        if config:
            print(f"config {config}")
        for k, v in sets:
            print(f"set {k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
