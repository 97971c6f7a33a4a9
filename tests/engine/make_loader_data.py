"""Writes the stores the loader tests read, with independent writers:
zarr-python 2.13 (v2) and the conformance generator's spec-written v3 writer
(sharded, blosc via numcodecs). Saves the expected rows as .npz.

Usage: make_loader_data.py OUTDIR
"""
import os
import sys

import numpy as np
import scipy.sparse as sp
import zarr
import numcodecs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import gen_fixtures as gf  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


def random_csr(n, m, density, dtype=np.float32):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    x.data = np.round(x.data * 100).astype(dtype) + 1
    x.sort_indices()
    # a few empty rows
    dense = x.toarray()
    dense[::17] = 0
    return sp.csr_matrix(dense.astype(dtype))


def v2_anndata_csr(path, x, data_chunks, idx_chunks, idx_dtype="<i4"):
    g = zarr.open_group(path, mode="w")
    g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    X = g.create_group("X")
    X.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(x.shape)})
    X.create_dataset("data", data=x.data, chunks=(data_chunks,), compressor=numcodecs.Blosc("lz4", 3, 1))
    X.create_dataset("indices", data=x.indices.astype(idx_dtype), chunks=(idx_chunks,),
                     compressor=numcodecs.Zstd(1))
    X.create_dataset("indptr", data=x.indptr.astype("<i8"), chunks=(1000,))
    obs = g.create_group("obs")
    obs.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index",
                      "column-order": []})


def v3_anndata_csr(path, x):
    gf.v3_group(path, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
    gf.v3_group(os.path.join(path, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                          "shape": list(x.shape)})
    inner = [gf.BYTES_LE, gf.blosc3("lz4", "shuffle", 4, clevel=3)]
    gf.v3_array(os.path.join(path, "X", "data"), x.data.astype("<f4"), [256],
                [gf.sharding([64], inner)], 0.0)
    gf.v3_array(os.path.join(path, "X", "indices"), x.indices.astype("<u2"), [256],
                [gf.sharding([64], [gf.BYTES_LE, gf.blosc3("lz4", "shuffle", 2, clevel=3)])], 0)
    gf.v3_array(os.path.join(path, "X", "indptr"), x.indptr.astype("<i8"), [4096], [gf.BYTES_LE], 0)


# CSR: one v2 store and a v3 sharded collection of two datasets, same 50 genes.
a = random_csr(1000, 50, 0.3)
v2_anndata_csr(os.path.join(out, "csr_a.zarr"), a, 300, 250)
b0 = random_csr(600, 50, 0.2)
b1 = random_csr(333, 50, 0.4)
col = os.path.join(out, "csr_b.zarr")
gf.v3_group(col, {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
v3_anndata_csr(os.path.join(col, "dataset_0"), b0)
v3_anndata_csr(os.path.join(col, "dataset_1"), b1)
allcsr = sp.vstack([a, b0, b1]).tocsr()
np.savez(os.path.join(out, "csr_expected.npz"), data=allcsr.data, indices=allcsr.indices,
         indptr=allcsr.indptr, shape=np.array(allcsr.shape))

# Dense: an anndata store (float32, chunks of 64 rows) and a raw 3-D int16
# array whose chunks split the trailing axes too.
import anndata  # noqa: E402
import pandas as pd  # noqa: E402

d = rng.integers(0, 50, size=(777, 13)).astype(np.float32)
ad = anndata.AnnData(X=d, obs=pd.DataFrame(index=[f"c{i}" for i in range(777)]))
ad.write_zarr(os.path.join(out, "dense_a.zarr"), chunks=(64, 13))
t = rng.integers(-300, 300, size=(500, 6, 4)).astype(np.int16)
g = zarr.open_group(os.path.join(out, "raw.zarr"), mode="w")
g.create_dataset("stack", data=t, chunks=(30, 4, 3), compressor=numcodecs.Zstd(3))
np.savez(os.path.join(out, "dense_expected.npz"), dense_a=d, stack=t)
print("loader test data written to", out)

# Grouped by class on disk (as `convert --groupby` writes), with obs columns:
# a categorical, an integer, and a nullable integer with missing values.
n = 600
ct = np.array(["A"] * 200 + ["B"] * 150 + ["C"] * 250)
nullable = pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64")
obs = pd.DataFrame({"ct": pd.Categorical(ct, categories=["A", "B", "C"]), "n": np.arange(n) * 2,
                    "maybe": nullable}, index=[f"g{i}" for i in range(n)])
gx = random_csr(n, 20, 0.3)
anndata.AnnData(X=gx, obs=obs).write_zarr(os.path.join(out, "grouped.zarr"))

# Chunks of many blosc blocks, for decoding only the blocks a window needs:
# written by zarr-python / numcodecs with small forced block sizes (zstd is
# not split, so its blocks stay as small as asked; lz4 blocks of 4-byte items
# are at least 64 KiB), a memcpy'ed frame (clevel 0), bit shuffle, and a v3
# dataset whose blosc typesize (8) does not match its 4-byte items (decoded
# whole: a range need not fall on the frame's items).
bx = random_csr(1500, 400, 0.3)
g = zarr.open_group(os.path.join(out, "blocks_csr.zarr"), mode="w")
g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
X = g.create_group("X")
X.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(bx.shape)})
X.create_dataset("data", data=bx.data, chunks=(50000,),
                 compressor=numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE, blocksize=4096))
