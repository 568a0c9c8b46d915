#!/usr/bin/python3
"""Writes the seed workload's data (docs/DESIGN.md §1) in dptrain's HDF5 layout (docs/DESIGN.md §4).

The rows are the reference example's: make_classification(n_samples=1000, n_features=20,
n_classes=2, random_state=42) split by train_test_split(test_size=0.3, random_state=42).

Usage: make_seed_data.py [OUTPUT]   (default datasets/seed_classification.h5)
"""
import os
import sys

import h5py
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "datasets/seed_classification.h5"
    X, y = make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=42)
    # docs/DESIGN.md §4 has converters shuffle the rows once; train_test_split has already done so.
    # Shuffling again would change which rows form validation_split's last 20% and break
    # the match with the Keras/PyTorch reference, which takes those same rows.
    splits = {"train": (Xtr, ytr), "test": (Xte, yte)}
    d = os.path.dirname(out)
    if d:
        os.makedirs(d, exist_ok=True)
    # No timestamps in the object headers, so the same rows always give the same bytes.
    with h5py.File(out, "w") as f:
        for name, (x, lab) in splits.items():
            g = f.create_group(name, track_order=False)
            g.create_dataset("x", data=np.ascontiguousarray(x, dtype="<f4"), track_times=False)
            g.create_dataset("y", data=np.ascontiguousarray(lab, dtype="<i4"), track_times=False)
    print(f"{out}: train {Xtr.shape[0]} rows, test {Xte.shape[0]} rows, {X.shape[1]} features")


if __name__ == "__main__":
    main()
