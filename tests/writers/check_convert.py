#!/usr/bin/python3
"""Checks a converted annbatch collection against its inputs.

Usage: check_convert.py OUTDUMP [--groupby COL] [--var-subset FILE] INPUT...

OUTDUMP is what zarrita_dump.mjs wrote for the collection (every array read by
zarrita, an independent zarr v3 implementation). Each INPUT is SRC=SOURCE where
SRC is the path given to `annbatch convert` (the src_path label) and SOURCE is
either `anndata:PATH` (a zarr v2 store read by Debian's python3-anndata),
`h5ad:PATH` (an .h5ad file read by python3-anndata) or `dump:DIR` (a zarrita
dump of a v3 AnnData store). Nullable integer/boolean obs columns are compared
as float64 with NaN for missing values, as convert writes them.

Obs names repeated over the inputs (in their order) are expected renamed as
anndata's obs_names_make_unique renames them on the concatenation.

Checks: every input row is in exactly one dataset, once; its X row equals the
input row placed in the output var space by name (outer join, or the subset),
zeros elsewhere; its obs values (every written column) equal the input's;
src_path names the input; CSR indices are sorted; with --groupby, rows are
sorted by that column inside each dataset. Prints one summary line.
"""
import json
import os
import sys

import numpy as np


def load_dump(d):
    arrays = {}
    with open(os.path.join(d, "manifest.tsv")) as f:
        for line in f:
            if not line.strip():
                continue
            path, dtype, shape = line.rstrip("\n").split("\t")
            shape = tuple(int(x) for x in shape.split(",")) if shape else ()
            base = os.path.join(d, path.replace("/", "%"))
            if os.path.exists(base + ".json"):
                with open(base + ".json") as jf:
                    arrays[path] = np.array(json.load(jf), dtype=object)
            else:
                dt = {"bool": "u1"}.get(dtype, dtype)
                # the dump is little-endian, whatever the machine
                arrays[path] = np.fromfile(base + ".bin", dtype=np.dtype(dt).newbyteorder("<")).reshape(shape)
    return arrays


def dense_x(arrays, prefix, n_obs, n_vars):
    if prefix + "X/data" in arrays:
        data, ind, ptr = (arrays[prefix + "X/" + k] for k in ("data", "indices", "indptr"))
        out = np.zeros((n_obs, n_vars), dtype=np.float64)
        for r in range(n_obs):
            s, e = int(ptr[r]), int(ptr[r + 1])
            idx = ind[s:e]
            assert np.all(np.diff(idx) > 0), "%sX: row %d indices not strictly sorted" % (prefix, r)
            out[r, idx] = data[s:e]
        return out
    return arrays[prefix + "X"].astype(np.float64)


def obs_from_dump(arrays, prefix):
    cols = {}
    for key in arrays:
        if not key.startswith(prefix + "obs/"):
            continue
        rest = key[len(prefix + "obs/"):]
        if rest.endswith("/codes"):
            name = rest[:-len("/codes")]
            cats = arrays[prefix + "obs/" + name + "/categories"]
            codes = arrays[key].astype(np.int64)
            cols[name] = [None if c < 0 else str(cats[c]) for c in codes]
        elif "/" not in rest:
            cols[rest] = list(arrays[key])
    names = [str(x) for x in cols.pop("_index")]
    return names, cols


def load_input(spec):
    src, source = spec.split("=", 1)
    kind, path = source.split(":", 1)
    if kind in ("anndata", "h5ad"):
        import anndata
        a = anndata.read_zarr(path) if kind == "anndata" else anndata.read_h5ad(path)
        x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
        cols = {}
        for c in a.obs.columns:
            s = a.obs[c]
            if str(s.dtype) == "category":
                cols[c] = [None if v != v else str(v) for v in s.astype(object)]
            elif str(s.dtype) in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
                                  "UInt64", "boolean"):
                cols[c] = list(s.astype("float64").to_numpy())
            else:
                cols[c] = list(s.to_numpy())
        return src, list(a.obs_names), list(a.var_names), x.astype(np.float64), cols
    arrays = load_dump(path)
    var = [str(v) for v in arrays["var/_index"]]
    names, cols = obs_from_dump(arrays, "")
    return src, names, var, dense_x(arrays, "", len(names), len(var)), cols


