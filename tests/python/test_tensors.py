"""torch and jax batches: X made from the engine's batch memory without a
copy (the int32 indptr torch wants beside int32 column indices; DLPack for
jax) and equal to the scipy route.

jax is not installed on the test machine: a stand-in package named jax, whose
``jax.dlpack.from_dlpack`` consumes each export with ``np.from_dlpack`` and
``torch.utils.dlpack.from_dlpack`` (both DLPack consumers, as jax's is), shows
what the to_jax route hands to jax and that the exports share and keep the
engine's memory."""

import gc
import sys
import textwrap
from importlib.util import find_spec

import numpy as np
import pytest
import scipy.sparse as sp

import annbatch_c as annbatch
from annbatch_c import _jax

ARRAYS = ("values", "indices", "indptr")


def record_engine_memory(ld):
    """Wraps ld's batch conversion to note, for each batch, where the engine
    keeps its arrays: {name: (address, bytes, dtype)}, read through the
    extension's own views of the batch (not through the conversion), so a
    copy made by the conversion shows as another address."""
    seen = []
    convert = ld._convert

    def noting(batch):
        mem = {}
        for name in ARRAYS:
            try:
                a = np.asarray(batch.array(name))
            except KeyError:  # dense batches have values only
                continue
            mem[name] = (a.ctypes.data, a.nbytes, a.dtype)
        seen.append(mem)
        return convert(batch)

    ld._convert = noting
    return seen


def inside(ptr, mem):
    start, nbytes, _ = mem
    return start <= ptr < start + max(nbytes, 1)


def loader_args(shuffle):
    kw = dict(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True)
    if shuffle:
        kw.update(shuffle=True, seed=5)
    return kw


# ------------------------------------------------------------ torch


@pytest.mark.parametrize("shuffle", [False, True], ids=["sequential", "shuffled"])
def test_torch_csr_is_the_engine_batch(data, shuffle):
    import torch

    kw = loader_args(shuffle)
    ref = [(b["X"].toarray(), b["index"])
           for b in annbatch.Loader(to_torch=False, copy=True, **kw).add_adata(data["coll"])]
    ld = annbatch.Loader(to_torch=True, **kw).add_adata(data["coll"])
    seen = record_engine_memory(ld)
    n = 0
    for k, b in enumerate(ld):
        t, mem = b["X"], seen[k]
        assert t.layout == torch.sparse_csr
        crow, col, vals = t.crow_indices(), t.col_indices(), t.values()
        assert crow.dtype == col.dtype == torch.int32
        assert mem["indptr"][2] == np.int32, "the engine's batch carries an int32 indptr"
        # no copy: torch's arrays are the engine's batch memory
        assert crow.data_ptr() == mem["indptr"][0] and inside(crow.data_ptr(), mem["indptr"])
        assert col.data_ptr() == mem["indices"][0]
        assert vals.data_ptr() == mem["values"][0]
        assert crow.numel() * 4 == mem["indptr"][1]
        # the same batches as the scipy route
        assert np.array_equal(b["index"], ref[k][1])
        assert np.array_equal(t.to_dense().numpy(), ref[k][0])
        n += 1
    assert n == len(ref) > 1


def test_torch_unsorted_indices_still_checked_by_torch():
    """Batches whose rows hold columns out of order (a scipy CSR without
    sorted indices) are not made unchecked: torch refuses them, as it did
    before the engine told it sorted batches apart."""
    import anndata

    x = sp.csr_matrix((np.arange(1, 7, dtype=np.float32), np.array([2, 0, 1, 0, 1, 2], dtype=np.int32),
                       np.array([0, 3, 6], dtype=np.int64)), shape=(2, 4))
    assert not x.has_sorted_indices
    ld = annbatch.Loader(batch_size=1, chunk_size=1, preload_nchunks=1, to_torch=True).add_adata(
        anndata.AnnData(X=x))
    with pytest.raises(RuntimeError, match="sorted"):
        for b in ld:
            b["X"]
    sorted_x = x.copy()
    sorted_x.sort_indices()
    got = [b["X"].to_dense().numpy() for b in annbatch.Loader(
        batch_size=1, chunk_size=1, preload_nchunks=1, to_torch=True).add_adata(anndata.AnnData(X=sorted_x))]
    assert np.array_equal(np.vstack(got), sorted_x.toarray())


