#!/usr/bin/python3
"""check_metrics.py - compares and checks dptrain metrics.jsonl files.

usage: check_metrics.py same GOT.jsonl WANT.jsonl
       check_metrics.py adds-up RUN.jsonl CKPT.h5 [MIN]

same: both files have the same records with the same keys, and every value
but the wall-clock ones (seconds, samples_per_s) is the same number (the
17-digit text, so the same double); on epoch records samples_per_s * seconds
(the epoch's samples) agrees to 1e-9 relative, so the speed covers all of the
epoch's steps in both.

adds-up: CKPT is the checkpoint a stopped start wrote in the middle of epoch
E = its /train epoch + 1, and RUN.jsonl the whole run after the resume. The
seconds add up across the starts: epoch E's seconds are at least the
checkpoint's epoch_seconds, and the test record's at least the checkpoint's
run_seconds plus what the resumed start spent in epochs E and after, and at
least the sum of all epochs' seconds. With MIN, the checkpoint's
epoch_seconds must be at least MIN (the stopped start was held that long).

Exits 0 when all holds, else prints one line per problem and exits 1.
"""
import json
import sys

WALL_CLOCK = {"seconds", "samples_per_s"}
EPS = 1e-9


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def same(got_path, want_path):
    got, want = records(got_path), records(want_path)
    bad = []
    if len(got) != len(want):
        bad.append(f"{len(got)} records, want {len(want)}")
    for i, (g, w) in enumerate(zip(got, want), 1):
        if list(g) != list(w):
            bad.append(f"record {i}: keys {list(g)}, want {list(w)}")
            continue
        for k in g:
            if k not in WALL_CLOCK and g[k] != w[k]:
                bad.append(f"record {i}: {k} {g[k]!r}, want {w[k]!r}")
        if g.get("samples_per_s") is not None and w.get("samples_per_s") is not None:
            ng, nw = g["samples_per_s"] * g["seconds"], w["samples_per_s"] * w["seconds"]
            if abs(ng - nw) > EPS * abs(nw):
                bad.append(f"record {i}: samples_per_s * seconds {ng}, want {nw}")
    return bad


def adds_up(run_path, ckpt_path, least="0"):
    import h5py

    with h5py.File(ckpt_path, "r") as f:
        a = f["/train"].attrs
        epoch, ep_s, run_s = int(a["epoch"]), float(a["epoch_seconds"]), float(a["run_seconds"])
    recs = records(run_path)
    epochs = [r for r in recs if r.get("loss") is not None]
    tests = [r for r in recs if r.get("test_loss") is not None]
    bad = []
    if not (0 < ep_s <= run_s and ep_s >= float(least)):
        bad.append(f"checkpoint: epoch_seconds {ep_s}, run_seconds {run_s}")
    stopped = [r for r in epochs if r["epoch"] == epoch + 1]
    if len(stopped) != 1 or len(tests) != 1:
        return bad + [f"{len(stopped)} records of epoch {epoch + 1}, {len(tests)} test records"]
    if stopped[0]["seconds"] < ep_s:
        bad.append(f"epoch {epoch + 1}: seconds {stopped[0]['seconds']} < the checkpoint's {ep_s}")
    resumed = stopped[0]["seconds"] - ep_s + sum(r["seconds"] for r in epochs if r["epoch"] > epoch + 1)
    test_s = tests[0]["seconds"]
    if test_s < run_s + resumed - EPS:
        bad.append(f"test seconds {test_s} < run_seconds {run_s} + the resumed epochs' {resumed}")
    total = sum(r["seconds"] for r in epochs)
    if test_s < total - EPS:
        bad.append(f"test seconds {test_s} < the epochs' sum {total}")
    return bad


def main():
    if sys.argv[1:2] == ["same"] and len(sys.argv) == 4:
        bad = same(*sys.argv[2:])
    elif sys.argv[1:2] == ["adds-up"] and len(sys.argv) in (4, 5):
        bad = adds_up(*sys.argv[2:])
    else:
        sys.exit(__doc__)
    for b in bad:
        print(f"check_metrics: {b}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
