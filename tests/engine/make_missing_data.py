"""Writes stores with missing chunks, missing shard files and empty shard
slots (index entries 2^64-1), with integer, NaN, +inf and -inf fill values,
for the loader's own missing-chunk path (tests/engine/test_missing.sh).

v2 stores are written by zarr-python 2.13 (chunk files deleted after the
write, or never written: write_empty_chunks=False over rows equal to the fill
value) and the expected arrays are what zarr-python reads back from them. v3
stores are written by the conformance generator's spec writer and the
expected arrays are numpy's: the data with the fill value placed over every
absent chunk or inner chunk.

Usage: make_missing_data.py OUTDIR
Writes OUTDIR/expected.npz and OUTDIR/cases.txt, one case a line:
  NAME KIND INPUT NROWS   (KIND dense or csr; expected arrays NAME, or
                           NAME.data / NAME.indices / NAME.indptr)
"""
import os
import sys

import numpy as np
import numcodecs
import scipy.sparse as sp
import zarr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import gen_fixtures as gf  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(15)
expected = {}
cases = []


def adata_attrs(g):
    g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    obs = g.create_group("obs")
    obs.attrs.update({"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index",
                      "column-order": []})


def v2_delete(arr_path, keys):
    for k in keys:
        os.remove(os.path.join(arr_path, k))


# ---------------------------------------------------------------- v2 dense
# Raw arrays (STORE:NODE): chunks split the columns too, so a row mixes
# present and absent chunks; the last chunk row is ragged; blosc with small
# blocks so --decode blocks reads parts of the present chunks.
def v2_raw(name, data, chunks, fill, compressor, delete=(), write_empty=True):
    path = os.path.join(out, name + ".zarr")
    g = zarr.open_group(path, mode="w")
    a = g.create_dataset("x", shape=data.shape, dtype=data.dtype, chunks=chunks, fill_value=fill,
                         compressor=compressor, write_empty_chunks=write_empty)
    a[...] = data
    v2_delete(os.path.join(path, "x"), delete)
    back = zarr.open_group(path, mode="r")["x"][...]
    expected[name] = back
    cases.append((name, "dense", path + ":x", data.shape[0]))
    return back


d = rng.integers(-50, 50, size=(203, 9)).astype("<i4")
back = v2_raw("v2_int", d, (20, 4), -7, numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE, blocksize=64),
              delete=["0.0", "3.1", "5.2", "6.0", "6.1", "10.0"])
assert (back[0:20, 0:4] == -7).all() and (back[200:203, 0:4] == -7).all()

d = np.round(rng.normal(size=(203, 9)) * 100).astype("<f8")
back = v2_raw("v2_nan", d, (20, 4), np.nan,
              numcodecs.Blosc("lz4", 3, numcodecs.Blosc.BITSHUFFLE, blocksize=128),
              delete=["0.1", "2.0", "2.1", "2.2", "9.2", "10.1"])
assert np.isnan(back[0:20, 4:8]).all() and not np.isnan(back[20:40]).any()

# +inf fill: chunks whose values are all the fill value are never written
# (write_empty_chunks=False), and one more is deleted.
d = np.round(rng.normal(size=(150, 7)) * 100).astype("<f4")
d[30:45, 0:3] = np.inf
d[135:150, 3:6] = np.inf
back = v2_raw("v2_pinf", d, (15, 3), np.inf, numcodecs.Blosc("zstd", 3, numcodecs.Blosc.SHUFFLE, blocksize=64),
              delete=["5.1"], write_empty=False)
assert not os.path.exists(os.path.join(out, "v2_pinf.zarr", "x", "2.0"))
assert not os.path.exists(os.path.join(out, "v2_pinf.zarr", "x", "9.1"))
assert np.isposinf(back[75:90, 3:6]).all()

d = np.round(rng.normal(size=(150, 7)) * 100).astype("<f4")
back = v2_raw("v2_ninf", d, (15, 3), -np.inf, numcodecs.Zstd(1), delete=["0.2", "4.0", "7.1"])
assert np.isneginf(back[60:75, 0:3]).all()

# An AnnData store whose dense X (chunks of whole rows) lacks chunks.
path = os.path.join(out, "v2_adata.zarr")
g = zarr.open_group(path, mode="w")
adata_attrs(g)
d = rng.integers(0, 30, size=(170, 11)).astype("<f4")
x = g.create_dataset("X", shape=d.shape, dtype=d.dtype, chunks=(16, 11), fill_value=-2.5,
                     compressor=numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE, blocksize=256))
