#!/usr/bin/env python3
"""Checks of `annbatch iterate` output for test_sampling.sh.

rotate DIR N WORLD EPOCHS BATCH: files DIR/r{rank}.e{epoch} hold one batch a
  line of global row indices; per epoch the ranks' rows are disjoint, in
  [0, N), equal in number (and in batch count), and every row is served
  within any 2 consecutive epochs.
fixed FILE N WORLD RANK BATCH: the rank's rows are exactly the contiguous
  slice [rank*per, (rank+1)*per), per = N // WORLD // BATCH * BATCH.
labels FILE JSON: tokens i=label;donor carry row i's label (%XX unescaped)
  and donor.
class FILE JSON ALLOWED: every batch from one class, all classes in ALLOWED
  (comma separated labels), and every one of them drawn.
"""
import json
import sys
from urllib.parse import unquote


def rows_of(path):
    out = []
    for line in open(path):
        out.append([int(t.split("=")[0].split(":")[0]) for t in line.split()])
    return out


def rotate(d, n, world, epochs, batch):
    prev = None
    for e in range(epochs):
        cur = {}
        counts = set()
        for r in range(world):
            batches = rows_of(f"{d}/r{r}.e{e}")
            rows = [x for b in batches for x in b]
            counts.add((len(rows), len(batches)))
            assert all(len(b) == batch for b in batches[:-1]), f"epoch {e} rank {r}: batch sizes"
            for x in rows:
                assert 0 <= x < n, f"row {x} out of range"
                assert x not in cur, f"epoch {e}: row {x} served by ranks {cur[x]} and {r}"
                cur[x] = r
        assert len(counts) == 1, f"epoch {e}: unequal shares {counts}"
        assert len(cur) > 0
        if prev is not None:
            missed = [x for x in range(n) if x not in cur and x not in prev]
            assert not missed, f"epochs {e - 1},{e}: rows {missed[:10]} never served"
        prev = cur


def fixed(path, n, world, rank, batch):
    per = n // world // batch * batch
    rows = sorted(x for b in rows_of(path) for x in b)
    assert rows == list(range(rank * per, (rank + 1) * per)), f"rank {rank}: not the slice"


def labels(path, js):
    d = json.load(open(js))
    seen = 0
    for line in open(path):
        for t in line.split():
            i, v = t.split("=", 1)
            label, donor = v.split(";")
            i = int(i)
            assert unquote(label) == d["labels"][i], f"row {i}: {label!r} != {d['labels'][i]!r}"
            assert int(donor) == d["donor"][i], f"row {i}: donor {donor}"
            seen += 1
    assert seen > 0


def klass(path, js, allowed):
    lab = json.load(open(js))["labels"]
    allowed = set(unquote(a) for a in allowed.split(","))
    drawn = set()
    for line in open(path):
        cls = {lab[int(t.split("=")[0])] for t in line.split()}
        assert len(cls) == 1, f"batch mixes classes {cls}"
        drawn |= cls
    assert drawn == allowed, f"drawn {drawn} != allowed {allowed}"


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "rotate":
        rotate(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    elif a[0] == "fixed":
        fixed(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    elif a[0] == "labels":
        labels(a[1], a[2])
    elif a[0] == "class":
        klass(a[1], a[2], a[3])
    else:
        sys.exit(f"unknown check {a[0]}")
