"""Memory, threads, signals and processes: what a Python user relies on."""

import gc
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import annbatch_c as annbatch
from annbatch_c import _engine

from conftest import N_OBS


def sparse_loader(data, **kw):
    args = dict(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=3, return_index=True,
                to_torch=False)
    args.update(kw)
    return annbatch.Loader(**args).add_adata(data["coll"])


# ------------------------------------------------------------ zero copy


def test_batches_share_engine_memory(data):
    eng = _engine.Engine({"chunk_size": 16, "preload_nchunks": 4, "batch_size": 32})
    eng.add_anndata(data["coll"])
    eng.start(0)
    b = eng.next()
    v1 = np.asarray(b.array("values"))
    v2 = np.asarray(b.array("values"))
    assert np.shares_memory(v1, v2), "two views of one batch are not the same memory"
    v1[0] = 12345.0
    assert v2[0] == 12345.0
    eng.stop()


def test_x_is_a_view_scipy_and_torch(data):
    import torch

    ld = sparse_loader(data)
    b = next(iter(ld))
    X = b["X"]
    # scipy keeps the buffer: the values' base chain reaches the engine's Buffer
    base = X.data
    while getattr(base, "base", None) is not None:
        base = base.base
    assert type(base).__name__ in ("Buffer", "memoryview"), type(base)
    ldt = sparse_loader(data, to_torch=True)
    bt = next(iter(ldt))
    t = bt["X"]
    assert t.layout == torch.sparse_csr
    vals = t.values()
    # torch.from_numpy shares: writing through the tensor shows in a numpy view
    arr = vals.numpy()
    arr[0] = -1.0
    assert t.values()[0].item() == -1.0
    # dense batches: the tensor's data pointer is the batch's memory
    ldd = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, to_torch=True).add_adata(data["dense"])
    td = next(iter(ldd))["X"]
    assert td.shape == (32, 60)
    assert np.shares_memory(td.numpy(), td.numpy())


def test_copy_true_owns_its_memory(data):
    ld = sparse_loader(data, copy=True)
    held = [b["X"] for b in ld]  # keeping every batch is fine with copies
    assert sum(x.shape[0] for x in held) == N_OBS
    base = held[0].data
    assert base.base is None or isinstance(base.base, np.ndarray)


def test_views_outlive_the_loader(data):
    ad = data["ad_sparse"]
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                         to_torch=False).add_adata(data["sparse"])
    it = iter(ld)
    b = next(it)
    X, idx = b["X"], b["index"]
    del it, b, ld
    gc.collect()
    # the loader object is gone; the batch memory is still the engine's and valid
    assert np.array_equal(X.toarray(), ad.X[idx].toarray())


def test_stall_is_an_error_not_a_hang(data):
    ld = sparse_loader(data, max_windows=2, stall_ms=300)
    t0 = time.monotonic()
    with pytest.raises(annbatch.Stalled) as e:
        list(ld)  # keeps every batch: holds every window
    assert time.monotonic() - t0 < 20
    msg = str(e.value)
    assert "max_windows" in msg and "copy=True" in msg
    assert isinstance(e.value, RuntimeError)


# ------------------------------------------------------------ threads


def test_gil_released_while_waiting(data):
    """A Python thread counts while the main thread is blocked in the engine
    (a stall of 1.5 s: holding every window, it waits for a release that does
    not come). With the GIL held during the wait the counter would stand still."""
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    ld = sparse_loader(data, max_windows=2, stall_ms=1500)
    eng = ld._get_engine()
    eng.start(0)
    held = []
    th = threading.Thread(target=count)
    th.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(annbatch.Stalled):
            while True:
                held.append(eng.next())
        waited = time.monotonic() - t0
        during = counter[0]
    finally:
        stop.set()
        th.join()
        eng.stop()
    assert waited >= 1.4
    assert during > 100000, f"the counter advanced {during} times in {waited:.1f} s of engine wait"


