#!/usr/bin/python3
"""Checks a collection written by `annbatch convert --no-shuffle` against what
python3-anndata 0.8 computes from the same inputs.

Usage:
  check_convert_names.py concat OUTDUMP [--make-var-unique] [--var-subset FILE]
                         [--dtype DT] INPUT...
      The datasets, read in order, hold anndata.concat(inputs, join="outer")
      with obs_names_make_unique() applied (and var_names_make_unique() on
      each input first with --make-var-unique): the same obs names in the same
      order, the var names in order of first appearance (or those of FILE,
      read as UTF-8 with a BOM and spaces around each line dropped), X equal
      to the concatenation's (reindexed by var name; 0 for a gene an input
      lacks) and of the dtype concat gives (or DT).
  check_convert_names.py varcols OUTDUMP INPUT...
      Every dataset's var holds the columns anndata.concat(join="inner",
      merge="same") keeps (the ones every input has, equal on the shared genes),
      in the first input's order, with every gene's value from the inputs that
      have it (categoricals with their categories).
  check_convert_names.py obsappend OUTDUMP N_OLD NEW
      The datasets after the first N_OLD were added from NEW with --no-shuffle:
      their obs names are those obs_names_make_unique gives NEW's rows in the
      concatenation of the collection's rows (dataset order) and NEW's.
  check_convert_names.py append OUTDUMP STDERR BASE NEW
      The collection made of BASE, with NEW added by --drop-new-genes: the
      datasets of NEW rows hold NEW's X in BASE's var space and dtype, and
      STDERR has the note with the genes and values anndata finds dropped
      (STDERR "-": no note is checked).

INPUT is an .h5ad file or a zarr v2 store; OUTDUMP is a zarrita dump.
"""
import os
import re
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_convert import dense_x, load_dump, obs_from_dump  # noqa: E402


def read(path):
    return anndata.read_h5ad(path) if path.endswith(".h5ad") else anndata.read_zarr(path)


def dense(a):
    return a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)


def x_dtype(manifest_dir, ds):
    with open(os.path.join(manifest_dir, "manifest.tsv")) as f:
        for line in f:
            path, dt, _ = line.rstrip("\n").split("\t")
            if path in (ds + "/X/data", ds + "/X"):
                return np.dtype({"bool": "u1"}.get(dt, dt))
    raise AssertionError("%s: no X" % ds)


def datasets(out):
    return sorted({k.split("/")[0] for k in out if k.startswith("dataset_")},
                  key=lambda s: int(s.split("_")[1]))


def read_out(outdump):
    out = load_dump(outdump)
    rows = []
    for ds in datasets(out):
        var = [str(v) for v in out[ds + "/var/_index"]]
        names, cols = obs_from_dump(out, ds + "/")
        x = dense_x(out, ds + "/", len(names), len(var))
        rows.append((ds, var, names, x, cols["src_path"], x_dtype(outdump, ds)))
    return rows


def concat(args):
    outdump = args.pop(0)
    make_unique = False
    subset = None
    want_dtype = None
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--make-var-unique":
            make_unique = True
        elif opt == "--var-subset":
            with open(args.pop(0), encoding="utf-8-sig") as f:
                subset = [l.strip() for l in f if l.strip()]
        elif opt == "--dtype":
            want_dtype = np.dtype(args.pop(0))
    ins = []
    for p in args:
        a = read(p)
        if make_unique:
            a.var_names_make_unique()
        ins.append(a)
    cat = anndata.concat(ins, join="outer")
    cat.obs_names_make_unique()
    if want_dtype is None:
        want_dtype = cat.X.dtype
    order = []
    for a in ins:
        order += [v for v in a.var_names if v not in order]
    var_space = subset if subset is not None else order
    assert subset is not None or sorted(order) == sorted(cat.var_names)
    pos = {v: i for i, v in enumerate(cat.var_names)}
    xcat = dense(cat).astype(np.float64)
    expect = np.zeros((cat.n_obs, len(var_space)))
    for j, v in enumerate(var_space):
        if v in pos:
            expect[:, j] = xcat[:, pos[v]]
    names, xs = [], []
    for ds, var, nm, x, _, dt in read_out(outdump):
        assert var == var_space, "%s: var names %r, expected %r" % (ds, var[:10], var_space[:10])
        assert dt == want_dtype, "%s: X dtype %s, anndata's concat gives %s" % (ds, dt, want_dtype)
        names += nm
        xs.append(x)
    want_names = list(cat.obs_names)
    assert names == want_names, "obs names differ: %r vs anndata %r" % (
        [(a, b) for a, b in zip(names, want_names) if a != b][:5], len(want_names))
    x = np.vstack(xs)
    if not np.array_equal(x, expect):
        bad = np.argwhere(x != expect)[:5]
        raise AssertionError("X differs from anndata's concat at %s" % bad.tolist())
    print("ok: %d rows, %d vars, X %s" % (len(names), len(var_space), want_dtype))


