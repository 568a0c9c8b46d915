#!/usr/bin/python3
"""Converts Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files,
gzip-compressed) to dptrain's HDF5 layout (docs/DESIGN.md §4):

  /train/x uint8   [60000, 1, 28, 28] raw pixels 0..255, rows shuffled once
  /train/y int32   [60000] class ids 0..9, in one deflated chunk
  /test/x  uint8   [10000, 1, 28, 28], rows in the package's order
  /test/y  int32   [10000], in one deflated chunk

The configs read the pixels with `data.scale: 1/255`, which gives exactly the
floats of --dtype float32 (pixel / 255 in float32), in a file a quarter the
size of the float32 one.

Usage: make_fmnist_data.py [--src DIR] [--out PATH] [--limit N] [--dtype uint8|float32]
                           [--chunk-rows N] [--compress LEVEL]

--limit N keeps the first N training rows and the first max(1, N // 6) test rows of
the source (the training rows are then shuffled), for small runs and tests.
--dtype float32 writes the older layout: x as float32 pixel / 255 in [0, 1], and
contiguous labels (the config then needs no scale).
--chunk-rows N stores every dataset in chunks of N rows (N at most the rows of
each split); --compress LEVEL deflates the chunks at level 0..9 (with chunks of
min(64, rows) rows unless --chunk-rows says otherwise).

Errors, bad options included, are one line `make_fmnist_data: error: <where>:
<what>` on stderr and exit status 1; the output file is written to a temporary name and renamed into place,
so a failed run never leaves a partial file and never replaces a good one.
"""
import argparse
import gzip
import os
import struct
import sys
import zlib

from h5_atomic import StorageError, WriteError, check_storage, parse_storage, write_splits

PROG = "make_fmnist_data"
SRC = "/usr/share/datasets/fashion-mnist"
OUT = "datasets/fashion_mnist.h5"
# A fixed seed, so every run writes the same rows in the same order and
# validation_split's tail is the same random sample on every machine.
SHUFFLE_SEED = 12345
ROWS, COLS, CLASSES = 28, 28, 10
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


class ConvertError(Exception):
    """A problem with one named file; printed as `<file>: <what>`."""

    def __init__(self, where, what):
        super().__init__(f"{where}: {what}")


def read_gzip(path):
    """The whole decompressed contents of PATH, or ConvertError saying why not."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConvertError(path, "no such file (the Debian package dataset-fashion-mnist "
                                 "installs it; scripts/make_fmnist.sh does so)") from None
    except EOFError:
        # gzip says "Compressed file ended before the end-of-stream marker was reached".
        raise ConvertError(path, "corrupt gzip: the compressed stream ends early") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise ConvertError(path, f"corrupt gzip: {e}") from None
    except OSError as e:
        raise ConvertError(path, e.strerror or str(e)) from None


def read_idx(path, magic, dims_expected):
    """Parses an IDX file: a big-endian u32 magic (0x0000 0x08=uint8 ndim), ndim
    big-endian u32 sizes, then the uint8 data. Returns (data bytes, sizes)."""
    b = read_gzip(path)
    if len(b) < 4:
        raise ConvertError(path, f"truncated: {len(b)} bytes, too short for the IDX header")
    (got,) = struct.unpack(">I", b[:4])
    if got != magic:
        raise ConvertError(path, f"bad magic 0x{got:08x}, expected 0x{magic:08x} "
                                 f"(IDX uint8 with {magic & 0xff} dimension(s))")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(b) < header:
        raise ConvertError(path, f"truncated: {len(b)} bytes, the IDX header needs {header}")
    sizes = struct.unpack(f">{ndim}I", b[4:header])
    for i, (size, want) in enumerate(zip(sizes, dims_expected)):
        if want is not None and size != want:
            raise ConvertError(path, f"dimension {i} is {size}, expected {want} "
                                     f"(Fashion-MNIST images are {ROWS}x{COLS})")
    expect = 1
    for s in sizes:
        expect *= s
    got_bytes = len(b) - header
    if got_bytes < expect:
        raise ConvertError(path, f"truncated: expected {expect} bytes of data, got {got_bytes}")
    if got_bytes > expect:
        raise ConvertError(path, f"{got_bytes - expect} bytes after the {expect} bytes of data "
                                 "the header promises")
    return b[header:], sizes


def load_split(src, split, limit):
    """One split's images uint8 [N, 28, 28] and labels uint8 [N], checked."""
    import numpy as np

    img_path, lab_path = (os.path.join(src, n) for n in FILES[split])
    img, isz = read_idx(img_path, IMAGES_MAGIC, (None, ROWS, COLS))
    lab, lsz = read_idx(lab_path, LABELS_MAGIC, (None,))
    if isz[0] != lsz[0]:
        raise ConvertError(lab_path, f"{lsz[0]} labels for the {isz[0]} images "
                                     f"of {os.path.basename(img_path)}")
    x = np.frombuffer(img, np.uint8).reshape(isz)
    y = np.frombuffer(lab, np.uint8)
    if y.size and y.max() >= CLASSES:
        i = int(np.argmax(y >= CLASSES))
        raise ConvertError(lab_path, f"label {y[i]} at row {i}, expected 0..{CLASSES - 1}")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if x.shape[0] == 0:
        raise ConvertError(img_path, "no images")
    return x, y


