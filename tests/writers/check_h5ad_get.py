#!/usr/bin/python3
"""check_h5ad_get.py ANNBATCH FILE...: `annbatch inspect` and `annbatch get`
on .h5ad files against python3-anndata 0.8 reading the same files.

For each file: inspect --json gives anndata's shape, X kind and dtype and its
obs and var column names; get X --dense (whole and a row range) gives the
bytes of X.toarray(); get obs/_index and var/_index give the names; every obs
column gives what its kind gives for a zarr store: the raw little-endian
values of a numeric column, the labels of a categorical (--labels, null where
missing) and its codes without, JSON strings, and JSON values with null where
a nullable value is missing.
"""
import json
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ab = sys.argv[1]


def run(*args):
    p = subprocess.run([ab, *args], capture_output=True)
    assert p.returncode == 0, (args, p.stderr.decode())
    return p.stdout


def check_file(path):
    a = anndata.read_h5ad(path)
    doc = json.loads(run("inspect", path, "--json"))
    s = doc["root"]["anndata"]
    assert doc["format"] == "h5ad", doc
    assert (s["n_obs"], s["n_vars"]) == a.shape, (s, a.shape)
    dense_x = a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)
    assert s["x_kind"] == ("csr_matrix" if sp.issparse(a.X) else "dense"), s["x_kind"]
    assert s["x_dtype"] == str(dense_x.dtype), (s["x_dtype"], dense_x.dtype)
    assert [c["name"] for c in s["obs_columns"]] == list(a.obs.columns), s["obs_columns"]
    # a hand-made pre-0.8 frame has no _index attribute: anndata 0.8 then
    # shows its "_index" dataset as a column too, we take it as the index
    assert s["var_columns"] == [c for c in a.var.columns if c != "_index"], s["var_columns"]
    le = dense_x.astype(dense_x.dtype.newbyteorder("<"))
    assert run("get", path, "X", "--dense") == le.tobytes(), "X differs"
    lo, hi = a.n_obs // 3, a.n_obs // 3 + 17
    assert run("get", path, "X", "--dense", "--rows", "%d:%d" % (lo, hi)) == le[lo:hi].tobytes()
    assert json.loads(run("get", path, "obs/_index")) == list(a.obs_names)
    names = a.var["_index"] if "_index" in a.var.columns else a.var_names
    assert json.loads(run("get", path, "var/_index")) == list(names)
    for name in a.obs.columns:
        col = a.obs[name]
        node = "obs/" + name
        if isinstance(col.dtype, pd.CategoricalDtype):
            want = [None if pd.isna(v) else str(v) for v in col]
            assert json.loads(run("get", path, node, "--labels")) == want, name
            codes = np.frombuffer(run("get", path, node), dtype=col.cat.codes.dtype)
            assert (codes == col.cat.codes.to_numpy()).all(), name
        elif col.dtype == object:
            assert json.loads(run("get", path, node)) == list(col), name
        elif isinstance(col.dtype, (pd.Int64Dtype, pd.BooleanDtype)) or str(col.dtype) in ("Int64", "boolean"):
            want = [None if pd.isna(v) else (bool(v) if str(col.dtype) == "boolean" else int(v)) for v in col]
            assert json.loads(run("get", path, node)) == want, name
        else:
            v = col.to_numpy()
            got = np.frombuffer(run("get", path, node), dtype=v.dtype.newbyteorder("<"))
            assert np.array_equal(got, v), name


for f in sys.argv[2:]:
    check_file(f)
print("checked", len(sys.argv) - 2, "files")
