#!/usr/bin/python3
"""Writes codec test vectors made by numcodecs (the reference writer of zarr v2
chunks) into the directory given as argv[1], for tests/unit/test_codecs.c.

Run with Debian's interpreter, which has python3-numcodecs and python3-numpy:
    /usr/bin/python3 tests/unit/gen_codec_vectors.py DIR

For every vector NAME it writes:
    NAME.raw   the decoded bytes (vlen-utf8: each string followed by one NUL)
    NAME.enc   the encoded bytes
and one line in DIR/index.txt:
    NAME KIND [key=value ...]
KIND is one of blosc zstd lz4 gzip zlib bz2 crc32c vlen-utf8. The key=value pairs
carry the encoder parameters (cname, clevel, shuffle, typesize, blocksize,
level, acceleration, items). reencode=1 marks vectors whose encoding the C
encoder must reproduce byte for byte (same library, same parameters); gzip
never has it because Python's gzip header carries the current time.

Everything is deterministic: fixed arrays and a seeded generator.
"""

import gzip
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
from numcodecs import BZ2, GZip, LZ4, Blosc, VLenUTF8, Zlib, Zstd
from numcodecs import blosc as ncblosc


def datasets():
    rng = np.random.default_rng(20240611)
    return {
        # smooth floats: compress well, byte shuffle matters
        "f32": (np.arange(6000, dtype="<f4") * np.float32(0.25)),
        # wide integers with a slow trend
        "i64": (np.arange(-3000, 3000, 3, dtype="<i8") ** 2),
        # 16-bit counts with repeats, typical of sparse-matrix data
        "u16": rng.integers(0, 40, size=5000).astype("<u2"),
        # incompressible bytes: blosc falls back to a raw (memcpy) frame
        "rnd": rng.integers(0, 256, size=5000, dtype=np.uint8),
        # below blosc's minimum buffer size (128 bytes)
        "small": np.arange(10, dtype="<i2"),
        "empty": np.zeros(0, dtype="<f8"),
        # several blosc blocks
        "big": (np.sin(np.arange(70000, dtype="<f8") / 50.0) * 1000.0).round(),
    }


class Writer:
    def __init__(self, outdir):
        self.outdir = outdir
        self.lines = []

    def add(self, name, kind, raw, enc, **params):
        with open(os.path.join(self.outdir, name + ".raw"), "wb") as f:
            f.write(raw)
        with open(os.path.join(self.outdir, name + ".enc"), "wb") as f:
            f.write(enc)
        extra = "".join(" %s=%s" % (k, v) for k, v in params.items())
        self.lines.append("%s %s%s\n" % (name, kind, extra))

    def finish(self):
        with open(os.path.join(self.outdir, "index.txt"), "w") as f:
            f.writelines(self.lines)
        return len(self.lines)


