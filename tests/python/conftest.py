"""Fixtures of the annbatch_c suite: stores written by anndata 0.8 (zarr v2),
the collection `annbatch convert` makes of them (sharded zarr v3), and a
runner for `annbatch iterate`, the reference the Python route must match."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

AB_BIN = os.environ.get("AB_BIN") or os.path.join(os.environ.get("AB_TOP_BUILDDIR", "build"), "annbatch")

N_OBS, N_VARS = 1000, 60
CELL_TYPES = ["T cell", "B cell", "NK", "monocyte", "DC"]


def make_adata(seed: int, n_obs: int = N_OBS, dense: bool = False):
    import anndata

    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, N_VARS, density=0.15, format="csr", dtype=np.float32, random_state=seed)
    X.data[:] = rng.integers(1, 50, size=X.nnz).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(CELL_TYPES, size=n_obs), categories=CELL_TYPES),
            "depth": rng.normal(size=n_obs),
        },
        index=[f"c{seed}_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"g{i}" for i in range(N_VARS)])
    return anndata.AnnData(X=X.toarray() if dense else X, obs=obs, var=var)


def run_iterate(inputs, *args):
    """`annbatch iterate` lines (one list of tokens per batch)."""
    out = subprocess.run([AB_BIN, "iterate", *map(str, inputs), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"annbatch iterate failed: {out.stderr.strip()}")
    return [line.split() for line in out.stdout.splitlines()]


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    """Paths: sparse.zarr and dense.zarr (anndata write_zarr), and the
    collection coll.zarr that annbatch convert builds from sparse.zarr."""
    d = tmp_path_factory.mktemp("data")
    ads = make_adata(1)
    ads.write_zarr(d / "sparse.zarr")
    add = make_adata(2, dense=True)
    add.write_zarr(d / "dense.zarr")
    r = subprocess.run(
        [AB_BIN, "convert", str(d / "sparse.zarr"), "-o", str(d / "coll.zarr"), "--seed", "3", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    g = subprocess.run(
        [AB_BIN, "convert", str(d / "sparse.zarr"), "-o", str(d / "grouped.zarr"), "--seed", "3", "--groupby",
         "cell_type", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert g.returncode == 0, g.stderr
    return {
        "dir": d,
        "sparse": str(d / "sparse.zarr"),
        "dense": str(d / "dense.zarr"),
        "coll": str(d / "coll.zarr"),
        "grouped": str(d / "grouped.zarr"),
        "ad_sparse": ads,
        "ad_dense": add,
    }


@pytest.fixture(scope="session")
def python():
    return sys.executable
