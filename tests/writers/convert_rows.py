#!/usr/bin/python3
"""Inputs and checks for test_convert_rows.sh: which rows go to which dataset
of `annbatch convert`, and in which order. Truth is pandas/numpy over the
inputs as python3-anndata reads them; the collection is read through a
zarrita dump (zarrita_dump.mjs).

  convert_rows.py make OUTDIR
      grp.zarr, grp.h5ad: obs with missing values in a float column, a
      nullable integer, a nullable boolean and a categorical (anndata writes
      them); r200.zarr, r50.zarr: 200 and 50 rows, CSR; hs.zarr: 271 rows x
      4000 genes, CSR float32 (an HSMM-sized input).
  convert_rows.py order DUMP COLS INPUT...
      One dataset, converted with --no-shuffle --groupby COLS: its rows are
      the inputs' rows concatenated and sorted as pandas sorts them
      (sort_values(kind="stable", na_position="last")), values included.
  convert_rows.py sorted DUMP COLS INPUT...
      Shuffled: inside every dataset the rows are in pandas' sorted order of
      themselves, missing values last, and every input row is there once.
  convert_rows.py split DUMP (rows N | bytes B) [--ordered] INPUT...
      The collection has n = ceil(total / dataset size) datasets (size in
      rows, or in bytes of X as CSR: data + int32 indices + int64 indptr),
      of np.array_split's row counts; every input row once; with --ordered
      (a --no-shuffle run) exactly np.array_split of the concatenated rows.
"""
import math
import os
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import anndata.utils  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_convert import load_dump  # noqa: E402  (zarrita's dump, as the other writer checks read it)


def make(out):
    rng = np.random.default_rng(11)

    def grp(n, prefix):
        f = rng.integers(0, 5, n).astype(np.float64)
        f[rng.random(n) < 0.3] = np.nan
        ni = pd.array(rng.integers(-3, 4, n), dtype="Int64")
        ni[rng.random(n) < 0.3] = pd.NA
        nb = pd.array(rng.random(n) < 0.5, dtype="boolean")
        nb[rng.random(n) < 0.3] = pd.NA
        cat = pd.Categorical(rng.choice(["T", "B", "NK"], n), categories=["B", "NK", "T"])
        cat[rng.random(n) < 0.3] = np.nan
        obs = pd.DataFrame({"f": f, "ni": ni, "nb": nb, "cat": cat},
                           index=["%s_%d" % (prefix, i) for i in range(n)])
        x = rng.random((n, 6)).astype(np.float32)
        return anndata.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["g%d" % i for i in range(6)]))

    grp(300, "z").write_zarr(out + "/grp.zarr")
    grp(150, "h").write_h5ad(out + "/grp.h5ad")
    # the values, in one small input
    small = grp(8, "s")
    small.obs["f"] = np.array([2, np.nan, 1, np.nan, 0, 3, np.nan, 1])
    small.write_zarr(out + "/small.zarr")

    def csr(n, m, density, prefix):
        x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float32)
        x.data = np.ceil(x.data * 20).astype(np.float32)
        x.sort_indices()
        obs = pd.DataFrame({"v": rng.random(n)}, index=["%s_%d" % (prefix, i) for i in range(n)])
        return anndata.AnnData(X=x, obs=obs, var=pd.DataFrame(index=["g%d" % i for i in range(m)]))

    csr(200, 30, 0.2, "a").write_zarr(out + "/r200.zarr")
    csr(50, 30, 0.2, "b").write_zarr(out + "/r50.zarr")
    csr(271, 4000, 0.15, "hs").write_zarr(out + "/hs.zarr")


def read_input(p):
    a = anndata.read_h5ad(p) if p.endswith(".h5ad") else anndata.read_zarr(p)
    obs = a.obs.copy()
    for c in obs.columns:
        # convert writes nullable integer/boolean columns as float64, NaN = missing
        if str(obs[c].dtype) in ("Int64", "Int32", "boolean"):
            obs[c] = obs[c].astype("float64")
    return a, obs


