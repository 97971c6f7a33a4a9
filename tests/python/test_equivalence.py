"""The Python route gives exactly the batches of `annbatch iterate` (the
same engine through the CLI), and the rows anndata reads."""

import numpy as np
import pytest

import annbatch_c as annbatch
from annbatch_c import samplers

from conftest import N_OBS, run_iterate


def loader_indices(loader, path=None):
    out = []
    for b in loader:
        out.append([str(i) for i in b["index"]])
    return out


CASES = [
    # (Loader keywords, iterate options)
    (dict(chunk_size=16, preload_nchunks=4, batch_size=32),
     ["--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32]),
    (dict(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=7),
     ["--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32, "--shuffle", "--seed", 7]),
    (dict(chunk_size=10, preload_nchunks=6, batch_size=20, shuffle=True, seed=1, drop_last=True),
     ["--chunk-size", 10, "--preload-nchunks", 6, "--batch-size", 20, "--shuffle", "--seed", 1, "--drop-last"]),
    (dict(batch_sampler=samplers.RandomSampler(8, 4, 16, mask=slice(100, 900), seed=5)),
     ["--chunk-size", 8, "--preload-nchunks", 4, "--batch-size", 16, "--shuffle", "--seed", 5, "--mask", "100:900"]),
    (dict(batch_sampler=samplers.RandomSampler(8, 4, 16, replacement=True, num_samples=500, seed=9)),
     ["--chunk-size", 8, "--preload-nchunks", 4, "--batch-size", 16, "--shuffle", "--seed", 9, "--replacement",
      "--num-samples", 500]),
    (dict(batch_sampler=samplers.SequentialSampler(32, 2, 64, num_samples=1500)),
     ["--chunk-size", 32, "--preload-nchunks", 2, "--batch-size", 64, "--num-samples", 1500]),
]


@pytest.mark.parametrize("kw,args", CASES)
@pytest.mark.parametrize("which", ["sparse", "dense", "coll"])
def test_same_batches_as_iterate(data, kw, args, which):
    ld = annbatch.Loader(return_index=True, to_torch=False, **kw).add_adata(data[which])
    for epoch in (0, 1):
        got = loader_indices(ld)
        want = run_iterate([data[which]], *args, "--epoch", epoch)
        assert got == want, f"epoch {epoch}"
        assert len(got) == len(ld)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("shards", ["fixed", "rotate"])
def test_ranks_as_iterate(data, world, shards):
    seen = []
    for rank in range(world):
        s = samplers.DistributedSampler(samplers.RandomSampler(16, 4, 32, seed=3), dist_info=lambda r=rank: (r, world))
        ld = annbatch.Loader(batch_sampler=s, return_index=True, to_torch=False, rank_shards=shards)
        ld.add_adata(data["coll"])
        got = loader_indices(ld)
        want = run_iterate([data["coll"]], "--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32,
                           "--shuffle", "--seed", 3, "--rank", rank, "--world-size", world, "--rank-shards", shards)
        assert got == want
        seen.append({int(i) for batch in got for i in batch})
    for a in range(world):
        for b in range(a + 1, world):
            assert not seen[a] & seen[b], "ranks share rows"


def test_colsum_and_values_match_anndata(data):
    """X of every batch equals anndata's rows (sparse, dense, collection)."""
    for which, ad in (("sparse", data["ad_sparse"]), ("dense", data["ad_dense"]), ("coll", data["ad_sparse"])):
        full = ad.X.toarray() if hasattr(ad.X, "toarray") else np.asarray(ad.X)
        names = list(ad.obs_names)
        ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=2,
                             return_index=True, to_torch=False, obs_columns=["cell_type", "depth", "_index"])
        ld.add_adata(data[which])
        seen = 0
        for b in ld:
            X = b["X"]
            X = X.toarray() if hasattr(X, "toarray") else X
            idx = b["index"]
            if which == "coll":
                # the collection is preshuffled: rows are matched by obs name
                order = [names.index(n) for n in b["obs"]["_index"]]
                assert np.array_equal(X, full[order])
                assert list(b["obs"]["cell_type"]) == list(ad.obs["cell_type"].iloc[order])
                assert np.array_equal(b["obs"]["depth"].to_numpy(), ad.obs["depth"].to_numpy()[order])
            else:
                assert np.array_equal(X, full[idx])
                assert list(b["obs"]["cell_type"]) == list(ad.obs["cell_type"].iloc[idx])
                assert np.array_equal(b["obs"]["depth"].to_numpy(), ad.obs["depth"].to_numpy()[idx])
            seen += len(idx)
        assert seen == N_OBS


def test_colsum_equals_iterate(data):
    """index+colsum: each value weighted by its column + 1, summed per row."""
    ld = annbatch.Loader(chunk_size=32, preload_nchunks=8, batch_size=64, shuffle=True, seed=11,
                         return_index=True, to_torch=False).add_adata(data["coll"])
    want = run_iterate([data["coll"]], "--chunk-size", 32, "--preload-nchunks", 8, "--batch-size", 64, "--shuffle",
                       "--seed", 11, "--emit", "index+colsum")
    got = []
    for b in ld:
        X = b["X"].tocsr()
        w = X.multiply(np.arange(1, X.shape[1] + 1, dtype=np.float64)[None, :]).sum(axis=1).A1
        got.append([f"{i}:{v:.17g}" for i, v in zip(b["index"], w)])
    assert [[t.split(":")[0] for t in line] for line in got] == [[t.split(":")[0] for t in line] for line in want]
    for g, w in zip(got, want):
        for a, c in zip(g, w):
            assert float(a.split(":")[1]) == pytest.approx(float(c.split(":")[1]), rel=1e-12)


def test_class_sampler_as_iterate(data):
    s = samplers.ClassSampler(16, 4, 32, classes="cell_type", num_samples=640, class_weights=[1, 2, 0, 1, 1],
                              seed=4)
    ld = annbatch.Loader(batch_sampler=s, return_index=True, to_torch=False, obs_columns=["cell_type"])
    ld.add_adata(data["grouped"])
    got, labels = [], []
    for b in ld:
        got.append([str(i) for i in b["index"]])
        labels.append(set(b["obs"]["cell_type"]))
    want = run_iterate([data["grouped"]], "--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32,
                       "--shuffle", "--seed", 4, "--num-samples", 640, "--class-column", "cell_type",
                       "--class-weights", "1,2,0,1,1")
    assert got == want
    assert all(len(s) == 1 for s in labels), "a batch mixes classes"
    assert not any("NK" in s for s in labels), "a zero-weight class was drawn"


def test_resume_mid_epoch(data):
    kw = dict(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=8, return_index=True,
              to_torch=False)
    full = loader_indices(annbatch.Loader(**kw).add_adata(data["coll"]))
    ld = annbatch.Loader(**kw).add_adata(data["coll"])
    it = iter(ld)
    first = [[str(i) for i in next(it)["index"]] for _ in range(7)]
    state = ld.state_dict()
    assert state == {"epoch": 0, "batches_done": 7}
    del it
    ld2 = annbatch.Loader(**kw).add_adata(data["coll"])
    ld2.load_state_dict(state)
    rest = loader_indices(ld2)
    assert first + rest == full
    want = run_iterate([data["coll"]], "--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32, "--shuffle",
                       "--seed", 8, "--start-batch", 7)
    assert rest == want
    # the next iteration is epoch 1, from its start
    assert ld2.state_dict() == {"epoch": 1, "batches_done": 0}
