"""h5_atomic.py - the converters' atomic write of dptrain's HDF5 layout
(make_fmnist_data.py, make_fortunes.sh): a failed write never leaves a partial
file under the output's name, nor replaces a good one. Datasets are contiguous,
or chunked by rows and deflate-compressed (--chunk-rows, --compress)."""
import os
import tempfile


# Rows per chunk when --compress is given without --chunk-rows (capped at a
# split's rows): small enough that reading a batch's scattered rows
# decompresses little beyond them.
DEFAULT_CHUNK_ROWS = 64


class WriteError(Exception):
    """Why the output could not be written: 'cannot write: <reason>'."""


class StorageError(Exception):
    """A --chunk-rows or --compress value that cannot be used: (option, what)."""

    def __init__(self, option, what):
        super().__init__(f"{option}: {what}")


def parse_storage(chunk_rows, compress):
    """The option strings (None when absent) as (chunk_rows, level) integers or
    None; raises StorageError naming the option."""
    out = []
    for opt, text, lo, hi, want in (("--chunk-rows", chunk_rows, 1, None, "a row count >= 1"),
                                    ("--compress", compress, 0, 9, "a deflate level 0 to 9")):
        if text is None:
            out.append(None)
            continue
        try:
            v = int(text, 10)
        except ValueError:
            raise StorageError(opt, f"expected {want}, got '{text}'") from None
        if v < lo or (hi is not None and v > hi):
            raise StorageError(opt, f"expected {want}, got {v}")
        out.append(v)
    return tuple(out)


def check_storage(splits, chunk_rows, compress):
    """Raises StorageError when --chunk-rows exceeds a split's rows (a chunk
    larger than its dataset)."""
    if chunk_rows is None:
        return
    for name, (x, _) in splits:
        if chunk_rows > x.shape[0]:
            raise StorageError("--chunk-rows", f"{chunk_rows} rows per chunk, but /{name} has "
                                               f"only {x.shape[0]} rows; use at most that")


def _layout(a, chunk_rows, compress):
    """h5py create_dataset keywords for array a: contiguous, or chunks of whole
    rows, deflated (with shuffle, which groups the bytes of multi-byte values)
    when compress is a level."""
    if chunk_rows is None and compress is None:
        return {}
    rows = chunk_rows if chunk_rows is not None else min(DEFAULT_CHUNK_ROWS, a.shape[0])
    kw = {"chunks": (max(1, rows),) + tuple(a.shape[1:])}
    if compress is not None:
        kw.update(compression="gzip", compression_opts=compress, shuffle=a.dtype.itemsize > 1)
    return kw


def _label_layout(y):
    """Class ids [N] in one deflated chunk: a few kilobytes instead of 4 bytes a
    row, kept whole in the reader's chunk cache however the rows are read."""
    return {"chunks": (max(1, y.shape[0]),), "compression": "gzip", "compression_opts": 9,
            "shuffle": True}


def write_splits(out, splits, chunk_rows=None, compress=None, pack_labels=False):
    """Writes each (name, (x, y)) of splits as /name/x and /name/y to a temporary
    file next to OUT, fsyncs it and renames it into place, then fsyncs the
    directory. chunk_rows and compress (checked by check_storage) lay out every
    dataset; without them, pack_labels stores class ids y [N] in one deflated
    chunk. On failure raises WriteError; the temporary file is removed and OUT
    is untouched."""
    import h5py

    d = os.path.dirname(out) or "."
    try:
        os.makedirs(d, exist_ok=True)
        # Ends in .h5 so the gitignore pattern for datasets/*.h5 covers a leftover.
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp.h5",
                                   dir=d)
        os.close(fd)
    except OSError as e:
        raise WriteError(f"cannot write: {e.strerror or e}") from None
    try:
        # No timestamps in the object headers: the same input gives the same bytes.
        with h5py.File(tmp, "w") as f:
            for name, (x, y) in splits:
                g = f.create_group(name, track_order=False)
                g.create_dataset("x", data=x, track_times=False,
                                 **_layout(x, chunk_rows, compress))
                packed = pack_labels and y.ndim == 1 and chunk_rows is None and compress is None
                g.create_dataset("y", data=y, track_times=False,
                                 **(_label_layout(y) if packed and y.size else
                                    _layout(y, chunk_rows, compress)))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
        tmp = None
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except (OSError, ValueError, RuntimeError) as e:
        raise WriteError(f"cannot write: {getattr(e, 'strerror', None) or e}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