def append(args):
    outdump, errfile, base_p, new_p = args
    base, new = read(base_p), read(new_p)
    coll = list(base.var_names)
    lost = [v for v in new.var_names if v not in set(coll)]
    xn = dense(new)
    lost_values = int(np.count_nonzero(xn[:, [list(new.var_names).index(v) for v in lost]]))
    if errfile != "-":
        err = open(errfile).read()
        m = re.search(r"dropped (\d+) genes not in the collection, (\d+) non-zero values", err)
        assert m, "no --drop-new-genes note in: %r" % err
        assert (int(m.group(1)), int(m.group(2))) == (len(lost), lost_values), (
            "note says %s genes/%s values, anndata finds %d/%d" % (m.group(1), m.group(2),
                                                                  len(lost), lost_values))
    want = new[:, [v for v in coll if v in set(new.var_names)]]
    expect = np.zeros((new.n_obs, len(coll)))
    for j, v in enumerate(coll):
        if v in set(new.var_names):
            expect[:, j] = dense(want[:, v]).ravel()
    got = {}
    n_base = 0
    for ds, var, nm, x, src, dt in read_out(outdump):
        assert var == coll, "%s: var space is not the collection's" % ds
        assert dt == base.X.dtype, "%s: X dtype %s, the collection's is %s" % (ds, dt, base.X.dtype)
        for r, n in enumerate(nm):
            if src[r] == new_p:
                got[n] = x[r]
            else:
                n_base += 1
    assert n_base == base.n_obs and sorted(got) == sorted(new.obs_names), "rows missing"
    for i, n in enumerate(new.obs_names):
        assert np.array_equal(got[n], expect[i]), "row %s differs from anndata's" % n
    print("ok: %d rows added, %d genes and %d values dropped" % (len(got), len(lost), lost_values))


def varcols(args):
    outdump = args.pop(0)
    ins = [read(p) for p in args]
    keep = list(anndata.concat(ins, join="inner", merge="same").var.columns)
    keep = [c for c in ins[0].var.columns if c in keep]
    out = load_dump(outdump)
    n = 0
    for ds in datasets(out):
        var = [str(v) for v in out[ds + "/var/_index"]]
        cols = {}
        for key in out:
            rest = key[len(ds + "/var/"):] if key.startswith(ds + "/var/") else None
            if rest is None or rest == "_index":
                continue
            if rest.endswith("/codes"):
                c = rest[:-len("/codes")]
                cats = [str(x) for x in out[ds + "/var/" + c + "/categories"]]
                cols[c] = ([cats[i] if i >= 0 else None for i in out[key].astype(np.int64)], cats)
            elif "/" not in rest:
                cols[rest] = (list(out[key]), None)
        assert sorted(cols) == sorted(keep), "%s: var columns %s, anndata keeps %s" % (
            ds, sorted(cols), sorted(keep))
        for c in keep:
            got, cats = cols[c]
            for a in ins:
                s = a.var[c]
                if str(s.dtype) == "category":
                    assert cats == [str(x) for x in s.cat.categories], (ds, c, cats)
                for g, want in zip(a.var_names, s):
                    v = got[var.index(g)]
                    if isinstance(want, str):
                        ok = str(v) == want
                    else:
                        ok = float(v) == float(want) and np.asarray(v).dtype == s.dtype
                    assert ok, "%s: var %s of %s is %r, the input has %r" % (ds, c, g, v, want)
        n += 1
    print("ok: %d datasets, var columns %s" % (n, keep))


def obsappend(args):
    import pandas as pd
    from anndata.utils import make_index_unique
    outdump, n_old, new_p = args[0], int(args[1]), args[2]
    out = load_dump(outdump)
    names = [obs_from_dump(out, ds + "/")[0] for ds in datasets(out)]
    old = [n for ds in names[:n_old] for n in ds]
    got = [n for ds in names[n_old:] for n in ds]
    new = list(read(new_p).obs_names)
    want = [str(v) for v in make_index_unique(pd.Index(old + new))][len(old):]
    assert got == want, "added obs names %r, anndata gives %r" % (got, want)
    print("ok: %d rows added after %d, %d renamed" % (len(got), len(old),
                                                      sum(a != b for a, b in zip(got, new))))


if __name__ == "__main__":
    mode = sys.argv[1]
    {"concat": concat, "append": append, "varcols": varcols, "obsappend": obsappend}[mode](
        sys.argv[2:])