x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
x[...] = d
v2_delete(os.path.join(path, "X"), ["1.0", "4.0", "10.0"])
expected["v2_adata"] = zarr.open_group(path, mode="r")["X"][...]
assert (expected["v2_adata"][160:170] == -2.5).all()
cases.append(("v2_adata", "dense", path, 170))


# ---------------------------------------------------------------- v2 CSR
def random_csr(n, m, density, dtype="<f4"):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    x.data = np.round(x.data * 100) + 1
    x.sort_indices()
    return sp.csr_matrix(x.astype(dtype))


# data and indices lack chunks inside the nnz range: zarr reads them as the
# fill value 0 (the anndata default), so those elements become zeros in
# column 0.
c = random_csr(400, 30, 0.25)
nnz = c.nnz
path = os.path.join(out, "v2_csr.zarr")
g = zarr.open_group(path, mode="w")
adata_attrs(g)
X = g.create_group("X")
X.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(c.shape)})
X.create_dataset("data", data=c.data, chunks=(200,),
                 compressor=numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE, blocksize=128))
X.create_dataset("indices", data=c.indices.astype("<i4"), chunks=(150,), compressor=numcodecs.Zstd(1))
X.create_dataset("indptr", data=c.indptr.astype("<i8"), chunks=(1000,))
assert nnz > 1400, nnz
v2_delete(os.path.join(path, "X", "data"), ["1", "5"])
v2_delete(os.path.join(path, "X", "indices"), ["3", "8"])
g = zarr.open_group(path, mode="r")
expected["v2_csr.data"] = g["X/data"][...]
expected["v2_csr.indices"] = g["X/indices"][...]
expected["v2_csr.indptr"] = g["X/indptr"][...]
assert (expected["v2_csr.data"][200:400] == 0).all() and (expected["v2_csr.indices"][450:600] == 0).all()
cases.append(("v2_csr", "csr", path, 400))


# ---------------------------------------------------------------- v3
def with_missing(data, fill, dtype, shard, missing=(), inner=None, missing_inner=None):
    """data with the fill value over the absent shards and inner chunks."""
    out_ = data.copy()
    fv = gf.fill_to_value(fill, dtype)
    for idx in missing:
        out_[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, shard))] = fv
    for sidx, slots in (missing_inner or {}).items():
        for iidx in slots:
            out_[tuple(slice(s * c + i * n, s * c + (i + 1) * n)
                       for s, c, i, n in zip(sidx, shard, iidx, inner))] = fv
    return out_


def v3_raw(name, data, dtype, shard, codecs, fill, missing=(), inner=None, missing_inner=None):
    path = os.path.join(out, name + ".zarr")
    gf.v3_group(path)
    gf.v3_array(os.path.join(path, "x"), data, shard, codecs, fill, dtype=dtype, missing=missing,
                missing_inner=missing_inner)
    expected[name] = with_missing(data, fill, dtype, shard, missing, inner, missing_inner)
    cases.append((name, "dense", path + ":x", data.shape[0]))
    return expected[name]


# int16, shards of 40 x 8 rows / cols, inner chunks 10 x 4 (8 slots a shard),
# the last shard ragged. Shard (2, 0) has no file. Empty slots: inner (1, 0)
# of shard (0, 0) has the key c/1/0 of an existing shard file, so a loader
# that took an empty slot for an unsharded chunk would read that file.
d = rng.integers(-1000, 1000, size=(205, 8)).astype("<i2")
miss_inner = {(0, 0): {(1, 0), (2, 1)}, (3, 0): {(0, 0), (3, 1)}, (5, 0): {(0, 1)}}
e = v3_raw("v3_int", d, "int16", (40, 8), [gf.sharding((10, 4), [gf.BYTES_LE, gf.blosc3("lz4", "shuffle", 2, 3)])],
           9, missing={(2, 0)}, inner=(10, 4), missing_inner=miss_inner)
assert (e[10:20, 0:4] == 9).all() and (e[200:205, 4:8] == 9).all() and (e[80:120] == 9).all()

