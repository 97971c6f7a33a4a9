"""DatasetCollection: the library's collection writer from Python (the bytes
of `annbatch convert`, its options, adding, errors, Ctrl-C, the GIL) and
.obs() against what anndata reads from the same collection."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import annbatch_c as annbatch
from annbatch_c import _engine
from annbatch_c.collection import _frame

from conftest import AB_BIN, N_OBS, make_adata


def convert(out, inputs, *args):
    r = subprocess.run([AB_BIN, "convert", *map(str, inputs), "-o", str(out), "--no-progress", *map(str, args)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def tree(path):
    """Every file under path (relative name -> bytes)."""
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = fh.read()
    return out


def assert_same_tree(a, b):
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb), f"files differ: {sorted(set(ta) ^ set(tb))[:10]}"
    differ = [k for k in ta if ta[k] != tb[k]]
    assert not differ, f"{len(differ)} of {len(ta)} files differ, e.g. {differ[:5]}"
    assert len(ta) > 10


def quiet(message):
    """An on_note that drops the writer's notes."""


def leftovers(d):
    return [n for n in os.listdir(d) if "annbatch-tmp" in n]


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A 20000-row sparse AnnData (200 non-zeros a row) written by `annbatch
    synth`: repeated as input, a write that lasts a few seconds."""
    d = tmp_path_factory.mktemp("wide")
    p = str(d / "wide.zarr")
    r = subprocess.run([AB_BIN, "synth", p, "--n-obs", "20000", "--n-vars", "2000", "--mean-nnz", "200",
                        "--seed", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return p


# ------------------------------------------------------------ the bytes of annbatch convert

CASES = [
    # (add_adatas keywords, convert options); inputs "sparse" unless the case says
    ("seed", dict(seed=5), ["--seed", 5]),
    ("grouped", dict(groupby="cell_type", obs_columns=["cell_type", "depth"], dataset_size=300,
                     shuffle_chunk_size=100, zarr_compressor="blosc-zstd", seed=7),
     ["--groupby", "cell_type", "--obs-columns", "cell_type,depth", "--dataset-size", 300,
      "--shuffle-chunk-size", 100, "--compressor", "blosc-zstd", "--seed", 7]),
    ("unshuffled", dict(shuffle=False, n_obs_per_chunk=16, shard_size="64KiB", zarr_compressor="gzip",
                        dataset_size=400, shuffle_chunk_size=50),
     ["--no-shuffle", "--n-obs-per-chunk", 16, "--shard-size", "64KiB", "--compressor", "gzip",
      "--dataset-size", 400, "--shuffle-chunk-size", 50]),
    ("bytes", dict(dataset_size="50KB", blosc_blocksize="16K", seed=2, memory="1GiB"),
     ["--dataset-size", "50KB", "--blosc-blocksize", "16K", "--seed", 2, "--memory", "1GiB"]),
    # the Python side read on the calling thread, the CLI with three workers
    ("threads", dict(threads=1, shuffle_chunk_size=40, dataset_size=700, seed=8),
     ["--threads", 3, "--shuffle-chunk-size", 40, "--dataset-size", 700, "--seed", 8]),
    ("subset", dict(var_subset=["g5", "g1", "g30"], groupby=["src_path", "cell_type"], seed=11),
     ["--var-subset", "SUBSET", "--groupby", "src_path,cell_type", "--seed", 11]),
    ("codec", dict(zarr_compressor=None, shard_size="1MB", make_var_unique=True, seed=4),
     ["--compressor", "none", "--shard-size", "1MB", "--make-var-unique", "--seed", 4]),
    ("shard_rows", dict(shard_size=100, n_obs_per_chunk=8, seed=6),
     ["--shard-rows", 100, "--n-obs-per-chunk", 8, "--seed", 6]),
    ("rng", dict(rng=np.random.default_rng(3)),
     ["--seed", int(np.random.default_rng(3).integers(0, 2**63 - 1))]),
]


@pytest.mark.parametrize("name,kw,args", CASES, ids=[c[0] for c in CASES])
def test_bytes_equal_annbatch_convert(data, tmp_path, name, kw, args):
    inputs = [data["sparse"], data["dense"]] if name in ("bytes", "subset", "threads") else [data["sparse"]]
    if "SUBSET" in args:
        (tmp_path / "subset.txt").write_text("g5\ng1\ng30\n")
        args = [str(tmp_path / "subset.txt") if a == "SUBSET" else a for a in args]
    convert(tmp_path / "cli.zarr", inputs, *args)
    coll = annbatch.DatasetCollection(str(tmp_path / "py.zarr"))
    assert coll.add_adatas(inputs, on_note=quiet, **kw) is coll
    assert_same_tree(tmp_path / "cli.zarr", tmp_path / "py.zarr")
    assert leftovers(tmp_path) == []


def test_shard_size_none_is_unsharded(data, tmp_path):
    annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas([data["sparse"]], shard_size=None, seed=1)
    meta = json.loads((tmp_path / "c.zarr" / "dataset_0" / "X" / "data" / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "blosc"]


def test_codec_objects(data, tmp_path):
    numcodecs = pytest.importorskip("numcodecs")
    convert(tmp_path / "cli.zarr", [data["sparse"]], "--compressor", "blosc-zstd", "--seed", 1)
    annbatch.DatasetCollection(str(tmp_path / "py.zarr")).add_adatas(
        [data["sparse"]], zarr_compressor=(numcodecs.Blosc(cname="zstd", clevel=3, shuffle=1),), seed=1)
    assert_same_tree(tmp_path / "cli.zarr", tmp_path / "py.zarr")
    annbatch.DatasetCollection(str(tmp_path / "gz.zarr")).add_adatas(
        [data["sparse"]], zarr_compressor=numcodecs.GZip(level=1), seed=1)
    meta = json.loads((tmp_path / "gz.zarr" / "dataset_0" / "X" / "data" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"]
    assert inner[-1] == {"name": "gzip", "configuration": {"level": 1}}
    with pytest.raises(ValueError, match="byte shuffle"):
        annbatch.DatasetCollection(str(tmp_path / "x.zarr")).add_adatas(
            [data["sparse"]], zarr_compressor=numcodecs.Blosc(cname="lz4", shuffle=2), seed=1)
    with pytest.raises(ValueError, match="zstd or gzip"):
        annbatch.DatasetCollection(str(tmp_path / "x.zarr")).add_adatas(
            [data["sparse"]], zarr_compressor=numcodecs.LZMA(), seed=1)


# ------------------------------------------------------------ the options take effect


def test_options_map(data, tmp_path):
    coll = annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas(
        [data["sparse"], data["dense"]], groupby="cell_type", obs_columns=["cell_type"], dataset_size=300,
        shuffle_chunk_size=100, zarr_compressor="zstd", seed=3)
    # dataset_size in rows: ceil(2000 / 300) datasets of near-equal rows
    assert len(coll) == 7 and coll.summary["datasets_written"] == 7 and coll.summary["rows"] == 2 * N_OBS
    assert coll.dataset_paths == [str(tmp_path / "c.zarr" / f"dataset_{i}") for i in range(7)]
    assert list(coll) == coll.dataset_paths
    obs = coll.obs()
    assert list(obs.columns) == ["cell_type", "src_path"]  # depth not kept
    assert list(obs["src_path"].cat.categories) == [data["sparse"], data["dense"]]
    sizes = []
    for k, p in zip(coll._dataset_keys, coll):
        o = _frame(*_engine.read_obs(coll.path, [k], ["cell_type"])[0])
        codes = o["cell_type"].cat.codes.to_numpy()
        assert np.all(np.diff(codes) >= 0), "rows not grouped by cell_type"
        sizes.append(len(o))
        meta = json.loads(open(os.path.join(p, "X", "data", "zarr.json")).read())
        assert meta["codecs"][0]["configuration"]["codecs"][-1]["name"] == "zstd"
    assert sizes == [286] * 5 + [285] * 2
    # the rows of both inputs, each once
    want = sorted(data["ad_sparse"].obs_names) + sorted(data["ad_dense"].obs_names)
    assert sorted(obs.index) == sorted(want)


def test_add_to_existing_collection(data, tmp_path):
    cli, py = tmp_path / "cli.zarr", tmp_path / "py.zarr"
    convert(cli, [data["sparse"]], "--seed", 1, "--dataset-size", 500, "--shuffle-chunk-size", 100)
    convert(cli, [data["dense"]], "--seed", 2, "--dataset-size", 300, "--shuffle-chunk-size", 100)
    coll = annbatch.DatasetCollection(str(py)).add_adatas([data["sparse"]], seed=1, dataset_size=500,
                                                          shuffle_chunk_size=100)
    assert len(coll) == 2 and coll.summary["first_dataset"] == 0
    coll.add_adatas([data["dense"]], seed=2, dataset_size=300, shuffle_chunk_size=100)
    assert len(coll) == 6 and coll.summary["first_dataset"] == 2 and coll.summary["datasets_written"] == 4
    assert_same_tree(cli, py)
    # a collection made by the CLI grows from Python too
    annbatch.DatasetCollection(str(cli)).add_adatas([data["sparse"]], seed=3, dataset_size=1000, on_note=quiet)
    assert len(annbatch.DatasetCollection(str(cli))) == 7
    assert len(annbatch.DatasetCollection(str(cli)).obs()) == 3 * N_OBS


def test_in_memory_and_group_inputs(data, tmp_path, monkeypatch):
    import tempfile

    import zarr

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ad = make_adata(7, n_obs=300)
    coll = annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas(
        [ad, zarr.open_group(data["sparse"], mode="r")], seed=1, on_note=quiet)
    assert os.listdir(scratch) == [], "the temporary store of the in-memory AnnData is left behind"
    obs = coll.obs()
    assert len(obs) == 300 + N_OBS
    assert set(obs.index) == set(ad.obs_names) | set(data["ad_sparse"].obs_names)
    src = list(obs["src_path"].cat.categories)
    assert src[1] == data["sparse"] and src[0].endswith("adata_0.zarr")
    mem = obs.loc[ad.obs_names]
    pd.testing.assert_series_equal(mem["depth"], ad.obs["depth"], check_names=False)
    assert list(mem["cell_type"].astype(str)) == list(ad.obs["cell_type"].astype(str))
    # X of the in-memory rows, through the loader
    ld = annbatch.Loader(to_torch=False, chunk_size=50, preload_nchunks=2, batch_size=100, return_index=True)
    ld.use_collection(coll)
    names = obs.index.to_numpy()
    dense = ad.X.toarray()
    pos = {n: i for i, n in enumerate(ad.obs_names)}
    seen = 0
    for b in ld:
        x = b["X"].toarray()
        for r, gi in enumerate(b["index"]):
            if names[gi] in pos:
                np.testing.assert_array_equal(x[r], dense[pos[names[gi]]])
                seen += 1
    assert seen == 300


def test_loader_use_collection_takes_a_dataset_collection(data):
    coll = annbatch.DatasetCollection(data["coll"])
    kw = dict(to_torch=False, chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=3,
              return_index=True)
    a = [b["index"].tolist() for b in annbatch.Loader(**kw).use_collection(coll)]
    b = [b["index"].tolist() for b in annbatch.Loader(**kw).use_collection(data["coll"])]
    assert a == b and sum(map(len, a)) == N_OBS
    assert os.fspath(coll) == data["coll"]
    assert repr(coll) == f"DatasetCollection({data['coll']!r}, 1 dataset)"


def test_empty_and_missing(tmp_path, data):
    with pytest.warns(UserWarning, match="`.zarr` suffix"):
        annbatch.DatasetCollection(str(tmp_path / "noext"))
    c = annbatch.DatasetCollection(str(tmp_path / "none.zarr"))
    assert c.is_empty and len(c) == 0 and list(c) == []
    assert c.obs().empty
    assert annbatch.DatasetCollection(data["sparse"]).is_empty  # an AnnData, not a collection
    assert not annbatch.DatasetCollection(data["coll"]).is_empty


# ------------------------------------------------------------ notes, progress, errors


def test_notes_are_warnings_or_go_to_on_note(data, tmp_path):
    # the same input twice: its obs names are made unique, with a note
    with pytest.warns(UserWarning, match="duplicate obs names made unique") as rec:
        annbatch.DatasetCollection(str(tmp_path / "a.zarr")).add_adatas([data["sparse"]] * 2, seed=1)
    assert rec[0].filename == __file__, "the warning does not point at the caller of add_adatas"
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        annbatch.DatasetCollection(str(tmp_path / "b.zarr")).add_adatas([data["sparse"]] * 2, seed=1,
                                                                        on_note=notes.append)
    assert len(notes) == 1 and f"{N_OBS} duplicate obs names" in notes[0]
    assert_same_tree(tmp_path / "a.zarr", tmp_path / "b.zarr")


def test_a_raising_callback_stops_the_run(wide, tmp_path):
    calls = []

    def progress(p):
        calls.append(p)
        raise RuntimeError("stop here")

    out = tmp_path / "c.zarr"
    with pytest.raises(RuntimeError, match="stop here"):
        annbatch.DatasetCollection(str(out)).add_adatas([wide] * 2, seed=1, progress=progress, on_note=quiet)
    assert len(calls) == 1 and not calls[0]["final"] and calls[0]["total_rows"] == 40000
    assert not out.exists() and leftovers(tmp_path) == []

    def bad_note(message):
        raise LookupError(message)

    with pytest.raises(LookupError, match="duplicate obs names"):
        annbatch.DatasetCollection(str(out)).add_adatas([wide] * 2, seed=1, on_note=bad_note)
    assert not out.exists() and leftovers(tmp_path) == []
    # an existing collection is left as it was
    convert(out, [wide], "--seed", 1)
    before = tree(out)
    calls.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        annbatch.DatasetCollection(str(out)).add_adatas([wide] * 2, seed=1, progress=progress, on_note=quiet)
    assert len(calls) == 1 and not calls[0]["final"]
    assert tree(out) == before and leftovers(tmp_path) == []


def test_progress_reports(data, tmp_path):
    seen = []
    annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas([data["sparse"]], seed=1, dataset_size=400,
                                                                    shuffle_chunk_size=100,
                                                                    progress=seen.append)
    last = seen[-1]
    assert last["final"] and last["rows_done"] == last["total_rows"] == N_OBS
    assert last["datasets_done"] == last["n_datasets"] == 3 and last["bytes_read"] > 0
    assert [p["final"] for p in seen].count(True) == 1


def test_errors_carry_the_c_message(data, tmp_path):
    out = str(tmp_path / "c.zarr")
    with pytest.raises(annbatch.NotFound) as e:
        annbatch.DatasetCollection(out).add_adatas([data["sparse"], str(tmp_path / "nope.zarr")], seed=1)
    assert "nope.zarr" in str(e.value) and isinstance(e.value, FileNotFoundError) and e.value.code == -2
    with pytest.raises(annbatch.InvalidArgument) as e:
        annbatch.DatasetCollection(out).add_adatas([data["sparse"]], var_subset=["g1", "no_such_gene"], seed=1)
    assert "no_such_gene" in str(e.value) and "in no input" in str(e.value)
    with pytest.raises(annbatch.InvalidArgument) as e:
        annbatch.DatasetCollection(out).add_adatas([data["sparse"]], groupby="nothing", seed=1)
    assert "nothing" in str(e.value)
    with pytest.raises(annbatch.InvalidArgument) as e:
        annbatch.DatasetCollection(data["sparse"]).add_adatas([data["dense"]], seed=1)
    assert "not an annbatch collection" in str(e.value)
    assert not os.path.exists(out) and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kw,exc,msg",
    [
        (dict(groupby=[]), ValueError, "`groupby` must contain at least one `obs` column."),
        (dict(groupby=["cell_type", "cell_type"]), ValueError, "`groupby` columns must be unique."),
        (dict(dataset_size=500), ValueError,
         "Cannot have a larger slice size than observations per dataset. Reduce `shuffle_chunk_size` or increase "
         "`dataset_size`."),
        (dict(shard_size=0), ValueError, "at least 1"),
        (dict(dataset_size="big"), ValueError, "not a size like 20GB"),
        (dict(n_obs_per_chunk=0), ValueError, "n_obs_per_chunk must be at least 1, got 0"),
        (dict(zarr_compressor="lzma"), ValueError, "zarr_compressor must be one of"),
        (dict(merge="unique"), ValueError, "merge must be 'same'"),
        (dict(rng=np.random.default_rng(1), seed=1), ValueError, "not both"),
        (dict(load_adata=lambda p: p), NotImplementedError, "load_adata"),
        (dict(var_subset=["g1", "g2 "]), ValueError, "without spaces"),
        (dict(n_obs_per_chunk="64"), TypeError, "n_obs_per_chunk must be an int, got str"),
        (dict(dataset_size=1.5), TypeError, "dataset_size must be an int, got float"),
        (dict(shuffle="yes"), TypeError, "shuffle must be a bool"),
        (dict(groupby=[1]), TypeError, "groupby must hold column names"),
        (dict(obs_columns=3), TypeError, "obs_columns must be a column name or a list"),
        (dict(var_subset="g1"), TypeError, "not a str"),
        (dict(seed="1"), TypeError, "seed must be an int"),
        (dict(shard_size=object()), TypeError, "shard_size must be"),
        (dict(progress=3), TypeError, "progress must be a callable"),
        (dict(memory=[1]), TypeError, "memory must be"),
    ],
)
def test_validation_messages(data, tmp_path, kw, exc, msg):
    with pytest.raises(exc) as e:
        annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas([data["sparse"]], **kw)
    assert msg in str(e.value)
    assert not (tmp_path / "c.zarr").exists()


def test_wrong_types_are_type_errors(data, tmp_path):
    c = annbatch.DatasetCollection(str(tmp_path / "c.zarr"))
    with pytest.raises(TypeError):
        c.add_adatas(data["sparse"])  # a path, not a list of them
    with pytest.raises(TypeError):
        c.add_adatas([3.5])
    with pytest.raises(ValueError):
        c.add_adatas([])
    with pytest.raises(TypeError):
        annbatch.DatasetCollection(12)
    with pytest.raises(TypeError):
        c.obs(columns=3)
    with pytest.raises(ValueError):
        annbatch.DatasetCollection(data["coll"], mode="r").add_adatas([data["sparse"]])
    with pytest.raises(NotImplementedError):
        annbatch.DatasetCollection(str(tmp_path / "h"), is_collection_h5ad=True)
    # the extension's own checks
    with pytest.raises(TypeError):
        _engine.collection_write(str(tmp_path / "c.zarr"), [data["sparse"]], {"seed": "1"}, None, None)
    with pytest.raises(TypeError):
        _engine.collection_write(str(tmp_path / "c.zarr"), [data["sparse"], 1], {}, None, None)
    with pytest.raises(TypeError):
        _engine.collection_write(str(tmp_path / "c.zarr"), [data["sparse"]], {"groupby": "cell_type"}, None, None)
    with pytest.raises(TypeError):
        _engine.collection_write(str(tmp_path / "c.zarr"), [data["sparse"]], {}, 5, None)
    with pytest.raises(ValueError, match="compressor"):
        _engine.collection_write(str(tmp_path / "c.zarr"), [data["sparse"]], {"compressor": "lzma"}, None, None)
    with pytest.raises(TypeError):
        _engine.read_obs(data["coll"], "dataset_0", None)
    with pytest.raises(TypeError):
        _engine.collection_datasets(3)
    assert not (tmp_path / "c.zarr").exists()


# ------------------------------------------------------------ signals and threads


def test_ctrl_c_stops_a_write(wide, tmp_path):
    """SIGINT while the writer works: KeyboardInterrupt within half a second,
    nothing at the output path and no temporary directory left. No Python
    progress callable runs meanwhile: the binding itself looks at signals."""
    out = tmp_path / "out.zarr"
    script = tmp_path / "write.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        import annbatch_c as annbatch
        coll = annbatch.DatasetCollection({str(out)!r})
        print("writing", flush=True)
        t0 = time.monotonic()
        try:
            coll.add_adatas([{wide!r}] * 30, seed=1, dataset_size=50000, on_note=lambda m: None)
            print("finished after", time.monotonic() - t0, flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
            sys.exit(3)
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ)
    assert p.stdout.readline().startswith("writing")
    time.sleep(1.0)  # the inputs are open, the first dataset is being made
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 3, rest
    t_int = float(rest.split()[1])
    assert t_int - t0 < 0.5, f"KeyboardInterrupt after {t_int - t0:.3f} s"
    assert not out.exists()
    assert os.listdir(tmp_path) == ["write.py"], os.listdir(tmp_path)


def test_gil_released_while_writing(wide, tmp_path):
    """A Python thread counts while the main thread writes a collection at
    (nearly) the rate it counts alone. With the GIL held by the write it
    would stand still."""
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    th = threading.Thread(target=count)
    th.start()
    try:
        c0, t0 = counter[0], time.monotonic()
        time.sleep(0.5)
        alone = (counter[0] - c0) / (time.monotonic() - t0)
        c0, t0 = counter[0], time.monotonic()
        annbatch.DatasetCollection(str(tmp_path / "c.zarr")).add_adatas([wide] * 6, seed=1, dataset_size=60000,
                                                                       on_note=quiet)
        took = time.monotonic() - t0
        during = (counter[0] - c0) / took
    finally:
        stop.set()
        th.join()
    assert took > 0.3
    assert during > 0.2 * alone, f"the counter ran at {during:.0f}/s during the write, {alone:.0f}/s alone"


# ------------------------------------------------------------ obs against anndata


def v3_array(d, meta):
    """The zarr v3 array in directory d, decoded by the spec with numcodecs
    (regular grid, '/' chunk keys, sharding_indexed with its index at the end,
    bytes / vlen-utf8 / blosc / zstd / gzip / crc32c)."""
    import numcodecs

    def decode(buf, codecs, shape, dtype):
        for c in reversed(codecs):
            name, conf = c["name"], c.get("configuration", {})
            if name == "blosc":
                buf = numcodecs.Blosc().decode(buf)
            elif name == "zstd":
                buf = numcodecs.Zstd().decode(buf)
            elif name == "gzip":
                buf = numcodecs.GZip().decode(buf)
            elif name == "crc32c":
                buf = bytes(buf)[:-4]
            elif name == "bytes":
                end = "<" if conf.get("endian", "little") == "little" else ">"
                return np.frombuffer(bytes(buf), dtype=np.dtype(dtype).newbyteorder(end)).reshape(shape)
            elif name == "vlen-utf8":
                return np.array(numcodecs.VLenUTF8().decode(bytes(buf)), dtype=object).reshape(shape)
            else:
                raise AssertionError(f"codec {name} not handled")
        raise AssertionError("no array-to-bytes codec")

    dtype = object if meta["data_type"] == "string" else np.dtype(meta["data_type"])
    shape = tuple(meta["shape"])
    grid = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    codecs = meta["codecs"]
    out = np.full(shape, meta["fill_value"], dtype=dtype)
    sharded = codecs[0]["name"] == "sharding_indexed"
    inner = tuple(codecs[0]["configuration"]["chunk_shape"]) if sharded else grid
    for idx in np.ndindex(*[-(-s // g) for s, g in zip(shape, grid)]):
        f = os.path.join(d, "c", *map(str, idx))
        if not os.path.exists(f):
            continue
        raw = open(f, "rb").read()
        origin = [i * g for i, g in zip(idx, grid)]
        if not sharded:
            parts = [(tuple([0] * len(shape)), decode(raw, codecs, grid, dtype))]
        else:
            sc = codecs[0]["configuration"]
            per = [g // c for g, c in zip(grid, inner)]
            n = int(np.prod(per))
            index = np.frombuffer(raw[-(16 * n + 4):-4], dtype="<u8").reshape(n, 2)
            parts = []
            for k, sub in enumerate(np.ndindex(*per)):
                off, nb = index[k]
                if off == 2**64 - 1:
                    continue
                parts.append((tuple(s * c for s, c in zip(sub, inner)),
                              decode(raw[off:off + nb], sc["codecs"], inner, dtype)))
        for at, block in parts:
            sl = tuple(slice(o + a, min(o + a + c, s)) for o, a, c, s in zip(origin, at, inner, shape))
            if any(s.start >= s.stop for s in sl):
                continue
            out[sl] = block[tuple(slice(0, s.stop - s.start) for s in sl)]
    return out


def v3_to_v2(src, dst):
    """A zarr 2 copy of the zarr v3 hierarchy at src (what zarr 2.13 and
    anndata 0.8 read): the same nodes, attributes and values."""
    import numcodecs
    import zarr

    root = zarr.open_group(dst, mode="w")
    for d, dirs, files in os.walk(src):
        dirs[:] = sorted(x for x in dirs if x != "c")
        if "zarr.json" not in files:
            continue
        rel = os.path.relpath(d, src)
        meta = json.loads(open(os.path.join(d, "zarr.json")).read())
        if meta["node_type"] == "group":
            g = root if rel == "." else root.require_group(rel)
            g.attrs.update(meta.get("attributes", {}))
        else:
            a = v3_array(d, meta)
            kw = {"object_codec": numcodecs.VLenUTF8()} if a.dtype == object else {}
            root.create_dataset(rel, data=a, **kw).attrs.update(meta.get("attributes", {}))


def anndata_obs(coll_path, tmp_path):
    import anndata

    frames = []
    for name in sorted((n for n in os.listdir(coll_path) if n.startswith("dataset_")),
                       key=lambda n: int(n.split("_")[1])):
        v2 = tmp_path / f"v2_{name}.zarr"
        v3_to_v2(os.path.join(coll_path, name), str(v2))
        frames.append(anndata.read_zarr(str(v2)).obs)
    return pd.concat(frames)


def rich_adata(seed, n):
    """Obs of many kinds: categoricals of strings and of ints, strings,
    bools, ints, floats."""
    ad = make_adata(seed, n_obs=n)
    rng = np.random.default_rng(seed)
    ad.obs["batch"] = pd.Categorical(rng.choice([10, 20, 30], size=n), categories=[10, 20, 30])
    ad.obs["name"] = [f"n{seed}_{i}" for i in range(n)]  # unique: anndata keeps it a string column
    ad.obs["flag"] = rng.integers(0, 2, size=n).astype(bool)
    ad.obs["count"] = rng.integers(-5, 1000, size=n).astype(np.int32)
    return ad


def test_obs_equals_anndata(tmp_path):
    paths = []
    for s, n in ((21, 700), (22, 450)):
        p = str(tmp_path / f"in{s}.zarr")
        rich_adata(s, n).write_zarr(p)
        paths.append(p)
    out = str(tmp_path / "c.zarr")
    coll = annbatch.DatasetCollection(out).add_adatas(paths, seed=5, dataset_size=400, shuffle_chunk_size=50)
    assert len(coll) == 3
    want = anndata_obs(out, tmp_path)
    got = coll.obs()
    assert list(got.columns) == ["cell_type", "depth", "batch", "name", "flag", "count", "src_path"]
    assert got["name"].dtype == object and got["flag"].dtype == bool and got["count"].dtype == np.int32
    # the writer keeps categories as strings (anndata reads them so too)
    assert list(got["batch"].cat.categories) == ["10", "20", "30"]
    pd.testing.assert_frame_equal(got, want)
    # annbatch's columns=: those asked for, in that order, unknown ones left out
    sub = coll.obs(columns=["count", "nope", "cell_type"])
    pd.testing.assert_frame_equal(sub, want[["count", "cell_type"]])
    assert coll.obs(columns=[]).empty


def test_obs_of_nullable_columns_equals_anndata(tmp_path):
    """A collection laid out in zarr v2 by anndata itself (write_elem under a
    group marked annbatch-preshuffled): nullable integer and boolean columns
    and numeric categories, read as anndata reads them."""
    import anndata
    import zarr
    from anndata.experimental import write_elem

    out = str(tmp_path / "v2coll.zarr")
    g = zarr.open_group(out, mode="w")
    g.attrs.update({"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})
    ads = []
    for i in range(2):
        ad = make_adata(30 + i, n_obs=120)
        vals = pd.array(np.arange(120) % 7, dtype="Int64")
        vals[::5] = pd.NA
        ad.obs["maybe"] = vals
        b = pd.array(np.arange(120) % 3 == 0, dtype="boolean")
        b[1::4] = pd.NA
        ad.obs["yes"] = b
        ad.obs["batch"] = pd.Categorical(np.arange(120) % 3 * 10 + 10, categories=[10, 20, 30])
        write_elem(g, f"dataset_{i}", ad)
        ads.append(ad)
    zarr.consolidate_metadata(out)
    coll = annbatch.DatasetCollection(out)
    assert len(coll) == 2
    want = pd.concat([anndata.read_zarr(os.path.join(out, f"dataset_{i}")).obs for i in range(2)])
    got = coll.obs()
    assert str(got["maybe"].dtype) == "Int64" and str(got["yes"].dtype) == "boolean"
    assert got["batch"].cat.categories.dtype == np.int64
    pd.testing.assert_frame_equal(got, want)
