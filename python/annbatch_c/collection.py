"""DatasetCollection: annbatch's preshuffled collections, written and read by
libannbatch.

``DatasetCollection(path).add_adatas(paths, ...)`` runs the library's
collection writer (``ab_collection_write``, what ``annbatch convert`` runs) in
this process with the GIL released: the same inputs, options and seed give
the same bytes as ``annbatch convert``. ``.obs()`` reads the collection's obs
through the library into one pandas DataFrame.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import _engine
from .samplers import seed_from

__all__ = ["DatasetCollection", "parse_size"]

_SIZE = re.compile(r"\s*([+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(.*)\Z", re.S)
_COMPRESSORS = ("blosc-lz4", "blosc-zstd", "zstd", "gzip", "none")


def parse_size(s: str) -> int:
    """Bytes of a size as ``annbatch convert`` reads it: plain bytes, or a
    number with K, M, G or T (then optionally B), powers of 1000, or with
    KiB, MiB, GiB, TiB, powers of 1024 ("20GB", "256MiB", "1.5G")."""
    m = _SIZE.match(s) if isinstance(s, str) and not s.startswith("-") else None
    if m is None:
        raise ValueError(f"{s!r} is not a size like 20GB or 256MiB")
    v, unit = float(m.group(1)), m.group(2)
    mult = 1.0
    if unit:
        u = unit[0].lower()
        base2 = unit[1:2] in ("i", "I")
        k = 1024.0 if base2 else 1000.0
        powers = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
        if u not in powers:
            raise ValueError(f"{s!r} is not a size like 20GB or 256MiB")
        mult = k ** powers[u]
        rest = unit[1:] if u == "b" else unit[1 + base2:]
        if u != "b" and rest[:1] in ("b", "B"):
            rest = rest[1:]
        if rest:
            raise ValueError(f"{s!r} is not a size like 20GB or 256MiB")
    v *= mult
    if v >= 1.8e19:
        raise ValueError(f"{s!r} is too large a size")
    return int(v)


def _int(name: str, v: Any, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v}")
    return int(v)


def _bytes(name: str, v: Any, minimum: int = 0) -> int:
    """An int of bytes, or a size string (parse_size)."""
    if isinstance(v, str):
        try:
            n = parse_size(v)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if n < minimum:
            raise ValueError(f"{name} must be at least {minimum} bytes, got {v!r}")
        return n
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be a number of bytes or a size like '1GB', got {type(v).__name__}")
    return _int(name, v, minimum)


def _columns(name: str, v: Any) -> list[str] | None:
    if v is None:
        return None
    v = [v] if isinstance(v, str) else v
    try:
        cols = list(v)
    except TypeError:
        raise TypeError(f"{name} must be a column name or a list of them, got {type(v).__name__}") from None
    for c in cols:
        if not isinstance(c, str):
            raise TypeError(f"{name} must hold column names (str), got {type(c).__name__}")
    return cols


def _normalize_groupby(groupby: str | Iterable[str]) -> list[str]:
    """annbatch's checks and messages."""
    cols = _columns("groupby", groupby)
    if len(cols) == 0:
        raise ValueError("`groupby` must contain at least one `obs` column.")
    if len(set(cols)) != len(cols):
        raise ValueError("`groupby` columns must be unique.")
    return cols


def _compressor(codec: Any) -> dict:
    """The writer settings of annbatch's ``zarr_compressor``: a name of ours
    ("blosc-lz4", ...), None (no compression), or one zarr / numcodecs codec
    the library writes (Blosc lz4 or zstd with byte shuffle, Zstd, GZip)."""
    if codec is None:
        return {"compressor": "none"}
    if isinstance(codec, str):
        if codec not in _COMPRESSORS:
            raise ValueError(
                f"zarr_compressor must be one of {', '.join(_COMPRESSORS)}, a codec or None, got {codec!r}"
            )
        return {"compressor": codec}
    if isinstance(codec, (list, tuple)):
        if len(codec) != 1:
            raise ValueError(f"zarr_compressor: the library writes one compressor, got {len(codec)}")
        codec = codec[0]

    def plain(v):  # enum members (zarr 3's BloscCname, BloscShuffle) by value
        return getattr(v, "value", v)

    kind = type(codec).__name__.lower()
    out: dict = {}
    if hasattr(codec, "cname"):
        cname, shuffle = plain(codec.cname), plain(getattr(codec, "shuffle", "shuffle"))
        if cname not in ("lz4", "zstd") or shuffle not in ("shuffle", 1):
            raise ValueError(f"zarr_compressor {codec!r}: the library writes blosc with lz4 or zstd and byte "
                             "shuffle only")
        out["compressor"] = "blosc-" + cname
        if getattr(codec, "blocksize", 0):
            out["blosc_blocksize"] = int(codec.blocksize)
    elif kind in ("zstd", "zstdcodec"):
        out["compressor"] = "zstd"
    elif kind in ("gzip", "gzipcodec"):
        out["compressor"] = "gzip"
    else:
        raise ValueError(f"zarr_compressor {codec!r}: the library writes blosc (lz4 or zstd), zstd or gzip; "
                         f"give one of those codecs or a name: {', '.join(_COMPRESSORS)}")
    level = getattr(codec, "clevel", getattr(codec, "level", None))
    if level is not None:
        out["level"] = int(level)
    return out