# float64 NaN: plain bytes inner chunks + crc32c index, shards split columns.
d = np.round(rng.normal(size=(150, 6)) * 1000).astype("<f8")
v3_raw("v3_nan", d, "float64", (30, 3), [gf.sharding((5, 3), [gf.BYTES_LE, gf.CRC])], "NaN",
       missing={(1, 0), (4, 1)}, inner=(5, 3), missing_inner={(0, 0): {(1, 0), (5, 0)}, (2, 1): {(0, 0), (3, 0)}})

# float32 +inf and -inf, sharded with zstd inner chunks / unsharded v3 chunks.
d = np.round(rng.normal(size=(120, 5)) * 1000).astype("<f4")
v3_raw("v3_pinf", d, "float32", (24, 5), [gf.sharding((6, 5), [gf.BYTES_LE, gf.zstd3(1, False)])], "Infinity",
       missing={(3, 0)}, inner=(6, 5), missing_inner={(1, 0): {(2, 0)}, (4, 0): {(0, 0), (3, 0)}})
d = np.round(rng.normal(size=(120, 5)) * 1000).astype("<f4")
v3_raw("v3_ninf", d, "float32", (16, 2), [gf.BYTES_LE, gf.blosc3("zstd", "shuffle", 4, 3)], "-Infinity",
       missing={(0, 0), (2, 2), (7, 1)})


# A collection of two CSR datasets: sharded data / indices with a missing shard
# file and empty slots (fills 1.5 and 3, so the fill is visible in the sums
# and columns), and unsharded ones with missing chunks (data fill NaN).
def v3_csr(path, x, data_kw, idx_kw):
    gf.v3_group(path, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
    gf.v3_group(os.path.join(path, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                          "shape": list(x.shape)})
    res = {}
    for key, arr, kw in (("data", x.data.astype("<f4"), data_kw), ("indices", x.indices.astype("<i4"), idx_kw)):
        dt = "float32" if key == "data" else "int32"
        gf.v3_array(os.path.join(path, "X", key), arr, kw["shard"], kw["codecs"], kw["fill"], dtype=dt,
                    missing=kw.get("missing", ()), missing_inner=kw.get("missing_inner"))
        res[key] = with_missing(arr, kw["fill"], dt, kw["shard"], kw.get("missing", ()), kw.get("inner"),
                                kw.get("missing_inner"))
    gf.v3_array(os.path.join(path, "X", "indptr"), x.indptr.astype("<i8"), [4096], [gf.BYTES_LE], 0)
    return res


col = os.path.join(out, "v3_csr.zarr")
gf.v3_group(col, {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
c0 = random_csr(300, 25, 0.3)
c1 = random_csr(250, 25, 0.3)
assert c0.nnz > 1800 and c1.nnz > 1600, (c0.nnz, c1.nnz)
inner = [gf.BYTES_LE, gf.blosc3("lz4", "shuffle", 4, clevel=3)]
r0 = v3_csr(os.path.join(col, "dataset_0"), c0,
            {"shard": [256], "codecs": [gf.sharding([64], inner)], "fill": 1.5, "missing": {(3,)}, "inner": [64],
             "missing_inner": {(0,): {(1,), (3,)}, (4,): {(2,)}}},
            {"shard": [512], "codecs": [gf.sharding([128], [gf.BYTES_LE])], "fill": 3, "missing": {(2,)},
             "inner": [128], "missing_inner": {(0,): {(2,)}}})
r1 = v3_csr(os.path.join(col, "dataset_1"), c1,
            {"shard": [100], "codecs": [gf.BYTES_LE, gf.blosc3("zstd", "shuffle", 4, 1)], "fill": "NaN",
             "missing": {(2,), (9,)}},
            {"shard": [120], "codecs": [gf.BYTES_LE], "fill": 0, "missing": {(4,)}})
expected["v3_csr.data"] = np.concatenate([r0["data"], r1["data"]])
expected["v3_csr.indices"] = np.concatenate([r0["indices"], r1["indices"]])
expected["v3_csr.indptr"] = np.concatenate([c0.indptr.astype("<i8"), c1.indptr[1:].astype("<i8") + c0.nnz])
assert (r0["data"][64:128] == 1.5).all() and (r0["indices"][1024:1536] == 3).all()
assert np.isnan(r1["data"][200:300]).all()
cases.append(("v3_csr", "csr", col, 550))

np.savez(os.path.join(out, "expected.npz"), **expected)
with open(os.path.join(out, "cases.txt"), "w") as f:
    for case in cases:
        f.write(" ".join(str(v) for v in case) + "\n")
