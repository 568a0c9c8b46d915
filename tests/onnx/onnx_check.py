#!/usr/bin/python3
"""The Python side of the ONNX export test (tests/mpi/test_onnx_export.sh).

usage: onnx_check.py prepare JOBS.json RESULTS N NAME=MODEL.onnx,DATA.h5,DATASET ...
         runs onnx.checker (full check, with shape inference) on every model
         and checks its opset, input and output; writes the first N rows of
         each DATASET as raw NAME.in.bin beside the model and an ONNX Runtime
         job list (tests/onnx/run_ort.js) to JOBS.json. One line per model
         goes to RESULTS: "NAME checker ok" or "NAME checker FAILED: why".
       onnx_check.py compare RESULTS TOL N NAME=MODEL.onnx,REFERENCE ...
         compares ONNX Runtime's NAME.out.bin (the graph as written) and
         NAME.out.opt.bin (after ONNX Runtime's graph optimizations) with the
         reference predictions (an HDF5 file with /predictions, or raw
         float32): the first N rows, every value within TOL. Appends
         "NAME ort[ optimized] ok ..." or "... FAILED: ..." to RESULTS.
"""
import itertools
import json
import os
import sys

import h5py
import numpy as np


def parse(specs):
    for spec in specs:
        name, rest = spec.split("=", 1)
        yield name, rest.split(",")


def check_model(path):
    """Raises on anything onnx.checker or the contract finds wrong."""
    import onnx  # imported here: `compare` needs only numpy
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}
    if opset.get("", 0) < 17:
        raise ValueError(f"opset {opset.get('', 0)} < 17")
    ins = [i.name for i in model.graph.input]
    outs = [o.name for o in model.graph.output]
    if ins != ["input"] or outs != ["predictions"]:
        raise ValueError(f"inputs {ins}, outputs {outs}")
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dim0.dim_param != "N":
        raise ValueError("the batch dimension is not symbolic")
    return model


def prepare(jobs_path, results, n, specs):
    jobs = []
    with open(results, "a") as out:
        for name, (model_path, data, dataset) in parse(specs):
            try:
                check_model(model_path)
                out.write(f"{name} checker ok\n")
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                out.write(f"{name} checker FAILED: {str(e).splitlines()[0]}\n")
            with h5py.File(data, "r") as f:
                x = f[dataset][:n]
            # int32 is token ids; compact features (uint8 pixels...) go in as
            # floats in the file's units, which the graph scales itself.
            dtype = "int32" if x.dtype.kind == "i" and x.dtype.itemsize == 4 else "float32"
            x = x.astype(np.int32 if dtype == "int32" else np.float32)
            base = os.path.splitext(model_path)[0]
            x.tofile(base + ".in.bin")
            jobs.append({"model": model_path, "input": base + ".in.bin", "dtype": dtype,
                         "shape": list(x.shape), "output": base + ".out.bin"})
    with open(jobs_path, "w") as f:
        json.dump(jobs, f)


def load_reference(path):
    if path.endswith(".h5"):
        with h5py.File(path, "r") as f:
            return f["/predictions"][:].astype(np.float32)
    return np.fromfile(path, dtype=np.float32)


def compare(results, tol, n, specs):
    with open(results, "a") as out:
        for (name, (model_path, ref_path)), (what, suffix) in itertools.product(
                parse(specs), (("ort", ".out.bin"), ("ort optimized", ".out.opt.bin"))):
            base = os.path.splitext(model_path)[0]
            try:
                got = np.fromfile(base + suffix, dtype=np.float32)
                ref = load_reference(ref_path).reshape(-1)[: got.size]
                if got.size == 0 or ref.size != got.size or got.size % n:
                    raise ValueError(f"{got.size} values from ONNX Runtime, {ref.size} "
                                     f"in the reference")
                diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
                if not np.all(np.isfinite(got)) or not diff <= tol:
                    raise ValueError(f"max |difference| {diff:.3g} > {tol:g}")
                out.write(f"{name} {what} ok: {n} rows, {got.size // n} values each, "
                          f"max |difference| {diff:.2g}\n")
            except Exception as e:  # noqa: BLE001
                out.write(f"{name} {what} FAILED: {e}\n")


def main():
    cmd = sys.argv[1]
    if cmd == "prepare":
        prepare(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    elif cmd == "compare":
        compare(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