X.create_dataset("indices", data=bx.indices.astype("<i4"), chunks=(40000,),
                 compressor=numcodecs.Blosc("lz4", 3, numcodecs.Blosc.BITSHUFFLE, blocksize=16384))
X.create_dataset("indptr", data=bx.indptr.astype("<i8"), chunks=(1000,))
obs = g.create_group("obs")
obs.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index",
                  "column-order": []})
by = random_csr(700, 400, 0.25)
col = os.path.join(out, "blocks_v3.zarr")
gf.v3_group(col, {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
p = os.path.join(col, "dataset_0")
gf.v3_group(p, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
gf.v3_group(os.path.join(p, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                   "shape": list(by.shape)})
gf.v3_array(os.path.join(p, "X", "data"), by.data.astype("<f4"), [40000],
            [gf.sharding([20000], [gf.BYTES_LE, gf.blosc3("lz4", "shuffle", 8, clevel=3)])], 0.0)
gf.v3_array(os.path.join(p, "X", "indices"), by.indices.astype("<i4"), [40000],
            [gf.sharding([20000], [gf.BYTES_LE, gf.blosc3("blosclz", "noshuffle", 4, clevel=0)])], 0)
gf.v3_array(os.path.join(p, "X", "indptr"), by.indptr.astype("<i8"), [4096], [gf.BYTES_LE], 0)
# In shards, frames of many blocks in block order: the loader reads only the
# blocks a window needs once it has seen a frame whole. zstd blocks of 4 KiB;
# lz4 blocks of 64 KiB over 80 KB chunks (a shorter last block).
bz = random_csr(900, 400, 0.3)
p = os.path.join(col, "dataset_1")
gf.v3_group(p, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
gf.v3_group(os.path.join(p, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                   "shape": list(bz.shape)})
zb = dict(gf.blosc3("zstd", "shuffle", 4, clevel=3))
zb["configuration"] = dict(zb["configuration"], blocksize=4096)
lb = dict(gf.blosc3("lz4", "bitshuffle", 4, clevel=3))
lb["configuration"] = dict(lb["configuration"], blocksize=2048)
gf.v3_array(os.path.join(p, "X", "data"), bz.data.astype("<f4"), [60000],
            [gf.sharding([20000], [gf.BYTES_LE, zb])], 0.0)
gf.v3_array(os.path.join(p, "X", "indices"), bz.indices.astype("<i4"), [60000],
            [gf.sharding([20000], [gf.BYTES_LE, lb])], 0)
gf.v3_array(os.path.join(p, "X", "indptr"), bz.indptr.astype("<i8"), [4096], [gf.BYTES_LE], 0)
allb = sp.vstack([bx, by, bz]).tocsr()
np.savez(os.path.join(out, "blocks_expected.npz"), data=allb.data, indices=allb.indices,
         indptr=allb.indptr, shape=np.array(allb.shape))
m = rng.integers(-1000, 1000, size=(900, 70)).astype(np.float32)
g = zarr.open_group(os.path.join(out, "blocks_raw.zarr"), mode="w")
g.create_dataset("m", data=m, chunks=(300, 70),
                 compressor=numcodecs.Blosc("zstd", 3, numcodecs.Blosc.NOSHUFFLE, blocksize=1024))
np.savez(os.path.join(out, "blocks_dense.npz"), m=m)
