#!/usr/bin/python3
"""Writes the AnnData inputs of the writer tests with Debian's python3-anndata
(zarr v2, an independent writer): OUTDIR/in1.zarr (CSR float32), in2.zarr
(dense float32, var names overlapping in1 in another order, new categories),
in3.zarr (CSR, partly outside the others' var space). Deterministic."""
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

out = sys.argv[1]
rng = np.random.default_rng(7)


def obs(n, prefix, cats):
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(cats, n)),
            "n_counts": rng.random(n) * 1000,
            "sample": np.array(["s%d" % v for v in rng.integers(0, 4, n)], dtype=object),
        },
        index=["%s_%d" % (prefix, i) for i in range(n)],
    )


def counts(n, m, density):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float32)
    x.data = np.ceil(x.data * 20).astype(np.float32)
    x.sort_indices()
    return x


genes = np.array(["g%03d" % i for i in range(200)], dtype=object)

a1 = anndata.AnnData(X=counts(800, 120, 0.1), obs=obs(800, "a", ["T", "B", "NK", "Mono"]),
                     var=pd.DataFrame(index=genes[:120]))
a1.write_zarr(out + "/in1.zarr")

order = rng.permutation(np.arange(50, 150))
a2 = anndata.AnnData(X=counts(500, 100, 0.2).toarray(), obs=obs(500, "b", ["B", "DC", "T"]),
                     var=pd.DataFrame(index=genes[order]))
a2.write_zarr(out + "/in2.zarr")

a3 = anndata.AnnData(X=counts(300, 80, 0.15), obs=obs(300, "c", ["T", "Plasma"]),
                     var=pd.DataFrame(index=genes[110:190]))
a3.write_zarr(out + "/in3.zarr")
