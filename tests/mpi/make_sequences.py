#!/usr/bin/python3
"""Writes small generated sequence sets in dptrain's layout for the sequence
model tests.

usage: make_sequences.py text OUT WINDOWS T
         byte windows of a text made of random words from a short list, as
         make_fortunes.sh cuts real text: /x, /y int32 [N, T], y = x shifted
         by one byte; train, val and test parts.
       make_sequences.py sum OUT ROWS T
         noise sequences x float32 [N, T, 1]; /train/y int32 [N] is 1 when
         the running sum ends above 0 (classification), and sum.h5's twin
         OUT with suffix _reg.h5 holds float32 [N, 2] targets (the final sum
         and the sum at the middle, scaled) for regression.
"""
import sys

import h5py
import numpy as np

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "its", "bed", "and",
         "slept", "all", "day", "long"]


def text(out, windows, T):
    rng = np.random.default_rng(11)
    need = (windows + 3) * (T + 1) * 2
    words = []
    while sum(len(w) + 1 for w in words) < need:
        words.append(WORDS[rng.integers(0, len(WORDS))])
    data = np.frombuffer(" ".join(words).encode(), dtype=np.uint8).astype(np.int32)
    n = len(data)
    parts = {"train": data[:n * 8 // 10], "val": data[n * 8 // 10:n * 9 // 10],
             "test": data[n * 9 // 10:]}
    with h5py.File(out, "w") as f:
        for name, part in parts.items():
            count = (len(part) - 1) // T
            idx = np.arange(count)[:, None] * T + np.arange(T)[None, :]
            f[f"/{name}/x"], f[f"/{name}/y"] = part[idx], part[idx + 1]


def running_sum(out, rows, T):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((rows, T, 1)).astype(np.float32)
    s = np.cumsum(x[:, :, 0], axis=1)
    y = (s[:, -1] > 0).astype(np.int32)
    reg = np.stack([s[:, -1], s[:, T // 2]], axis=1).astype(np.float32) / np.sqrt(T)
    n_test = rows // 5
    for path, target in ((out, y), (out.replace(".h5", "_reg.h5"), reg)):
        with h5py.File(path, "w") as f:
            f["/train/x"], f["/train/y"] = x[n_test:], target[n_test:]
            f["/test/x"], f["/test/y"] = x[:n_test], target[:n_test]


def main():
    kind, out, n, T = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    {"text": text, "sum": running_sum}[kind](out, n, T)


if __name__ == "__main__":
    main()