def datasets(arrays):
    """The collection's datasets in order, each as an obs DataFrame."""
    out = []
    k = 0
    while "dataset_%d/obs/_index" % k in arrays:
        g = "dataset_%d/obs/" % k
        cols = {}
        for path in arrays:
            if not path.startswith(g) or path == g + "_index":
                continue
            rest = path[len(g):]
            if rest.endswith("/codes"):
                name = rest[: -len("/codes")]
                cats = arrays[g + name + "/categories"]
                codes = arrays[path].astype(np.int64)
                cols[name] = pd.Categorical.from_codes(codes, categories=list(cats))
            elif "/" not in rest:
                cols[rest] = arrays[path]
        out.append(pd.DataFrame(cols, index=list(arrays[g + "_index"])))
        k += 1
    assert "dataset_%d/X" % k not in arrays and not any(p.startswith("dataset_%d/" % k) for p in arrays)
    return out


def same(a, b, what):
    if isinstance(a.dtype, pd.CategoricalDtype) or a.dtype == object:
        ok = list(a.astype(object).where(a.notna(), None)) == list(b.astype(object).where(b.notna(), None))
    else:
        ok = np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)
    assert ok, "%s: got %s, expected %s" % (what, list(a)[:20], list(b)[:20])


def concat(inputs):
    return pd.concat([read_input(p)[1] for p in inputs])


def main():
    mode = sys.argv[1]
    if mode == "make":
        make(sys.argv[2])
        return
    dump = sys.argv[2]
    ds = datasets(load_dump(dump))
    if mode in ("order", "sorted"):
        cols = sys.argv[3].split(",")
        want = concat(sys.argv[4:])
        if mode == "order":
            assert len(ds) == 1, "expected one dataset, got %d" % len(ds)
            got = ds[0]
            exp = want.sort_values(cols, kind="stable", na_position="last")
            assert list(got.index) == list(exp.index), "row order: got %s, expected %s" % (
                list(got.index)[:20], list(exp.index)[:20])
            for c in want.columns:
                same(got[c], exp[c], "column " + c)
        else:
            names = []
            for k, got in enumerate(ds):
                exp = got.sort_values(cols, kind="stable", na_position="last")
                for c in cols:
                    same(got[c], exp[c], "dataset_%d column %s" % (k, c))
                for c in want.columns:
                    same(got[c], want.loc[got.index, c], "dataset_%d column %s vs input" % (k, c))
                names += list(got.index)
            assert sorted(names) == sorted(want.index), "not every input row exactly once"
        print("ok: %d dataset(s), %d rows" % (len(ds), sum(len(d) for d in ds)))
        return
    assert mode == "split"
    unit, size = sys.argv[3], float(sys.argv[4])
    rest = sys.argv[5:]
    ordered = rest and rest[0] == "--ordered"
    inputs = rest[1:] if ordered else rest
    names = []
    nbytes = 0
    for p in inputs:
        a, obs = read_input(p)
        names += list(obs.index)
        x = a.X
        if unit == "bytes":
            assert sp.issparse(x), "split by bytes: the sparse measure only"
            nbytes += x.nnz * (x.dtype.itemsize + 4) + 8 * a.n_obs
    # convert makes repeated obs names unique over the inputs in input order,
    # as anndata's obs_names_make_unique does on their concatenation
    names = list(anndata.utils.make_index_unique(pd.Index(names)))
    total = len(names)
    n = math.ceil(total / size) if unit == "rows" else math.ceil(nbytes / size)
    n = max(1, min(n, total))
    parts = np.array_split(np.array(names, dtype=object), n)
    got = [list(d.index) for d in ds]
    assert [len(g) for g in got] == [len(p) for p in parts], "dataset rows: got %s, expected %s" % (
        [len(g) for g in got], [len(p) for p in parts])
    if ordered:
        assert got == [list(p) for p in parts], "rows differ from np.array_split of the inputs"
    flat = [r for g in got for r in g]
    assert sorted(flat) == sorted(names), "not every input row exactly once"
    print("ok: %d datasets of %s rows" % (len(got), [len(g) for g in got]))


if __name__ == "__main__":
    main()
