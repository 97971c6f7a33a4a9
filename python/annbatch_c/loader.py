"""Loader: annbatch's Loader over libannbatch's engine.

``import annbatch_c as annbatch`` runs code written for the Python annbatch
library: the same keywords, defaults and validation messages, the same
dict per batch (``X``, ``obs``, ``var``, ``index``). Reading, decoding,
shuffling and batching happen in C threads with the GIL released; each batch
arrives as numpy / scipy / torch (or jax) objects over the engine's own memory.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from importlib.util import find_spec
from typing import Any, Iterator

import numpy as np

from . import _engine, _jax
from .samplers import ClassSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler, seed_from

try:  # a torch IterableDataset where torch is installed, as annbatch's Loader is
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover - torch is optional
    _Base = object

__all__ = ["Loader"]

_COMMON_SAMPLER_ARGS = {"chunk_size": 512, "preload_nchunks": 32, "batch_size": 1, "drop_last": False}
_ENGINE_KEYS = ("threads", "io_mode", "backend", "queue_depth", "max_windows", "to_float32", "whole_chunks")


def _numpy_dtype_name(dt: np.dtype) -> str:
    dt = np.dtype(dt)
    if dt.kind == "b":
        return "bool"
    if dt.kind in "iuf" or dt.kind == "c":
        return dt.name
    raise TypeError(f"unsupported dtype {dt} for in-memory data")


_CSR_PICKLES: bool | None = None


def _csr_tensors_pickle() -> bool:
    """Whether this torch can pickle a sparse CSR tensor for another process
    (torch 1.13 cannot: "Cannot access storage of SparseCsrTensorImpl")."""
    global _CSR_PICKLES
    if _CSR_PICKLES is None:
        import io
        from multiprocessing.reduction import ForkingPickler

        import torch
        import torch.multiprocessing  # noqa: F401  (registers torch's reductions)

        t = torch.sparse_csr_tensor(torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0], dtype=torch.int32),
                                    torch.tensor([1.0]), size=(1, 1))
        try:
            ForkingPickler(io.BytesIO()).dump(t)
            _CSR_PICKLES = True
        except Exception:  # noqa: BLE001 - any failure means: it cannot
            _CSR_PICKLES = False
    return _CSR_PICKLES



def _torch_csr(torch, crow, col, values, shape, trusted: bool):
    """A torch CSR tensor over the batch's arrays. torch checks a new CSR
    tensor's invariants (indptr from 0 to nnz and non-decreasing, indices in
    range, sorted and distinct within a row) in the consumer's thread: about
    as long as the training step's own sparse product for a 4096-row batch.
    The engine has checked all of them when it cut the batch (``trusted``:
    the indices of every row strictly increase; indptr and the index range it
    checks on every read), so then the tensor is made without checking again.
    Batches from stores with unsorted indices go through torch's checks,
    which refuse them as before."""
    if trusted:
        try:  # torch >= 2.0
            return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)
        except TypeError:
            unsafe = getattr(torch, "_sparse_csr_tensor_unsafe", None)  # torch 1.13
            if unsafe is not None:
                return unsafe(crow, col, values, size=shape)
    return torch.sparse_csr_tensor(crow, col, values, size=shape)

class Loader(_Base):
    """Shuffled mini-batches of on-disk (or in-memory) AnnData rows.

    Parameters (annbatch's)
    -----------------------
    batch_sampler
        A sampler from :mod:`annbatch_c.samplers`; excludes the next six.
    chunk_size, preload_nchunks, batch_size, shuffle, drop_last, rng
        As annbatch: 512, 32, 1, False, False; ``shuffle=True`` needs ``rng``
        (a numpy Generator) or ``seed``.
    return_index
        Yield the global row index of each row under ``"index"``.
    to_torch
        Yield torch tensors (``torch.sparse_csr_tensor`` or dense), sharing
        the engine's memory: values, column indices and indptr (the engine
        assembles an int32 indptr, the dtype torch wants beside int32
        column indices; a batch of 2^31 values or more is then an error).
        Default: True where torch is installed.
    preload_to_gpu
        annbatch stages batches on the GPU with cupy. Here no cupy is needed:
        the engine assembles each batch's X straight into CUDA pinned host
        memory (through the C API's batch allocator), and with ``to_torch``
        X arrives on the current CUDA device, copied asynchronously from the
        pinned batch (the batch is held until the copy is done). On a machine
        without a CUDA runtime and device, a warning says so once and batches
        stay in ordinary host memory, as with ``preload_to_gpu=False``.

    Parameters (ours)
    -----------------
    to_jax
        Yield jax arrays imported through DLPack from the engine's memory
        (dense: ``jax.Array``; sparse: ``jax.experimental.sparse.BCSR`` with
        an int32 indptr), on jax's CPU device. Takes precedence over
        ``to_torch``. Without jax, :class:`annbatch_c.MissingDependency`
        (an ImportError and a ValueError) is raised here.
    seed
        The engine's seed (instead of ``rng``): same seed, same batches.
    obs_columns
        Obs columns of on-disk data to deliver with each batch (categoricals
        arrive as pandas Categoricals over one label table). annbatch delivers
        the whole obs of an AnnData; reading it all can be slow, so we deliver
        only the named columns (none by default).
    copy
        Yield an X that owns its memory (the batch goes back to the engine at
        once). By default X is a view of the batch's memory, which returns to
        the engine when the last view of it dies. ``index`` and ``obs`` are
        always copies (a few bytes a row), so keeping them holds no batch.
    threads, io_mode, backend, queue_depth, max_windows, decode
        Engine settings (0 = a worker per CPU; "direct"/"buffered"/"auto";
        "auto"/"uring"/"pread"; 64; 3; "blocks"/"chunks").
    stall_ms
        When the caller holds batches of every window (``max_windows``) and
        releases none for this long, iteration raises
        :class:`annbatch_c.Stalled` instead of waiting forever (e.g.
        ``list(loader)`` without ``copy=True``).
    rank_shards
        With a DistributedSampler: "fixed" (annbatch's way: each rank always
        reads the same contiguous slice, so on data grouped by class a rank
        may never see some classes, and the remainder rows are never read) or
        "rotate" (each epoch the chunks are dealt anew from the seed and the
        epoch: disjoint, equal shares; every row read within 2 epochs).

    Differences from annbatch: orders come from the engine's seeded streams,
    not from ``rng`` (one integer is drawn from it); ``concat_strategy`` is
    accepted and ignored (the engine assembles batches one way); obs columns
    are only those named in ``obs_columns``.
    """

    def __init__(
        self,
        *,
        batch_sampler: Sampler | None = None,
        chunk_size: int | None = None,
        preload_nchunks: int | None = None,
        shuffle: bool | None = None,
        return_index: bool = False,
        batch_size: int | None = None,
        preload_to_gpu: bool = find_spec("cupy") is not None,
        drop_last: bool | None = None,
        to_torch: bool = find_spec("torch") is not None,
        to_jax: bool = False,
        concat_strategy: str | None = None,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
        obs_columns: list[str] | str | None = None,
        copy: bool = False,
        threads: int = 0,
        io_mode: str = "direct",
        backend: str = "auto",
        queue_depth: int = 64,
        max_windows: int = 3,
        decode: str = "blocks",
        rank_shards: str = "fixed",
        stall_ms: int = 10000,
    ):
        core = {"chunk_size": chunk_size, "preload_nchunks": preload_nchunks, "batch_size": batch_size,
                "drop_last": drop_last}
        sampler_args = {**core, "rng": rng, "shuffle": shuffle}
        if batch_sampler is not None:
            if any(v is not None for v in sampler_args.values()) or seed is not None:
                provided = [k for k, v in {**sampler_args, "seed": seed}.items() if v is not None]
                raise ValueError(
                    f"Cannot specify {', '.join(provided)} when providing a custom sampler. "
                    "These parameters are controlled by the sampler."
                )
            if not isinstance(batch_sampler, Sampler):
                raise TypeError(f"batch_sampler must be an annbatch_c.samplers.Sampler, got {type(batch_sampler).__name__}")
            self._batch_sampler = batch_sampler
        else:
            resolved = {k: _COMMON_SAMPLER_ARGS[k] if v is None else v for k, v in core.items()}
            if shuffle is not None:
                if shuffle and rng is None and seed is None:
                    raise ValueError("If shuffle is provided and True, then rng must also be provided")
                if not shuffle and (rng is not None or seed is not None):
                    raise ValueError("If rng and shuffle are provided but shuffle is False, then rng must be None")
            if shuffle:
                self._batch_sampler = RandomSampler(**resolved, rng=rng, seed=seed)
            else:
                self._batch_sampler = SequentialSampler(**resolved)
        if to_jax:
            _jax.require()
            to_torch = False  # its default follows torch being installed: jax asked for wins
        if to_torch and not find_spec("torch"):
            raise ImportError("Could not find torch dependency. Try `pip install torch`.")
        if decode not in ("blocks", "chunks"):
            raise ValueError(f"decode must be 'blocks' or 'chunks', got {decode!r}")
        if isinstance(obs_columns, str):
            obs_columns = [obs_columns]
        self._return_index = bool(return_index)
        self._to_torch = bool(to_torch)
        self._to_jax = bool(to_jax)
        self._preload_to_gpu = bool(preload_to_gpu)
        self._copy = bool(copy)
        self._obs_columns = list(obs_columns) if obs_columns else []
        self._engine_opts = {"threads": threads, "io_mode": io_mode, "backend": backend,
                             "queue_depth": queue_depth, "max_windows": max_windows,
                             "whole_chunks": int(decode == "chunks"), "rank_shards": rank_shards,
                             "stall_ms": stall_ms,
                             # torch and jax want CSR indptr and column indices of one dtype
                             "indptr_int32": int(self._to_torch or self._to_jax)}
        self._inputs: list[tuple] = []   # the recipe: what was added, in order
        self._in_memory_obs: list[tuple[int, Any]] = []
        self._var = None
        self._collection_added = False
        self._epoch = 0
        self._resume_batch = 0
        self._batches_done = 0
        self._engine = None
        self._engine_pid = None
        self._lock = threading.Lock()
        self._labels: dict[str, Any] = {}
        self._in_worker = False
        self._pinned = False
        self._inflight: list = []

    # ------------------------------------------------------------ recipe

    def __getstate__(self) -> dict:
        """Pickles the recipe (inputs, settings, position), not the engine."""
        state = self.__dict__.copy()
        state["_engine"] = None
        state["_engine_pid"] = None
        state["_lock"] = None
        state["_labels"] = {}
        state["_inflight"] = []
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _engine_config(self) -> dict:
        cfg = dict(self._batch_sampler.engine_config())
        cfg.update({k: v for k, v in self._engine_opts.items() if v is not None})
        return cfg

    @staticmethod
    def _torch_worker():
        if "torch" not in sys.modules and not find_spec("torch"):
            return None
        import torch.utils.data

        info = torch.utils.data.get_worker_info()
        return info if info is not None and info.num_workers > 1 else None

    def _worker_config(self, cfg: dict, n_obs: int, info) -> dict:
        """In a torch DataLoader worker: this worker's share of the rows as a
        mask of whole chunks (workers together read every row of the rank's
        share once, as annbatch's np.array_split of the chunks does), and a
        seed of its own."""
        if isinstance(self._batch_sampler, ClassSampler):
            raise NotImplementedError("Multiple workers are not supported with ClassSampler.")
        if cfg.get("replacement") or cfg.get("num_samples"):
            raise ValueError("Multiple workers are not supported with replacement sampling or num_samples.")
        world = cfg.get("world_size", 1) or 1
        start, stop = cfg.get("mask_start", 0), cfg.get("mask_stop", 0) or n_obs
        if world > 1:
            if cfg.get("rank_shards", "fixed") != "fixed":
                raise NotImplementedError("rank_shards='rotate' is not supported with DataLoader workers")
            # the rank's slice, as the engine cuts it (whole batches, equal)
            per_rank = n_obs // world // cfg["batch_size"] * cfg["batch_size"]
            start, stop = cfg["rank"] * per_rank, (cfg["rank"] + 1) * per_rank
        chunk = cfg["chunk_size"]
        nchunks = -(-(stop - start) // chunk)
        w, k = info.num_workers, info.id
        if nchunks < w:
            raise ValueError(f"{nchunks} chunks of {chunk} rows cannot be shared by {w} DataLoader workers: "
                             "lower chunk_size or num_workers")
        a, b = k * nchunks // w, (k + 1) * nchunks // w
        cfg = dict(cfg)
        cfg["rank"], cfg["world_size"] = 0, 1
        cfg["mask_start"], cfg["mask_stop"] = start + a * chunk, min(stop, start + b * chunk)
        cfg["seed"] = (int(cfg.get("seed", 0)) * 0x9E3779B97F4A7C15 + k + 1) % (2**63)
        return cfg

    def _make_engine(self):
        cfg = self._engine_config()
        info = self._torch_worker()
        if info is not None:
            probe = _engine.Engine({"rank": 0, "world_size": 1})
            self._add_inputs(probe)
            cfg = self._worker_config(cfg, int(probe.nrows()), info)
            probe.close()
        self._in_worker = info is not None
        eng = _engine.Engine(cfg)
        self._pinned = False
        if self._preload_to_gpu:
            self._pinned = eng.use_pinned_memory()
            if not self._pinned:
                warnings.warn("preload_to_gpu: no CUDA runtime with a device here: batches stay in ordinary "
                              "host memory and on the CPU", RuntimeWarning, stacklevel=3)
        self._add_inputs(eng)
        if self._obs_columns:
            eng.set_obs_columns(self._obs_columns)
        s = self._batch_sampler
        if isinstance(s, ClassSampler):
            if s.column is None:
                eng.set_class_codes(s.codes, s.labels, s.class_weights)
            else:
                eng.set_class_column(s.column, s.class_weights)
        return eng

    def _add_inputs(self, eng) -> None:
        for item in self._inputs:
            kind = item[0]
            if kind == "anndata":
                eng.add_anndata(item[1])
            elif kind == "array":
                eng.add_array(item[1], item[2])
            elif kind == "dense":
                arr = item[1]
                eng.add_dense(arr, _numpy_dtype_name(arr.dtype), tuple(int(s) for s in arr.shape))
            elif kind == "csr":
                indptr, indices, data, n_cols = item[1:]
                eng.add_csr(indptr, indices, data, _numpy_dtype_name(data.dtype), len(indptr) - 1, n_cols)

    def _get_engine(self):
        """The engine of this process, made on first use (also after a fork
        or in a DataLoader worker: an engine never crosses processes)."""
        with self._lock:
            if self._engine is None or self._engine_pid != os.getpid():
                if not self._inputs:
                    raise ValueError("Number of datasets must be greater than 1, got 0")
                self._engine = self._make_engine()
                self._engine_pid = os.getpid()
            return self._engine

    def _added(self) -> None:
        # a new input invalidates an engine made before it
        self._engine = None
        self._engine_pid = None

    # ------------------------------------------------------------ inputs

    def _add_path(self, path) -> None:
        path = os.fspath(path)
        if not os.path.isdir(path):
            if path.endswith(".h5ad"):
                raise TypeError(
                    f"{path}: .h5ad files are read through a collection: convert them first "
                    "(annbatch convert, or annbatch_c.DatasetCollection(...).add_adatas([...]))"
                )
            raise FileNotFoundError(f"{path}: no such store")
        self._inputs.append(("anndata", path))

    @staticmethod
    def _zarr_location(obj) -> tuple[str, str] | None:
        """(store directory, node) of a zarr 2 / 3 group or array on a local directory."""
        store = getattr(obj, "store", None)
        root = None
        for attr in ("path", "root", "dir_path"):
            v = getattr(store, attr, None)
            if isinstance(v, (str, os.PathLike)):
                root = os.fspath(v)
                break
        if root is None:
            return None
        node = getattr(obj, "path", "") or ""
        return root, node.strip("/")

    def add_adata(self, adata) -> "Loader":
        """Adds one AnnData: a path to an AnnData zarr store (or a collection),
        a zarr group of one, or an in-memory ``anndata.AnnData`` whose X is a
        numpy array or a scipy CSR matrix."""
        self._add_adata(adata)
        self._added()
        return self

    def add_adatas(self, adatas) -> "Loader":
        """Adds several AnnData (see :meth:`add_adata`), in order."""
        adatas = list(adatas)
        if len(adatas) < 1:
            raise ValueError(f"Number of adatas must be greater than 1, got {len(adatas)}")
        for a in adatas:
            self._add_adata(a)
        self._added()
        return self

    add_anndata = add_adata
    add_anndatas = add_adatas

    def _add_adata(self, adata) -> None:
        if isinstance(adata, (str, os.PathLike)):
            self._add_path(adata)
            return
        if type(adata).__name__ == "AnnData":
            if getattr(adata, "isbacked", False):
                raise TypeError("backed AnnData: pass the path of its zarr store instead")
            self._add_memory(adata.X, adata.obs if len(adata.obs.columns) else None)
            if self._var is None:
                self._var = adata.var
            return
        loc = self._zarr_location(adata)
        if loc is not None and hasattr(adata, "attrs"):
            root, node = loc
            self._inputs.append(("anndata", os.path.join(root, node) if node else root))
            return
        raise TypeError(f"Cannot add {type(adata).__name__}: give a path, a zarr group or an anndata.AnnData")

    def _add_memory(self, x, obs=None) -> None:
        offset = sum(self._rows_of(i) for i in self._inputs)
        if isinstance(x, np.ndarray):
            arr = np.ascontiguousarray(x)
            if arr.ndim < 1:
                raise ValueError("in-memory data needs at least one dimension (rows)")
            self._inputs.append(("dense", arr))
        else:
            try:
                import scipy.sparse as sp
            except ImportError:  # pragma: no cover
                sp = None
            if sp is not None and sp.issparse(x) and x.format == "csr":
                self._inputs.append(("csr", np.ascontiguousarray(x.indptr, dtype=np.int64),
                                     np.ascontiguousarray(x.indices, dtype=np.int64),
                                     np.ascontiguousarray(x.data), int(x.shape[1])))
            else:
                raise TypeError(f"Cannot add dataset of type {type(x)}: in-memory X must be a numpy array or a scipy CSR matrix")
        if obs is not None:
            self._in_memory_obs.append((offset, obs))

    @staticmethod
    def _rows_of(item) -> int:
        if item[0] == "dense":
            return item[1].shape[0]
        if item[0] == "csr":
            return len(item[1]) - 1
        return 0

    def add_dataset(self, dataset, obs=None, var=None) -> "Loader":
        """Adds one array (rows on axis 0, any rank): a zarr array, the string
        ``"STORE:NODE"``, or an in-memory numpy array / scipy CSR matrix."""
        self._add_dataset(dataset, obs)
        if var is not None and self._var is None:
            self._var = var
        self._added()
        return self

    def add_datasets(self, datasets, obs=None, var=None) -> "Loader":
        datasets = list(datasets)
        obs = [None] * len(datasets) if obs is None else list(obs)
        if len(obs) != len(datasets):
            raise ValueError("obs must have one entry per dataset")
        for d, o in zip(datasets, obs):
            self._add_dataset(d, o)
        if var is not None and self._var is None:
            self._var = var[0] if isinstance(var, list) else var
        self._added()
        return self

    def _add_dataset(self, dataset, obs) -> None:
        if isinstance(dataset, (str, os.PathLike)):
            s = os.fspath(dataset)
            store, sep, node = s.rpartition(":")
            if not sep or not store:
                raise ValueError(f"{s}: give a dataset as STORE:NODE (e.g. data.zarr:X), or a zarr array")
            if node.strip("/") == "" and not os.path.isdir(store):
                raise FileNotFoundError(f"{store}: no such store")
            self._inputs.append(("array", store, node.strip("/")))
            return
        if isinstance(dataset, np.ndarray) or type(dataset).__module__.startswith("scipy.sparse"):
            self._add_memory(dataset, obs)
            return
        loc = self._zarr_location(dataset)
        if loc is not None and hasattr(dataset, "shape"):
            self._inputs.append(("array", loc[0], loc[1]))
            return
        raise TypeError(f"Cannot add dataset of type {type(dataset)}")

    def use_collection(self, collection, **_ignored) -> "Loader":
        """Adds every dataset of an annbatch collection (a path or a
        :class:`annbatch_c.DatasetCollection`), once."""
        if self._collection_added:
            raise RuntimeError(
                "You should not add multiple collections, independently shuffled - please preshuffle multiple "
                "collections, use `add_adatas` manually if you know what you are doing, or open an issue if you "
                "believe that this should be supported at an API level higher than `add_adatas`."
            )
        path = getattr(collection, "path", collection)
        self._add_path(path)
        self._collection_added = True
        self._added()
        return self

    # ------------------------------------------------------------ facts

    @property
    def batch_sampler(self) -> Sampler:
        return self._batch_sampler

    @property
    def n_obs(self) -> int:
        """Rows of every dataset added, together."""
        return int(self._get_engine().nrows())

    @property
    def n_var(self) -> int:
        if not self._inputs:
            raise ValueError("No datasets added yet")
        return len(self._get_engine().var_names())

    @property
    def var(self):
        """The var DataFrame of in-memory data, or one indexed by the var
        names of the first on-disk dataset."""
        if self._var is None and self._inputs:
            import pandas as pd

            names = self._get_engine().var_names()
            self._var = pd.DataFrame(index=pd.Index(names)) if names else None
        return self._var

    def __len__(self) -> int:
        eng = self._get_engine()
        self._batch_sampler.validate(int(eng.nrows()))
        return int(eng.nbatches())

    def stats(self) -> dict:
        """The engine's figures since it was made (or reset): rows, batches,
        bytes read and decoded, reads, read latency percentiles (us), consumer
        wait p50/p99, time to first batch, backend and I/O mode in use."""
        return self._get_engine().stats()

    # ------------------------------------------------------------ resume

    def state_dict(self) -> dict:
        """Where iteration stands: the epoch and the batches of it consumed."""
        return {"epoch": self._epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict) -> None:
        """Resumes at ``state`` (from :meth:`state_dict`): the next iteration
        continues that epoch after the batches already consumed."""
        self._epoch = int(state["epoch"])
        self._resume_batch = int(state.get("batches_done", 0))
        self._batches_done = self._resume_batch

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration runs (orders differ per epoch)."""
        self._epoch = int(epoch)
        self._resume_batch = 0

    # ------------------------------------------------------------ batches

    def _obs_frame(self, batch, info, rows):
        import pandas as pd

        cols = {}
        for i in range(info["n_obs"]):
            name, kind, buf = batch.obs(i)
            arr = np.asarray(buf)
            if kind == "codes":
                cats = self._labels.get(name)
                if cats is None:
                    cats = self._labels[name] = pd.Index(batch.labels(i))
                cols[name] = pd.Categorical.from_codes(arr.copy(), categories=cats)
            else:
                cols[name] = arr.copy()
        frame = pd.DataFrame(cols, copy=False) if cols else None
        if self._in_memory_obs:
            parts = []
            for offset, df in self._in_memory_obs:
                sel = (rows >= offset) & (rows < offset + len(df))
                parts.append((np.flatnonzero(sel), df.iloc[rows[sel] - offset]))
            if any(len(p[0]) for p in parts):
                order = np.concatenate([p[0] for p in parts])
                mem = pd.concat([p[1] for p in parts])
                mem = mem.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
                frame = mem if frame is None else pd.concat([frame, mem], axis=1)
        return frame

    def _x(self, batch, info):
        values = np.asarray(batch.array("values"))
        if self._copy:
            values = values.copy()
        if info["sparse"]:
            indices = np.asarray(batch.array("indices"))
            indptr = np.asarray(batch.array("indptr"))
            if self._copy:
                indices, indptr = indices.copy(), indptr.copy()
            shape = (info["nrows"], info["n_cols"])
            if self._to_jax:
                return _jax.csr(values, indices, indptr, shape)
            if self._to_torch:
                import torch

                if self._in_worker and not _csr_tensors_pickle():
                    raise TypeError(
                        "this torch cannot send sparse CSR tensors from a DataLoader worker to the main "
                        "process: use num_workers=0 (the engine's threads already read and decode in "
                        "parallel), or to_torch=False (scipy CSR batches cross processes)"
                    )
                # torch wants crow and col of one dtype: the engine made
                # this batch's indptr int32 (indptr_int32), as its indices
                crow, col = torch.from_numpy(indptr), torch.from_numpy(indices)
                with warnings.catch_warnings():  # torch 1.13 calls its CSR support beta
                    warnings.simplefilter("ignore", UserWarning)
                    return _torch_csr(torch, crow, col, torch.from_numpy(values), shape, info["indices_sorted"])
            import scipy.sparse as sp

            return sp.csr_matrix((values, indices, indptr), shape=shape, copy=False)
        if self._to_jax:
            return _jax.dense(values)
        if self._to_torch:
            import torch

            return torch.from_numpy(values)
        return values

    def _to_device(self, x):
        """X onto the CUDA device, copied asynchronously out of the pinned
        batch; the batch (through x) is kept until the copy has finished."""
        import torch

        self._inflight = [(ev, src) for ev, src in self._inflight if not ev.query()]
        dev = x.to("cuda", non_blocking=True)
        ev = torch.cuda.Event()
        ev.record()
        self._inflight.append((ev, x))
        return dev

    def _convert(self, batch) -> dict:
        info = batch.info()
        rows = np.asarray(batch.array("rows"))
        x = self._x(batch, info)
        if self._pinned and self._to_torch:
            x = self._to_device(x)
        out = {"X": x, "obs": None, "var": self._var, "index": None}
        if info["n_obs"] or self._in_memory_obs:
            out["obs"] = self._obs_frame(batch, info, rows)
        if self._return_index:
            # copied (8 bytes a row): an index kept by the caller must not
            # keep the whole batch's memory from the engine
            out["index"] = rows.copy()
        return out

    def __iter__(self) -> Iterator[dict]:
        """One epoch: each ``iter()`` runs the next epoch (``set_epoch`` and
        ``load_state_dict`` choose another)."""
        ep = self.epoch()
        try:
            for out in ep:
                self._batches_done += 1
                yield out
            self._epoch = ep.number + 1
            self._batches_done = 0
        finally:
            ep.close()

    def epoch(self, number: int | None = None) -> "Epoch":
        """Starts an epoch (the next one by default) and returns it: an
        iterator of batches that any number of threads may share, each batch
        going to exactly one of them (``for b in ep`` in every thread)."""
        eng = self._get_engine()
        self._batch_sampler.validate(int(eng.nrows()))
        number = self._epoch if number is None else int(number)
        skip = self._resume_batch
        if skip:
            # resume: an engine of its own that starts this epoch after the
            # batches already consumed (the epoch's order is the same)
            eng = self._make_engine_with(start_batch=skip)
        self._resume_batch = 0
        self._batches_done = skip
        return Epoch(self, eng, number)

    def _make_engine_with(self, **extra):
        opts = self._engine_opts
        self._engine_opts = {**opts, **extra}
        try:
            return self._make_engine()
        finally:
            self._engine_opts = opts

    def __repr__(self) -> str:
        return f"Loader({self._batch_sampler!r}, inputs={len(self._inputs)})"


class Epoch:
    """One running epoch of a Loader (see :meth:`Loader.epoch`). Thread-safe:
    the engine hands each batch to exactly one caller of ``next``.

    A thread running ``for b in ep`` keeps its previous batch while it waits
    for the next one, so T consumer threads may hold batches of T windows at
    once: give the Loader ``max_windows`` of at least T + 1 (or ``del b`` at
    the end of the loop body), or the engine stalls (:class:`Stalled`)."""

    def __init__(self, loader: Loader, eng, number: int):
        self._loader = loader
        self._eng = eng
        self.number = number
        eng.start(number)

    def __iter__(self) -> "Epoch":
        return self

    def __next__(self) -> dict:
        b = self._eng.next()
        if b is None:
            raise StopIteration
        return self._loader._convert(b)

    def close(self) -> None:
        """Stops the epoch: reading stops, batches not yet handed out are dropped."""
        self._eng.stop()

    def __enter__(self) -> "Epoch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ += ["Epoch", "RandomSampler", "SequentialSampler", "DistributedSampler", "ClassSampler"]
