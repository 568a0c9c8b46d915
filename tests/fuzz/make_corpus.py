#!/usr/bin/python3
"""make_corpus.py - writes the valid HDF5 seeds of the fuzz_data harness.

Usage: tests/fuzz/make_corpus.py [DIR]   (default: tests/fuzz/corpus/data)

Tiny dptrain files (/train/x float32 [4, 3], /train/y int32 [4], optional /val
and /test) in both object-header formats, so the fuzzer starts from inputs that
pass every check and reach the row reader. The defective seeds, one defect per
file, are not written here: they are the table the unit and MPI tests share
(tests/common/bad_h5.c), and scripts/fuzz.sh adds them to the corpus it runs
with make_bad_data."""
import os
import sys

import h5py
import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "data")


def x_rows(n, cols=3):
    return (np.arange(n * cols, dtype=np.float32).reshape(n, cols) / 7).astype(np.float32)


def write(name, libver="earliest", **splits):
    """splits: split -> dict of dataset name -> array, or (array, create kwargs)."""
    path = os.path.join(OUT, name + ".h5")
    with h5py.File(path, "w", libver=libver) as f:
        for split, dsets in splits.items():
            g = f.create_group(split)
            for ds, val in dsets.items():
                arr, kw = val if isinstance(val, tuple) else (val, {})
                g.create_dataset(ds, data=arr, **kw)


def main():
    os.makedirs(OUT, exist_ok=True)
    x, y = x_rows(4), np.array([0, 1, 1, 0], dtype=np.int32)
    ok = {"x": x, "y": y}
    write("valid_min", **{"train": ok})
    write("valid_latest", libver="latest", train=ok, test={"x": x_rows(2), "y": y[:2]})
    write("valid_val_test", train=ok, val={"x": x_rows(2), "y": y[:2]},
          test={"x": x_rows(3), "y": y[:3]})
    write("valid_float_targets", libver="latest",
          train={"x": x, "y": np.eye(4, 2, dtype=np.float32)})
    write("valid_images", libver="latest",
          train={"x": np.ones((2, 1, 2, 2), np.float32), "y": np.array([[0, 1], [1, 0]], np.int32)})
    write("valid_chunked", libver="latest",
          train={"x": (x, {"chunks": (2, 3), "compression": "gzip", "shuffle": True}),
                 "y": (y, {"chunks": (2,)})})


if __name__ == "__main__":
    main()
