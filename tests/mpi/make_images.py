#!/usr/bin/python3
"""Writes a small generated image set in dptrain's layout for CNN tests: each
image is noise plus a bright 3x3 square in one of four quadrants, and the label
is the quadrant, so a CNN can learn it in a few epochs.

usage: make_images.py OUT ROWS [SIZE]
"""
import sys

import h5py
import numpy as np


def main():
    out, rows = sys.argv[1], int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    rng = np.random.default_rng(7)
    x = rng.random((rows, 1, size, size), dtype=np.float32) * 0.3
    y = rng.integers(0, 4, rows, dtype=np.int32)
    half = size // 2
    for i in range(rows):
        r0 = (y[i] // 2) * half + rng.integers(0, half - 3 + 1)
        c0 = (y[i] % 2) * half + rng.integers(0, half - 3 + 1)
        x[i, 0, r0:r0 + 3, c0:c0 + 3] += 0.7
    n_test = rows // 4
    with h5py.File(out, "w") as f:
        f["/train/x"], f["/train/y"] = x[n_test:], y[n_test:]
        f["/test/x"], f["/test/y"] = x[:n_test], y[:n_test]


if __name__ == "__main__":
    main()
