"""Checks `annbatch iterate` output against the expected rows.

Usage: check_iterate.py MODE EXPECTED.npz OUTPUT [args]
  csr-rowsum   every line's i:s tokens match row sums of the CSR rows
  dense-rowsum KEY  same for a dense array in the npz
  csr-colsum, dense-colsum KEY  the same for --emit index+colsum: each value
               weighted by its column + 1
  once N BS [DROP]  every row of range(N) exactly once, batches of BS (last may
               be short unless DROP), for index or index+rowsum output
Row sums are compared exactly: the C side sums in stored order in double, and
so does this script.
"""
import sys

import numpy as np


def parse(path):
    batches = []
    for line in open(path):
        line = line.strip()
        if not line:
            batches.append([])
            continue
        toks = line.split(" ")
        if ":" in toks[0]:
            batches.append([(int(t.split(":")[0]), float(t.split(":")[1])) for t in toks])
        else:
            batches.append([(int(t), None) for t in toks])
    return batches


def seqsum(vals):
    s = 0.0
    for v in vals:
        s += float(v)
    return s


def main():
    mode = sys.argv[1]
    exp = np.load(sys.argv[2])
    batches = parse(sys.argv[3]) if mode in ("csr-rowsum", "dense-rowsum", "csr-colsum", "dense-colsum",
                                             "once") else None
    weighted = mode.endswith("colsum")
    if mode in ("csr-rowsum", "csr-colsum"):
        data, indptr = exp["data"], exp["indptr"]
        n = 0
        for b in batches:
            for i, s in b:
                vals = data[indptr[i]:indptr[i + 1]]
                if weighted:
                    vals = [float(v) * (float(c) + 1) for v, c in zip(vals, exp["indices"][indptr[i]:indptr[i + 1]])]
                want = seqsum(vals)
                assert s == want, f"row {i}: got {s!r}, want {want!r}"
                n += 1
        assert n > 0
    elif mode in ("dense-rowsum", "dense-colsum"):
        x = exp[sys.argv[4]]
        x = x.reshape(x.shape[0], -1)
        n = 0
        for b in batches:
            for i, s in b:
                vals = [float(v) * (k + 1) for k, v in enumerate(x[i])] if weighted else x[i]
                want = seqsum(vals)
                assert s == want, f"row {i}: got {s!r}, want {want!r}"
                n += 1
        assert n > 0
    elif mode == "once":
        n, bs = int(sys.argv[4]), int(sys.argv[5])
        drop = len(sys.argv) > 6 and sys.argv[6] == "drop"
        rows = [i for b in batches for i, _ in b]
        sizes = [len(b) for b in batches]
        assert all(s == bs for s in sizes[:-1]), f"batch sizes {sorted(set(sizes))}"
        if drop:
            assert sizes[-1] == bs
            assert len(rows) == n // bs * bs, (len(rows), n)
            assert len(set(rows)) == len(rows) and set(rows) <= set(range(n))
        else:
            assert 0 < sizes[-1] <= bs
            assert sorted(rows) == list(range(n)), "rows are not every row exactly once"
    elif mode == "obs":
        # lines of i=ct;n;maybe tokens for the grouped store
        n = 0
        for line in open(sys.argv[3]):
            for tok in line.split():
                i, vals = tok.split("=")
                i = int(i)
                ct, num, maybe = vals.split(";")
                want_ct = 0 if i < 200 else 1 if i < 350 else 2
                assert int(ct) == want_ct, (i, ct)
                assert float(num) == 2 * i, (i, num)
                if i % 7 == 0:
                    assert maybe == "nan", (i, maybe)
                else:
                    assert float(maybe) == i, (i, maybe)
                n += 1
        assert n == 600, n
    elif mode == "class":
        # every batch from one class; total rows; allowed classes
        total, allowed = int(sys.argv[4]), set(int(x) for x in sys.argv[5].split(","))
        rows = 0
        seen = set()
        for line in open(sys.argv[3]):
            toks = line.split()
            codes = set()
            for tok in toks:
                i, vals = tok.split("=")
                code = int(vals.split(";")[0])
                want = 0 if int(i) < 200 else 1 if int(i) < 350 else 2
                assert code == want, (i, code)
                codes.add(code)
            assert len(codes) == 1, f"batch mixes classes {codes}"
            seen |= codes
            rows += len(toks)
        assert rows == total, (rows, total)
        assert seen == allowed, (seen, allowed)
    else:
        raise SystemExit("unknown mode " + mode)


main()
