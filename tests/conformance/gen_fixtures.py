#!/usr/bin/python3
"""Conformance fixtures for `annbatch get`.

Usage: /usr/bin/python3 tests/conformance/gen_fixtures.py OUTDIR

Writes OUTDIR/stores/<store>/...   zarr v2 stores written by zarr-python 2.13 /
                                   anndata 0.8, zarr v3 stores written here by hand
       OUTDIR/expected/<case>.*    the bytes (or JSON) `annbatch get` must print
       OUTDIR/manifest.tsv         one case per line, tab separated:
                                   name mode store node args expected

Paths in the manifest are relative to OUTDIR.  `-` stands for "none" in the node
and args columns.  In args the token @OUT means "a fresh output file": run.sh
substitutes a path and compares that file instead of stdout.

Truth: zarr 2.13 / numcodecs / anndata write the v2 stores; numpy computes every
expected output from the source arrays, never from what was written.  The v3
files follow the zarr v3 core and sharding_indexed specifications; compressed
payloads come from numcodecs (blosc, zstd) and the Python stdlib (gzip), the
CRC-32C and XXH64 checksums are computed here and checked against known vectors.
Everything is deterministic: same OUTDIR contents on every run.
"""

import gzip
import json
import os
import shutil
import struct
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")

import numcodecs  # noqa: E402
import zarr  # noqa: E402

SEED = 20240611
U64MAX = 2**64 - 1

# numcodecs.GZip stamps the current time into the gzip header; pin it so the
# generated stores are byte-identical from run to run.
gzip.time = type("FrozenTime", (), {"time": staticmethod(lambda: 0.0)})


# --------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _CRC32C
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


_M64 = U64MAX
_P1, _P2, _P3 = 11400714785074694791, 14029467366897019727, 1609587929392839161
_P4, _P5 = 9650029242287828579, 2870177450012600261


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _xround(acc, v):
    acc = (acc + v * _P2) & _M64
    return (_rotl(acc, 31) * _P1) & _M64


def xxh64(data, seed=0):
    data = bytes(data)
    n, p = len(data), 0
    u64 = lambda q: int.from_bytes(data[q:q + 8], "little")  # noqa: E731
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while p + 32 <= n:
            v = [_xround(v[i], u64(p + 8 * i)) for i in range(4)]
            p += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _xround(0, x)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while p + 8 <= n:
        h = (_rotl(h ^ _xround(0, u64(p)), 27) * _P1 + _P4) & _M64
        p += 8
    if p + 4 <= n:
        h = (_rotl(h ^ ((int.from_bytes(data[p:p + 4], "little") * _P1) & _M64), 23) * _P2 + _P3) & _M64
        p += 4
    while p < n:
        h = (_rotl(h ^ ((data[p] * _P5) & _M64), 11) * _P1) & _M64
        p += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


assert crc32c(b"123456789") == 0xE3069283
assert xxh64(b"") == 0xEF46DB3751D8E999
assert xxh64(b"a") == 0xD24EC4F1A98C6E5B


def zstd_frame(raw, level, checksum):
    """A standard zstd frame (numcodecs.Zstd), with the optional content checksum
    (low 32 bits of XXH64 of the content) added by hand."""
    frame = bytearray(numcodecs.Zstd(level=level).encode(raw))
    assert frame[:4] == b"\x28\xb5\x2f\xfd"
    assert not frame[4] & 0x04
    if checksum:
        frame[4] |= 0x04
        frame += struct.pack("<I", xxh64(raw) & 0xFFFFFFFF)
        assert numcodecs.Zstd().decode(bytes(frame)) == bytes(raw)
    return bytes(frame)


# --------------------------------------------------------------------------
# expected outputs
# --------------------------------------------------------------------------

def le_bytes(a):
    """What `annbatch get` prints for a numeric/bool array: LE, C order."""
    a = np.asarray(a)
    if a.dtype.kind == "b":
        a = a.astype("u1")
    elif a.dtype.kind in "iufc":
        a = a.astype(a.dtype.newbyteorder("<"))
    else:
        raise TypeError(a.dtype)
    return np.ascontiguousarray(a).tobytes()


def json_strings(a):
    out = []
    for x in np.asarray(a, dtype=object).ravel(order="C"):
        if isinstance(x, bytes):
            x = x.rstrip(b"\0").decode("ascii")
        elif isinstance(x, str):
            x = x.rstrip("\0")
        out.append(x)
    return out


# --------------------------------------------------------------------------
# deterministic data
# --------------------------------------------------------------------------

RNG = np.random.default_rng(SEED)

STRINGS = ["", "a", "plain ascii", "quote\"in", "back\\slash", "tab\there",
           "new\nline", "caf\u00e9", "\u65e5\u672c\u8a9e", "emoji \U0001F9EC",
           "\u00fcber-\u00c5ngstr\u00f6m", "x" * 40, "/slash/", "ctrl\u0001",
           "\u00a0nbsp", "last"]


def make_data(dtype, shape, compressible=False):
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) if len(shape) else 1
    if dt.kind == "b":
        v = RNG.random(n) < 0.4
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        if compressible:
            lo, hi = max(int(info.min), -50), min(int(info.max), 50)
            v = RNG.integers(lo, hi, n, endpoint=True).astype(dt)
        else:
            v = RNG.integers(int(info.min), int(info.max), n, endpoint=True, dtype=dt.newbyteorder("="))
        if n >= 2 and not compressible:
            v[0], v[-1] = info.min, info.max
    elif dt.kind == "f":
        if compressible:
            v = np.round(RNG.standard_normal(n) * 4) / 4
        else:
            v = RNG.standard_normal(n) * 1000
        v = v.astype(dt.newbyteorder("="))
        if n >= 8 and not compressible:
            fi = np.finfo(v.dtype)
            v[1:8] = [np.nan, np.inf, -np.inf, -0.0, fi.tiny / 2, fi.max, fi.eps]
    elif dt.kind == "c":
        v = (RNG.standard_normal(n) * 100 + 1j * RNG.standard_normal(n) * 100)
        v = v.astype(dt.newbyteorder("="))
        if n >= 3:
            v[1] = complex(np.nan, -0.0)
            v[2] = complex(np.inf, 1.5)
    else:
        raise TypeError(dt)
    return np.asarray(v).reshape(shape).astype(dt)


# --------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------

class Gen:
    def __init__(self, outdir):
        self.out = os.path.abspath(outdir)
        self.stores = os.path.join(self.out, "stores")
        self.expected = os.path.join(self.out, "expected")
        self.cases = []
        self.names = set()
        self.cli_cases = []

    def spath(self, store):
        return os.path.join(self.stores, store)

    def case(self, name, mode, store, node, args, expected):
        assert name not in self.names, name
        assert "\t" not in name and " " not in name
        self.names.add(name)
        if mode == "bytes":
            rel = "expected/%s.bin" % name
            with open(os.path.join(self.out, rel), "wb") as f:
                f.write(expected)
        elif mode == "json":
            rel = "expected/%s.json" % name
            with open(os.path.join(self.out, rel), "w", encoding="utf-8") as f:
                json.dump(expected, f, ensure_ascii=False)
                f.write("\n")
        elif mode == "fail":
            rel = expected
            assert rel and "\t" not in rel
        else:
            raise ValueError(mode)
        args = args if args else "-"
        self.cases.append((name, mode, "stores/" + store, node or "-", args, rel))

    def array_cases(self, prefix, store, node, data, rows=(), extra_args=""):
        """Whole array plus the given (a, b) row selections."""
        ea = (" " + extra_args) if extra_args else ""
        self.case(prefix, "bytes", store, node, extra_args, le_bytes(data))
        for a, b in rows:
            self.case("%s_rows_%d_%d" % (prefix, a, b), "bytes", store, node,
                      "--rows %d:%d%s" % (a, b, ea), le_bytes(data[a:b]))

    def cli_case(self, name, mode, args, expected):
        """A case for cli_cases.sh: `annbatch ARGS` run in OUTDIR/stores (store
        paths relative to it); mode `text`: stdout must equal `expected`
        exactly; `grep`: exit 0 and stdout contains `expected`; `fail`: a clean
        one-line failure containing `expected`."""
        assert name not in self.names, name
        self.names.add(name)
        if mode == "text":
            rel = "expected/%s.txt" % name
            with open(os.path.join(self.out, rel), "w") as f:
                f.write(expected)
        else:
            assert mode in ("fail", "grep") and "\t" not in expected
            rel = expected
        self.cli_cases.append((name, mode, args, rel))

    def write_manifest(self):
        with open(os.path.join(self.out, "cli_manifest.tsv"), "w") as f:
            f.write("# name\tmode\targs\texpected\n")
            for c in self.cli_cases:
                f.write("\t".join(c) + "\n")
        with open(os.path.join(self.out, "manifest.tsv"), "w") as f:
            f.write("# name\tmode\tstore\tnode\targs\texpected\n")
            for c in self.cases:
                f.write("\t".join(c) + "\n")


# --------------------------------------------------------------------------
# zarr v2 (zarr-python 2.13)
# --------------------------------------------------------------------------

def v2_array(root, name, data, chunks, **kw):
    a = root.create_dataset(name, shape=data.shape, chunks=chunks, dtype=data.dtype, **kw)
    a[...] = data
    return a


def check_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.kind in "iufcb":
        assert le_bytes(a) == le_bytes(b.astype(a.dtype)), "zarr read-back differs"
    else:
        assert json_strings(a) == json_strings(b)


V2_DTYPES = ["|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4",
             "<f8", "|b1", ">i2", ">i4", ">f4", ">f8", ">u8", "<c8", "<c16", ">c16"]