def _zarr_location(obj) -> str | None:
    """The directory of a zarr 2 / 3 group on a local store."""
    store = getattr(obj, "store", None)
    for attr in ("path", "root", "dir_path"):
        v = getattr(store, attr, None)
        if isinstance(v, (str, os.PathLike)):
            node = (getattr(obj, "path", "") or "").strip("/")
            return os.path.join(os.fspath(v), node) if node else os.fspath(v)
    return None


def _categories(cats: list, dtype: str):
    import pandas as pd

    if dtype == "string":
        return pd.Index(cats, dtype=object)
    if dtype == "bool":
        return pd.Index(np.array([c == "true" for c in cats], dtype=bool))
    kind = np.dtype(dtype).kind
    conv = int if kind in "iu" else float
    return pd.Index(np.array([conv(c) for c in cats], dtype=dtype))


def _frame(attrs_json: str, index: list, columns: list):
    """One dataset's obs as anndata reads it (column kinds, categoricals,
    nullable arrays, the index and its name)."""
    import pandas as pd

    data = {}
    for name, kind, dtype, values, mask, cats, cats_dtype, ordered in columns:
        if kind in ("string", "nullable-string"):
            col = pd.array(values, dtype="string") if kind == "nullable-string" else np.array(values, dtype=object)
        else:
            arr = np.frombuffer(values, dtype=np.dtype(dtype))
            if kind == "categorical":
                col = pd.Categorical.from_codes(arr, categories=_categories(cats, cats_dtype), ordered=ordered)
            elif kind == "nullable-integer":
                col = pd.arrays.IntegerArray(arr, np.frombuffer(mask, dtype=bool))
            elif kind == "nullable-boolean":
                col = pd.arrays.BooleanArray(arr.astype(bool), np.frombuffer(mask, dtype=bool))
            else:
                col = arr
        data[name] = col
    idx_key = json.loads(attrs_json).get("_index", "_index")
    idx = pd.Index(index, dtype=object, name=None if idx_key == "_index" else idx_key)
    return pd.DataFrame(data, index=idx, columns=list(data))