def to_layout(x, y, perm, dtype):
    """x uint8 [N, 28, 28] -> [N, 1, 28, 28] as uint8 pixels, or float32 / 255
    for dtype "float32"; y -> int32 [N]; rows taken in the order perm (None: as
    they are)."""
    import numpy as np

    if perm is not None:
        x, y = x[perm], y[perm]
    x = x.reshape(x.shape[0], 1, ROWS, COLS)
    if dtype == "uint8":
        return np.ascontiguousarray(x, "u1"), y.astype("<i4")
    xf = x.astype("<f4")
    xf /= np.float32(255)
    return xf, y.astype("<i4")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as the converter's one error line, status 1."""

    def error(self, message):
        raise ConvertError("usage", message)


def main():
    ap = OneLineParser(prog=PROG, description="Fashion-MNIST (dataset-fashion-mnist) "
                                                        "to dptrain's HDF5 layout")
    ap.add_argument("--src", default=SRC, help=f"directory of the IDX .gz files (default {SRC})")
    ap.add_argument("--out", default=OUT, help=f"HDF5 file to write (default {OUT})")
    ap.add_argument("--limit", type=int, metavar="N",
                    help="keep the first N training rows and N // 6 (at least 1) test rows")
    ap.add_argument("--dtype", choices=("uint8", "float32"), default="uint8",
                    help="x as raw uint8 pixels (default; train with data.scale: 1/255) or "
                         "float32 pixel / 255")
    ap.add_argument("--chunk-rows", metavar="N", help="store datasets in chunks of N rows")
    ap.add_argument("--compress", metavar="LEVEL",
                    help="deflate level 0-9 (chunks of 64 rows unless --chunk-rows)")
    a = ap.parse_args()
    if a.limit is not None and a.limit < 1:
        ap.error("--limit must be at least 1")
    try:
        chunk_rows, level = parse_storage(a.chunk_rows, a.compress)
    except StorageError as e:
        raise ConvertError(*str(e).split(": ", 1)) from None
    try:
        import h5py  # noqa: F401
        import numpy as np
    except ImportError as e:
        raise ConvertError(e.name or "python", "not importable: apt-get install python3-numpy "
                                               "python3-h5py") from None

    xtr, ytr = load_split(a.src, "train", a.limit)
    xte, yte = load_split(a.src, "test", None if a.limit is None else max(1, a.limit // 6))
    perm = np.random.default_rng(SHUFFLE_SEED).permutation(xtr.shape[0])
    splits = {"train": to_layout(xtr, ytr, perm, a.dtype),
              "test": to_layout(xte, yte, None, a.dtype)}
    del xtr, xte
    try:
        check_storage(splits.items(), chunk_rows, level)
    except StorageError as e:
        raise ConvertError(*str(e).split(": ", 1)) from None
    try:
        # The compact layout also packs the labels: with them contiguous int32,
        # as in the older layout, the file would be a quarter plus 210 KiB.
        write_splits(a.out, splits.items(), chunk_rows, level, pack_labels=a.dtype == "uint8")
    except WriteError as e:
        raise ConvertError(a.out, str(e)) from None
    print(f"{a.out}: train {splits['train'][0].shape[0]} rows (shuffled, seed {SHUFFLE_SEED}), "
          f"test {splits['test'][0].shape[0]} rows, x [1, {ROWS}, {COLS}] "
          + ("uint8 pixels 0..255" if a.dtype == "uint8" else "float32 in [0, 1]"))


if __name__ == "__main__":
    try:
        main()
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except MemoryError:
        print(f"{PROG}: error: out of memory", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