def crc32c_bitwise(data):
    """CRC-32C one bit at a time: slow, but independent of the C tables."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_codec_vectors.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    # With threads, libblosc writes the compressed blocks in the order the
    # threads finish them, so the same input can give different (equally
    # valid) frames. Single-threaded, numcodecs calls blosc_compress_ctx
    # with one thread, like the C encoder: the bytes are then reproducible.
    ncblosc.use_threads = False
    w = Writer(outdir)
    data = datasets()

    # --- blosc: every compressor numcodecs' libblosc has x every shuffle ---
    cnames = ncblosc.list_compressors()
    for cname in cnames:
        for shuffle in (Blosc.NOSHUFFLE, Blosc.SHUFFLE, Blosc.BITSHUFFLE):
            for dname in ("f32", "i64", "u16", "rnd", "small", "empty"):
                arr = data[dname]
                codec = Blosc(cname=cname, clevel=5, shuffle=shuffle)
                w.add("blosc_%s_s%d_%s" % (cname, shuffle, dname), "blosc",
                      arr.tobytes(), bytes(codec.encode(arr)), cname=cname,
                      clevel=5, shuffle=shuffle, typesize=arr.dtype.itemsize,
                      blocksize=0, reencode=1)
    # multi-block frames, forced block sizes (tiny, odd, larger than the
    # data), levels 0 (stored) and 9, and numcodecs' automatic shuffle
    big = data["big"]
    for cname, clevel, shuffle, blocksize in (
            ("lz4", 5, Blosc.SHUFFLE, 0), ("zstd", 9, Blosc.BITSHUFFLE, 0),
            ("blosclz", 9, Blosc.SHUFFLE, 0), ("lz4hc", 1, Blosc.NOSHUFFLE, 0),
            ("lz4", 5, Blosc.SHUFFLE, 256), ("zlib", 3, Blosc.SHUFFLE, 1000),
            ("lz4", 0, Blosc.SHUFFLE, 0), ("zstd", 1, Blosc.SHUFFLE, 1 << 20)):
        if cname not in cnames:
            continue
        codec = Blosc(cname=cname, clevel=clevel, shuffle=shuffle, blocksize=blocksize)
        w.add("blosc_big_%s_c%d_s%d_b%d" % (cname, clevel, shuffle, blocksize), "blosc",
              big.tobytes(), bytes(codec.encode(big)), cname=cname, clevel=clevel,
              shuffle=shuffle, typesize=8, blocksize=blocksize, reencode=1)
    for dname in ("rnd", "f32"):
        arr = data[dname]
        codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.AUTOSHUFFLE)
        eff = Blosc.BITSHUFFLE if arr.dtype.itemsize == 1 else Blosc.SHUFFLE
        w.add("blosc_auto_%s" % dname, "blosc", arr.tobytes(), bytes(codec.encode(arr)),
              cname="lz4", clevel=5, shuffle=eff, typesize=arr.dtype.itemsize,
              blocksize=0, reencode=1)

    # --- zstd ---
    # numcodecs 0.11 compresses levels <= 0 as level 1, where libzstd (and
    # later numcodecs) use the negative "fast" levels and 0 = default (3):
    # such vectors are decoded but not re-encoded.
    for level in (1, 3, 9, -3):
        for dname in ("f32", "i64", "rnd", "empty", "big"):
            raw = data[dname].tobytes()
            w.add("zstd_l%d_%s" % (level, dname), "zstd", raw,
                  bytes(Zstd(level=level).encode(raw)), level=level,
                  reencode=int(level > 0))
    # two frames back to back decode to the concatenation
    a, b = data["f32"].tobytes(), data["i64"].tobytes()
    w.add("zstd_twoframes", "zstd", a + b,
          bytes(Zstd(level=3).encode(a)) + bytes(Zstd(level=3).encode(b)))
    # a frame without content size, as a streaming writer makes it (the zstd
    # tool reading a pipe); optional, as it is not numcodecs output
    zstd_tool = shutil.which("zstd")
    if zstd_tool:
        raw = data["big"].tobytes()
        enc = subprocess.run([zstd_tool, "-q", "-c", "-3", "-"], input=raw,
                             stdout=subprocess.PIPE, check=True).stdout
        w.add("zstd_stream_nosize", "zstd", raw, enc)

    # --- lz4 (numcodecs framing) ---
    for accel in (1, 5, 60):
        for dname in ("f32", "u16", "rnd", "small", "empty", "big"):
            raw = data[dname].tobytes()
            w.add("lz4_a%d_%s" % (accel, dname), "lz4", raw,
                  bytes(LZ4(acceleration=accel).encode(raw)), acceleration=accel,
                  reencode=1)

    # --- gzip and zlib ---
    # Level 0 (stored blocks) is not re-encoded: deflate cuts stored blocks
    # where the output buffer ends, and Python grows its buffer in steps,
    # so the block boundaries depend on the caller, not on the data.
    for level in (0, 1, 5, 9):
        for dname in ("f32", "i64", "rnd", "empty", "big"):
            raw = data[dname].tobytes()
            w.add("gzip_l%d_%s" % (level, dname), "gzip", raw,
                  bytes(GZip(level=level).encode(raw)), level=level)
            w.add("zlib_l%d_%s" % (level, dname), "zlib", raw,
                  bytes(Zlib(level=level).encode(raw)), level=level,
                  reencode=int(level > 0))
    a, b = data["f32"].tobytes(), data["u16"].tobytes()
    w.add("gzip_twomembers", "gzip", a + b, gzip.compress(a, 6) + gzip.compress(b, 1))
    w.add("gzip_zeropadded", "gzip", a, gzip.compress(a, 6) + bytes(7))
    w.add("zlib_wbits9", "zlib", a, _zlib_small_window(a))

    # --- bz2 (numcodecs BZ2 = Python's bz2 over libbz2; the same library and
    # parameters give the same bytes, so the C encoder must reproduce them) ---
    for level in (1, 9):
        for dname in ("f32", "i64", "rnd", "small", "empty", "big"):
            raw = data[dname].tobytes()
            w.add("bz2_l%d_%s" % (level, dname), "bz2", raw, bytes(BZ2(level=level).encode(raw)),
                  level=level, reencode=1)
    # two streams back to back read as one (as bz2.decompress does)
    w.add("bz2_twostreams", "bz2", a + b, bytes(BZ2(level=9).encode(a)) + bytes(BZ2(level=1).encode(b)),
          level=9)

    # --- crc32c (zarr v3 codec; numcodecs 0.11 has none, so a bitwise CRC) ---
    for dname in ("f32", "rnd", "small", "empty"):
        raw = data[dname].tobytes()
        crc = crc32c_bitwise(raw)
        w.add("crc32c_%s" % dname, "crc32c", raw, raw + crc.to_bytes(4, "little"),
              reencode=1)

    # --- vlen-utf8 ---
    samples = {
        "basic": ["a", "bc", "", "hello world"],
        "unicode": ["T-cell", "\u00e9t\u00e9", "\u7d30\u80de", "\U0001f9ec dna", ""],
        "long": ["x" * 3000, "gene_%05d" % 7, "y" * 70000],
        "none": [],
        "emptyonly": ["", "", ""],
        "many": ["cell_%d" % i for i in range(1000)],
    }
    for sname, strs in samples.items():
        arr = np.array(strs, dtype=object)
        enc = bytes(VLenUTF8().encode(arr))
        raw = b"".join(s.encode("utf-8") + b"\0" for s in strs)
        w.add("vlen_%s" % sname, "vlen-utf8", raw, enc, items=len(strs), reencode=1)

    n = w.finish()
    print("gen_codec_vectors: wrote %d vectors to %s" % (n, outdir))


def _zlib_small_window(data):
    """A zlib stream with a 512-byte window (wbits 9): valid for any inflate
    that accepts a 32 KiB window."""
    c = zlib.compressobj(6, zlib.DEFLATED, 9)
    return c.compress(data) + c.flush()


if __name__ == "__main__":
    main()