class DatasetCollection:
    """An annbatch preshuffled collection (a zarr v3 group of datasets
    dataset_0, dataset_1, ...), made, grown and read through libannbatch.

    ``DatasetCollection(path)`` names the place; nothing is created until
    :meth:`add_adatas` has written everything (the writer builds under a
    hidden temporary name beside it and renames it into place). Iterating
    gives the datasets' paths (anndata.read_zarr reads each), ``len()``
    their number. A DatasetCollection (or its ``path``) goes to
    :meth:`annbatch_c.Loader.use_collection`.

    Differences from annbatch: ``group`` is a path (or a zarr group on a local
    directory); h5ad collections (``is_collection_h5ad``) are not written.
    """

    def __init__(self, group, *, mode: str = "a", is_collection_h5ad: bool = False):
        if is_collection_h5ad:
            raise NotImplementedError("h5ad collections are not written by libannbatch: give a .zarr path")
        if mode not in ("a", "r", "r+"):
            raise ValueError(f"mode must be 'a', 'r' or 'r+', got {mode!r}")
        if isinstance(group, (str, os.PathLike)):
            path = os.fspath(group)
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if not path.endswith(".zarr"):
                warnings.warn(
                    f"It is highly recommended to make your collections have the `.zarr` suffix, got: {path}.",
                    stacklevel=2,
                )
        else:
            path = _zarr_location(group) if hasattr(group, "attrs") else None
            if path is None:
                raise TypeError("Group must either be a zarr group or a path")
        self._path = path
        self._mode = mode
        self.summary: dict | None = None

    # ------------------------------------------------------------ facts

    @property
    def path(self) -> str:
        """The collection's directory."""
        return self._path

    def __fspath__(self) -> str:
        return self._path

    @property
    def _dataset_keys(self) -> list[str]:
        return _engine.collection_datasets(self._path) or []

    @property
    def dataset_paths(self) -> list[str]:
        """The path of each dataset (an AnnData zarr v3 group), in order."""
        return [os.path.join(self._path, k) for k in self._dataset_keys]

    def __iter__(self) -> Iterator[str]:
        """The datasets' paths (annbatch yields zarr groups; zarr v3 groups
        need zarr-python 3, so paths are what works everywhere)."""
        return iter(self.dataset_paths)

    def __len__(self) -> int:
        return len(self._dataset_keys)

    @property
    def is_empty(self) -> bool:
        """Whether no collection (or one without datasets) is at the path."""
        return len(self._dataset_keys) == 0

    def __repr__(self) -> str:
        n = len(self)
        return f"DatasetCollection({self._path!r}, {n} dataset{'' if n == 1 else 's'})"

    def obs(self, columns: list[str] | None = None):
        """The obs of every dataset, concatenated in dataset order, as a
        pandas DataFrame indexed by the obs names: categoricals as pandas
        Categoricals, nullable columns as pandas' nullable arrays, as
        anndata reads them. ``columns`` (annbatch's): the columns to read, in
        that order (those a dataset lacks are left out); an empty list gives
        an empty DataFrame. The reading is the library's, without the GIL."""
        import pandas as pd

        cols = _columns("columns", columns)
        if cols is not None and len(cols) == 0:
            return pd.DataFrame()
        keys = self._dataset_keys
        if not keys:
            return pd.DataFrame()
        frames = _engine.read_obs(self._path, keys, cols)
        return pd.concat([_frame(*f) for f in frames])

    # ------------------------------------------------------------ writing

    def add_adatas(
        self,
        adata_paths,
        *,
        load_adata: Callable | None = None,
        groupby: str | Iterable[str] | None = None,
        var_subset: Iterable[str] | os.PathLike | None = None,
        n_obs_per_chunk: int = 64,
        shard_size: str | None = "1GB",
        zarr_compressor: Any = "blosc-lz4",
        h5ad_compressor: str | None = "gzip",
        dataset_size: int | str = "20GB",
        shuffle_chunk_size: int = 1000,
        shuffle: bool = True,
        rng: np.random.Generator | None = None,
        merge: str = "same",
        seed: int | None = None,
        obs_columns: str | Iterable[str] | None = None,
        make_var_unique: bool = False,
        drop_new_genes: bool = False,
        blosc_blocksize: int | str | None = None,
        blosc_unsplit: bool | None = None,
        memory: int | str | None = None,
        threads: int | None = None,
        progress: Callable[[dict], Any] | None = None,
        on_note: Callable[[str], Any] | None = None,
    ) -> "DatasetCollection":
        """Writes the AnnData inputs into the collection: a new one, or new
        datasets in the var space and X dtype of the one at the path. This is
        ``annbatch convert`` (the library's ``ab_collection_write``), run here
        with the GIL released: the same inputs, options and seed give the same
        bytes. Nothing at the path changes until everything is written; an
        error or Ctrl-C (KeyboardInterrupt, within a twentieth of a second)
        leaves it as it was and removes the temporary directory.

        Parameters (annbatch's)
        -----------------------
        adata_paths
            Paths of AnnData stores (zarr v2 / v3) or .h5ad files, zarr groups
            on local directories, h5py files, or anndata.AnnData objects (in
            memory: written to a temporary zarr store first, whose path is
            then their ``src_path``).
        groupby
            obs columns (or "src_path") each dataset's rows are sorted by
            (stable, missing values last).
        var_subset
            The var names to keep, in that order (annbatch keeps the
            inputs' order); names found in no input are an error. A
            ``pathlib.Path`` names a file of them, one a line. Default: the
            outer join of the inputs' var names.
        n_obs_per_chunk
            Rows per X chunk (dense), or their mean non-zeros (sparse).
        shard_size
            Bytes per shard, a size like "1GB", or a number of rows per
            shard (sparse: that many rows' worth of non-zeros on average),
            rounded up to whole chunks, as annbatch takes them (None: not
            sharded). ``annbatch convert --shard-size`` / ``--shard-rows``.
        zarr_compressor
            "blosc-lz4" (blosc lz4, clevel 3, byte shuffle: annbatch's default),
            "blosc-zstd", "zstd", "gzip", "none" (or None), or one codec object
            of those kinds (its level and blosc block size are used).
        h5ad_compressor
            Accepted for annbatch's sake: only h5ad collections use it.
        dataset_size
            Rows per dataset (an int), or bytes of X per dataset (a size string,
            "20GB" by default).
        shuffle_chunk_size, shuffle
            Rows per contiguous block taken in random order (1000), and
            whether to shuffle at all.
        rng
            A numpy Generator: one integer drawn from it is the seed.
        merge
            The var columns kept: those equal in every input ("same", the
            only strategy the library has).

        Parameters (ours)
        -----------------
        seed
            The writer's seed (instead of ``rng``). With neither, a random
            one (as annbatch); ``annbatch convert`` defaults to 0.
        obs_columns
            obs columns to keep (default: those in every input); src_path is
            always added.
        make_var_unique, drop_new_genes
            Rename repeated var names of an input NAME-1, NAME-2; when adding,
            drop the genes the collection lacks instead of refusing the input.
        blosc_blocksize, blosc_unsplit, memory
            Bytes per blosc block (default 16 KiB; 0: libblosc's own choice,
            256 KiB); each block one compressed stream (default True; False:
            one a byte plane, libblosc's default, which makes blocks of 4-byte
            values at least 64 KiB); and the memory a run may hold (default
            1 GiB): a dataset's X stays in memory while it fits and is
            streamed through a compressed scratch file beside the output past
            that; datasets keep their asked size.
        threads
            Worker threads reading and converting the inputs' X ahead
            (default: one per CPU; 1: none). The bytes written are the same
            for any number. ``annbatch convert --threads``.
        progress
            Called with a dict (rows_done, total_rows, bytes_read,
            datasets_done, n_datasets, elapsed_s, final) at most 20 times a
            second and at the end; an exception it raises stops the run.
        on_note
            Called with each note of the writer (dtype promotion, names made
            unique, genes dropped); default: ``warnings.warn``.

        Sizes are read as ``annbatch convert`` reads them: "1GB" is 10^9
        bytes, "1GiB" 2^30 (annbatch reads "1GB" as 2^30). Returns self; the
        writer's summary (datasets, rows, genes, X dtype, bytes, seconds,
        seed) is in ``.summary``.
        """
        if self._mode == "r":
            raise ValueError(f"{self._path} was opened with mode='r': nothing can be added")
        if load_adata is not None:
            raise NotImplementedError(
                "load_adata is not supported: the library reads the inputs itself (X, obs, var); "
                "choose obs columns with obs_columns"
            )
        if merge != "same":
            raise ValueError(f"merge must be 'same' (the var columns equal in every input are kept), got {merge!r}")
        if h5ad_compressor not in ("gzip", "lzf", None):
            raise ValueError(f"h5ad_compressor must be 'gzip', 'lzf' or None, got {h5ad_compressor!r}")
        if isinstance(adata_paths, (str, os.PathLike)) or not isinstance(adata_paths, Iterable):
            raise TypeError("adata_paths must be a list of AnnData paths (or groups, or AnnData objects)")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        cfg: dict = {
            "shuffle": int(shuffle),
            "shuffle_chunk_size": _int("shuffle_chunk_size", shuffle_chunk_size, 1),
            "n_obs_per_chunk": _int("n_obs_per_chunk", n_obs_per_chunk, 1),
            "make_var_unique": int(bool(make_var_unique)),
            "drop_new_genes": int(bool(drop_new_genes)),
        }
        if isinstance(dataset_size, str):
            cfg["dataset_bytes"] = _bytes("dataset_size", dataset_size, 1)
        else:
            cfg["dataset_rows"] = _int("dataset_size", dataset_size, 1)
            if cfg["shuffle_chunk_size"] > cfg["dataset_rows"]:
                raise ValueError(
                    "Cannot have a larger slice size than observations per dataset. Reduce `shuffle_chunk_size` "
                    "or increase `dataset_size`."
                )
        if shard_size is None:
            cfg["shard_bytes"] = 0
        elif isinstance(shard_size, str):
            cfg["shard_bytes"] = _bytes("shard_size", shard_size, 1)
        elif isinstance(shard_size, (int, np.integer)) and not isinstance(shard_size, bool):
            if shard_size < 1:
                raise ValueError(f"shard_size={shard_size}: a number of rows must be at least 1")
            cfg["shard_rows"] = int(shard_size)
        else:
            raise TypeError(f"shard_size must be a size like '1GB', a number of rows or None, got "
                            f"{type(shard_size).__name__}")
        cfg.update(_compressor(zarr_compressor))
        if blosc_blocksize is not None:
            cfg["blosc_blocksize"] = _bytes("blosc_blocksize", blosc_blocksize)
        if blosc_unsplit is not None:
            cfg["blosc_unsplit"] = int(bool(blosc_unsplit))
        if memory is not None:
            cfg["memory"] = _bytes("memory", memory, 1)
        if threads is not None:
            cfg["threads"] = _int("threads", threads, 1)
            if cfg["threads"] > 256:
                raise ValueError(f"threads={threads}: at most 256")
        if groupby is not None:
            cfg["groupby"] = _normalize_groupby(groupby)
        if obs_columns is not None:
            cfg["obs_columns"] = _columns("obs_columns", obs_columns)
        if rng is not None and seed is not None:
            raise ValueError("give rng or seed, not both")
        chosen = seed_from(rng) if rng is not None else None if seed is None else _int("seed", seed)
        cfg["seed"] = int(np.random.default_rng().integers(0, 2**63 - 1)) if chosen is None else chosen
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable, got {type(progress).__name__}")
        if on_note is not None and not callable(on_note):
            raise TypeError(f"on_note must be a callable, got {type(on_note).__name__}")
        if on_note is None:
            def on_note(message: str) -> None:
                # stacklevel 3: the caller of add_adatas (this function is
                # called from C, which adds no frame)
                warnings.warn(message, UserWarning, stacklevel=3)

        tmp = None
        try:
            inputs, tmp = self._inputs(adata_paths)
            if var_subset is not None:
                cfg["var_subset_path"], tmp = self._var_subset(var_subset, tmp)
            summary = _engine.collection_write(self._path, inputs, cfg, progress, on_note)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        summary["seed"] = cfg["seed"]
        self.summary = summary
        return self

    @staticmethod
    def _tmpdir(tmp: str | None) -> str:
        return tmp if tmp is not None else tempfile.mkdtemp(prefix="annbatch_c-")

    def _inputs(self, adatas) -> tuple[list[str], str | None]:
        inputs: list[str] = []
        tmp = None
        for i, a in enumerate(adatas):
            if isinstance(a, (str, os.PathLike)):
                p = os.fspath(a)
                inputs.append(os.fsdecode(p) if isinstance(p, bytes) else p)
            elif type(a).__name__ == "AnnData":
                if getattr(a, "isbacked", False):
                    inputs.append(os.fspath(a.filename))
                else:
                    tmp = self._tmpdir(tmp)
                    p = os.path.join(tmp, f"adata_{i}.zarr")
                    a.write_zarr(p)
                    inputs.append(p)
            elif type(a).__module__.startswith("h5py") and getattr(a, "name", None) == "/":
                inputs.append(a.file.filename)
            elif hasattr(a, "attrs") and _zarr_location(a) is not None:
                inputs.append(_zarr_location(a))
            else:
                raise TypeError(
                    f"Cannot add {type(a).__name__}: give paths (zarr stores or .h5ad files), zarr groups, "
                    "h5py files or anndata.AnnData objects"
                )
        if not inputs:
            raise ValueError("adata_paths is empty: give at least one AnnData")
        return inputs, tmp

    @classmethod
    def _var_subset(cls, names, tmp: str | None) -> tuple[str, str | None]:
        """A file of the var names for the writer (one a line)."""
        if isinstance(names, os.PathLike):
            return os.fspath(names), tmp
        if isinstance(names, str):
            raise TypeError("var_subset must be a list of var names (or a pathlib.Path of a file of them), not a str")
        try:
            names = list(names)
        except TypeError:
            raise TypeError(f"var_subset must be a list of var names, got {type(names).__name__}") from None
        for n in names:
            if not isinstance(n, str):
                raise TypeError(f"var_subset must hold var names (str), got {type(n).__name__}")
            if "\n" in n or "\r" in n or n != n.strip() or not n:
                raise ValueError(f"var_subset: {n!r}: a var name must be non-empty, on one line, without spaces "
                                 "around it")
        tmp = cls._tmpdir(tmp)
        path = os.path.join(tmp, "var_subset.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        return path, tmp
