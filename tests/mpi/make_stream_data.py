#!/usr/bin/python3
"""Writes the streaming tests' data: the same rows stored four ways.

usage: make_stream_data.py DIR

  DIR/f32.h5      float32 x [24000, 1, 4, 4], int32 y [24000], /test [600 rows], contiguous
  DIR/chunked.h5  the same values, chunked by 7 rows (chunks cut across steps)
                  and deflate-compressed (level 4)
  DIR/u8.h5       x as uint8 codes 0..255 of the same rows, for data.scale 1/255

Rows are noise around a class-dependent pattern, so a model learns them in a
few epochs and the losses move.
"""
import sys

import h5py
import numpy as np


CENTERS = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32) * 2 + 1


def rows(rng, n):
    y = rng.integers(0, 3, n, dtype=np.int32)
    centers = CENTERS
    x = centers[y] + 0.8 * rng.standard_normal((n, 16)).astype(np.float32)
    return x.reshape(n, 1, 4, 4), y


def write(path, x, y, xt, yt, **kw):
    with h5py.File(path, "w") as f:
        f.create_dataset("/train/x", data=x, **kw)
        f.create_dataset("/train/y", data=y, **kw)
        f.create_dataset("/test/x", data=xt, **kw)
        f.create_dataset("/test/y", data=yt, **kw)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(11)
    x, y = rows(rng, 24000)
    xt, yt = rows(rng, 600)
    write(f"{out}/f32.h5", x, y, xt, yt)

    def codes(a):
        lo, hi = a.min(), a.max()
        return np.round((a - lo) / (hi - lo) * 255).astype(np.uint8)

    write(f"{out}/u8.h5", codes(x), y, codes(xt), yt)
    with h5py.File(f"{out}/chunked.h5", "w") as f:
        for split, (a, b) in {"train": (x, y), "test": (xt, yt)}.items():
            f.create_dataset(f"/{split}/x", data=a, chunks=(7, 1, 4, 4), compression="gzip",
                             compression_opts=4)
            f.create_dataset(f"/{split}/y", data=b, chunks=(7,), compression="gzip",
                             compression_opts=4)


if __name__ == "__main__":
    main()