def test_four_consumer_threads_share_an_epoch(data):
    # each thread keeps its previous batch while it waits for the next (the
    # for loop's variable): max_windows must exceed the thread count
    ld = sparse_loader(data, max_windows=5)
    ep = ld.epoch(0)
    got = [[] for _ in range(4)]

    errors = []

    def consume(k):
        try:
            for b in ep:
                got[k].append(b["index"].copy())
                time.sleep(0.002)  # a training step: the other threads take batches meanwhile
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ths = [threading.Thread(target=consume, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors, errors
    rows = np.concatenate([np.concatenate(g) for g in got if g])
    assert len(rows) == N_OBS and len(np.unique(rows)) == N_OBS, "not a disjoint, complete epoch"
    assert sum(len(g) for g in got) == len(ld)
    assert sum(1 for g in got if g) >= 2, "one thread took every batch"


def test_many_epochs_no_growth(data):
    """200 epochs: resident memory settles (bound: 32 MiB over the first
    20 epochs) and no Python objects pile up."""
    import resource

    ld = sparse_loader(data, batch_size=64, preload_nchunks=8)

    def rss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    for _ in range(20):
        for b in ld:
            pass
    gc.collect()
    rss0, objs0 = rss_kib(), len(gc.get_objects())
    for _ in range(180):
        for b in ld:
            b["X"].sum()
    del b
    gc.collect()
    rss1, objs1 = rss_kib(), len(gc.get_objects())
    assert rss1 - rss0 < 32 * 1024, f"RSS grew by {rss1 - rss0} KiB over 180 epochs"
    assert objs1 - objs0 < 500, f"{objs1 - objs0} more Python objects after 180 epochs"
    assert ld.state_dict()["epoch"] == 200


# ------------------------------------------------------------ signals


def test_ctrl_c_stops_a_waiting_iteration(data, tmp_path):
    """SIGINT while the loop waits in the engine: KeyboardInterrupt within
    half a second, and the process exits cleanly."""
    script = tmp_path / "wait.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        import annbatch_c as annbatch
        ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, to_torch=False,
                             max_windows=1, stall_ms=600000).add_adata({data['coll']!r})
        eng = ld._get_engine()
        eng.start(0)
        held = []
        try:
            while True:
                b = eng.next()       # blocks once every window is held
                held.append(b)
                print("got", flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
            eng.stop()
            sys.exit(3)
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ)
    line = p.stdout.readline()
    assert line.startswith("got")
    time.sleep(1.0)  # now it waits: every batch of the one window is held
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 3, out
    t_int = float([l for l in out.splitlines() if l.startswith("interrupted")][0].split()[1])
    assert t_int - t0 < 0.5, f"KeyboardInterrupt after {t_int - t0:.3f} s"


# ------------------------------------------------------------ processes


def test_pickle_round_trip(data):
    ld = sparse_loader(data)
    first = [b["index"].tolist() for b in ld]
    ld2 = pickle.loads(pickle.dumps(ld))
    ld2.set_epoch(0)
    assert [b["index"].tolist() for b in ld2] == first
    # in-memory data travels with the recipe
    ad = data["ad_dense"]
    m = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                        to_torch=False).add_adata(ad)
    m2 = pickle.loads(pickle.dumps(m))
    b = next(iter(m2))
    assert np.array_equal(b["X"], np.asarray(ad.X)[b["index"]])


def test_fork_child_gets_its_own_engine(data):
    ld = sparse_loader(data)
    want = [b["index"].tolist() for b in ld]
    ld.set_epoch(0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's engine is unusable; a new one is made
        try:
            got = [b["index"].tolist() for b in ld]
            os.write(w, b"ok" if got == want else b"bad")
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, repr(e).encode()[:200])
        finally:
            os._exit(0)
    os.close(w)
    msg = os.read(r, 256)
    os.waitpid(pid, 0)
    assert msg == b"ok", msg
    # the parent's engine still works after the child used (and dropped) its own
    ld.set_epoch(0)
    assert [b["index"].tolist() for b in ld] == want


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("which,to_torch", [("coll", False), ("dense", True)])
def test_dataloader_workers_cover_the_epoch_once(data, method, which, to_torch):
    """Two DataLoader workers, each with its own engine on its own share of
    the chunks: together every row of the epoch, once."""
    import torch.utils.data as tud

    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=5,
                         return_index=True, to_torch=to_torch).add_adata(data[which])
    dl = tud.DataLoader(ld, batch_size=None, num_workers=2, multiprocessing_context=method, timeout=120)
    rows = []
    for b in dl:
        rows.append(np.asarray(b["index"]))
        assert b["X"].shape[0] == len(b["index"])
        assert isinstance(b["X"], torch_tensor_type()) == to_torch
    rows = np.concatenate(rows)
    assert len(rows) == N_OBS and len(np.unique(rows)) == N_OBS


def torch_tensor_type():
    import torch

    return torch.Tensor


def test_dataloader_workers_sparse_torch_is_a_clear_error(data):
    """torch 1.13 cannot pickle sparse CSR tensors: a worker says what to do
    instead of the DataLoader waiting forever."""
    import torch.utils.data as tud

    from annbatch_c.loader import _csr_tensors_pickle

    if _csr_tensors_pickle():
        pytest.skip("this torch sends sparse CSR tensors between processes")
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=5,
                         to_torch=True).add_adata(data["coll"])
    dl = tud.DataLoader(ld, batch_size=None, num_workers=2, multiprocessing_context="fork", timeout=120)
    with pytest.raises(TypeError, match="num_workers=0"):
        for _ in dl:
            pass


def test_errors_carry_the_c_message(data, tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        annbatch.Loader(to_torch=False).add_adata(str(tmp_path / "nope.zarr"))
    assert "nope.zarr" in str(e.value)
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(annbatch.FormatError) as e:
        len(annbatch.Loader(to_torch=False).add_adata(str(empty)))
    assert "empty.zarr" in str(e.value) and "not a zarr store" in str(e.value)
    with pytest.raises(annbatch.NotFound) as e:
        len(annbatch.Loader(to_torch=False).add_dataset(data["sparse"] + ":X/nothing"))
    assert "nothing" in str(e.value)
    bad = tmp_path / "bad.zarr"
    bad.mkdir()
    (bad / "zarr.json").write_text("{not json")
    ld = annbatch.Loader(to_torch=False).add_adata(str(bad))
    with pytest.raises(annbatch.FormatError) as e:
        len(ld)
    assert "zarr.json" in str(e.value)
    assert isinstance(e.value, ValueError) and e.value.code == -4
    with pytest.raises(TypeError):
        annbatch.Loader(to_torch=False).add_adata(3.5)
    with pytest.raises(TypeError):
        _engine.Engine({"chunk_size": "big"})
    with pytest.raises(ValueError):
        _engine.Engine({"io_mode": "sideways"})