def test_torch_copy_true_holds_no_batch(data):
    ld = annbatch.Loader(to_torch=True, copy=True, **loader_args(True)).add_adata(data["coll"])
    seen = record_engine_memory(ld)
    b = next(iter(ld))
    t = b["X"]
    for got, name in ((t.crow_indices(), "indptr"), (t.col_indices(), "indices"), (t.values(), "values")):
        assert not inside(got.data_ptr(), seen[0][name]), f"copy=True: {name} is still the batch's memory"


def test_scipy_route_keeps_the_int64_indptr(data):
    """Without torch or jax the engine's default stands (int64 indptr);
    scipy shares the values and column indices."""
    ld = annbatch.Loader(to_torch=False, **loader_args(False)).add_adata(data["coll"])
    seen = record_engine_memory(ld)
    X = next(iter(ld))["X"]
    assert seen[0]["indptr"][2] == np.int64
    assert X.indices.ctypes.data == seen[0]["indices"][0]
    assert X.data.ctypes.data == seen[0]["values"][0]


# ------------------------------------------------------------ jax


def test_to_jax_without_jax_is_a_clear_error():
    if find_spec("jax") is not None:
        pytest.skip("jax is installed here")
    with pytest.raises(annbatch.MissingDependency) as e:
        annbatch.Loader(to_jax=True)
    assert isinstance(e.value, ImportError) and isinstance(e.value, ValueError)
    assert e.value.name == "jax"
    assert str(e.value) == ("to_jax=True needs jax, which is not installed here. Try `pip install jax`, "
                            "or leave to_jax=False.")
    with pytest.raises(ValueError, match="needs jax"):
        annbatch.Loader(to_jax=True, to_torch=False)


FAKE_JAX = {
    "jax/__init__.py": "",
    "jax/dlpack.py": """
        import numpy as np
        import torch.utils.dlpack

        consumed = []  # (numpy array, torch tensor) of each export, in order


        def from_dlpack(external_array):
            a = np.from_dlpack(external_array)
            t = torch.utils.dlpack.from_dlpack(external_array)
            consumed.append((a, t))
            return a
    """,
    "jax/experimental/__init__.py": "",
    "jax/experimental/sparse.py": """
        class BCSR:
            def __init__(self, args, *, shape):
                self.data, self.indices, self.indptr = args
                self.shape = shape
    """,
}


@pytest.fixture
def fake_jax(tmp_path, monkeypatch):
    for rel, text in FAKE_JAX.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_jax, "_modules", None)
    import jax.dlpack

    yield jax.dlpack.consumed
    for name in [m for m in sys.modules if m == "jax" or m.startswith("jax.")]:
        del sys.modules[name]


@pytest.mark.parametrize("which", ["sparse", "dense"])
def test_to_jax_dlpack_shares_and_keeps_the_batch(data, fake_jax, which):
    ad = data["ad_" + which]
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                         to_jax=True).add_adata(data[which])
    assert not ld._to_torch, "to_jax wins over to_torch's default"
    seen = record_engine_memory(ld)
    it = iter(ld)
    b = next(it)
    X, idx, mem = b["X"], b["index"], seen[0]
    names = ARRAYS if which == "sparse" else ("values",)
    assert len(fake_jax) == len(names)
    for name, (a, t) in zip(names, fake_jax):
        # both consumers of the DLPack export see the engine's batch memory
        assert a.ctypes.data == mem[name][0] and t.data_ptr() == mem[name][0], name
        assert a.dtype == mem[name][2] and a.nbytes == mem[name][1]
        assert np.shares_memory(a, t.numpy())
    if which == "sparse":
        assert X.indptr.dtype == X.indices.dtype == np.int32
        assert X.shape == (32, ad.n_vars)

        def dense_x():
            return sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape).toarray()

        want = ad.X[idx].toarray()
    else:
        def dense_x():
            return np.asarray(X)

        want = ad.X[idx]
    assert np.array_equal(dense_x(), want)
    eng = ld._get_engine()
    del it, b, ld, seen
    gc.collect()
    # the loader is gone; the exports still hold the batch, whose memory is
    # the engine's and unchanged
    with pytest.raises(RuntimeError, match="1 batches of this loader are still alive"):
        eng.close()
    assert np.array_equal(dense_x(), want)
    for a, t in fake_jax:
        assert np.array_equal(a, t.numpy())
    # the last export gone, the batch goes back and the engine can close
    del X, a, t
    fake_jax.clear()
    gc.collect()
    eng.close()