def gen_v2(g):
    # ---- dtypes: every dtype on a ragged 2-D grid (23 x 17 in 6 x 5 chunks) ----
    st = "v2_dtypes"
    root = zarr.open_group(g.spath(st), mode="w")
    for dt in V2_DTYPES:
        name = "a_" + dt.replace("<", "le_").replace(">", "be_").replace("|", "")
        data = make_data(dt, (23, 17))
        a = v2_array(root, name, data, (8, 6))
        check_same(data, a[...])
        g.case("v2_dtype_" + name[2:], "bytes", st, name, "-", le_bytes(data))
    # 1-D and 3-D for a few dtypes
    for dt, shape, chunks in [("<f8", (101,), (16,)), (">i4", (9, 7, 5), (4, 3, 2)),
                              ("|u1", (9, 7, 5), (2, 4, 3)), ("<f2", (30,), (7,))]:
        name = "nd%d_%s" % (len(shape), dt.replace("<", "le_").replace(">", "be_").replace("|", ""))
        data = make_data(dt, shape)
        a = v2_array(root, name, data, chunks)
        check_same(data, a[...])
        g.case("v2_" + name, "bytes", st, name, "-", le_bytes(data))
    # 0-d arrays
    for dt, val in [("<i4", -123456), (">f8", 2.5), ("|b1", True)]:
        name = "scalar_" + dt.replace("<", "le_").replace(">", "be_").replace("|", "")
        a = root.create_dataset(name, shape=(), dtype=dt)
        a[...] = val
        g.case("v2_" + name, "bytes", st, name, "-", le_bytes(np.array(val, dtype=dt)))
    # explicit dimension_separator "." written into .zarray
    data = make_data("<i2", (13, 11))
    root.create_dataset("sep_dot", shape=data.shape, chunks=(4, 3), dtype=data.dtype,
                        dimension_separator=".")[...] = data
    g.case("v2_sep_dot", "bytes", st, "sep_dot", "-", le_bytes(data))
    data = make_data("<f4", (13, 11, 3))
    root.create_dataset("sep_slash", shape=data.shape, chunks=(4, 3, 2), dtype=data.dtype,
                        dimension_separator="/")[...] = data
    g.case("v2_sep_slash", "bytes", st, "sep_slash", "-", le_bytes(data))
    g.case("v2_sep_slash_rows_3_10", "bytes", st, "sep_slash", "--rows 3:10", le_bytes(data[3:10]))

    # ---- row selections on a 2-D f4 (rows 0..22, chunk rows 6) ----
    st = "v2_rows"
    root = zarr.open_group(g.spath(st), mode="w")
    data = make_data("<f4", (23, 17))
    v2_array(root, "m", data, (6, 5))
    g.array_cases("v2_rows_f4", st, "m", data,
                  rows=[(0, 23), (7, 10), (6, 12), (3, 17), (17, 23), (18, 23), (22, 23),
                        (0, 1), (5, 5), (0, 0), (23, 23)])
    data1 = make_data(">i8", (50,))
    v2_array(root, "v", data1, (8,))
    g.array_cases("v2_rows_1d_be_i8", st, "v", data1, rows=[(8, 16), (9, 41), (45, 50), (12, 12)])
    data3 = make_data("<u2", (11, 4, 3))
    v2_array(root, "t", data3, (3, 3, 2), order="F")
    g.array_cases("v2_rows_3d_F_u2", st, "t", data3, rows=[(2, 9), (9, 11), (4, 5)])
    # -o FILE
    g.case("v2_rows_f4_outfile", "bytes", st, "m", "--rows 3:17 -o @OUT", le_bytes(data[3:17]))
    g.case("v2_rows_f4_outfile_whole", "bytes", st, "m", "-o @OUT", le_bytes(data))
    # a store whose root is an array (node omitted)
    rdata = make_data("<i4", (10, 3))
    ra = zarr.open(g.spath("v2_root_array"), mode="w", shape=rdata.shape, chunks=(4, 2), dtype=rdata.dtype)
    ra[...] = rdata
    g.case("v2_root_array", "bytes", "v2_root_array", None, "-", le_bytes(rdata))
    g.case("v2_root_array_rows", "bytes", "v2_root_array", None, "--rows 5:9", le_bytes(rdata[5:9]))

    # ---- order F / C ----
    st = "v2_order"
    root = zarr.open_group(g.spath(st), mode="w")
    for order in "CF":
        for dt, shape, chunks in [("<i4", (19, 13), (5, 4)), (">f8", (19, 13), (5, 4)),
                                  ("<f4", (7, 6, 5), (3, 4, 2)), ("|b1", (7, 6, 5), (2, 2, 4)),
                                  ("<c8", (9, 5), (4, 4))]:
            name = "o%s_%dd_%s" % (order, len(shape), dt.replace("<", "le_").replace(">", "be_").replace("|", ""))
            data = make_data(dt, shape)
            a = v2_array(root, name, data, chunks, order=order)
            check_same(data, a[...])
            g.case("v2_order_" + name[1:], "bytes", st, name, "-", le_bytes(data))
    data = make_data("<i2", (19, 13))
    v2_array(root, "F_rows", data, (5, 4), order="F", dimension_separator="/")
    g.array_cases("v2_order_F_slash_i2", st, "F_rows", data, rows=[(4, 11), (15, 19)])

    # ---- fill values and missing chunks ----
    st = "v2_fill"
    root = zarr.open_group(g.spath(st), mode="w")
    fills = [
        ("num_i4_2d", "<i4", (20, 9), (6, 4), 42),
        ("num_neg_i8_1d", "<i8", (40,), (7,), -7),
        ("num_f8_3d", ">f8", (8, 7, 6), (3, 3, 4), -1.5),
        ("num_u2_2d", "<u2", (20, 9), (6, 4), 65535),
        ("nan_f4_2d", "<f4", (20, 9), (6, 4), np.nan),
        ("nan_be_f8_1d", ">f8", (40,), (7,), np.nan),
        ("inf_f4_3d", "<f4", (8, 7, 6), (3, 3, 4), np.inf),
        ("ninf_f8_2d", "<f8", (20, 9), (6, 4), -np.inf),
        ("ninf_f2_1d", "<f2", (40,), (7,), -np.inf),
        ("null_i4_2d", "<i4", (20, 9), (6, 4), None),
        ("null_f8_1d", "<f8", (40,), (7,), None),
        ("null_u1_3d", "|u1", (8, 7, 6), (3, 3, 4), None),
        ("true_b1_2d", "|b1", (20, 9), (6, 4), True),
        ("cplx_c16_1d", "<c16", (40,), (7,), 1.5 - 2j),
    ]
    for name, dt, shape, chunks, fv in fills:
        src = make_data(dt, shape)
        a = root.create_dataset(name, shape=shape, chunks=chunks, dtype=dt, fill_value=fv)
        expect = np.zeros(shape, dtype=dt) if fv is None else np.full(shape, fv, dtype=dt)
        # write a few chunk-aligned blocks only; the rest stays absent
        if len(shape) == 1:
            regions = [np.s_[chunks[0]:3 * chunks[0]], np.s_[5 * chunks[0]:]]
        elif len(shape) == 2:
            regions = [np.s_[:chunks[0], :], np.s_[2 * chunks[0]:3 * chunks[0], chunks[1]:2 * chunks[1]],
                       np.s_[3 * chunks[0]:, 2 * chunks[1]:]]
        else:
            regions = [np.s_[:chunks[0], :chunks[1], :], np.s_[chunks[0]:, chunks[1]:, chunks[2]:]]
        for r in regions:
            a[r] = src[r]
            expect[r] = src[r]
        nfiles = len([f for f in os.listdir(os.path.join(g.spath(st), name)) if not f.startswith(".")])
        assert nfiles < int(np.prod(a.cdata_shape)), name
        if fv is not None:
            check_same(expect, a[...])
        g.case("v2_fill_" + name, "bytes", st, name, "-", le_bytes(expect))
    # an array with no chunk at all, and rows across absent chunks
    a = root.create_dataset("empty_nan", shape=(10, 3), chunks=(4, 2), dtype="<f8", fill_value=np.nan)
    g.case("v2_fill_all_missing", "bytes", st, "empty_nan", "-", le_bytes(np.full((10, 3), np.nan)))
    src = make_data("<i4", (20, 9))
    a = root.create_dataset("rows_i4", shape=(20, 9), chunks=(6, 4), dtype="<i4", fill_value=-1)
    a[6:12] = src[6:12]
    expect = np.full((20, 9), -1, dtype="<i4")
    expect[6:12] = src[6:12]
    g.array_cases("v2_fill_rows_i4", st, "rows_i4", expect, rows=[(4, 14), (12, 20)])

    # ---- strings ----
    st = "v2_strings"
    root = zarr.open_group(g.spath(st), mode="w")
    s = np.array(STRINGS * 2, dtype=object)
    a = root.create_dataset("vlen", shape=s.shape, chunks=(5,), dtype=object, object_codec=numcodecs.VLenUTF8())
    a[...] = s
    check_same(s, a[...])
    g.case("v2_str_vlen_1d", "json", st, "vlen", "-", json_strings(s))
    g.case("v2_str_vlen_rows", "json", st, "vlen", "--rows 3:17", json_strings(s[3:17]))
    g.case("v2_str_vlen_rows_empty", "json", st, "vlen", "--rows 4:4", [])
    s2 = np.array(STRINGS[:15], dtype=object).reshape(5, 3)
    a = root.create_dataset("vlen2d", shape=s2.shape, chunks=(2, 2), dtype=object,
                            object_codec=numcodecs.VLenUTF8(), compressor=numcodecs.Zstd(level=3))
    a[...] = s2
    g.case("v2_str_vlen_2d_zstd", "json", st, "vlen2d", "-", json_strings(s2))
    a = root.create_dataset("vlen_nocomp", shape=s.shape, chunks=(7,), dtype=object,
                            object_codec=numcodecs.VLenUTF8(), compressor=None)
    a[...] = s
    g.case("v2_str_vlen_uncompressed", "json", st, "vlen_nocomp", "-", json_strings(s))
    sb = np.array([b"", b"a", b"abcdefgh", b"quote\"", b"back\\sl", b"sp ace", b"1234567", b"x"], dtype="|S8")
    a = root.create_dataset("fixS8", shape=sb.shape, chunks=(3,), dtype="|S8")
    a[...] = sb
    g.case("v2_str_S8", "json", st, "fixS8", "-", json_strings(sb))
    g.case("v2_str_S8_rows", "json", st, "fixS8", "--rows 2:7", json_strings(sb[2:7]))
    su = np.array(["", "\u00e9", "\u65e5\u672c\u8a9e", "abcdef", "q\"\\", "\U0001F9EC", "tab\t", "zz"], dtype="<U6")
    a = root.create_dataset("fixU6", shape=su.shape, chunks=(3,), dtype="<U6")
    a[...] = su
    g.case("v2_str_U6", "json", st, "fixU6", "-", json_strings(su))
    su2 = su[:6].reshape(2, 3)
    a = root.create_dataset("fixU6_2d_F", shape=su2.shape, chunks=(2, 2), dtype=">U6", order="F")
    a[...] = su2
    check_same(su2, a[...])
    g.case("v2_str_U6_be_2d_F", "json", st, "fixU6_2d_F", "-", json_strings(su2))

    # ---- compressors ----
    st = "v2_codecs"
    root = zarr.open_group(g.spath(st), mode="w")
    cnames = [c for c in ["blosclz", "lz4", "lz4hc", "zlib", "zstd", "snappy"]
              if c in numcodecs.blosc.list_compressors()]
    shuffles = [(0, "noshuffle"), (1, "shuffle"), (2, "bitshuffle"), (-1, "autoshuffle")]
    dts = ["<f8", "<i4", "<u2", "|u1"]
    for ci, cname in enumerate(cnames):
        for si, (sh, shname) in enumerate(shuffles):
            dt = dts[(ci + si) % len(dts)]
            data = make_data(dt, (23, 17), compressible=(ci + si) % 3 != 0)
            name = "blosc_%s_%s" % (cname, shname)
            a = v2_array(root, name, data, (8, 6),
                         compressor=numcodecs.Blosc(cname=cname, clevel=5, shuffle=sh))
            check_same(data, a[...])
            g.case("v2_" + name, "bytes", st, name, "-", le_bytes(data))
    extra = [
        ("blosc_lz4_blocksize256", numcodecs.Blosc("lz4", 5, 1, blocksize=256), "<f4", (40, 30), (20, 16)),
        ("blosc_zstd_clevel0", numcodecs.Blosc("zstd", 0, 1), "<i8", (23, 17), (8, 6)),
        ("blosc_lz4_clevel9_c16", numcodecs.Blosc("lz4", 9, 2), "<c16", (23, 17), (8, 6)),
        ("blosc_lz4_be_f8", numcodecs.Blosc("lz4", 5, 1), ">f8", (23, 17), (8, 6)),
        ("zstd_1", numcodecs.Zstd(level=1), "<f4", (23, 17), (8, 6)),
        ("zstd_9", numcodecs.Zstd(level=9), "<i8", (23, 17), (8, 6)),
        ("zstd_be_i4", numcodecs.Zstd(level=3), ">i4", (23, 17), (8, 6)),
        ("lz4_1", numcodecs.LZ4(acceleration=1), "<f8", (23, 17), (8, 6)),
        ("lz4_10", numcodecs.LZ4(acceleration=10), "<u2", (23, 17), (8, 6)),
        ("gzip_1", numcodecs.GZip(level=1), "<i2", (23, 17), (8, 6)),
        ("gzip_9", numcodecs.GZip(level=9), "<f4", (23, 17), (8, 6)),
        ("zlib_1", numcodecs.Zlib(level=1), "|i1", (23, 17), (8, 6)),
        ("zlib_9", numcodecs.Zlib(level=9), "<f8", (23, 17), (8, 6)),
        ("none_f4", None, "<f4", (23, 17), (8, 6)),
        ("none_be_u8", None, ">u8", (23, 17), (8, 6)),
        ("none_b1", None, "|b1", (23, 17), (8, 6)),
        ("none_F_i4", None, "<i4", (23, 17), (8, 6)),
    ]
    for name, comp, dt, shape, chunks in extra:
        data = make_data(dt, shape, compressible=True)
        kw = {"order": "F"} if "_F_" in name else {}
        a = v2_array(root, name, data, chunks, compressor=comp, **kw)
        check_same(data, a[...])
        g.case("v2_" + name, "bytes", st, name, "-", le_bytes(data))
    data = make_data("<f4", (23, 17))
    v2_array(root, "gzip_rows", data, (6, 5), compressor=numcodecs.GZip(level=5))
    g.array_cases("v2_gzip_f4", st, "gzip_rows", data, rows=[(6, 18)])

    # ---- consolidated metadata ----
    for st, only in [("v2_consolidated", False), ("v2_consolidated_only", True)]:
        root = zarr.open_group(g.spath(st), mode="w")
        root.attrs["title"] = "consolidated"
        sub = root.create_group("g1").create_group("g2")
        sub.attrs["k"] = [1, 2]
        data = make_data("<f8", (15, 4))
        v2_array(sub, "arr", data, (4, 3))
        sdata = np.array(STRINGS[:9], dtype=object)
        root.create_dataset("names", shape=sdata.shape, chunks=(4,), dtype=object,
                            object_codec=numcodecs.VLenUTF8())[...] = sdata
        zarr.consolidate_metadata(g.spath(st))
        if only:
            # per-node metadata gone: only .zmetadata can describe the nodes
            os.remove(os.path.join(g.spath(st), "g1", "g2", "arr", ".zarray"))
            os.remove(os.path.join(g.spath(st), "names", ".zarray"))
            check_same(data, zarr.open_consolidated(g.spath(st), mode="r")["g1/g2/arr"][...])
        tag = "v2_consolidated_only" if only else "v2_consolidated"
        g.case(tag + "_nested", "bytes", st, "g1/g2/arr", "-", le_bytes(data))
        g.case(tag + "_nested_rows", "bytes", st, "g1/g2/arr", "--rows 3:9", le_bytes(data[3:9]))
        g.case(tag + "_strings", "json", st, "names", "-", json_strings(sdata))


# --------------------------------------------------------------------------
# zarr v3 (hand-written, per the v3 core + sharding specifications)
# --------------------------------------------------------------------------

V3_NAME = {"|b1": "bool", "|i1": "int8", "<i2": "int16", "<i4": "int32", "<i8": "int64",
           "|u1": "uint8", "<u2": "uint16", "<u4": "uint32", "<u8": "uint64",
           "<f2": "float16", "<f4": "float32", "<f8": "float64", "<c8": "complex64",
           "<c16": "complex128"}


