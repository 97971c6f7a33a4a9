"""annbatch's names, defaults and messages; classes from memory; DDP; the
example."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import annbatch_c as annbatch
from annbatch_c import samplers

from conftest import N_OBS, run_iterate

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("AB_TOP_SRCDIR", os.path.dirname(os.path.dirname(HERE)))


def test_defaults_as_annbatch():
    ld = annbatch.Loader(to_torch=False)
    s = ld.batch_sampler
    assert isinstance(s, samplers.SequentialSampler)
    assert (s.chunk_size, s.preload_nchunks, s.batch_size, s.drop_last) == (512, 32, 1, False)
    # to_torch defaults to True where torch is installed, as annbatch's does
    import importlib.util

    assert annbatch.Loader()._to_torch == (importlib.util.find_spec("torch") is not None)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(shuffle=True), "If shuffle is provided and True, then rng must also be provided"),
        (dict(shuffle=False, rng=np.random.default_rng(0)),
         "If rng and shuffle are provided but shuffle is False, then rng must be None"),
        (dict(batch_size=100), "chunk_size * preload_nchunks must be divisible by batch_size. Got 16384 % 100 = 84."),
        (dict(batch_size=20000, chunk_size=512, preload_nchunks=32),
         "batch_size cannot exceed chunk_size * preload_nchunks. Got batch_size=20000, but max is 16384."),
        (dict(chunk_size=0), "Chunk size must be greater than 1, got 0"),
        (dict(batch_sampler=samplers.SequentialSampler(4, 4, 4), batch_size=3),
         "Cannot specify batch_size when providing a custom sampler. These parameters are controlled by the sampler."),
    ],
)
def test_messages_as_annbatch(kw, msg):
    with pytest.raises(ValueError) as e:
        annbatch.Loader(to_torch=False, **kw)
    assert str(e.value) == msg


def test_mask_messages():
    with pytest.raises(ValueError, match="mask.step must be 1, but got 2"):
        samplers.RandomSampler(4, 4, 4, mask=slice(0, 10, 2), seed=1)
    with pytest.raises(ValueError, match="mask.start must be < mask.stop"):
        samplers.RandomSampler(4, 4, 4, mask=slice(10, 5), seed=1)


def test_wrong_types_are_type_errors(data):
    with pytest.raises(TypeError):
        annbatch.Loader(to_torch=False, chunk_size="512")
    with pytest.raises(TypeError):
        annbatch.Loader(to_torch=False, batch_sampler=object())
    with pytest.raises(TypeError):
        samplers.ClassSampler(4, 4, 4, classes=[0, 1], num_samples=8)
    with pytest.raises(TypeError):
        annbatch.Loader(to_torch=False).add_dataset(12)


def test_len_as_annbatch_counts(data):
    for kw in (dict(batch_size=32, chunk_size=16, preload_nchunks=4),
               dict(batch_size=32, chunk_size=16, preload_nchunks=4, drop_last=True),
               dict(batch_size=7, chunk_size=7, preload_nchunks=3)):
        ld = annbatch.Loader(to_torch=False, **kw).add_adata(data["sparse"])
        want = N_OBS // kw["batch_size"] if kw.get("drop_last") else -(-N_OBS // kw["batch_size"])
        assert len(ld) == want == ld.batch_sampler.n_iters(N_OBS) == sum(1 for _ in ld)


def test_in_memory_adata_and_datasets(data):
    ad = data["ad_sparse"]
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=1,
                         return_index=True, to_torch=False).add_adata(ad)
    full = ad.X.toarray()
    n = 0
    for b in ld:
        assert np.array_equal(b["X"].toarray(), full[b["index"]])
        assert list(b["obs"]["cell_type"]) == list(ad.obs["cell_type"].iloc[b["index"]])
        n += len(b["index"])
    assert n == N_OBS
    # a raw array of rank 3, rows on axis 0
    cube = np.arange(100 * 4 * 3, dtype=np.int16).reshape(100, 4, 3)
    ld = annbatch.Loader(chunk_size=10, preload_nchunks=2, batch_size=5, return_index=True,
                         to_torch=False).add_dataset(cube)
    for b in ld:
        assert np.array_equal(np.asarray(b["X"]).reshape(-1, 4, 3), cube[b["index"]])


def test_zarr_group_and_array_inputs(data):
    import zarr

    g = zarr.open_group(data["sparse"], mode="r")
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                         to_torch=False).add_adata(g)
    assert len(ld) == -(-N_OBS // 32)
    dense = zarr.open_group(data["dense"], mode="r")["X"]
    ld = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                         to_torch=False).add_dataset(dense)
    b = next(iter(ld))
    assert np.array_equal(np.asarray(b["X"]), dense[:][b["index"]])
    ld2 = annbatch.Loader(chunk_size=16, preload_nchunks=4, batch_size=32, return_index=True,
                          to_torch=False).add_dataset(data["dense"] + ":X")
    assert [x["index"].tolist() for x in ld2] == [x["index"].tolist() for x in ld]


def test_class_sampler_from_memory_equals_from_disk(data):
    import json

    # the grouped collection's classes in the loader's row order (datasets in
    # numeric order), as `annbatch get --labels` reads them
    paths = sorted((p for p in os.listdir(data["grouped"]) if p.startswith("dataset_")),
                   key=lambda p: int(p.split("_")[1]))
    cats = []
    for p in paths:
        out = subprocess.run([os.environ["AB_BIN"], "get", data["grouped"], f"{p}/obs/cell_type", "--labels"],
                             capture_output=True, text=True, check=True)
        cats += json.loads(out.stdout)
    out = subprocess.run([os.environ["AB_BIN"], "get", data["grouped"], f"{paths[0]}/obs/cell_type/categories"],
                         capture_output=True, text=True, check=True)
    order = json.loads(out.stdout)  # the column's category order: the order of the weights
    classes = pd.Categorical(cats, categories=order)
    by_label = {"T cell": 1, "B cell": 2, "NK": 0, "monocyte": 1, "DC": 1}
    kw = dict(num_samples=640, class_weights=[by_label[c] for c in order], seed=4)
    mem = samplers.ClassSampler(16, 4, 32, classes=classes, **kw)
    disk = samplers.ClassSampler(16, 4, 32, classes="cell_type", **kw)
    a = [b["index"].tolist() for b in annbatch.Loader(batch_sampler=mem, return_index=True, to_torch=False)
         .add_adata(data["grouped"])]
    d = [b["index"].tolist() for b in annbatch.Loader(batch_sampler=disk, return_index=True, to_torch=False)
         .add_adata(data["grouped"])]
    assert a == d
    codes = classes.codes
    for rows in a:
        assert len(set(codes[rows])) == 1
        assert classes.categories[codes[rows[0]]] != "NK"
    with pytest.raises(ValueError, match="NA values"):
        samplers.ClassSampler(16, 4, 32, classes=pd.Categorical(["a", None]), num_samples=8)
    short = samplers.ClassSampler(16, 4, 32, classes=classes[:10], num_samples=64, seed=1)
    with pytest.raises(ValueError, match="does not match loader n_obs"):
        list(annbatch.Loader(batch_sampler=short, to_torch=False).add_adata(data["grouped"]))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_disjoint_rows_synced_weights(data, tmp_path):
    """torch.distributed (gloo, 127.0.0.1), 2 processes: DistributedSampler
    gives them disjoint rows; DDP keeps a small model's weights equal."""
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, json
        import numpy as np, torch, torch.distributed as dist
        import annbatch_c as annbatch
        from annbatch_c import samplers
        dist.init_process_group("gloo", rank=int(sys.argv[1]), world_size=2)
        s = samplers.DistributedSampler(samplers.RandomSampler(16, 4, 32, seed=2), dist_info="torch")
        ld = annbatch.Loader(batch_sampler=s, return_index=True, to_torch=True).add_adata({data['coll']!r})
        torch.manual_seed(0)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(60, 1))
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        rows = []
        for b in ld:
            x = b["X"].to_dense()
            loss = model(x).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            rows += b["index"].tolist()
        w = [p.detach().numpy().ravel().tolist() for p in model.parameters()]
        print(json.dumps({{"rows": rows, "w": w}}))
        dist.destroy_process_group()
    """))
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    procs = [subprocess.Popen([sys.executable, str(script), str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for r in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        import json

        outs.append(json.loads(out.strip().splitlines()[-1]))
    r0, r1 = set(outs[0]["rows"]), set(outs[1]["rows"])
    assert r0 and r1 and not r0 & r1, "ranks share rows"
    assert len(outs[0]["rows"]) == len(outs[1]["rows"])
    for a, b in zip(outs[0]["w"], outs[1]["w"]):
        assert np.allclose(a, b), "DDP weights differ between ranks"
    # each rank's rows are what annbatch iterate gives that rank
    for r in range(2):
        want = run_iterate([data["coll"]], "--chunk-size", 16, "--preload-nchunks", 4, "--batch-size", 32,
                           "--shuffle", "--seed", 2, "--rank", r, "--world-size", 2)
        assert [int(i) for line in want for i in line] == outs[r]["rows"]


def test_example_loss_falls(tmp_path):
    ab = os.environ.get("AB_BIN")
    cells, coll = tmp_path / "cells.zarr", tmp_path / "coll.zarr"
    subprocess.run([ab, "synth", str(cells), "--n-obs", "6000", "--n-vars", "500", "--mean-nnz", "100", "--seed", "1"],
                   check=True, capture_output=True)
    subprocess.run([ab, "convert", str(cells), "-o", str(coll), "--no-progress"], check=True, capture_output=True)
    out = subprocess.run([sys.executable, os.path.join(TOP, "python", "examples", "train_pytorch.py"), str(coll),
                          "--epochs", "4", "--batch-size", "256", "--preload-nchunks", "16"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    losses = [float(l.split("loss")[1].split()[0]) for l in out.stdout.splitlines() if l.startswith("epoch")]
    assert len(losses) == 4
    assert losses[-1] < losses[0] * 0.9, losses
    assert all("samples/s" in l for l in out.stdout.splitlines() if l.startswith("epoch"))


def test_preload_to_gpu_without_a_gpu_falls_back(data):
    """No CUDA runtime or device here: preload_to_gpu warns once and gives
    the same batches in host memory (a GPU machine gets X in pinned memory,
    copied asynchronously to the device: the C allocator hook is tested in
    test_loader's test_batch_allocator)."""
    from annbatch_c import _engine

    eng = _engine.Engine({"chunk_size": 16, "preload_nchunks": 4, "batch_size": 32})
    eng.add_anndata(data["coll"])
    assert eng.use_pinned_memory() is False
    kw = dict(chunk_size=16, preload_nchunks=4, batch_size=32, shuffle=True, seed=6, return_index=True,
              to_torch=True)
    plain = [(b["index"].tolist(), b["X"].to_dense()) for b in annbatch.Loader(**kw).add_adata(data["coll"])]
    with pytest.warns(RuntimeWarning, match="no CUDA runtime"):
        ld = annbatch.Loader(preload_to_gpu=True, **kw).add_adata(data["coll"])
        got = [(b["index"].tolist(), b["X"].device.type, b["X"].to_dense()) for b in ld]
    assert [g[0] for g in got] == [p[0] for p in plain]
    for (_, device, x), (_, want) in zip(got, plain):
        assert device == "cpu"
        assert (x == want).all()
