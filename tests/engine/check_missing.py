"""Checks `annbatch iterate --emit index+colsum` outputs over the stores of
make_missing_data.py against the arrays zarr-python / numpy see.

Usage: check_missing.py EXPECTED.npz NAME KIND NROWS BS OUTPUT...
Each OUTPUT holds one epoch: every line's tokens i:s must give s = the sum of
row i's values, each weighted by its column + 1, summed in stored order in
double as the C side does (NaN must come out NaN, +-inf the same infinity);
every row of range(NROWS) exactly once, in batches of BS (the last may be
short). An OUTPUT whose name ends in .seq must list the rows in order.
"""
import math
import sys

import numpy as np


def want_sums(exp, name, kind, n):
    sums = []
    if kind == "dense":
        x = exp[name]
        x = x.reshape(x.shape[0], -1)
        for i in range(n):
            s = 0.0
            for k, v in enumerate(x[i]):
                s += float(v) * (k + 1)
            sums.append(s)
    else:
        data, indices, indptr = exp[name + ".data"], exp[name + ".indices"], exp[name + ".indptr"]
        for i in range(n):
            s = 0.0
            for k in range(int(indptr[i]), int(indptr[i + 1])):
                s += float(data[k]) * (float(indices[k]) + 1)
            sums.append(s)
    return sums


def same(got, want):
    if math.isnan(want):
        return math.isnan(got)
    return got == want  # exact, and inf == inf of the same sign only


def main():
    exp = np.load(sys.argv[1])
    name, kind, n, bs = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    want = want_sums(exp, name, kind, n)
    special = sum(1 for w in want if not math.isfinite(w))
    errors = []
    for path in sys.argv[6:]:
        rows, sizes = [], []
        for ln, line in enumerate(open(path), 1):
            toks = line.split()
            sizes.append(len(toks))
            for t in toks:
                i, s = t.split(":")
                i, s = int(i), float(s)
                rows.append(i)
                if not 0 <= i < n:
                    errors.append(f"{path}:{ln}: row {i} out of range")
                elif not same(s, want[i]):
                    errors.append(f"{path}:{ln}: row {i}: got {s!r}, want {want[i]!r}")
        if not rows:
            errors.append(f"{path}: no rows")
        elif sorted(rows) != list(range(n)):
            errors.append(f"{path}: rows are not every row of range({n}) exactly once")
        if sizes and (any(s != bs for s in sizes[:-1]) or not 0 < sizes[-1] <= bs):
            errors.append(f"{path}: batch sizes {sorted(set(sizes))}, want {bs}")
        if path.endswith(".seq") and rows != list(range(n)):
            errors.append(f"{path}: sequential output out of order")
    if errors:
        print(f"{name}: {len(errors)} errors", file=sys.stderr)
        for e in errors[:10]:
            print(e, file=sys.stderr)
        sys.exit(1)
    print(f"{name}: {len(sys.argv) - 6} outputs, {n} rows each ({special} with a NaN or inf sum) ok")


main()