def json_write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def fill_to_value(fill, dtype):
    if dtype == "string":
        return fill
    dt = np.dtype(dtype)
    if isinstance(fill, str):
        if fill.startswith("0x"):
            raw = int(fill, 16).to_bytes(dt.itemsize, "big")
            return np.frombuffer(raw, dtype=dt.newbyteorder(">"))[0].astype(dt)
        return dt.type({"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}[fill])
    if isinstance(fill, list):
        return dt.type(complex(fill_to_value(fill[0], "<f8"), fill_to_value(fill[1], "<f8")))
    return dt.type(fill)


def chunk_key(cke, idx):
    name = cke["name"]
    sep = cke.get("configuration", {}).get("separator", "/" if name == "default" else ".")
    if name == "default":
        return sep.join(["c"] + [str(i) for i in idx])
    assert name == "v2"
    return sep.join(str(i) for i in idx) if idx else "0"


def vlen_utf8_encode(items):
    out = [struct.pack("<I", len(items))]
    for s in items:
        b = s.encode("utf-8")
        out.append(struct.pack("<I", len(b)))
        out.append(b)
    return b"".join(out)


def encode_chunk(chunk, codecs, ctx=None):
    """Encode one (full-size) chunk through a v3 codec list."""
    state = chunk
    for c in codecs:
        name, cfg = c["name"], c.get("configuration", {})
        if name == "transpose":
            state = np.transpose(state, cfg["order"])
        elif name == "bytes":
            a = np.ascontiguousarray(state)
            if a.dtype.kind == "b":
                state = a.astype("u1").tobytes()
            else:
                bo = ">" if cfg.get("endian", "little") == "big" else "<"
                state = a.astype(a.dtype.newbyteorder(bo)).tobytes()
        elif name == "vlen-utf8":
            state = vlen_utf8_encode([str(x) for x in np.asarray(state, dtype=object).ravel(order="C")])
        elif name == "sharding_indexed":
            state = encode_shard(state, cfg, ctx)
        elif name == "blosc":
            sh = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[cfg["shuffle"]]
            ts = cfg["typesize"]
            buf = np.frombuffer(state, dtype="u%d" % ts) if len(state) % ts == 0 else np.frombuffer(state, "u1")
            state = bytes(numcodecs.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=sh,
                                          blocksize=cfg.get("blocksize", 0)).encode(buf))
        elif name == "zstd":
            state = zstd_frame(state, cfg["level"], cfg.get("checksum", False))
        elif name == "gzip":
            state = gzip.compress(state, compresslevel=cfg["level"], mtime=0)
        elif name == "crc32c":
            state = state + struct.pack("<I", crc32c(state))
        elif name == "numcodecs.bz2":
            state = bytes(numcodecs.BZ2(level=cfg["level"]).encode(state))
        elif name == "numcodecs.bitround":
            # numcodecs 0.11 rounds in place and hands back an integer view
            enc = numcodecs.BitRound(keepbits=cfg["keepbits"]).encode(np.array(state, copy=True))
            state = np.asarray(enc).view(state.dtype).reshape(state.shape)
        elif name == "vlen-bytes":
            state = bytes(numcodecs.VLenBytes().encode(np.asarray(state, dtype=object).ravel(order="C")))
        else:
            raise ValueError(name)
    assert isinstance(state, bytes)
    return state


def encode_shard(shard, cfg, ctx):
    """shard: the full shard array; ctx: origin, array shape, fill, missing inner set,
    shuffled flag, rng."""
    inner = cfg["chunk_shape"]
    nper = [s // c for s, c in zip(shard.shape, inner)]
    assert [n * c for n, c in zip(nper, inner)] == list(shard.shape)
    index = np.full(nper + [2], U64MAX, dtype="<u8")
    pieces = []
    for idx in np.ndindex(*nper):
        start = [o + i * c for o, i, c in zip(ctx["origin"], idx, inner)]
        if any(s >= n for s, n in zip(start, ctx["shape"])):
            continue  # wholly outside the array: never written
        if tuple(idx) in ctx.get("missing_inner", ()):
            continue
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, inner))
        pieces.append((idx, encode_chunk(np.ascontiguousarray(shard[sl]), cfg["codecs"])))
    if ctx.get("shuffle_inner"):
        order = ctx["rng"].permutation(len(pieces))
        pieces = [pieces[i] for i in order]
    at_start = cfg.get("index_location", "end") == "start"
    index_codecs = cfg.get("index_codecs", [{"name": "bytes", "configuration": {"endian": "little"}},
                                            {"name": "crc32c"}])
    index_len = len(encode_chunk(index, index_codecs))
    off = index_len if at_start else 0
    body = []
    for idx, b in pieces:
        index[idx] = (off, len(b))
        body.append(b)
        off += len(b)
    ib = encode_chunk(index, index_codecs)
    assert len(ib) == index_len
    data = b"".join(body)
    return ib + data if at_start else data + ib


def v3_group(path, attrs=None, extra=None):
    meta = {"zarr_format": 3, "node_type": "group", "attributes": attrs or {}}
    if extra:
        meta.update(extra)
    json_write(os.path.join(path, "zarr.json"), meta)
    return meta


def v3_array(path, data, chunk_shape, codecs, fill, dtype=None,
             cke=None, attrs=None, missing=(), missing_inner=None, shuffle_inner=False,
             seed=0, meta_extra=None, fill_np=None):
    """Write a v3 array.  chunk_shape is the outer grid (the shard shape when the
    array->bytes codec is sharding_indexed).  missing: chunk grid indices to leave
    absent; missing_inner: {outer idx: set(inner idx)}."""
    cke = cke or {"name": "default", "configuration": {"separator": "/"}}
    if dtype is None:
        dtype = V3_NAME[np.dtype(data.dtype).str if data.dtype.kind != "b" else "|b1"]
    meta = {
        "zarr_format": 3, "node_type": "array", "shape": list(data.shape), "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk_shape)}},
        "chunk_key_encoding": cke, "fill_value": fill, "codecs": codecs,
        "attributes": attrs or {},
    }
    if meta_extra:
        meta.update(meta_extra)
    json_write(os.path.join(path, "zarr.json"), meta)
    # fill_np: the fill value as numpy sees it, for data types given as objects
    fv = fill_to_value(fill, dtype) if fill_np is None else fill_np
    grid = [-(-s // c) for s, c in zip(data.shape, chunk_shape)]
    rng = np.random.default_rng(seed)
    for idx in np.ndindex(*grid):
        if tuple(idx) in missing:
            continue
        sl = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunk_shape, data.shape))
        if dtype == "string" or data.dtype == object:
            chunk = np.full(chunk_shape, fv, dtype=object)
        else:
            chunk = np.full(chunk_shape, fv, dtype=data.dtype)
        chunk[tuple(slice(0, x.stop - x.start) for x in sl)] = data[sl]
        ctx = {"origin": [i * c for i, c in zip(idx, chunk_shape)], "shape": data.shape,
               "missing_inner": (missing_inner or {}).get(tuple(idx), set()),
               "shuffle_inner": shuffle_inner, "rng": rng}
        key = chunk_key(cke, idx)
        fp = os.path.join(path, *key.split("/"))
        os.makedirs(os.path.dirname(fp), exist_ok=True)
        with open(fp, "wb") as f:
            f.write(encode_chunk(chunk, codecs, ctx))
    return meta


def expected_with_missing(data, fill, chunk_shape, missing, dtype=None):
    """data with the chunks in `missing` replaced by the fill value."""
    out = data.copy()
    fv = fill_to_value(fill, dtype or data.dtype.str)
    for idx in missing:
        sl = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunk_shape))
        out[sl] = fv
    return out


BYTES_LE = {"name": "bytes", "configuration": {"endian": "little"}}
BYTES_BE = {"name": "bytes", "configuration": {"endian": "big"}}
CRC = {"name": "crc32c"}


def blosc3(cname, shuffle, typesize, clevel=5):
    return {"name": "blosc", "configuration": {"cname": cname, "clevel": clevel, "shuffle": shuffle,
                                               "typesize": typesize, "blocksize": 0}}


def zstd3(level, checksum):
    return {"name": "zstd", "configuration": {"level": level, "checksum": checksum}}


def sharding(inner, codecs, index_codecs=None, location="end"):
    cfg = {"chunk_shape": list(inner), "codecs": codecs,
           "index_codecs": index_codecs if index_codecs is not None else [BYTES_LE, CRC],
           "index_location": location}
    return {"name": "sharding_indexed", "configuration": cfg}


