"""Writes a small single-cell-like AnnData store (zarr v2, CSR X) with anndata.

Usage: make_demo.py OUT.zarr [n_obs] [n_vars]
"""
import sys

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

out = sys.argv[1]
n_obs = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
n_vars = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
rng = np.random.default_rng(42)
depth = rng.lognormal(mean=np.log(200), sigma=0.5, size=n_obs)
rows = []
for d in depth:
    k = min(n_vars, max(1, int(d)))
    cols = np.sort(rng.choice(n_vars, size=k, replace=False))
    vals = rng.negative_binomial(2, 0.5, size=k).astype(np.float32) + 1
    rows.append((cols, vals))
indptr = np.concatenate([[0], np.cumsum([len(c) for c, _ in rows])])
X = sp.csr_matrix((np.concatenate([v for _, v in rows]), np.concatenate([c for c, _ in rows]), indptr),
                  shape=(n_obs, n_vars))
types = np.array(["T cell", "B cell", "NK cell", "monocyte", "dendritic"])
obs = pd.DataFrame({
    "cell_type": pd.Categorical(types[rng.integers(0, len(types), n_obs)]),
    "donor": rng.integers(0, 8, n_obs),
    "n_genes": np.diff(indptr),
}, index=[f"cell_{i}" for i in range(n_obs)])
var = pd.DataFrame(index=[f"gene_{j}" for j in range(n_vars)])
anndata.AnnData(X=X, obs=obs, var=var).write_zarr(out)
print(f"wrote {out}: {n_obs} cells x {n_vars} genes, {X.nnz} non-zeros")
