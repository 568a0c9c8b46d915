#!/usr/bin/python3
"""check_timeline.py - checks a dptrain timeline (Chrome trace-event JSON).

usage: check_timeline.py FILE RANKS [--cats c1,c2,...] [--steps A:B] [--writer]

Exits 0 when the file is valid JSON in the trace-event object form with
metadata naming every rank's track, every complete event ('X') has the fields
a viewer needs, every rank has spans, each listed category appears on every
rank, the step spans are exactly steps A..B on every rank, async spans pair
up ('b' before its 'e'), and on every track (pid, tid) the spans nest: any two
are disjoint or one holds the other. With --writer, rank 0's checkpoint
writer track (tid 1) must have spans too. Prints one line per problem found.
"""
import argparse
import collections
import json
import sys


def ns(us):
    """The writer prints microseconds to the nanosecond: back to integers."""
    return round(float(us) * 1000)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("ranks", type=int)
    p.add_argument("--cats", default="")
    p.add_argument("--steps")
    p.add_argument("--writer", action="store_true")
    a = p.parse_args()
    problems = []
    with open(a.file, encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    named = {e["pid"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e["name"] == "thread_name"}
    spans = collections.defaultdict(list)  # (pid, tid) -> [(begin, end, name)]
    cats = collections.defaultdict(set)  # pid -> categories
    steps = collections.defaultdict(list)
    async_open = {}
    n_async = 0
    for e in events:
        ph = e.get("ph")
        if ph == "X":
            for k in ("name", "cat", "ts", "dur", "pid", "tid"):
                if k not in e:
                    problems.append(f"complete event without {k}: {e}")
            if e["dur"] < 0:
                problems.append(f"negative duration: {e}")
            b = ns(e["ts"])
            spans[(e["pid"], e["tid"])].append((b, b + ns(e["dur"]), e["name"]))
            cats[e["pid"]].add(e["cat"])
            if e["cat"] == "step":
                steps[e["pid"]].append(e["args"]["arg"])
        elif ph == "b":
            async_open[(e["pid"], e["id"])] = e
        elif ph == "e":
            b = async_open.pop((e["pid"], e["id"]), None)
            if b is None or b["name"] != e["name"] or ns(b["ts"]) > ns(e["ts"]):
                problems.append(f"async end without its begin: {e}")
            cats[e["pid"]].add(e["cat"])
            n_async += 1
        elif ph != "M":
            problems.append(f"unexpected phase {ph!r}: {e}")
    if async_open:
        problems.append(f"{len(async_open)} async spans never end")
    want = [c for c in a.cats.split(",") if c]
    for r in range(a.ranks):
        if r not in named or (r, 0) not in threads:
            problems.append(f"rank {r}: no process_name/thread_name metadata")
        if not spans[(r, 0)]:
            problems.append(f"rank {r}: no spans")
        missing = [c for c in want if c not in cats[r]]
        if missing:
            problems.append(f"rank {r}: no spans of {', '.join(missing)}")
        if a.steps:
            lo, hi = (int(v) for v in a.steps.split(":"))
            if sorted(steps[r]) != list(range(lo, hi + 1)):
                problems.append(f"rank {r}: steps {sorted(steps[r])}, expected {lo} to {hi}")
    if a.writer and not spans[(0, 1)]:
        problems.append("rank 0: no checkpoint writer spans")
    extra = {pid for pid, _ in spans} - set(range(a.ranks))
    if extra:
        problems.append(f"spans of unknown ranks {sorted(extra)}")
    nested = 0
    for track, s in spans.items():
        # Sorted by begin, longest first: a parent comes before its children.
        s.sort(key=lambda x: (x[0], -x[1]))
        stack = []
        for b, e, name in s:
            while stack and stack[-1][1] <= b:
                stack.pop()
            if stack and e > stack[-1][1]:
                problems.append(f"track {track}: '{name}' [{b}, {e}] overlaps '{stack[-1][2]}' "
                                f"[{stack[-1][0]}, {stack[-1][1]}] without nesting")
                break
            if stack:
                nested += 1
            stack.append((b, e, name))
    if nested == 0:
        problems.append("no span is nested in another: the check would prove nothing")
    for msg in problems[:10]:
        print(f"check_timeline: {msg}")
    if not problems:
        print(f"check_timeline: ok: {sum(len(s) for s in spans.values())} spans on "
              f"{len(spans)} tracks, {nested} nested, {n_async} async, ranks {a.ranks}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
