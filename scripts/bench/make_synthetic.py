#!/usr/bin/python3
"""make_synthetic.py - writes a large synthetic classification set in dptrain's
HDF5 layout, for the benchmarks of data larger than memory (stream.sh).

/train/x is float32 [N, 1, 28, 28] (Fashion-MNIST's row shape, so its configs
run unchanged), /train/y int32 [N] in 0..9; /test the same with --test-rows
rows. A row is its class's fixed pattern (0.5 plus uniform values of width
--separation per pixel) plus uniform noise of width --noise: learnable but not
at once (the MLP of configs/fmnist_mlp.yaml reached 0.93 test accuracy after
an epoch of 60000 rows on 2 ranks), and cheap to generate (uniform float32
draws are several times faster than normal ones).

Rows are generated in blocks of 32768 rows, each from its own generator keyed by
(seed, split, block), so the file does not depend on how it is written and a
smaller file is a prefix of a larger one with the same seed. Memory stays at a
few blocks (350 MB peak RSS for 8 GiB) whatever the size. The file is written to a temporary
name next to the output and renamed into place.

usage: make_synthetic.py (--gib G | --rows N) [--out PATH] [--test-rows N]
                         [--chunk-rows N] [--compress LEVEL] [--seed S]
                         [--separation S] [--noise W]
"""
import argparse
import os
import sys
import time

import h5py
import numpy as np

ROW_SHAPE = (1, 28, 28)
ROW_FLOATS = 1 * 28 * 28
CLASSES = 10
BLOCK = 32768  # rows per generator block: 103 MB of float32
SPLIT_KEY = {"train": 0, "test": 1}


def positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{s} is not >= 1")
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="make_synthetic",
        description="Synthetic float32 [N, 1, 28, 28] classification set in dptrain's layout")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--gib", type=float, help="size of /train/x in GiB (2^30 bytes)")
    size.add_argument("--rows", type=positive_int, help="training rows")
    p.add_argument("--out", default="/tmp/dptrain-bench/synthetic.h5",
                   help="HDF5 file to write (default %(default)s)")
    p.add_argument("--test-rows", type=int, default=10000,
                   help="rows of /test (0: no /test; default %(default)s)")
    p.add_argument("--chunk-rows", type=positive_int, default=None,
                   help="chunk x and y by this many rows (default: contiguous)")
    p.add_argument("--compress", type=int, default=None, metavar="LEVEL",
                   help="deflate level 0-9 (implies chunks; default none)")
    p.add_argument("--seed", type=int, default=1, help="default %(default)s")
    p.add_argument("--separation", type=float, default=0.25,
                   help="width of the uniform spread of the class patterns (default %(default)s)")
    p.add_argument("--noise", type=float, default=2.0,
                   help="width of the uniform noise added to a class pattern (default %(default)s)")
    a = p.parse_args(argv)
    if a.gib is not None:
        if not a.gib > 0:
            p.error("--gib must be > 0")
        a.rows = max(1, int(a.gib * 2**30) // (ROW_FLOATS * 4))
    if a.test_rows < 0:
        p.error("--test-rows must be >= 0")
    if a.compress is not None and not 0 <= a.compress <= 9:
        p.error("--compress must be in 0..9")
    if a.compress is not None and a.chunk_rows is None:
        a.chunk_rows = 1024
    return a


def class_patterns(seed, separation):
    """[CLASSES, ROW_FLOATS] float32: each class's mean row."""
    u = np.random.default_rng([seed, 99]).random((CLASSES, ROW_FLOATS), dtype=np.float32)
    return np.float32(0.5) + np.float32(separation) * (u - np.float32(0.5))


def block_rows(seed, split, b, n, patterns, noise, x, y):
    """Fills x [n, ROW_FLOATS] and y [n] with block b's first n rows of split."""
    rng = np.random.default_rng([seed, SPLIT_KEY[split], b])
    y[:] = rng.integers(0, CLASSES, BLOCK, dtype=np.int32)[:n]
    # Drawn for the whole block so that a short last block holds the same rows
    # as the start of the full one.
    u = rng.random((BLOCK, ROW_FLOATS), dtype=np.float32)[:n]
    np.subtract(u, np.float32(0.5), out=x)
    x *= np.float32(noise)
    x += patterns[y]


def write_split(f, split, rows, a, patterns):
    def layout(shape):
        """Chunking and filter keywords for a dataset of this shape."""
        if a.chunk_rows is None:
            return {}
        kw = {"chunks": (min(a.chunk_rows, rows),) + shape[1:]}
        if a.compress is not None:
            kw.update(compression="gzip", compression_opts=a.compress)
        return kw

    g = f.create_group(split)
    xs, ys = (rows,) + ROW_SHAPE, (rows,)
    dx = g.create_dataset("x", xs, np.float32, track_times=False, **layout(xs))
    dy = g.create_dataset("y", ys, np.int32, track_times=False, **layout(ys))
    x = np.empty((BLOCK, ROW_FLOATS), np.float32)
    y = np.empty(BLOCK, np.int32)
    for b, start in enumerate(range(0, rows, BLOCK)):
        n = min(BLOCK, rows - start)
        block_rows(a.seed, split, b, n, patterns, a.noise, x[:n], y[:n])
        dx[start:start + n] = x[:n].reshape((n,) + ROW_SHAPE)
        dy[start:start + n] = y[:n]


def main(argv):
    a = parse_args(argv)
    d = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "." + os.path.basename(a.out) + f".{os.getpid()}.tmp.h5")
    patterns = class_patterns(a.seed, a.separation)
    t0 = time.monotonic()
    try:
        with h5py.File(tmp, "w") as f:
            write_split(f, "train", a.rows, a, patterns)
            if a.test_rows:
                write_split(f, "test", a.test_rows, a, patterns)
        os.replace(tmp, a.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    s = time.monotonic() - t0
    size = os.path.getsize(a.out)
    print(f"{a.out}: train {a.rows} rows, test {a.test_rows} rows, x [1, 28, 28] float32; "
          f"{size / 2**30:.3f} GiB in {s:.1f} s ({size / 2**20 / max(s, 1e-9):.0f} MiB/s)")


if __name__ == "__main__":
    main(sys.argv[1:])
