#!/usr/bin/python3
"""Writes the inputs of test_convert_names.sh into OUTDIR with Debian's
python3-anndata 0.8, h5py and zarr 2 (independent writers). Deterministic.

  dupvar.h5ad, dupvar.zarr  repeated var names (and a name like a suffix: A-1)
  dupobs1.zarr, dupobs2.h5ad  obs names repeated within and across inputs
  nul_var.zarr, nul_obs.zarr, nul_col.zarr, nul_cat.zarr  a NUL byte inside a
        var name, an obs name, a string obs column, a category (vlen-utf8)
  nul_var.h5ad, nul_obs.h5ad, nul_col.h5ad, nul_cat.h5ad  the same in
        fixed-length strings
  base.h5ad, new.h5ad       a collection's input, and one with genes it lacks
  i32.h5ad, f32.h5ad, u16.h5ad, i16.h5ad, i16b.h5ad, f32int.h5ad  X dtypes
        to mix (f32int: float32 holding whole numbers)
  subset_*.txt              --var-subset files (BOM, CRLF, spaces, unknown)
  varcols1.h5ad, varcols2.zarr  var columns that agree on the shared genes,
        and ones that do not (values, dtype, categories, only in one input)
"""
import sys
import warnings

warnings.filterwarnings("ignore")

import anndata  # noqa: E402
import h5py  # noqa: E402
import numcodecs  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import zarr  # noqa: E402

out = sys.argv[1]
rng = np.random.default_rng(11)


def counts(n, m, density, dtype=np.float32):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    x.data = np.ceil(x.data * 20)
    x = x.astype(dtype)
    x.sort_indices()
    return x


def adata(x, obs_names, var_names, obs=None):
    o = pd.DataFrame(index=list(obs_names)) if obs is None else obs.set_axis(list(obs_names))
    # dtype=x.dtype: anndata 0.8 would otherwise make X float32
    return anndata.AnnData(X=x, obs=o, var=pd.DataFrame(index=list(var_names)), dtype=x.dtype)


def obs_frame(n):
    return pd.DataFrame({
        "cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], n)),
        "label": np.array(["l%d" % v for v in rng.integers(0, 5, n)], dtype=object),
    })


# ---- point 2: duplicate var and obs names
dv1 = ["A", "B", "A", "A-1", "A", "C", "B", "D"]
adata(counts(40, len(dv1), 0.4), ["x%d" % i for i in range(40)], dv1, obs_frame(40)).write_h5ad(
    out + "/dupvar.h5ad")
dv2 = ["C", "E", "C", "A", "C-1", "C"]
adata(counts(30, len(dv2), 0.4), ["y%d" % i for i in range(30)], dv2, obs_frame(30)).write_zarr(
    out + "/dupvar.zarr")

genes = ["g%d" % i for i in range(12)]
o1 = ["c0", "c1", "c0", "c2", "c0-1", "c3"] + ["d%d" % i for i in range(20)]
adata(counts(len(o1), 12, 0.3), o1, genes, obs_frame(len(o1))).write_zarr(out + "/dupobs1.zarr")
o2 = ["c0", "c1", "c1-1", "c4"] + ["d%d" % i for i in range(5)] + ["c0"]
adata(counts(len(o2), 12, 0.3), o2, genes[2:] + ["h0", "h1"], obs_frame(len(o2))).write_h5ad(
    out + "/dupobs2.h5ad")

# ---- point 3: NUL bytes inside strings
names10 = ["n%d" % i for i in range(10)]


def nul_zarr(path, where):
    a = adata(counts(10, 6, 0.5), names10, ["G%d" % i for i in range(6)], obs_frame(10))
    a.write_zarr(path)
    g = zarr.open_group(path, mode="r+")
    vlen = numcodecs.VLenUTF8()
    if where == "var":
        v = np.array(["G0", "G1", "G\x00x", "G\x00y", "G4", "G5"], dtype=object)
        g["var"].create_dataset("_index", data=v, dtype=object, object_codec=vlen, overwrite=True)
        g["var/_index"].attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
    elif where == "obs":
        v = np.array(names10[:7] + ["n7\x00a", "n7\x00b", "n9"], dtype=object)
        g["obs"].create_dataset("_index", data=v, dtype=object, object_codec=vlen, overwrite=True)
        g["obs/_index"].attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
    elif where == "col":
        v = np.array(["l1"] * 5 + ["bad\x00value"] + ["l2"] * 4, dtype=object)
        g["obs"].create_dataset("label", data=v, dtype=object, object_codec=vlen, overwrite=True)
        g["obs/label"].attrs.update({"encoding-type": "string-array", "encoding-version": "0.2.0"})
    else:
        cats = g["obs/cell_type/categories"][:]
        cats[1] = cats[1] + "\x00z"
        g["obs/cell_type"].create_dataset("categories", data=cats, dtype=object,
                                          object_codec=vlen, overwrite=True)
    zarr.consolidate_metadata(path)


