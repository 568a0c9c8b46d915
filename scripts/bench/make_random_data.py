#!/usr/bin/python3
"""Writes a random classification set in dptrain's HDF5 layout, for benchmarks
that measure speed rather than accuracy.

usage: make_random_data.py OUT ROWS FEATURES CLASSES [SEED]
"""
import sys

import h5py
import numpy as np


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    out, rows, feats, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) == 6 else 0)
    with h5py.File(out, "w") as f:
        f["/train/x"] = rng.random((rows, feats), dtype=np.float32)
        f["/train/y"] = rng.integers(0, classes, rows, dtype=np.int32)


if __name__ == "__main__":
    main()