def main():
    args = sys.argv[1:]
    outdump = args.pop(0)
    groupby = None
    subset = None
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--groupby":
            groupby = args.pop(0)
        elif opt == "--var-subset":
            subset = [l.strip() for l in open(args.pop(0)) if l.strip()]
    inputs = [load_input(s) for s in args]
    import pandas as pd
    from anndata.utils import make_index_unique
    every = make_index_unique(pd.Index([n for _, names, _, _, _ in inputs for n in names]))
    at = 0
    for k, (src, names, var, x, cols) in enumerate(inputs):
        inputs[k] = (src, [str(v) for v in every[at:at + len(names)]], var, x, cols)
        at += len(names)

    out = load_dump(outdump)
    datasets = sorted({k.split("/")[0] for k in out if k.startswith("dataset_")},
                      key=lambda s: int(s.split("_")[1]))
    if subset is not None:
        var_space = subset
    else:
        var_space = []
        seen = set()
        for _, _, var, _, _ in inputs:
            for v in var:
                if v not in seen:
                    seen.add(v)
                    var_space.append(v)
    expected = {}
    for src, names, var, x, cols in inputs:
        pos = {v: i for i, v in enumerate(var_space)}
        proj = np.zeros((x.shape[0], len(var_space)))
        for j, v in enumerate(var):
            if v in pos:
                proj[:, pos[v]] = x[:, j]
        for r, n in enumerate(names):
            key = (src, n)
            assert key not in expected, "duplicate input row name %r" % (key,)
            expected[key] = (proj[r], {c: cols[c][r] for c in cols})
    found = set()
    total = 0
    for ds in datasets:
        var = [str(v) for v in out[ds + "/var/_index"]]
        assert var == var_space, "%s: var names differ from the expected var space" % ds
        names, cols = obs_from_dump(out, ds + "/")
        x = dense_x(out, ds + "/", len(names), len(var))
        srcs = cols.pop("src_path")
        for r, n in enumerate(names):
            key = (srcs[r], n)
            assert key in expected, "%s row %d: %r is no input row" % (ds, r, key)
            assert key not in found, "%s row %d: %r appears twice" % (ds, r, key)
            found.add(key)
            row, ocols = expected[key]
            if not np.array_equal(x[r], row):
                bad = np.nonzero(x[r] != row)[0][:5]
                raise AssertionError("%s row %d %r: X differs at columns %s" % (ds, r, key, bad))
            for c, vals in cols.items():
                want = ocols.get(c)
                got = vals[r]
                if isinstance(want, (float, np.floating)) and isinstance(got, (float, np.floating)):
                    ok = want == got or (want != want and got != got)
                else:
                    ok = str(want) == str(got)
                assert ok, "%s row %d %r: obs %s = %r, input has %r" % (ds, r, key, c, got, want)
        if groupby:
            g = cols[groupby] if groupby != "src_path" else srcs
            # grouped: each value's rows form one contiguous run
            runs = [str(v) for i, v in enumerate(g) if i == 0 or str(v) != str(g[i - 1])]
            assert len(runs) == len(set(runs)), "%s: not grouped by %s" % (ds, groupby)
        total += len(names)
    missing = set(expected) - found
    assert not missing, "%d input rows missing, e.g. %r" % (len(missing), sorted(missing)[:3])
    print("ok: %d rows in %d datasets, %d inputs, %d vars" % (total, len(datasets), len(inputs),
                                                            len(var_space)))


if __name__ == "__main__":
    main()
