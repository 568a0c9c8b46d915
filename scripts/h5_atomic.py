"""h5_atomic.py - the converters' atomic write of dptrain's HDF5 layout
(make_fmnist_data.py, make_fortunes.sh): a failed write never leaves a partial
file under the output's name, nor replaces a good one."""
import os
import tempfile


class WriteError(Exception):
    """Why the output could not be written: 'cannot write: <reason>'."""


def write_splits(out, splits):
    """Writes each (name, (x, y)) of splits as /name/x and /name/y to a temporary
    file next to OUT, fsyncs it and renames it into place, then fsyncs the
    directory. On failure raises WriteError; the temporary file is removed and
    OUT is untouched."""
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
                g.create_dataset("x", data=x, track_times=False)
                g.create_dataset("y", data=y, track_times=False)
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
