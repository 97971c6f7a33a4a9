#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets of tests/fuzz.

Usage: /usr/bin/python3 tests/fuzz/make_seeds.py [CORPUS_DIR]
       (default: tests/fuzz/corpus next to this script)

Writes CORPUS_DIR/<target>/seed-* files: valid inputs for each target, so that
fuzzing starts from the real formats instead of having to discover JSON and
frame headers byte by byte. Where a real writer exists it is used: zarr 2.13
and numcodecs (Debian python3-zarr / python3-numcodecs) write the v2 arrays and
the compressed frames, anndata 0.8 the v2 AnnData stores; zarr v3 documents,
shards and stores are written with the helpers of the conformance generator
(tests/conformance/gen_fixtures.py), which follow the v3 specifications.

Files named regress-* in the corpus are inputs that once crashed a target;
this script never touches them. Output is deterministic.
"""

import gzip
import json
import os
import shutil
import struct
import sys
import tempfile
import warnings

import numpy as np

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import gen_fixtures as gf  # noqa: E402
import numcodecs  # noqa: E402
import zarr  # noqa: E402

OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
TARGETS = ["fuzz_meta_v2", "fuzz_meta_v3", "fuzz_shard_index", "fuzz_codecs", "fuzz_vlen",
           "fuzz_chunk", "fuzz_anndata"]
RNG = np.random.default_rng(7)


def reset():
    for t in TARGETS:
        d = os.path.join(OUT, t)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(OUT, target, "seed-" + name), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def data_for(dtype, shape):
    if dtype in ("string", "|O"):
        n = int(np.prod(shape))
        return np.array([gf.STRINGS[i % len(gf.STRINGS)] for i in range(n)], dtype=object).reshape(shape)
    return gf.make_data(dtype, shape, compressible=True)


# ------------------------------------------------------------------ v2 metadata
def v2_arrays(tmp):
    """(name, .zarray text) of arrays written by zarr 2.13."""
    out = []
    root = zarr.open_group(os.path.join(tmp, "v2"), mode="w")
    specs = [
        ("f4_blosc", dict(shape=(20, 6), chunks=(8, 6), dtype="<f4")),
        ("i8_zstd_F", dict(shape=(9, 9), chunks=(4, 5), dtype=">i8", order="F",
                           compressor=numcodecs.Zstd(level=3))),
        ("u2_lz4", dict(shape=(30,), chunks=(7,), dtype="<u2", compressor=numcodecs.LZ4())),
        ("b1_gzip", dict(shape=(5, 5), chunks=(5, 5), dtype="|b1", compressor=numcodecs.GZip())),
        ("c16_zlib", dict(shape=(4,), chunks=(2,), dtype="<c16", compressor=numcodecs.Zlib(),
                          fill_value=complex(1, -1))),
        ("f2_raw", dict(shape=(3, 4, 5), chunks=(1, 2, 5), dtype="<f2", compressor=None,
                        fill_value=np.nan)),
        ("S5", dict(shape=(6,), chunks=(3,), dtype="|S5", fill_value=b"")),
        ("U4_F", dict(shape=(4, 2), chunks=(2, 2), dtype="<U4", order="F")),
        ("O_vlen", dict(shape=(8,), chunks=(4,), dtype=object, object_codec=numcodecs.VLenUTF8())),
        ("u8_big_fill", dict(shape=(3,), chunks=(3,), dtype="<u8", fill_value=2**64 - 1)),
        ("scalar", dict(shape=(), chunks=(), dtype="<i4", fill_value=-5)),
        ("slash_sep", dict(shape=(4, 4), chunks=(2, 2), dtype="|u1", dimension_separator="/",
                           compressor=numcodecs.Blosc(cname="zstd", shuffle=numcodecs.Blosc.BITSHUFFLE))),
    ]
    for name, kw in specs:
        a = root.create_dataset(name, **kw)
        if a.dtype == object:
            a[...] = data_for("|O", a.shape)
        elif a.dtype.kind in "SU":
            a[...] = np.array(["ab", "", "xyz", "q", "w", "e", "r", "t"][: int(np.prod(a.shape))],
                              dtype=a.dtype).reshape(a.shape)
        else:
            a[...] = data_for(a.dtype.str, a.shape)
        with open(os.path.join(tmp, "v2", name, ".zarray")) as f:
            out.append((name, f.read()))
    return out


# ------------------------------------------------------------------ v3 metadata
BLE, BBE, CRC = gf.BYTES_LE, gf.BYTES_BE, gf.CRC


def v3_meta(shape, dtype, chunk, codecs, fill=0, cke=None, extra=None):
    m = {"zarr_format": 3, "node_type": "array", "shape": list(shape), "data_type": dtype,
         "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk)}},
         "chunk_key_encoding": cke or {"name": "default", "configuration": {"separator": "/"}},
         "fill_value": fill, "codecs": codecs, "attributes": {}}
    if extra:
        m.update(extra)
    return m


def v3_metas():
    tr = {"name": "transpose", "configuration": {"order": [1, 0]}}
    return [
        ("f4_bytes", v3_meta((10, 10), "float32", (5, 5), [BLE], fill="NaN")),
        ("i2_be_zstd", v3_meta((10,), "int16", (4,), [BBE, gf.zstd3(3, True)])),
        ("u1_blosc", v3_meta((8, 8), "uint8", (8, 8), [BLE, gf.blosc3("lz4", "bitshuffle", 1)])),
        ("f8_tr_gzip_crc", v3_meta((6, 4), "float64", (3, 4),
                                   [tr, BLE, {"name": "gzip", "configuration": {"level": 5}}, CRC],
                                   fill="0x7ff8000000000000")),
        ("c8", v3_meta((4,), "complex64", (2,), [BLE], fill=["NaN", 1.0])),
        ("string", v3_meta((5,), "string", (5,), [{"name": "vlen-utf8"}, gf.zstd3(1, False)], fill="")),
        ("v2_keys", v3_meta((4, 4), "int32", (2, 2), [BLE],
                            cke={"name": "v2", "configuration": {"separator": "."}})),
        ("shard_end", v3_meta((16, 16), "uint16", (8, 8),
                              [gf.sharding((4, 4), [BLE, gf.zstd3(1, False)])])),
        ("shard_start_nocrc", v3_meta((16,), "int64", (16,),
                                      [gf.sharding((4,), [BBE], index_codecs=[BLE], location="start")])),
        ("shard_nested", v3_meta((8, 8), "bool", (8, 8),
                                 [gf.sharding((4, 4), [gf.sharding((2, 2), [BLE])]), CRC], fill=False)),
        ("shard_tr", v3_meta((8, 4), "float16", (8, 4), [tr, gf.sharding((2, 4), [BLE, CRC])])),
        ("ext_ok", v3_meta((2,), "uint32", (2,), [BLE], extra={"ext": {"must_understand": False}})),
        ("datetime_bz2", v3_meta((6,), {"name": "numpy.datetime64", "configuration": {"unit": "ns",
                                                                                     "scale_factor": 1}},
                                 (4,), [BLE, {"name": "numcodecs.bz2", "configuration": {"level": 9}}], fill="NaT")),
        ("utf32_bitround", v3_meta((4,), {"name": "fixed_length_utf32", "configuration": {"length_bytes": 12}},
                                   (4,), [BBE], fill="ab")),
        ("f4_bitround", v3_meta((4,), "float32", (4,), [{"name": "numcodecs.bitround",
                                                         "configuration": {"keepbits": 3}}, BLE])),
        ("vlen_bytes", v3_meta((3,), "variable_length_bytes", (3,), [{"name": "vlen-bytes"}], fill="")),
        ("group", {"zarr_format": 3, "node_type": "group", "attributes": {"encoding-type": "anndata"}}),
    ]


def consolidated_root(metas):
    return {"zarr_format": 3, "node_type": "group", "attributes": {},
            "consolidated_metadata": {"kind": "inline", "must_understand": False,
                                      "metadata": {name: m for name, m in metas}}}


def encode(data, codecs, missing=(), shuffle=False):
    """A chunk through a v3 codec list, like gf.encode_chunk, but with
    sharding_indexed handled here so that shards can nest (every inner chunk
    is full: the seeds are whole shards of small arrays)."""
    for i, c in enumerate(codecs):
        if c["name"] == "transpose":
            data = np.transpose(data, c["configuration"]["order"])
            continue
        if c["name"] == "sharding_indexed":
            shard = encode_shard(np.ascontiguousarray(data), c["configuration"], missing, shuffle)
            return gf.encode_chunk(shard, codecs[i + 1:]) if codecs[i + 1:] else shard
        break
    codecs = [c for c in codecs if c["name"] != "transpose"]
    return gf.encode_chunk(data, codecs)


def encode_shard(shard, cfg, missing=(), shuffle=False):
    inner = cfg["chunk_shape"]
    nper = [s // c for s, c in zip(shard.shape, inner)]
    index = np.full(nper + [2], gf.U64MAX, dtype="<u8")
    pieces = []
    for idx in np.ndindex(*nper):
        if tuple(idx) in missing:
            continue
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, inner))
        pieces.append((idx, encode(np.ascontiguousarray(shard[sl]), cfg["codecs"])))
    if shuffle:
        pieces = pieces[::-1]
    at_start = cfg.get("index_location", "end") == "start"
    index_codecs = cfg.get("index_codecs", [BLE, CRC])
    index_len = len(gf.encode_chunk(index, index_codecs))
    off = index_len if at_start else 0
    for idx, b in pieces:
        index[idx] = (off, len(b))
        off += len(b)
    ib = gf.encode_chunk(index, index_codecs)
    body = b"".join(b for _, b in pieces)
    return ib + body if at_start else body + ib


# ------------------------------------------------------------------ shards
# Mirrors tests/fuzz/fuzz_shard_index.c: its header, inner chains and config.
def shard_header(index_start, no_crc, index_be, whole, chain, strings, per, inner):
    flags = (index_start << 0) | (no_crc << 1) | (index_be << 2) | (whole << 3) | (chain << 4) | (strings << 7)
    ndim = len(per)
    axes = 0
    for i, (p, c) in enumerate(zip(per, inner)):
        axes |= (p - 1) << (4 * i) | (c - 1) << (4 * i + 2)
    return bytes([flags, ndim - 1, axes & 0xFF, axes >> 8])


def shard_chain(chain, ndim, strings):
    if strings:
        return [[{"name": "vlen-utf8"}], [{"name": "vlen-utf8"}, CRC]][chain & 1]
    trF = {"name": "transpose", "configuration": {"order": list(range(ndim))[::-1]}}
    return [
        [BLE], [BBE], [BLE, CRC], [BLE, {"name": "zstd", "configuration": {"level": 1}}],
        [BLE, {"name": "gzip", "configuration": {"level": 1}}], [trF, BLE],
        [BLE, gf.blosc3("lz4", "shuffle", 2, clevel=1)],
        [gf.sharding([1] * ndim, [BLE], index_codecs=[BLE, CRC])],
    ][chain]


def shard_seeds():
    cases = [
        # index_start, no_crc, index_be, chain, strings, per, inner, missing
        (0, 0, 0, 0, 0, (2, 2), (2, 2), set()),
        (1, 0, 0, 2, 0, (3,), (4,), {(1,)}),
        (0, 1, 1, 3, 0, (2, 1, 2), (1, 3, 2), set()),
        (0, 0, 0, 4, 0, (4,), (2,), {(0,), (3,)}),
        (1, 1, 0, 5, 0, (2, 2), (3, 2), set()),
        (0, 0, 0, 6, 0, (1, 2), (4, 4), set()),
        (0, 0, 0, 7, 0, (2, 2), (2, 1), set()),
        (0, 0, 0, 0, 1, (2, 2), (1, 2), {(1, 1)}),
        (1, 0, 1, 1, 1, (3,), (2,), set()),
        (0, 0, 1, 1, 0, (1,), (1,), set()),
    ]
    for n, (st, nc, be, chain, strings, per, inner, missing) in enumerate(cases):
        ndim = len(per)
        shape = [p * c for p, c in zip(per, inner)]
        idx_codecs = [BBE if be else BLE] + ([] if nc else [CRC])
        cfg = {"chunk_shape": list(inner), "codecs": shard_chain(chain, ndim, strings),
               "index_codecs": idx_codecs, "index_location": "start" if st else "end"}
        data = data_for("string" if strings else "<u2", shape)
        shard = encode_shard(data, cfg, missing, n % 2 == 1)
        put("fuzz_shard_index", "whole-%d" % n, shard_header(st, nc, be, 1, chain, strings, per, inner) + shard)
        # raw index mode: the shard's size (u32 LE), then its index
        nidx = int(np.prod(per)) * 16 + (0 if nc else 4)
        index = shard[:nidx] if st else shard[-nidx:]
        put("fuzz_shard_index", "index-%d" % n,
            shard_header(st, nc, be, 0, chain, strings, per, inner) + struct.pack("<I", len(shard)) + index)


# ------------------------------------------------------------------ codecs
def codec_seeds():
    raw = [b"", b"a", bytes(range(256)) * 3,
           np.arange(300, dtype="<f4").tobytes(), (b"abcabcabd" * 50)]
    n = 0
    for r in raw:
        buf = np.frombuffer(r, dtype="u1")
        frames = [
            (0, 0x00, numcodecs.Blosc(cname="lz4", shuffle=numcodecs.Blosc.SHUFFLE).encode(buf)),
            (0, 0x10, numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE).encode(buf)),
            (0, 0x20, numcodecs.Blosc(cname="blosclz", clevel=0, shuffle=numcodecs.Blosc.NOSHUFFLE).encode(buf)),
            (0, 0x30, numcodecs.Blosc(cname="zlib", clevel=9, shuffle=numcodecs.Blosc.SHUFFLE,
                                      blocksize=256).encode(buf)),
            (1, 0x03, gf.zstd_frame(r, 3, False)),
            (1, 0x01, gf.zstd_frame(r, 1, len(r) > 0)),
            (2, 0x00, numcodecs.LZ4().encode(buf)),
            (3, 0x05, gzip.compress(r, compresslevel=5, mtime=0)),
            (4, 0x01, numcodecs.Zlib(level=1).encode(buf)),
            (5, 0x00, r + struct.pack("<I", gf.crc32c(r))),
        ]
        for sel, par, f in frames:
            put("fuzz_codecs", "%02d-%d" % (n, sel), bytes([sel, par]) + bytes(f))
            n += 1
    # a zstd frame without a content size (streaming writer)
    import zlib  # noqa: F401
    put("fuzz_codecs", "zstd-two-frames", bytes([1, 0]) + gf.zstd_frame(b"x" * 100, 1, False) * 2)
    put("fuzz_codecs", "gzip-two-members", bytes([3, 0]) + gzip.compress(b"one", mtime=0) +
        gzip.compress(b"two", mtime=0) + b"\0\0")
    put("fuzz_codecs", "bz2", bytes([6, 9]) + bytes(numcodecs.BZ2(level=9).encode(b"bz2 " * 300)))
    put("fuzz_codecs", "bz2-two-streams", bytes([6, 1]) + bytes(numcodecs.BZ2(level=1).encode(b"one")) +
        bytes(numcodecs.BZ2(level=1).encode(b"two")))


def vlen_seeds():
    vc = numcodecs.VLenUTF8()
    for n, items in enumerate([[], [""], ["a", "bc", "caf\u00e9"], gf.STRINGS]):
        enc = bytes(vc.encode(np.array(items, dtype=object)))
        put("fuzz_vlen", "n%d" % n, bytes([len(items)]) + enc)
        put("fuzz_vlen", "any%d" % n, b"\xff" + enc)


# ------------------------------------------------------------------ chunks
# Mirrors the table of tests/fuzz/fuzz_chunk.c (index = selector byte).
def chunk_seeds():
    ZS = {"name": "zstd", "configuration": {"level": 3, "checksum": False}}
    GZ = {"name": "gzip", "configuration": {"level": 5}}
    VL = {"name": "vlen-utf8"}

    def TR(order):
        return {"name": "transpose", "configuration": {"order": order}}

    def SH(inner, codecs, loc):
        return gf.sharding(inner, codecs, index_codecs=[BLE, CRC], location=loc)

    v3 = [
        ("uint16", (4, 3), [BLE]),
        ("int32", (4, 3), [BBE]),
        ("float64", (4, 3), [TR([1, 0]), BBE, ZS]),
        ("uint8", (5, 7), [BLE, gf.blosc3("lz4", "bitshuffle", 1)]),
        ("float32", (9,), [BLE, GZ]),
        ("int64", (3, 3), [BLE, CRC]),
        ("float32", (3, 3), [BLE, gf.blosc3("zstd", "shuffle", 4), CRC]),
        ("string", (3, 2), [VL, ZS]),
        ("string", (3, 2), [TR([1, 0]), VL, CRC]),
        ("complex64", (2, 2), [BBE, GZ]),
        ("float16", (2, 3, 4), [TR([2, 0, 1]), BBE]),
        ("bool", (8,), [BLE, gf.blosc3("blosclz", "noshuffle", 1)]),
        ("uint16", (4, 4), [SH((2, 2), [BLE, CRC], "end")]),
        ("int16", (4, 4), [SH((2, 2), [BBE, ZS], "start")]),
        ("float32", (4, 4), [TR([1, 0]), SH((2, 4), [BLE, GZ], "end"), CRC]),
        ("string", (4, 4), [SH((2, 2), [VL], "end")]),
        ("uint32", (4, 4), [SH((2, 2), [SH((1, 1), [BLE], "end")], "start")]),
        ("uint8", (64,), [BLE, ZS, CRC, GZ]),
        ("string", (16,), [VL, GZ, ZS]),
    ]
    np_names = {v: k for k, v in gf.V3_NAME.items()}
    for i, (dtype, chunk, codecs) in enumerate(v3):
        data = data_for("string" if dtype == "string" else np_names[dtype], chunk)
        missing = {(0,) * len(chunk)} if i == 13 else set()
        put("fuzz_chunk", "%02d" % i, bytes([i]) + encode(data, codecs, missing, i % 2 == 0))
    # v2 entries: written by zarr 2.13 itself, the chunk file taken as it is.
    tmp = tempfile.mkdtemp()
    try:
        root = zarr.open_group(tmp, mode="w")
        v2 = [
            (19, dict(shape=(3, 5), chunks=(3, 5), dtype=">f8", order="F", compressor=numcodecs.Zlib(level=1))),
            (20, dict(shape=(3, 5), chunks=(3, 5), dtype="<i4", compressor=numcodecs.LZ4())),
            (21, dict(shape=(3,), chunks=(3,), dtype=object, object_codec=numcodecs.VLenUTF8(),
                      compressor=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1))),
            (22, dict(shape=(2, 2), chunks=(2, 2), dtype="<U3", order="F", compressor=None)),
            (23, dict(shape=(4,), chunks=(4,), dtype=">c16", compressor=numcodecs.Zstd(level=1))),
        ]
        for sel, kw in v2:
            a = root.create_dataset("a%d" % sel, **kw)
            if a.dtype == object:
                a[...] = np.array(["x", "", "caf\u00e9"], dtype=object)
            elif a.dtype.kind == "U":
                a[...] = np.array([["ab", "c"], ["", "xyz"]], dtype="<U3")
            else:
                a[...] = data_for(a.dtype.str, a.shape)
            key = ".".join(["0"] * len(a.shape))
            with open(os.path.join(tmp, "a%d" % sel, key), "rb") as f:
                put("fuzz_chunk", "%02d" % sel, bytes([sel]) + f.read())
    finally:
        shutil.rmtree(tmp)


# ------------------------------------------------------------------ stores
def store_to_input(path, skip=()):
    """The fuzz_anndata input describing the directory tree at `path`."""
    parts = []
    for dp, dns, fns in os.walk(path):
        dns.sort()
        for fn in sorted(fns):
            full = os.path.join(dp, fn)
            rel = os.path.relpath(full, path)
            if rel in skip:
                continue
            with open(full, "rb") as f:
                parts.append(b"@@@ " + rel.encode() + b"\n" + f.read())
    return b"\n".join(parts)


def anndata_seeds():
    import anndata as ad
    import scipy.sparse as sp
    tmp = tempfile.mkdtemp()
    try:
        obs, var = gf.make_adata_frames(8, 3)
        X = (np.arange(24, dtype=np.float32).reshape(8, 3) - 5) / 2
        p = os.path.join(tmp, "dense")
        ad.AnnData(X=X, obs=obs, var=var).write_zarr(p, chunks=(4, 3))
        put("fuzz_anndata", "v2-dense", store_to_input(p))
        zarr.consolidate_metadata(p)
        put("fuzz_anndata", "v2-consolidated", store_to_input(p, skip={"X/.zarray"}))

        p = os.path.join(tmp, "csr")
        Xs = sp.csr_matrix(np.where(X > 1, X, 0))
        ad.AnnData(X=Xs, obs=obs[["cell_type", "n_genes"]], var=var).write_zarr(p, chunks=(4,))
        put("fuzz_anndata", "v2-csr", store_to_input(p))

        # zarr v3, written by hand: a csr X, a categorical and a string column.
        p = os.path.join(tmp, "v3")
        gf.v3_group(p, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
        gf.v3_group(os.path.join(p, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                           "shape": [8, 3]})
        d = Xs.data.astype("<f4")
        gf.v3_array(os.path.join(p, "X", "data"), d, (4,), [BLE, gf.zstd3(1, False)], 0)
        gf.v3_array(os.path.join(p, "X", "indices"), Xs.indices.astype("<i4"), (8,), [BLE], 0)
        gf.v3_array(os.path.join(p, "X", "indptr"), Xs.indptr.astype("<i8"), (9,),
                    [gf.sharding((3,), [BLE])], 0)
        gf.v3_group(os.path.join(p, "obs"), {"encoding-type": "dataframe", "encoding-version": "0.2.0",
                                             "_index": "_index", "column-order": ["ct", "name"]})
        gf.v3_array(os.path.join(p, "obs", "_index"),
                    np.array(["c%d" % i for i in range(8)], dtype=object), (4,), [{"name": "vlen-utf8"}], "",
                    dtype="string", attrs={"encoding-type": "string-array"})
        ct = os.path.join(p, "obs", "ct")
        gf.v3_group(ct, {"encoding-type": "categorical", "encoding-version": "0.2.0", "ordered": False})
        gf.v3_array(os.path.join(ct, "codes"), np.array([0, 1, -1, 1, 0, 0, 1, 1], dtype="|i1"), (8,), [BLE], 0)
        gf.v3_array(os.path.join(ct, "categories"), np.array(["a", "b"], dtype=object), (2,),
                    [{"name": "vlen-utf8"}], "", dtype="string")
        nm = os.path.join(p, "obs", "name")
        gf.v3_group(nm, {"encoding-type": "nullable-integer", "encoding-version": "0.1.0"})
        gf.v3_array(os.path.join(nm, "values"), np.arange(8, dtype="<i8"), (3,), [BBE], 0)
        gf.v3_array(os.path.join(nm, "mask"), np.array([0, 1, 0, 0, 1, 0, 0, 0], dtype=bool), (8,), [BLE], False)
        gf.v3_group(os.path.join(p, "var"), {"encoding-type": "dataframe", "encoding-version": "0.2.0",
                                             "_index": "_index", "column-order": []})
        put("fuzz_anndata", "v3-csr", store_to_input(p))

        # v3 dense X with consolidated metadata in the root zarr.json, and a
        # collection of one dataset.
        p = os.path.join(tmp, "v3c")
        metas = {}
        root = gf.v3_group(p, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
        metas["X"] = gf.v3_array(os.path.join(p, "X"), X, (4, 2), [{"name": "transpose", "configuration":
                                                                   {"order": [1, 0]}}, BLE, CRC], 0.0)
        metas["obs"] = gf.v3_group(os.path.join(p, "obs"), {"encoding-type": "dataframe", "_index": "_index",
                                                            "column-order": ["v"]})
        metas["obs/v"] = gf.v3_array(os.path.join(p, "obs", "v"), np.arange(8, dtype="<u2"), (8,), [BLE], 0)
        root["consolidated_metadata"] = {"kind": "inline", "must_understand": False, "metadata": metas}
        gf.json_write(os.path.join(p, "zarr.json"), root)
        put("fuzz_anndata", "v3-consolidated", store_to_input(p))

        p = os.path.join(tmp, "coll")
        gf.v3_group(p, {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
        ds = os.path.join(p, "dataset_0")
        gf.v3_group(ds, {"encoding-type": "anndata"})
        gf.v3_array(os.path.join(ds, "X"), X[:2], (2, 3), [BLE], 0)
        put("fuzz_anndata", "v3-collection", store_to_input(p))
    finally:
        shutil.rmtree(tmp)


def main():
    reset()
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in v2_arrays(tmp):
            put("fuzz_meta_v2", name, text)
    metas = v3_metas()
    for name, m in metas:
        put("fuzz_meta_v3", name, json.dumps(m, indent=2))
    put("fuzz_meta_v3", "consolidated", compact(consolidated_root(metas)))
    shard_seeds()
    codec_seeds()
    vlen_seeds()
    chunk_seeds()
    anndata_seeds()
    total = 0
    for t in TARGETS:
        d = os.path.join(OUT, t)
        total += sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print("make_seeds: %s, %d bytes in all" % (OUT, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