def gen_v3(g):
    st = "v3_arrays"
    base = g.spath(st)
    v3_group(base, {"about": "hand-written zarr v3"})

    def arr(case, node, data, chunk_shape, codecs, fill=0, rows=(), **kw):
        v3_array(os.path.join(base, node), data, chunk_shape, codecs, fill, **kw)
        g.array_cases(case, st, node, data, rows=rows)

    # ---- data types with [bytes little] ----
    for dt in ["|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8", "|b1", "<c8", "<c16"]:
        name = V3_NAME[dt]
        data = make_data(dt, (23, 17))
        fill = False if name == "bool" else ([0.0, 0.0] if name.startswith("complex") else 0)
        arr("v3_dtype_" + name, "dt_" + name, data, (8, 6), [BYTES_LE], fill)
    # 1-byte types may omit the endian configuration
    data = make_data("|u1", (10, 9))
    arr("v3_bytes_noconfig_u1", "bytes_noconfig", data, (4, 4), [{"name": "bytes"}])
    # ---- byte order ----
    for dt in ["<i2", "<i4", "<i8", "<u8", "<f4", "<f8", "<c8"]:
        name = V3_NAME[dt]
        data = make_data(dt, (23, 17))
        fill = [0.0, 0.0] if name.startswith("complex") else 0
        arr("v3_big_" + name, "big_" + name, data, (8, 6), [BYTES_BE], fill)
    # ---- transpose ----
    data = make_data("<f4", (23, 17))
    arr("v3_transpose_10_f4", "tr10", data, (8, 6),
        [{"name": "transpose", "configuration": {"order": [1, 0]}}, BYTES_LE], rows=[(5, 13)])
    data = make_data("<i4", (9, 7, 5))
    arr("v3_transpose_201_i4", "tr201", data, (4, 3, 2),
        [{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, BYTES_LE], rows=[(4, 9)])
    data = make_data("<u2", (9, 7, 5))
    arr("v3_transpose_120_big_u2", "tr120", data, (4, 3, 2),
        [{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, BYTES_BE])
    data = make_data("<f8", (9, 7, 5))
    arr("v3_transpose_021_zstd_f8", "tr021", data, (2, 4, 3),
        [{"name": "transpose", "configuration": {"order": [0, 2, 1]}}, BYTES_LE, zstd3(3, False)])
    # ---- blosc ----
    for cname, shuffle, dt in [("lz4", "shuffle", "<f4"), ("lz4", "noshuffle", "<i8"),
                               ("lz4", "bitshuffle", "<u2"), ("zstd", "shuffle", "<f8"),
                               ("zstd", "bitshuffle", "|u1"), ("blosclz", "shuffle", "<i4"),
                               ("lz4hc", "noshuffle", "<f4"), ("zlib", "shuffle", "<i2")] + \
            ([("snappy", "bitshuffle", "<f4")] if "snappy" in numcodecs.blosc.list_compressors() else []):
        data = make_data(dt, (23, 17), compressible=True)
        ts = np.dtype(dt).itemsize
        arr("v3_blosc_%s_%s_%s" % (cname, shuffle, V3_NAME[dt]), "blosc_%s_%s" % (cname, shuffle),
            data, (8, 6), [BYTES_LE, blosc3(cname, shuffle, ts)])
    data = make_data("<i4", (23, 17), compressible=True)
    arr("v3_blosc_lz4_big_i4", "blosc_big", data, (8, 6), [BYTES_BE, blosc3("lz4", "shuffle", 4)])
    # ---- zstd / gzip / crc32c ----
    data = make_data("<f4", (23, 17), compressible=True)
    arr("v3_zstd_nochecksum", "zstd0", data, (8, 6), [BYTES_LE, zstd3(3, False)], rows=[(2, 19)])
    data = make_data("<i8", (23, 17), compressible=True)
    arr("v3_zstd_checksum", "zstd1", data, (8, 6), [BYTES_LE, zstd3(5, True)])
    data = make_data("<f8", (23, 17), compressible=True)
    arr("v3_gzip", "gzip", data, (8, 6), [BYTES_LE, {"name": "gzip", "configuration": {"level": 6}}])
    data = make_data("<u4", (23, 17))
    arr("v3_crc32c", "crc", data, (8, 6), [BYTES_LE, CRC], rows=[(6, 12)])
    data = make_data("<f4", (23, 17), compressible=True)
    arr("v3_zstd_crc32c", "zstdcrc", data, (8, 6), [BYTES_LE, zstd3(1, False), CRC])
    data = make_data("<i2", (23, 17), compressible=True)
    arr("v3_blosc_zstd_crc32c_gzip", "chain", data, (8, 6),
        [BYTES_BE, blosc3("lz4", "shuffle", 2), CRC, {"name": "gzip", "configuration": {"level": 1}}])
    # ---- chunk key encodings ----
    for cname, cke in [("default_slash", {"name": "default", "configuration": {"separator": "/"}}),
                       ("default_dot", {"name": "default", "configuration": {"separator": "."}}),
                       ("default_noconfig", {"name": "default"}),
                       ("v2_dot", {"name": "v2", "configuration": {"separator": "."}}),
                       ("v2_slash", {"name": "v2", "configuration": {"separator": "/"}})]:
        data = make_data("<f4", (9, 7, 5))
        arr("v3_cke_" + cname, "cke_" + cname, data, (4, 3, 2), [BYTES_LE], cke=cke)
    # 0-d arrays
    for cname, cke in [("default", {"name": "default", "configuration": {"separator": "/"}}),
                       ("v2", {"name": "v2", "configuration": {"separator": "."}})]:
        data = np.array(-2.75, dtype="<f8")
        v3_array(os.path.join(base, "scalar_" + cname), data, [], [BYTES_LE], 0.0, cke=cke)
        g.case("v3_scalar_" + cname, "bytes", st, "scalar_" + cname, "-", le_bytes(data))
    # ---- fill values + missing chunks ----
    fills = [
        ("num_i4", "<i4", 42, (23, 17), (6, 5), {(0, 1), (2, 3), (3, 0)}),
        ("num_f8", "<f8", -0.5, (23, 17), (6, 5), {(1, 1), (3, 3)}),
        ("nan_f4", "<f4", "NaN", (23, 17), (6, 5), {(0, 0), (3, 3), (1, 2)}),
        ("inf_f8", "<f8", "Infinity", (23, 17), (6, 5), {(2, 2)}),
        ("ninf_f4", "<f4", "-Infinity", (40,), (7,), {(0,), (5,)}),
        ("hex_nan_f4", "<f4", "0x7fc00000", (23, 17), (6, 5), {(0, 3), (2, 0)}),
        ("hex_1p5_f4", "<f4", "0x3fc00000", (40,), (7,), {(1,), (4,)}),
        ("hex_2_f8", "<f8", "0x4000000000000000", (9, 7, 5), (4, 3, 2), {(0, 0, 0), (2, 2, 2)}),
        ("true_bool", "|b1", True, (23, 17), (6, 5), {(0, 0), (3, 1)}),
        ("num_u8", "<u8", 18446744073709551615, (40,), (7,), {(2,)}),
        ("num_i8_neg", "<i8", -9223372036854775808, (40,), (7,), {(3,)}),
    ]
    for name, dt, fill, shape, chunks, missing in fills:
        data = make_data(dt, shape)
        v3_array(os.path.join(base, "fill_" + name), data, chunks, [BYTES_LE], fill, missing=missing)
        expect = expected_with_missing(data, fill, chunks, missing)
        g.case("v3_fill_" + name, "bytes", st, "fill_" + name, "-", le_bytes(expect))
    data = make_data("<f4", (23, 17))
    v3_array(os.path.join(base, "fill_rows"), data, (6, 5), [BYTES_LE, zstd3(1, False)], "NaN",
             missing={(1, 0), (1, 1), (1, 2), (1, 3)})
    expect = expected_with_missing(data, "NaN", (6, 5), {(1, 0), (1, 1), (1, 2), (1, 3)})
    g.array_cases("v3_fill_rows_nan", st, "fill_rows", expect, rows=[(6, 12), (4, 14)])

    # ---- strings ----
    s = np.array(STRINGS * 2, dtype=object)
    v3_array(os.path.join(base, "str"), s, (5,), [{"name": "vlen-utf8", "configuration": {}}], "",
             dtype="string")
    g.case("v3_string", "json", st, "str", "-", json_strings(s))
    g.case("v3_string_rows", "json", st, "str", "--rows 4:13", json_strings(s[4:13]))
    s2 = np.array(STRINGS[:15], dtype=object).reshape(5, 3)
    v3_array(os.path.join(base, "str2d"), s2, (2, 2), [{"name": "vlen-utf8", "configuration": {}}, zstd3(3, False)],
             "", dtype="string")
    g.case("v3_string_2d_zstd", "json", st, "str2d", "-", json_strings(s2))
    v3_array(os.path.join(base, "str_missing"), s[:12], (5,), [{"name": "vlen-utf8"}], "",
             dtype="string", missing={(1,)})
    sm = s[:12].copy()
    sm[5:10] = ""
    g.case("v3_string_missing_chunk", "json", st, "str_missing", "-", json_strings(sm))

    # a v3 store whose root is an array
    rdata = make_data("<i8", (10, 3))
    v3_array(g.spath("v3_root_array"), rdata, (4, 2), [BYTES_LE, zstd3(1, True)], 0)
    g.case("v3_root_array", "bytes", "v3_root_array", None, "-", le_bytes(rdata))

    # ---- sharding ----
    st = "v3_shard"
    base = g.spath(st)
    v3_group(base)

    def sh(case, node, data, shard, codecs, fill=0, rows=(), expect=None, **kw):
        v3_array(os.path.join(base, node), data, shard, codecs, fill, **kw)
        g.array_cases(case, st, node, data if expect is None else expect, rows=rows)

    data = make_data("<i4", (50, 13))
    # shard (16, 8), inner (4, 4): grid 4 x 2 shards, last shard row/col ragged
    sh("v3_shard_end_crc", "end_crc", data, (16, 8), [sharding((4, 4), [BYTES_LE])], rows=[(13, 37), (48, 50)])
    sh("v3_shard_start_crc", "start_crc", data, (16, 8), [sharding((4, 4), [BYTES_LE], location="start")],
       rows=[(3, 21)])
    sh("v3_shard_end_index_bytes_only", "end_plain", data, (16, 8),
       [sharding((4, 4), [BYTES_LE], index_codecs=[BYTES_LE])])
    sh("v3_shard_start_index_bytes_only", "start_plain", data, (16, 8),
       [sharding((4, 4), [BYTES_LE], index_codecs=[BYTES_LE], location="start")])
    fdata = make_data("<f4", (50, 13), compressible=True)
    sh("v3_shard_inner_blosc_lz4", "inner_blosc", fdata, (16, 8),
       [sharding((4, 4), [BYTES_LE, blosc3("lz4", "shuffle", 4)])], rows=[(10, 30)])
    sh("v3_shard_inner_zstd_crc", "inner_zstd_crc", fdata, (16, 8),
       [sharding((4, 4), [BYTES_LE, zstd3(3, False), CRC])])
    sh("v3_shard_inner_big_endian", "inner_big", data, (16, 8), [sharding((4, 4), [BYTES_BE])])
    sh("v3_shard_inner_transpose", "inner_tr", fdata, (16, 8),
       [sharding((4, 4), [{"name": "transpose", "configuration": {"order": [1, 0]}}, BYTES_LE])])
    # missing inner chunks (index entries 2^64-1) and a missing shard file
    miss_inner = {(0, 0): {(1, 1), (3, 0)}, (2, 1): {(0, 0)}}
    expect = data.copy()
    for (s0, s1), inner in miss_inner.items():
        for (i0, i1) in inner:
            r0, c0 = s0 * 16 + i0 * 4, s1 * 8 + i1 * 4
            expect[r0:r0 + 4, c0:c0 + 4] = -5
    sh("v3_shard_missing_inner", "miss_inner", data, (16, 8), [sharding((4, 4), [BYTES_LE])], fill=-5,
       expect=expect, missing_inner=miss_inner, rows=[(2, 8)])
    expect = data.copy()
    expect[16:32, 0:8] = -5
    sh("v3_shard_missing_shard", "miss_shard", data, (16, 8), [sharding((4, 4), [BYTES_LE])], fill=-5,
       expect=expect, missing={(1, 0)}, rows=[(14, 34)])
    nd = make_data("<f8", (50, 13))
    nexp = nd.copy()
    nexp[0:16, 8:13] = np.nan
    sh("v3_shard_missing_shard_nan", "miss_shard_nan", nd, (16, 8), [sharding((4, 4), [BYTES_LE, CRC])],
       fill="NaN", expect=nexp, missing={(0, 1)})
    # shuffled inner chunk order (offsets not monotonic)
    sh("v3_shard_shuffled_end", "shuffled", data, (16, 8), [sharding((4, 4), [BYTES_LE])],
       shuffle_inner=True, seed=7, rows=[(5, 45)])
    sh("v3_shard_shuffled_start_zstd", "shuffled_start", fdata, (16, 8),
       [sharding((4, 4), [BYTES_LE, zstd3(1, False)], location="start")], shuffle_inner=True, seed=9)
    # 1-D sharded (sparse data/indices shape), and 3-D
    d1 = make_data("<i8", (1000,))
    sh("v3_shard_1d_i8", "oned", d1, (256,), [sharding((64,), [BYTES_LE, blosc3("lz4", "shuffle", 8, 3)])],
       rows=[(250, 270), (960, 1000)])
    d3 = make_data("<u2", (9, 7, 5))
    sh("v3_shard_3d_u2", "threed", d3, (4, 6, 4), [sharding((2, 3, 2), [BYTES_LE])], rows=[(3, 6)])
    # strings, sharded
    s = np.array(STRINGS * 3, dtype=object)
    v3_array(os.path.join(base, "strings"), s, (16,), [sharding((4,), [{"name": "vlen-utf8"}, zstd3(1, False)])],
             "", dtype="string")
    g.case("v3_shard_strings", "json", st, "strings", "-", json_strings(s))
    # the annbatch writer layout: shard (256, ncols), inner (64, ncols), blosc lz4 3 shuffle
    ab = make_data("<f4", (300, 11), compressible=True)
    sh("v3_shard_annbatch_layout", "annbatch_like", ab, (256, 11),
       [sharding((64, 11), [BYTES_LE, blosc3("lz4", "shuffle", 4, 3)])],
       rows=[(0, 64), (60, 70), (250, 270), (256, 300), (299, 300), (128, 128)])

    # ---- inline consolidated metadata ----
    for st, only in [("v3_consolidated", False), ("v3_consolidated_only", True)]:
        base = g.spath(st)
        metas = {}
        metas["g"] = v3_group(os.path.join(base, "g"), {"level": 1})
        metas["g/h"] = v3_group(os.path.join(base, "g", "h"), {"level": 2})
        data = make_data("<f8", (15, 4))
        metas["g/h/arr"] = v3_array(os.path.join(base, "g", "h", "arr"), data, (4, 3), [BYTES_LE, CRC], 0)
        sdata = np.array(STRINGS[:9], dtype=object)
        metas["names"] = v3_array(os.path.join(base, "names"), sdata, (4,), [{"name": "vlen-utf8"}], "",
                                  dtype="string")
        v3_group(base, {"title": "consolidated"},
                 extra={"consolidated_metadata": {"kind": "inline", "must_understand": False,
                                                  "metadata": metas}})
        if only:
            os.remove(os.path.join(base, "g", "h", "arr", "zarr.json"))
            os.remove(os.path.join(base, "names", "zarr.json"))
        g.case(st + "_nested", "bytes", st, "g/h/arr", "-", le_bytes(data))
        g.case(st + "_nested_rows", "bytes", st, "g/h/arr", "--rows 3:9", le_bytes(data[3:9]))
        g.case(st + "_strings", "json", st, "names", "-", json_strings(sdata))


# --------------------------------------------------------------------------
# what other writers write: zarr-python 3's data types and codecs, stores whose
# root is an array, arrays in directories without root metadata
# --------------------------------------------------------------------------

def iterate_rowsums(data, batch):
    """What `annbatch iterate --batch-size B --emit index+rowsum` prints for a
    store of `data` read in order: "i:s" tokens, s the row's sum (%.17g)."""
    rows = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    lines = []
    for a in range(0, len(rows), batch):
        lines.append(" ".join("%d:%.17g" % (i, rows[i].sum()) for i in range(a, min(a + batch, len(rows)))))
    return "\n".join(lines) + "\n"


def gen_other_writers(g):
    # ---- a store whose root is an array, iterated and inspected by its plain path ----
    # (v2 written by zarr 2.13, v3 by hand; integer rows so the sums are exact)
    stack = (np.arange(11 * 4 * 3) % 251).astype("<u2").reshape(11, 4, 3)
    z = zarr.open(g.spath("ow_stack_v2"), mode="w", shape=stack.shape, chunks=(4, 4, 3), dtype=stack.dtype)
    z[...] = stack
    v3_array(g.spath("ow_stack_v3"), stack.astype("<i4"), (5, 2, 3), [BYTES_LE, zstd3(1, False)], 0)
    for st in ("ow_stack_v2", "ow_stack_v3"):
        g.cli_case("cli_iterate_root_array_" + st[-2:], "text",
                   "iterate --batch-size 4 --emit index+rowsum " + st, iterate_rowsums(stack, 4))
        g.cli_case("cli_iterate_root_array_colon_" + st[-2:], "text",
                   "iterate --batch-size 4 --emit index+rowsum " + st + ":", iterate_rowsums(stack, 4))
        g.cli_case("cli_inspect_root_array_" + st[-2:], "grep", "inspect " + st, "[11, 4, 3]")
    g.array_cases("ow_get_root_array_v2", "ow_stack_v2", None, stack, rows=[(3, 9)])
    g.array_cases("ow_get_root_array_v3", "ow_stack_v3", None, stack.astype("<i4"), rows=[(3, 9)])

    # ---- zarr-python 3 data types (zarr v3 zarr.json, written by spec) ----
    st = "ow_zp3"
    base = g.spath(st)
    v3_group(base)
    # numpy.datetime64 / numpy.timedelta64: int64 counts of scale_factor units, NaT =
    # INT64_MIN; zarr-python 3 writes the fill value as an integer and reads "NaT" too
    # (zarr-extensions data-types/numpy.datetime64; zarr-python core/dtype/npy/time.py)
    t = np.array(["2020-01-01T00:00:00.001", "NaT", "1969-12-31T23:59:59.999", "2262-04-11",
                  "1677-09-22", "2024-02-29T12:34:56.789"] * 4, dtype="M8[ms]").reshape(8, 3)
    for name, fill_json, fill_np, missing in [("dt_ms_fill_int", -2**63, np.datetime64("NaT"), {(1, 0)}),
                                              ("dt_ms_fill_nat", "NaT", np.datetime64("NaT"), {(0, 1)}),
                                              ("dt_ms_fill_zero", 0, np.datetime64(0, "ms"), {(2, 0)})]:
        dtj = {"name": "numpy.datetime64", "configuration": {"unit": "ms", "scale_factor": 1}}
        v3_array(os.path.join(base, name), t, (3, 2), [BYTES_LE], fill_json, dtype=dtj, fill_np=fill_np,
                 missing=missing)
        expect = t.copy()
        for (i, j) in missing:
            expect[i * 3:(i + 1) * 3, j * 2:(j + 1) * 2] = fill_np
        g.array_cases("ow_v3_" + name, st, name, expect.view("<i8"), rows=[(2, 7)])
    td = (np.array([1, -5, 0, 2**40, -2**62, 77, 3, 9, 12], dtype="<i8").view("m8[10s]"))
    td[2] = np.timedelta64("NaT")
    dtj = {"name": "numpy.timedelta64", "configuration": {"unit": "s", "scale_factor": 10}}
    v3_array(os.path.join(base, "td_10s_big"), td, (4,), [BYTES_BE, {"name": "numcodecs.bz2",
             "configuration": {"level": 5}}], "NaT", dtype=dtj, fill_np=np.timedelta64("NaT"))
    g.case("ow_v3_td_10s_big_bz2", "bytes", st, "td_10s_big", "-", le_bytes(td.view("<i8")))
    # fixed_length_utf32 (zarr-python 3.1's v3 form of numpy "<U"): length_bytes = 4 * n,
    # byte order from the bytes codec (core/dtype/npy/string.py)
    u = np.array(["", "\u00e9t\u00e9", "\u65e5\u672c\u8a9e", "abcdef", "q\"\\", "\U0001F9EC",
                  "tab\t", "zz", "end"], dtype="<U6")
    flu = {"name": "fixed_length_utf32", "configuration": {"length_bytes": 24}}
    v3_array(os.path.join(base, "utf32_le"), u, (4,), [BYTES_LE], "", dtype=flu, fill_np="", missing={(1,)})
    um = u.copy()
    um[4:8] = ""
    g.case("ow_v3_fixed_length_utf32", "json", st, "utf32_le", "-", json_strings(um))
    g.case("ow_v3_fixed_length_utf32_rows", "json", st, "utf32_le", "--rows 2:7", json_strings(um[2:7]))
    u2 = u[:8].reshape(4, 2)
    v3_array(os.path.join(base, "utf32_be_zstd"), u2, (3, 2), [BYTES_BE, zstd3(3, False)], "zz",
             dtype=flu, fill_np="zz")
    g.case("ow_v3_fixed_length_utf32_big_zstd", "json", st, "utf32_be_zstd", "-", json_strings(u2))
    # a missing chunk reads as the fill string (cut to the width like numpy does)
    for name, fill in [("utf32_fill", "\u00e9\U0001F9ECx"), ("utf32_fill_long", "abcdefgh")]:
        v3_array(os.path.join(base, name), u2, (3, 2), [BYTES_LE], fill, dtype=flu,
                 fill_np=fill, missing={(1, 0)})
        uf = u2.copy()
        uf[3:] = fill  # numpy cuts "abcdefgh" to the 6 characters of <U6
        g.case("ow_v3_fixed_length_utf32_" + name[6:], "json", st, name, "-", json_strings(uf))
    # null_terminated_bytes (zarr-python 3.1's v3 form of numpy "|S"), the fill value
    # base64 (core/dtype/npy/bytes.py)
    sb = np.array([b"", b"a", b"abcdefgh", b"quote\"", b"back\\sl", b"sp ace", b"1234567", b"x"], dtype="|S8")
    ntb = {"name": "null_terminated_bytes", "configuration": {"length_bytes": 8}}
    v3_array(os.path.join(base, "ntbytes"), sb, (3,), [BYTES_LE, zstd3(1, False)], "YWI=", dtype=ntb,
             fill_np=b"ab", missing={(1,)})
    sbm = sb.copy()
    sbm[3:6] = b"ab"
    g.case("ow_v3_null_terminated_bytes", "json", st, "ntbytes", "-", json_strings(sbm))
    # zarr-python 3.0 named the vlen-utf8 data type "variable_length_utf8"
    vs = np.array(STRINGS[:10], dtype=object)
    v3_array(os.path.join(base, "vutf8"), vs, (4,), [{"name": "vlen-utf8", "configuration": {}}], "",
             dtype="variable_length_utf8", fill_np="")
    g.case("ow_v3_variable_length_utf8", "json", st, "vutf8", "-", json_strings(vs))
    # numcodecs.bz2 after bytes (numcodecs/zarr3.py names the codec; numcodecs.BZ2 and
    # Debian's libbz2 make the bytes)
    f = make_data("<f4", (23, 17), compressible=True)
    v3_array(os.path.join(base, "bz2_f4"), f, (8, 6), [BYTES_LE, {"name": "numcodecs.bz2",
             "configuration": {"level": 9}}], 0.0)
    g.array_cases("ow_v3_bz2_f4", st, "bz2_f4", f, rows=[(5, 13)])
    # numcodecs.bitround (array->array): the stored floats are already rounded, so
    # reading is the identity; the expected values are numcodecs' rounding
    r = make_data("<f4", (23, 17))
    v3_array(os.path.join(base, "bitround_f4"), r, (8, 6), [{"name": "numcodecs.bitround",
             "configuration": {"keepbits": 7}}, BYTES_LE, zstd3(3, False)], 0.0)
    rr = np.asarray(numcodecs.BitRound(keepbits=7).encode(r.copy())).view(r.dtype).reshape(r.shape)
    assert not np.array_equal(rr.view("u4"), r.view("u4"))
    g.array_cases("ow_v3_bitround_f4", st, "bitround_f4", rr)
    # variable_length_bytes + vlen-bytes (core/dtype/npy/bytes.py; zarr-extensions
    # codecs/vlen-bytes: vlen-utf8's layout), the fill value base64
    vb = np.array([b"", b"a", b"bytes\x01\x7f", b"caf\xc3\xa9", b"x" * 50, b"/"] * 2, dtype=object)
    v3_array(os.path.join(base, "vbytes"), vb, (5,), [{"name": "vlen-bytes", "configuration": {}}], "",
             dtype="variable_length_bytes", fill_np=b"")
    g.case("ow_v3_vlen_bytes", "json", st, "vbytes", "-", [x.decode("utf-8") for x in vb])
    g.case("ow_v3_vlen_bytes_rows", "json", st, "vbytes", "--rows 3:9", [x.decode("utf-8") for x in vb[3:9]])
    # data types still refused: the message names them
    for name, dtj in [("structured", {"name": "structured", "configuration": {"fields": [["a", "int32"]]}}),
                      ("raw_bits", "r16"), ("dt_bad_unit", {"name": "numpy.datetime64",
                                                           "configuration": {"unit": "fortnight", "scale_factor": 1}})]:
        meta = {"zarr_format": 3, "node_type": "array", "shape": [4], "data_type": dtj,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
                "chunk_key_encoding": {"name": "default"}, "fill_value": 0, "codecs": [BYTES_LE],
                "attributes": {}}
        json_write(os.path.join(base, "refused_" + name, "zarr.json"), meta)
    g.case("ow_v3_refused_structured", "fail", st, "refused_structured", "-", "data_type 'structured'")
    g.case("ow_v3_refused_r16", "fail", st, "refused_raw_bits", "-", "data_type 'r16'")
    g.case("ow_v3_refused_datetime_unit", "fail", st, "refused_dt_bad_unit", "-", "numpy.datetime64")

    # ---- the same types from zarr 2.13 (v2): <M8 / <m8, bz2 compressor, bitround filter ----
    st = "ow_v2"
    root = zarr.open_group(g.spath(st), mode="w")
    a = root.create_dataset("dt_ns", shape=(10,), chunks=(4,), dtype="<M8[ns]", fill_value=np.datetime64("NaT"))
    t2 = np.array(["2021-03-04T05:06:07.123456789", "NaT", "1970-01-01", "1900-01-01T00:00:00.000000001",
                   "2262-04-11T23:47:16.854775807", "NaT"], dtype="M8[ns]")
    a[:6] = t2
    e2 = np.full(10, np.datetime64("NaT"), dtype="M8[ns]")
    e2[:6] = t2
    check_same(e2.view("<i8"), a[...].view("<i8"))
    g.case("ow_v2_datetime64_ns", "bytes", st, "dt_ns", "-", le_bytes(e2.view("<i8")))
    d2 = np.array([3, -1, 0, 86400], dtype=">i8").view(">m8[s]")
    root.create_dataset("td_s_be", shape=(4,), chunks=(3,), dtype=">m8[s]")[...] = d2
    g.case("ow_v2_timedelta64_s_be", "bytes", st, "td_s_be", "-", le_bytes(d2.view(">i8")))
    f2 = make_data("<f8", (23, 17), compressible=True)
    v2_array(root, "bz2", f2, (8, 6), compressor=numcodecs.BZ2(level=1))
    check_same(f2, root["bz2"][...])
    g.array_cases("ow_v2_bz2_f8", st, "bz2", f2, rows=[(7, 20)])
    r2 = make_data("<f8", (23, 17))
    v2_array(root, "bitround", r2.copy(), (8, 6), filters=[numcodecs.BitRound(keepbits=12)])
    rr2 = root["bitround"][...]
    assert not np.array_equal(rr2, r2)
    g.array_cases("ow_v2_bitround_f8", st, "bitround", rr2)

    # ---- arrays in a directory without root metadata ----
    st = "ow_rootless"
    base = g.spath(st)
    d3 = make_data("<i2", (9, 5))
    v3_array(os.path.join(base, "a", "b", "arr3"), d3, (4, 2), [BYTES_LE, CRC], 0)
    d4 = make_data("<f4", (12,))
    zarr.open(os.path.join(base, "v2arr"), mode="w", shape=d4.shape, chunks=(5,), dtype=d4.dtype)[...] = d4
    g.array_cases("ow_rootless_v3_nested", st, "a/b/arr3", d3, rows=[(2, 7)])
    g.case("ow_rootless_v2", "bytes", st, "v2arr", "-", le_bytes(d4))
    g.case("ow_rootless_root", "fail", st, None, "-", "no root metadata")
    g.case("ow_rootless_missing", "fail", st, "a/nope", "-", "not found")
    g.cli_case("cli_iterate_rootless_v3", "text", "iterate --batch-size 4 --emit index+rowsum ow_rootless:a/b/arr3",
               iterate_rowsums(d3, 4))

    # ---- an obs column of datetimes (anndata 0.8 cannot write one: zarr 2.13 adds it
    # as anndata writes numeric columns, encoding-type "array") ----
    import anndata as ad
    import pandas as pd
    n = 9
    obs = pd.DataFrame({"k": np.arange(n, dtype=np.int64)}, index=["c%d" % i for i in range(n)])
    X = (np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    st = "ow_obs_datetime"
    ad.AnnData(X=X, obs=obs).write_zarr(g.spath(st))
    grp = zarr.open_group(g.spath(st), mode="a")
    when = np.array(["2020-01-01", "NaT", "1969-07-20T20:17:40", "2000-02-29", "NaT", "1970-01-01T00:00:01",
                     "2038-01-19T03:14:07", "1601-01-01", "2024-12-31"], dtype="M8[s]")
    col = grp["obs"].create_dataset("when", shape=(n,), chunks=(4,), dtype="<M8[s]")
    col[...] = when
    col.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    grp["obs"].attrs["column-order"] = list(grp["obs"].attrs["column-order"]) + ["when"]
    vals = when.view("<i8")
    text = []
    for a0 in range(0, n, 4):
        text.append(" ".join("%d=%s" % (i, "nan" if vals[i] == -2**63 else "%.17g" % float(vals[i]))
                             for i in range(a0, min(a0 + 4, n))))
    g.cli_case("cli_iterate_obs_datetime", "text", "iterate --batch-size 4 --obs when --emit index+obs " + st,
               "\n".join(text) + "\n")
    g.case("ow_obs_datetime_get", "bytes", st, "obs/when", "-", le_bytes(vals))


# --------------------------------------------------------------------------
# AnnData (anndata 0.8 write_zarr) and annbatch collections
# --------------------------------------------------------------------------

def make_adata_frames(n_obs, n_var):
    import pandas as pd
    rng = np.random.default_rng(SEED + 1)
    cats = ["B cell", "T cell", "NK", "mono\u00e9", "quote\"cat"]
    ct = pd.Categorical([cats[i] for i in rng.integers(0, len(cats), n_obs)], categories=cats)
    batch = np.array(["b1", "b2", "b3"], dtype=object)[rng.integers(0, 3, n_obs)]
    batch[[1, 5, 6, n_obs - 1]] = None
    batch_cat = pd.Categorical(batch, categories=["b1", "b2", "b3"])
    nullable_int = pd.array([int(x) if i % 4 else None for i, x in enumerate(rng.integers(-1000, 1000, n_obs))],
                            dtype="Int64")
    nullable_bool = pd.array([bool(x) if i % 3 else None for i, x in enumerate(rng.random(n_obs) < 0.5)],
                             dtype="boolean")
    obs = pd.DataFrame({
        "cell_type": ct,
        "batch": batch_cat,
        "n_counts": rng.integers(0, 10**9, n_obs).astype(np.int64),
        "n_genes": rng.integers(0, 30000, n_obs).astype(np.int32),
        "score": rng.standard_normal(n_obs),
        "is_doublet": rng.random(n_obs) < 0.3,
        # all values distinct: anndata 0.8 turns a string column with repeats into
        # a categorical on write (strings_to_categoricals)
        "note": ["%s #%d" % (STRINGS[i % len(STRINGS)], i) for i in range(n_obs)],
        "tissue": [["lung", "liver", "br\u00e4in"][i % 3] for i in range(n_obs)],
        "nullable_int": nullable_int,
        "nullable_bool": nullable_bool,
    }, index=["cell_%03d" % i for i in range(n_obs)])
    var = pd.DataFrame({"gene_symbol": ["GENE%d\u00df" % i for i in range(n_var)]},
                       index=pd.Index(["ENSG%05d" % i for i in range(n_var)], name="gene_ids"))
    return obs, var


def gen_anndata(g):
    import anndata as ad
    import scipy.sparse as sp

    n_obs, n_var = 37, 23
    obs, var = make_adata_frames(n_obs, n_var)
    rng = np.random.default_rng(SEED + 2)
    dense = (rng.standard_normal((n_obs, n_var)) * 10).astype(np.float32)
    mask = rng.random((n_obs, n_var)) < 0.25
    mask[[0, 4, 20, n_obs - 1], :] = False  # some empty rows
    sparse = np.where(mask, dense, 0).astype(np.float32)

    st = "ad_dense"
    ad.AnnData(X=dense, obs=obs, var=var).write_zarr(g.spath(st), chunks=(8, 7))
    g.array_cases("ad_dense_X", st, "X", dense, rows=[(2, 9), (30, 37)])
    z = zarr.open_group(g.spath(st), mode="r")
    assert z.attrs["encoding-type"] == "anndata"
    assert z["obs"].attrs["_index"] == "_index" and z["var"].attrs["_index"] == "gene_ids"

    codes = obs["cell_type"].cat.codes.to_numpy()
    check_same(codes, z["obs/cell_type/codes"][...])
    g.case("ad_obs_cat_codes", "bytes", st, "obs/cell_type", "-", le_bytes(codes))
    g.case("ad_obs_cat_codes_rows", "bytes", st, "obs/cell_type", "--rows 5:20", le_bytes(codes[5:20]))
    g.case("ad_obs_cat_labels", "json", st, "obs/cell_type", "--labels", [str(x) for x in obs["cell_type"]])
    g.case("ad_obs_cat_labels_rows", "json", st, "obs/cell_type", "--labels --rows 3:11",
           [str(x) for x in obs["cell_type"][3:11]])
    bcodes = obs["batch"].cat.codes.to_numpy()
    assert (bcodes == -1).sum() == 4
    check_same(bcodes, z["obs/batch/codes"][...])
    g.case("ad_obs_cat_missing_codes", "bytes", st, "obs/batch", "-", le_bytes(bcodes))
    labels = [None if c < 0 else ["b1", "b2", "b3"][c] for c in bcodes]
    g.case("ad_obs_cat_missing_labels", "json", st, "obs/batch", "--labels", labels)
    g.case("ad_obs_cat_categories", "json", st, "obs/batch/categories", "-", ["b1", "b2", "b3"])
    for col in ["n_counts", "n_genes", "score", "is_doublet"]:
        v = obs[col].to_numpy()
        check_same(v, z["obs/" + col][...])
        g.case("ad_obs_" + col, "bytes", st, "obs/" + col, "-", le_bytes(v))
    g.case("ad_obs_n_counts_rows", "bytes", st, "obs/n_counts", "--rows 10:37",
           le_bytes(obs["n_counts"].to_numpy()[10:37]))
    assert z["obs/note"].attrs["encoding-type"] == "string-array"
    g.case("ad_obs_string_col", "json", st, "obs/note", "-", list(obs["note"]))
    g.case("ad_obs_string_col_rows", "json", st, "obs/note", "--rows 12:20", list(obs["note"][12:20]))
    # a plain string column with repeated values comes back from anndata as categorical
    assert z["obs/tissue"].attrs["encoding-type"] == "categorical"
    g.case("ad_obs_auto_categorical_labels", "json", st, "obs/tissue", "--labels", list(obs["tissue"]))
    g.case("ad_obs_index", "json", st, "obs/_index", "-", list(obs.index))
    g.case("ad_obs_index_rows", "json", st, "obs/_index", "--rows 35:37", list(obs.index[35:37]))
    g.case("ad_var_index_named", "json", st, "var/gene_ids", "-", list(var.index))
    g.case("ad_var_string_col", "json", st, "var/gene_symbol", "-", list(var["gene_symbol"]))
    ni = [None if (v is None or str(v) == "<NA>") else int(v) for v in obs["nullable_int"].to_list()]
    nb = [None if str(v) == "<NA>" else bool(v) for v in obs["nullable_bool"].to_list()]
    assert None in ni and None in nb
    g.case("ad_obs_nullable_int", "json", st, "obs/nullable_int", "-", ni)
    g.case("ad_obs_nullable_bool", "json", st, "obs/nullable_bool", "-", nb)
    g.case("ad_obs_nullable_int_rows", "json", st, "obs/nullable_int", "--rows 2:9", ni[2:9])

    # the same store, consolidated
    st2 = "ad_dense_consolidated"
    shutil.copytree(g.spath(st), g.spath(st2))
    zarr.consolidate_metadata(g.spath(st2))
    g.case("ad_consolidated_X_rows", "bytes", st2, "X", "--rows 3:33", le_bytes(dense[3:33]))
    g.case("ad_consolidated_cat_labels", "json", st2, "obs/batch", "--labels", labels)

    # CSR
    st = "ad_csr"
    csr = sp.csr_matrix(sparse)
    ad.AnnData(X=csr, obs=obs, var=var).write_zarr(g.spath(st))
    z = zarr.open_group(g.spath(st), mode="r")
    assert z["X"].attrs["encoding-type"] == "csr_matrix"
    g.array_cases("ad_csr_X_dense", st, "X", csr.toarray(), rows=[(2, 9), (0, 1), (4, 5), (36, 37), (7, 7)],
                  extra_args="--dense")
    g.case("ad_csr_X_data", "bytes", st, "X/data", "-", le_bytes(csr.data))
    g.case("ad_csr_X_indices", "bytes", st, "X/indices", "-", le_bytes(csr.indices))
    g.case("ad_csr_X_indptr", "bytes", st, "X/indptr", "-", le_bytes(csr.indptr))
    check_same(csr.indptr, z["X/indptr"][...])

    # CSR with int64 indptr and indices, data chunked into several chunks by hand
    st = "v2_csr_manual"
    root = zarr.open_group(g.spath(st), mode="w")
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    xg = root.create_group("X")
    xg.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(sparse.shape)})
    sp64 = np.where(rng.random((n_obs, n_var)) < 0.3, dense, 0).astype("<f8")
    c64 = sp.csr_matrix(sp64)
    xg.create_dataset("data", data=c64.data, chunks=(16,), compressor=numcodecs.Zstd(level=1))
    xg.create_dataset("indices", data=c64.indices.astype(np.int64), chunks=(16,))
    xg.create_dataset("indptr", data=c64.indptr.astype(np.int64), chunks=(10,))
    g.array_cases("v2_csr_f8_i64_dense", st, "X", c64.toarray(), rows=[(3, 30)], extra_args="--dense")

    # CSR rows whose column indices go down or repeat, some exactly where a
    # row's values continue from one indices chunk (of 4) into the next: 8
    # rows of 3 values; row 2 repeats a column across the seam at value 8,
    # row 5 goes down across the seam at 16, row 6 goes down inside a chunk;
    # rows 1 and 7 cross seams in order. test_loader checks the batches'
    # indices_sorted flag against these rows.
    st = "v2_csr_unsorted_seams"
    root = zarr.open_group(g.spath(st), mode="w")
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    xg = root.create_group("X")
    xg.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [8, 16]})
    us_ix = np.array([[0, 1, 2], [1, 3, 5], [2, 4, 4], [3, 4, 5], [4, 5, 6], [7, 3, 9], [5, 4, 7],
                      [7, 8, 9]], dtype="<i4").ravel()
    assert us_ix[7] == us_ix[8] and us_ix[15] > us_ix[16] and us_ix[18] > us_ix[19]
    xg.create_dataset("data", data=np.arange(1, 25, dtype="<f4"), chunks=(4,))
    xg.create_dataset("indices", data=us_ix, chunks=(4,))
    xg.create_dataset("indptr", data=np.arange(0, 25, 3, dtype="<i8"), chunks=(9,))

    # CSC -> --dense must be refused
    st = "ad_csc"
    ad.AnnData(X=sp.csc_matrix(sparse), obs=obs, var=var).write_zarr(g.spath(st))
    assert zarr.open_group(g.spath(st), mode="r")["X"].attrs["encoding-type"] == "csc_matrix"
    g.case("ad_csc_dense_refused", "fail", st, "X", "--dense", "csc")
    g.case("ad_csc_dense_rows_refused", "fail", st, "X", "--dense --rows 0:3", "csc")
    g.case("ad_csc_X_data", "bytes", st, "X/data", "-", le_bytes(sp.csc_matrix(sparse).data))

    # ---- annbatch preshuffled collection (zarr v3, hand-written) ----
    st = "v3_collection"
    base = g.spath(st)
    v3_group(base, {"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
    sizes = {"dataset_0": 70, "dataset_1": 40, "dataset_10": 300, "dataset_2": 5}
    ncol = 9
    for i, (ds, n) in enumerate(sizes.items()):
        p = os.path.join(base, ds)
        v3_group(p, {"encoding-type": "anndata", "encoding-version": "0.1.0"})
        drng = np.random.default_rng(SEED + 10 + i)
        x = (np.round(drng.standard_normal((n, ncol)) * 8) / 4).astype("<f4")
        if ds == "dataset_1":
            x[drng.random(x.shape) < 0.7] = 0
            c = sp.csr_matrix(x)
            v3_group(os.path.join(p, "X"), {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                            "shape": [n, ncol]})
            v3_array(os.path.join(p, "X", "data"), c.data.astype("<f4"), (64,),
                     [sharding((16,), [BYTES_LE, blosc3("lz4", "shuffle", 4, 3)])], 0.0)
            v3_array(os.path.join(p, "X", "indices"), c.indices.astype("<u2"), (64,),
                     [sharding((16,), [BYTES_LE, blosc3("lz4", "shuffle", 2, 3)])], 0)
            v3_array(os.path.join(p, "X", "indptr"), c.indptr.astype("<i8"), (41,), [BYTES_LE], 0)
            g.array_cases("col_dataset_1_X_dense", st, "dataset_1/X", c.toarray(), rows=[(5, 33)], extra_args="--dense")
            g.case("col_dataset_1_X_indices", "bytes", st, "dataset_1/X/indices", "-",
                   le_bytes(c.indices.astype("<u2")))
        else:
            v3_array(os.path.join(p, "X"), x, (256, ncol),
                     [sharding((64, ncol), [BYTES_LE, blosc3("lz4", "shuffle", 4, 3)])], 0.0,
                     attrs={"encoding-type": "array", "encoding-version": "0.2.0"})
            rows = [(250, 270), (63, 65)] if n == 300 else []
            g.array_cases("col_%s_X" % ds, st, ds + "/X", x, rows=rows)
        obs_p = os.path.join(p, "obs")
        v3_group(obs_p, {"_index": "_index", "column-order": ["src_path"], "encoding-type": "dataframe",
                         "encoding-version": "0.2.0"})
        names = np.array(["%s_cell_%d" % (ds, j) for j in range(n)], dtype=object)
        src = np.array(["/data/in/file_%d.h5ad" % (j % 3) for j in range(n)], dtype=object)
        sattrs = {"encoding-type": "string-array", "encoding-version": "0.2.0"}
        v3_array(os.path.join(obs_p, "_index"), names, (64,), [{"name": "vlen-utf8"}, zstd3(3, False)], "",
                 dtype="string", attrs=sattrs)
        v3_array(os.path.join(obs_p, "src_path"), src, (64,), [{"name": "vlen-utf8"}, zstd3(3, False)], "",
                 dtype="string", attrs=sattrs)
        var_p = os.path.join(p, "var")
        v3_group(var_p, {"_index": "_index", "column-order": [], "encoding-type": "dataframe",
                         "encoding-version": "0.2.0"})
        v3_array(os.path.join(var_p, "_index"), np.array(["g%d" % j for j in range(ncol)], dtype=object),
                 (ncol,), [{"name": "vlen-utf8"}], "", dtype="string", attrs=sattrs)
        if ds == "dataset_10":
            g.case("col_dataset_10_obs_src_path", "json", st, "dataset_10/obs/src_path", "--rows 60:70",
                   list(src[60:70]))
            g.case("col_dataset_10_obs_index", "json", st, "dataset_10/obs/_index", "-", list(names))
    # v3 categorical / nullable columns, hand-written like zarr-python 3 + anndata would
    obs_p = os.path.join(base, "dataset_2", "obs")
    cat_p = os.path.join(obs_p, "kind")
    v3_group(cat_p, {"encoding-type": "categorical", "encoding-version": "0.2.0", "ordered": False})
    kcodes = np.array([1, -1, 0, 2, 1], dtype="<i1")
    kcats = np.array(["alpha", "b\u00e9ta", "gamma"], dtype=object)
    v3_array(os.path.join(cat_p, "codes"), kcodes, (5,), [BYTES_LE], 0,
             attrs={"encoding-type": "array", "encoding-version": "0.2.0"})
    v3_array(os.path.join(cat_p, "categories"), kcats, (3,), [{"name": "vlen-utf8"}], "", dtype="string",
             attrs={"encoding-type": "string-array", "encoding-version": "0.2.0"})
    g.case("col_v3_cat_codes", "bytes", st, "dataset_2/obs/kind", "-", le_bytes(kcodes))
    g.case("col_v3_cat_labels", "json", st, "dataset_2/obs/kind", "--labels",
           [None if c < 0 else kcats[c] for c in kcodes])
    ni_p = os.path.join(obs_p, "count")
    v3_group(ni_p, {"encoding-type": "nullable-integer", "encoding-version": "0.1.0"})
    v3_array(os.path.join(ni_p, "values"), np.array([5, 0, -7, 9, 0], dtype="<i4"), (5,), [BYTES_LE], 0)
    v3_array(os.path.join(ni_p, "mask"), np.array([False, True, False, False, True]), (5,), [BYTES_LE], False)
    g.case("col_v3_nullable_int", "json", st, "dataset_2/obs/count", "-", [5, None, -7, 9, None])


# --------------------------------------------------------------------------
# hand-written v2 nullable groups (with values under the mask that must not leak)
# --------------------------------------------------------------------------

def gen_v2_nullable(g):
    st = "v2_nullable_manual"
    root = zarr.open_group(g.spath(st), mode="w")
    ni = root.create_group("nint")
    ni.attrs.update({"encoding-type": "nullable-integer", "encoding-version": "0.1.0"})
    vals = np.array([1, 99, -3, 2**40, 7, 0, -(2**62), 5, 6, 42, 11], dtype="<i8")
    mask = np.array([0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1], dtype=bool)
    ni.create_dataset("values", data=vals, chunks=(4,))
    ni.create_dataset("mask", data=mask, chunks=(4,))
    exp = [None if m else int(v) for v, m in zip(vals, mask)]
    g.case("v2_nullable_int_manual", "json", st, "nint", "-", exp)
    g.case("v2_nullable_int_manual_rows", "json", st, "nint", "--rows 3:10", exp[3:10])
    nu = root.create_group("nuint8")
    nu.attrs.update({"encoding-type": "nullable-integer", "encoding-version": "0.1.0"})
    v8 = np.array([255, 0, 128, 1, 2], dtype="|u1")
    m8 = np.array([0, 0, 1, 0, 1], dtype=bool)
    nu.create_dataset("values", data=v8, chunks=(2,))
    nu.create_dataset("mask", data=m8, chunks=(2,))
    g.case("v2_nullable_uint8_manual", "json", st, "nuint8", "-", [None if m else int(v) for v, m in zip(v8, m8)])
    nb = root.create_group("nbool")
    nb.attrs.update({"encoding-type": "nullable-boolean", "encoding-version": "0.1.0"})
    bv = np.array([True, False, True, True, False, False, True], dtype=bool)
    bm = np.array([0, 0, 1, 0, 0, 1, 0], dtype=bool)
    nb.create_dataset("values", data=bv, chunks=(3,))
    nb.create_dataset("mask", data=bm, chunks=(3,))
    g.case("v2_nullable_bool_manual", "json", st, "nbool", "-", [None if m else bool(v) for v, m in zip(bv, bm)])


# --------------------------------------------------------------------------
# bad input: every case gets its own store
# --------------------------------------------------------------------------

def gen_bad(g):
    def v2_store(name, data, chunks, **kw):
        root = zarr.open_group(g.spath(name), mode="w")
        root.create_dataset("a", shape=data.shape, chunks=chunks, dtype=data.dtype, **kw)[...] = data
        return os.path.join(g.spath(name), "a")

    def edit_json(path, fn):
        with open(path) as f:
            meta = json.load(f)
        fn(meta)
        with open(path, "w") as f:
            json.dump(meta, f, indent=2)

    def truncate(path, keep):
        with open(path, "rb") as f:
            b = f.read()
        with open(path, "wb") as f:
            f.write(b[:keep] if keep >= 0 else b[:len(b) + keep])

    data = make_data("<f4", (20, 10))

    # truncated blosc chunk
    p = v2_store("bad_v2_blosc_truncated", data, (8, 5), compressor=numcodecs.Blosc("lz4", 5, 1))
    truncate(os.path.join(p, "1.0"), 20)
    g.case("bad_v2_blosc_truncated", "fail", "bad_v2_blosc_truncated", "a", "-", "chunk")
    # blosc chunk cut to less than its 16-byte header
    p = v2_store("bad_v2_blosc_header_cut", data, (8, 5), compressor=numcodecs.Blosc("lz4", 5, 1))
    truncate(os.path.join(p, "0.1"), 9)
    g.case("bad_v2_blosc_header_cut", "fail", "bad_v2_blosc_header_cut", "a", "-", "chunk")
    # a valid blosc frame that decodes to the wrong number of bytes
    p = v2_store("bad_v2_blosc_wrong_size", data, (8, 5), compressor=numcodecs.Blosc("lz4", 5, 1))
    with open(os.path.join(p, "0.0"), "wb") as f:
        f.write(numcodecs.Blosc("lz4", 5, 1).encode(np.arange(10, dtype="<f4")))
    g.case("bad_v2_blosc_wrong_size", "fail", "bad_v2_blosc_wrong_size", "a", "-", "chunk")
    # truncated zstd chunk
    p = v2_store("bad_v2_zstd_truncated", data, (8, 5), compressor=numcodecs.Zstd(level=1))
    truncate(os.path.join(p, "1.1"), -6)
    g.case("bad_v2_zstd_truncated", "fail", "bad_v2_zstd_truncated", "a", "-", "chunk")
    # uncompressed chunk too short
    p = v2_store("bad_v2_raw_short", data, (8, 5), compressor=None)
    truncate(os.path.join(p, "2.1"), 50)
    g.case("bad_v2_raw_short_chunk", "fail", "bad_v2_raw_short", "a", "-", "chunk")
    # malformed .zarray
    p = v2_store("bad_v2_json", data, (8, 5))
    with open(os.path.join(p, ".zarray"), "r+") as f:
        txt = f.read()
        f.seek(0)
        f.truncate()
        f.write(txt.replace('"shape"', '"shape" ', 1)[: len(txt) // 2])
    g.case("bad_v2_malformed_zarray", "fail", "bad_v2_json", "a", "-", "json")
    # missing .zarray (the directory and chunks remain)
    p = v2_store("bad_v2_no_zarray", data, (8, 5))
    os.remove(os.path.join(p, ".zarray"))
    g.case("bad_v2_missing_zarray", "fail", "bad_v2_no_zarray", "a", "-", "not found")
    # unknown compressor id
    p = v2_store("bad_v2_codec_foo", data, (8, 5))
    edit_json(os.path.join(p, ".zarray"), lambda m: m.update(compressor={"id": "foo", "level": 1}))
    g.case("bad_v2_unknown_codec", "fail", "bad_v2_codec_foo", "a", "-", "foo")
    p = v2_store("bad_v2_filter_foo", data, (8, 5))
    edit_json(os.path.join(p, ".zarray"), lambda m: m.update(filters=[{"id": "foo"}]))
    g.case("bad_v2_unknown_filter", "fail", "bad_v2_filter_foo", "a", "-", "foo")
    # chunks rank != shape rank
    p = v2_store("bad_v2_rank", data, (8, 5))
    edit_json(os.path.join(p, ".zarray"), lambda m: m.update(chunks=[8]))
    g.case("bad_v2_chunks_rank", "fail", "bad_v2_rank", "a", "-", "chunks")
    # node that does not exist; rows out of range
    v2_store("bad_v2_ok", data, (8, 5))
    g.case("bad_v2_no_such_node", "fail", "bad_v2_ok", "nope", "-", "not found")
    g.case("bad_v2_no_such_nested_node", "fail", "bad_v2_ok", "a/b/c", "-", "not found")
    g.case("bad_v2_rows_past_end", "fail", "bad_v2_ok", "a", "--rows 5:21", "range")
    g.case("bad_v2_rows_reversed", "fail", "bad_v2_ok", "a", "--rows 7:3", "range")
    g.case("bad_v2_rows_start_past_end", "fail", "bad_v2_ok", "a", "--rows 25:30", "range")
    g.case("bad_no_such_store", "fail", "does_not_exist", "-", "-", "does_not_exist")

    # ---- v3 ----
    def v3_store(name, data, chunks, codecs, fill=0, **kw):
        base = g.spath(name)
        v3_group(base)
        v3_array(os.path.join(base, "a"), data, chunks, codecs, fill, **kw)
        return os.path.join(base, "a")

    def flip_byte(path, pos):
        with open(path, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x5A]))

    p = v3_store("bad_v3_crc", data, (8, 5), [BYTES_LE, CRC])
    flip_byte(os.path.join(p, "c", "1", "1"), -2 + os.path.getsize(os.path.join(p, "c", "1", "1")))
    g.case("bad_v3_crc32c_mismatch", "fail", "bad_v3_crc", "a", "-", "crc32c")
    p = v3_store("bad_v3_crc_payload", data, (8, 5), [BYTES_LE, zstd3(1, False), CRC])
    flip_byte(os.path.join(p, "c", "0", "0"), 5)
    g.case("bad_v3_crc32c_payload_flipped", "fail", "bad_v3_crc_payload", "a", "-", "crc32c")
    p = v3_store("bad_v3_shard_index_crc", data, (16, 10), [sharding((4, 5), [BYTES_LE])])
    f = os.path.join(p, "c", "0", "0")
    flip_byte(f, os.path.getsize(f) - 20)  # inside the index, before its crc
    g.case("bad_v3_shard_index_crc32c", "fail", "bad_v3_shard_index_crc", "a", "-", "crc32c")
    # shard index pointing past the end of the shard file
    p = v3_store("bad_v3_shard_past_end", data, (16, 10), [sharding((4, 5), [BYTES_LE], index_codecs=[BYTES_LE])])
    f = os.path.join(p, "c", "0", "0")
    with open(f, "r+b") as fh:
        sz = os.path.getsize(f)
        fh.seek(sz - 16 * 8)  # the index: 4 x 2 inner chunks x (offset, nbytes)
        fh.write(struct.pack("<QQ", sz + 1000, 80))
    g.case("bad_v3_shard_offset_past_end", "fail", "bad_v3_shard_past_end", "a", "-", "shard")
    # shard file shorter than its own index
    p = v3_store("bad_v3_shard_tiny", data, (16, 10), [sharding((4, 5), [BYTES_LE])])
    truncate(os.path.join(p, "c", "0", "0"), 10)
    g.case("bad_v3_shard_shorter_than_index", "fail", "bad_v3_shard_tiny", "a", "-", "shard")
    # uncompressed v3 chunk too short
    p = v3_store("bad_v3_raw_short", data, (8, 5), [BYTES_LE])
    truncate(os.path.join(p, "c", "1", "0"), 33)
    g.case("bad_v3_raw_short_chunk", "fail", "bad_v3_raw_short", "a", "-", "chunk")
    # truncated blosc chunk in v3
    p = v3_store("bad_v3_blosc_truncated", data, (8, 5), [BYTES_LE, blosc3("lz4", "shuffle", 4)])
    truncate(os.path.join(p, "c", "0", "1"), 24)
    g.case("bad_v3_blosc_truncated", "fail", "bad_v3_blosc_truncated", "a", "-", "chunk")
    # malformed zarr.json
    p = v3_store("bad_v3_json", data, (8, 5), [BYTES_LE])
    with open(os.path.join(p, "zarr.json"), "a") as fh:
        fh.write("}{,")
    g.case("bad_v3_malformed_json", "fail", "bad_v3_json", "a", "-", "json")
    # missing zarr.json for the node
    p = v3_store("bad_v3_no_json", data, (8, 5), [BYTES_LE])
    os.remove(os.path.join(p, "zarr.json"))
    g.case("bad_v3_missing_zarr_json", "fail", "bad_v3_no_json", "a", "-", "not found")
    # unknown codec
    p = v3_store("bad_v3_codec_foo", data, (8, 5), [BYTES_LE])
    edit_json(os.path.join(p, "zarr.json"),
              lambda m: m.update(codecs=[BYTES_LE, {"name": "foo", "configuration": {}}]))
    g.case("bad_v3_unknown_codec", "fail", "bad_v3_codec_foo", "a", "-", "foo")
    # chunk_shape rank != shape rank
    p = v3_store("bad_v3_rank", data, (8, 5), [BYTES_LE])
    edit_json(os.path.join(p, "zarr.json"),
              lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[8, 5, 1]))
    g.case("bad_v3_chunk_shape_rank", "fail", "bad_v3_rank", "a", "-", "chunk_shape")
    # unknown data type
    p = v3_store("bad_v3_dtype", data, (8, 5), [BYTES_LE])
    edit_json(os.path.join(p, "zarr.json"), lambda m: m.update(data_type="float128x"))
    g.case("bad_v3_unknown_data_type", "fail", "bad_v3_dtype", "a", "-", "float128x")
    v3_store("bad_v3_ok", data, (8, 5), [BYTES_LE])
    g.case("bad_v3_no_such_node", "fail", "bad_v3_ok", "missing/node", "-", "not found")
    g.case("bad_v3_rows_past_end", "fail", "bad_v3_ok", "a", "--rows 0:21", "range")
    g.case("bad_v3_rows_reversed", "fail", "bad_v3_ok", "a", "--rows 10:9", "range")

    # ---- the hardening corpus: shards, shapes, deep JSON, dtypes, CSR, symlinks, ".." ----
    # (tests/conformance/bad_cli.sh runs `iterate` and `inspect` on these same stores.)

    # a shard cut short: index at the end (its tail, the crc32c, is gone) ...
    p = v3_store("bad_v3_shard_cut_end", data, (16, 10), [sharding((4, 5), [BYTES_LE])])
    truncate(os.path.join(p, "c", "0", "0"), -7)
    g.case("bad_v3_shard_truncated_end", "fail", "bad_v3_shard_cut_end", "a", "-", "crc32c")
    # ... and index at the start (the index is intact, the inner chunks it lists are not)
    p = v3_store("bad_v3_shard_cut_start", data, (16, 10), [sharding((4, 5), [BYTES_LE], location="start")])
    truncate(os.path.join(p, "c", "0", "0"), -50)
    g.case("bad_v3_shard_truncated_start", "fail", "bad_v3_shard_cut_start", "a", "-", "shard")
    # an inner chunk whose own crc32c is wrong
    p = v3_store("bad_v3_shard_inner_crc", data, (16, 10), [sharding((4, 5), [BYTES_LE, CRC])])
    flip_byte(os.path.join(p, "c", "0", "0"), 3)
    g.case("bad_v3_shard_inner_crc32c", "fail", "bad_v3_shard_inner_crc", "a", "-", "crc32c")

    # shard index entries whose offset + nbytes wraps around 2^64, or whose size is absurd
    def patch_index(name, entry):
        q = v3_store(name, data, (16, 10), [sharding((4, 5), [BYTES_LE], index_codecs=[BYTES_LE])])
        f = os.path.join(q, "c", "0", "0")
        with open(f, "r+b") as fh:
            fh.seek(os.path.getsize(f) - 16 * 8)
            fh.write(struct.pack("<QQ", *entry))
    patch_index("bad_v3_shard_wrap", (U64MAX - 15, 80))
    g.case("bad_v3_shard_offset_wraps", "fail", "bad_v3_shard_wrap", "a", "-", "shard")
    patch_index("bad_v3_shard_huge_len", (0, 2**63))
    g.case("bad_v3_shard_nbytes_huge", "fail", "bad_v3_shard_huge_len", "a", "-", "shard")

    # shapes: negative, huge, zero chunks, shape x itemsize overflow
    def v2_meta(name, **upd):
        q = v2_store(name, data, (8, 5))
        edit_json(os.path.join(q, ".zarray"), lambda m: m.update(**upd))

    def v3_meta(name, shape=None, chunk_shape=None, codecs=None, dtype=None):
        q = v3_store(name, data, (8, 5), codecs or [BYTES_LE])

        def fn(m):
            if shape is not None:
                m["shape"] = shape
            if chunk_shape is not None:
                m["chunk_grid"]["configuration"]["chunk_shape"] = chunk_shape
            if dtype is not None:
                m["data_type"] = dtype
        edit_json(os.path.join(q, "zarr.json"), fn)

    v2_meta("bad_v2_shape_neg", shape=[-20, 10])
    g.case("bad_v2_shape_negative", "fail", "bad_v2_shape_neg", "a", "-", "shape")
    v3_meta("bad_v3_shape_neg", shape=[20, -10])
    g.case("bad_v3_shape_negative", "fail", "bad_v3_shape_neg", "a", "-", "shape")
    v2_meta("bad_v2_shape_huge", shape=[2**62, 10])
    g.case("bad_v2_shape_huge", "fail", "bad_v2_shape_huge", "a", "-", "too large")
    v3_meta("bad_v3_shape_huge", shape=[2**63 - 1, 10])
    g.case("bad_v3_shape_huge", "fail", "bad_v3_shape_huge", "a", "-", "too large")
    # every extent is allowed (< 2^48) but shape x itemsize is not: 2^40 x 2^22 x 2
    # float32 is 2^65 bytes; and 4 x 2^32 x 2^32, where a row's item count alone
    # wraps to 0 in 64 bits (that one used to overflow the output buffer of `get`)
    v2_meta("bad_v2_nbytes_overflow", shape=[2**40, 2**22, 2], chunks=[8, 5, 1])
    g.case("bad_v2_shape_itemsize_overflow", "fail", "bad_v2_nbytes_overflow", "a", "-", "overflow")
    v2_meta("bad_v2_row_overflow", shape=[4, 2**32, 2**32], chunks=[1, 2, 2])
    g.case("bad_v2_shape_row_items_wrap", "fail", "bad_v2_row_overflow", "a", "--rows 0:1", "overflow")
    v3_meta("bad_v3_nbytes_overflow", shape=[2**40, 2**22, 2], chunk_shape=[8, 5, 1])
    g.case("bad_v3_shape_itemsize_overflow", "fail", "bad_v3_nbytes_overflow", "a", "-", "overflow")
    v3_meta("bad_v3_row_overflow", shape=[0, 2**47, 2**20], chunk_shape=[1, 2, 2])
    g.case("bad_v3_shape_row_items_wrap", "fail", "bad_v3_row_overflow", "a", "-", "overflow")
    # allowed extents over tiny chunks: a grid of ~5.5e12 files (bad_cli.sh: `inspect`
    # must refuse to stat them all rather than hang)
    v2_meta("bad_v2_shape_big", shape=[2**40, 10], chunks=[1, 2])
    # one chunk of 2^31 x 2^31 float32 is 2^64 bytes
    v2_meta("bad_v2_chunk_overflow", chunks=[2**31, 2**31])
    g.case("bad_v2_chunk_itemsize_overflow", "fail", "bad_v2_chunk_overflow", "a", "-", "overflow")
    v3_meta("bad_v3_chunk_overflow", chunk_shape=[2**31, 2**31])
    g.case("bad_v3_chunk_itemsize_overflow", "fail", "bad_v3_chunk_overflow", "a", "-", "overflow")
    v2_meta("bad_v2_chunks_zero", chunks=[0, 5])
    g.case("bad_v2_chunks_zero", "fail", "bad_v2_chunks_zero", "a", "-", "chunks")
    v3_meta("bad_v3_chunk_zero", chunk_shape=[8, 0])
    g.case("bad_v3_chunk_shape_zero", "fail", "bad_v3_chunk_zero", "a", "-", "chunk_shape")
    q = v3_store("bad_v3_inner_zero", data, (16, 10), [sharding((4, 5), [BYTES_LE])])
    edit_json(os.path.join(q, "zarr.json"),
              lambda m: m["codecs"][0]["configuration"].update(chunk_shape=[0, 5]))
    g.case("bad_v3_shard_inner_chunk_zero", "fail", "bad_v3_inner_zero", "a", "-", "chunk_shape")

    # 100 000 nested arrays: jansson's depth limit must make this a plain JSON error
    deep = "[" * 100000 + "]" * 100000
    p = v2_store("bad_v2_deep", data, (8, 5))
    with open(os.path.join(p, ".zarray"), "w") as fh:
        fh.write(deep)
    g.case("bad_v2_deep_zarray", "fail", "bad_v2_deep", "a", "-", "json")
    p = v2_store("bad_v2_deep_attrs", data, (8, 5))
    with open(os.path.join(p, ".zattrs"), "w") as fh:
        fh.write('{"x": ' + deep + "}")
    g.case("bad_v2_deep_zattrs", "fail", "bad_v2_deep_attrs", "a", "-", "json")
    p = v3_store("bad_v3_deep", data, (8, 5), [BYTES_LE])
    with open(os.path.join(p, "zarr.json"), "w") as fh:
        fh.write('{"zarr_format": 3, "node_type": "array", "attributes": ' + deep + "}")
    g.case("bad_v3_deep_zarr_json", "fail", "bad_v3_deep", "a", "-", "json")
    v2_store("bad_v2_deep_zmeta", data, (8, 5))
    with open(os.path.join(g.spath("bad_v2_deep_zmeta"), ".zmetadata"), "w") as fh:
        fh.write('{"zarr_consolidated_format": 1, "metadata": ' + deep + "}")
    g.case("bad_v2_deep_zmetadata", "fail", "bad_v2_deep_zmeta", "a", "-", "json")

    # unknown v2 dtypes (an unknown kind and a structured dtype)
    v2_meta("bad_v2_dtype_kind", dtype="<x4")
    g.case("bad_v2_unknown_dtype", "fail", "bad_v2_dtype_kind", "a", "-", "<x4")
    v2_meta("bad_v2_dtype_struct", dtype=[["f0", "<f4"], ["f1", "<i4"]])
    g.case("bad_v2_structured_dtype", "fail", "bad_v2_dtype_struct", "a", "-", "dtype")

    # CSR groups that lie: written by zarr, edited with numpy
    n_obs, n_var = 12, 6
    crng = np.random.default_rng(SEED + 7)
    dense = np.where(crng.random((n_obs, n_var)) < 0.5, crng.standard_normal((n_obs, n_var)), 0).astype("<f4")
    dense[:, 0] = 1.0  # every row holds at least one value
    ind, ptr, val = [], [0], []
    for r in range(n_obs):
        cols = np.nonzero(dense[r])[0]
        ind.extend(cols)
        val.extend(dense[r, cols])
        ptr.append(len(ind))

    def csr_store(name, indptr=None, indices=None):
        root = zarr.open_group(g.spath(name), mode="w")
        root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        xg = root.create_group("X")
        xg.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [n_obs, n_var]})
        xg.create_dataset("data", data=np.array(val, dtype="<f4"), chunks=(16,))
        xg.create_dataset("indices", data=np.array(ind if indices is None else indices, dtype="<i4"), chunks=(16,))
        xg.create_dataset("indptr", data=np.array(ptr if indptr is None else indptr, dtype="<i8"), chunks=(5,))

    csr_store("bad_csr_ok")  # the control: bad_cli.sh checks that it iterates
    g.case("bad_csr_control_dense", "bytes", "bad_csr_ok", "X", "--dense", le_bytes(dense))
    q = list(ptr)
    q[5], q[6] = q[6], q[5] - 1  # a row end before its start
    csr_store("bad_csr_indptr_dec", indptr=q)
    g.case("bad_csr_indptr_not_monotonic", "fail", "bad_csr_indptr_dec", "X", "--dense", "indptr")
    csr_store("bad_csr_indptr_last", indptr=ptr[:-1] + [ptr[-1] + 3])
    g.case("bad_csr_indptr_past_nnz", "fail", "bad_csr_indptr_last", "X", "--dense", "indptr")
    csr_store("bad_csr_indptr_short", indptr=ptr[:-1] + [ptr[-1] - 2])
    g.case("bad_csr_indptr_below_nnz", "fail", "bad_csr_indptr_short", "X", "--dense", "indptr")
    csr_store("bad_csr_indptr_first", indptr=[1] + ptr[1:])
    g.case("bad_csr_indptr_first_nonzero", "fail", "bad_csr_indptr_first", "X", "--dense", "indptr")
    oob = list(ind)
    oob[len(oob) // 2] = n_var  # one column index == n_vars
    csr_store("bad_csr_indices_oob", indices=oob)
    g.case("bad_csr_indices_ge_nvars", "fail", "bad_csr_indices_oob", "X", "--dense", "column index")
    neg = list(ind)
    neg[3] = -1
    csr_store("bad_csr_indices_neg", indices=neg)
    g.case("bad_csr_indices_negative", "fail", "bad_csr_indices_neg", "X", "--dense", "column index")

    # symlink loops inside a store: a chunk file pointing at itself, and two
    # directories pointing at each other
    csr_store("bad_symlink_chunk")
    c0 = os.path.join(g.spath("bad_symlink_chunk"), "X", "data", "0")
    os.remove(c0)
    os.symlink("0", c0)
    g.case("bad_symlink_chunk_self", "fail", "bad_symlink_chunk", "X", "--dense", "symbolic links")
    g.case("bad_symlink_chunk_self_array", "fail", "bad_symlink_chunk", "X/data", "-", "symbolic links")
    csr_store("bad_symlink_dir")
    xd = os.path.join(g.spath("bad_symlink_dir"), "X")
    shutil.rmtree(os.path.join(xd, "indices"))
    os.symlink("indices_b", os.path.join(xd, "indices"))
    os.symlink("indices", os.path.join(xd, "indices_b"))
    g.case("bad_symlink_dir_cycle", "fail", "bad_symlink_dir", "X", "--dense", "symbolic links")
    g.case("bad_symlink_dir_cycle_array", "fail", "bad_symlink_dir", "X/indices", "-", "symbolic links")
    # a directory linking back to its parent: a cycle only a tree walk can meet
    # (bad_cli.sh runs `inspect` on it); reading a node through it still works
    csr_store("bad_symlink_parent")
    os.symlink("..", os.path.join(g.spath("bad_symlink_parent"), "X", "up"))
    g.case("bad_symlink_parent_read", "bytes", "bad_symlink_parent", "X", "--dense", le_bytes(dense))

    # node paths with ".." are refused (even when they would lead back inside)
    g.case("bad_dotdot_node", "fail", "bad_v2_ok", "../bad_v2_ok/a", "-", "..")
    g.case("bad_dotdot_inner", "fail", "bad_v2_ok", "a/../a", "-", "..")
    g.case("bad_dotdot_csr", "fail", "bad_csr_ok", "X/../X", "--dense", "..")


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: gen_fixtures.py OUTDIR\n")
        return 2
    g = Gen(sys.argv[1])
    for d in (g.stores, g.expected):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
    mf = os.path.join(g.out, "manifest.tsv")
    if os.path.exists(mf):
        os.remove(mf)
    gen_v2(g)
    gen_v3(g)
    gen_v2_nullable(g)
    gen_anndata(g)
    gen_bad(g)
    gen_other_writers(g)
    g.write_manifest()  # last: its presence means the fixtures are complete
    counts = {}
    for c in g.cases:
        counts[c[1]] = counts.get(c[1], 0) + 1
    print("gen_fixtures: %d cases (%s) in %s" % (
        len(g.cases), ", ".join("%s %d" % kv for kv in sorted(counts.items())), g.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
