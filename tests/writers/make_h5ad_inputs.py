#!/usr/bin/python3
"""Writes the .h5ad inputs of tests/writers/test_h5ad.sh into OUTDIR, with
Debian's python3-anndata 0.8 (h5py underneath), deterministically:

  h1.h5ad      CSR float32 (int32 indices/indptr), gzip; obs: categorical,
               ordered categorical, float64, string, int32, nullable Int64 and
               nullable boolean (both with missing values)
  h2.h5ad      dense float64, no compression, var overlapping h1 in another
               order, the same obs columns
  h3.h5ad      CSR with int64 indices and indptr, no compression
  legacy.h5ad  written with h5py in the pre-0.8 style: X a plain int16 2-D
               dataset without encoding attributes (chunked, gzip), fixed-length
               strings, a categorical as codes + an object reference to its
               categories; legacy_ref.h5ad holds the same AnnData written by
               anndata, to compare against
  csc.h5ad     X a csc_matrix (refused by convert)
  nox.h5ad     an HDF5 file with no X
  text.h5ad    not an HDF5 file
"""
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

out = sys.argv[1]
rng = np.random.default_rng(11)


def obs(n, prefix, cats, full=True):
    d = {
        "cell_type": pd.Categorical(rng.choice(cats, n)),
        "n_counts": rng.random(n) * 1000,
        "sample": np.array(["s%d" % v for v in rng.integers(0, 4, n)], dtype=object),
    }
    if full:
        d["stage"] = pd.Categorical(rng.choice(["early", "mid", "late"], n),
                                    categories=["early", "mid", "late"], ordered=True)
        d["n_genes"] = rng.integers(0, 5000, n).astype(np.int32)
        b = pd.array(rng.integers(0, 9, n), dtype="Int64")
        b[rng.random(n) < 0.2] = pd.NA
        d["batch"] = b
        f = pd.array(rng.random(n) < 0.5, dtype="boolean")
        f[rng.random(n) < 0.2] = pd.NA
        d["flag"] = f
    return pd.DataFrame(d, index=["%s_%d" % (prefix, i) for i in range(n)])


def counts(n, m, density, dtype=np.float32):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    x.data = np.ceil(x.data * 20)
    x = x.astype(dtype)
    x.sort_indices()
    return x


genes = np.array(["g%03d" % i for i in range(200)], dtype=object)

a1 = anndata.AnnData(X=counts(700, 120, 0.1), obs=obs(700, "h1", ["T", "B", "NK"]),
                     var=pd.DataFrame(index=genes[:120]))
a1.write_h5ad(out + "/h1.h5ad", compression="gzip")

order = rng.permutation(np.arange(60, 160))
a2 = anndata.AnnData(X=counts(400, 100, 0.25, np.float64).toarray(), obs=obs(400, "h2", ["B", "DC"]),
                     var=pd.DataFrame(index=genes[order]))
a2.write_h5ad(out + "/h2.h5ad")

x3 = counts(300, 90, 0.15)
x3.indices = x3.indices.astype(np.int64)
x3.indptr = x3.indptr.astype(np.int64)
a3 = anndata.AnnData(X=x3, obs=obs(300, "h3", ["T", "Plasma"], full=False),
                     var=pd.DataFrame(index=genes[100:190]))
a3.write_h5ad(out + "/h3.h5ad")

# ---- the pre-0.8 layout, by hand
n, m = 250, 40
xl = (counts(n, m, 0.3) * 3).toarray().astype(np.int16)
names = ["L_%d" % i for i in range(n)]
vnames = ["g%03d" % i for i in range(m)]
ct = rng.choice(["T", "B", "Mono"], n)
nc = (rng.random(n) * 100).astype(np.float32)
smp = np.array(["s%d" % v for v in rng.integers(0, 3, n)])
with h5py.File(out + "/legacy.h5ad", "w") as f:
    f.create_dataset("X", data=xl, chunks=(16, m), compression="gzip")
    g = f.create_group("obs")
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array(["cell_type", "n_counts", "sample"], dtype="S")
    g.attrs["encoding-type"] = "dataframe"
    g.attrs["encoding-version"] = "0.1.0"
    g.create_dataset("_index", data=np.array(names, dtype="S"))
    cats = np.array(sorted(set(ct)), dtype="S")
    cg = g.create_group("__categories")
    cd = cg.create_dataset("cell_type", data=cats)
    codes = np.searchsorted(cats, np.array(ct, dtype="S")).astype(np.int8)
    d = g.create_dataset("cell_type", data=codes)
    d.attrs["categories"] = cd.ref
    g.create_dataset("n_counts", data=nc)
    # fixed-length UTF-8 strings, space padded
    t = h5py.h5t.C_S1.copy()
    t.set_size(4)
    t.set_strpad(h5py.h5t.STR_SPACEPAD)
    t.set_cset(h5py.h5t.CSET_UTF8)
    sd = h5py.h5d.create(g.id, b"sample", t, h5py.h5s.create_simple((n,)))
    sd.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([s.ljust(4).encode() for s in smp], dtype="S4"), mtype=t)
    v = f.create_group("var")
    v.attrs["_index"] = "_index"
    v.create_dataset("_index", data=np.array(vnames, dtype="S"))
ref = anndata.AnnData(X=xl, obs=pd.DataFrame({"cell_type": pd.Categorical(ct), "n_counts": nc,
                                              "sample": np.array(smp, dtype=object)}, index=names),
                      var=pd.DataFrame(index=vnames))
ref.write_h5ad(out + "/legacy_ref.h5ad")

# ---- refused inputs
anndata.AnnData(X=sp.csc_matrix(counts(20, 10, 0.3)), var=pd.DataFrame(index=genes[:10])).write_h5ad(
    out + "/csc.h5ad")
with h5py.File(out + "/nox.h5ad", "w") as f:
    f.attrs["encoding-type"] = "anndata"
    f.create_group("obs")
with open(out + "/text.h5ad", "w") as f:
    f.write("this is not an HDF5 file\n")