for w in ("var", "obs", "col", "cat"):
    nul_zarr(out + "/nul_%s.zarr" % w, w)


def nul_h5ad(path, where):
    a = adata(counts(10, 6, 0.5), names10, ["G%d" % i for i in range(6)], obs_frame(10))
    a.write_h5ad(path)
    with h5py.File(path, "r+") as f:
        if where == "var":
            key, v = "var/_index", [b"G0", b"G1", b"G\x00x", b"G\x00y", b"G4", b"G5"]
        elif where == "obs":
            key, v = "obs/_index", [n.encode() for n in names10[:7]] + [b"n7\x00a", b"n7\x00b", b"n9"]
        elif where == "col":
            key, v = "obs/label", [b"l1"] * 5 + [b"bad\x00val"] + [b"l2"] * 4
        else:
            key = "obs/cell_type/categories"
            v = [c.encode() for c in f[key].asstr()[:]]
            v[1] = v[1] + b"\x00z"
        attrs = dict(f[key].attrs)
        del f[key]
        f.create_dataset(key, data=np.array(v, dtype="S8"))
        f[key].attrs.update(attrs)


for w in ("var", "obs", "col", "cat"):
    nul_h5ad(out + "/nul_%s.h5ad" % w, w)

# ---- point 5: adding inputs with genes the collection lacks
adata(counts(50, 10, 0.4), ["b%d" % i for i in range(50)], ["g%d" % i for i in range(10)],
      obs_frame(50)).write_h5ad(out + "/base.h5ad")
newg = ["g%d" % i for i in range(4, 10)] + ["h%d" % i for i in range(5)] + ["g1"]
adata(counts(30, len(newg), 0.5), ["n%d" % i for i in range(30)], newg, obs_frame(30)).write_h5ad(
    out + "/new.h5ad")

# ---- point 13b: X dtypes
g8 = ["g%d" % i for i in range(8)]
for name, dt, n in (("i32", np.int32, 20), ("f32", np.float32, 15), ("u16", np.uint16, 12),
                    ("i16", np.int16, 10), ("i16b", np.int16, 9), ("f32int", np.float32, 7)):
    x = counts(n, 8, 0.5, dt)
    if name == "f32":
        x.data = x.data + np.float32(0.25)  # not integers: truncation would show
    adata(x, ["%s_%d" % (name, i) for i in range(n)], g8, obs_frame(n)).write_h5ad(
        out + "/%s.h5ad" % name)

# ---- point 13b: var columns
vg1, vg2 = ["v%d" % i for i in range(8)], ["v%d" % i for i in range(5, 12)]


def var_frame(genes, second):
    k = np.array([int(g[1:]) for g in genes])
    f = pd.DataFrame({
        "symbol": np.array(["SYM%d" % i for i in k], dtype=object),
        "length": (k * 100 + 7).astype(np.int64),
        "gc": k / 16.0,
        "chrom": pd.Categorical(["chr%d" % (i % 3) for i in k], categories=["chr0", "chr1", "chr2"]),
        "score": k + (0.5 if second else 0.0),
        "n_cells": (k * 3).astype(np.float64 if second else np.int64),
        "biotype": pd.Categorical(["pc" if i % 2 else "lnc" for i in k],
                                  categories=["lnc", "pc"] + (["misc"] if second else [])),
    }, index=genes)
    if not second:
        f["only_first"] = k.astype(np.int32)
    return f


for p, g, second in ((out + "/varcols1.h5ad", vg1, False), (out + "/varcols2.zarr", vg2, True)):
    a = anndata.AnnData(X=counts(6, len(g), 0.5), var=var_frame(g, second), dtype=np.float32)
    a.obs_names = ["%s_%d" % ("s" if second else "f", i) for i in range(6)]
    (a.write_zarr if p.endswith(".zarr") else a.write_h5ad)(p)

# ---- point 13b: --var-subset files
with open(out + "/subset_ok.txt", "wb") as f:
    f.write(b"\xef\xbb\xbfg3\r\n g1 \r\ng7\t\r\n\r\ng0\n")
with open(out + "/subset_missing.txt", "wb") as f:
    f.write(b"g3\nGX1\ng1\nGX2\n" + b"".join(b"Q%d\n" % i for i in range(12)))
